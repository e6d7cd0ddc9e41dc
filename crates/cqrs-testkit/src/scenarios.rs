//! Checks every read-model store must pass, written once and run by each adapter's
//! tests against its real server.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cqrs_core::{
    Aliased, CutOverOptions, Lease, LogReader, MemoryEventStore, Position, Projection,
    ProjectionRunner, ReadModelReader, ReadModelStore, StoredDocument, cut_over,
};

use crate::tally::{TallyProjection, append_tally, reference_tally, tally_log};

/// How long a scenario waits for a runner before it fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// Every id the tally log can touch.
pub fn tally_ids() -> Vec<String> {
    (0..97)
        .map(|k| format!("k{k}"))
        .chain(std::iter::once("all".to_owned()))
        .collect()
}

/// The documents of the read model `name` in `store` (tombstones left out), sorted
/// by id: comparable with [`reference_tally`].
///
/// # Panics
/// If the store fails.
pub async fn tally_documents<S: ReadModelReader>(
    store: &S,
    name: &str,
) -> Vec<(String, StoredDocument)> {
    let found: HashMap<String, StoredDocument> =
        store.get_many(name, &tally_ids()).await.expect("get_many");
    let mut documents: Vec<_> = found
        .into_iter()
        .filter(|(_, d)| !d.value.is_null())
        .collect();
    documents.sort_by(|a, b| a.0.cmp(&b.0));
    documents
}

/// Applies a tally log to `store` under `name` in batches, then replays the whole log
/// again from the start (what a runner does after a crash that lost its checkpoint),
/// and checks the read model equals a fresh in-memory build: replays change nothing.
///
/// # Panics
/// If the read model differs, or the store fails.
pub async fn replay_changes_nothing<S: ReadModelStore + Clone + 'static>(store: S, name: &str) {
    let events = MemoryEventStore::new();
    append_tally(&events, &tally_log(1_500, 7)).await;
    let log = events
        .read_all(Position::START, usize::MAX)
        .await
        .expect("read");
    let runner =
        ProjectionRunner::new(TallyProjection, events.clone(), store.clone()).with_name(name);
    let mut checkpoint = Position::START;
    for batch in log.chunks(100) {
        checkpoint = runner.apply(checkpoint, batch).await.expect("apply");
    }
    let expected = reference_tally(&events).await;
    assert!(expected.len() > 50, "the log touches many documents");
    assert_eq!(
        tally_documents(&store, name).await,
        expected,
        "differs from a rebuild"
    );
    assert_eq!(
        store.checkpoint(name).await.expect("checkpoint"),
        checkpoint
    );
    for batch in log.chunks(37) {
        runner.apply(Position::START, batch).await.expect("replay");
    }
    assert_eq!(
        tally_documents(&store, name).await,
        expected,
        "a replay changed the read model"
    );
    assert_eq!(
        store.checkpoint(name).await.expect("checkpoint"),
        checkpoint,
        "a replay moved the checkpoint back"
    );
}

