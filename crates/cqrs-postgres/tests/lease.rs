//! Leases as advisory locks, and rebuilds cut over without downtime, on PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    // Renewed within its time to live, it stays held for another process (another
    // PgLease).
    for _ in 0..3 {
        tokio::time::sleep(ttl / 3).await;
        assert!(first.acquire(&name, "a", ttl).await.unwrap(), "renewal");
    }
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

/// The server ends a lease's session that goes silent for its time to live
/// (`idle_session_timeout`), so a frozen or cut-off holder does not keep the lock
/// for as long as its connection stays open.
#[tokio::test]
async fn a_silent_holder_loses_the_lease() {
    let db = TestDb::new(4).await;
    let lease = || PgLease::new(db.pool.clone());
    let name = unique_name("silent");
    let bound = cqrs_testkit::leases::TTL * 3;
    cqrs_testkit::leases::a_silent_holder_loses_the_lease(lease(), lease(), bound, &name).await;
    db.drop().await;
}

#[tokio::test]
async fn runners_follow_a_cut_over_from_another_process() {
    let db = TestDb::new(8).await;
    let lease = PgLease::new(db.pool.clone());
    scenarios::runners_follow_a_cut_over_from_elsewhere(db.read_models(), lease).await;
    db.drop().await;
}

#[tokio::test]
async fn a_rebuild_is_cut_over_without_downtime() {
    let db = TestDb::new(8).await;
    scenarios::cut_over_without_downtime(db.read_models()).await;
    db.drop().await;
}

/// A TCP proxy to PostgreSQL that can stall new connections (accepted, never
/// answered), as a server behind a broken network path does.
struct StallingProxy {
    port: u16,
    stall: Arc<AtomicBool>,
}

impl StallingProxy {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stall = Arc::new(AtomicBool::new(false));
        let stalling = stall.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if stalling.load(Ordering::SeqCst) {
                    held.push(client); // never answered, never closed
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self { port, stall }
    }
}

#[tokio::test]
async fn a_stalled_connect_for_one_lease_does_not_delay_renewing_another() {
    let db = TestDb::new(2).await;
    let real = db.pool.connect_options();
    let proxy = StallingProxy::start(format!("{}:{}", real.get_host(), real.get_port())).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with((*real).clone().port(proxy.port));
    let lease = PgLease::new(pool).with_connect_timeout(Duration::from_secs(30));
    let ttl = Duration::from_secs(3);
    let (held, wanted) = (unique_name("held"), unique_name("wanted"));
    assert!(lease.acquire(&held, "a", ttl).await.unwrap());

    // New connections now hang: taking a second lease waits on its connect...
    proxy.stall.store(true, Ordering::SeqCst);
    let taking = {
        let lease = lease.clone();
        tokio::spawn(async move { lease.acquire(&wanted, "b", ttl).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!taking.is_finished(), "the second lease's connect hangs");
    // ... while the first lease renews on its own connection, at once.
    let renewed = tokio::time::timeout(ttl / 3, lease.acquire(&held, "a", ttl))
        .await
        .expect("the renewal waited for the other lease's stalled connect");
    assert!(renewed.unwrap());
    taking.abort();
    lease.release(&held, "a").await.unwrap();
    db.drop().await;
}

#[tokio::test]
async fn a_lease_connection_that_hangs_fails_at_its_deadline() {
    let db = TestDb::new(2).await;
    let real = db.pool.connect_options();
    let proxy = StallingProxy::start(format!("{}:{}", real.get_host(), real.get_port())).await;
    proxy.stall.store(true, Ordering::SeqCst);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with((*real).clone().port(proxy.port));
    let lease = PgLease::new(pool).with_connect_timeout(Duration::from_millis(300));
    let attempt = tokio::time::timeout(
        Duration::from_secs(20),
        lease.acquire(&unique_name("l"), "a", Duration::from_secs(1)),
    )
    .await
    .expect("the attempt ends at its deadline");
    let error = attempt.unwrap_err();
    assert!(matches!(error, cqrs_core::Error::Backend { .. }), "{error}");
    db.drop().await;
}
