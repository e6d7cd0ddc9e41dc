//! Redis stopped mid-run and started again: the cache serves reads from the store
//! underneath meanwhile, the runners wait and retry, and afterwards the read model
//! equals a fresh rebuild and the cache equals the store. The only test of this
//! binary, because it stops the server every test here uses.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use cqrs_core::{MemoryEventStore, MemoryReadModelStore, ProjectionRunner, ReadModelReader};
use cqrs_redis::RedisCache;
use cqrs_testkit::scenarios::{WAIT, tally_documents, tally_ids};
use cqrs_testkit::tally::{TallyProjection, append_tally, reference_tally, tally_log};
use cqrs_testkit::{redis_url, unique_name};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_loses_no_event_and_serves_no_stale_read() {
    let store = common::store().await;
    let inner = MemoryReadModelStore::new();
    let prefix = unique_name("cqrs_test");
    let cache = RedisCache::connect(inner.clone(), &redis_url())
        .await
        .unwrap()
        .with_prefix(&prefix);
    let events = MemoryEventStore::new();
    let in_redis = ProjectionRunner::new(TallyProjection, events.clone(), store.clone())
        .with_max_backoff(Duration::from_millis(200))
        .spawn();
    let cached = ProjectionRunner::new(TallyProjection, events.clone(), cache.clone())
        .with_max_backoff(Duration::from_millis(200))
        .spawn();
    let head = append_tally(&events, &tally_log(500, 31)).await;
    in_redis.wait_for_timeout(head, WAIT).await.unwrap();
    cached.wait_for_timeout(head, WAIT).await.unwrap();
    for id in tally_ids() {
        cache.get("tally", &id).await.unwrap(); // warm
    }

    cqrs_testkit::services("stop", "redis");
    // Reads through the cache fall back to the store underneath: current answers.
    for id in tally_ids() {
        assert_eq!(
            cache.get("tally", &id).await.unwrap(),
            inner.get("tally", &id).await.unwrap()
        );
    }
    // New events: neither runner can commit (the cache's runner cannot mark its
    // entries, so it does not write the store underneath either).
    let head = append_tally(&events, &tally_log(300, 32)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(in_redis.position() < head && cached.position() < head);
    assert!(
        !in_redis.is_finished() && !cached.is_finished(),
        "runners retry, not die"
    );

    cqrs_testkit::services("start", "redis");
    // The server came back empty (the test server keeps nothing on disk): the Redis
    // runner finds no checkpoint and rebuilds, the cache's runner resumes.
    in_redis.wait_for_timeout(head, WAIT).await.unwrap();
    cached.wait_for_timeout(head, WAIT).await.unwrap();
    let expected = reference_tally(&events).await;
    assert_eq!(tally_documents(&store, "tally").await, expected);
    assert_eq!(tally_documents(&inner, "tally").await, expected);
    for id in tally_ids() {
        assert_eq!(
            cache.get("tally", &id).await.unwrap(),
            inner.get("tally", &id).await.unwrap(),
            "`{id}` is stale in the cache after the outage"
        );
    }
    in_redis.stop().await.unwrap();
    cached.stop().await.unwrap();
    common::drop_keys(&mut store.connection(), store.prefix()).await;
    common::drop_keys(&mut store.connection(), &prefix).await;
}
