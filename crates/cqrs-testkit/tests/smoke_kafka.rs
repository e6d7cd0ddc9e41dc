//! Kafka takes messages and gives them to a consumer group, which resumes from its
//! committed offset.

use std::time::Duration;

use cqrs_testkit::{OrUnreachable, kafka_brokers, unique_name};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};

const LIMIT: Duration = Duration::from_secs(60);

fn consumer(config: &ClientConfig, group: &str, topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer = config
        .clone()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// Receives one message; returns its offset and payload.
async fn receive(consumer: &StreamConsumer) -> (i64, String) {
    let message = tokio::time::timeout(LIMIT, consumer.recv())
        .await
        .expect("a message within 60 s")
        .expect("recv");
    let payload = String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned();
    (message.offset(), payload)
}

// Closing a consumer waits for librdkafka to leave the group: give it a thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_produces_and_consumes_in_a_group_with_a_committed_offset() {
    let brokers = kafka_brokers();
    let topic = unique_name("smoke");
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &brokers)
        .set("socket.timeout.ms", "5000");

    let admin: AdminClient<DefaultClientContext> = config.create().expect("admin client");
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .or_unreachable("Kafka", &brokers);
    assert!(created.iter().all(Result::is_ok), "{created:?}");

    let producer: FutureProducer = config
        .clone()
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer");
    for (i, payload) in ["GoalCreated", "GoalCompleted"].into_iter().enumerate() {
        let delivery = producer
            .send(
                FutureRecord::to(&topic).key("goal-1").payload(payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .or_unreachable("Kafka", &brokers);
        assert_eq!((delivery.partition, delivery.offset), (0, i as i64));
    }

    // The first member of the group reads the first message and commits it.
    let group = unique_name("smoke-group");
    let first = consumer(&config, &group, &topic);
    assert_eq!(receive(&first).await, (0, "GoalCreated".to_owned()));
    first
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    tokio::task::spawn_blocking(move || drop(first))
        .await
        .expect("consumer closed");

    // A new member of the same group resumes after the committed offset.
    let second = consumer(&config, &group, &topic);
    assert_eq!(receive(&second).await, (1, "GoalCompleted".to_owned()));
    tokio::task::spawn_blocking(move || drop(second))
        .await
        .expect("consumer closed");

    admin
        .delete_topics(&[&topic], &AdminOptions::new())
        .await
        .expect("delete topic");
}
