//! The failover drill: the deployment of `deploy/k8s` mirrored with processes on
//! loopback against the real servers, load running, while its parts fail.
//!
//! Two write and two read API processes, each pair behind a TCP balancer standing
//! in for its Kubernetes Service (a pod is taken out before it is told to stop, as
//! the endpoints controller and `preStop` do); two projection workers and two Kafka
//! relays behind leases, the read models fed through Kafka. Four users complete
//! goals through the front balancer and read each write back with its token. Then:
//! the leading projection worker is SIGKILLed and replaced; the publishing relay is
//! SIGKILLed and replaced; every API process is restarted in turn with SIGTERM.
//!
//! Held: every answer is right (a read shows every acknowledged write of its user
//! and nothing never attempted) or, while a worker or relay fails over, at worst
//! UNAVAILABLE or NOT_CAUGHT_UP; the rolling restart fails no request; at the end
//! the read models equal a rebuild from the events and every event is on Kafka
//! exactly once.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use cqrs_core::Position;
use cqrs_kafka::KafkaRelay;
use cqrs_testkit::kafka::{DeleteTopics, assert_exactly_once, read_to_end};
use cqrs_testkit::{kafka_brokers, postgres_url, unique_name};
use serde_json::{Value, json};

use crate::binary::{Served, serve};
use crate::proxy::Proxy;
use crate::rebuilt::{assert_read_models_equal_a_rebuild, schema_pool};
use crate::roles::{SECRET, leading, leads, migrate, token, worker};

const USERS: usize = 4;
pub const PHASES: [&str; 5] = [
    "steady load",
    "worker killed",
    "relay killed",
    "rolling restart",
    "settle",
];

/// What one answer was.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Ok,
    Unavailable,
    NotCaughtUp,
    Failed,
}

pub enum Outcome {
    Ok(Value),
    Refused(Kind, String),
}

/// Posts one GraphQL request on a fresh connection (so that the balancer routes
/// each request, as an Ingress would).
pub async fn call(
    http: &reqwest::Client,
    url: &str,
    user: &str,
    query: &str,
    vars: Value,
) -> Outcome {
    let sent = http
        .post(format!("{url}/graphql"))
        .bearer_auth(token(user))
        .json(&json!({ "query": query, "variables": vars }))
        .send()
        .await;
    let body: Value = match sent {
        Ok(reply) => match reply.json().await {
            Ok(body) => body,
            Err(e) => {
                return Outcome::Refused(Kind::Failed, format!("a body that is not JSON: {e}"));
            }
        },
        Err(e) => return Outcome::Refused(Kind::Failed, format!("transport: {e}")),
    };
    match body["errors"][0]["extensions"]["code"].as_str() {
        None => Outcome::Ok(body["data"].clone()),
        Some("UNAVAILABLE") => Outcome::Refused(Kind::Unavailable, body.to_string()),
        Some("NOT_CAUGHT_UP") => Outcome::Refused(Kind::NotCaughtUp, body.to_string()),
        Some(_) => Outcome::Refused(Kind::Failed, body.to_string()),
    }
}

/// What a user's load saw.
#[derive(Default)]
pub struct Log {
    /// Per phase: ok, unavailable, not caught up, failed.
    pub counts: [[u32; 4]; PHASES.len()],
    /// Answers that were wrong, or failures where none is allowed.
    pub wrong: Vec<String>,
    /// Per goal: dates whose completion was acknowledged, and attempted at all.
    pub goals: Vec<(String, BTreeSet<NaiveDate>, BTreeSet<NaiveDate>)>,
    pub last_token: Option<String>,
}

