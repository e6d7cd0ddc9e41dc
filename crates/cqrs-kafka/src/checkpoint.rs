//! The relay's checkpoint: the position of the last event published and the topics
//! published to so far, written to a compacted topic in the same transaction as the
//! events, read back on start.

use std::time::{Duration, Instant};

use cqrs_core::Position;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::error::KafkaError;

/// How long reading the checkpoint may take.
const READ_LIMIT: Duration = Duration::from_secs(30);

/// A relay's checkpoint record.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Checkpoint {
    /// The position of the last event published.
    pub(crate) position: Position,
    /// Every topic published to so far: each gets a watermark in every transaction.
    #[serde(default)]
    pub(crate) topics: Vec<String>,
}

impl Checkpoint {
    /// The record's value.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn parse(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|error| {
            format!(
                "`{}` is not a checkpoint: {error}",
                String::from_utf8_lossy(bytes)
                    .chars()
                    .take(80)
                    .collect::<String>()
            )
        })
    }
}

/// The last committed checkpoint of relay `name` in `topic` (the default if none).
/// Reads with `read_committed`, so a checkpoint of an aborted transaction is never
/// seen. Blocking: run it off the async threads.
pub(crate) fn read(
    config: &ClientConfig,
    topic: &str,
    name: &str,
) -> Result<Checkpoint, KafkaError> {
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", format!("{topic}.reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(KafkaError::kafka("checkpoint consumer"))?;
    let high = match consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)) {
        Ok((_, high)) => high,
        // No checkpoint topic yet: no relay of this prefix ever published.
        Err(error)
            if matches!(
                error.rdkafka_error_code(),
                Some(
                    RDKafkaErrorCode::UnknownPartition
                        | RDKafkaErrorCode::UnknownTopicOrPartition
                        | RDKafkaErrorCode::UnknownTopic
                )
            ) =>
        {
            return Ok(Checkpoint::default());
        }
        Err(error) => return Err(KafkaError::kafka("checkpoint watermarks")(error)),
    };
    if high <= 0 {
        return Ok(Checkpoint::default());
    }
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .map_err(KafkaError::kafka("checkpoint assignment"))?;
    consumer
        .assign(&assignment)
        .map_err(KafkaError::kafka("checkpoint assignment"))?;
    let started = Instant::now();
    let mut last = Checkpoint::default();
    loop {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.map_err(KafkaError::kafka("read checkpoint"))?;
            if message.key() == Some(name.as_bytes()) {
                last =
                    Checkpoint::parse(message.payload().unwrap_or_default()).map_err(|error| {
                        KafkaError::Checkpoint {
                            topic: topic.to_owned(),
                            message: format!("at offset {}: {error}", message.offset()),
                        }
                    })?;
            }
        }
        // Done once the consumer stands at the end (past the commit markers too).
        let position = consumer
            .position()
            .map_err(KafkaError::kafka("checkpoint position"))?;
        let at = position
            .find_partition(topic, 0)
            .and_then(|p| match p.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            })
            .unwrap_or(0);
        if at >= high {
            return Ok(last);
        }
        if started.elapsed() > READ_LIMIT {
            return Err(KafkaError::Checkpoint {
                topic: topic.to_owned(),
                message: format!("could not read to offset {high} within {READ_LIMIT:?}"),
            });
        }
    }
}
