//! Histories of concurrent appends and reads on MySQL (MariaDB), checked for
//! linearizability by an independent checker (Porcupine, `reliability/checker`).
//! The checker's power to reject is shown on PostgreSQL with two broken stores
//! (`crates/cqrs-postgres/tests/linearizability.rs`); the model is the same.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use common::{Slow, TestDb};
use cqrs_testkit::history::{Mode, assert_linearizable};
use cqrs_testkit::linearizability::{Size, read_beside_an_open_append, record_history, scale};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_and_reads_are_linearizable() {
    let db = TestDb::new(16).await;
    let operations = record_history(db.store(), Slow(db.pool.clone()), Size::default(), "lin")
        .await
        .operations;
    assert!(operations.len() > 200, "{} operations", operations.len());
    assert_linearizable("mysql-concurrent", &operations, Mode::Whole);
    db.drop().await;
}

/// Enough clients at once that appends queue for groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grouped_appends_and_reads_are_linearizable() {
    let db = TestDb::new(40).await;
    let store = db.store();
    let size = Size {
        clients: 32,
        operations: 10 * scale(),
        streams: 4,
        ..Size::default()
    };
    let operations = record_history(store.clone(), Slow(db.pool.clone()), size, "grp")
        .await
        .operations;
    let stats = store.group_commit_stats();
    assert!(stats.groups > 0, "appends were grouped: {stats:?}");
    // 32 clients at once: too many commuting operations for the whole search.
    assert_linearizable("mysql-grouped", &operations, Mode::Split);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_log_read_beside_an_open_append_is_linearizable() {
    let db = TestDb::new(8).await;
    let operations = read_beside_an_open_append(db.store(), Slow(db.pool.clone()), "open").await;
    assert_linearizable("mysql-open-append", &operations, Mode::Whole);
    db.drop().await;
}

/// While clients append and read, their sessions are killed on the server (`KILL
/// CONNECTION`) every 15 ms, and clients give up on one append in three after 0–3
/// ms. Appends whose outcome their client could not know are resolved from the
/// final log; the history stays linearizable.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_stay_linearizable_while_sessions_are_killed() {
    let db = std::sync::Arc::new(TestDb::new(16).await);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = {
        let (db, stop) = (db.clone(), stop.clone());
        tokio::spawn(async move {
            let mut killed = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                killed += db.kill_busy_sessions().await;
                tokio::time::sleep(std::time::Duration::from_millis(15)).await;
            }
            killed
        })
    };
    let size = Size {
        clients: 6,
        operations: 60 * scale(),
        slow_appends: false,
        give_up: true,
        ..Size::default()
    };
    let recorded = record_history(db.store(), Slow(db.pool.clone()), size, "killed").await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let killed = killer.await.unwrap();
    assert!(killed > 0, "no session was killed");
    assert!(
        recorded.unknown > recorded.unknown_applied && recorded.unknown_applied > 0,
        "appends cut off both before and after they took effect: {} cut off, {} took effect",
        recorded.unknown,
        recorded.unknown_applied
    );
    assert_linearizable("mysql-killed", &recorded.operations, Mode::Whole);
    eprintln!(
        "{killed} sessions killed; {} appends cut off, {} of them took effect",
        recorded.unknown, recorded.unknown_applied
    );
    std::sync::Arc::try_unwrap(db).ok().unwrap().drop().await;
}
