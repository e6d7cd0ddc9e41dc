//! Subscriptions never skip an event, whatever order concurrent transactions commit
//! in, and the same check fails on positions from `AUTO_INCREMENT`.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{Lcg, TestDb};
use cqrs_core::{EventSubscriber, Position, RecordedEvent};
use futures::StreamExt;
use sqlx::{Executor, MySqlPool};
use uuid::Uuid;

const WRITERS: usize = 24;
const TRANSACTIONS_PER_WRITER: usize = 40;

/// How a writer appends inside its own transaction.
#[derive(Clone, Copy)]
enum Append {
    /// Through `cqrs_append` (in the caller's transaction).
    Store,
    /// Plain inserts taking `AUTO_INCREMENT` positions: what the store must not do.
    AutoIncrement,
}

/// Appends 1 to 3 events per transaction, then sleeps a random while before it
/// commits (or, one time in eight, rolls back), so transactions commit in an order
/// unrelated to the order they took their positions in. Returns the ids of the
/// committed events.
async fn writer(pool: MySqlPool, writer: usize, how: Append) -> Vec<Uuid> {
    let mut rng = Lcg(writer as u64 + 1);
    let mut committed = Vec::new();
    let mut version = 0_u64;
    for t in 0..TRANSACTIONS_PER_WRITER {
        // Each writer has its own stream, and (through the store) a third of its
        // appends go to one of three shared streams.
        let shared = matches!(how, Append::Store) && rng.next(3) == 0;
        let stream = if shared {
            format!("shared-{}", rng.next(3))
        } else {
            format!("writer-{writer}")
        };
        let count = 1 + rng.next(3) as usize;
        let ids: Vec<Uuid> = (0..count).map(|_| Uuid::now_v7()).collect();
        let mut tx = pool.begin().await.unwrap();
        match how {
            Append::Store => {
                let events: Vec<_> = ids
                    .iter()
                    .map(|id| serde_json::json!({ "id": id, "type": "Written", "schema": 1, "payload": { "writer": writer, "t": t }, "metadata": {} }))
                    .collect();
                let call = format!(
                    "CALL cqrs_append('{stream}', -1, NULL, '{}', FALSE)",
                    serde_json::Value::from(events)
                );
                tx.fetch_one(sqlx::raw_sql(&call)).await.unwrap();
            }
            Append::AutoIncrement => {
                for (i, id) in ids.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO cqrs_events (stream_id, version, event_id, event_type, schema_version, payload, metadata, recorded_at)
                         VALUES (?, ?, ?, 'Written', 1, '{}', '{}', UTC_TIMESTAMP(6))",
                    )
                    .bind(&stream)
                    .bind(version + i as u64 + 1)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                }
            }
        }
        let delay_ms = rng.next(25) as f64;
        sqlx::query("DO SLEEP(?)")
            .bind(delay_ms / 1000.0)
            .execute(&mut *tx)
            .await
            .unwrap();
        if rng.next(8) == 0 {
            tx.rollback().await.unwrap();
        } else {
            tx.commit().await.unwrap();
            committed.extend(ids);
            version += count as u64;
        }
    }
    committed
}

/// Runs the writers with a subscriber tailing the log from the start; returns the
/// committed ids and what the subscriber delivered once nothing more came.
async fn tail(db: &TestDb, how: Append) -> (HashSet<Uuid>, Vec<RecordedEvent>) {
    let store = db.store();
    let mut subscription = store.subscribe(Position::START, 7);
    let mut pending: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(db.pool.clone(), w, how)))
        .collect();
    let mut committed = HashSet::new();
    let mut delivered = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if !pending.is_empty() && pending.iter().all(|w| w.is_finished()) {
            for w in pending.drain(..) {
                committed.extend(w.await.unwrap());
            }
        }
        let done = pending.is_empty();
        match tokio::time::timeout(Duration::from_millis(500), subscription.next()).await {
            Ok(Some(batch)) => delivered.extend(batch.unwrap()),
            Ok(None) => panic!("the subscription ended"),
            // Quiet for half a second after the writers finished: all there is.
            Err(_) if done => break,
            Err(_) => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} events delivered in time",
            delivered.len()
        );
    }
    (committed, delivered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tailing_subscriber_gets_every_committed_event_exactly_once_in_order() {
    let db = TestDb::new(WRITERS as u32 + 8).await;
    let (committed, delivered) = tail(&db, Append::Store).await;
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
        delivered
            .iter()
            .enumerate()
            .all(|(i, e)| e.position.0 == i as u64 + 1),
        "in position order, and positions are dense (rolled-back appends gave theirs back)"
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

/// The check above is not vacuous: with positions from `AUTO_INCREMENT` (taken at
/// insert, visible at commit, in another order), the same subscriber skips events.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn positions_from_auto_increment_make_the_same_subscriber_skip_events() {
    let db = TestDb::new(WRITERS as u32 + 8).await;
    db.pool
        .execute("ALTER TABLE cqrs_events MODIFY position BIGINT UNSIGNED NOT NULL AUTO_INCREMENT")
        .await
        .unwrap();
    let (committed, delivered) = tail(&db, Append::AutoIncrement).await;
    let seen: HashSet<Uuid> = delivered.iter().map(|e| e.event_id).collect();
    let skipped = committed.difference(&seen).count();
    println!("{skipped} of {} committed events skipped", committed.len());
    assert!(
        skipped > 0,
        "no event skipped: the check would not notice an unsafe store"
    );
    db.drop().await;
}

/// An append waits for an earlier open transaction that appended (the tail's lock):
/// the subscriber sees the events in commit order, never the later one first.
#[tokio::test]
async fn an_append_waits_for_an_open_transaction_that_appended() {
    let db = TestDb::new(4).await;
    let store = db.store();
    let mut open = db.pool.begin().await.unwrap();
    open.fetch_one(sqlx::raw_sql(
        "CALL cqrs_append('early', -1, NULL, '[{\"id\":\"0191e0a0-0000-7000-8000-000000000001\",\"type\":\"A\",\"schema\":1,\"payload\":{},\"metadata\":{}}]', FALSE)",
    ))
    .await
    .unwrap();
    let later = tokio::spawn({
        let store = store.clone();
        async move {
            use cqrs_core::{
                AppendRequest, EventAppender, ExpectedVersion, Metadata, NewEvent, RawEvent,
            };
            let event = NewEvent {
                event_id: Uuid::now_v7(),
                event: RawEvent {
                    event_type: "B".into(),
                    schema_version: 1,
                    payload: serde_json::json!({}),
                },
                metadata: Metadata::new(),
            };
            store
                .append(AppendRequest::new(
                    "late",
                    ExpectedVersion::Any,
                    vec![event],
                ))
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !later.is_finished(),
        "the later append waits for the open transaction"
    );
    open.commit().await.unwrap();
    let later = later.await.unwrap();
    assert_eq!(later.position, Some(Position(2)), "after the earlier one");
    db.drop().await;
}
