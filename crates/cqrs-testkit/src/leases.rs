//! Two runners of one projection, each with its own connection to a lease store,
//! while one connection falls into a black hole: the holder cut off must step down
//! before the other takes over, so that the two never write at the same time, and
//! the projection goes on (what every lease store's fault tests run).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cqrs_core::{
    DocumentChange, Error, Index, Lease, MemoryEventStore, MemoryReadModelStore, Position,
    ProjectionRunner, ReadModelReader, ReadModelWriter, StoredDocument,
};

use crate::scenarios::tally_documents;
use crate::tally::{TallyProjection, append_tally, reference_tally, tally_log};
use crate::toxiproxy::{Fault, Proxy};

/// One commit: which runner, when it began and ended.
type Commit = (&'static str, Instant, Instant);

/// A read-model store that records each commit of the runner it belongs to.
#[derive(Clone)]
struct Recorded {
    inner: MemoryReadModelStore,
    runner: &'static str,
    commits: Arc<Mutex<Vec<Commit>>>,
}

impl ReadModelReader for Recorded {
    async fn get(&self, projection: &str, id: &str) -> Result<Option<StoredDocument>, Error> {
        self.inner.get(projection, id).await
    }

    async fn get_many(
        &self,
        projection: &str,
        ids: &[String],
    ) -> Result<HashMap<String, StoredDocument>, Error> {
        self.inner.get_many(projection, ids).await
    }
}

impl ReadModelWriter for Recorded {
    async fn checkpoint(&self, projection: &str) -> Result<Position, Error> {
        self.inner.checkpoint(projection).await
    }

    async fn commit(
        &self,
        projection: &str,
        changes: Vec<DocumentChange>,
        checkpoint: Position,
    ) -> Result<(), Error> {
        let began = Instant::now();
        // A commit that takes a while, as a real store's does: a window in which
        // another writer would show.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let result = self.inner.commit(projection, changes, checkpoint).await;
        self.commits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((self.runner, began, Instant::now()));
        result
    }

    async fn reset(&self, projection: &str) -> Result<(), Error> {
        self.inner.reset(projection).await
    }

    async fn prepare(&self, projection: &str, indexes: &[Index]) -> Result<(), Error> {
        self.inner.prepare(projection, indexes).await
    }

    async fn alias(&self, alias: &str) -> Result<Option<String>, Error> {
        self.inner.alias(alias).await
    }

    async fn set_alias(&self, alias: &str, target: &str) -> Result<(), Error> {
        self.inner.set_alias(alias, target).await
    }
}

/// What happened to the lease while the black hole was on.
#[derive(Debug, Clone, Copy)]
pub struct LeaseReport {
    /// Commits by the runner whose connection fell into the hole.
    pub cut_off_commits: usize,
    /// Commits by the other runner.
    pub other_commits: usize,
    /// From the hole's start to the other runner's first commit.
    pub takeover: Duration,
}

/// Runner `a` takes the lease `name` through `cut_off` (a lease store connected
/// through `proxy`) and applies a stream of tally events; runner `b` stands by with
/// `other` (connected directly). Then `a`'s connection falls into a black hole for
/// `hole`, and is restored. Checks:
/// * `a` and `b` never commit at the same time (each commit is recorded with its
///   start and end; no two of different runners overlap);
/// * `b` takes over while the hole is on (the projection does not stall behind a
///   holder that cannot be reached);
/// * once every event is appended, the read model catches up and equals a rebuild.
///
/// # Panics
/// If any of that does not hold.
pub async fn lease_holder_in_a_black_hole<L: Lease + 'static>(
    proxy: &Proxy,
    cut_off: L,
    other: L,
    ttl: Duration,
    hole: Duration,
    name: &str,
) -> LeaseReport {
    let events = MemoryEventStore::new();
    let documents = MemoryReadModelStore::new();
    let commits = Arc::new(Mutex::new(Vec::new()));
    let recorded = |runner| Recorded {
        inner: documents.clone(),
        runner,
        commits: commits.clone(),
    };
    let runner = |store: Recorded| {
        ProjectionRunner::new(TallyProjection, events.clone(), store)
            .with_name(name)
            .with_batch_size(10)
            .with_max_backoff(Duration::from_millis(200))
    };
    let log = tally_log(4_000, 17);
    let mut chunks = log.chunks(5);
    let a = runner(recorded("a")).with_lease(cut_off, ttl).spawn();
    // `a` leads before `b` starts.
    let mut last = append_tally(&events, chunks.next().expect("events")).await;
    a.wait_for_timeout(last, Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{name}: the first runner never led: {e}"));
    let b = runner(recorded("b")).with_lease(other, ttl).spawn();
    let started = Instant::now();
    let mut hole_start = None;
    let mut hole_end = None;
    for chunk in chunks {
        last = append_tally(&events, chunk).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        let elapsed = started.elapsed();
        if hole_start.is_none() && elapsed >= ttl {
            proxy.add(Fault::BlackHole);
            hole_start = Some(Instant::now());
        }
        if let Some(at) = hole_start
            && hole_end.is_none()
            && at.elapsed() >= hole
        {
            proxy.lift();
            hole_end = Some(Instant::now());
        }
        if hole_end.is_some_and(|end| end.elapsed() >= ttl * 2) {
            break;
        }
    }
    proxy.lift();
    let hole_start = hole_start.unwrap_or_else(|| panic!("{name}: the log ended before the hole"));
    let caught_up = tokio::time::timeout(Duration::from_secs(30), async {
        while documents.checkpoint(name).await.expect("checkpoint") < last {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(caught_up.is_ok(), "{name}: the read model did not catch up");
    let (a_stats, b_stats) = (a.stats(), b.stats());
    a.stop().await.expect("stop a");
    b.stop().await.expect("stop b");
    let stats = format!(
        "a: leader {}, {} leases lost, {} lease errors; b: leader {}, {} lost, {} errors",
        a_stats.leader,
        a_stats.leases_lost,
        a_stats.lease_errors,
        b_stats.leader,
        b_stats.leases_lost,
        b_stats.lease_errors
    );

    let commits = commits
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for (i, (runner, began, ended)) in commits.iter().enumerate() {
        for (other, b_began, b_ended) in &commits[i + 1..] {
            assert!(
                runner == other || ended <= b_began || b_ended <= began,
                "{name}: `{runner}` and `{other}` committed at the same time"
            );
        }
    }
    let takeover = commits
        .iter()
        .filter(|(runner, began, _)| *runner == "b" && *began >= hole_start)
        .map(|(_, began, _)| began.duration_since(hole_start))
        .min()
        .unwrap_or_else(|| {
            let a = commits
                .iter()
                .filter(|c| c.0 == "a" && c.1 >= hole_start)
                .count();
            panic!(
                "{name}: the other runner never took over; `a` committed {a} times after the \
                 hole began ({stats})"
            )
        });
    assert!(
        takeover < hole,
        "{name}: the other runner took over only after the hole ({takeover:?})"
    );
    assert_eq!(
        tally_documents(&documents, name).await,
        reference_tally(&events).await,
        "{name}: the read model differs from a rebuild"
    );
    let report = LeaseReport {
        cut_off_commits: commits.iter().filter(|c| c.0 == "a").count(),
        other_commits: commits.iter().filter(|c| c.0 == "b").count(),
        takeover,
    };
    eprintln!("{name}: {report:?}, no overlapping commits, equal to a rebuild ({stats})");
    report
}

/// The time to live [`a_silent_holder_loses_the_lease`] takes its lease for.
pub const TTL: Duration = Duration::from_millis(600);

/// A holder that goes silent (a frozen process, or one cut off from the server)
/// loses the lease to a holder in another process (`other`, a lease value of its
/// own): not before its time to live, and within `bound` of its last renewal (the
/// time to live for stores whose leases expire on the server; three times it for
/// session leases, whose server ends a silent session). The silent holder learns it
/// at its next renewal, which fails or is refused.
///
/// # Panics
/// If the lease is taken over too early or not within `bound` and half a second, or
/// the silent holder still holds it after.
pub async fn a_silent_holder_loses_the_lease<L: Lease>(
    silent: L,
    other: L,
    bound: Duration,
    name: &str,
) {
    assert!(silent.acquire(name, "silent", TTL).await.expect("acquire"));
    let ttl = TTL;
    // Renewed, it stays held.
    for _ in 0..4 {
        tokio::time::sleep(ttl / 3).await;
        assert!(silent.acquire(name, "silent", ttl).await.expect("renew"));
        assert!(
            !other.acquire(name, "other", ttl).await.expect("acquire"),
            "{name}: taken over while renewed"
        );
    }
    let silence = Instant::now();
    let taken = loop {
        if other.acquire(name, "other", ttl).await.expect("acquire") {
            break silence.elapsed();
        }
        assert!(
            silence.elapsed() < bound + Duration::from_millis(500),
            "{name}: a holder silent for {:?} (time to live {ttl:?}) still holds the lease",
            silence.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(
        taken >= ttl * 2 / 3,
        "{name}: taken over after {taken:?} of silence, before the time to live of {ttl:?}"
    );
    let renewed = silent.acquire(name, "silent", ttl).await;
    assert!(
        !matches!(renewed, Ok(true)),
        "{name}: the silent holder still renews a lease another holds"
    );
    other.release(name, "other").await.expect("release");
    eprintln!("{name}: a silent holder lost the lease after {taken:?} (time to live {ttl:?})");
}
