//! [`KafkaRelay`]: publishes the event log to Kafka topics, exactly once for
//! `read_committed` consumers.

mod run;

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{DynLease, Lease, Position, RecordedEvent};
use rdkafka::ClientConfig;

use crate::error::KafkaError;

type Route = Arc<dyn Fn(&RecordedEvent) -> String + Send + Sync>;

/// Publishes the event log, read through any [`EventSubscriber`](cqrs_core::EventSubscriber) (the in-memory
/// store, `PgEventStore`, `PgCdcSource`), to Kafka.
///
/// * **Topics:** by default one per aggregate type, `{prefix}.{type}` where the
///   type is the stream id up to its first `-` (`goal-42` → `cqrs.goal`);
///   [`with_topic`](Self::with_topic) chooses otherwise. Missing topics are created
///   with the configured partitions and replication; an existing one that differs
///   is a [`KafkaError::TopicMismatch`].
/// * **Keys:** by default the stream id, so each stream stays in one partition, in
///   version order; [`with_key`](Self::with_key) chooses otherwise (MADA keys by
///   user).
/// * **Records:** the value is the event's JSON payload; the type, schema version,
///   event id, stream, version, position, time and metadata travel in headers
///   ([`crate::headers`]).
/// * **Watermarks:** every transaction ends with a watermark record (no key, no
///   value, header [`headers::WATERMARK`](crate::headers::WATERMARK) = the batch's
///   last position) on every partition of every topic the relay has published to.
///   It tells a [`KafkaSubscriber`](crate::KafkaSubscriber) that the partition will
///   bring no event at or before that position, which is what lets it put events
///   from many partitions back in log order. The cost is one small record per
///   partition per transaction (with 6 partitions, 2 topics and batches of 500,
///   about 2%); consumers of your own skip records that carry the header.
/// * **Exactly once, for `read_committed` consumers:** each batch of events and the
///   relay's checkpoint (the position of the batch's last event, in the compacted
///   topic `{prefix}.relay-checkpoints`) are committed in one Kafka transaction. A
///   relay killed at any point leaves an open transaction that the next one, with
///   the same name (the transactional id), aborts before it reads the checkpoint
///   and resumes after it: every event ends up on its topic once. A consumer reading
///   `read_uncommitted` may see the records of an aborted attempt too (same event
///   ids).
/// * **One relay at a time:** with [`with_lease`](Self::with_lease), a second
///   replica waits for the lease. Without one, a second relay of the same name still
///   cannot publish twice: starting, it fences the first (whose next commit fails).
pub struct KafkaRelay {
    config: ClientConfig,
    name: String,
    prefix: String,
    partitions: i32,
    replication: i32,
    batch_size: usize,
    topic: Route,
    key: Route,
    lease: Option<(Arc<dyn DynLease>, Duration)>,
    transactions: bool,
}

impl std::fmt::Debug for KafkaRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaRelay")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("partitions", &self.partitions)
            .field("replication", &self.replication)
            .field("batch_size", &self.batch_size)
            .field("transactions", &self.transactions)
            .finish_non_exhaustive()
    }
}

/// The aggregate type of a stream id: what comes before its first `-`.
fn aggregate_type(event: &RecordedEvent) -> &str {
    let id = event.stream_id.as_str();
    id.split_once('-').map_or(id, |(kind, _)| kind)
}

impl KafkaRelay {
    /// The default number of events per transaction.
    pub const DEFAULT_BATCH_SIZE: usize = 500;

