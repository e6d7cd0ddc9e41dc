//! The event store on MariaDB: appends, conflicts, command ids, snapshots, reads.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use common::TestDb;
use cqrs_core::{
    AppendRequest, CommandLog, Error, EventAppender, ExpectedVersion, LogReader, Metadata,
    NewEvent, Position, RawEvent, Snapshot, SnapshotStore, StreamId, StreamReader, Version,
};
use uuid::Uuid;

fn raw(event_type: &str, payload: serde_json::Value) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event: RawEvent {
            event_type: event_type.into(),
            schema_version: 1,
            payload,
        },
        metadata: Metadata::new().with_user("ann"),
    }
}

#[tokio::test]
async fn appends_and_reads_back_streams_and_the_log() {
    let db = TestDb::new(4).await;
    let store = db.store();
    let first = store
        .append(AppendRequest::new(
            "goal-1",
            ExpectedVersion::NoStream,
            vec![
                raw("Created", serde_json::json!({"title": "Run", "n": 1})),
                raw("Renamed", serde_json::json!("Jog")),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(first.previous_version, Version(0));
    assert_eq!(first.version, Version(2));
    assert_eq!(first.position, Some(Position(2)));
    let second = store
        .append(AppendRequest::new(
            "goal-2",
            ExpectedVersion::Any,
            vec![raw("Created", serde_json::json!({"title": "Read"}))],
        ))
        .await
        .unwrap();
    assert_eq!(second.position, Some(Position(3)));
    let stream = store
        .read_stream(&StreamId::new("goal-1"), Version(0), 10)
        .await
        .unwrap();
    assert_eq!(stream.len(), 2);
    assert_eq!(
        stream[0].event.payload,
        serde_json::json!({"title": "Run", "n": 1})
    );
    assert_eq!(stream[1].event.payload, serde_json::json!("Jog"));
    assert_eq!(stream[1].version, Version(2));
    assert_eq!(stream[0].metadata.user_id.as_deref(), Some("ann"));
    let log = store.read_all(Position(1), 10).await.unwrap();
    let positions: Vec<u64> = log.iter().map(|e| e.position.0).collect();
    assert_eq!(positions, [2, 3]);
    assert_eq!(log[1].stream_id.as_str(), "goal-2");
    assert_eq!(store.head().await.unwrap(), Position(3));
    db.drop().await;
}

#[tokio::test]
async fn a_wrong_expected_version_is_a_typed_conflict_and_writes_nothing() {
    let db = TestDb::new(4).await;
    let store = db.store();
    store
        .append(AppendRequest::new(
            "s",
            ExpectedVersion::Any,
            vec![raw("A", serde_json::json!({}))],
        ))
        .await
        .unwrap();
    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(Version(5)),
    ] {
        let error = store
            .append(AppendRequest::new(
                "s",
                expected,
                vec![raw("B", serde_json::json!({}))],
            ))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                Error::Conflict {
                    actual: Version(1),
                    ..
                }
            ),
            "{error}"
        );
    }
    assert_eq!(store.head().await.unwrap(), Position(1), "nothing written");
    db.drop().await;
}

#[tokio::test]
async fn a_command_id_is_appended_once_even_when_copies_race() {
    let db = TestDb::new(20).await;
    let store = db.store();
    let command = Uuid::now_v7();
    let copies: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append(
                        AppendRequest::new(
                            "racing",
                            ExpectedVersion::Any,
                            vec![raw("Done", serde_json::json!({}))],
                        )
                        .with_command_id(command),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut handled = 0;
    for copy in copies {
        let result = copy.await.unwrap();
        assert_eq!(
            result.version,
            Version(1),
            "every copy answers the one result"
        );
        assert_eq!(result.position, Some(Position(1)));
        handled += usize::from(result.already_handled);
    }
    assert_eq!(
        handled, 15,
        "one copy appended, fifteen were told it was done"
    );
    assert_eq!(store.head().await.unwrap(), Position(1));
    let logged = store.handled_command(command).await.unwrap().unwrap();
    assert_eq!(logged.version, Version(1));
    db.drop().await;
}

#[tokio::test]
async fn concurrent_writers_to_one_stream_conflict_and_lose_nothing() {
    let db = TestDb::new(20).await;
    let store = db.store();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut written = 0;
                while written < 10 {
                    let version = store
                        .read_stream(&StreamId::new("shared"), Version(0), 1000)
                        .await
                        .unwrap()
                        .len() as u64;
                    let request = AppendRequest::new(
                        "shared",
                        ExpectedVersion::Exact(Version(version)),
                        vec![raw("Tick", serde_json::json!({"writer": w}))],
                    );
                    match store.append(request).await {
                        Ok(_) => written += 1,
                        Err(Error::Conflict { .. }) => {}
                        Err(other) => panic!("{other}"),
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let stream = store
        .read_stream(&StreamId::new("shared"), Version(0), 1000)
        .await
        .unwrap();
    assert_eq!(stream.len(), 80, "every acknowledged append is there");
    assert!(
        stream
            .iter()
            .enumerate()
            .all(|(i, e)| e.version.0 == i as u64 + 1)
    );
    assert_eq!(
        store.head().await.unwrap(),
        Position(80),
        "positions are dense"
    );
    db.drop().await;
}

#[tokio::test]
async fn snapshots_keep_the_newest() {
    let db = TestDb::new(4).await;
    let store = db.store();
    let stream = StreamId::new("goal-9");
    assert!(store.load_snapshot(&stream).await.unwrap().is_none());
    let snapshot = |version: u64| Snapshot {
        stream_id: stream.clone(),
        version: Version(version),
        schema: 2,
        state: serde_json::json!({"v": version}),
        taken_at: chrono::Utc::now(),
    };
    store.save_snapshot(snapshot(5)).await.unwrap();
    store.save_snapshot(snapshot(3)).await.unwrap();
    let loaded = store.load_snapshot(&stream).await.unwrap().unwrap();
    assert_eq!((loaded.version, loaded.schema), (Version(5), 2));
    assert_eq!(loaded.state, serde_json::json!({"v": 5}));
    store.save_snapshot(snapshot(7)).await.unwrap();
    assert_eq!(
        store.load_snapshot(&stream).await.unwrap().unwrap().version,
        Version(7)
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
