//! Network faults between a projection runner's read-model store and MongoDB
//! (FerretDB here), through Toxiproxy (`scripts/services.sh up toxiproxy`):
//! connections reset mid-request and a black hole (a half-open connection that
//! never answers). Every call is cut off at the store's deadline; the runner retries
//! through the faults, catches up once they are lifted, and its read model equals a
//! rebuild (`cqrs_testkit::faults`).

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::sync::Arc;
use std::time::Duration;

use cqrs_mongo::{MongoLease, MongoReadModelStore};
use cqrs_testkit::faults::read_model_store_through_faults;
use cqrs_testkit::leases::lease_holder_in_a_black_hole;
use cqrs_testkit::toxiproxy::Proxy;
use cqrs_testkit::{OrUnreachable, unique_name};

const DEADLINE: Duration = Duration::from_secs(1);

/// A store in a database of its own, connected through `proxy`.
async fn through(proxy: &Proxy) -> MongoReadModelStore {
    let url = format!("mongodb://{}/?directConnection=true", proxy.listen());
    MongoReadModelStore::connect(&url, &unique_name("cqrs_faults"))
        .await
        .or_unreachable("MongoDB (through Toxiproxy)", &url)
        .with_deadline(DEADLINE)
}

/// A runner into the store through resets and a black hole, and every call of the
/// store into a black hole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_model_store_through_faults() {
    let proxy = Arc::new(Proxy::new("127.0.0.1:27017"));
    let store = through(&proxy).await;
    read_model_store_through_faults(proxy, store.clone(), DEADLINE).await;
    // Directly: the proxied connections may still be broken by the last fault.
    common::drop_store(common::store_in(store.database().name()).await).await;
}

/// A lease holder whose connection falls into a black hole stops writing, its lease
/// expires, and the other runner takes over while the hole is on; they never write
/// at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holder_in_a_black_hole_steps_down() {
    let proxy = Proxy::new("127.0.0.1:27017");
    let cut_off = through(&proxy).await;
    let direct = common::store_in(cut_off.database().name()).await;
    let report = lease_holder_in_a_black_hole(
        &proxy,
        MongoLease::new(cut_off.database()),
        MongoLease::new(direct.database()),
        Duration::from_secs(1),
        Duration::from_secs(4),
        "mongo_lease",
    )
    .await;
    assert!(report.cut_off_commits > 0, "{report:?}");
    common::drop_store(direct).await;
}
