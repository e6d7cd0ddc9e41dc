//! Group commit: concurrent appends share transactions, and each still succeeds,
//! conflicts or is recognised as a duplicate on its own.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::collections::HashMap;

use common::TestDb;
use cqrs_core::{
    AppendRequest, EventAppender, ExpectedVersion, Metadata, NewEvent, RawEvent, StreamId,
    StreamReader, Version,
};
use serde_json::json;
use uuid::Uuid;

fn raw(n: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event: RawEvent {
            event_type: "G".into(),
            schema_version: 1,
            payload: json!({ "n": n }),
        },
        metadata: Metadata::new(),
    }
}

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
    let store = db.store().with_group_commit(2);
    let command = Uuid::now_v7();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                // Every eighth task sends the same command; the others their own streams.
                let request = if i % 8 == 0 {
                    AppendRequest::new("paid", ExpectedVersion::Any, vec![raw(i)])
                        .with_command_id(command)
                } else {
                    AppendRequest::new(format!("s-{}", i % 5), ExpectedVersion::Any, vec![raw(i)])
                };
                store.append(request).await.unwrap()
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let paid: Vec<_> = results
        .iter()
        .filter(|r| r.stream_id.as_str() == "paid")
        .collect();
    assert_eq!(
        paid.iter().filter(|r| !r.already_handled).count(),
        1,
        "the command was appended once"
    );
    assert!(
        paid.iter()
            .all(|r| r.position == paid[0].position && r.version == Version(1))
    );
    assert_eq!(
        store
            .read_stream(&StreamId::new("paid"), Version::INITIAL, usize::MAX)
            .await
            .unwrap()
            .len(),
        1
    );

    let log = common::settled_log(&store, &db.pool).await;
    assert_eq!(log.len(), 57);
    assert!(log.windows(2).all(|w| w[0].position < w[1].position));
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for event in &log {
        let last = versions.entry(event.stream_id.as_str()).or_insert(0);
        assert_eq!(event.version.0, *last + 1, "{} in order", event.stream_id);
        *last = event.version.0;
    }
    db.drop().await;
}
