//! Subscriptions never skip an event, whatever order concurrent transactions commit
//! in.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::time::Duration;

use common::{Slow, TestDb};
use cqrs_core::{EventSubscriber, Position};
use cqrs_testkit::event_stores;
use futures::StreamExt;
use uuid::Uuid;

const WRITERS: usize = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tailing_subscriber_gets_every_committed_event_exactly_once_in_order() {
    let db = TestDb::new(WRITERS as u32 + 8).await;
    event_stores::no_event_is_skipped_under_random_commit_order(
        db.store(),
        Slow(db.pool.clone()),
        WRITERS,
    )
    .await;
    db.drop().await;
}

#[tokio::test]
async fn events_behind_an_open_transaction_wait_for_it() {
    let db = TestDb::new(4).await;
    let store = db.store();
    let mut open = db.pool.begin().await.unwrap();
    sqlx::query("SELECT * FROM cqrs_append('early', -1, NULL, ARRAY[gen_random_uuid()], ARRAY['A'], ARRAY[1], ARRAY['{}'::jsonb], ARRAY['{}'::jsonb])")
        .execute(&mut *open)
        .await
        .unwrap();
    // A later transaction commits first.
    sqlx::query("SELECT * FROM cqrs_append('late', -1, NULL, ARRAY[gen_random_uuid()], ARRAY['B'], ARRAY[1], ARRAY['{}'::jsonb], ARRAY['{}'::jsonb])")
        .execute(&db.pool)
        .await
        .unwrap();
    let mut subscription = store.subscribe(Position::START, 10);
    let early = tokio::time::timeout(Duration::from_millis(400), subscription.next()).await;
    assert!(
        early.is_err(),
        "nothing is delivered while a lower position may still commit"
    );

    open.commit().await.unwrap();
    let mut batch = Vec::new();
    while batch.len() < 2 {
        let next = tokio::time::timeout(Duration::from_secs(10), subscription.next()).await;
        batch.extend(next.unwrap().unwrap().unwrap());
    }
    let streams: Vec<_> = batch.iter().map(|e| e.stream_id.as_str()).collect();
    assert_eq!(streams, ["early", "late"], "both, in position order");
    db.drop().await;
}

#[tokio::test]
async fn without_notifications_subscriptions_find_events_by_polling() {
    let db = TestDb::new(4).await;
    let store = db
        .store()
        .with_notifications(false)
        .with_poll_interval(Duration::from_millis(50));
    let mut subscription = store.subscribe(Position::START, 10);
    let appended = cqrs_core::EventAppender::append(
        &store,
        cqrs_core::AppendRequest::new(
            "quiet",
            cqrs_core::ExpectedVersion::NoStream,
            vec![cqrs_core::NewEvent {
                event_id: Uuid::now_v7(),
                event: cqrs_core::RawEvent {
                    event_type: "A".into(),
                    schema_version: 1,
                    payload: serde_json::json!({}),
                },
                metadata: cqrs_core::Metadata::new(),
            }],
        ),
    )
    .await
    .unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(batch[0].position, appended.position.unwrap());
    db.drop().await;
}

/// Notifications wake a subscriber of another store value — another process, as far
/// as the server knows — long before its poll: a burst of concurrent appends (some
/// straight, some in groups) is delivered with its poll an hour away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_wake_subscribers_elsewhere_at_once_after_a_burst() {
    let db = TestDb::new(12).await;
    let writer = db.store();
    let reader = cqrs_postgres::PgEventStore::new(db.pool.clone())
        .with_poll_interval(Duration::from_secs(3600));
    let mut subscription = reader.subscribe(Position::START, 100);
    // Its first read finds nothing; then it waits for a wake-up (and its LISTEN
    // connection is open).
    let first = tokio::time::timeout(Duration::from_millis(500), subscription.next()).await;
    assert!(first.is_err(), "nothing to deliver yet");
    let appends: Vec<_> = (0..20)
        .map(|i| {
            let writer = writer.clone();
            tokio::spawn(async move {
                cqrs_core::EventAppender::append(
                    &writer,
                    cqrs_core::AppendRequest::new(
                        format!("burst-{i}"),
                        cqrs_core::ExpectedVersion::NoStream,
                        vec![cqrs_core::NewEvent {
                            event_id: Uuid::now_v7(),
                            event: cqrs_core::RawEvent {
                                event_type: "A".into(),
                                schema_version: 1,
                                payload: serde_json::json!({ "i": i }),
                            },
                            metadata: cqrs_core::Metadata::new(),
                        }],
                    ),
                )
                .await
                .unwrap()
            })
        })
        .collect();
    for append in appends {
        append.await.unwrap();
    }
    let mut delivered = 0;
    while delivered < 20 {
        let batch = tokio::time::timeout(Duration::from_secs(10), subscription.next())
            .await
            .expect("woken by a notification, not the hourly poll")
            .unwrap()
            .unwrap();
        delivered += batch.len();
    }
    assert_eq!(delivered, 20);
    db.drop().await;
}
