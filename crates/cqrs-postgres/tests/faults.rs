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
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Slow, TestDb};
use cqrs_core::{AppendRequest, EventAppender, ExpectedVersion};
use cqrs_testkit::event_stores::raw;
use cqrs_testkit::history::{Mode, assert_linearizable};
use cqrs_testkit::linearizability::{Size, record_history};
use cqrs_testkit::toxiproxy::{Fault, Proxy};

const DEADLINE: Duration = Duration::from_secs(1);

/// Runs clients while `fault` is on for `on`, off for 200 ms, again and again.
async fn under(fault: Fault, name: &str, on: Duration) {
    let proxy = Arc::new(Proxy::new("127.0.0.1:5432"));
    let db = TestDb::through(8, Some(proxy.port())).await;
    let store = db.store().with_deadline(DEADLINE);
    // The fault comes and goes.
    let stop = Arc::new(AtomicBool::new(false));
    let toggler = {
        let (proxy, stop) = (proxy.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            let mut rounds = 0;
            while !stop.load(Ordering::Relaxed) {
                proxy.add(fault);
                std::thread::sleep(on);
                proxy.lift();
                std::thread::sleep(Duration::from_millis(200));
                rounds += 1;
            }
            rounds
        })
    };
    let size = Size {
        clients: 4,
        operations: 60,
        slow_appends: false,
        pause: Duration::from_millis(25),
        ..Size::default()
    };
    let history = {
        let store = store.clone();
        let appender = Slow(db.pool.clone());
        tokio::spawn(async move { record_history(store, appender, size, "fault").await })
    };
    // The history's final read waits for the fault to be lifted for good.
    let recorded = {
        let clients_done = tokio::time::timeout(Duration::from_secs(120), async {
            loop {
                if history.is_finished() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        clients_done.await.expect("the clients finished");
        stop.store(true, Ordering::Relaxed);
        history.await.unwrap()
    };
    let rounds = toggler.await.unwrap();
    proxy.lift();
    assert!(
        rounds > 0,
        "the fault did not come and go while clients ran"
    );
    assert!(
        recorded.longest < DEADLINE + Duration::from_millis(500),
        "{name}: a call took {:?}, past the deadline of {DEADLINE:?}",
        recorded.longest
    );
    assert_linearizable(
        &format!("postgres-{name}"),
        &recorded.operations,
        Mode::Whole,
    );
    // Recovered: an append goes through once the fault is gone.
    let recovered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let request = AppendRequest::new(
                "after",
                ExpectedVersion::Any,
                vec![raw("A", serde_json::json!({}))],
            );
            if store.append(request).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        recovered.is_ok(),
        "{name}: no append went through after the fault was lifted"
    );
    eprintln!(
        "{name}: {rounds} fault rounds, {} operations, {} appends cut off ({} took effect), longest call {:?}",
        recorded.operations.len(),
        recorded.unknown,
        recorded.unknown_applied,
        recorded.longest
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole() {
    // Longer than the deadline: calls caught in it are cut off by the deadline.
    under(Fault::BlackHole, "black-hole", DEADLINE * 3 / 2).await;
}
