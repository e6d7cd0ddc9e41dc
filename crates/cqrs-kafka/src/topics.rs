//! Topics the relay writes to: created when missing, refused when they differ.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::types::RDKafkaErrorCode as Code;

use crate::error::KafkaError;

/// Creates `topic` with `partitions` and `replication` unless it exists, then checks
/// that it has them. Extra `config` (for example `cleanup.policy=compact`) applies
/// to a topic it creates.
pub(crate) async fn ensure(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    partitions: i32,
    replication: i32,
    config: &[(&str, &str)],
) -> Result<(), KafkaError> {
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    for (key, value) in config {
        new = new.set(key, value);
    }
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&[new], &options)
        .await
        .map_err(KafkaError::kafka("create topic"))?;
    for result in results {
        match result {
            Ok(_) => tracing::info!(%topic, partitions, replication, "topic created"),
            Err((_, Code::TopicAlreadyExists)) => {}
            Err((_, code)) => {
                return Err(KafkaError::kafka("create topic")(
                    rdkafka::error::KafkaError::AdminOp(code),
                ));
            }
        }
    }
    check(admin, topic, partitions, replication).await
}

/// Refuses a topic whose partitions or replication differ from the configuration.
/// A topic just created may show no partitions for a moment: asked again, for up to
/// 10 s.
async fn check(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    partitions: i32,
    replication: i32,
) -> Result<(), KafkaError> {
    let started = std::time::Instant::now();
    let (actual_partitions, actual_replication) = loop {
        let metadata = admin
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(KafkaError::kafka("topic metadata"))?;
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .filter(|t| t.error().is_none() && !t.partitions().is_empty());
        if let Some(found) = found {
            let replication = found
                .partitions()
                .iter()
                .map(|p| p.replicas().len())
                .max()
                .unwrap_or(0);
            break (found.partitions().len(), replication);
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err(KafkaError::kafka("topic metadata")(
                rdkafka::error::KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownTopic),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let expected = (
        usize::try_from(partitions).unwrap_or(0),
        usize::try_from(replication).unwrap_or(0),
    );
    if (actual_partitions, actual_replication) != expected {
        return Err(KafkaError::TopicMismatch {
            topic: topic.to_owned(),
            expected: format!("{} partitions, replication {}", expected.0, expected.1),
            actual: format!("{actual_partitions} partitions, replication {actual_replication}"),
        });
    }
    Ok(())
}
