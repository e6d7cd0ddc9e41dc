//! MADA over Kafka: the relay publishes the planner's events to `{prefix}.goal` and
//! `{prefix}.category`, keyed by user, and each projection reads them back through a
//! [`KafkaSubscriber`] in a consumer group of its own.

use std::time::Duration;

use cqrs_kafka::rdkafka::ClientConfig;
use cqrs_kafka::rdkafka::admin::{AdminClient, AdminOptions};
use cqrs_kafka::rdkafka::client::DefaultClientContext;
use cqrs_kafka::{DeadLetter, KafkaDeadLetters, KafkaError, KafkaRelay, KafkaSubscriber};

use crate::Feeds;

/// Where MADA's events travel on Kafka.
#[derive(Debug, Clone)]
pub struct KafkaSync {
    brokers: String,
    prefix: String,
}

impl KafkaSync {
    /// Topics and groups under `prefix` on the brokers `brokers`.
    pub fn new(brokers: &str, prefix: &str) -> Self {
        Self {
            brokers: brokers.to_owned(),
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix of the topics and groups.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The topics the planner's events are published to.
    pub fn topics(&self) -> Vec<String> {
        ["goal", "category"]
            .iter()
            .map(|kind| format!("{}.{kind}", self.prefix))
            .collect()
    }

    /// The relay: every event keyed by its user (a user's events stay in one
    /// partition, in order), by its stream if it has none.
    pub fn relay(&self) -> KafkaRelay {
        KafkaRelay::new(&self.brokers, "mada")
            .with_prefix(&self.prefix)
            .with_key(|event| {
                event
                    .metadata
                    .user_id
                    .clone()
                    .unwrap_or_else(|| event.stream_id.to_string())
            })
    }

    /// The source of `projection`: its own consumer group, `{prefix}.{projection}`.
    pub fn subscriber(&self, projection: &str) -> KafkaSubscriber {
        KafkaSubscriber::new(&self.brokers, &self.group(projection), self.topics())
    }

    fn group(&self, projection: &str) -> String {
        format!("{}.{projection}", self.prefix)
    }

    /// The dead letters of `projection`: `{prefix}.{projection}.dead-letters`, where
    /// its subscriber sets aside bad records and its runner the events it cannot
    /// apply.
    pub fn dead_letter_topic(&self, projection: &str) -> KafkaDeadLetters {
        KafkaDeadLetters::new(
            &self.brokers,
            &format!("{}.dead-letters", self.group(projection)),
        )
    }

    /// Every dead letter of `projections`, by projection.
    ///
    /// # Errors
    /// [`KafkaError`] if the brokers cannot be read.
    pub async fn dead_letters(
        &self,
        projections: &[&str],
    ) -> Result<Vec<(String, Vec<DeadLetter>)>, KafkaError> {
        let mut all = Vec::new();
        for projection in projections {
            let letters = self.dead_letter_topic(projection).list().await?;
            all.push(((*projection).to_owned(), letters));
        }
        Ok(all)
    }

    /// Deletes the topics and consumer groups under the prefix (the demo's cleanup).
    ///
    /// # Errors
    /// [`KafkaError`] if the brokers cannot be asked.
    pub async fn delete(&self, projections: &[&str]) -> Result<(), KafkaError> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .create()
            .map_err(|source| KafkaError::Kafka {
                context: "admin client",
                source,
            })?;
        let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
        let groups: Vec<String> = projections.iter().map(|p| self.group(p)).collect();
        let mut topics = self.topics();
        topics.push(self.relay().checkpoint_topic());
        topics.extend(groups.iter().map(|g| format!("{g}.dead-letters")));
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
        // Each result says whether that one existed; only the request failing matters.
        admin
            .delete_groups(&groups, &options)
            .await
            .map_err(|source| KafkaError::Kafka {
                context: "delete groups",
                source,
            })?;
        admin
            .delete_topics(&topics, &options)
            .await
            .map_err(|source| KafkaError::Kafka {
                context: "delete topics",
                source,
            })?;
        Ok(())
    }
}

impl Feeds for KafkaSync {
    type Source = KafkaSubscriber;
    type DeadLetters = KafkaDeadLetters;

    fn source(&self, projection: &str) -> KafkaSubscriber {
        self.subscriber(projection)
    }

    fn dead_letters(&self, projection: &str) -> Option<KafkaDeadLetters> {
        Some(self.dead_letter_topic(projection))
    }
}