/// Two runners of the same projection on the same store share `lease`: checks that
/// at no sampled moment both lead, that only the leader moves the read model, that
/// the other takes over after the leader stops, that a third takes over after that
/// one crashes (once the lease expires), and that the result equals a rebuild.
///
/// # Panics
/// If both lead at once, the second never takes over, or the read model differs.
pub async fn one_runner_at_a_time<S, L>(store: S, lease: L, name: &str)
where
    S: ReadModelStore + Clone + 'static,
    L: Lease + Clone + 'static,
{
    // Long enough that a slow batch on a loaded machine does not let the lease lapse
    // (a lapse is allowed by the lease's contract, but would make this check flaky).
    let ttl = Duration::from_secs(2);
    let events = MemoryEventStore::new();
    let head = append_tally(&events, &tally_log(800, 11)).await;
    let start = |_: u8| {
        ProjectionRunner::new(TallyProjection, events.clone(), store.clone())
            .with_name(name)
            .with_batch_size(50)
            .with_lease(lease.clone(), ttl)
            .spawn()
    };
    let first = start(1);
    let second = start(2);
    let mut leaders_seen = [false, false];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        let (a, b) = (first.stats().leader, second.stats().leader);
        assert!(!(a && b), "both runners lead at once");
        leaders_seen[0] |= a;
        leaders_seen[1] |= b;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        leaders_seen[0] ^ leaders_seen[1],
        "exactly one runner led: {leaders_seen:?}"
    );
    let (leader, follower) = if leaders_seen[0] {
        (first, second)
    } else {
        (second, first)
    };
    leader
        .wait_for_timeout(head, WAIT)
        .await
        .expect("leader catches up");
    assert_eq!(follower.stats().events, 0, "the follower applied nothing");
    assert_eq!(
        tally_documents(&store, name).await,
        reference_tally(&events).await
    );

    // The leader stops (and releases the lease): the follower takes over and goes on.
    leader.stop().await.expect("stop");
    let head = append_tally(&events, &tally_log(300, 12)).await;
    follower
        .wait_for_timeout(head, WAIT)
        .await
        .expect("follower takes over");
    assert!(follower.stats().leader);
    assert_eq!(
        tally_documents(&store, name).await,
        reference_tally(&events).await,
        "the read model differs from a rebuild after the take-over"
    );

    // The new leader crashes without releasing the lease: a new runner takes over
    // once the lease has expired.
    follower.abort();
    let third = ProjectionRunner::new(TallyProjection, events.clone(), store.clone())
        .with_name(name)
        .with_lease(lease.clone(), ttl)
        .spawn();
    let head = append_tally(&events, &tally_log(100, 13)).await;
    third
        .wait_for_timeout(head, WAIT)
        .await
        .expect("a new runner takes over");
    assert_eq!(
        tally_documents(&store, name).await,
        reference_tally(&events).await,
        "the read model differs from a rebuild after a crashed leader"
    );
    third.stop().await.expect("stop");
}

