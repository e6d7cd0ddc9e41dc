//! Bulk appends: many streams, one transaction, all or nothing.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use common::TestDb;
use cqrs_core::{
    AppendRequest, Error, EventAppender, ExpectedVersion, LogReader, Position, StreamId,
    StreamReader, Version,
};
use cqrs_testkit::event_stores::raw;
use serde_json::json;
use uuid::Uuid;

fn import(streams: usize, per_stream: usize, expected: ExpectedVersion) -> Vec<AppendRequest> {
    (0..streams)
        .map(|s| {
            AppendRequest::new(
                format!("import-{s}"),
                expected,
                (0..per_stream)
                    .map(|n| {
                        raw(
                            "Imported",
                            json!({ "s": s, "n": n, "text": "l'été \\ \"x\"" }),
                        )
                    })
                    .collect(),
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
            vec![raw("Imported", json!({}))],
        ))
        .await
        .unwrap();

    let mut requests = import(200, 5, ExpectedVersion::Any);
    requests[0].expected = ExpectedVersion::NoStream;
    let ids: Vec<Uuid> = requests
        .iter()
        .flat_map(|r| r.events.iter().map(|e| e.event_id))
        .collect();
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
    assert_eq!(results[199].position, Some(Position(1001)));

    let s3 = store
        .read_stream(&StreamId::new("import-3"), Version::INITIAL, usize::MAX)
        .await
        .unwrap();
    assert_eq!(
        s3.iter().map(|e| e.version.0).collect::<Vec<_>>(),
        (1..=6).collect::<Vec<_>>()
    );
    assert_eq!(s3[5].position, results[3].position.unwrap());
    assert_eq!(s3[5].event.payload["text"], "l'été \\ \"x\"");
    let all = store.read_all(Position::START, usize::MAX).await.unwrap();
    assert_eq!(all.len(), 1001);
    assert!(
        all.windows(2)
            .all(|w| w[1].position.0 == w[0].position.0 + 1)
    );
    let stored: Vec<Uuid> = all[1..].iter().map(|e| e.event_id).collect();
    assert_eq!(stored, ids, "in request order, every event once");
    db.drop().await;
}

#[tokio::test]
async fn one_conflict_or_bad_request_writes_nothing() {
    let db = TestDb::new(4).await;
    let store = db.store();
    store
        .append(AppendRequest::new(
            "import-7",
            ExpectedVersion::NoStream,
            vec![raw("Imported", json!({}))],
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
    assert_eq!(store.head().await.unwrap(), Position(1));

    let mut twice = import(2, 1, ExpectedVersion::Any);
    twice[1].stream_id = twice[0].stream_id.clone();
    let err = store.append_many(twice).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");

    let mut commanded = import(2, 1, ExpectedVersion::Any);
    commanded[1].command_id = Some(Uuid::now_v7());
    let err = store.append_many(commanded).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");

    // An event id already stored fails on the server: a backend error, and the
    // streams before it in the call are rolled back too.
    let mut duplicate = import(3, 2, ExpectedVersion::Any);
    duplicate[2].events[1].event_id = duplicate[0].events[0].event_id;
    let err = store.append_many(duplicate).await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert_eq!(store.head().await.unwrap(), Position(1));
    assert!(store.append_many(Vec::new()).await.unwrap().is_empty());
    db.drop().await;
}
