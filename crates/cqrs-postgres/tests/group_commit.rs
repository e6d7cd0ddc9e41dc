//! Group commit: concurrent appends share transactions, and each still succeeds,
//! conflicts or is recognised as a duplicate on its own.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use common::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_writers_on_one_stream_conflict_and_lose_nothing() {
    let db = TestDb::new(16).await;
    let store = db.store().with_group_commit(2);
    cqrs_testkit::event_stores::racing_writers_lose_nothing(store.clone(), 32).await;
    let stats = store.group_commit_stats();
    assert!(
        stats.groups > 0 && stats.grouped_appends >= 2 * stats.groups,
        "32 writers at once formed groups: {stats:?}"
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_streams_and_duplicate_command_ids_in_the_same_groups() {
    let db = TestDb::new(16).await;
    let store = db.store().with_group_commit(2);
    cqrs_testkit::event_stores::grouped_appends_keep_their_own_outcomes(store.clone()).await;
    let stats = store.group_commit_stats();
    assert_eq!(
        stats.grouped_appends + stats.alone,
        64,
        "every append counted once, grouped or alone: {stats:?}"
    );
    assert!(
        stats.groups > 0,
        "64 appends at once formed groups: {stats:?}"
    );
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
    let store = db.store().with_group_commit(0);
    cqrs_testkit::event_stores::racing_writers_lose_nothing(store.clone(), 24).await;
    assert_eq!(
        store.group_commit_stats(),
        cqrs_core::GroupCommitStats::default(),
        "off: no append went through group commit"
    );
    db.drop().await;
    let db = TestDb::new(40).await;
    cqrs_testkit::event_stores::racing_command_ids_append_once(db.store().with_group_commit(0), 8)
        .await;
    db.drop().await;
}
