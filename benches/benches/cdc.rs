//! Catching up 100,000 events through change-data-capture (`PgCdcSource`, the WAL)
//! beside the store's own subscription (`PgEventStore`, pages of the events table),
//! same server, same run. Delivery only: no read model is written, so the line
//! compares how fast each way hands a consumer the log.
//!
//! A template replication slot is made before the events are written; each
//! iteration copies it (`pg_copy_logical_replication_slot`), so every run reads the
//! whole backlog from the WAL, and drops the copy.
//!
//! Run with `cargo bench -p cqrs-benches --bench cdc`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cqrs_benches::pool_in;
use cqrs_core::{
    AppendRequest, EventSubscriber, ExpectedVersion, Metadata, NewEvent, Position, RawEvent,
};
use cqrs_postgres::{PgCdcSource, PgEventStore};
use criterion::{Criterion, Throughput};
use futures::StreamExt;
use uuid::Uuid;

const EVENTS: u64 = 100_000;
/// Events per transaction when writing the backlog (many small commits, as commands
/// make them).
const PER_TRANSACTION: u64 = 20;
const BATCH: usize = 1_000;

fn event(n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event: RawEvent {
            event_type: "bench.Ticked".into(),
            schema_version: 1,
            payload: serde_json::json!({ "n": n }),
        },
        metadata: Metadata::new().with_user("bench"),
    }
}

/// Reads `source` from the start until `EVENTS` events came, in order.
async fn drain(source: &impl EventSubscriber) {
    let mut stream = source.subscribe(Position::START, BATCH);
    let mut seen = 0;
    while seen < EVENTS {
        let batch = stream.next().await.expect("open").expect("batch");
        seen += batch.len() as u64;
    }
    assert_eq!(seen, EVENTS);
}

fn main() {
    let rt = cqrs_benches::runtime();
    let mut criterion = Criterion::default().configure_from_args();
    let schema = cqrs_testkit::unique_name("cdc_bench");
    let pool = rt.block_on(pool_in(&schema, 4));
    let store = PgEventStore::new(pool.clone()).with_notifications(false);
    // Slot names have at most 59 characters: keep the schema's random tail only.
    let template = format!("cdc_tpl_{}", &schema[schema.len() - 12..]);
    rt.block_on(async {
        store.migrate().await.expect("migrate");
        PgCdcSource::create(pool.clone(), &template)
            .await
            .expect("slot");
        for t in 0..EVENTS / PER_TRANSACTION {
            let events = (0..PER_TRANSACTION)
                .map(|n| event(t * PER_TRANSACTION + n))
                .collect();
            let request =
                AppendRequest::new(format!("s-{}", t % 100), ExpectedVersion::Any, events);
            store.append_many(vec![request]).await.expect("append");
        }
    });

    let mut group = criterion.benchmark_group("catch-up/postgres");
    group.throughput(Throughput::Elements(EVENTS));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    group.bench_function("subscription/100k", |b| {
        b.to_async(&rt).iter(|| drain(&store));
    });
    let copies = AtomicU64::new(0);
    group.bench_function("cdc/100k", |b| {
        b.to_async(&rt).iter(|| {
            let (pool, template) = (pool.clone(), template.clone());
            let copy = format!("{template}_{}", copies.fetch_add(1, Ordering::Relaxed));
            async move {
                sqlx::query("SELECT pg_copy_logical_replication_slot($1, $2)")
                    .bind(&template)
                    .bind(&copy)
                    .execute(&pool)
                    .await
                    .expect("copy slot");
                // The copy decodes through the template's publication, which existed
                // when the events were written.
                let source = PgCdcSource::new(pool.clone(), &copy)
                    .and_then(|s| s.with_publication(&format!("{template}_pub")))
                    .expect("source");
                drain(&source).await;
                sqlx::query("SELECT pg_drop_replication_slot($1)")
                    .bind(&copy)
                    .execute(&pool)
                    .await
                    .expect("drop copy");
            }
        });
    });
    group.finish();
    rt.block_on(async {
        PgCdcSource::new(pool.clone(), &template)
            .expect("name")
            .drop_slot()
            .await
            .expect("drop template");
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&pool)
            .await
            .expect("drop schema");
    });
    criterion.final_summary();
}
