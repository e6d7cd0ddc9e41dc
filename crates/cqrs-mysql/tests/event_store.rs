//! The event store on MariaDB: the scenarios every event store runs, and what is
//! MySQL's own.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use common::TestDb;
use cqrs_core::{
    AppendRequest, Error, EventAppender, ExpectedVersion, Position, StreamId, StreamReader, Version,
};
use cqrs_testkit::event_stores::{self, raw};

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
    let db = TestDb::new(16).await;
    event_stores::racing_command_ids_append_once(db.store(), 16).await;
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
    let db = TestDb::new(4).await;
    event_stores::old_schema_versions_are_upcast(db.store()).await;
    db.drop().await;
}

/// Positions are dense: 1..=n, whatever was rolled back or refused.
#[tokio::test]
async fn positions_are_dense() {
    let db = TestDb::new(4).await;
    let store = db.store();
    let first = store
        .append(AppendRequest::new(
            "goal-1",
            ExpectedVersion::NoStream,
            vec![
                raw("A", serde_json::json!({})),
                raw("B", serde_json::json!({})),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(first.position, Some(Position(2)));
    let refused = store
        .append(AppendRequest::new(
            "goal-1",
            ExpectedVersion::NoStream,
            vec![raw("C", serde_json::json!({}))],
        ))
        .await;
    assert!(refused.is_err());
    let second = store
        .append(AppendRequest::new(
            "goal-2",
            ExpectedVersion::Any,
            vec![raw("A", serde_json::json!({}))],
        ))
        .await
        .unwrap();
    assert_eq!(
        second.position,
        Some(Position(3)),
        "the refused append took no position"
    );
    db.drop().await;
}

#[tokio::test]
async fn a_corrupt_payload_is_a_codec_error_naming_the_stream_and_version() {
    let db = TestDb::new(4).await;
    let store = db.store();
    store
        .append(AppendRequest::new(
            "goal-3",
            ExpectedVersion::Any,
            vec![
                raw("A", serde_json::json!({})),
                raw("B", serde_json::json!({})),
            ],
        ))
        .await
        .unwrap();
    sqlx::query("UPDATE cqrs_events SET payload = '{not json' WHERE position = 2")
        .execute(&db.pool)
        .await
        .unwrap();
    let error = store
        .read_stream(&StreamId::new("goal-3"), Version(0), 10)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::Codec { .. }), "{text}");
    assert!(
        text.contains("goal-3") && text.contains("version 2"),
        "{text}"
    );
    db.drop().await;
}

/// What the server cannot store whole is refused, not cut: an event type longer than
/// its column fails the append (and writes nothing); the widest schema version and
/// unusual text come back as they were.
#[tokio::test]
async fn values_come_back_whole_or_the_append_fails() {
    let db = TestDb::new(4).await;
    let store = db.store();
    let mut long = raw("x", serde_json::json!({}));
    long.event.event_type = "t".repeat(300);
    let refused = store
        .append(AppendRequest::new("s", ExpectedVersion::Any, vec![long]))
        .await;
    assert!(matches!(refused, Err(Error::Backend { .. })), "{refused:?}");
    let mut wide = raw(
        "Événement \u{1F600} \"quoted\" \\",
        serde_json::json!({ "a": null }),
    );
    wide.event.schema_version = u32::MAX;
    store
        .append(AppendRequest::new(
            "s",
            ExpectedVersion::NoStream,
            vec![wide.clone()],
        ))
        .await
        .unwrap();
    let read = store
        .read_stream(&StreamId::new("s"), Version::INITIAL, 10)
        .await
        .unwrap();
    assert_eq!(read.len(), 1, "the refused append wrote nothing");
    assert_eq!(read[0].event.event_type, wide.event.event_type);
    assert_eq!(read[0].event.schema_version, u32::MAX);
    assert_eq!(read[0].event.payload, wide.event.payload);
    assert_eq!(read[0].event_id, wide.event_id);
    db.drop().await;
}
