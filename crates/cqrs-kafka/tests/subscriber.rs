//! `KafkaSubscriber` against the Kafka that `scripts/services.sh` starts: read models
//! built from the relay's topics equal the ones built from the store, also when a
//! document is fed by streams on different partitions (which naive per-partition
//! consumption gets wrong, shown here), when the runner is killed mid-batch again and
//! again, and when bad records sit in the topics.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::time::Duration;

use common::{TestEvent, Timeline, append_range, values};
use cqrs_core::{
    AppendRequest, EventAppender, ExpectedVersion, LogReader, MemoryEventStore,
    MemoryReadModelStore, Metadata, NewEvent, Position, ProjectionRunner, RecordedEvent,
};
use cqrs_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use cqrs_kafka::rdkafka::message::{Header, Headers, OwnedHeaders};
use cqrs_kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use cqrs_kafka::rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use cqrs_kafka::{KafkaDeadLetters, KafkaRelay, KafkaSubscriber, Record, decode_record, headers};
use cqrs_testkit::{OrUnreachable, kafka_brokers, unique_name};

const PARTITIONS: i32 = 4;

/// Appends events `from..to`, round-robin over 12 streams of two aggregate types,
/// for 3 users.
async fn append(store: &MemoryEventStore, from: u64, to: u64) -> Position {
    append_range(store, from, to, 12, true).await
}

fn topics(prefix: &str) -> Vec<String> {
    vec![format!("{prefix}.goal"), format!("{prefix}.category")]
}

/// The relay of `store` to topics under `prefix`, running in the background.
fn relay(store: &MemoryEventStore, prefix: &str) -> tokio::task::JoinHandle<()> {
    common::spawn_relay(store, prefix, PARTITIONS)
}

fn subscriber(prefix: &str, group: &str) -> KafkaSubscriber {
    KafkaSubscriber::new(&kafka_brokers(), group, topics(prefix))
}

/// Fails with the way to start Kafka if the broker cannot be reached.
fn require_broker() {
    common::trace();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .create()
        .unwrap();
    consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .or_unreachable("Kafka", &kafka_brokers());
}

