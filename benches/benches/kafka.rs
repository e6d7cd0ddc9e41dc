//! The Kafka transport, each line beside what bounds it, in one run:
//!
//! * `relay/cqrs-kafka`: [`KafkaRelay`] publishing 20,000 MADA events (transactions
//!   of 500, a watermark per partition and the checkpoint in each), beside
//!   `relay/raw-producer`: a transactional rdkafka producer sending the same records
//!   (same payloads, headers and producer settings) in transactions of 500, nothing
//!   else: the ceiling.
//! * `consume/kafka-subscriber`: the plan read model built from those topics by
//!   a [`KafkaSubscriber`] (merge across 6 partitions, offsets committed per batch),
//!   beside `consume/memory-subscription`: the same projection fed by the in-memory
//!   store's subscription.
//! * Then, outside criterion (it measures throughput, not percentiles): command to
//!   read model visible, p50 and p99 over 300 single-event appends on loopback, via
//!   the PostgreSQL store's subscription, via `PgCdcSource`, via the relay
//!   (PostgreSQL → relay → Kafka → subscriber; with transactions, the default, and
//!   without: at least once), and via Debezium (PostgreSQL →
//!   Kafka Connect → Kafka → subscriber, heartbeat every 50 ms), printed as
//!   `latency ...` lines.
//!
//! Run with `cargo bench -p cqrs-benches --bench kafka` (PostgreSQL, Kafka and Kafka
//! Connect with Debezium from `scripts/services.sh up`).

use std::time::{Duration, Instant};

use cqrs_benches::{percentile, planner_events, pool_in};
use cqrs_core::{
    AppendRequest, EventAppender, EventBatchStream, EventSubscriber, ExpectedVersion,
    MemoryReadModelStore, Metadata, NewEvent, Position, ProjectionRunner, RawEvent, RecordedEvent,
};
use cqrs_kafka::rdkafka::ClientConfig;
use cqrs_kafka::rdkafka::message::{Header, OwnedHeaders};
use cqrs_kafka::rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use cqrs_kafka::{KafkaRelay, KafkaSubscriber, headers};
use cqrs_postgres::{PgCdcSource, PgEventStore};
use criterion::{Criterion, Throughput};
use futures::StreamExt;
use mada::projections::PlanProjection;

const USERS: usize = 645; // 645 * 31 = 19,995 events
const BATCH: usize = 500;
const PARTITIONS: i32 = 6;
const LATENCY_SAMPLES: usize = 300;

/// A source that hands out a fixed list of events, then ends (the relay then returns).
struct Finite(Vec<RecordedEvent>);

impl EventSubscriber for Finite {
    fn subscribe(&self, after: Position, batch_size: usize) -> EventBatchStream {
        let events: Vec<RecordedEvent> = self
            .0
            .iter()
            .filter(|e| e.position > after)
            .cloned()
            .collect();
        let batches: Vec<_> = events
            .chunks(batch_size)
            .map(|chunk| Ok(chunk.to_vec()))
            .collect();
        futures::stream::iter(batches).boxed()
    }
}

