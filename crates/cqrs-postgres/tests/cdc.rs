//! Change-data-capture from the WAL: commit order, held back until safe, delivered
//! in position order, resumed after a kill with no loss.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::TestDb;
use cqrs_core::{
    AppendRequest, Envelope, Event, EventAppender, EventSubscriber, ExpectedVersion, Metadata,
    NewEvent, Position, Projection, ProjectionRunner, ReadModelReader,
};
use cqrs_postgres::PgCdcSource;
use cqrs_testkit::unique_name;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
enum Tick {
    Ticked { n: u64 },
}

/// Per stream: how many events, the last version, and whether one came out of
/// order; and a `totals` document counting every event.
struct Audit;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct AuditDoc {
    count: u64,
    last_version: u64,
    out_of_order: bool,
}

impl Projection for Audit {
    const NAME: &'static str = "audit";
    type Event = Tick;
    type Document = AuditDoc;
    fn document_ids(&self, event: &Envelope<Tick>) -> Vec<String> {
        vec![event.stream_id.to_string(), "totals".into()]
    }
    fn apply(&self, id: &str, doc: &mut Option<AuditDoc>, event: &Envelope<Tick>) {
        let doc = doc.get_or_insert_with(AuditDoc::default);
        doc.count += 1;
        if id != "totals" {
            doc.out_of_order |= event.version.0 != doc.last_version + 1;
            doc.last_version = event.version.0;
        }
    }
}

/// Appends in transactions that sleep before they commit (or roll back): commits
/// land out of position order. Returns the committed count per stream.
async fn write(pool: sqlx::PgPool, writer: u64, transactions: usize) -> HashMap<String, u64> {
    let mut rng = cqrs_testkit::Lcg(writer + 7);
    let mut committed = HashMap::new();
    for _ in 0..transactions {
        let stream = format!("s-{}", rng.below(6));
        let count = 1 + rng.below(2) as usize;
        let ids: Vec<Uuid> = (0..count).map(|_| Uuid::now_v7()).collect();
        let payloads: Vec<serde_json::Value> =
            (0..count).map(|i| serde_json::json!({ "n": i })).collect();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SELECT * FROM cqrs_append($1, -1, NULL, $2, $3, $4, $5, $6)")
            .bind(&stream)
            .bind(&ids)
            .bind(vec!["tick.Ticked"; count])
            .bind(vec![1_i32; count])
            .bind(&payloads)
            .bind(vec![serde_json::json!({}); count])
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("SELECT pg_sleep($1)")
            .bind(rng.below(20) as f64 / 1000.0)
            .execute(&mut *tx)
            .await
            .unwrap();
        if rng.below(6) == 0 {
            tx.rollback().await.unwrap();
        } else {
            tx.commit().await.unwrap();
            *committed.entry(stream).or_insert(0) += count as u64;
        }
    }
    committed
}

