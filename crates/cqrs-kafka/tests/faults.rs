//! Network faults between Kafka and the relay, or a subscriber, through Toxiproxy in
//! front of the broker's fault-test listener (which advertises the proxy's address,
//! so every request goes through it: see `scripts/services.sh`). Events keep coming
//! while the fault comes and goes. Once it is lifted, the relay catches up and a
//! `read_committed` consumer (connected directly) sees every event exactly once, in
//! per-stream order; a runner fed by a subscriber catches up, and its read model
//! equals a rebuild.
//!
//! The proxy's address is fixed (the broker advertises it), so these tests take
//! turns.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::time::{Duration, Instant};

use cqrs_core::{MemoryEventStore, MemoryReadModelStore, ProjectionRunner};
use cqrs_kafka::KafkaRelay;
use cqrs_testkit::kafka::{DeleteTopics, assert_exactly_once, read_to_end};
use cqrs_testkit::toxiproxy::{Fault, Proxy};
use cqrs_testkit::{
    OrUnreachable, kafka_brokers, kafka_faulty_listener, kafka_proxied_brokers, unique_name,
};

/// How many times the fault comes and goes: twice in the test command, more in the
/// soak (`CQRS_RELIABILITY_SCALE`).
fn rounds() -> usize {
    1 + cqrs_testkit::linearizability::scale().min(8)
}

/// One proxy at a time can hold the advertised address.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Committed event records under `prefix`, read directly (not through the proxy).
async fn published(prefix: &str) -> usize {
    let (brokers, topics) = (
        kafka_brokers(),
        vec![format!("{prefix}.goal"), format!("{prefix}.category")],
    );
    let seen =
        tokio::task::spawn_blocking(move || read_to_end(&brokers, &topics, "read_committed"))
            .await
            .unwrap();
    seen.iter().filter(|s| !s.is_watermark()).count()
}

