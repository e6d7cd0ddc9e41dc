//! A key prefix of its own per test, on the server `scripts/services.sh` starts.

#![allow(dead_code, unreachable_pub)]

use cqrs_redis::RedisReadModelStore;
use cqrs_redis::redis::aio::ConnectionManager;
use cqrs_testkit::{OrUnreachable, redis_url, unique_name};

/// A store under a new key prefix; remove its keys with [`drop_keys`].
pub async fn store() -> RedisReadModelStore {
    let url = redis_url();
    RedisReadModelStore::connect(&url)
        .await
        .or_unreachable("Redis", &url)
        .with_prefix(&unique_name("cqrs_test"))
}

/// Removes every key under `prefix`.
pub async fn drop_keys(conn: &mut ConnectionManager, prefix: &str) {
    let keys: Vec<String> = cqrs_redis::redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(conn)
        .await
        .expect("KEYS");
    if !keys.is_empty() {
        let _: i64 = cqrs_redis::redis::cmd("UNLINK")
            .arg(&keys)
            .query_async(conn)
            .await
            .expect("UNLINK");
    }
}
