//! `mada relay` as a real process, killed with SIGKILL at random points while it
//! publishes, ten times, and started again: every event ends up on its topic
//! exactly once for a `read_committed` consumer, in order per key (user).

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cqrs_core::{
    AppendRequest, EventAppender, ExpectedVersion, Metadata, NewEvent, Position, RawEvent,
};
use cqrs_kafka::KafkaRelay;
use cqrs_postgres::PgEventStore;
use cqrs_testkit::kafka::{assert_exactly_once, read_to_end};
use cqrs_testkit::{HOW_TO_START, Lcg, OrUnreachable, kafka_brokers, postgres_url, unique_name};

const EVENTS: u64 = 2_000;

fn relay_process(schema: &str, prefix: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mada"))
        .args([
            "relay",
            "--store",
            "postgres",
            "--database-url",
            &postgres_url(),
        ])
        .args(["--pg-schema", schema, "--kafka-brokers", &kafka_brokers()])
        .args([
            "--kafka-prefix",
            prefix,
            "--relay-batch",
            "10",
            "--relay-lease-ttl",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

async fn checkpoint(prefix: &str) -> Position {
    KafkaRelay::new(&kafka_brokers(), "mada")
        .with_prefix(prefix)
        .checkpoint()
        .await
        .or_unreachable("Kafka", &kafka_brokers())
}

/// Waits until the relay's checkpoint passes `past`, or the deadline.
async fn wait_past(prefix: &str, past: Position, child: &mut Child) -> Position {
    let started = Instant::now();
    loop {
        let now = checkpoint(prefix).await;
        if now > past {
            return now;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the relay exited with {status}; {HOW_TO_START}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the relay did not publish past {past}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_process_killed_ten_times_leaves_each_event_once_in_order() {
    let schema = unique_name("relay");
    let prefix = unique_name("relay");
    let _topics = cqrs_testkit::kafka::DeleteTopics::under(&kafka_brokers(), [prefix.clone()]);
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
    let mut head = Position::START;
    for n in 0..EVENTS {
        let stream = if n % 2 == 0 {
            format!("goal-{}", n % 40)
        } else {
            format!("category-{}", n % 40)
        };
        let event = NewEvent {
            event_id: uuid::Uuid::now_v7(),
            event: RawEvent {
                event_type: "test.Happened".into(),
                schema_version: 1,
                payload: serde_json::json!({ "n": n }),
            },
            // As in MADA, a stream's events all have its owner as their user.
            metadata: Metadata::new().with_user(format!("user-{}", (n % 40) % 7)),
        };
        head = store
            .append(AppendRequest::new(
                stream,
                ExpectedVersion::Any,
                vec![event],
            ))
            .await
            .unwrap()
            .position
            .unwrap();
    }

    let seed = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_007,
    )
    .unwrap();
    println!("seed {seed}");
    let mut random = Lcg(seed);
    let mut reached = Position::START;
    for _ in 0..10 {
        let mut child = relay_process(&schema, &prefix);
        // Killed once it publishes, a random moment later: inside a transaction,
        // between transactions, while committing.
        reached = wait_past(&prefix, reached, &mut child).await;
        tokio::time::sleep(Duration::from_millis(random.below(150))).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    assert!(reached < head, "the kills all happened before the end");
    let mut child = relay_process(&schema, &prefix);
    while reached < head {
        reached = wait_past(&prefix, reached, &mut child).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let topics = vec![format!("{prefix}.goal"), format!("{prefix}.category")];
    let brokers = kafka_brokers();
    let seen =
        tokio::task::spawn_blocking(move || read_to_end(&brokers, &topics, "read_committed"))
            .await
            .unwrap();
    assert_exactly_once(&seen, usize::try_from(EVENTS).unwrap());
    // Per key (the user): positions only grow, in each topic.
    let mut last: HashMap<(String, String), u64> = HashMap::new();
    for record in seen.iter().filter(|s| !s.is_watermark()) {
        assert_eq!(record.key, record.headers["cqrs-user-id"], "keyed by user");
        let position: u64 = record.headers["cqrs-position"].parse().unwrap();
        let before = last
            .insert((record.topic.clone(), record.key.clone()), position)
            .unwrap_or(0);
        assert!(
            position > before,
            "{} out of order in {}",
            record.key,
            record.topic
        );
    }
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}

/// `mada dead-letters` lists what a projection set aside under the prefix, with
/// where it came from and why, and says how to replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_with_why() {
    let prefix = unique_name("letters");
    let _topics = cqrs_testkit::kafka::DeleteTopics::under(&kafka_brokers(), [prefix.clone()]);
    let kafka = mada::kafka::KafkaSync::new(&kafka_brokers(), &prefix);
    let event = cqrs_core::RecordedEvent {
        event_id: uuid::Uuid::now_v7(),
        stream_id: cqrs_core::StreamId::new("goal-1"),
        version: cqrs_core::Version(1),
        position: Position(42),
        recorded_at: chrono::Utc::now(),
        metadata: Metadata::new().with_user("alice"),
        event: RawEvent {
            event_type: "goal.Created".into(),
            schema_version: 9,
            payload: serde_json::json!({}),
        },
    };
    let error = cqrs_core::Error::codec("goal.Created", "unknown schema version 9");
    cqrs_core::DeadLetters::set_aside(&kafka.dead_letter_topic("plan"), "plan", &event, &error)
        .await
        .or_unreachable("Kafka", &kafka_brokers());
    let output = Command::new(env!("CARGO_BIN_EXE_mada"))
        .args(["dead-letters", "--kafka-brokers", &kafka_brokers()])
        .args(["--kafka-prefix", &prefix])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("plan: 1"), "{stdout}");
    assert!(
        stdout.contains(&format!("event {} at position 42", event.event_id)),
        "{stdout}"
    );
    assert!(stdout.contains("unknown schema version 9"), "{stdout}");
    assert!(stdout.contains("categories: none"), "{stdout}");
    assert!(stdout.contains("rebuild"), "{stdout}");
}
