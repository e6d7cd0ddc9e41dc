//! Leases as advisory locks, and rebuilds cut over without downtime, on PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::TestDb;
use cqrs_core::Lease;
use cqrs_postgres::PgLease;
use cqrs_testkit::scenarios;
use cqrs_testkit::unique_name;

#[tokio::test]
async fn one_runner_at_a_time_with_an_advisory_lock() {
    let db = TestDb::new(8).await;
    let lease = PgLease::new(db.pool.clone());
    scenarios::one_runner_at_a_time(db.read_models(), lease, &unique_name("tally")).await;
    db.drop().await;
}

#[tokio::test]
async fn a_lease_is_exclusive_until_released_or_its_session_ends() {
    let db = TestDb::new(4).await;
    let (first, second) = (PgLease::new(db.pool.clone()), PgLease::new(db.pool.clone()));
    let name = unique_name("lease");
    let ttl = Duration::from_millis(300);
    assert!(first.acquire(&name, "a", ttl).await.unwrap());
    assert!(!second.acquire(&name, "b", ttl).await.unwrap());
    assert!(
        !first.acquire(&name, "b", ttl).await.unwrap(),
        "held by a in this process"
    );
    assert!(first.acquire(&name, "a", ttl).await.unwrap(), "renewal");
    // For another process (another PgLease), the lock lasts as long as the holder's
    // session, whatever the time to live.
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert!(
        !second.acquire(&name, "b", ttl).await.unwrap(),
        "still held"
    );
    first.release(&name, "a").await.unwrap();
    assert!(second.acquire(&name, "b", ttl).await.unwrap(), "released");
    // The holder's process dies: its session ends, and the lock with it.
    drop(second);
    let third = PgLease::new(db.pool.clone());
    let mut taken = false;
    for _ in 0..50 {
        if third.acquire(&name, "c", ttl).await.unwrap() {
            taken = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(taken, "a dropped holder's lock is freed");
    third.release(&name, "c").await.unwrap();
    db.drop().await;
}

#[tokio::test]
async fn a_rebuild_is_cut_over_without_downtime() {
    let db = TestDb::new(8).await;
    scenarios::cut_over_without_downtime(db.read_models()).await;
    db.drop().await;
}