/// The relay publishes while `fault` comes and goes (off 400 ms, while
/// 40 events arrive, then on for `on`); then 60 more events. Once the fault is lifted
/// it catches up, and every event is on its topic exactly once. With a black hole,
/// nothing is published while it is on: the proof that the relay's every request
/// goes through the proxy. Returns how long the relay took to catch up.
async fn relay_through(fault: Fault, on: Duration) -> Duration {
    let _turn = TURN.lock().await;
    let proxy = Proxy::at(&kafka_proxied_brokers(), &kafka_faulty_listener());
    let brokers = kafka_brokers();
    let prefix = unique_name("faults");
    let _topics = DeleteTopics::under(&brokers, [prefix.clone()]);
    let store = MemoryEventStore::new();
    let relay = KafkaRelay::new(&kafka_proxied_brokers(), "faults")
        .with_prefix(&prefix)
        .with_topic_layout(3, 1)
        .with_batch_size(20);
    let run = relay.run(&store);
    tokio::pin!(run);
    // Runs the relay for `time`.
    macro_rules! drive {
        ($time:expr) => {
            tokio::select! {
                result = &mut run => panic!("the relay stopped: {result:?}"),
                () = tokio::time::sleep($time) => {}
            }
        };
    }
    let mut next = 0;
    for _ in 0..rounds() {
        for _ in 0..4 {
            common::append_range(&store, next, next + 10, 6, true).await;
            next += 10;
            drive!(Duration::from_millis(100));
        }
        proxy.add(fault);
        if fault == Fault::BlackHole {
            drive!(Duration::from_millis(300));
            let before = published(&prefix).await;
            drive!(on - Duration::from_millis(300));
            assert_eq!(
                published(&prefix).await,
                before,
                "published around the black hole"
            );
        } else {
            drive!(on);
        }
        proxy.lift();
    }
    let head = common::append_range(&store, next, next + 60, 6, true).await;
    let total = usize::try_from(next + 60).unwrap();
    let lifted = Instant::now();
    loop {
        drive!(Duration::from_millis(100));
        let checkpoint = relay.checkpoint().await.or_unreachable("Kafka", &brokers);
        if checkpoint >= head {
            break;
        }
        assert!(
            lifted.elapsed() < Duration::from_secs(90),
            "the relay did not catch up within 90 s of the fault's end (at {checkpoint}, head {head})"
        );
    }
    let caught_up = lifted.elapsed();
    let topics = vec![format!("{prefix}.goal"), format!("{prefix}.category")];
    let seen =
        tokio::task::spawn_blocking(move || read_to_end(&brokers, &topics, "read_committed"))
            .await
            .unwrap();
    assert_exactly_once(&seen, total);
    eprintln!("{fault:?}: {total} events exactly once, caught up {caught_up:?} after the fault");
    caught_up
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_through_resets_publishes_each_event_once() {
    relay_through(Fault::Reset { after_ms: 50 }, Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_through_a_black_hole_publishes_each_event_once() {
    relay_through(Fault::BlackHole, Duration::from_millis(1500)).await;
}

/// A runner fed by a subscriber through the proxy (the relay publishes directly)
/// while `fault` comes and goes; once it is lifted the runner catches
/// up and its read model equals a rebuild (the timeline shows any event lost,
/// repeated or out of order).
async fn subscriber_through(fault: Fault, on: Duration) {
    let _turn = TURN.lock().await;
    let proxy = Proxy::at(&kafka_proxied_brokers(), &kafka_faulty_listener());
    let brokers = kafka_brokers();
    let prefix = unique_name("faults");
    let _topics = DeleteTopics::under(&brokers, [prefix.clone()]);
    let store = MemoryEventStore::new();
    let relay = common::spawn_relay(&store, &prefix, 4);
    let topics = vec![format!("{prefix}.goal"), format!("{prefix}.category")];
    let subscriber =
        cqrs_kafka::KafkaSubscriber::new(&kafka_proxied_brokers(), &unique_name("group"), topics);
    let documents = MemoryReadModelStore::new();
    let handle = ProjectionRunner::new(common::Timeline, subscriber, documents.clone())
        .with_batch_size(16)
        .with_max_backoff(Duration::from_millis(500))
        .spawn();
    let mut next = 0;
    for _ in 0..rounds() {
        for _ in 0..4 {
            common::append_range(&store, next, next + 10, 12, true).await;
            next += 10;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        proxy.add(fault);
        if fault == Fault::BlackHole {
            // Events published during the hole cannot reach the subscriber: the proof
            // that its every request goes through the proxy.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let during = common::append_range(&store, next, next + 10, 12, true).await;
            next += 10;
            tokio::time::sleep(on - Duration::from_millis(300)).await;
            let reached = handle.stats().position;
            assert!(
                reached < during,
                "the subscriber read through the black hole"
            );
        } else {
            tokio::time::sleep(on).await;
        }
        proxy.lift();
    }
    let head = common::append_range(&store, next, next + 60, 12, true).await;
    let lifted = Instant::now();
    handle
        .wait_for_timeout(head, Duration::from_secs(90))
        .await
        .unwrap_or_else(|e| panic!("{fault:?}: the runner did not catch up after the fault: {e}"));
    let caught_up = lifted.elapsed();
    let stats = handle.stats();
    handle.stop().await.unwrap();
    relay.abort();
    assert_eq!(
        common::values(&documents),
        common::rebuilt_values(&store).await,
        "{fault:?}: the read model differs from a rebuild"
    );
    eprintln!(
        "{fault:?}: {} events through the subscriber, {} retries, equal to a rebuild, \
         caught up {caught_up:?} after the fault",
        next + 60,
        stats.retries
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_through_resets_feeds_a_read_model_equal_to_a_rebuild() {
    subscriber_through(Fault::Reset { after_ms: 50 }, Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_through_a_black_hole_feeds_a_read_model_equal_to_a_rebuild() {
    subscriber_through(Fault::BlackHole, Duration::from_millis(1500)).await;
}