/// Every event of `topics`, read the naive way: partition after partition, each in
/// its own order.
fn per_partition(topics: &[String]) -> Vec<RecordedEvent> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .set("group.id", unique_name("naive"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut events = Vec::new();
    for topic in topics {
        for partition in 0..PARTITIONS {
            let (_, high) = consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .unwrap();
            let mut assignment = TopicPartitionList::new();
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .unwrap();
            consumer.assign(&assignment).unwrap();
            loop {
                let at = consumer
                    .position()
                    .unwrap()
                    .find_partition(topic, partition)
                    .and_then(|p| p.offset().to_raw())
                    .unwrap_or(0);
                if at >= high {
                    break;
                }
                let Some(message) = consumer.poll(Duration::from_millis(200)) else {
                    continue;
                };
                if let Record::Event(event) = decode_record(&message.unwrap()).unwrap() {
                    events.push(event);
                }
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_fed_from_many_partitions_match_the_store_where_naive_consumption_does_not() {
    require_broker();
    let prefix = unique_name("order");
    let _topics = cqrs_testkit::kafka::DeleteTopics::under(&kafka_brokers(), [prefix.clone()]);
    let store = MemoryEventStore::new();
    // Only goal streams at first: the category topic appears later, mid-subscription.
    for n in (0..120).filter(|n| n % 2 == 0) {
        let metadata = Metadata::new().with_user(format!("user-{}", n % 3));
        let event = NewEvent::encode(&TestEvent::Happened { n }, metadata).unwrap();
        store
            .append(AppendRequest::new(
                format!("goal-{}", n % 12),
                ExpectedVersion::Any,
                vec![event],
            ))
            .await
            .unwrap();
    }
    let relay = relay(&store, &prefix);
    let documents = MemoryReadModelStore::new();
    let source = subscriber(&prefix, &unique_name("group"));
    let handle = ProjectionRunner::new(Timeline, source.clone(), documents.clone())
        .with_batch_size(50)
        .spawn();
    handle
        .wait_for_timeout(store.head().await.unwrap(), Duration::from_secs(60))
        .await
        .unwrap();
    let head = append(&store, 1000, 1400).await;
    handle
        .wait_for_timeout(head, Duration::from_secs(60))
        .await
        .unwrap();
    // The consumer's lag is measured every second, reported in the runner's stats,
    // and falls to nothing once everything is applied (the transaction markers
    // passed too).
    let started = std::time::Instant::now();
    while handle.stats().backlog.is_none() && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(handle.stats().backlog.is_some(), "{:?}", handle.stats());
    while handle.stats().backlog != Some(0) && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        handle.stats().backlog,
        Some(0),
        "the stats follow the lag while idle"
    );
    assert_eq!(source.lag(), Some(0));
    handle.stop().await.unwrap();
    relay.abort();
    let expected = common::rebuilt_values(&store).await;
    assert_eq!(expected.len(), 3);
    assert_eq!(
        values(&documents),
        expected,
        "the Kafka-built read model differs"
    );

    // The same records consumed partition by partition, each event applied under the
    // per-document guard: documents lose the events that arrive behind newer ones.
    let naive = MemoryReadModelStore::new();
    let runner = ProjectionRunner::new(Timeline, store.clone(), naive.clone());
    let events = per_partition(&topics(&prefix));
    assert_eq!(
        events.len() as u64,
        head.0,
        "every event is on the topics once"
    );
    for event in events {
        runner.apply(Position::START, &[event]).await.unwrap();
    }
    assert_ne!(
        values(&naive),
        expected,
        "naive per-partition consumption should lose events"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_mid_batch_again_and_again_ends_equal_to_a_rebuild() {
    require_broker();
    let prefix = unique_name("killed");
    let _topics = cqrs_testkit::kafka::DeleteTopics::under(&kafka_brokers(), [prefix.clone()]);
    let group = unique_name("group");
    let store = MemoryEventStore::new();
    append(&store, 0, 200).await;
    let relay = relay(&store, &prefix);
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for round in 0..20 {
                append(&store, 1000 + round * 50, 1000 + (round + 1) * 50).await;
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        })
    };
    let documents = MemoryReadModelStore::new();
    for round in 0..10u64 {
        let handle =
            ProjectionRunner::new(Timeline, subscriber(&prefix, &group), documents.clone())
                .with_batch_size(7)
                .spawn();
        // Killed at a point that differs every round, often between a commit of the
        // read model and the commit of the offsets.
        tokio::time::sleep(Duration::from_millis(150 + (round * 37) % 200)).await;
        handle.abort();
    }
    writer.await.unwrap();
    let head = store.head().await.unwrap();
    let handle =
        ProjectionRunner::new(Timeline, subscriber(&prefix, &group), documents.clone()).spawn();
    handle
        .wait_for_timeout(head, Duration::from_secs(60))
        .await
        .unwrap();
    handle.stop().await.unwrap();
    relay.abort();
    assert_eq!(values(&documents), common::rebuilt_values(&store).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_go_to_the_dead_letters_and_reading_goes_on() {
    require_broker();
    let prefix = unique_name("bad");
    let group = unique_name("group");
    let _topics =
        cqrs_testkit::kafka::DeleteTopics::under(&kafka_brokers(), [prefix.clone(), group.clone()]);
    let store = MemoryEventStore::new();
    let first = append(&store, 0, 30).await;
    let relay = relay(&store, &prefix);
    let documents = MemoryReadModelStore::new();
    let dead_letters = KafkaDeadLetters::new(&kafka_brokers(), &format!("{group}.dead-letters"));
    let handle = ProjectionRunner::new(Timeline, subscriber(&prefix, &group), documents.clone())
        .with_dead_letters(dead_letters.clone(), 3)
        .spawn();
    handle
        .wait_for_timeout(first, Duration::from_secs(60))
        .await
        .unwrap();

    // Someone else writes garbage into the topic: no headers, a garbled position, a
    // value that is not JSON.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .create()
        .unwrap();
    let topic = format!("{prefix}.goal");
    let event_id = uuid::Uuid::now_v7().to_string();
    let garbled = [
        (headers::EVENT_TYPE, "test.Happened"),
        (headers::SCHEMA_VERSION, "1"),
        (headers::EVENT_ID, event_id.as_str()),
        (headers::STREAM_ID, "goal-0"),
        (headers::VERSION, "1"),
        (headers::RECORDED_AT, "2026-11-26T10:00:00Z"),
        (headers::POSITION, "minus one"),
    ]
    .into_iter()
    .fold(OwnedHeaders::new(), |h, (key, value)| {
        h.insert(Header {
            key,
            value: Some(value.as_bytes()),
        })
    });
    let bad = [
        (b"{}".to_vec(), OwnedHeaders::new()),
        (b"{\"n\":1}".to_vec(), garbled),
        (
            b"not json".to_vec(),
            OwnedHeaders::new().insert(Header {
                key: headers::EVENT_TYPE,
                value: Some("test.Happened".as_bytes()),
            }),
        ),
    ];
    for (partition, (value, headers)) in bad.into_iter().enumerate() {
        producer
            .send(
                FutureRecord::to(&topic)
                    .key("intruder")
                    .payload(&value)
                    .headers(headers)
                    .partition(i32::try_from(partition).unwrap()),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    // And an event well published but that the projection cannot decode.
    let poison = NewEvent {
        event_id: uuid::Uuid::now_v7(),
        event: cqrs_core::RawEvent {
            event_type: "test.Happened".into(),
            schema_version: 1,
            payload: serde_json::json!({ "n": "many" }),
        },
        metadata: Metadata::new().with_user("user-1"),
    };
    store
        .append(AppendRequest::new(
            "goal-5",
            ExpectedVersion::Any,
            vec![poison],
        ))
        .await
        .unwrap();
    let head = append(&store, 30, 90).await;
    handle
        .wait_for_timeout(head, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(handle.stats().set_aside, 1);
    handle.stop().await.unwrap();
    relay.abort();
    assert_eq!(values(&documents), common::rebuilt_values(&store).await);

    // Each bad record is in the dead letters, with why and where it came from, and
    // so is the event the projection could not decode, with its projection.
    let all = read_all(&format!("{group}.dead-letters"), 4);
    assert_eq!(all.len(), 4);
    let (letters, set_aside): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|l| l.contains_key(headers::DEAD_LETTER_TOPIC));
    assert_eq!(set_aside.len(), 1);
    assert_eq!(set_aside[0][headers::DEAD_LETTER_PROJECTION], "timeline");
    assert_eq!(set_aside[0][headers::STREAM_ID], "goal-5");
    let listed = dead_letters.list().await.unwrap();
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert_eq!(listed.iter().filter(|l| l.source.is_some()).count(), 3);
    let listed_poison = listed.iter().find(|l| l.projection.is_some()).unwrap();
    assert_eq!(
        listed_poison.value.as_deref(),
        Some(&b"{\"n\":\"many\"}"[..])
    );
    assert!(
        listed_poison.error.contains("test.Happened"),
        "{}",
        listed_poison.error
    );
    for (partition, letter) in letters.iter().enumerate() {
        assert_eq!(letter.get(headers::DEAD_LETTER_TOPIC).unwrap(), &topic);
        assert_eq!(
            letter.get(headers::DEAD_LETTER_PARTITION).unwrap(),
            &partition.to_string()
        );
        assert!(!letter.get(headers::DEAD_LETTER_ERROR).unwrap().is_empty());
        assert!(letter.contains_key(headers::DEAD_LETTER_OFFSET));
    }
    let reasons: Vec<&String> = letters
        .iter()
        .map(|l| &l[headers::DEAD_LETTER_ERROR])
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("cqrs-position")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("not JSON")),
        "{reasons:?}"
    );
}

/// The headers of the first `count` records of `topic` (one partition), waiting for
/// them up to 30 s.
fn read_all(topic: &str, count: usize) -> Vec<std::collections::HashMap<String, String>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .set("group.id", unique_name("letters"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    while out.len() < count && started.elapsed() < Duration::from_secs(30) {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.unwrap();
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(headers);
    }
    out
}

/// Two runners of one read model in one consumer group, with a lease: the first is
/// killed mid-stream, the standby takes the lease over and goes on from the stored
/// checkpoint and the committed offsets. Nothing lost, nothing applied twice (the
/// timeline would show a number twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_in_the_same_group_takes_over_when_the_leader_dies() {
    require_broker();
    let prefix = unique_name("takeover");
    let _topics = cqrs_testkit::kafka::DeleteTopics::under(&kafka_brokers(), [prefix.clone()]);
    let group = unique_name("group");
    let store = MemoryEventStore::new();
    append(&store, 0, 100).await;
    let relay = relay(&store, &prefix);
    let lease = cqrs_core::MemoryLease::new();
    let documents = MemoryReadModelStore::new();
    let runner = || {
        ProjectionRunner::new(Timeline, subscriber(&prefix, &group), documents.clone())
            .with_batch_size(5)
            .with_lease(lease.clone(), Duration::from_millis(600))
    };
    let leader = runner().spawn();
    leader
        .wait_for_timeout(store.head().await.unwrap(), Duration::from_secs(60))
        .await
        .unwrap();
    let standby = runner().spawn();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for round in 0..10 {
                append(&store, 1000 + round * 40, 1000 + (round + 1) * 40).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(leader.stats().leader && !standby.stats().leader);
    leader.abort(); // dies holding the lease, mid-stream
    writer.await.unwrap();
    let head = store.head().await.unwrap();
    standby
        .wait_for_timeout(head, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(standby.stats().leader, "the standby took the lease over");
    standby.stop().await.unwrap();
    relay.abort();
    assert_eq!(values(&documents), common::rebuilt_values(&store).await);
}

/// The relay without transactions (at least once), cancelled at random points again
/// and again: the topics may hold copies, every event is there at least once, and the
/// subscriber, which releases each position once, still builds an exact read model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_at_least_once_relay_killed_again_and_again_still_builds_an_exact_read_model() {
    require_broker();
    let prefix = unique_name("alo");
    let _topics = cqrs_testkit::kafka::DeleteTopics::under(&kafka_brokers(), [prefix.clone()]);
    let store = MemoryEventStore::new();
    let head = append(&store, 0, 1500).await;
    let relay = || {
        KafkaRelay::new(&kafka_brokers(), "alo")
            .with_prefix(&prefix)
            .with_topic_layout(PARTITIONS, 1)
            .with_batch_size(10)
            .with_transactions(false)
    };
    for round in 0..8u64 {
        let (relay, store) = (relay(), store.clone());
        let task = tokio::spawn(async move { relay.run(&store).await });
        tokio::time::sleep(Duration::from_millis(300 + (round * 53) % 250)).await;
        task.abort();
        let _ = task.await;
    }
    let last = {
        let (relay, store) = (relay(), store.clone());
        tokio::spawn(async move { relay.run(&store).await })
    };
    let started = std::time::Instant::now();
    while relay().checkpoint().await.unwrap() < head {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the relay did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last.abort();

    let (brokers, names) = (kafka_brokers(), topics(&prefix));
    let seen = tokio::task::spawn_blocking(move || {
        cqrs_testkit::kafka::read_to_end(&brokers, &names, "read_committed")
    })
    .await
    .unwrap();
    let events: Vec<_> = seen.iter().filter(|s| !s.is_watermark()).collect();
    let distinct: std::collections::HashSet<&str> = events
        .iter()
        .map(|s| s.headers[headers::EVENT_ID].as_str())
        .collect();
    assert_eq!(distinct.len() as u64, head.0, "every event at least once");
    println!("{} records for {} events", events.len(), distinct.len());

    let documents = MemoryReadModelStore::new();
    let handle = ProjectionRunner::new(
        Timeline,
        subscriber(&prefix, &unique_name("group")),
        documents.clone(),
    )
    .spawn();
    handle
        .wait_for_timeout(head, Duration::from_secs(60))
        .await
        .unwrap();
    handle.stop().await.unwrap();
    assert_eq!(values(&documents), common::rebuilt_values(&store).await);
}
