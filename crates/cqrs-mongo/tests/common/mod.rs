//! A database of its own per test, on the server `scripts/services.sh` starts.

#![allow(dead_code, unreachable_pub)]

use cqrs_mongo::MongoReadModelStore;
use cqrs_testkit::{OrUnreachable, mongodb_url, unique_name};

/// A store in a new database; drop it with [`drop_store`].
pub async fn store() -> MongoReadModelStore {
    store_in(&unique_name("cqrs_test")).await
}

/// A store in the database `name`.
pub async fn store_in(name: &str) -> MongoReadModelStore {
    let url = mongodb_url();
    MongoReadModelStore::connect(&url, name)
        .await
        .or_unreachable("MongoDB", &url)
}

/// Drops the store's database.
pub async fn drop_store(store: MongoReadModelStore) {
    store.database().drop().await.expect("drop database");
}