/// The records the relay writes for `events`, sent by a bare transactional producer.
async fn raw_publish(brokers: &str, topic: &str, events: &[RecordedEvent], id: String) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("transactional.id", &id)
        .set("enable.idempotence", "true")
        .set("transaction.timeout.ms", "20000")
        .set("message.timeout.ms", "15000")
        .create()
        .expect("producer");
    let producer = std::sync::Arc::new(producer);
    {
        let producer = producer.clone();
        tokio::task::spawn_blocking(move || producer.init_transactions(Duration::from_secs(30)))
            .await
            .expect("task")
            .expect("init");
    }
    for chunk in events.chunks(BATCH) {
        producer.begin_transaction().expect("begin");
        let mut deliveries = Vec::with_capacity(chunk.len());
        for event in chunk {
            let payload = serde_json::to_vec(&event.event.payload).expect("json");
            let text = [
                (headers::EVENT_TYPE, event.event.event_type.clone()),
                (
                    headers::SCHEMA_VERSION,
                    event.event.schema_version.to_string(),
                ),
                (headers::EVENT_ID, event.event_id.to_string()),
                (headers::STREAM_ID, event.stream_id.to_string()),
                (headers::VERSION, event.version.to_string()),
                (headers::POSITION, event.position.to_string()),
                (headers::RECORDED_AT, event.recorded_at.to_rfc3339()),
                (
                    headers::USER_ID,
                    event.metadata.user_id.clone().unwrap_or_default(),
                ),
            ];
            let headers = text.iter().fold(OwnedHeaders::new(), |h, (key, value)| {
                h.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                })
            });
            let key = event.stream_id.to_string();
            let record = FutureRecord::to(topic)
                .key(&key)
                .payload(&payload)
                .headers(headers);
            deliveries.push(
                producer
                    .send_result(record)
                    .map_err(|(e, _)| e)
                    .expect("send"),
            );
        }
        for delivery in deliveries {
            delivery
                .await
                .expect("delivery")
                .map_err(|(e, _)| e)
                .expect("ack");
        }
        let producer = producer.clone();
        tokio::task::spawn_blocking(move || producer.commit_transaction(Duration::from_secs(30)))
            .await
            .expect("task")
            .expect("commit");
    }
    tokio::task::spawn_blocking(move || drop(producer))
        .await
        .expect("drop");
}

/// Appends one event at a time to `store` and waits until the runner behind
/// `handle` has applied it; prints p50 and p99.
async fn latency(name: &str, store: &PgEventStore, handle: &cqrs_core::ProjectionHandle) {
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    for n in 0..LATENCY_SAMPLES + 20 {
        let event = NewEvent {
            event_id: uuid::Uuid::now_v7(),
            event: RawEvent {
                event_type: "bench.Ticked".into(),
                schema_version: 1,
                payload: serde_json::json!({ "n": n }),
            },
            metadata: Metadata::new().with_user(format!("user{}", n % 10)),
        };
        let started = Instant::now();
        let position = store
            .append(AppendRequest::new(
                format!("tick-{}", n % 10),
                ExpectedVersion::Any,
                vec![event],
            ))
            .await
            .expect("append")
            .position
            .expect("position");
        handle
            .wait_for_timeout(position, Duration::from_secs(30))
            .await
            .expect("visible");
        if n >= 20 {
            samples.push(started.elapsed()); // the first 20 warm up
        }
    }
    samples.sort();
    println!(
        "latency {name}: p50 {:.2} ms, p99 {:.2} ms ({} samples)",
        percentile(&samples, 0.5).as_secs_f64() * 1000.0,
        percentile(&samples, 0.99).as_secs_f64() * 1000.0,
        samples.len()
    );
}

/// A projection that counts ticks per user: the cheapest read model, so that the
/// latency is the transport's.
struct Ticks;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, cqrs_core::Event)]
#[event(namespace = "bench")]
enum TickEvent {
    Ticked { n: u64 },
}

impl cqrs_core::Projection for Ticks {
    const NAME: &'static str = "ticks";
    type Event = TickEvent;
    type Document = u64;

    fn document_ids(&self, event: &cqrs_core::Envelope<TickEvent>) -> Vec<String> {
        event.metadata.user_id.iter().cloned().collect()
    }

    fn apply(&self, _: &str, count: &mut Option<u64>, _: &cqrs_core::Envelope<TickEvent>) {
        *count.get_or_insert(0) += 1;
    }
}

