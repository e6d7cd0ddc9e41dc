//! The broker killed with SIGKILL mid-stream and started again, while events keep
//! coming: the relay and the subscriber resume by themselves, every event is on its
//! topic once, and the read model equals a rebuild.
//!
//! Alone in its test binary: cargo runs test binaries one after another, so no other
//! test loses its broker.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Timeline, append_range};
use cqrs_core::{
    LogReader, MemoryEventStore, MemoryReadModelStore, Position, Projection, ProjectionRunner,
};
use cqrs_kafka::{KafkaRelay, KafkaSubscriber};
use cqrs_testkit::kafka::{assert_exactly_once, read_to_end};
use cqrs_testkit::{HOW_TO_START, kafka_brokers, unique_name};

/// Appends events `from..to` over 10 goal streams, for 3 users.
async fn append(store: &MemoryEventStore, from: u64, to: u64) -> Position {
    append_range(store, from, to, 10, false).await
}

/// `scripts/services.sh COMMAND kafka`.
fn services(command: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/services.sh");
    let status = Command::new("bash")
        .args([script, command, "kafka"])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "services.sh {command} kafka failed; {HOW_TO_START}"
    );
}

/// Starts the broker again if the test ends early, so later tests have one.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        services("start");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_killed_mid_stream_and_restarted_loses_and_repeats_nothing() {
    common::trace();
    let prefix = unique_name("crash");
    let _topics = cqrs_testkit::kafka::DeleteTopics::under(&kafka_brokers(), [prefix.clone()]);
    let store = MemoryEventStore::new();
    let first = append(&store, 0, 300).await;
    let relay = {
        let relay = KafkaRelay::new(&kafka_brokers(), "crash")
            .with_prefix(&prefix)
            .with_topic_layout(3, 1)
            .with_batch_size(25);
        let store = store.clone();
        tokio::spawn(async move { relay.run(&store).await })
    };
    let topics = vec![format!("{prefix}.goal")];
    let documents = MemoryReadModelStore::new();
    let subscriber = KafkaSubscriber::new(&kafka_brokers(), &unique_name("group"), topics.clone());
    let runner = ProjectionRunner::new(Timeline, subscriber, documents.clone())
        .with_batch_size(20)
        .with_max_backoff(Duration::from_secs(2))
        .spawn();
    runner
        .wait_for_timeout(first, Duration::from_secs(60))
        .await
        .unwrap();

    // Events keep coming while the broker dies and comes back.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for round in 0..40 {
                append(&store, 1000 + round * 20, 1000 + (round + 1) * 20).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restart = Restart;
    tokio::task::spawn_blocking(|| services("crash"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(restart); // starts it again
    writer.await.unwrap();
    let head = store.head().await.unwrap();
    runner
        .wait_for_timeout(head, Duration::from_secs(120))
        .await
        .unwrap();
    assert!(
        !relay.is_finished(),
        "the relay resumed by itself: {relay:?}"
    );
    relay.abort();
    runner.stop().await.unwrap();

    // The same as a rebuild from the store, and each event once on the topic.
    let rebuilt = MemoryReadModelStore::new();
    let rebuild = ProjectionRunner::new(Timeline, store.clone(), rebuilt.clone()).spawn();
    rebuild.wait_for(head).await.unwrap();
    rebuild.stop().await.unwrap();
    assert_eq!(
        documents.documents(Timeline::NAME),
        rebuilt.documents(Timeline::NAME)
    );
    let brokers = kafka_brokers();
    let seen =
        tokio::task::spawn_blocking(move || read_to_end(&brokers, &topics, "read_committed"))
            .await
            .unwrap();
    assert_exactly_once(&seen, usize::try_from(head.0).unwrap());
}
