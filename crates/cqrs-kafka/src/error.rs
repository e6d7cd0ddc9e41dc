//! [`KafkaError`]: what the Kafka relay and subscriber can fail with.

/// An error of the Kafka relay or subscriber.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaError {
    /// The broker refused or failed a request (connection, transaction, produce).
    /// Usually transient: the relay retries from its checkpoint.
    #[error("Kafka error in {context}: {source}")]
    Kafka {
        /// What was being done.
        context: &'static str,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },

    /// The brokers did not answer ([`probe`](crate::probe)): not running, or not at
    /// this address.
    #[error("cannot reach Kafka at {brokers}: {source}")]
    Unreachable {
        /// The bootstrap servers asked.
        brokers: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },

    /// A topic exists with another number of partitions or another replication
    /// factor than configured. Nothing was published to it; fix the configuration
    /// or the topic.
    #[error("topic `{topic}` has {actual}, the relay is configured for {expected}")]
    TopicMismatch {
        /// The topic.
        topic: String,
        /// What the relay is configured for.
        expected: String,
        /// What the broker has.
        actual: String,
    },

    /// The relay's checkpoint record could not be read (not a position). Nothing was
    /// published; inspect the checkpoint topic.
    #[error("unreadable checkpoint in `{topic}`: {message}")]
    Checkpoint {
        /// The checkpoint topic.
        topic: String,
        /// What is wrong with it.
        message: String,
    },

    /// A record is neither an event nor a watermark of the relay: a header is missing
    /// or garbled, or the value is not JSON.
    #[error("bad record: {reason}")]
    BadRecord {
        /// What is wrong with it.
        reason: String,
    },

    /// The event source (the store's subscription) failed or ended.
    #[error(transparent)]
    Source(#[from] cqrs_core::Error),

    /// A blocking Kafka call could not be run (the runtime is shutting down).
    #[error("the relay task failed: {0}")]
    Task(String),
}

impl KafkaError {
    /// Whether trying again later may succeed: the broker unreachable, timing out or
    /// restarting, or the event store's backend failing. Not transient: a client
    /// fenced by a newer one of the same transactional id (or another fatal producer
    /// error), a topic that does not match, an unreadable checkpoint, a bad record,
    /// a source that ended.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Kafka { source, .. } | Self::Unreachable { source, .. } => !fatal(source),
            Self::Source(error) => matches!(error, cqrs_core::Error::Backend { .. }),
            _ => false,
        }
    }

    /// A function that wraps a client error, for `map_err`.
    pub(crate) fn kafka(context: &'static str) -> impl FnOnce(rdkafka::error::KafkaError) -> Self {
        move |source| Self::Kafka { context, source }
    }
}

/// Whether a client error means the client is unusable for good (fenced).
fn fatal(error: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::{KafkaError as E, RDKafkaErrorCode as Code};
    if let E::Transaction(error) = error {
        if error.is_fatal() {
            return true;
        }
    }
    matches!(
        error.rdkafka_error_code(),
        Some(
            Code::Fenced
                | Code::ProducerFenced
                | Code::InvalidProducerEpoch
                | Code::TransactionalIdAuthorizationFailed
                | Code::ClusterAuthorizationFailed
                | Code::TopicAuthorizationFailed
                | Code::Fatal
        )
    )
}
