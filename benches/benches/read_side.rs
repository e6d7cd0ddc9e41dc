//! Read-side benches against the real servers (`scripts/services.sh up mongo redis`),
//! each beside a ceiling measured in the same run:
//!
//! * catch-up projection throughput (MADA's `plan`, 3,100 events, batches of 100 and
//!   1,000) into `MongoReadModelStore` and into `RedisReadModelStore`, beside raw
//!   batched writes of the very same document changes with the same client (one
//!   unguarded upsert per change, no load, no checkpoint: what a projection must
//!   write at the least), and beside the same projection into the in-memory store
//!   (the projection's own CPU work, no I/O);
//! * read latency of a today's list: the user's plan read through `RedisCache` (a
//!   hit) or from MongoDB uncached, decoded, and today's list computed from it; p50 /
//!   p99 printed after criterion.
//!
//! Run with `cargo bench -p cqrs-benches --bench read_side`.

use std::time::{Duration, Instant};

use cqrs_benches::{catch_up, changes_per_batch, percentile, planner_events};
use cqrs_core::{
    DocumentChange, MemoryReadModelStore, Position, ProjectionRunner, ReadModelReader,
};
use cqrs_mongo::MongoReadModelStore;
use cqrs_mongo::mongodb::bson::{self, Document, doc};
use cqrs_redis::{RedisCache, RedisReadModelStore, redis};
use criterion::{BenchmarkId, Criterion, Throughput};
use mada::projections::PlanProjection;

const BATCHES: [usize; 2] = [100, 1_000];

fn projection(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    mongo: &MongoReadModelStore,
    redis: &RedisReadModelStore,
) {
    let (source, events) = rt.block_on(planner_events(100));
    let mut group = c.benchmark_group("projection/read-side");
    group.throughput(Throughput::Elements(events.len() as u64));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    let mut round = 0u64;
    for batch in BATCHES {
        let changes = rt.block_on(changes_per_batch(&events, batch));
        // The projection's own work (decode, apply, encode) with no I/O at all: the
        // in-memory store, as a second reference.
        group.bench_with_input(BenchmarkId::new("memory", batch), &batch, |b, &batch| {
            b.to_async(rt).iter(|| {
                let (source, events) = (source.clone(), &events);
                catch_up(
                    MemoryReadModelStore::new(),
                    source,
                    events,
                    batch,
                    "plan".into(),
                )
            });
        });
        group.bench_with_input(BenchmarkId::new("mongo", batch), &batch, |b, &batch| {
            b.to_async(rt).iter(|| {
                round += 1;
                let name = format!("plan_{round}");
                catch_up(mongo.clone(), source.clone(), &events, batch, name)
            });
        });
        group.bench_with_input(BenchmarkId::new("mongo-ceiling", batch), &batch, |b, _| {
            b.to_async(rt).iter(|| {
                round += 1;
                let name = format!("raw_{round}");
                let (store, changes) = (mongo.clone(), &changes);
                async move {
                    for batch in changes {
                        raw_mongo(&store, &name, batch).await;
                    }
                    store.collection(&name).drop().await.expect("drop");
                }
            });
        });
        group.bench_with_input(BenchmarkId::new("redis", batch), &batch, |b, &batch| {
            b.to_async(rt).iter(|| {
                round += 1;
                let name = format!("plan_{round}");
                catch_up(redis.clone(), source.clone(), &events, batch, name)
            });
        });
        group.bench_with_input(BenchmarkId::new("redis-ceiling", batch), &batch, |b, _| {
            b.to_async(rt).iter(|| {
                round += 1;
                let key = format!("{}:raw_{round}", redis.prefix());
                let (store, changes) = (redis.clone(), &changes);
                async move {
                    let mut conn = store.connection();
                    for batch in changes {
                        raw_redis(&mut conn, &key, batch).await;
                    }
                    let _: i64 = redis::cmd("UNLINK")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await
                        .expect("unlink");
                }
            });
        });
    }
    group.finish();
}

/// The same changes as plain upserts by id, in `update` commands of as many
/// statements as the store sends (FerretDB takes at most 64 per command).
async fn raw_mongo(store: &MongoReadModelStore, collection: &str, changes: &[DocumentChange]) {
    for chunk in changes.chunks(MongoReadModelStore::FERRETDB_MAX_STATEMENTS) {
        let updates: Vec<Document> = chunk
            .iter()
            .map(|change| {
                let value = match change {
                    DocumentChange::Put { value, .. } => bson::to_bson(value).expect("bson"),
                    DocumentChange::Delete { .. } => bson::Bson::Null,
                };
                doc! {
                    "q": { "_id": change.id() },
                    "u": { "$set": { "value": value, "position": change.position().0 as i64 } },
                    "upsert": true,
                }
            })
            .collect();
        store
            .database()
            .run_command(doc! { "update": collection, "updates": updates, "ordered": false })
            .await
            .expect("update");
    }
}

