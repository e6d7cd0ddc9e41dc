//! Subscriptions never skip an event, whatever order concurrent transactions commit
//! in, and the same check fails on positions from `AUTO_INCREMENT`.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::TestDb;
use cqrs_core::{EventSubscriber, Position, RecordedEvent};
use cqrs_testkit::Lcg;
use cqrs_testkit::event_stores;
use sqlx::{Executor, MySqlPool};
use uuid::Uuid;

const WRITERS: usize = 24;
const TRANSACTIONS_PER_WRITER: usize = 40;

/// Like the scenario's writers, but with plain inserts taking `AUTO_INCREMENT`
/// positions (what the store must not do): 1 to 3 events per transaction, held
/// open a random while, rolled back one time in eight. Returns the ids of the
/// committed events.
async fn auto_increment_writer(pool: MySqlPool, writer: usize) -> Vec<Uuid> {
    let mut rng = Lcg(writer as u64 + 1);
    let mut committed = Vec::new();
    let mut version = 0_u64;
    for _ in 0..TRANSACTIONS_PER_WRITER {
        let stream = format!("writer-{writer}");
        let count = 1 + rng.below(3) as usize;
        let ids: Vec<Uuid> = (0..count).map(|_| Uuid::now_v7()).collect();
        let mut tx = pool.begin().await.unwrap();
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
        let delay_ms = rng.below(25) as f64;
        sqlx::query("DO SLEEP(?)")
            .bind(delay_ms / 1000.0)
            .execute(&mut *tx)
            .await
            .unwrap();
        if rng.below(8) == 0 {
            tx.rollback().await.unwrap();
        } else {
            tx.commit().await.unwrap();
            committed.extend(ids);
            version += count as u64;
        }
    }
    committed
}

/// Runs those writers with a subscriber tailing the log from the start; returns
/// the committed ids and what the subscriber delivered once nothing more came.
async fn tail(db: &TestDb) -> (HashSet<Uuid>, Vec<RecordedEvent>) {
    let store = db.store();
    let mut subscription = store.subscribe(Position::START, 7);
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(auto_increment_writer(db.pool.clone(), w)))
        .collect();
    event_stores::tail_while_writing(&mut subscription, writers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tailing_subscriber_gets_every_committed_event_exactly_once_in_order() {
    let db = TestDb::new(WRITERS as u32 + 8).await;
    event_stores::no_event_is_skipped_under_random_commit_order(
        db.store(),
        common::Slow(db.pool.clone()),
        WRITERS,
    )
    .await;
    // And the positions are dense: rolled-back appends gave theirs back.
    let (count, max): (i64, Option<u64>) =
        sqlx::query_as("SELECT count(*), max(position) FROM cqrs_events")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(max, Some(count as u64));
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
    let (committed, delivered) = tail(&db).await;
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
