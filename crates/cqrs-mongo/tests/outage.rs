//! The MongoDB server stopped mid-run and started again: the runner waits and retries,
//! and afterwards the read model equals a fresh rebuild. The only test of this binary,
//! because it stops the server every test here uses.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use cqrs_core::{MemoryEventStore, ProjectionRunner};
use cqrs_testkit::scenarios::{WAIT, tally_documents};
use cqrs_testkit::tally::{TallyProjection, append_tally, reference_tally, tally_log};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_loses_no_event_and_applies_none_twice() {
    let store = common::store().await;
    let events = MemoryEventStore::new();
    let handle = ProjectionRunner::new(TallyProjection, events.clone(), store.clone())
        .with_batch_size(50)
        .with_max_backoff(Duration::from_millis(300))
        .spawn();
    let head = append_tally(&events, &tally_log(400, 41)).await;
    handle.wait_for_timeout(head, WAIT).await.unwrap();

    cqrs_testkit::services("stop", "mongo");
    let head = append_tally(&events, &tally_log(400, 42)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        handle.position() < head,
        "nothing can be committed while it is down"
    );
    assert!(!handle.is_finished(), "the runner retries, it does not die");
    cqrs_testkit::services("start", "mongo");

    handle.wait_for_timeout(head, WAIT).await.unwrap();
    handle.stop().await.unwrap();
    assert_eq!(
        tally_documents(&store, "tally").await,
        reference_tally(&events).await,
        "after the outage the read model differs from a fresh rebuild"
    );
    common::drop_store(store).await;
}
