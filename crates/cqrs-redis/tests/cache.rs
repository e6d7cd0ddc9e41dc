//! RedisCache in front of another store, against a real Redis: a read through the
//! cache never returns a document older than what the projection has applied.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cqrs_core::{
    DocumentChange, Error, MemoryEventStore, MemoryReadModelStore, Position, ProjectionRunner,
    ReadModelReader, ReadModelWriter, StoredDocument,
};
use cqrs_redis::RedisCache;
use cqrs_testkit::scenarios::{WAIT, tally_ids};
use cqrs_testkit::tally::{TallyProjection, append_tally, tally_log};
use cqrs_testkit::{redis_url, unique_name};
use serde_json::json;
use tokio::sync::{Notify, Semaphore};

async fn cache<S: ReadModelReader + ReadModelWriter>(inner: S) -> (RedisCache<S>, String) {
    let prefix = unique_name("cqrs_test");
    let cache = RedisCache::connect(inner, &redis_url())
        .await
        .unwrap_or_else(|e| cqrs_testkit::server_unreachable("Redis", &redis_url(), e))
        .with_prefix(&prefix)
        .with_ttl(Duration::from_secs(60));
    (cache, prefix)
}

async fn cleanup(prefix: &str) {
    let url = redis_url();
    let client = cqrs_redis::redis::Client::open(url.as_str()).unwrap();
    let mut conn = cqrs_redis::redis::aio::ConnectionManager::new(client)
        .await
        .unwrap();
    common::drop_keys(&mut conn, prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_read_is_never_older_than_what_the_projection_applied() {
    let inner = MemoryReadModelStore::new();
    let (cache, prefix) = cache(inner.clone()).await;
    let events = MemoryEventStore::new();
    let handle = ProjectionRunner::new(TallyProjection, events.clone(), cache.clone())
        .with_batch_size(30)
        .spawn();

    // Readers hammer the cache while the projection writes: they fill it with what
    // they read, racing the commits.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for r in 0..4_usize {
        let (cache, stop, reads) = (cache.clone(), stop.clone(), reads.clone());
        readers.push(tokio::spawn(async move {
            let ids = tally_ids();
            let mut i = r;
            while !stop.load(Ordering::SeqCst) {
                cache.get("tally", &ids[i % ids.len()]).await.unwrap();
                reads.fetch_add(1, Ordering::Relaxed);
                i += 7;
            }
        }));
    }

    let mut checked = 0;
    for round in 0..25 {
        let head = append_tally(&events, &tally_log(60, 100 + round)).await;
        handle.wait_for_timeout(head, WAIT).await.unwrap();
        // The projection has applied everything up to `head`: every read through the
        // cache returns exactly what the store holds.
        for id in tally_ids() {
            let cached = cache.get("tally", &id).await.unwrap();
            let stored = inner.get("tally", &id).await.unwrap();
            assert_eq!(
                cached, stored,
                "round {round}: `{id}` is stale in the cache"
            );
            checked += 1;
        }
    }
    stop.store(true, Ordering::SeqCst);
    for reader in readers {
        reader.await.unwrap();
    }
    assert!(
        reads.load(Ordering::Relaxed) > 100,
        "readers raced the writer"
    );
    assert!(checked > 2_000);
    handle.stop().await.unwrap();
    cleanup(&prefix).await;
}

/// A store whose `get`, once armed, pauses after reading until released: a reader
/// frozen between reading the store and filling the cache.
#[derive(Clone)]
struct PausingStore {
    inner: MemoryReadModelStore,
    armed: Arc<AtomicBool>,
    read_done: Arc<Notify>,
    resume: Arc<Semaphore>,
}

impl PausingStore {
    fn new() -> Self {
        Self {
            inner: MemoryReadModelStore::new(),
            armed: Arc::default(),
            read_done: Arc::default(),
            resume: Arc::new(Semaphore::new(0)),
        }
    }
}

impl ReadModelReader for PausingStore {
    async fn get(&self, p: &str, id: &str) -> Result<Option<StoredDocument>, Error> {
        let found = self.inner.get(p, id).await?;
        if self.armed.swap(false, Ordering::SeqCst) {
            self.read_done.notify_one();
            self.resume.acquire().await.unwrap().forget();
        }
        Ok(found)
    }
    async fn get_many(
        &self,
        p: &str,
        ids: &[String],
    ) -> Result<HashMap<String, StoredDocument>, Error> {
        self.inner.get_many(p, ids).await
    }
}

impl ReadModelWriter for PausingStore {
    async fn checkpoint(&self, p: &str) -> Result<Position, Error> {
        self.inner.checkpoint(p).await
    }
    async fn commit(&self, p: &str, c: Vec<DocumentChange>, cp: Position) -> Result<(), Error> {
        self.inner.commit(p, c, cp).await
    }
    async fn reset(&self, p: &str) -> Result<(), Error> {
        self.inner.reset(p).await
    }
    async fn alias(&self, a: &str) -> Result<Option<String>, Error> {
        self.inner.alias(a).await
    }
    async fn set_alias(&self, a: &str, t: &str) -> Result<(), Error> {
        self.inner.set_alias(a, t).await
    }
}

fn put(n: i64, p: u64) -> Vec<DocumentChange> {
    vec![DocumentChange::Put {
        id: "a".into(),
        value: json!({ "n": n }),
        position: Position(p),
    }]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_read_before_a_commit_cannot_cache_its_older_copy() {
    let store = PausingStore::new();
    let (cache, prefix) = cache(store.clone()).await;
    store.commit("m", put(1, 1), Position(1)).await.unwrap(); // not through the cache

    // A reader misses, reads n = 1 from the store, and freezes before filling.
    store.armed.store(true, Ordering::SeqCst);
    let reader = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get("m", "a").await.unwrap() })
    };
    store.read_done.notified().await;

    // Meanwhile the projection commits n = 2 through the cache.
    cache.commit("m", put(2, 2), Position(2)).await.unwrap();

    // The reader wakes up and tries to cache n = 1: refused, n = 2 is newer.
    store.resume.add_permits(1);
    let read = reader.await.unwrap().unwrap();
    assert_eq!(read.value, json!({ "n": 1 }), "it read before the commit");
    let now = cache.get("m", "a").await.unwrap().unwrap();
    assert_eq!((now.value, now.position), (json!({ "n": 2 }), Position(2)));

    // Same race against a delete: a frozen reader cannot bring the document back.
    store.armed.store(true, Ordering::SeqCst);
    let mut conn = cqrs_redis::redis::aio::ConnectionManager::new(
        cqrs_redis::redis::Client::open(redis_url().as_str()).unwrap(),
    )
    .await
    .unwrap();
    common::drop_keys(&mut conn, &prefix).await; // evicted: the next read misses
    let reader = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get("m", "a").await.unwrap() })
    };
    store.read_done.notified().await;
    let delete = DocumentChange::Delete {
        id: "a".into(),
        position: Position(3),
    };
    cache.commit("m", vec![delete], Position(3)).await.unwrap();
    store.resume.add_permits(1);
    assert!(reader.await.unwrap().is_some(), "it read before the delete");
    assert_eq!(cache.get("m", "a").await.unwrap(), None);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn a_reset_clears_the_cached_entries() {
    let inner = MemoryReadModelStore::new();
    let (cache, prefix) = cache(inner.clone()).await;
    cache.commit("m", put(1, 1), Position(1)).await.unwrap();
    assert!(cache.get("m", "a").await.unwrap().is_some());
    cache.reset("m").await.unwrap();
    assert_eq!(inner.get("m", "a").await.unwrap(), None);
    assert_eq!(
        cache.get("m", "a").await.unwrap(),
        None,
        "no entry survives a reset"
    );
    // Read models left out of the cache pass straight through.
    let (only_today, prefix2) = cache_only(inner.clone()).await;
    only_today
        .commit("m", put(5, 5), Position(5))
        .await
        .unwrap();
    inner.commit("m", put(6, 6), Position(6)).await.unwrap();
    assert_eq!(
        only_today.get("m", "a").await.unwrap().unwrap().position,
        Position(6)
    );
    cleanup(&prefix).await;
    cleanup(&prefix2).await;
}