/// A rebuild without downtime: the live version of a read model serves readers while
/// a new version is built beside it; [`cut_over`] switches the readers and drops the
/// old version. Readers running all along never miss a document nor see a count go
/// back; afterwards they read the new version, and the old one is gone.
///
/// The store must be empty (a database, prefix or schema of the test's own): the
/// live version is the projection's own name, `tally`.
///
/// # Panics
/// If a reader misses a document, a count goes back, or the switch does not happen.
pub async fn cut_over_without_downtime<S: ReadModelStore + Clone + 'static>(store: S) {
    let alias = TallyProjection::NAME.to_owned();
    let next_name = format!("{alias}_v2");
    let events = MemoryEventStore::new();
    let head = append_tally(&events, &tally_log(1_000, 21)).await;
    let live = ProjectionRunner::new(TallyProjection, events.clone(), store.clone()).spawn();
    live.wait_for_timeout(head, WAIT)
        .await
        .expect("live catches up");

    let readers = Arc::new(Aliased::new(store.clone()).with_refresh(Duration::from_millis(20)));
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let (readers, done, reads, alias) =
            (readers.clone(), done.clone(), reads.clone(), alias.clone());
        tasks.push(tokio::spawn(async move {
            let mut last = 0;
            while !done.load(Ordering::SeqCst) {
                let doc = readers.get(&alias, "all").await.expect("read");
                let doc = doc.expect("a reader found no document: downtime");
                let count = doc.value["count"].as_u64().expect("count");
                assert!(count >= last, "a count went back: {last} -> {count}");
                last = count;
                reads.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }));
    }

    // The new version builds beside the live one while events keep coming.
    let next = ProjectionRunner::new(TallyProjection, events.clone(), store.clone())
        .with_name(&next_name)
        .with_batch_size(40)
        .rebuild()
        .await
        .expect("rebuild");
    let head = append_tally(&events, &tally_log(200, 22)).await;
    let reads_before = reads.load(Ordering::Relaxed);
    // The grace period is far longer than the readers' refresh (20 ms) and than a read
    // descheduled on a loaded machine.
    let options = CutOverOptions::default()
        .with_grace(Duration::from_secs(1))
        .with_deadline(WAIT);
    let outcome = cut_over(&store, &alias, &live, &next, head, options)
        .await
        .expect("cut over");
    assert_eq!(outcome.previous, alias);
    assert_eq!(outcome.current, next_name);
    live.join()
        .await
        .expect("the old version's runner ended cleanly");
    tokio::time::sleep(Duration::from_millis(50)).await;
    done.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.expect("reader");
    }
    assert!(
        reads.load(Ordering::Relaxed) > reads_before,
        "readers kept reading during the cut-over"
    );

    assert_eq!(
        store.alias(&alias).await.expect("alias"),
        Some(next_name.clone())
    );
    assert!(
        tally_documents(&store, &alias).await.is_empty(),
        "the old version was dropped"
    );
    assert_eq!(
        store.checkpoint(&alias).await.expect("checkpoint"),
        Position::START
    );
    // The new version is live: it follows new events, and readers see them.
    let head = append_tally(&events, &tally_log(50, 23)).await;
    next.wait_for_timeout(head, WAIT)
        .await
        .expect("next follows");
    let expected = reference_tally(&events).await;
    assert_eq!(tally_documents(&store, &next_name).await, expected);
    let all = readers
        .get(&alias, "all")
        .await
        .expect("read")
        .expect("all");
    let want = expected.iter().find(|(id, _)| id == "all").expect("all");
    assert_eq!(all, want.1);
    // A runner started later under the projection's name follows the alias, and
    // resumes from the new version's checkpoint.
    next.stop().await.expect("stop");
    let restarted = ProjectionRunner::new(TallyProjection, events.clone(), store.clone()).spawn();
    let head = append_tally(&events, &tally_log(20, 24)).await;
    restarted
        .wait_for_timeout(head, WAIT)
        .await
        .expect("restart");
    assert_eq!(restarted.target(), next_name);
    assert_eq!(restarted.stats().events, 20, "resumed, not rebuilt");
    assert_eq!(
        tally_documents(&store, &next_name).await,
        reference_tally(&events).await
    );
    restarted.stop().await.expect("stop");
}

