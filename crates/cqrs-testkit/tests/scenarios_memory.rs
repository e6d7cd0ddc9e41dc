//! The store scenarios on the in-memory adapters: the reference behaviour the real
//! adapters are held to.
#![allow(clippy::unwrap_used)]

use cqrs_core::{MemoryLease, MemoryReadModelStore};
use cqrs_testkit::scenarios;

#[tokio::test]
async fn memory_replay_changes_nothing() {
    scenarios::replay_changes_nothing(MemoryReadModelStore::new(), "tally").await;
}

#[tokio::test]
async fn memory_one_runner_at_a_time() {
    scenarios::one_runner_at_a_time(MemoryReadModelStore::new(), MemoryLease::new(), "tally").await;
}

#[tokio::test]
async fn memory_runners_follow_a_cut_over_from_elsewhere() {
    scenarios::runners_follow_a_cut_over_from_elsewhere(
        MemoryReadModelStore::new(),
        MemoryLease::new(),
    )
    .await;
}

#[tokio::test]
async fn memory_cut_over_without_downtime() {
    scenarios::cut_over_without_downtime(MemoryReadModelStore::new()).await;
}

#[tokio::test]
async fn a_failed_cut_over_changes_nothing_and_keeps_the_live_runner() {
    use cqrs_core::{
        CutOverOptions, Error, MemoryEventStore, ProjectionRunner, ReadModelWriter, cut_over,
    };
    use cqrs_testkit::tally::{TallyProjection, append_tally, tally_log};

    let events = MemoryEventStore::new();
    let store = MemoryReadModelStore::new();
    let head = append_tally(&events, &tally_log(100, 1)).await;
    let live = ProjectionRunner::new(TallyProjection, events.clone(), store.clone()).spawn();
    let next = ProjectionRunner::new(TallyProjection, events.clone(), store.clone())
        .with_name("tally_v2")
        .spawn();
    store.set_alias("tally", "tally_v2").await.unwrap();
    // Already pointing there: refused before anything changes.
    let error = cut_over(
        &store,
        "tally",
        &live,
        &next,
        head,
        CutOverOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, Error::InvalidInput(_)), "{error}");
    assert_eq!(
        store.alias("tally").await.unwrap().as_deref(),
        Some("tally_v2")
    );
    // The live runner still runs: it applies new events.
    let head = append_tally(&events, &tally_log(10, 2)).await;
    live.wait_for_timeout(head, scenarios::WAIT).await.unwrap();
    assert!(!live.is_finished());
    live.stop().await.unwrap();
    next.stop().await.unwrap();
}

/// A subscription that delivers nothing, ever: a new version that stalls.
struct Stalled;

impl cqrs_core::EventSubscriber for Stalled {
    fn subscribe(&self, _: cqrs_core::Position, _: usize) -> cqrs_core::EventBatchStream {
        Box::pin(futures::stream::pending())
    }
}

#[tokio::test]
async fn a_cut_over_to_a_stalled_version_gives_up_at_its_deadline() {
    use cqrs_core::{
        CutOverOptions, Error, MemoryEventStore, ProjectionRunner, ReadModelWriter, cut_over,
    };
    use cqrs_testkit::tally::{TallyProjection, append_tally, tally_log};
    use std::time::Duration;

    let events = MemoryEventStore::new();
    let store = MemoryReadModelStore::new();
    let head = append_tally(&events, &tally_log(50, 3)).await;
    let live = ProjectionRunner::new(TallyProjection, events.clone(), store.clone()).spawn();
    let next = ProjectionRunner::new(TallyProjection, Stalled, store.clone())
        .with_name("tally_v2")
        .spawn();
    let options = CutOverOptions::default().with_deadline(Duration::from_millis(300));
    let error = tokio::time::timeout(
        Duration::from_secs(30),
        cut_over(&store, "tally", &live, &next, head, options),
    )
    .await
    .expect("the cut-over returns at its deadline, it does not hang")
    .unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error}");
    assert_eq!(
        store.alias("tally").await.unwrap(),
        None,
        "nothing switched"
    );
    live.wait_for_timeout(head, scenarios::WAIT).await.unwrap();
    assert!(!live.is_finished(), "the live runner still runs");
    live.stop().await.unwrap();
    next.stop().await.unwrap();
}
