//! The demo scenario end to end on the in-memory stores, and the binary.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

use std::process::Command;

use chrono::{Datelike, NaiveDate};
use cqrs_core::{MemoryEventStore, MemoryReadModelStore, ProjectionRunner, ReadModelWriter};
use cqrs_testkit::OrUnreachable;
use mada::projections::{CategoriesProjection, Plan, PlanProjection};
use mada::{Planner, PlannerOptions, ReadStores, scenario};

fn d(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

#[tokio::test]
async fn the_scenario_leaves_consistent_read_models() {
    let events = MemoryEventStore::new();
    let read = MemoryReadModelStore::new();
    let options = PlannerOptions {
        snapshot_every: 5,
        batch_size: 16,
        ..PlannerOptions::default()
    };
    let planner = Planner::start(events.clone(), ReadStores::all(read.clone()), options);
    let today = d("2026-11-25");
    let report = scenario::run(&planner, "alice", today).await.unwrap();

    let titles: Vec<(&str, bool, &str)> = report
        .today_list
        .items
        .iter()
        .map(|i| {
            (
                i.title.as_str(),
                i.done,
                i.category.as_ref().map_or("-", |c| c.name.as_str()),
            )
        })
        .collect();
    assert_eq!(
        titles,
        vec![
            ("Morning run", false, "Health"),
            ("Read 20 pages", true, "Study"), // the rename shows through the join
            ("Water the plants", true, "Home"),
            ("Call the dentist", false, "Health"),
        ]
    );
    assert_eq!(report.rejections.len(), 6);
    let names: Vec<_> = report
        .categories
        .categories
        .iter()
        .map(|c| (c.name.as_str(), c.colour.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("Health", "#2e7d32"),
            ("Home", "#8e24aa"),
            ("Study", "#1565c0")
        ]
    );

    // The calendar and the daily lists are built by different projections from the
    // same events: for every day of the month they must agree.
    let month = &report.month;
    for day in 1..=30 {
        let date = NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
        let list = planner.today("alice", date).await.unwrap();
        let count = month.days.get(&day).copied().unwrap_or_default();
        assert_eq!(count.scheduled as usize, list.items.len(), "due on {date}");
        assert_eq!(
            count.done as usize,
            list.items.iter().filter(|i| i.done).count(),
            "done on {date}"
        );
    }
    assert_eq!(month.days[&25].scheduled, 4);
    assert_eq!(month.days[&25].done, 2);
    assert_eq!(
        month.days[&1].scheduled, 1,
        "1 November 2026 is a Sunday: reading only"
    );
    planner.shutdown().await.unwrap();

    // A rebuild from the first event gives the same documents.
    let rebuilt = MemoryReadModelStore::new();
    let last = cqrs_core::LogReader::head(&events).await.unwrap();
    for handle in [
        ProjectionRunner::new(PlanProjection, events.clone(), rebuilt.clone()).spawn(),
        ProjectionRunner::new(CategoriesProjection, events.clone(), rebuilt.clone()).spawn(),
    ] {
        handle.wait_for(last).await.unwrap();
        handle.stop().await.unwrap();
    }
    for name in ["plan", "categories"] {
        let values = |s: &MemoryReadModelStore| {
            s.documents(name)
                .into_iter()
                .map(|(id, d)| (id, d.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(values(&read), values(&rebuilt), "{name}");
        assert_eq!(read.checkpoint(name).await.unwrap(), last);
    }
    assert_eq!(report.today.month(), 11);
}

#[test]
fn the_binary_prints_today_and_the_month() {
    let output = Command::new(env!("CARGO_BIN_EXE_mada"))
        .arg("demo")
        .args(["--today", "2026-11-25", "--user", "bea"])
        .env_remove("MADA_STORE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Today, Wednesday 25 November 2026 (bea)"),
        "{stdout}"
    );
    assert!(stdout.contains("2 of 4 done"), "{stdout}");
    assert!(
        stdout.contains("November 2026: goals done/due per day"),
        "{stdout}"
    );
    assert!(
        stdout.contains("25*2/4"),
        "today is marked in the calendar: {stdout}"
    );
}

#[test]
fn the_binary_refuses_a_bad_date_clearly() {
    let output = Command::new(env!("CARGO_BIN_EXE_mada"))
        .arg("demo")
        .args(["--today", "2026-13-01"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--today"), "{stderr}");
}

/// The standard output of a run that must have succeeded (else its standard error,
/// and how to start the servers).
fn stdout_of(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{stderr}\n{}",
        cqrs_testkit::HOW_TO_START
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The demo's output with what differs between runs masked: the store's name and
/// the random id in one refusal.
fn comparable(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip(1)
        .map(|line| {
            if line.contains("deleted category") {
                "(refusal naming a random id)".to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect()
}

#[tokio::test]
async fn the_binary_prints_the_same_on_postgres() {
    let url = cqrs_testkit::postgres_url();
    let schema = cqrs_testkit::unique_name("mada");
    let run = |store: &str| {
        Command::new(env!("CARGO_BIN_EXE_mada"))
            .arg("demo")
            .args([
                "--today",
                "2026-11-25",
                "--store",
                store,
                "--pg-schema",
                &schema,
                "--database-url",
                &url,
            ])
            .output()
            .unwrap()
    };
    let memory = run("memory");
    let postgres = run("postgres");
    let (memory, postgres) = (stdout_of(&memory), stdout_of(&postgres));
    assert!(
        postgres.starts_with("MADA demo: 43 commands for user `alice` on the PostgreSQL store"),
        "{postgres}"
    );
    assert_eq!(comparable(&postgres), comparable(&memory));

    // The events really are in PostgreSQL.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let events: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {schema}.cqrs_events"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(events > 40, "{events} events stored");
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_binary_prints_the_same_on_mysql() {
    let url = cqrs_testkit::mysql_url();
    let database = cqrs_testkit::unique_name("mada");
    let run = |store: &str, sync: &str| {
        Command::new(env!("CARGO_BIN_EXE_mada"))
            .arg("demo")
            .args(["--today", "2026-11-25", "--store", store, "--sync", sync])
            .args(["--mysql-url", &url, "--mysql-database", &database])
            .output()
            .unwrap()
    };
    let memory = run("memory", "subscription");
    let mysql = run("mysql", "subscription");
    let (memory, mysql) = (stdout_of(&memory), stdout_of(&mysql));
    assert!(
        mysql.starts_with("MADA demo: 43 commands for user `alice` on the MySQL store"),
        "{mysql}"
    );
    assert_eq!(comparable(&mysql), comparable(&memory));
    // The read models in the appends' transactions: the same.
    let inline = stdout_of(&run("mysql", "inline"));
    assert_eq!(comparable(&inline), comparable(&memory), "inline");
    // Change-data-capture from the binlog: the same.
    let cdc = stdout_of(&run("mysql", "cdc"));
    assert!(cdc.contains("synced by change-data-capture"), "{cdc}");
    assert_eq!(comparable(&cdc), comparable(&memory), "cdc");

    // The events really are in MySQL.
    let pool = sqlx::MySqlPool::connect(&url)
        .await
        .or_unreachable("MySQL (MariaDB)", &url);
    let events: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {database}.cqrs_events"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(events > 40, "{events} events stored");
    let readers: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {database}.cqrs_binlog_readers"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(readers, 0, "the demo forgets its binlog readers");
    sqlx::query(&format!("DROP DATABASE {database}"))
        .execute(&pool)
        .await
        .unwrap();
}

/// The two other ways to keep the read models in sync on PostgreSQL: inline (in the
/// append's transaction) and change-data-capture (from the write-ahead log). The
/// same output as in memory; CDC leaves no replication slot behind.
#[tokio::test]
async fn the_binary_prints_the_same_inline_and_through_cdc() {
    let url = cqrs_testkit::postgres_url();
    let memory = stdout_of(
        &Command::new(env!("CARGO_BIN_EXE_mada"))
            .arg("demo")
            .args(["--today", "2026-11-25"])
            .output()
            .unwrap(),
    );
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let slots = || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'mada_cdc_%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        n
    };
    let slots_before = slots().await;
    for (sync, says) in [
        ("inline", "read models written inline"),
        ("cdc", "read models synced by change-data-capture"),
    ] {
        let schema = cqrs_testkit::unique_name("mada");
        let output = Command::new(env!("CARGO_BIN_EXE_mada"))
            .arg("demo")
            .args([
                "--today",
                "2026-11-25",
                "--store",
                "postgres",
                "--sync",
                sync,
            ])
            .args(["--pg-schema", &schema, "--database-url", &url])
            .output()
            .unwrap();
        let printed = stdout_of(&output);
        assert!(printed.lines().next().unwrap().ends_with(says), "{printed}");
        assert_eq!(comparable(&printed), comparable(&memory), "{sync}");
        let documents: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {schema}.cqrs_documents WHERE projection = 'plan'"
        ))
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(documents, 1, "{sync}: alice's plan is in PostgreSQL");
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&pool)
            .await
            .unwrap();
    }
    assert_eq!(slots().await, slots_before, "the demo's slots were dropped");
}

#[tokio::test]
async fn the_binary_prints_the_same_with_its_read_side_on_mongodb_and_redis() {
    let (mongo_url, redis_url) = (cqrs_testkit::mongodb_url(), cqrs_testkit::redis_url());
    let name = cqrs_testkit::unique_name("mada");
    let run = |read_store: &str| {
        Command::new(env!("CARGO_BIN_EXE_mada"))
            .arg("demo")
            .args(["--today", "2026-11-25", "--read-store", read_store])
            .args(["--mongodb-url", &mongo_url, "--mongo-database", &name])
            .args(["--redis-url", &redis_url, "--redis-prefix", &name])
            .output()
            .unwrap()
    };
    let memory = run("same");
    let split = run("mongo-redis");
    let (memory, split) = (stdout_of(&memory), stdout_of(&split));
    assert!(split.contains("MongoDB + Redis read stores"), "{split}");
    assert_eq!(comparable(&split), comparable(&memory));

    // The read models really are where they should be.
    let mongo = cqrs_mongo::MongoReadModelStore::connect(&mongo_url, &name)
        .await
        .unwrap();
    let plan = cqrs_core::ReadModelReader::get(&mongo, "plan", "alice")
        .await
        .unwrap()
        .expect("alice's plan in MongoDB");
    let plan: Plan = serde_json::from_value(plan.value).unwrap();
    assert_eq!(plan.today(d("2026-11-25")).items.len(), 4);
    assert!(!plan.month(2026, 11).days.is_empty(), "the month from it");
    let redis = cqrs_redis::RedisReadModelStore::connect(&redis_url)
        .await
        .unwrap()
        .with_prefix(&name);
    let categories = cqrs_core::ReadModelReader::get(&redis, "categories", "alice")
        .await
        .unwrap()
        .expect("the category list in Redis");
    assert_eq!(categories.value["categories"].as_array().unwrap().len(), 3);
    let mut conn = redis.connection();
    let cached: Vec<String> = cqrs_redis::redis::cmd("KEYS")
        .arg(format!("{name}:cache:{{plan}}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!cached.is_empty(), "plans are cached in Redis");
    mongo.database().drop().await.unwrap();
    let keys: Vec<String> = cqrs_redis::redis::cmd("KEYS")
        .arg(format!("{name}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: i64 = cqrs_redis::redis::cmd("UNLINK")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[test]
fn a_server_that_refuses_is_reported_at_once_without_the_password() {
    // Port 1 on loopback: nothing listens, the connection is refused.
    for args in [
        vec![
            "--store",
            "postgres",
            "--database-url",
            "postgres://mada:s3cr3t-pw@127.0.0.1:1/mada",
        ],
        vec![
            "--read-store",
            "mongo-redis",
            "--mongodb-url",
            "mongodb://mada:s3cr3t-pw@127.0.0.1:1/",
        ],
        vec![
            "--read-store",
            "mongo-redis",
            "--mongodb-url",
            &cqrs_testkit::mongodb_url(),
            "--redis-url",
            "redis://:s3cr3t-pw@127.0.0.1:1/",
        ],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_mada"))
            .arg("demo")
            .args(["--today", "2026-11-25"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} should fail: {stderr}");
        assert!(
            !stderr.contains("s3cr3t-pw"),
            "the password leaked: {stderr}"
        );
        assert!(
            stderr.contains("127.0.0.1:1"),
            "the server is named: {stderr}"
        );
        assert!(
            stderr.to_lowercase().contains("connection refused"),
            "the reason is given: {stderr}"
        );
    }
}

/// The whole way through Kafka: commands into PostgreSQL, the relay publishing them,
/// each projection consuming them into MongoDB and Redis. The same output as in
/// memory, and the read models where they should be.
#[tokio::test]
async fn the_binary_prints_the_same_through_kafka_from_postgres_to_mongodb_and_redis() {
    let (mongo_url, redis_url) = (cqrs_testkit::mongodb_url(), cqrs_testkit::redis_url());
    let name = cqrs_testkit::unique_name("mada");
    let kafka = cqrs_testkit::kafka_brokers();
    let memory = Command::new(env!("CARGO_BIN_EXE_mada"))
        .arg("demo")
        .args(["--today", "2026-11-25"])
        .output()
        .unwrap();
    let through = Command::new(env!("CARGO_BIN_EXE_mada"))
        .arg("demo")
        .args([
            "--today",
            "2026-11-25",
            "--store",
            "postgres",
            "--sync",
            "kafka",
        ])
        .args([
            "--database-url",
            &cqrs_testkit::postgres_url(),
            "--pg-schema",
            &name,
        ])
        .args(["--read-store", "mongo-redis"])
        .args(["--mongodb-url", &mongo_url, "--mongo-database", &name])
        .args(["--redis-url", &redis_url, "--redis-prefix", &name])
        .args(["--kafka-brokers", &kafka, "--kafka-prefix", &name])
        .output()
        .unwrap();
    let (memory, through) = (stdout_of(&memory), stdout_of(&through));
    assert!(
        through.starts_with(
            "MADA demo: 43 commands for user `alice` on the PostgreSQL event store, MongoDB + Redis read stores, read models synced through Kafka"
        ),
        "{through}"
    );
    assert_eq!(comparable(&through), comparable(&memory));
    let mongo = cqrs_mongo::MongoReadModelStore::connect(&mongo_url, &name)
        .await
        .unwrap();
    let plan = cqrs_core::ReadModelReader::get(&mongo, "plan", "alice")
        .await
        .unwrap()
        .expect("alice's plan in MongoDB");
    let plan: Plan = serde_json::from_value(plan.value).unwrap();
    assert_eq!(plan.today(d("2026-11-25")).items.len(), 4);
    mongo.database().drop().await.unwrap();
    let redis = cqrs_redis::RedisReadModelStore::connect(&redis_url)
        .await
        .unwrap()
        .with_prefix(&name);
    redis.delete_all().await.unwrap();
    let pool = sqlx::PgPool::connect(&cqrs_testkit::postgres_url())
        .await
        .unwrap();
    sqlx::query(&format!("DROP SCHEMA {name} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}

#[test]
fn an_unreachable_kafka_is_reported_at_once() {
    let output = Command::new(env!("CARGO_BIN_EXE_mada"))
        .arg("demo")
        .args([
            "--today",
            "2026-11-25",
            "--sync",
            "kafka",
            "--kafka-brokers",
            "127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach Kafka at 127.0.0.1:1"),
        "{stderr}"
    );
    assert!(stderr.contains("scripts/services.sh up"), "{stderr}");
}
