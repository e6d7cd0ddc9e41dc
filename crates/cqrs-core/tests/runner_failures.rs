//! The runner under failing stores: backoff that starts small again after a success,
//! lease renewals that fail told apart from leases taken away, and projections that
//! are not replay-safe caught by the test harness.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use common::{Account, AccountEvent, Balances, FaultyStore, deposit, open};
use cqrs_core::testing::ProjectionTest;
use cqrs_core::{
    Envelope, Error, Lease, MemoryEventStore, MemoryLease, MemoryReadModelStore, Metadata,
    Projection, ProjectionRunner, Repository,
};

#[tokio::test(start_paused = true)]
async fn backoff_starts_small_again_after_a_batch_goes_through() {
    let events = MemoryEventStore::new();
    let read = FaultyStore::default();
    let repo = Repository::<Account, _>::new(events.clone());
    let first = repo.execute(&open("a"), Metadata::new()).await.unwrap();

    // Six failures in a row: the waits grow to about 1.6 s.
    read.failing_commits.store(6, Ordering::SeqCst);
    let handle = ProjectionRunner::new(Balances, events.clone(), read.clone()).spawn();
    let reader = handle.read_model::<Balances, _>(read.clone());
    reader.wait_for_outcome(&first).await.unwrap();
    assert_eq!(handle.stats().retries, 6);
    assert_eq!(handle.stats().backoff, Duration::ZERO, "healthy again");

    // One more failure after the success waits the initial time, not 3.2 s.
    read.failing_commits.store(1, Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    let second = repo
        .execute(&deposit("a", 5), Metadata::new())
        .await
        .unwrap();
    reader.wait_for_outcome(&second).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(handle.stats().retries, 7);
    assert!(
        waited < Duration::from_millis(200),
        "the retry after a success waited {waited:?} (virtual time)"
    );
    handle.stop().await.unwrap();
}

/// A lease that is granted once, then for one renewal either cannot be reached
/// (`refused: false`) or is refused because another holder has it (`refused: true`).
#[derive(Clone)]
struct Scripted {
    inner: MemoryLease,
    calls: Arc<AtomicU32>,
    refused: bool,
}

impl Lease for Scripted {
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, Error> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 1 {
            if self.refused {
                return Ok(false);
            }
            return Err(Error::backend("lease", "connection refused"));
        }
        self.inner.acquire(name, holder, ttl).await
    }
    async fn release(&self, name: &str, holder: &str) -> Result<(), Error> {
        self.inner.release(name, holder).await
    }
}

/// Runs a leased runner through the scripted lease until it has renewed and taken
/// the lease back, and returns its stats.
async fn after_one_failed_renewal(refused: bool) -> cqrs_core::ProjectionStats {
    let events = MemoryEventStore::new();
    let read = MemoryReadModelStore::new();
    let lease = Scripted {
        inner: MemoryLease::new(),
        calls: Arc::default(),
        refused,
    };
    let handle = ProjectionRunner::new(Balances, events.clone(), read.clone())
        .with_lease(lease.clone(), Duration::from_millis(300))
        .spawn();
    // Taken, then one renewal fails, then taken again.
    for _ in 0..100 {
        if lease.calls.load(Ordering::SeqCst) >= 3 && handle.stats().leader {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = handle.stats();
    assert!(stats.leader, "it leads again afterwards: {stats:?}");
    handle.stop().await.unwrap();
    stats
}

#[tokio::test(start_paused = true)]
async fn a_renewal_that_cannot_reach_the_store_is_not_reported_as_a_lost_lease() {
    let stats = after_one_failed_renewal(false).await;
    assert_eq!(stats.lease_errors, 1, "{stats:?}");
    assert_eq!(stats.leases_lost, 0, "nobody else took it: {stats:?}");
    assert!(
        stats
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("connection refused")),
        "{stats:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_renewal_refused_counts_as_a_lost_lease() {
    let stats = after_one_failed_renewal(true).await;
    assert_eq!(stats.leases_lost, 1, "{stats:?}");
    assert_eq!(stats.lease_errors, 0, "{stats:?}");
}

/// Counts its calls in a field: the documents depend on how often it ran, not only
/// on the events. Not replay-safe.
#[derive(Default)]
struct CallCounter {
    calls: AtomicU64,
}

impl Projection for CallCounter {
    const NAME: &'static str = "call_counter";
    type Event = AccountEvent;
    type Document = u64;
    fn document_ids(&self, _: &Envelope<AccountEvent>) -> Vec<String> {
        vec!["calls".into()]
    }
    fn apply(&self, _: &str, doc: &mut Option<u64>, _: &Envelope<AccountEvent>) {
        *doc = Some(self.calls.fetch_add(1, Ordering::SeqCst) + 1);
    }
}

#[test]
#[should_panic(expected = "not replay-safe")]
fn the_projection_harness_catches_a_projection_that_is_not_replay_safe() {
    let _ = ProjectionTest::new(CallCounter::default()).given(
        "account-a",
        [
            AccountEvent::Opened {
                owner: "ada".into(),
            },
            AccountEvent::Withdrawn { amount: 1 },
        ],
    );
}

#[test]
fn the_projection_harness_accepts_a_replay_safe_projection() {
    let test = ProjectionTest::new(Balances)
        .given(
            "account-a",
            [AccountEvent::Opened {
                owner: "ada".into(),
            }],
        )
        .given("account-a", [AccountEvent::Withdrawn { amount: 0 }]);
    assert_eq!(test.document("totals").map(|d| d.events), Some(2));
}
