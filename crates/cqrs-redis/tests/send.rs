//! Every public future of the crate is `Send`, so users can `tokio::spawn` it. This
//! file only has to compile.
#![allow(dead_code, clippy::unwrap_used)]

use cqrs_core::MemoryReadModelStore;
use cqrs_redis::{RedisCache, RedisLease, RedisReadModelStore};

fn assert_send<T: Send>(_: T) {}

fn public_futures_are_send(store: RedisReadModelStore) {
    assert_send(RedisReadModelStore::connect("redis://"));
    assert_send(RedisLease::connect("redis://"));
    assert_send(RedisCache::connect(MemoryReadModelStore::new(), "redis://"));
    assert_send(store.documents("p"));
}

#[test]
fn compiles() {
    // The check is that `public_futures_are_send` compiles.
    let _ = public_futures_are_send;
}
