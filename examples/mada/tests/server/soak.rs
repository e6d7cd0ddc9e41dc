//! A bounded soak of MADA traffic through the API, every role in a process of its
//! own (a write process, a read process forwarding mutations to it, two projection
//! workers behind a lease), all of them reaching PostgreSQL through Toxiproxy, which
//! now and then adds latency or resets connections.
//!
//! Clients toggle goals done and not done and read their lists back; per window the
//! test records the requests' p50 and p99 latency, errors, and each process's memory
//! (RSS) and connections to the database. At the end: every acknowledged toggle is in
//! the read models (none lost; a toggle applied late or twice would leave a cell in
//! the wrong state), the read models equal a rebuild, and memory and connections
//! stayed bounded. Latency is recorded, not asserted (this machine is shared and noisy).
//!
//! 12 s in the test command, 10 minutes with one-minute windows in `scripts/soak.sh`
//! (`CQRS_RELIABILITY_SCALE` = 64).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cqrs_testkit::toxiproxy::{Fault, Proxy};
use serde_json::{Value, json};

use crate::binary::{Served, serve};
use crate::rebuilt::{assert_read_models_equal_a_rebuild, schema_pool};
use crate::roles::{SECRET, on_postgres_at, token, worker_on};

/// How long the traffic runs, and the window figures are taken over.
fn timing() -> (Duration, Duration) {
    let scale = cqrs_testkit::linearizability::scale();
    if scale >= 8 {
        let minutes = u64::try_from(scale / 6).unwrap_or(10).clamp(2, 10);
        (Duration::from_secs(60 * minutes), Duration::from_secs(60))
    } else {
        (Duration::from_secs(12), Duration::from_secs(3))
    }
}

/// What a process holds: resident memory (KiB) and TCP connections to `port`.
fn footprint(pid: u32, port: u16) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    // The process's sockets, by inode, then those of /proc/net/tcp connected to port.
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let remote = format!(":{port:04X}");
    let connections = tcp
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 9
                && fields[2].ends_with(&remote)
                && fields[3] == "01" // ESTABLISHED
                && inodes.iter().any(|i| i == fields[9])
        })
        .count();
    (rss, connections)
}

/// How long after a failed toggle its cell is read back: past the server's request
/// timeout (10 s), nothing of it can still be in flight.
const SETTLE: Duration = Duration::from_secs(15);

/// A request's outcome, for the window figures.
#[derive(Default)]
struct Window {
    latencies: Vec<Duration>,
    errors: usize,
}

