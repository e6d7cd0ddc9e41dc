//! Debezium as the CDC engine, end to end against the services of
//! `scripts/services.sh` (PostgreSQL, Kafka, Kafka Connect with Debezium, FerretDB):
//! commands appended to PostgreSQL by concurrent writers (so that commit order and
//! positions disagree), captured from the WAL by a Debezium connector, read from
//! Kafka by `KafkaSubscriber::debezium` into a MongoDB read model that must equal a
//! rebuild from the store.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::time::{Duration, Instant};

use common::{TestEvent, Timeline};
use cqrs_core::{
    AppendRequest, EventAppender, ExpectedVersion, LogReader, MemoryReadModelStore, Metadata,
    NewEvent, Position, Projection, ProjectionRunner, ReadModelReader,
};
use cqrs_kafka::{KafkaSubscriber, debezium_connector};
use cqrs_mongo::MongoReadModelStore;
use cqrs_postgres::PgEventStore;
use cqrs_testkit::http::request;
use cqrs_testkit::{
    OrUnreachable, connect_url, kafka_brokers, mongodb_url, postgres_url, unique_name,
};

/// The connector's state (`RUNNING`, `FAILED`, ...), or why it cannot be read.
fn connector_state(name: &str) -> String {
    match request(
        &connect_url(),
        "GET",
        &format!("/connectors/{name}/status"),
        None,
    ) {
        Ok(response) if response.status == 200 => {
            let status: serde_json::Value = serde_json::from_str(&response.body).unwrap();
            let tasks = status["tasks"].as_array().cloned().unwrap_or_default();
            match tasks.first() {
                Some(task) if task["state"] == "FAILED" => {
                    format!("FAILED: {}", task["trace"].as_str().unwrap_or_default())
                }
                Some(task) => task["state"].as_str().unwrap_or_default().to_owned(),
                None => "no task yet".to_owned(),
            }
        }
        Ok(response) => format!("{}: {}", response.status, response.body),
        Err(error) => error,
    }
}

/// Deletes the connector when the test ends, also by a panic: a connector left
/// running keeps its slot active and its heartbeat writing.
struct Connector(String);

impl Drop for Connector {
    fn drop(&mut self) {
        let _ = request(
            &connect_url(),
            "DELETE",
            &format!("/connectors/{}", self.0),
            None,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_reach_a_mongodb_read_model_through_debezium_in_position_order() {
    let schema = unique_name("dbz");
    let slot = format!("dbz_{}", &schema[schema.len() - 16..]);
    let topic = format!("{schema}.events");
    let _topics = cqrs_testkit::kafka::DeleteTopics::under(
        &kafka_brokers(),
        [schema.clone(), format!("__debezium-heartbeat.{topic}")],
    );
    let pool = {
        let options: sqlx::postgres::PgConnectOptions = postgres_url().parse().unwrap();
        let options = options.options([("search_path", schema.as_str())]);
        let pool = sqlx::PgPool::connect_with(options)
            .await
            .or_unreachable("PostgreSQL", &postgres_url());
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&pool)
            .await
            .unwrap();
        cqrs_postgres::migrate(&pool).await.unwrap();
        pool
    };
    let store = PgEventStore::new(pool.clone());

    // The connector, with the test server's (non-secret) credentials.
    let mut config = debezium_connector(&schema, &slot, &topic, 100);
    for (key, value) in cqrs_testkit::debezium_database() {
        config[key] = value.into();
    }
    let put = request(
        &connect_url(),
        "PUT",
        &format!("/connectors/{slot}/config"),
        Some(&config.to_string()),
    )
    .or_unreachable("Kafka Connect", &connect_url());
    assert!(
        put.status == 201 || put.status == 200,
        "{}: {}",
        put.status,
        put.body
    );
    let connector = Connector(slot.clone());
    let started = Instant::now();
    loop {
        let state = connector_state(&slot);
        let active: Option<bool> =
            sqlx::query_scalar("SELECT active FROM pg_replication_slots WHERE slot_name = $1")
                .bind(&slot)
                .fetch_optional(&pool)
                .await
                .unwrap();
        if state == "RUNNING" && active == Some(true) {
            break;
        }
        assert!(
            !state.starts_with("FAILED"),
            "the connector failed: {state}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the connector did not start: {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let database = unique_name("dbz");
    let mongo = MongoReadModelStore::connect(&mongodb_url(), &database)
        .await
        .or_unreachable("MongoDB", &mongodb_url());
    let subscriber = KafkaSubscriber::debezium(&kafka_brokers(), &unique_name("group"), &topic);
    let handle = ProjectionRunner::new(Timeline, subscriber, mongo.clone())
        .with_batch_size(50)
        .spawn();

    // A transaction that takes its position first and commits last: Debezium delivers
    // it after the one that commits first, with a lower position.
    let mut early = pool.begin().await.unwrap();
    sqlx::query("SELECT * FROM cqrs_append($1, -1, NULL, $2, $3, $4, $5, $6, false)")
        .bind("goal-early")
        .bind(vec![uuid::Uuid::now_v7()])
        .bind(vec!["test.Happened"])
        .bind(vec![1i32])
        .bind(vec![serde_json::json!({ "n": 9_001 })])
        .bind(vec![serde_json::json!({ "user_id": "user-0" })])
        .fetch_all(&mut *early)
        .await
        .unwrap();
    let metadata = Metadata::new().with_user("user-0");
    let late = NewEvent::encode(&TestEvent::Happened { n: 9_002 }, metadata).unwrap();
    store
        .append(AppendRequest::new(
            "goal-late",
            ExpectedVersion::Any,
            vec![late],
        ))
        .await
        .unwrap();
    early.commit().await.unwrap();

    // Four writers at once: transactions that start in one order commit in another.
    let writers: Vec<_> = (0..4u64)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..75u64 {
                    let n = writer * 1000 + i;
                    let metadata = Metadata::new().with_user(format!("user-{}", n % 5));
                    let event = NewEvent::encode(&TestEvent::Happened { n }, metadata).unwrap();
                    store
                        .append(AppendRequest::new(
                            format!("goal-{}", n % 17),
                            ExpectedVersion::Any,
                            vec![event],
                        ))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let head = store.head().await.unwrap();
    handle
        .wait_for_timeout(head, Duration::from_secs(120))
        .await
        .unwrap();
    handle.stop().await.unwrap();

    // The same documents as a rebuild from the store.
    let rebuilt = MemoryReadModelStore::new();
    let rebuild = ProjectionRunner::new(Timeline, store.clone(), rebuilt.clone()).spawn();
    rebuild.wait_for(head).await.unwrap();
    rebuild.stop().await.unwrap();
    let expected = rebuilt.documents(Timeline::NAME);
    assert_eq!(expected.len(), 5);
    for (id, document) in &expected {
        let got = mongo.get(Timeline::NAME, id).await.unwrap().unwrap();
        assert_eq!(got.value, document.value, "document {id}");
    }
    assert!(head > Position::START);

    // Clean up: the connector, its slot and publication (a slot left behind keeps
    // WAL forever), the schema, the database.
    drop(connector);
    let started = Instant::now();
    loop {
        let dropped = sqlx::query(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
             WHERE slot_name = $1 AND NOT active",
        )
        .bind(&slot)
        .execute(&pool)
        .await;
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1")
                .bind(&slot)
                .fetch_one(&pool)
                .await
                .unwrap();
        if dropped.is_ok() && left == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the slot stays active"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sqlx::query(&format!("DROP PUBLICATION IF EXISTS {slot}"))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
    mongo.database().drop().await.unwrap();
}