/// The same changes as one pipelined `HSET` per batch.
async fn raw_redis(
    conn: &mut redis::aio::ConnectionManager,
    key: &str,
    changes: &[DocumentChange],
) {
    let mut pipe = redis::pipe();
    let mut hset = redis::cmd("HSET");
    hset.arg(key);
    for change in changes {
        if let DocumentChange::Put { id, value, .. } = change {
            hset.arg(id)
                .arg(serde_json::to_string(value).expect("json"));
        }
    }
    pipe.add_command(hset).ignore();
    let () = pipe.query_async(conn).await.expect("hset");
}

/// Today's list from a stored plan: what a query does after the read.
fn today_of(document: Option<cqrs_core::StoredDocument>) -> usize {
    let plan: mada::projections::Plan =
        serde_json::from_value(document.expect("a plan").value).expect("a plan");
    plan.today(cqrs_benches::month_start()).items.len()
}

/// Read latency of a today's list: a Redis cache hit against MongoDB.
fn reads(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    mongo: &MongoReadModelStore,
    cache: &RedisCache<MongoReadModelStore>,
) {
    let (source, events) = rt.block_on(planner_events(100));
    let ids: Vec<String> = rt.block_on(async {
        let runner = ProjectionRunner::new(PlanProjection, source, cache.clone());
        runner.apply(Position::START, &events).await.expect("apply");
        // Every document the log produces: the ids of the last batch's changes cover
        // them all (one batch holds the whole log).
        changes_per_batch(&events, events.len())
            .await
            .into_iter()
            .flatten()
            .map(|change| change.id().to_owned())
            .collect()
    });
    // Warm the cache: every list read once.
    rt.block_on(async {
        for id in &ids {
            cache
                .get("plan", id)
                .await
                .expect("read")
                .expect("document");
        }
    });
    let mut group = c.benchmark_group("read/today");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let mut i = 0usize;
    group.bench_function("redis-cache-hit", |b| {
        b.to_async(rt).iter(|| {
            i += 1;
            let (cache, id) = (cache.clone(), ids[i % ids.len()].clone());
            async move { today_of(cache.get("plan", &id).await.expect("read")) }
        });
    });
    group.bench_function("mongo-uncached", |b| {
        b.to_async(rt).iter(|| {
            i += 1;
            let (mongo, id) = (mongo.clone(), ids[i % ids.len()].clone());
            async move { today_of(mongo.get("plan", &id).await.expect("read")) }
        });
    });
    group.finish();

    println!("\nread latency of a today's list, 5,000 sequential reads each");
    println!("{:<22} {:>10} {:>10}", "read", "p50", "p99");
    for who in ["redis-cache-hit", "mongo-uncached"] {
        let mut all = rt.block_on(async {
            let mut all = Vec::with_capacity(5_000);
            for n in 0..5_000 {
                let id = &ids[(n * 7) % ids.len()];
                let start = Instant::now();
                let document = if who == "mongo-uncached" {
                    mongo.get("plan", id).await.expect("read")
                } else {
                    cache.get("plan", id).await.expect("read")
                };
                today_of(document);
                all.push(start.elapsed());
            }
            all
        });
        all.sort_unstable();
        println!(
            "{who:<22} {:>10.3?} {:>10.3?}",
            percentile(&all, 0.50),
            percentile(&all, 0.99)
        );
    }
}

fn main() {
    let rt = cqrs_benches::runtime();
    let mut criterion = Criterion::default().configure_from_args();
    let name = cqrs_testkit::unique_name("bench");
    let (mongo, redis) = rt.block_on(async {
        let mongo = MongoReadModelStore::connect(&cqrs_testkit::mongodb_url(), &name)
            .await
            .unwrap_or_else(|e| {
                cqrs_testkit::server_unreachable("MongoDB", &cqrs_testkit::mongodb_url(), e)
            });
        let redis = RedisReadModelStore::connect(&cqrs_testkit::redis_url())
            .await
            .unwrap_or_else(|e| {
                cqrs_testkit::server_unreachable("Redis", &cqrs_testkit::redis_url(), e)
            })
            .with_prefix(&name);
        (mongo, redis)
    });
    let cache = RedisCache::new(mongo.clone(), redis.connection())
        .with_prefix(&name)
        .with_ttl(Duration::from_secs(600));
    projection(&mut criterion, &rt, &mongo, &redis);
    reads(&mut criterion, &rt, &mongo, &cache);
    criterion.final_summary();
    rt.block_on(async {
        mongo.database().drop().await.expect("drop");
        let mut conn = redis.connection();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{name}:*"))
            .query_async(&mut conn)
            .await
            .expect("keys");
        if !keys.is_empty() {
            let _: i64 = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .expect("unlink");
        }
    });
}
