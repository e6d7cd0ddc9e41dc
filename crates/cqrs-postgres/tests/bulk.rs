//! Bulk appends: many streams, one transaction, all or nothing.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use common::TestDb;
use cqrs_core::{
    AppendRequest, Error, EventAppender, ExpectedVersion, Metadata, NewEvent, RawEvent, StreamId,
    StreamReader, Version,
};
use serde_json::json;
use uuid::Uuid;

fn event(n: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event: RawEvent {
            event_type: "Imported".into(),
            schema_version: 1,
            payload: json!({ "n": n }),
        },
        metadata: Metadata::new(),
    }
}

fn import(streams: usize, per_stream: usize, expected: ExpectedVersion) -> Vec<AppendRequest> {
    (0..streams)
        .map(|s| {
            AppendRequest::new(
                format!("import-{s}"),
                expected,
                (0..per_stream).map(event).collect(),
            )
        })
        .collect()
}

#[tokio::test]
async fn many_streams_are_appended_in_one_transaction() {
    let db = TestDb::new(4).await;
    let store = db.store();
    store
        .append(AppendRequest::new(
            "import-3",
            ExpectedVersion::NoStream,
            vec![event(99)],
        ))
        .await
        .unwrap();

    let mut requests = import(200, 5, ExpectedVersion::Any);
    requests[0].expected = ExpectedVersion::NoStream;
    let results = store.append_many(requests).await.unwrap();
    assert_eq!(results.len(), 200);
    assert_eq!(
        (results[0].previous_version, results[0].version),
        (Version(0), Version(5))
    );
    assert_eq!(
        (results[3].previous_version, results[3].version),
        (Version(1), Version(6))
    );

    let s3 = store
        .read_stream(&StreamId::new("import-3"), Version::INITIAL, usize::MAX)
        .await
        .unwrap();
    assert_eq!(
        s3.iter().map(|e| e.version.0).collect::<Vec<_>>(),
        (1..=6).collect::<Vec<_>>()
    );
    assert_eq!(s3[5].position, results[3].position.unwrap());
    let all = common::settled_log(&store, &db.pool).await;
    assert_eq!(all.len(), 1001);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    db.drop().await;
}

#[tokio::test]
async fn one_conflict_writes_nothing() {
    let db = TestDb::new(4).await;
    let store = db.store();
    store
        .append(AppendRequest::new(
            "import-7",
            ExpectedVersion::NoStream,
            vec![event(0)],
        ))
        .await
        .unwrap();
    let err = store
        .append_many(import(20, 3, ExpectedVersion::NoStream))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict { ref stream_id, actual: Version(1), .. } if stream_id.as_str() == "import-7"),
        "{err}"
    );
    assert_eq!(common::settled_log(&store, &db.pool).await.len(), 1);

    let mut twice = import(2, 1, ExpectedVersion::Any);
    twice[1].stream_id = twice[0].stream_id.clone();
    let err = store.append_many(twice).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    db.drop().await;
}