async fn doc(store: &impl ReadModelReader, id: &str) -> Option<AuditDoc> {
    store
        .get("audit", id)
        .await
        .unwrap()
        .map(|d| serde_json::from_value(d.value).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_projection_fed_from_the_wal_survives_a_kill_with_no_loss_and_no_double_count() {
    let db = TestDb::new(20).await;
    let read = db.read_models();
    let slot = unique_name("cdc");
    let cdc = PgCdcSource::create(db.pool.clone(), &slot)
        .await
        .unwrap()
        .with_poll_interval(Duration::from_millis(50));

    let writers: Vec<_> = (0..8)
        .map(|w| tokio::spawn(write(db.pool.clone(), w, 30)))
        .collect();

    // The first consumer is killed while the writers are still writing.
    let first = ProjectionRunner::new(Audit, cdc.clone(), read.clone())
        .with_batch_size(5)
        .spawn();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reached = first.position();
    first.abort();

    let mut committed: HashMap<String, u64> = HashMap::new();
    for writer in writers {
        for (stream, n) in writer.await.unwrap() {
            *committed.entry(stream).or_insert(0) += n;
        }
    }
    let head = common::last_position(&db.pool).await;
    assert!(
        reached > Position::START,
        "the first consumer had applied events before the kill"
    );
    assert!(
        head > reached,
        "the kill happened before the end ({reached} of {head})"
    );

    // A new consumer, with a new source on the same slot, resumes.
    let resumed = PgCdcSource::new(db.pool.clone(), &slot)
        .unwrap()
        .with_poll_interval(Duration::from_millis(50));
    let second = ProjectionRunner::new(Audit, resumed, read.clone())
        .with_batch_size(5)
        .spawn();
    second
        .wait_for_timeout(head, Duration::from_secs(60))
        .await
        .unwrap();
    second.stop().await.unwrap();

    let total: u64 = committed.values().sum();
    assert!(total > 200, "{total} events");
    assert_eq!(
        doc(&read, "totals").await.unwrap().count,
        total,
        "every committed event counted once"
    );
    for (stream, n) in &committed {
        let audit = doc(&read, stream).await.unwrap();
        assert_eq!(audit.count, *n, "{stream}");
        assert_eq!(audit.last_version, *n, "{stream}");
        assert!(
            !audit.out_of_order,
            "{stream} delivered out of version order"
        );
    }
    cdc.drop_slot().await.unwrap();
    db.drop().await;
}

fn tick(n: u64) -> NewEvent {
    NewEvent::encode(&Tick::Ticked { n }, Metadata::new()).unwrap()
}

async fn confirmed_lsn(pool: &sqlx::PgPool, slot: &str) -> String {
    sqlx::query_scalar(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
    )
    .bind(slot)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_slot_advances_only_past_what_was_handled() {
    let db = TestDb::new(4).await;
    let store = db.store();
    let slot = unique_name("cdc");
    let cdc = PgCdcSource::create(db.pool.clone(), &slot).await.unwrap();
    let mut positions = Vec::new();
    for n in 0..3 {
        let appended = store
            .append(AppendRequest::new("t", ExpectedVersion::Any, vec![tick(n)]))
            .await
            .unwrap();
        positions.push(appended.position.unwrap());
    }
    let start = confirmed_lsn(&db.pool, &slot).await;

    let mut events = cdc.subscribe(Position::START, 1);
    let first = events.next().await.unwrap().unwrap();
    assert_eq!(first[0].position, positions[0]);
    assert_eq!(
        first[0]
            .clone()
            .decode::<Tick>()
            .unwrap()
            .event
            .event_type(),
        "tick.Ticked"
    );
    assert_eq!(
        confirmed_lsn(&db.pool, &slot).await,
        start,
        "delivered is not handled"
    );
    let second = events.next().await.unwrap().unwrap();
    assert_eq!(second[0].position, positions[1]);
    let moved = confirmed_lsn(&db.pool, &slot).await;
    assert_ne!(moved, start, "asking for more acknowledges the first");

    // Killed now: the second was delivered, never acknowledged. A new subscription
    // from the consumer's checkpoint (the first) gets it again, then the third.
    drop(events);
    let mut again = PgCdcSource::new(db.pool.clone(), &slot)
        .unwrap()
        .subscribe(positions[0], 10);
    let mut batch = Vec::new();
    while batch.len() < 2 {
        batch.extend(again.next().await.unwrap().unwrap());
    }
    assert_eq!(
        batch.iter().map(|e| e.position).collect::<Vec<_>>(),
        positions[1..]
    );
    drop(again);
    assert!(cdc.retained_wal_bytes().await.unwrap() > 0);
    cdc.drop_slot().await.unwrap();
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1")
            .bind(&slot)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(left, 0);
    db.drop().await;
}

#[tokio::test]
async fn catching_up_decodes_each_event_about_once() {
    // Before, every batch re-read the slot's whole unadvanced backlog: catching up
    // N events in batches of B decoded about N²/2B messages.
    let db = TestDb::new(4).await;
    let store = db.store();
    let slot = unique_name("cdc");
    let cdc = PgCdcSource::create(db.pool.clone(), &slot).await.unwrap();
    let (transactions, per_transaction) = (300_u64, 10_u64);
    let mut head = Position::START;
    for t in 0..transactions {
        let events = (0..per_transaction)
            .map(|n| tick(t * per_transaction + n))
            .collect();
        head = store
            .append(AppendRequest::new(
                format!("t-{t}"),
                ExpectedVersion::Any,
                events,
            ))
            .await
            .unwrap()
            .position
            .unwrap();
    }
    let total = transactions * per_transaction;
    let mut stream = cdc.subscribe(Position::START, 50);
    let mut seen = 0_u64;
    let mut last = Position::START;
    while last < head {
        let batch = stream.next().await.unwrap().unwrap();
        for event in &batch {
            assert!(event.position > last, "in order, once");
            last = event.position;
        }
        seen += batch.len() as u64;
    }
    assert_eq!(seen, total);
    // Each transaction is a begin, its inserts and a commit (plus a relation
    // message per peek): about 3,600 messages, read once, with slack for re-reading
    // the few transactions a batch boundary cuts.
    let decoded = cdc.messages_decoded();
    let once = transactions * (per_transaction + 2);
    assert!(
        decoded < 2 * once,
        "{decoded} messages decoded to catch up {total} events ({once} if each once)"
    );
    drop(stream);
    cdc.drop_slot().await.unwrap();
    db.drop().await;
}
