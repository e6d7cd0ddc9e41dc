//! The relay against the Kafka that `scripts/services.sh` starts: every event on its
//! topic exactly once for `read_committed` consumers, in per-stream order, with its
//! headers, also when the relay is killed at random points and restarted.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

use std::time::{Duration, Instant};

use cqrs_core::{
    AppendRequest, EventAppender, ExpectedVersion, LogReader, MemoryEventStore, Metadata, NewEvent,
    Position, RawEvent,
};
use cqrs_kafka::{KafkaRelay, headers};
use cqrs_testkit::kafka::{Seen, assert_exactly_once, read_to_end};
use cqrs_testkit::{OrUnreachable, kafka_brokers, unique_name};

const LIMIT: Duration = Duration::from_secs(90);

fn raw(n: u64) -> NewEvent {
    NewEvent {
        event_id: uuid_v7(),
        event: RawEvent {
            event_type: "test.Happened".into(),
            schema_version: 1,
            payload: serde_json::json!({ "n": n }),
        },
        metadata: Metadata::new().with_user(format!("user-{}", n % 3)),
    }
}

fn uuid_v7() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// Appends `count` events round-robin to `streams` streams of two aggregate types.
async fn append(store: &MemoryEventStore, count: u64, streams: u64) -> Position {
    let mut last = Position::START;
    for n in 0..count {
        let s = n % streams;
        let stream = if s % 2 == 0 {
            format!("goal-{s}")
        } else {
            format!("category-{s}")
        };
        last = store
            .append(AppendRequest::new(
                stream,
                ExpectedVersion::Any,
                vec![raw(n)],
            ))
            .await
            .unwrap()
            .position
            .unwrap();
    }
    last
}

/// Every record of `topics`, read with `read_committed`.
fn read_committed(brokers: &str, topics: &[String]) -> Vec<Seen> {
    read_to_end(brokers, topics, "read_committed")
}