async fn cache_only(inner: MemoryReadModelStore) -> (RedisCache<MemoryReadModelStore>, String) {
    let (cache, prefix) = cache(inner).await;
    (cache.only(["today"]), prefix)
}

#[tokio::test]
async fn the_stats_count_hits_and_misses_of_cached_read_models_only() {
    let inner = MemoryReadModelStore::new();
    let (cache, prefix) = cache(inner.clone()).await;
    let cache = cache.only(["m"]);
    assert_eq!(cache.stats().hit_ratio(), None);
    inner.commit("m", put(1, 1), Position(1)).await.unwrap();
    // First read: no entry (a miss, which fills it); the next two are hits.
    for _ in 0..3 {
        assert!(cache.get("m", "a").await.unwrap().is_some());
    }
    // A known absence is a hit too, once filled.
    assert_eq!(cache.get("m", "nobody").await.unwrap(), None);
    assert_eq!(cache.get("m", "nobody").await.unwrap(), None);
    // Read models the cache leaves out are not counted.
    inner.commit("other", put(1, 1), Position(1)).await.unwrap();
    assert!(cache.get("other", "a").await.unwrap().is_some());
    let stats = cache.clone().stats();
    assert_eq!((stats.hits, stats.misses), (3, 2));
    assert_eq!(stats.hit_ratio(), Some(0.6));
    cleanup(&prefix).await;
}
