//! The API split into roles, as separate processes on one PostgreSQL schema (or
//! one MySQL database, the workers fed from its binlog): a write process, a read
//! process that forwards mutations to it, and two projection workers behind
//! leases. The same flows as against `all`, through the read endpoint; then the
//! leading worker is SIGKILLed and the standby takes over.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::binary::serve;
use crate::harness::{Client, Socket};

/// The HS256 secret the multi-process tests give `mada serve`.
pub const SECRET: &str = "a secret of thirty-two bytes or more, for tests";

/// A `mada project` process and its health URL.
pub struct Worker {
    pub child: Child,
    pub url: String,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The flags that put `mada` on `schema` of the PostgreSQL test server.
fn on_postgres(schema: &str) -> Vec<String> {
    on_postgres_at(&cqrs_testkit::postgres_url(), schema)
}

/// The flags that put `mada` on `schema` of the PostgreSQL server at `url`.
pub fn on_postgres_at(url: &str, schema: &str) -> Vec<String> {
    ["--store", "postgres", "--database-url"]
        .map(str::to_owned)
        .into_iter()
        .chain([url.to_owned(), "--pg-schema".into(), schema.into()])
        .collect()
}

/// The flags that put `mada` on `database` of the MySQL test server.
fn on_mysql(database: &str) -> Vec<String> {
    ["--store", "mysql", "--mysql-url"]
        .map(str::to_owned)
        .into_iter()
        .chain([
            cqrs_testkit::mysql_url(),
            "--mysql-database".into(),
            database.into(),
        ])
        .collect()
}

/// Starts `mada project` on `schema` (lease time to live 2 s), with `extra` flags.
pub fn worker(schema: &str, extra: &[&str]) -> Worker {
    worker_on(&on_postgres(schema), extra)
}

/// Starts `mada project` on the stores `store` names (lease time to live 2 s), with
/// `extra` flags.
pub fn worker_on(store: &[String], extra: &[&str]) -> Worker {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mada"))
        .arg("project")
        .args(store)
        .args(["--listen", "127.0.0.1:0", "--project-lease-ttl", "2"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    let url = line
        .split("health on ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix("/)"))
        .unwrap_or_else(|| panic!("no health URL in {line:?}"))
        .to_owned();
    std::thread::spawn(move || for _ in lines {});
    Worker { child, url }
}

/// `mada migrate` on `schema` of the test server.
pub fn migrate(schema: &str) {
    migrate_on(&on_postgres(schema));
}

/// `mada migrate` on the stores `store` names.
fn migrate_on(store: &[String]) {
    let migrated = Command::new(env!("CARGO_BIN_EXE_mada"))
        .arg("migrate")
        .args(store)
        .output()
        .unwrap();
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
}

/// The index of the worker that leads the plan projection (waits up to 20 s).
pub async fn leading(http: &reqwest::Client, workers: &[Worker]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for (i, w) in workers.iter().enumerate() {
            if leads(http, w).await {
                return i;
            }
        }
        assert!(Instant::now() < deadline, "no worker leads");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `worker` leads the plan projection (its `/metrics` say so).
pub async fn leads(http: &reqwest::Client, worker: &Worker) -> bool {
    let Ok(reply) = http.get(format!("{}/metrics", worker.url)).send().await else {
        return false;
    };
    let text = reply.text().await.unwrap_or_default();
    text.lines()
        .any(|l| l.starts_with("mada_projection_leader{projection=\"plan\"} 1"))
}

pub fn token(user: &str) -> String {
    mada::server::auth::hs256_token(SECRET.as_bytes(), user, Duration::from_secs(600)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_and_read_roles_with_workers_serve_the_same_flows_and_survive_a_worker_kill() {
    let _heavy = crate::harness::HEAVY.lock().await;
    let schema = cqrs_testkit::unique_name("mada");
    roles_serve_the_flows_and_survive_a_worker_kill(&on_postgres(&schema), &[]).await;
    let pool = sqlx::PgPool::connect(&cqrs_testkit::postgres_url())
        .await
        .unwrap();
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}

/// The same on MySQL, the workers fed from the binlog (`--sync cdc`): the standby
/// takes the lease (`GET_LOCK`, freed with the killed worker's session) and its
/// binlog reader resumes where the killed one stored its coordinate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_roles_run_on_mysql_with_workers_fed_from_the_binlog() {
    let _heavy = crate::harness::HEAVY.lock().await;
    let database = cqrs_testkit::unique_name("mada");
    roles_serve_the_flows_and_survive_a_worker_kill(&on_mysql(&database), &["--sync", "cdc"]).await;
    let url = cqrs_testkit::mysql_url();
    let pool = sqlx::MySqlPool::connect(&url).await.unwrap();
    let readers: Vec<(Vec<u8>, u64)> = sqlx::query_as(&format!(
        "SELECT name, position FROM {database}.cqrs_binlog_readers ORDER BY name"
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    let names: Vec<String> = readers
        .iter()
        .map(|(name, _)| String::from_utf8_lossy(name).into_owned())
        .collect();
    assert_eq!(
        names,
        [format!("{database}_categories"), format!("{database}_plan")],
        "each projection's binlog reader stored its coordinate"
    );
    assert!(readers.iter().all(|(_, position)| *position > 0));
    sqlx::query(&format!("DROP DATABASE {database}"))
        .execute(&pool)
        .await
        .unwrap();
}

/// Write and read roles and two workers (`worker_flags`) on `store`: the flows
/// through the read endpoint, then a SIGKILL of the leading worker.
async fn roles_serve_the_flows_and_survive_a_worker_kill(store: &[String], worker_flags: &[&str]) {
    migrate_on(store);
    let workers = [
        worker_on(store, worker_flags),
        worker_on(store, worker_flags),
    ];
    let envs = [("MADA_JWT_SECRET", SECRET)];
    let base: Vec<&str> = std::iter::once("serve")
        .chain(store.iter().map(String::as_str))
        .collect();
    let write = serve(&[&base[..], &["--role", "write"]].concat(), &envs, false);
    let read = serve(
        &[&base[..], &["--role", "read", "--write-url", &write.url]].concat(),
        &envs,
        false,
    );
    assert!(read.printed.contains("role read"), "{}", read.printed);

    // Everything through the read endpoint: mutations are forwarded.
    let ann = Client::new(&read.url, Some(token("ann")));
    let health = ann.category("Health").await;
    let (run, token_) = ann.goal("Run", &health, "2026-11-01").await;
    let today = ann.today("2026-11-25", Some(&token_)).await;
    assert_eq!(
        today["total"], 1,
        "the read role sees the write role's write by token"
    );
    let mut socket = Socket::signed_in(&read.url, &token("ann")).await;
    socket.subscribe_today("1", "2026-11-25").await;
    assert_eq!(
        socket.next_today(Duration::from_secs(5)).await.unwrap()["done"],
        0
    );
    let done = ann
        .gql(
            "mutation($g: ID!) { completeGoal(id: $g, date: \"2026-11-25\") { token } }",
            json!({ "g": run }),
        )
        .await;
    done.data();
    let pushed = socket.next_today(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        pushed["done"], 1,
        "the read role's subscription follows the workers"
    );
    // A business refusal comes back from the write role as it is.
    let refused = ann
        .gql(
            "mutation($g: ID!) { completeGoal(id: $g, date: \"2026-10-01\") { token } }",
            json!({ "g": run }),
        )
        .await;
    assert_eq!(refused.code(), "NOT_SCHEDULED");

    // SIGKILL the leading worker: the standby takes over within the lease's 2 s.
    let http = mada::http_client::client(Duration::from_secs(5)).unwrap();
    let leader = leading(&http, &workers).await;
    let [mut first, mut second] = workers;
    let (dead, standby) = if leader == 0 {
        (&mut first, &second)
    } else {
        (&mut second, &first)
    };
    dead.child.kill().unwrap();
    dead.child.wait().unwrap();
    let killed = Instant::now();
    for day in 1..=5 {
        let date = format!("2026-11-{day:02}");
        let token_ = ann.complete(&run, &date).await;
        let done = ann.done_in_november(&token_).await;
        assert_eq!(done, 1 + day, "every write is read back after the kill");
    }
    assert!(leads(&http, standby).await, "the standby leads now");
    println!(
        "the standby took over; five writes read back {:?} after the kill",
        killed.elapsed()
    );
    drop((write, read, first, second));
}
