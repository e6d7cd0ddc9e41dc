//! Reading Kafka topics to their end, as a checker: what a consumer at a given
//! isolation level sees, record by record, with no help from the code under test.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::{OrUnreachable, unique_name};

/// The header the relay puts on its watermark records.
const WATERMARK: &str = "cqrs-watermark";

/// One record as a consumer saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its key, as text.
    pub key: String,
    /// Its headers, values as text.
    pub headers: HashMap<String, String>,
}

impl Seen {
    /// Whether it is one of the relay's watermark records.
    pub fn is_watermark(&self) -> bool {
        self.headers.contains_key(WATERMARK)
    }
}

/// Every record of `topics` (every partition, from the beginning to the end as it
/// stands when called), read at `isolation` (`read_committed` or
/// `read_uncommitted`), within 90 s. Blocking.
///
/// # Panics
/// If Kafka cannot be reached (saying how to start it) or the end is not reached in
/// time.
pub fn read_to_end(brokers: &str, topics: &[String], isolation: &str) -> Vec<Seen> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique_name("checker"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .or_unreachable("Kafka", brokers);
    let mut assignment = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .or_unreachable("Kafka", brokers);
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let id = partition.id();
            let (_, high) = consumer
                .fetch_watermarks(topic, id, Duration::from_secs(10))
                .or_unreachable("Kafka", brokers);
            ends.insert((topic.clone(), id), high);
            assignment
                .add_partition_offset(topic, id, Offset::Beginning)
                .or_unreachable("Kafka", brokers);
        }
    }
    consumer
        .assign(&assignment)
        .or_unreachable("Kafka", brokers);
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.or_unreachable("Kafka", brokers);
            let headers = message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|h| {
                            let value = String::from_utf8_lossy(h.value.unwrap_or_default());
                            (h.key.to_owned(), value.into_owned())
                        })
                        .collect()
                })
                .unwrap_or_default();
            seen.push(Seen {
                topic: message.topic().to_owned(),
                partition: message.partition(),
                key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                headers,
            });
        }
        let position = consumer.position().or_unreachable("Kafka", brokers);
        let done = ends.iter().all(|((topic, id), high)| {
            *high == 0
                || position
                    .find_partition(topic, *id)
                    .is_some_and(|p| matches!(p.offset(), Offset::Offset(o) if o >= *high))
        });
        if done {
            return seen;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "could not read to the end of {topics:?}"
        );
    }
}

/// Asserts that the event records among `seen` (watermarks aside) are `events`
/// distinct events (by `cqrs-event-id`), each once, with each stream's versions in
/// order (`cqrs-stream-id`, `cqrs-version`).
///
/// # Panics
/// If not.
pub fn assert_exactly_once(seen: &[Seen], events: usize) {
    let seen: Vec<&Seen> = seen.iter().filter(|s| !s.is_watermark()).collect();
    let mut ids = std::collections::HashSet::new();
    for record in &seen {
        ids.insert(record.headers["cqrs-event-id"].as_str());
    }
    assert_eq!(
        ids.len(),
        events,
        "every event is on its topic ({} records)",
        seen.len()
    );
    assert_eq!(seen.len(), events, "and only once");
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for record in &seen {
        let stream = record.headers["cqrs-stream-id"].as_str();
        let version: u64 = record.headers["cqrs-version"]
            .parse()
            .unwrap_or_else(|_| panic!("a version in {record:?}"));
        let before = versions.insert(stream, version).unwrap_or(0);
        assert_eq!(version, before + 1, "{stream} in version order");
    }
}

/// Deletes, when dropped (also when the test fails), every topic whose name starts
/// with one of its prefixes: a test's topics do not pile up in a broker that outlives
/// it (a broker with thousands of partitions starts and commits more slowly).
#[derive(Debug)]
pub struct DeleteTopics {
    brokers: String,
    prefixes: Vec<String>,
}

impl DeleteTopics {
    /// Topics of `brokers` starting with any of `prefixes` go when this is dropped.
    pub fn under<S: Into<String>>(brokers: &str, prefixes: impl IntoIterator<Item = S>) -> Self {
        Self {
            brokers: brokers.to_owned(),
            prefixes: prefixes.into_iter().map(Into::into).collect(),
        }
    }
}

impl Drop for DeleteTopics {
    fn drop(&mut self) {
        let (brokers, prefixes) = (self.brokers.clone(), std::mem::take(&mut self.prefixes));
        // On a thread of its own: the client blocks, and a test's runtime may be
        // shutting down. Best effort: a broker that is gone keeps its topics.
        let cleanup = std::thread::spawn(move || {
            use rdkafka::admin::{AdminClient, AdminOptions};
            use rdkafka::client::DefaultClientContext;
            let Ok(admin) = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .create::<AdminClient<DefaultClientContext>>()
            else {
                return;
            };
            let Ok(metadata) = admin.inner().fetch_metadata(None, Duration::from_secs(10)) else {
                return;
            };
            let doomed: Vec<String> = metadata
                .topics()
                .iter()
                .map(|t| t.name().to_owned())
                .filter(|name| prefixes.iter().any(|p| name.starts_with(p.as_str())))
                .collect();
            if doomed.is_empty() {
                return;
            }
            let names: Vec<&str> = doomed.iter().map(String::as_str).collect();
            let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
            // The admin client's futures are driven by its own thread: no runtime needed.
            let _ = futures::executor::block_on(admin.delete_topics(&names, &options));
        });
        let _ = cleanup.join();
    }
}