    /// A relay named `name` (its transactional id and checkpoint key: keep it stable
    /// across restarts) publishing to the brokers `brokers` (`host:port,...`), with
    /// topics under the prefix `cqrs`, 6 partitions, replication 1.
    pub fn new(brokers: &str, name: &str) -> Self {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("socket.timeout.ms", "10000");
        let prefix = "cqrs".to_owned();
        let topic_prefix = prefix.clone();
        Self {
            config,
            name: name.to_owned(),
            prefix,
            partitions: 6,
            replication: 1,
            batch_size: Self::DEFAULT_BATCH_SIZE,
            topic: Arc::new(move |event| format!("{topic_prefix}.{}", aggregate_type(event))),
            key: Arc::new(|event| event.stream_id.to_string()),
            lease: None,
            transactions: true,
        }
    }

    /// Puts the default topics and the checkpoint topic under `prefix` instead of
    /// `cqrs`.
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.prefix);
        let topic_prefix = prefix.to_owned();
        self.topic = Arc::new(move |event| format!("{topic_prefix}.{}", aggregate_type(event)));
        self
    }

    /// Creates missing topics with `partitions` partitions and `replication`
    /// replicas (default 6 and 1).
    #[must_use]
    pub fn with_topic_layout(mut self, partitions: i32, replication: i32) -> Self {
        self.partitions = partitions.max(1);
        self.replication = replication.max(1);
        self
    }

    /// Chooses each event's topic.
    #[must_use]
    pub fn with_topic(
        mut self,
        topic: impl Fn(&RecordedEvent) -> String + Send + Sync + 'static,
    ) -> Self {
        self.topic = Arc::new(topic);
        self
    }

    /// Chooses each event's key (its partition). Events of one key keep their order.
    #[must_use]
    pub fn with_key(
        mut self,
        key: impl Fn(&RecordedEvent) -> String + Send + Sync + 'static,
    ) -> Self {
        self.key = Arc::new(key);
        self
    }

    /// Sets the most events per transaction (at least 1).
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Publishes only while holding `lease` (named after the relay), renewed before
    /// every transaction and, while idle, every third of `ttl`; `ttl` should exceed
    /// the slowest transaction. The lease is not released when the relay stops: a
    /// second replica takes over once it expires.
    #[must_use]
    pub fn with_lease(mut self, lease: impl Lease + 'static, ttl: Duration) -> Self {
        self.lease = Some((Arc::new(lease), ttl));
        self
    }

    /// Publishes without Kafka transactions (`false`; default `true`): **at least
    /// once**. Each batch's events and watermarks are acknowledged, then the
    /// checkpoint is written; a relay stopped in between publishes those events
    /// again after its restart, with the same event ids and positions, so every
    /// consumer sees them twice. A [`KafkaSubscriber`](crate::KafkaSubscriber)
    /// drops the copies (it releases each position once), so read models it builds
    /// are still exact; consumers of your own must deduplicate by
    /// [`headers::EVENT_ID`](crate::headers::EVENT_ID). What it buys: no transaction
    /// per batch (no coordinator round trips, no markers), which is most of the
    /// relay's latency. Use a lease with it: two relays without transactions are not
    /// fenced, and would both publish.
    #[must_use]
    pub fn with_transactions(mut self, transactions: bool) -> Self {
        self.transactions = transactions;
        self
    }

    /// Sets a client property (for example `security.protocol`) on every client the
    /// relay makes.
    #[must_use]
    pub fn with_client_config(mut self, key: &str, value: &str) -> Self {
        self.config.set(key, value);
        self
    }

    /// The compacted topic holding the relay's checkpoint.
    pub fn checkpoint_topic(&self) -> String {
        format!("{}.relay-checkpoints", self.prefix)
    }

    /// The position of the last event this relay published (`Position::START` if
    /// none), as committed.
    ///
    /// # Errors
    /// [`KafkaError`] if the broker cannot be read.
    pub async fn checkpoint(&self) -> Result<Position, KafkaError> {
        let (config, topic, name) = (
            self.config.clone(),
            self.checkpoint_topic(),
            self.name.clone(),
        );
        crate::client::blocking(move || crate::checkpoint::read(&config, &topic, &name))
            .await
            .map(|checkpoint| checkpoint.position)
    }
}
