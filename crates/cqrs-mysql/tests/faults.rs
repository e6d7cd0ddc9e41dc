//! Network faults between the event store and MySQL (MariaDB), through Toxiproxy
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
use cqrs_mysql::MySqlLease;
use cqrs_testkit::faults::{FaultReport, history_under_fault, read_model_store_through_faults};
use cqrs_testkit::leases::lease_holder_in_a_black_hole;
use cqrs_testkit::toxiproxy::{Fault, Proxy};

const DEADLINE: Duration = Duration::from_secs(1);

/// `fault` on for `on`, off for 200 ms, while clients run.
async fn under(fault: Fault, name: &str, on: Duration) -> FaultReport {
    let proxy = Arc::new(Proxy::new("127.0.0.1:3306"));
    let db = TestDb::through(8, Some(proxy.port())).await;
    let store = db.store().with_deadline(DEADLINE);
    let name = format!("mysql-{name}");
    let report = history_under_fault(
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
    report
}

/// A slow link fails nothing: every call is far inside the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_jitter() {
    let on = Duration::from_millis(400);
    let report = under(Fault::Latency { ms: 40, jitter: 30 }, "latency", on).await;
    assert_eq!(report.cut_off, 0, "{report:?}");
}

/// A narrow link fails nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bandwidth_limit() {
    let on = Duration::from_millis(400);
    let report = under(Fault::Bandwidth { kb_per_s: 4 }, "bandwidth", on).await;
    assert_eq!(report.cut_off, 0, "{report:?}");
}

/// Resets cut appends off mid-request; the history stays linearizable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_reset_mid_request() {
    let on = Duration::from_millis(400);
    let report = under(Fault::Reset { after_ms: 30 }, "reset", on).await;
    assert!(report.cut_off > 0, "no append was cut off: {report:?}");
}

/// Longer than the deadline: calls caught in it are cut off by the deadline (the
/// longest call lasts the deadline, no longer: the harness checks the upper bound).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole() {
    let report = under(Fault::BlackHole, "black-hole", DEADLINE * 3 / 2).await;
    assert!(
        report.longest >= DEADLINE,
        "no call met the deadline: {report:?}"
    );
    assert!(report.cut_off > 0, "no append was cut off: {report:?}");
}

/// A runner into `MySqlReadModelStore` through resets and a black hole, and every
/// call of the store into a black hole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_model_store_through_faults() {
    let proxy = Arc::new(Proxy::new("127.0.0.1:3306"));
    let db = TestDb::through(4, Some(proxy.port())).await;
    let store = db.read_models().with_deadline(DEADLINE);
    read_model_store_through_faults(proxy, store, DEADLINE).await;
    db.drop().await;
}

/// A lease holder whose session falls into a black hole steps down, and the other
/// runner takes over while the hole is on; they never write at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holder_in_a_black_hole_steps_down() {
    let proxy = Proxy::new("127.0.0.1:3306");
    let cut_off = TestDb::through(2, Some(proxy.port())).await;
    let direct = TestDb::new(2).await;
    let report = lease_holder_in_a_black_hole(
        &proxy,
        MySqlLease::new(cut_off.pool.clone()),
        MySqlLease::new(direct.pool.clone()),
        Duration::from_secs(1),
        Duration::from_secs(4),
        "mysql_lease",
    )
    .await;
    assert!(report.cut_off_commits > 0, "{report:?}");
    cut_off.drop().await;
    direct.drop().await;
}
