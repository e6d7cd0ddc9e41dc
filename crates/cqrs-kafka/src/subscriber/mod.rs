//! [`KafkaSubscriber`]: the core's subscription port over the topics a
//! [`KafkaRelay`](crate::KafkaRelay) writes, in log order across partitions.

mod lag;
mod merge;
mod reader;

use cqrs_core::{EventBatchStream, EventSubscriber, Position};
use futures::StreamExt;
use rdkafka::ClientConfig;

use self::lag::Lag;
use self::reader::Reader;

/// Reads the topics of a [`KafkaRelay`](crate::KafkaRelay) as an
/// [`EventSubscriber`], so that a [`ProjectionRunner`](cqrs_core::ProjectionRunner)
/// builds any read model (PostgreSQL, MongoDB, Redis, memory) from Kafka.
///
/// # Order: the whole log, not per partition
/// Kafka orders records only within a partition, but a read-model document is often
/// fed by streams on different partitions (MADA's today list by many goals), and the
/// runner's per-document guard skips an event older than the document. Consumed
/// partition by partition, such a document would lose events. So this subscriber
/// reads **every partition of its topics** and puts the events back in global
/// position order before the runner sees them: an event is released only once every
/// partition has vouched that it holds nothing earlier, by an event or by a
/// watermark record (the relay ends each transaction with one on every partition),
/// or by being found at its end. The runner then sees exactly what a store's own
/// subscription gives: every event after its checkpoint, once, in log order, and any
/// projection works unchanged, whatever it keys its documents by.
///
/// The price: one subscriber reads all partitions of its topics, so a projection is
/// not spread over a consumer group's members; run one runner per projection, with a
/// lease for a standby replica ([`ProjectionRunner::with_lease`](cqrs_core::ProjectionRunner::with_lease)).
/// Consumer throughput is then one process's, which the benches measure.
///
/// # Offsets
/// The consumer group (`group`: one per read model) is used to remember where each
/// partition was read to, committed only after the runner has stored the batch's
/// documents and checkpoint (when it asks for the next batch). On subscribing, each
/// partition is read from its committed offset (from its first record for a new group,
/// or when the runner rebuilds from [`Position::START`]), and events at or before the
/// runner's checkpoint are dropped. The offsets must therefore never be ahead of the
/// read model: give each read model its own group, and when you restore a read model
/// from a backup, restore with it a group whose offsets are not ahead (or use a new
/// group).
///
/// # Bad records
/// A record that is neither an event nor a watermark (a header missing or garbled, a
/// value that is not JSON) is produced to the dead-letter topic (default
/// `{group}.dead-letters`, created if missing) with the original key, value and
/// headers plus the error, topic, partition and offset
/// ([`headers`](crate::headers)`::DEAD_LETTER_*`), and reading goes on. The
/// dead letter is acknowledged by the broker before the offset moves past it.
///
/// # Retention
/// A rebuild reads each topic from its first record: keep the topics' retention at
/// least as long as you may rebuild from Kafka (the relay's topics, created with
/// Kafka's defaults, keep 7 days unless configured otherwise), or rebuild from the
/// event store's own subscription.
#[derive(Clone)]
pub struct KafkaSubscriber {
    format: Format,
    config: ClientConfig,
    group: String,
    topics: Vec<String>,
    dead_letters: String,
    lag: Lag,
}

/// What the topics hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// The relay's records and watermarks, each partition in position order.
    Relay,
    /// Debezium's change events of the event and heartbeat tables, in commit order,
    /// in one partition.
    Debezium,
}

impl std::fmt::Debug for KafkaSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSubscriber")
            .field("format", &self.format)
            .field("group", &self.group)
            .field("topics", &self.topics)
            .field("dead_letters", &self.dead_letters)
            .finish_non_exhaustive()
    }
}

impl KafkaSubscriber {
    /// A subscriber reading `topics` from the brokers `brokers` (`host:port,...`),
    /// committing offsets in consumer group `group` (one per read model).
    pub fn new<T: Into<String>>(
        brokers: &str,
        group: &str,
        topics: impl IntoIterator<Item = T>,
    ) -> Self {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("socket.timeout.ms", "10000");
        Self {
            format: Format::Relay,
            config,
            group: group.to_owned(),
            topics: topics.into_iter().map(Into::into).collect(),
            dead_letters: format!("{group}.dead-letters"),
            lag: Lag::default(),
        }
    }

    /// A subscriber reading Debezium's change events of the event table from `topic`
    /// (one partition), as a connector configured by
    /// [`debezium_connector`](crate::debezium_connector) writes them, instead of the
    /// relay's records.
    ///
    /// Debezium delivers transactions in commit order, which positions do not
    /// follow (a transaction that started earlier may commit later), so the events
    /// are held and released in position order up to the safe position that the
    /// connector's heartbeat writes to `cqrs_cdc_heartbeat` and that arrives, in
    /// commit order, behind every event at or below it. Debezium is at least once
    /// (a restarted connector may send events again): copies are dropped.
    pub fn debezium(brokers: &str, group: &str, topic: &str) -> Self {
        Self {
            format: Format::Debezium,
            ..Self::new(brokers, group, [topic])
        }
    }

    /// Sends bad records to `topic` instead of `{group}.dead-letters`.
    #[must_use]
    pub fn with_dead_letters(mut self, topic: &str) -> Self {
        topic.clone_into(&mut self.dead_letters);
        self
    }

    /// Sets a client property (for example `security.protocol`) on every client the
    /// subscriber makes.
    #[must_use]
    pub fn with_client_config(mut self, key: &str, value: &str) -> Self {
        self.config.set(key, value);
        self
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The topics read.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The dead-letter topic.
    pub fn dead_letter_topic(&self) -> &str {
        &self.dead_letters
    }

    /// The consumer's lag as last measured (every second): records behind the ends
    /// of the partitions, counted from the committed offsets (so including the
    /// watermark records), summed over all partitions. `None` before the first
    /// measure. Also in the runner's
    /// [`ProjectionStats::backlog`](cqrs_core::ProjectionStats::backlog), and logged
    /// at debug level.
    pub fn lag(&self) -> Option<u64> {
        self.lag.get()
    }
}

impl EventSubscriber for KafkaSubscriber {
    fn subscribe(&self, after: Position, batch_size: usize) -> EventBatchStream {
        let reader = Reader::new(self.clone(), after, batch_size.max(1));
        futures::stream::unfold(Some(reader), |reader| async move {
            let mut reader = reader?;
            match reader.next_batch().await {
                Ok(batch) => Some((Ok(batch), Some(reader))),
                Err(error) => Some((Err(error), None)),
            }
        })
        .boxed()
    }

    fn backlog(&self) -> Option<u64> {
        self.lag()
    }
}
