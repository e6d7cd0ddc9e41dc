//! Test support for the adapters of this workspace.
//!
//! Adapter tests run against real servers, started by `scripts/services.sh up`
//! (which the test command, `scripts/test.sh`, runs first). This crate says where
//! those servers are (from the same environment variables the script prints, with
//! the script's defaults), names things uniquely so tests can run in parallel, and
//! turns "server not there" into a failure that says how to start it. A test is
//! never skipped because its server is missing.

use std::fmt::Display;

pub mod event_stores;
pub mod faults;
pub mod fcm;
pub mod history;
pub mod http;
pub mod kafka;
pub mod leases;
pub mod linearizability;
pub mod scenarios;
pub mod tally;
pub mod toxiproxy;

/// How to start the servers, for failure messages.
pub const HOW_TO_START: &str = "start the test servers with `scripts/services.sh up` (then `eval \"$(scripts/services.sh env)\"` \
     if you changed their ports), or run the whole suite with `scripts/test.sh`";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The PostgreSQL URL: `DATABASE_URL`, or the services script's default.
pub fn postgres_url() -> String {
    env_or("DATABASE_URL", "postgres://cqrs:cqrs@127.0.0.1:5432/cqrs")
}

/// The MySQL / MariaDB URL: `MYSQL_URL`, or the services script's default.
pub fn mysql_url() -> String {
    env_or("MYSQL_URL", "mysql://cqrs:cqrs@127.0.0.1:3306/cqrs")
}

/// The MongoDB URL: `MONGODB_URL`, or the services script's default.
pub fn mongodb_url() -> String {
    env_or("MONGODB_URL", "mongodb://127.0.0.1:27017/")
}

/// The broker's listener for fault tests (`KAFKA_FAULTY_LISTENER`): it advertises
/// [`kafka_proxied_brokers`], where a test puts a [`toxiproxy::Proxy`] in front of it
/// ([`toxiproxy::Proxy::at`]), so that every request of a client bootstrapped there
/// goes through the proxy.
pub fn kafka_faulty_listener() -> String {
    env_or("KAFKA_FAULTY_LISTENER", "127.0.0.1:9094")
}

/// Where the broker's fault-test listener tells clients to connect
/// (`KAFKA_PROXIED_BROKERS`): the address of a test's proxy.
pub fn kafka_proxied_brokers() -> String {
    env_or("KAFKA_PROXIED_BROKERS", "127.0.0.1:9095")
}

/// The Redis URL: `REDIS_URL`, or the services script's default.
pub fn redis_url() -> String {
    env_or("REDIS_URL", "redis://127.0.0.1:6379/")
}

/// The Kafka bootstrap servers: `KAFKA_BROKERS`, or the services script's default.
pub fn kafka_brokers() -> String {
    env_or("KAFKA_BROKERS", "127.0.0.1:9092")
}

/// Toxiproxy's HTTP API: `TOXIPROXY_URL`, or the services script's default.
pub fn toxiproxy_url() -> String {
    env_or("TOXIPROXY_URL", "http://127.0.0.1:8474")
}

/// Kafka Connect's REST API: `CONNECT_URL`, or the services script's default.
pub fn connect_url() -> String {
    env_or("CONNECT_URL", "http://127.0.0.1:8083")
}

/// The `database.*` settings of a Debezium connector for the test PostgreSQL server
/// (from [`postgres_url`]): hostname, port, user, password, dbname. The password is
/// the test server's, not a secret.
pub fn debezium_database() -> Vec<(&'static str, String)> {
    let url = postgres_url();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let (credentials, rest) = rest.split_once('@').unwrap_or(("", rest));
    let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
    let (address, database) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = address.split_once(':').unwrap_or((address, "5432"));
    vec![
        ("database.hostname", host.to_owned()),
        ("database.port", port.to_owned()),
        ("database.user", user.to_owned()),
        ("database.password", password.to_owned()),
        (
            "database.dbname",
            database.split('?').next().unwrap_or_default().to_owned(),
        ),
    ]
}

/// A name no other test (or earlier run) uses, for a database, key prefix, topic or
/// consumer group: `{prefix}_{32 hex digits}`.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// Fails the test: `server` at `address` cannot be reached, and how to start it.
///
/// # Panics
/// Always: that is its purpose.
#[track_caller]
pub fn server_unreachable(server: &str, address: &str, error: impl Display) -> ! {
    panic!("cannot reach {server} at {address}: {error}\n{HOW_TO_START}")
}

/// Unwraps a connection result, or fails the test with [`server_unreachable`]'s message.
pub trait OrUnreachable<T> {
    /// The value, or a failure naming `server` at `address` and how to start it.
    fn or_unreachable(self, server: &str, address: &str) -> T;
}

impl<T, E: Display> OrUnreachable<T> for Result<T, E> {
    #[track_caller]
    fn or_unreachable(self, server: &str, address: &str) -> T {
        match self {
            Ok(value) => value,
            Err(error) => server_unreachable(server, address, error),
        }
    }
}

/// Runs `scripts/services.sh {action} {server}` (`stop`, `start`, ...), for tests that
/// stop a server mid-run. Such a test must be alone in its test binary: the others
/// would lose the server too.
///
/// # Panics
/// If the script fails.
pub fn services(action: &str, server: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/services.sh");
    let status = std::process::Command::new("bash")
        .args([script, action, server])
        .status()
        .expect("run scripts/services.sh");
    assert!(
        status.success(),
        "scripts/services.sh {action} {server} failed"
    );
}

/// A small pseudo-random sequence (a linear congruential generator): tests that
/// choose delays and outcomes at random replay the same choices from the same seed.
#[derive(Debug, Clone)]
pub struct Lcg(pub u64);

impl Lcg {
    /// The next number below `n` (at least 1).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}
