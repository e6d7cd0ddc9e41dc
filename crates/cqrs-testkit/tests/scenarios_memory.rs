//! The store scenarios on the in-memory adapters: the reference behaviour the real
//! adapters are held to.

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
async fn memory_cut_over_without_downtime() {
    scenarios::cut_over_without_downtime(MemoryReadModelStore::new()).await;
}
