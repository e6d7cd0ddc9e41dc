//! The event store against a real PostgreSQL: the scenarios every event store runs
//! (appends, conflicts under concurrent writers, idempotent commands, snapshots,
//! upcasting on load), and what is PostgreSQL's own.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use common::TestDb;
use cqrs_testkit::event_stores;

#[tokio::test]
async fn appends_and_reads_back_streams_and_the_log() {
    let db = TestDb::new(4).await;
    event_stores::appends_and_reads_back(db.store()).await;
    db.drop().await;
}

#[tokio::test]
async fn a_wrong_expected_version_is_a_typed_conflict_and_writes_nothing() {
    let db = TestDb::new(4).await;
    event_stores::conflicts_write_nothing(db.store()).await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_to_one_stream_conflict_and_lose_nothing() {
    let db = TestDb::new(24).await;
    event_stores::racing_writers_lose_nothing(db.store(), 24).await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_id_is_appended_once_even_when_copies_race() {
    let db = TestDb::new(8).await;
    event_stores::racing_command_ids_append_once(db.store(), 8).await;
    db.drop().await;
}

#[tokio::test]
async fn an_append_inside_a_transaction_that_already_wrote_is_refused() {
    let db = TestDb::new(2).await;
    let mut tx = db.pool.begin().await.unwrap();
    sqlx::query("CREATE TEMP TABLE scratch (x int)")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("INSERT INTO scratch VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query("SELECT * FROM cqrs_append('s', -1, NULL, ARRAY[gen_random_uuid()], ARRAY['A'], ARRAY[1], ARRAY['{}'::jsonb], ARRAY['{}'::jsonb])")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("first write of its transaction"),
        "{err}"
    );
    drop(tx);
    db.drop().await;
}

#[tokio::test]
async fn snapshots_make_a_long_stream_load_like_a_replay() {
    let db = TestDb::new(4).await;
    event_stores::snapshots_load_like_a_replay(db.store()).await;
    db.drop().await;
}

#[tokio::test]
async fn old_schema_versions_are_upcast_when_loaded() {
    let db = TestDb::new(2).await;
    event_stores::old_schema_versions_are_upcast(db.store()).await;
    db.drop().await;
}
