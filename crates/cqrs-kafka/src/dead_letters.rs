//! [`KafkaDeadLetters`]: a dead-letter topic, written by the runner (events it could
//! not apply) and by the subscriber (records that are not events), and read back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cqrs_core::{DeadLetters, Error, RecordedEvent};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::client::{Owned, blocking};
use crate::error::KafkaError;
use crate::record::{headers, headers_of, payload_of};

/// How long producing a letter, or a metadata request, may take.
const REQUEST: Duration = Duration::from_secs(10);

/// A dead-letter topic: give it to
/// [`ProjectionRunner::with_dead_letters`](cqrs_core::ProjectionRunner::with_dead_letters)
/// so that an event the runner cannot apply is produced there (key: the stream id;
/// value: the payload; headers: the event's usual [`headers`] plus
/// [`DEAD_LETTER_ERROR`](headers::DEAD_LETTER_ERROR) and
/// [`DEAD_LETTER_PROJECTION`](headers::DEAD_LETTER_PROJECTION)), and
/// [`list`](Self::list) what is in it, including the records a
/// [`KafkaSubscriber`](crate::KafkaSubscriber) set aside (same topic by default:
/// `{group}.dead-letters`).
///
/// Replaying a set-aside event into its read model is a rebuild, not a re-send: the
/// read model has moved past it, and the per-document guard would skip it. Fix the
/// projection (or add an upcaster), then rebuild the read model beside the live one
/// and cut over ([`cqrs_core::cut_over`]); the rebuilt one reads every event again.
#[derive(Clone)]
pub struct KafkaDeadLetters {
    config: ClientConfig,
    topic: String,
    producer: Arc<Mutex<Option<Arc<Owned<FutureProducer>>>>>,
}

impl std::fmt::Debug for KafkaDeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaDeadLetters")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// A record of a dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// Its offset in the dead-letter topic.
    pub offset: i64,
    /// Why it was set aside.
    pub error: String,
    /// The read model that could not apply it (set by the runner).
    pub projection: Option<String>,
    /// Where the record was read from (set by the subscriber): topic, partition,
    /// offset.
    pub source: Option<(String, i32, i64)>,
    /// The event's id, if the record carries one.
    pub event_id: Option<String>,
    /// The event's position, if the record carries a readable one.
    pub position: Option<u64>,
    /// The record's key.
    pub key: Option<Vec<u8>>,
    /// The record's value.
    pub value: Option<Vec<u8>>,
}

impl KafkaDeadLetters {
    /// The dead-letter topic `topic` on the brokers `brokers`.
    pub fn new(brokers: &str, topic: &str) -> Self {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("socket.timeout.ms", "10000");
        Self::with_config(config, topic)
    }

    /// The dead-letter topic `topic`, with a client configured as `config` (the
    /// subscriber's own, for its bad records).
    pub(crate) fn with_config(config: ClientConfig, topic: &str) -> Self {
        Self {
            config,
            topic: topic.to_owned(),
            producer: Arc::default(),
        }
    }

    /// Sets a client property (for example `security.protocol`).
    #[must_use]
    pub fn with_client_config(mut self, key: &str, value: &str) -> Self {
        self.config.set(key, value);
        self
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    fn producer(&self) -> Result<Arc<Owned<FutureProducer>>, KafkaError> {
        let mut slot = self
            .producer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(producer) = &*slot {
            return Ok(producer.clone());
        }
        let producer: FutureProducer = self
            .config
            .clone()
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "15000")
            .create()
            .map_err(KafkaError::kafka("dead-letter producer"))?;
        let producer = Arc::new(Owned::new(producer));
        *slot = Some(producer.clone());
        Ok(producer)
    }

    /// Every letter in the topic, oldest first (none if the topic does not exist).
    ///
    /// # Errors
    /// [`KafkaError`] if the brokers cannot be read.
    pub async fn list(&self) -> Result<Vec<DeadLetter>, KafkaError> {
        let (config, topic) = (self.config.clone(), self.topic.clone());
        blocking(move || read_all(&config, &topic)).await
    }

