//! Subscriptions never skip an event, whatever order concurrent transactions commit
//! in.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::TestDb;
use cqrs_core::{EventSubscriber, Position};
use futures::StreamExt;
use uuid::Uuid;

const WRITERS: usize = 24;
const TRANSACTIONS_PER_WRITER: usize = 40;

/// Appends through `cqrs_append` inside a transaction that then sleeps for a random
/// while before it commits (or, one time in eight, rolls back), so transactions
/// commit in an order unrelated to the order they took their positions in. Returns
/// the ids of the committed events.
async fn writer(pool: sqlx::PgPool, writer: usize) -> Vec<Uuid> {
    let mut rng = common::Lcg(writer as u64 + 1);
    let mut committed = Vec::new();
    for t in 0..TRANSACTIONS_PER_WRITER {
        // Each writer has its own stream, and a third of its appends go to one of
        // three shared streams, so streams also see interleaved writers.
        let stream = if rng.next(3) == 0 {
            format!("shared-{}", rng.next(3))
        } else {
            format!("writer-{writer}")
        };
        let count = 1 + rng.next(3) as usize;
        let ids: Vec<Uuid> = (0..count).map(|_| Uuid::now_v7()).collect();
        let mut tx = pool.begin().await.unwrap();
        let (status,): (String,) =
            sqlx::query_as("SELECT status FROM cqrs_append($1, -1, NULL, $2, $3, $4, $5, $6)")
                .bind(&stream)
                .bind(&ids)
                .bind(vec!["Written"; count])
                .bind(vec![1_i32; count])
                .bind(vec![serde_json::json!({ "writer": writer, "t": t }); count])
                .bind(vec![serde_json::json!({}); count])
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        assert_eq!(status, "ok");
        let delay_ms = rng.next(25) as f64;
        sqlx::query("SELECT pg_sleep($1)")
            .bind(delay_ms / 1000.0)
            .execute(&mut *tx)
            .await
            .unwrap();
        if rng.next(8) == 0 {
            tx.rollback().await.unwrap();
        } else {
            tx.commit().await.unwrap();
            committed.extend(ids);
        }
    }
    committed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tailing_subscriber_gets_every_committed_event_exactly_once_in_order() {
    let db = TestDb::new(WRITERS as u32 + 8).await;
    let store = db.store();

    // The subscriber starts before the writers and tails the log while they write.
    let mut subscription = store.subscribe(Position::START, 7);
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(db.pool.clone(), w)))
        .collect();

    let mut committed = HashSet::new();
    let mut delivered = Vec::new();
    let mut writers_done = false;
    let mut pending = writers;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if !writers_done && pending.iter().all(|w| w.is_finished()) {
            for w in pending.drain(..) {
                committed.extend(w.await.unwrap());
            }
            writers_done = true;
        }
        if writers_done && delivered.len() >= committed.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {} events delivered in time",
            delivered.len(),
            committed.len()
        );
        if let Ok(Some(batch)) =
            tokio::time::timeout(Duration::from_millis(200), subscription.next()).await
        {
            delivered.extend(batch.unwrap());
        }
    }
    // Anything more would be a duplicate or a rolled-back event.
    if let Ok(Some(batch)) =
        tokio::time::timeout(Duration::from_millis(500), subscription.next()).await
    {
        panic!(
            "unexpected events after all were delivered: {}",
            batch.unwrap().len()
        );
    }

    assert!(
        committed.len() > 1000,
        "a meaningful number of events: {}",
        committed.len()
    );
    let ids: Vec<Uuid> = delivered.iter().map(|e| e.event_id).collect();
    let unique: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no event delivered twice");
    assert_eq!(
        unique, committed,
        "exactly the committed events: none skipped, none rolled back"
    );
    assert!(
        delivered.windows(2).all(|w| w[0].position < w[1].position),
        "in position order"
    );

    // Per stream, versions arrive in order and without a hole.
    let mut versions: HashMap<String, u64> = HashMap::new();
    for event in &delivered {
        let last = versions.entry(event.stream_id.to_string()).or_insert(0);
        assert_eq!(
            event.version.0,
            *last + 1,
            "stream {} out of order",
            event.stream_id
        );
        *last = event.version.0;
    }
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
