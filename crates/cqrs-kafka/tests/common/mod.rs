//! What the Kafka tests share: a test event, a projection that shows any lost,
//! repeated or reordered event, and reading its documents.

#![allow(dead_code, unreachable_pub)] // each test binary uses a part

use cqrs_core::{
    AppendRequest, Envelope, Event, EventAppender, ExpectedVersion, LogReader, MemoryEventStore,
    MemoryReadModelStore, Metadata, NewEvent, Position, Projection, ProjectionRunner,
};
use cqrs_kafka::KafkaRelay;
use serde::{Deserialize, Serialize};

/// The only event of these tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(namespace = "test")]
pub enum TestEvent {
    /// Event number `n`.
    Happened { n: u64 },
}

/// One document per user: the numbers of the user's events, in the order applied.
/// A lost, repeated or reordered event shows; with the relay keying by stream, a
/// user's events come from many partitions.
pub struct Timeline;

impl Projection for Timeline {
    const NAME: &'static str = "timeline";
    type Event = TestEvent;
    type Document = Vec<u64>;

    fn document_ids(&self, event: &Envelope<TestEvent>) -> Vec<String> {
        event.metadata.user_id.iter().cloned().collect()
    }

    fn apply(&self, _: &str, document: &mut Option<Vec<u64>>, event: &Envelope<TestEvent>) {
        let TestEvent::Happened { n } = event.event;
        document.get_or_insert_with(Vec::new).push(n);
    }
}

/// Event `n` of `user`.
pub fn happened(n: u64, user: &str) -> NewEvent {
    NewEvent::encode(&TestEvent::Happened { n }, Metadata::new().with_user(user)).expect("encodes")
}

/// Appends `event` to `stream` of `store` (any store); returns its position.
pub async fn append_one(store: &impl EventAppender, stream: &str, event: NewEvent) -> Position {
    store
        .append(AppendRequest::new(
            stream,
            ExpectedVersion::Any,
            vec![event],
        ))
        .await
        .expect("appends")
        .position
        .expect("a position")
}

/// Appends events `from..to` to the in-memory store, round-robin over `streams`
/// (goal streams, or goal and category streams alternately when `two_types`), for 3
/// users; returns the last position.
pub async fn append_range(
    store: &MemoryEventStore,
    from: u64,
    to: u64,
    streams: u64,
    two_types: bool,
) -> Position {
    let mut last = Position::START;
    for n in from..to {
        let s = n % streams;
        let stream = if two_types && s % 2 == 1 {
            format!("category-{s}")
        } else {
            format!("goal-{s}")
        };
        last = append_one(store, &stream, happened(n, &format!("user-{}", n % 3))).await;
    }
    last
}

/// The timeline documents of `store`: id and value.
pub fn values(store: &MemoryReadModelStore) -> Vec<(String, serde_json::Value)> {
    store
        .documents(Timeline::NAME)
        .into_iter()
        .map(|(id, document)| (id, document.value))
        .collect()
}

/// Logs to the test's output, filtered by `RUST_LOG`.
pub fn trace() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// The relay of `store` to topics under `prefix` (`partitions` each) on the test
/// broker, running in the background.
pub fn spawn_relay(
    store: &MemoryEventStore,
    prefix: &str,
    partitions: i32,
) -> tokio::task::JoinHandle<()> {
    let relay = KafkaRelay::new(&cqrs_testkit::kafka_brokers(), prefix)
        .with_prefix(prefix)
        .with_topic_layout(partitions, 1)
        .with_batch_size(64);
    let store = store.clone();
    tokio::spawn(async move {
        if let Err(error) = relay.run(&store).await {
            panic!("the relay failed: {error}");
        }
    })
}

/// The timeline documents the store's own subscription builds: the rebuild a
/// Kafka-fed read model must equal.
pub async fn rebuilt_values(store: &MemoryEventStore) -> Vec<(String, serde_json::Value)> {
    let documents = MemoryReadModelStore::new();
    let runner = ProjectionRunner::new(Timeline, store.clone(), documents.clone())
        .with_dead_letters(cqrs_core::MemoryDeadLetters::new(), 1);
    let handle = runner.spawn();
    handle
        .wait_for(store.head().await.expect("head"))
        .await
        .expect("the rebuild catches up");
    handle.stop().await.expect("stop");
    values(&documents)
}