impl Log {
    fn count(&mut self, phase: usize, kind: Kind, what: &str) {
        let column = match kind {
            Kind::Ok => 0,
            Kind::Unavailable => 1,
            Kind::NotCaughtUp => 2,
            Kind::Failed => 3,
        };
        self.counts[phase][column] += 1;
        // A worker's or relay's failover may make a read wait too long, or an answer
        // unavailable; nothing else may fail, and nothing at all in a rolling restart.
        let allowed = kind == Kind::Ok || (kind != Kind::Failed && (phase == 1 || phase == 2));
        if !allowed {
            self.wrong.push(format!("{}: {what}", PHASES[phase]));
        }
    }
}

pub fn dates(value: &Value) -> BTreeSet<NaiveDate> {
    value["goal"]["doneDates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().parse().unwrap())
        .collect()
}

pub const YEAR: &str = "query($g: ID!, $a: Token) { goal(id: $g, after: $a) { doneDates(from: \"2026-01-01\", to: \"2026-12-31\") } }";

/// One user's load until `stop`: complete the next day of the current goal (a new
/// goal every 365 days), then read the goal back with the mutation's token.
pub async fn load(
    front: String,
    user: String,
    phase: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> Log {
    let http = mada::http_client::builder(Duration::from_secs(30))
        .unwrap()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut log = Log::default();
    let first = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let mut category = None;
    let mut day = 365_u64;
    while !stop.load(Ordering::Relaxed) {
        // Each answer counts in the phase it ends in (phases only move forward: the
        // stricter of the two).
        let now = || phase.load(Ordering::Relaxed);
        if category.is_none() {
            let made = call(
                &http,
                &front,
                &user,
                "mutation { createCategory(name: \"Drill\", colour: \"#00aa88\") { id } }",
                json!({}),
            )
            .await;
            match made {
                Outcome::Ok(data) => {
                    category = data["createCategory"]["id"].as_str().map(str::to_owned)
                }
                Outcome::Refused(kind, what) => log.count(now(), kind, &what),
            }
            continue;
        }
        if day == 365 {
            let made = call(&http, &front, &user, "mutation($g: NewGoalInput!) { createGoal(goal: $g) { id } }", json!({ "g": { "title": "Drill", "categoryId": category, "schedule": { "start": "2026-01-01" } } })).await;
            match made {
                Outcome::Ok(data) => {
                    let id = data["createGoal"]["id"].as_str().unwrap().to_owned();
                    log.goals.push((id, BTreeSet::new(), BTreeSet::new()));
                    day = 0;
                }
                Outcome::Refused(kind, what) => log.count(now(), kind, &what),
            }
            continue;
        }
        let date = first.checked_add_days(Days::new(day)).unwrap();
        day += 1;
        let (goal, acked, attempted) = log.goals.last_mut().unwrap();
        let goal = goal.clone();
        attempted.insert(date);
        let done = call(
            &http,
            &front,
            &user,
            "mutation($g: ID!, $d: Date!) { completeGoal(id: $g, date: $d) { token } }",
            json!({ "g": goal, "d": date.to_string() }),
        )
        .await;
        let token = match done {
            Outcome::Ok(data) => {
                acked.insert(date);
                data["completeGoal"]["token"].as_str().unwrap().to_owned()
            }
            Outcome::Refused(kind, what) => {
                log.count(now(), kind, &what);
                continue;
            }
        };
        log.count(now(), Kind::Ok, "");
        log.last_token = Some(token.clone());
        let read = call(&http, &front, &user, YEAR, json!({ "g": goal, "a": token })).await;
        match read {
            Outcome::Ok(data) => {
                let seen = dates(&data);
                let (_, acked, attempted) = log.goals.last().unwrap();
                if !acked.is_subset(&seen) || !seen.is_subset(attempted) {
                    let what = format!("{user} read {seen:?} after acknowledged {acked:?}");
                    log.wrong
                        .push(format!("{}: wrong answer: {what}", PHASES[now()]));
                }
                log.count(now(), Kind::Ok, "");
            }
            Outcome::Refused(kind, what) => log.count(now(), kind, &what),
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    log
}

/// A process killed when dropped (the test failing included).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn relay(schema: &str, prefix: &str) -> Killed {
    Killed(
        Command::new(env!("CARGO_BIN_EXE_mada"))
            .args([
                "relay",
                "--store",
                "postgres",
                "--database-url",
                &postgres_url(),
            ])
            .args(["--pg-schema", schema, "--kafka-brokers", &kafka_brokers()])
            .args(["--kafka-prefix", prefix, "--relay-lease-ttl", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    )
}

async fn relay_checkpoint(prefix: &str) -> Position {
    KafkaRelay::new(&kafka_brokers(), "mada")
        .with_prefix(prefix)
        .checkpoint()
        .await
        .unwrap()
}

/// Waits for `/readyz` to answer 200.
async fn ready(http: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(reply) = http.get(format!("{url}/readyz")).send().await
            && reply.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Restarts `processes` one at a time behind `proxy`, as a rollout with
/// `maxUnavailable: 1` does: out of the Service, 300 ms (as `preStop: sleep`, so
/// that connections routed just before are accepted before the process stops
/// accepting), SIGTERM and drain, a new process in once ready, 500 ms before the
/// next.
async fn roll(
    http: &reqwest::Client,
    proxy: &Proxy,
    processes: &mut Vec<Served>,
    start: impl Fn() -> Served,
) {
    for _ in 0..processes.len() {
        let old = processes.remove(0);
        proxy.remove(&old.url);
        tokio::time::sleep(Duration::from_millis(300)).await;
        terminate(old).await;
        let new = start();
        ready(http, &new.url).await;
        proxy.add(&new.url);
        processes.push(new);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// SIGTERM, then the exit status (the drain must end well before 30 s).
async fn terminate(mut served: Served) {
    let pid = served.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not stop after SIGTERM",
            served.url
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        status.success(),
        "{} exited with {status} after SIGTERM",
        served.url
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_roles_fail_over_under_load_with_no_wrong_answer() {
    let _heavy = crate::harness::HEAVY.lock().await;
    let schema = unique_name("drill");
    let prefix = unique_name("drill");
    let (url, brokers) = (postgres_url(), kafka_brokers());
    let _topics = DeleteTopics::under(&brokers, [prefix.clone()]);
    migrate(&schema);
    let kafka = [
        "--sync",
        "kafka",
        "--kafka-brokers",
        &brokers,
        "--kafka-prefix",
        &prefix,
    ];
    let mut workers = vec![worker(&schema, &kafka), worker(&schema, &kafka)];
    let envs = [("MADA_JWT_SECRET", SECRET)];
    let base = [
        "serve",
        "--store",
        "postgres",
        "--database-url",
        &url,
        "--pg-schema",
        &schema,
        "--read-wait-ms",
        "10000",
    ];
    let base = [&base[..], &kafka[..]].concat();
    let start_write = || serve(&[&base[..], &["--role", "write"]].concat(), &envs, false);
    let mut writes = vec![start_write(), start_write()];
    let write_urls: Vec<&str> = writes.iter().map(|s| s.url.as_str()).collect();
    let write_proxy = Proxy::start(&write_urls).await;
    let read_args = [
        &base[..],
        &["--role", "read", "--write-url", &write_proxy.url],
    ]
    .concat();
    let start_read = || serve(&read_args, &envs, false);
    let mut reads = vec![start_read(), start_read()];
    let read_urls: Vec<&str> = reads.iter().map(|s| s.url.as_str()).collect();
    let front = Proxy::start(&read_urls).await;
    let mut relays = vec![relay(&schema, &prefix)];

    let phase = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let users: Vec<_> = (0..USERS)
        .map(|n| {
            tokio::spawn(load(
                front.url.clone(),
                format!("drill-{n}"),
                Arc::clone(&phase),
                Arc::clone(&stop),
            ))
        })
        .collect();
    let http = mada::http_client::client(Duration::from_secs(5)).unwrap();

    // The first relay publishes (so it holds the lease); then its standby starts.
    let deadline = Instant::now() + Duration::from_secs(30);
    while relay_checkpoint(&prefix).await == Position::START {
        assert!(Instant::now() < deadline, "the relay never published");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    relays.push(relay(&schema, &prefix));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // SIGKILL the leading projection worker: the standby takes over; a new pod
    // replaces the dead one.
    phase.store(1, Ordering::Relaxed);
    let leader = leading(&http, &workers).await;
    let mut dead = workers.remove(leader);
    dead.child.kill().unwrap();
    dead.child.wait().unwrap();
    let killed = Instant::now();
    while !leads(&http, &workers[0]).await {
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "the standby worker never led"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "the standby worker leads {:?} after the kill",
        killed.elapsed()
    );
    // Its replacement starts once the standby leads (a pod takes longer to start).
    workers.push(worker(&schema, &kafka));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // SIGKILL the publishing relay; its standby takes over, a new pod replaces it.
    phase.store(2, Ordering::Relaxed);
    let mut dead = relays.remove(0);
    dead.0.kill().unwrap();
    dead.0.wait().unwrap();
    let killed_at = relay_checkpoint(&prefix).await;
    relays.push(relay(&schema, &prefix));
    let deadline = Instant::now() + Duration::from_secs(30);
    while relay_checkpoint(&prefix).await <= killed_at {
        assert!(Instant::now() < deadline, "no relay took over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // A rolling restart: each API process taken out of its Service, drained with
    // SIGTERM, replaced by a new one that joins when ready.
    phase.store(3, Ordering::Relaxed);
    roll(&http, &write_proxy, &mut writes, start_write).await;
    roll(&http, &front, &mut reads, start_read).await;
    phase.store(4, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut logs = Vec::new();
    for user in users {
        logs.push(user.await.unwrap());
    }

    println!("answers per phase (ok / unavailable / not caught up / failed):");
    for (p, name) in PHASES.iter().enumerate() {
        let sum = logs.iter().fold([0; 4], |mut a, l| {
            for (x, y) in a.iter_mut().zip(l.counts[p]) {
                *x += y;
            }
            a
        });
        println!("  {name}: {sum:?}");
        assert!(sum[0] > 0, "load ran during {name}");
    }
    let wrong: Vec<&String> = logs.iter().flat_map(|l| &l.wrong).collect();
    assert!(
        wrong.is_empty(),
        "{} wrong or failed answers: {wrong:#?}",
        wrong.len()
    );

    // The end: the read models equal a rebuild from the events; every event is on
    // Kafka once; each user's goals show exactly what the events say.
    let pool = schema_pool(&schema).await;
    assert_read_models_equal_a_rebuild(&pool).await;
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM cqrs_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let topics = mada::kafka::KafkaSync::new(&brokers, &prefix).topics();
    let seen = tokio::task::spawn_blocking(move || {
        read_to_end(&kafka_brokers(), &topics, "read_committed")
    })
    .await
    .unwrap();
    assert_exactly_once(&seen, usize::try_from(count).unwrap());
    let http = mada::http_client::client(Duration::from_secs(30)).unwrap();
    for (n, log) in logs.iter().enumerate() {
        let user = format!("drill-{n}");
        for (goal, acked, attempted) in &log.goals {
            let Outcome::Ok(data) = call(
                &http,
                &front.url,
                &user,
                YEAR,
                json!({ "g": goal, "a": log.last_token }),
            )
            .await
            else {
                panic!("{user}'s goal {goal} could not be read");
            };
            let seen = dates(&data);
            assert!(
                acked.is_subset(&seen) && seen.is_subset(attempted),
                "{user}: {seen:?} after {acked:?}"
            );
        }
    }
    let acked: usize = logs.iter().flat_map(|l| &l.goals).map(|g| g.1.len()).sum();
    println!("{acked} completions acknowledged, {count} events, read models equal their rebuild");
    drop((writes, reads, workers, relays));
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}
