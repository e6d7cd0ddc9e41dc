//! Network faults between the event store and PostgreSQL, through Toxiproxy
//! (`scripts/services.sh up toxiproxy`): latency with jitter, a bandwidth limit,
//! connections reset mid-request, and a black hole (a half-open connection that
//! never answers). Clients append and read while the fault comes and goes; every
//! call returns or fails within the store's deadline (nothing hangs), the history
//! of what they saw is linearizable (nothing acknowledged is lost, nothing
//! half-written shows), and once the fault is lifted the store works again.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Slow, TestDb};
use cqrs_testkit::faults::{history_under_fault, runner_under_fault};
use cqrs_testkit::toxiproxy::{Fault, Proxy};

const DEADLINE: Duration = Duration::from_secs(1);

/// `fault` on for `on`, off for 200 ms, while clients run.
async fn under(fault: Fault, name: &str, on: Duration) {
    let proxy = Arc::new(Proxy::new("127.0.0.1:5432"));
    let db = TestDb::through(8, Some(proxy.port())).await;
    let store = db.store().with_deadline(DEADLINE);
    let name = format!("postgres-{name}");
    history_under_fault(
        proxy,
        store,
        Slow(db.pool.clone()),
        fault,
        on,
        DEADLINE,
        &name,
    )
    .await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_jitter() {
    under(
        Fault::Latency { ms: 40, jitter: 30 },
        "latency",
        Duration::from_millis(400),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bandwidth_limit() {
    under(
        Fault::Bandwidth { kb_per_s: 4 },
        "bandwidth",
        Duration::from_millis(400),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_reset_mid_request() {
    under(
        Fault::Reset { after_ms: 30 },
        "reset",
        Duration::from_millis(400),
    )
    .await;
}

/// Longer than the deadline: calls caught in it are cut off by the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole() {
    under(Fault::BlackHole, "black-hole", DEADLINE * 3 / 2).await;
}

/// A runner into `PgReadModelStore` through the proxy while `fault` comes and goes.
async fn runner_under(fault: Fault, name: &str, on: Duration) {
    let proxy = Arc::new(Proxy::new("127.0.0.1:5432"));
    let db = TestDb::through(4, Some(proxy.port())).await;
    let store = db.read_models().with_deadline(DEADLINE);
    runner_under_fault(proxy, store, fault, on, name).await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_through_resets() {
    runner_under(
        Fault::Reset { after_ms: 30 },
        "reset",
        Duration::from_millis(400),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_through_a_black_hole() {
    runner_under(Fault::BlackHole, "black_hole", DEADLINE * 3 / 2).await;
}
