//! Network faults between a projection runner's read-model store and Redis, through
//! Toxiproxy (`scripts/services.sh up toxiproxy`): connections reset mid-request and
//! a black hole (a half-open connection that never answers). The runner retries
//! through them, catches up once they are lifted, and its read model equals a
//! rebuild (`cqrs_testkit::faults::runner_under_fault`).

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::sync::Arc;
use std::time::Duration;

use cqrs_redis::RedisReadModelStore;
use cqrs_testkit::faults::{FaultReport, read_model_calls_in_a_black_hole, runner_under_fault};
use cqrs_testkit::toxiproxy::{Fault, Proxy};
use cqrs_testkit::{OrUnreachable, unique_name};

const DEADLINE: Duration = Duration::from_secs(1);

async fn runner_under(fault: Fault, name: &str, on: Duration) -> FaultReport {
    let proxy = Arc::new(Proxy::new("127.0.0.1:6379"));
    let url = format!("redis://{}", proxy.listen());
    let prefix = unique_name("cqrs_faults");
    let store = RedisReadModelStore::connect(&url)
        .await
        .or_unreachable("Redis (through Toxiproxy)", &url)
        .with_prefix(&prefix)
        .with_deadline(DEADLINE);
    let report = runner_under_fault(proxy.clone(), store.clone(), fault, on, name).await;
    common::drop_keys(&mut store.connection(), &prefix).await;
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_through_resets() {
    let on = Duration::from_millis(400);
    let report = runner_under(Fault::Reset { after_ms: 30 }, "reset", on).await;
    assert!(
        report.retries > 0,
        "the runner never met the resets: {report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_through_a_black_hole() {
    let report = runner_under(Fault::BlackHole, "black_hole", DEADLINE * 3 / 2).await;
    assert!(
        report.retries > 0,
        "the runner never met the black hole: {report:?}"
    );
}

/// Every call meets a black hole: each is cut off at the deadline, none waits for
/// an answer that never comes, and the store works again once it is lifted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_has_a_deadline() {
    let proxy = Proxy::new("127.0.0.1:6379");
    let url = format!("redis://{}", proxy.listen());
    let prefix = unique_name("cqrs_faults");
    let store = RedisReadModelStore::connect(&url)
        .await
        .or_unreachable("Redis (through Toxiproxy)", &url)
        .with_prefix(&prefix)
        .with_deadline(DEADLINE);
    read_model_calls_in_a_black_hole(&proxy, &store, DEADLINE).await;
    common::drop_keys(&mut store.connection(), &prefix).await;
}