/// A rebuild cut over by another process: two workers (a leader and a standby,
/// behind `lease`) keep the read model `tally`; a rebuild elsewhere builds
/// `tally_r2` beside it, stops, and points the alias `tally` at it. The leader
/// follows the alias (it stops writing `tally` and resumes `tally_r2` from its
/// checkpoint), the standby follows too (it takes over `tally_r2` when the leader
/// dies), and the read model equals a rebuild all along.
///
/// The store must be empty (the live version is the projection's own name, `tally`).
///
/// # Panics
/// If a worker goes on writing the old version, does not follow the alias, or the
/// new version differs from a rebuild.
pub async fn runners_follow_a_cut_over_from_elsewhere<S, L>(store: S, lease: L)
where
    S: ReadModelStore + Clone + 'static,
    L: Lease + Clone + 'static,
{
    let ttl = Duration::from_secs(2);
    let next_name = format!("{}_r2", TallyProjection::NAME);
    let events = MemoryEventStore::new();
    let head = append_tally(&events, &tally_log(600, 31)).await;
    let worker = || {
        ProjectionRunner::new(TallyProjection, events.clone(), store.clone())
            .with_batch_size(50)
            .with_lease(lease.clone(), ttl)
            .spawn()
    };
    let workers = [worker(), worker()];
    let deadline = tokio::time::Instant::now() + WAIT;
    let leader = loop {
        if let Some(i) = workers.iter().position(|w| w.stats().leader) {
            break i;
        }
        assert!(tokio::time::Instant::now() < deadline, "no worker leads");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    workers[leader]
        .wait_for_timeout(head, WAIT)
        .await
        .expect("the leader catches up");

    // The rebuild, as another process runs it: a new version beside the live one,
    // under a lease of its own name, while events keep coming.
    let next = ProjectionRunner::new(TallyProjection, events.clone(), store.clone())
        .with_name(&next_name)
        .with_lease(lease.clone(), ttl)
        .spawn();
    let head = append_tally(&events, &tally_log(200, 32)).await;
    next.wait_for_timeout(head, WAIT)
        .await
        .expect("the rebuild catches up");
    next.stop()
        .await
        .expect("the rebuild stops, releasing its lease");
    store
        .set_alias(TallyProjection::NAME, &next_name)
        .await
        .expect("the cut-over");

    // The workers follow (within a second): new events reach the new version, and
    // then no longer the old one.
    let wait_for_next = |head: Position| {
        let store = store.clone();
        let next_name = next_name.clone();
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            while store.checkpoint(&next_name).await.expect("checkpoint") < head {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no worker followed the alias to {next_name}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let head = append_tally(&events, &tally_log(300, 33)).await;
    wait_for_next(head).await;
    // Until every runner has seen the alias move, the leader of the old version may
    // still write it (a second at most), which nobody reads any more.
    let deadline = tokio::time::Instant::now() + WAIT;
    while workers
        .iter()
        .any(|w| w.stats().leader && w.target() != next_name)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a worker still leads the old version"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let old = store
        .checkpoint(TallyProjection::NAME)
        .await
        .expect("checkpoint");
    let head = append_tally(&events, &tally_log(100, 35)).await;
    wait_for_next(head).await;
    assert_eq!(
        store
            .checkpoint(TallyProjection::NAME)
            .await
            .expect("checkpoint"),
        old,
        "a worker went on writing the old version"
    );
    assert_eq!(
        tally_documents(&store, &next_name).await,
        reference_tally(&events).await,
        "the new version differs from a rebuild after the workers took it over"
    );
    let leading: Vec<_> = workers.iter().filter(|w| w.stats().leader).collect();
    assert_eq!(leading.len(), 1, "one worker leads");
    assert_eq!(leading[0].target(), next_name);

    // The standby followed too: it takes the new version over when the leader dies.
    let [a, b] = workers;
    let (dead, standby) = if a.stats().leader { (a, b) } else { (b, a) };
    dead.abort();
    let head = append_tally(&events, &tally_log(100, 34)).await;
    standby
        .wait_for_timeout(head, WAIT)
        .await
        .expect("the standby takes over the new version");
    assert_eq!(standby.target(), next_name);
    assert_eq!(
        store
            .checkpoint(TallyProjection::NAME)
            .await
            .expect("checkpoint"),
        old,
        "the standby wrote the old version"
    );
    assert_eq!(
        tally_documents(&store, &next_name).await,
        reference_tally(&events).await
    );
    standby.stop().await.expect("stop");
}

/// A lease with a time to live: exclusive, renewable by its holder only, released by
/// its holder only, and free again once expired.
///
/// # Panics
/// If the lease breaks one of those rules, or the store fails.
pub async fn lease_is_exclusive_until_released_or_expired<L: Lease>(lease: L) {
    let ttl = Duration::from_millis(300);
    assert!(lease.acquire("p", "a", ttl).await.expect("acquire"));
    assert!(!lease.acquire("p", "b", ttl).await.expect("acquire"));
    assert!(
        lease.acquire("p", "a", ttl).await.expect("acquire"),
        "renewal"
    );
    lease.release("p", "b").await.expect("release");
    assert!(
        !lease.acquire("p", "b", ttl).await.expect("acquire"),
        "b cannot release a's lease"
    );
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert!(
        lease.acquire("p", "b", ttl).await.expect("acquire"),
        "expired"
    );
    lease.release("p", "b").await.expect("release");
    assert!(
        lease.acquire("p", "a", ttl).await.expect("acquire"),
        "released"
    );
}