    async fn produce(
        &self,
        projection: &str,
        event: &RecordedEvent,
        error: &str,
    ) -> Result<(), KafkaError> {
        let (key, value) = (event.stream_id.to_string(), payload_of(event));
        let extra = [
            (headers::DEAD_LETTER_ERROR, error),
            (headers::DEAD_LETTER_PROJECTION, projection),
        ];
        self.send(
            Some(key.as_bytes()),
            Some(&value),
            headers_of(event),
            &extra,
        )
        .await
    }

    /// Produces a letter: `key`, `value`, `headers` plus the `extra` ones, and waits
    /// for the broker's acknowledgement.
    pub(crate) async fn send(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: OwnedHeaders,
        extra: &[(&str, &str)],
    ) -> Result<(), KafkaError> {
        let producer = self.producer()?;
        let headers = extra.iter().fold(headers, |headers, (key, value)| {
            headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            })
        });
        let mut record = FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(value) = value {
            record = record.payload(value);
        }
        producer
            .send(record, REQUEST)
            .await
            .map_err(|(error, _)| KafkaError::kafka("dead letter")(error))?;
        Ok(())
    }
}

impl DeadLetters for KafkaDeadLetters {
    async fn set_aside(
        &self,
        projection: &str,
        event: &RecordedEvent,
        error: &Error,
    ) -> Result<(), Error> {
        self.produce(projection, event, &error.to_string())
            .await
            .map_err(|e| Error::backend("writing a dead letter to Kafka", e))
    }
}

/// Reads every partition of `topic` from its first record to its end. Blocking.
fn read_all(config: &ClientConfig, topic: &str) -> Result<Vec<DeadLetter>, KafkaError> {
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", format!("{topic}.lister"))
        .set("enable.auto.commit", "false")
        .set("allow.auto.create.topics", "false")
        .create()
        .map_err(KafkaError::kafka("dead-letter reader"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST)
        .map_err(KafkaError::kafka("dead-letter metadata"))?;
    let mut ends = Vec::new();
    let mut assignment = TopicPartitionList::new();
    for partition in metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions())
    {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition.id(), REQUEST)
            .map_err(KafkaError::kafka("dead-letter offsets"))?;
        if high > low {
            ends.push((partition.id(), high));
            assignment
                .add_partition_offset(topic, partition.id(), Offset::Offset(low))
                .map_err(KafkaError::kafka("dead-letter assignment"))?;
        }
    }
    if ends.is_empty() {
        return Ok(Vec::new());
    }
    consumer
        .assign(&assignment)
        .map_err(KafkaError::kafka("dead-letter assignment"))?;
    let started = std::time::Instant::now();
    let mut letters = Vec::new();
    loop {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.map_err(KafkaError::kafka("read dead letter"))?;
            letters.push(letter_of(&message));
        }
        let position = consumer
            .position()
            .map_err(KafkaError::kafka("dead-letter position"))?;
        let done = ends.iter().all(|(partition, high)| {
            position
                .find_partition(topic, *partition)
                .and_then(|p| p.offset().to_raw())
                .is_some_and(|at| at >= *high)
        });
        if done {
            return Ok(letters);
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(KafkaError::Task(format!(
                "could not read `{topic}` to its end within 30 s"
            )));
        }
    }
}

fn letter_of(message: &impl Message) -> DeadLetter {
    let text = |key: &str| {
        message.headers().and_then(|headers| {
            headers
                .iter()
                .find(|h| h.key == key)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })
    };
    let source = match (
        text(headers::DEAD_LETTER_TOPIC),
        text(headers::DEAD_LETTER_PARTITION).and_then(|p| p.parse().ok()),
        text(headers::DEAD_LETTER_OFFSET).and_then(|o| o.parse().ok()),
    ) {
        (Some(topic), Some(partition), Some(offset)) => Some((topic, partition, offset)),
        _ => None,
    };
    DeadLetter {
        offset: message.offset(),
        error: text(headers::DEAD_LETTER_ERROR).unwrap_or_default(),
        projection: text(headers::DEAD_LETTER_PROJECTION),
        source,
        event_id: text(headers::EVENT_ID),
        position: text(headers::POSITION).and_then(|p| p.parse().ok()),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
    }
}
