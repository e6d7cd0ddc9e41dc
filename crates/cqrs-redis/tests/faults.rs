//! Network faults between a projection runner's read-model store and Redis, through
//! Toxiproxy (`scripts/services.sh up toxiproxy`): connections reset mid-request and
//! a black hole (a half-open connection that never answers). The runner retries
//! through them, catches up once they are lifted, and its read model equals a
//! rebuild (`cqrs_testkit::faults::runner_under_fault`).

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cqrs_core::{MemoryReadModelStore, Position, ReadModelReader};
use cqrs_redis::{RedisCache, RedisLease, RedisReadModelStore};
use cqrs_testkit::faults::{read_model_store_through_faults, runner_under_fault};
use cqrs_testkit::leases::lease_holder_in_a_black_hole;
use cqrs_testkit::toxiproxy::{Fault, Proxy};
use cqrs_testkit::{OrUnreachable, unique_name};

const DEADLINE: Duration = Duration::from_secs(1);

/// A store with keys under a prefix of its own, connected through `proxy`.
async fn through(proxy: &Proxy) -> RedisReadModelStore {
    let url = format!("redis://{}", proxy.listen());
    RedisReadModelStore::connect(&url)
        .await
        .or_unreachable("Redis (through Toxiproxy)", &url)
        .with_prefix(&unique_name("cqrs_faults"))
}

/// Removes every key under `prefix`, through a direct connection.
async fn drop_keys(prefix: &str) {
    let direct = RedisReadModelStore::connect(&cqrs_testkit::redis_url())
        .await
        .unwrap();
    common::drop_keys(&mut direct.connection(), prefix).await;
}

/// A runner into the store through resets and a black hole, and every call of the
/// store into a black hole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_model_store_through_faults() {
    let proxy = Arc::new(Proxy::new("127.0.0.1:6379"));
    let store = through(&proxy).await.with_deadline(DEADLINE);
    read_model_store_through_faults(proxy, store.clone(), DEADLINE).await;
    drop_keys(store.prefix()).await;
}

/// Readers read `all` (the document every tally event changes) through `cache`
/// until `stop`, each read checked against what the store behind held when it
/// began: never older (the cache is never stale). Returns the longest read.
fn readers(
    cache: RedisCache<MemoryReadModelStore>,
    name: &'static str,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<(usize, Duration)>> {
    (0..3)
        .map(|_| {
            let (cache, stop) = (cache.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut reads, mut longest) = (0, Duration::ZERO);
                while !stop.load(Ordering::Relaxed) {
                    let floor = cache
                        .inner()
                        .get(name, "all")
                        .await
                        .unwrap()
                        .map_or(Position::START, |d| d.position);
                    let started = Instant::now();
                    let read = cache
                        .get(name, "all")
                        .await
                        .expect("a read through the cache");
                    longest = longest.max(started.elapsed());
                    let position = read.map_or(Position::START, |d| d.position);
                    assert!(
                        position >= floor,
                        "stale: the cache gave `all` at {position:?}, the store had {floor:?}"
                    );
                    reads += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (reads, longest)
            })
        })
        .collect()
}

/// A cache in front of a store while `fault` comes and goes on its connection to
/// Redis: the runner writes through it, readers read through it. No read waits much
/// past the cache's deadline (a read Redis does not answer reads the store), none is
/// stale, the read model equals a rebuild, and afterwards every entry the cache
/// gives equals the store's document.
async fn cache_under(fault: Fault, name: &'static str, on: Duration) -> Duration {
    let proxy = Arc::new(Proxy::new("127.0.0.1:6379"));
    let redis = through(&proxy).await;
    let inner = MemoryReadModelStore::new();
    let cache = RedisCache::new(inner.clone(), redis.connection())
        .with_prefix(redis.prefix())
        .with_deadline(DEADLINE);
    let stop = Arc::new(AtomicBool::new(false));
    let readers = readers(cache.clone(), name, stop.clone());
    let report = runner_under_fault(proxy.clone(), cache.clone(), fault, on, name).await;
    stop.store(true, Ordering::Relaxed);
    let (mut reads, mut longest) = (0, Duration::ZERO);
    for reader in readers {
        let (n, l) = reader.await.expect("a reader");
        reads += n;
        longest = longest.max(l);
    }
    assert!(reads > 0, "no read happened");
    assert!(
        longest < DEADLINE + Duration::from_millis(500),
        "a read through the cache took {longest:?}, past its deadline of {DEADLINE:?}"
    );
    for id in cqrs_testkit::scenarios::tally_ids() {
        assert_eq!(
            cache.get(name, &id).await.expect("a read"),
            inner.get(name, &id).await.expect("a read"),
            "the cache's `{id}` differs from the store's after the faults"
        );
    }
    let stats = cache.stats();
    eprintln!(
        "cache {name}: {reads} reads during {} fault rounds, longest {longest:?}, {} hits, {} misses",
        report.rounds, stats.hits, stats.misses
    );
    drop_keys(redis.prefix()).await;
    longest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_through_resets() {
    cache_under(
        Fault::Reset { after_ms: 30 },
        "cache_reset",
        Duration::from_millis(400),
    )
    .await;
}

/// Reads caught in the hole wait for the deadline, then read the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_through_a_black_hole() {
    let longest = cache_under(Fault::BlackHole, "cache_black_hole", DEADLINE * 3 / 2).await;
    assert!(
        longest >= DEADLINE,
        "no read met the black hole: {longest:?}"
    );
}

/// A lease holder whose connection falls into a black hole stops writing (its
/// renewal hangs), the key expires, and the other runner takes over while the hole
/// is on; they never write at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holder_in_a_black_hole_steps_down() {
    let proxy = Proxy::new("127.0.0.1:6379");
    let url = format!("redis://{}", proxy.listen());
    let prefix = unique_name("cqrs_faults");
    let cut_off = RedisLease::connect(&url)
        .await
        .or_unreachable("Redis (through Toxiproxy)", &url)
        .with_prefix(&prefix);
    let direct = RedisLease::connect(&cqrs_testkit::redis_url())
        .await
        .unwrap()
        .with_prefix(&prefix);
    let report = lease_holder_in_a_black_hole(
        &proxy,
        cut_off,
        direct,
        Duration::from_secs(1),
        Duration::from_secs(4),
        "redis_lease",
    )
    .await;
    assert!(report.cut_off_commits > 0, "{report:?}");
    drop_keys(&prefix).await;
}