/// One client: a user with three goals due every day of November, toggled done and
/// not done on random days; after each toggle, every third time, its list is read
/// back (after the toggle's token). A cell whose toggle failed is unknown until,
/// [`SETTLE`] later, its goal's days are read back. Returns what it knows each
/// (goal, day) to be (`None`: still unknown), its last token, its goals, and how many
/// unknown cells it settled.
async fn client(
    url: String,
    user: String,
    until: Instant,
    windows: Arc<Mutex<Window>>,
    seed: u64,
) -> (
    HashMap<(String, u32), Option<bool>>,
    String,
    Vec<String>,
    usize,
) {
    let http = mada::http_client::client(Duration::from_secs(10)).unwrap();
    let bearer = token(&user);
    let post = |query: &'static str, variables: Value| {
        let (http, url, bearer) = (http.clone(), url.clone(), bearer.clone());
        async move {
            let response = http
                .post(format!("{url}/graphql"))
                .bearer_auth(bearer)
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await
                .ok()?;
            let body: Value = response.json().await.ok()?;
            body.get("errors").is_none().then_some(body["data"].clone())
        }
    };
    // Set-up, retried through faults.
    let category = loop {
        let created = post(
            "mutation { createCategory(name: \"Soak\", colour: \"#2e7d32\") { id } }",
            json!({}),
        )
        .await;
        if let Some(data) = created {
            break data["createCategory"]["id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut goals = Vec::new();
    while goals.len() < 3 {
        let goal = json!({ "title": format!("g{}", goals.len()), "categoryId": category,
            "schedule": { "start": "2026-11-01", "end": "2026-11-30" } });
        let created = post(
            "mutation($g: NewGoalInput!) { createGoal(goal: $g) { id } }",
            json!({ "g": goal }),
        )
        .await;
        match created {
            Some(data) => goals.push(data["createGoal"]["id"].as_str().unwrap().to_owned()),
            // Unknown: it may exist; it is never toggled, so it changes nothing.
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let mut known: HashMap<(String, u32), Option<bool>> = HashMap::new();
    // When each unknown cell became unknown: read back once nothing can still be in
    // flight for it (the server's request timeout, and then some).
    let mut unknown_since: HashMap<(String, u32), Instant> = HashMap::new();
    let mut resolved = 0_usize;
    let mut state = seed;
    let mut last_token = String::new();
    let mut n = 0_u64;
    while Instant::now() < until {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let goal = goals[usize::try_from((state >> 33) % 3).unwrap()].clone();
        let day = u32::try_from((state >> 40) % 30).unwrap() + 1;
        if let Some(since) = unknown_since.get(&(goal.clone(), day)) {
            if since.elapsed() < SETTLE || last_token.is_empty() {
                continue;
            }
            // Read the goal's days back after the latest write, and settle every
            // cell of it that has been unknown long enough.
            let read = post(
                "query($g: ID!, $a: Token) { goal(id: $g, after: $a) { doneDates(from: \"2026-11-01\", to: \"2026-11-30\") } }",
                json!({ "g": goal, "a": last_token }),
            )
            .await;
            let Some(read) = read else { continue };
            let dates: Vec<String> = read["goal"]["doneDates"]
                .as_array()
                .map(|d| {
                    d.iter()
                        .filter_map(|d| d.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let settled: Vec<u32> = unknown_since
                .iter()
                .filter(|((g, _), since)| *g == goal && since.elapsed() >= SETTLE)
                .map(|((_, d), _)| *d)
                .collect();
            for d in settled {
                unknown_since.remove(&(goal.clone(), d));
                let done = dates.contains(&format!("2026-11-{d:02}"));
                known.insert((goal.clone(), d), Some(done));
                resolved += 1;
            }
        }
        let done = known
            .get(&(goal.clone(), day))
            .copied()
            .flatten()
            .unwrap_or(false);
        let query = if done {
            "mutation($g: ID!, $d: Date!) { uncompleteGoal(id: $g, date: $d) { token } }"
        } else {
            "mutation($g: ID!, $d: Date!) { completeGoal(id: $g, date: $d) { token } }"
        };
        let started = Instant::now();
        let reply = post(
            query,
            json!({ "g": goal, "d": format!("2026-11-{day:02}") }),
        )
        .await;
        let took = started.elapsed();
        let cell = known.entry((goal.clone(), day)).or_insert(Some(false));
        {
            let mut window = windows.lock().unwrap();
            match &reply {
                Some(data) => {
                    window.latencies.push(took);
                    let field = if done {
                        "uncompleteGoal"
                    } else {
                        "completeGoal"
                    };
                    last_token = data[field]["token"].as_str().unwrap_or_default().to_owned();
                    // A cell whose state is unknown stays unknown.
                    if let Some(state) = cell {
                        *state = !done;
                    }
                }
                None => {
                    window.errors += 1;
                    *cell = None;
                    unknown_since.insert((goal.clone(), day), Instant::now());
                }
            }
        }
        n += 1;
        if n.is_multiple_of(3) && !last_token.is_empty() {
            let started = Instant::now();
            let read = post(
                "query($a: Token) { today(date: \"2026-11-15\", after: $a) { total } }",
                json!({ "a": last_token }),
            )
            .await;
            let mut window = windows.lock().unwrap();
            match read {
                Some(_) => window.latencies.push(started.elapsed()),
                None => window.errors += 1,
            }
        }
    }
    (known, last_token, goals, resolved)
}

/// The percentile `p` of `sorted`.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_soaks_steady_traffic_with_faults_and_stays_flat() {
    let _heavy = crate::harness::HEAVY.lock().await;
    let (length, window) = timing();
    let schema = cqrs_testkit::unique_name("soak");
    crate::roles::migrate(&schema);
    let proxy = Proxy::new("127.0.0.1:5432");
    let url = format!("postgres://cqrs:cqrs@127.0.0.1:{}/cqrs", proxy.port());
    let store = on_postgres_at(&url, &schema);
    let workers = [worker_on(&store, &[]), worker_on(&store, &[])];
    // Faults make the servers log every failed request: errors only, here.
    let envs = [("MADA_JWT_SECRET", SECRET), ("RUST_LOG", "error")];
    let base: Vec<&str> = std::iter::once("serve")
        .chain(store.iter().map(String::as_str))
        .collect();
    let write = serve(&[&base[..], &["--role", "write"]].concat(), &envs, false);
    let read: Served = serve(
        &[&base[..], &["--role", "read", "--write-url", &write.url]].concat(),
        &envs,
        false,
    );
    let processes = [
        ("write", write.child.id()),
        ("read", read.child.id()),
        ("worker 1", workers[0].child.id()),
        ("worker 2", workers[1].child.id()),
    ];

    let until = Instant::now() + length;
    let current = Arc::new(Mutex::new(Window::default()));
    let clients: Vec<_> = (0..4_u64)
        .map(|i| {
            tokio::spawn(client(
                read.url.clone(),
                format!("soak{i}"),
                until,
                current.clone(),
                i * 7919 + 1,
            ))
        })
        .collect();

    // Faults now and then: latency for a fifth of a window, then resets for a tenth.
    let mut rows = Vec::new();
    let mut footprints: Vec<Vec<(u64, usize)>> = Vec::new();
    while Instant::now() < until {
        let started = Instant::now();
        tokio::time::sleep(window * 2 / 5).await;
        proxy.add(Fault::Latency { ms: 50, jitter: 30 });
        tokio::time::sleep(window / 5).await;
        proxy.add(Fault::Reset { after_ms: 100 });
        tokio::time::sleep(window / 10).await;
        proxy.lift();
        tokio::time::sleep(window.saturating_sub(started.elapsed())).await;
        let mut taken = std::mem::take(&mut *current.lock().unwrap());
        taken.latencies.sort();
        let now: Vec<(u64, usize)> = processes
            .iter()
            .map(|(_, pid)| footprint(*pid, proxy.port()))
            .collect();
        rows.push(format!(
            "{:>4} s | {:>5} requests | {:>3} failed | p50 {:>7.1?} | p99 {:>7.1?} | RSS MiB {} | connections {}",
            (rows.len() + 1) as u64 * window.as_secs(),
            taken.latencies.len(),
            taken.errors,
            percentile(&taken.latencies, 0.5),
            percentile(&taken.latencies, 0.99),
            now.iter().map(|(rss, _)| format!("{}", rss / 1024)).collect::<Vec<_>>().join("/"),
            now.iter().map(|(_, c)| c.to_string()).collect::<Vec<_>>().join("/"),
        ));
        footprints.push(now);
    }
    proxy.lift();
    eprintln!(
        "soak of {length:?}, processes {:?}:",
        processes.map(|p| p.0)
    );
    for row in &rows {
        eprintln!("  {row}");
    }

    // Every acknowledged toggle is there, once.
    let (mut checked, mut unknown, mut requests, mut settled) = (0, 0, 0, 0);
    for (i, handle) in clients.into_iter().enumerate() {
        let (known, last_token, goals, resolved) = handle.await.unwrap();
        settled += resolved;
        let user = format!("soak{i}");
        let http = mada::http_client::client(Duration::from_secs(30)).unwrap();
        let mut done_on: HashMap<String, Vec<String>> = HashMap::new();
        for goal in &goals {
            let reply: Value = http
                .post(format!("{}/graphql", read.url))
                .bearer_auth(token(&user))
                .json(&json!({
                    "query": "query($g: ID!, $a: Token) { goal(id: $g, after: $a) { doneDates(from: \"2026-11-01\", to: \"2026-11-30\") } }",
                    "variables": { "g": goal, "a": last_token },
                }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let dates = reply["data"]["goal"]["doneDates"]
                .as_array()
                .unwrap_or_else(|| panic!("{user}'s goal {goal}: {reply}"))
                .iter()
                .map(|d| d.as_str().unwrap().to_owned())
                .collect();
            done_on.insert(goal.clone(), dates);
        }
        for ((goal, day), state) in &known {
            requests += 1;
            let Some(expected) = state else {
                unknown += 1;
                continue;
            };
            let date = format!("2026-11-{day:02}");
            let stored = done_on[goal].contains(&date);
            assert_eq!(stored, *expected, "{user}: goal {goal} on {date}");
            checked += 1;
        }
    }
    assert!(checked > 0, "no toggle was acknowledged");
    let pool = schema_pool(&schema).await;
    let head = assert_read_models_equal_a_rebuild(&pool).await;

    // Bounded: memory grew by less than half (and 64 MiB) from the first window to
    // the last; connections within the pool's 8, the lease's and the listener's.
    let (first, last) = (&footprints[0], footprints.last().unwrap());
    for (i, (name, _)) in processes.iter().enumerate() {
        let (from, to) = (first[i].0, last[i].0);
        assert!(
            to <= from + (from / 2).max(64 * 1024),
            "{name}: memory grew from {from} KiB to {to} KiB"
        );
        let most = footprints.iter().map(|f| f[i].1).max().unwrap_or(0);
        assert!(most <= 12, "{name}: {most} connections to the database");
    }
    eprintln!(
        "{checked} (goal, day) cells checked, {unknown} of {requests} unknown after a failed request \
         ({settled} settled by reading them back); read models equal a rebuild at {head}"
    );
    drop((write, read, workers));
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}