/// Runs `relay` until its checkpoint reaches `head`.
async fn relay_until(relay: &KafkaRelay, store: &MemoryEventStore, head: Position) {
    let started = Instant::now();
    let run = relay.run(store);
    tokio::pin!(run);
    loop {
        tokio::select! {
            result = &mut run => panic!("the relay stopped: {result:?}"),
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if relay
            .checkpoint()
            .await
            .or_unreachable("Kafka", &kafka_brokers())
            >= head
        {
            return;
        }
        assert!(started.elapsed() < LIMIT, "the relay did not reach {head}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_published_once_with_its_headers_and_a_restart_resumes() {
    let brokers = kafka_brokers();
    let prefix = unique_name("relay");
    let _topics = cqrs_testkit::kafka::DeleteTopics::under(&brokers, [prefix.clone()]);
    let store = MemoryEventStore::new();
    let head = append(&store, 50, 6).await;
    let relay = KafkaRelay::new(&brokers, "test")
        .with_prefix(&prefix)
        .with_topic_layout(3, 1)
        .with_batch_size(7);
    relay_until(&relay, &store, head).await;

    let topics = vec![format!("{prefix}.goal"), format!("{prefix}.category")];
    let seen = tokio::task::spawn_blocking({
        let (brokers, topics) = (brokers.clone(), topics.clone());
        move || read_committed(&brokers, &topics)
    })
    .await
    .unwrap();
    assert_exactly_once(&seen, 50);
    let first = seen.iter().find(|s| s.key == "goal-0").unwrap();
    assert_eq!(first.topic, format!("{prefix}.goal"));
    assert_eq!(first.headers[headers::EVENT_TYPE], "test.Happened");
    assert_eq!(first.headers[headers::SCHEMA_VERSION], "1");
    assert_eq!(first.headers[headers::USER_ID], "user-0");
    assert!(first.headers.contains_key(headers::POSITION));
    // Every partition of both topics ends with a watermark at the last position.
    for topic in &topics {
        for partition in 0..3 {
            let last = seen
                .iter()
                .rfind(|s| &s.topic == topic && s.partition == partition)
                .unwrap();
            assert_eq!(last.headers[headers::WATERMARK], head.to_string());
        }
    }

    // A new relay of the same name resumes after its checkpoint: nothing twice.
    let head = append(&store, 20, 6).await;
    let again = KafkaRelay::new(&brokers, "test")
        .with_prefix(&prefix)
        .with_topic_layout(3, 1)
        .with_batch_size(7);
    relay_until(&again, &store, head).await;
    let seen = tokio::task::spawn_blocking(move || read_committed(&brokers, &topics))
        .await
        .unwrap();
    assert_exactly_once(&seen, 70);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_ten_times_leaves_each_event_once() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let brokers = kafka_brokers();
    let prefix = unique_name("relay");
    let _topics = cqrs_testkit::kafka::DeleteTopics::under(&brokers, [prefix.clone()]);
    let store = MemoryEventStore::new();
    let head = append(&store, 3_000, 20).await;
    let relay = || {
        KafkaRelay::new(&brokers, "killed")
            .with_prefix(&prefix)
            .with_topic_layout(3, 1)
            .with_batch_size(10)
    };
    // Each run is killed at a pseudo-random moment once it is publishing (its
    // checkpoint moved): almost always inside a transaction.
    let mut state = 0x2545_f491_4f6c_dd1d_u64 ^ u64::from(std::process::id());
    for _ in 0..10 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let before = relay().checkpoint().await.or_unreachable("Kafka", &brokers);
        let run = tokio::spawn({
            let relay = relay();
            let store = store.clone();
            async move { relay.run(&store).await }
        });
        let started = Instant::now();
        assert!(before < head, "events left to publish when killed");
        while relay().checkpoint().await.unwrap() == before {
            assert!(started.elapsed() < LIMIT, "the relay made no progress");
            if run.is_finished() {
                panic!("the relay ended: {:?}", run.await);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis((state >> 33) % 80)).await;
        run.abort();
        let _ = run.await;
    }
    relay_until(&relay(), &store, head).await;
    assert_eq!(store.head().await.unwrap(), head);

    let topics = vec![format!("{prefix}.goal"), format!("{prefix}.category")];
    let (seen, uncommitted) = tokio::task::spawn_blocking(move || {
        (
            read_committed(&brokers, &topics),
            read_to_end(&brokers, &topics, "read_uncommitted"),
        )
    })
    .await
    .unwrap();
    // The kills did interrupt transactions: their records are in the log, aborted.
    println!(
        "{} records in the log, {} of them from aborted transactions",
        uncommitted.len(),
        uncommitted.len() - seen.len()
    );
    assert!(
        uncommitted.len() > seen.len(),
        "no kill landed inside a transaction: the test did not test"
    );
    assert_exactly_once(&seen, 3_000);
}

/// Waits until the relay's committed checkpoint reaches `head`.
async fn wait_for_checkpoint(relay: &KafkaRelay, head: Position) {
    let started = Instant::now();
    while relay.checkpoint().await.unwrap() < head {
        assert!(started.elapsed() < LIMIT, "no relay got to {head}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_relay_waits_for_the_lease_and_takes_over() {
    let brokers = kafka_brokers();
    let prefix = unique_name("relay");
    let _topics = cqrs_testkit::kafka::DeleteTopics::under(&brokers, [prefix.clone()]);
    let store = MemoryEventStore::new();
    let lease = cqrs_core::MemoryLease::new();
    let relay = || {
        KafkaRelay::new(&brokers, "leased")
            .with_prefix(&prefix)
            .with_topic_layout(3, 1)
            .with_batch_size(20)
            .with_lease(lease.clone(), Duration::from_millis(900))
    };
    let spawn = |relay: KafkaRelay| {
        let store = store.clone();
        tokio::spawn(async move { relay.run(&store).await })
    };
    let head = append(&store, 200, 8).await;
    let first = spawn(relay());
    wait_for_checkpoint(&relay(), head).await;

    // A second replica starts: it waits for the lease. (Without one, it would fence
    // the first, whose next commit would fail and end it.)
    let second = spawn(relay());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let head = append(&store, 100, 8).await;
    wait_for_checkpoint(&relay(), head).await;
    assert!(!first.is_finished(), "the first relay still publishes");
    assert!(!second.is_finished(), "the second one waits");

    // The first dies: once its lease expires, the second takes over.
    first.abort();
    let head = append(&store, 100, 8).await;
    wait_for_checkpoint(&relay(), head).await;
    assert!(!second.is_finished());
    second.abort();

    let topics = vec![format!("{prefix}.goal"), format!("{prefix}.category")];
    let seen = tokio::task::spawn_blocking(move || read_committed(&brokers, &topics))
        .await
        .unwrap();
    assert_exactly_once(&seen, 400);
}
