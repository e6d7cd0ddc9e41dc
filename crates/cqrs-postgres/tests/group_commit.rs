//! Group commit: concurrent appends share transactions, and each still succeeds,
//! conflicts or is recognised as a duplicate on its own.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use common::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_writers_on_one_stream_conflict_and_lose_nothing() {
    let db = TestDb::new(16).await;
    cqrs_testkit::event_stores::racing_writers_lose_nothing(db.store().with_group_commit(2), 32)
        .await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_streams_and_duplicate_command_ids_in_the_same_groups() {
    let db = TestDb::new(16).await;
    cqrs_testkit::event_stores::grouped_appends_keep_their_own_outcomes(
        db.store().with_group_commit(2),
    )
    .await;
    db.drop().await;
}

/// Group commit is on by default; the shared scenarios also run with it off.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_shared_scenarios_pass_without_group_commit() {
    let db = TestDb::new(40).await;
    let store = || db.store().with_group_commit(0);
    cqrs_testkit::event_stores::appends_and_reads_back(store()).await;
    db.drop().await;
    let db = TestDb::new(40).await;
    cqrs_testkit::event_stores::racing_writers_lose_nothing(db.store().with_group_commit(0), 24)
        .await;
    db.drop().await;
    let db = TestDb::new(40).await;
    cqrs_testkit::event_stores::racing_command_ids_append_once(db.store().with_group_commit(0), 8)
        .await;
    db.drop().await;
}
