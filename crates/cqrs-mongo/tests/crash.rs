//! A runner process killed with SIGKILL, again and again, mid-stream: the read model
//! in MongoDB ends equal to a fresh rebuild (nothing lost, nothing applied twice).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use cqrs_core::{MemoryEventStore, Position, ProjectionRunner, ReadModelWriter};
use cqrs_testkit::scenarios::{WAIT, tally_documents};
use cqrs_testkit::tally::{TallyProjection, append_tally, reference_tally, tally_log};
use cqrs_testkit::unique_name;

/// Set in the child process: the database it writes to.
const CHILD_DB: &str = "CQRS_MONGO_CRASH_CHILD_DB";
const TEST: &str = "a_killed_runner_process_leaves_a_read_model_equal_to_a_rebuild";
const EVENTS: usize = 6_000;

/// The same log in every process: the in-memory store numbers positions 1, 2, ...
async fn log() -> (MemoryEventStore, Position) {
    let events = MemoryEventStore::new();
    let head = append_tally(&events, &tally_log(EVENTS, 9)).await;
    (events, head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_runner_process_leaves_a_read_model_equal_to_a_rebuild() {
    if let Ok(db) = std::env::var(CHILD_DB) {
        // The child: run the projection until killed.
        let store = common::store_in(&db).await;
        let (events, _) = log().await;
        let _handle = ProjectionRunner::new(TallyProjection, events, store)
            .with_batch_size(25)
            .spawn();
        tokio::time::sleep(Duration::from_secs(600)).await;
        return;
    }

    let db = unique_name("cqrs_crash");
    let store = common::store_in(&db).await;
    let (events, head) = log().await;
    let mut killed_mid_stream = 0;
    for round in 0..10_u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD_DB, &db)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(250 + (round * 137) % 400)).await;
        child.kill().unwrap(); // SIGKILL: no destructor, no flush, mid-batch.
        child.wait().unwrap();
        let checkpoint = store.checkpoint("tally").await.unwrap();
        if checkpoint >= head {
            break;
        }
        if checkpoint > Position::START {
            killed_mid_stream += 1;
        }
        eprintln!("round {round}: killed at checkpoint {checkpoint} of {head}");
    }
    assert!(
        killed_mid_stream >= 2,
        "the runner was killed mid-stream only {killed_mid_stream} times"
    );

    // A new runner resumes from whatever the killed ones left.
    let handle = ProjectionRunner::new(TallyProjection, events.clone(), store.clone()).spawn();
    handle.wait_for_timeout(head, WAIT).await.unwrap();
    handle.stop().await.unwrap();
    assert_eq!(
        tally_documents(&store, "tally").await,
        reference_tally(&events).await,
        "after {killed_mid_stream} kills the read model differs from a fresh rebuild"
    );
    common::drop_store(store).await;
}