fn main() {
    // `RUST_LOG=cqrs_kafka=debug` shows each relay transaction's duration.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = cqrs_benches::runtime();
    let mut criterion = Criterion::default().configure_from_args();
    let brokers = cqrs_testkit::kafka_brokers();
    let prefix = cqrs_testkit::unique_name("bench");
    let consume_prefix = cqrs_testkit::unique_name("consume");
    // Every topic this run makes goes when it ends.
    let _topics = cqrs_testkit::kafka::DeleteTopics::under(
        &brokers,
        [
            prefix.clone(),
            consume_prefix.clone(),
            "latency_".into(),
            "__debezium-heartbeat.latency_".into(),
        ],
    );
    let (_, events) = rt.block_on(planner_events(USERS));
    let count = events.len() as u64;
    let source = Finite(events.clone());

    let mut group = criterion.benchmark_group("kafka");
    group.throughput(Throughput::Elements(count));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    let mut run = 0u64;
    group.bench_function("relay/cqrs-kafka/20k", |b| {
        b.to_async(&rt).iter(|| {
            run += 1;
            let relay = KafkaRelay::new(&brokers, &format!("bench-{run}"))
                .with_prefix(&prefix)
                .with_topic_layout(PARTITIONS, 1)
                .with_batch_size(BATCH);
            let source = &source;
            async move {
                // The source ends after the last event: the relay then returns.
                let ended = relay.run(source).await;
                assert!(
                    matches!(ended, Err(cqrs_kafka::KafkaError::Source(_))),
                    "{ended:?}"
                );
            }
        });
    });
    let raw_topic = format!("{prefix}.raw");
    rt.block_on(async {
        use cqrs_kafka::rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: AdminClient<_> = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .expect("admin");
        let topic = NewTopic::new(&raw_topic, PARTITIONS, TopicReplication::Fixed(1));
        admin
            .create_topics(&[topic], &AdminOptions::new())
            .await
            .expect("create the raw topic");
    });
    group.bench_function("relay/raw-producer/20k", |b| {
        b.to_async(&rt).iter(|| {
            run += 1;
            raw_publish(&brokers, &raw_topic, &events, format!("{prefix}.raw.{run}"))
        });
    });

    // Consumption: the topics now hold the events many times over (one copy per
    // relay run); each iteration builds the read model from the first copy's events,
    // which the subscriber must read through anyway: so it reads only the first
    // run's records by using a relay of its own under a fresh prefix.
    rt.block_on(async {
        let relay = KafkaRelay::new(&brokers, "consume")
            .with_prefix(&consume_prefix)
            .with_topic_layout(PARTITIONS, 1)
            .with_batch_size(BATCH);
        let _ = relay.run(&source).await;
    });
    let head = events.last().map_or(Position::START, |e| e.position);
    group.bench_function("consume/kafka-subscriber/20k", |b| {
        b.to_async(&rt).iter(|| {
            let subscriber = KafkaSubscriber::new(
                &brokers,
                &cqrs_testkit::unique_name("group"),
                [format!("{consume_prefix}.goal")],
            );
            async move {
                let handle =
                    ProjectionRunner::new(PlanProjection, subscriber, MemoryReadModelStore::new())
                        .with_batch_size(BATCH)
                        .spawn();
                handle
                    .wait_for_timeout(head, Duration::from_secs(60))
                    .await
                    .expect("caught up");
                handle.stop().await.expect("stop");
            }
        });
    });
    let (store, _) = rt.block_on(planner_events(USERS));
    group.bench_function("consume/memory-subscription/20k", |b| {
        b.to_async(&rt).iter(|| {
            let store = store.clone();
            async move {
                let handle =
                    ProjectionRunner::new(PlanProjection, store, MemoryReadModelStore::new())
                        .with_batch_size(BATCH)
                        .spawn();
                handle.wait_for(head).await.expect("caught up");
                handle.stop().await.expect("stop");
            }
        });
    });
    group.finish();
    criterion.final_summary();

    // Latency, command to read model visible.
    rt.block_on(async {
        let schema = cqrs_testkit::unique_name("latency");
        let pool = pool_in(&schema, 8).await;
        let store = PgEventStore::new(pool.clone());
        store.migrate().await.expect("migrate");
        let slot = format!("lat_{}", &schema[schema.len() - 12..]);
        let cdc = PgCdcSource::create(pool.clone(), &slot)
            .await
            .expect("slot");

        let subscription =
            ProjectionRunner::new(Ticks, store.clone(), MemoryReadModelStore::new()).spawn();
        latency("subscription (PostgreSQL, NOTIFY)", &store, &subscription).await;
        subscription.stop().await.expect("stop");

        let through_cdc =
            ProjectionRunner::new(Ticks, cdc.clone(), MemoryReadModelStore::new()).spawn();
        through_cdc
            .wait_for(cqrs_core::LogReader::head(&store).await.expect("head"))
            .await
            .expect("cdc caught up");
        latency("cdc (PgCdcSource)", &store, &through_cdc).await;
        through_cdc.stop().await.expect("stop");

        for transactions in [true, false] {
            let kafka_prefix = cqrs_testkit::unique_name("latency");
            let relay = KafkaRelay::new(&brokers, "latency")
                .with_prefix(&kafka_prefix)
                .with_topic_layout(PARTITIONS, 1)
                .with_transactions(transactions);
            let relayed = store.clone();
            let relay = tokio::spawn(async move { relay.run(&relayed).await });
            let subscriber = KafkaSubscriber::new(
                &brokers,
                &cqrs_testkit::unique_name("group"),
                [format!("{kafka_prefix}.tick")],
            );
            let through_kafka =
                ProjectionRunner::new(Ticks, subscriber, MemoryReadModelStore::new()).spawn();
            through_kafka
                .wait_for_timeout(
                    cqrs_core::LogReader::head(&store).await.expect("head"),
                    Duration::from_secs(60),
                )
                .await
                .expect("kafka caught up");
            let name = if transactions {
                "relay (PostgreSQL -> Kafka -> subscriber), transactions"
            } else {
                "relay (PostgreSQL -> Kafka -> subscriber), at least once"
            };
            latency(name, &store, &through_kafka).await;
            through_kafka.stop().await.expect("stop");
            relay.abort();
        }

        // Debezium: a connector on this schema (heartbeat every 50 ms: the floor of
        // its latency), read by the subscriber in Debezium mode.
        let connector = format!("dbz_{}", &schema[schema.len() - 16..]);
        let topic = format!("{schema}.events");
        let mut config = cqrs_kafka::debezium_connector(&schema, &connector, &topic, 50);
        for (key, value) in cqrs_testkit::debezium_database() {
            config[key] = value.into();
        }
        let connect = cqrs_testkit::connect_url();
        let put = cqrs_testkit::http::request(
            &connect,
            "PUT",
            &format!("/connectors/{connector}/config"),
            Some(&config.to_string()),
        )
        .expect("Kafka Connect (scripts/services.sh up debezium)");
        assert!(put.status < 300, "{}: {}", put.status, put.body);
        let started = Instant::now();
        loop {
            let active: Option<bool> =
                sqlx::query_scalar("SELECT active FROM pg_replication_slots WHERE slot_name = $1")
                    .bind(&connector)
                    .fetch_optional(&pool)
                    .await
                    .expect("slots");
            if active == Some(true) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the connector did not start"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let from = cqrs_core::LogReader::head(&store).await.expect("head");
        let subscriber =
            KafkaSubscriber::debezium(&brokers, &cqrs_testkit::unique_name("group"), &topic);
        // The connector streams what is committed after its slot: the read model
        // starts at the current head.
        let documents = MemoryReadModelStore::new();
        cqrs_core::ReadModelWriter::commit(&documents, "ticks", Vec::new(), from)
            .await
            .expect("checkpoint");
        let through_debezium = ProjectionRunner::new(Ticks, subscriber, documents).spawn();
        latency(
            "Debezium (PostgreSQL -> Kafka Connect -> Kafka -> subscriber)",
            &store,
            &through_debezium,
        )
        .await;
        through_debezium.stop().await.expect("stop");
        let deleted = cqrs_testkit::http::request(
            &connect,
            "DELETE",
            &format!("/connectors/{connector}"),
            None,
        )
        .expect("delete connector");
        assert!(deleted.status < 300, "{}", deleted.body);
        let started = Instant::now();
        while sqlx::query(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
             WHERE slot_name = $1 AND NOT active",
        )
        .bind(&connector)
        .execute(&pool)
        .await
        .map(|done| done.rows_affected() == 0)
        .unwrap_or(true)
            && started.elapsed() < Duration::from_secs(30)
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        sqlx::query(&format!("DROP PUBLICATION IF EXISTS {connector}"))
            .execute(&pool)
            .await
            .expect("drop publication");

        cdc.drop_slot().await.expect("drop slot");
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&pool)
            .await
            .expect("drop schema");
    });
}
