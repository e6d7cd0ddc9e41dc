//! `mada serve` on the real backends, as separate processes: read-your-writes
//! across processes by token, and the read side on MongoDB and Redis fed by
//! change-data-capture.

use serde_json::json;

use crate::binary::serve;
use crate::harness::Client;
use crate::roles::{SECRET, token};

async fn drop_schema(schema: &str) {
    let pool = sqlx::PgPool::connect(&cqrs_testkit::postgres_url())
        .await
        .unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}

/// A write through one process is read through another by passing its token: each
/// process's projections follow the same PostgreSQL log, and a query waits until
/// its own have reached the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_one_process_is_honoured_by_another() {
    let schema = cqrs_testkit::unique_name("mada");
    let url = cqrs_testkit::postgres_url();
    let args = [
        "serve",
        "--store",
        "postgres",
        "--database-url",
        &url,
        "--pg-schema",
        &schema,
    ];
    let envs = [("MADA_JWT_SECRET", SECRET)];
    let (a, b) = (serve(&args, &envs, false), serve(&args, &envs, false));
    let (on_a, on_b) = (
        Client::new(&a.url, Some(token("ann"))),
        Client::new(&b.url, Some(token("ann"))),
    );
    let health = on_a.category("Health").await;
    let (goal, token) = on_a.goal("Run", &health, "2026-11-01").await;
    assert_eq!(on_b.today("2026-11-25", Some(&token)).await["total"], 1);
    // Alternate the writer and the reader: every read sees the write just made.
    for day in 1..=20 {
        let date = format!("2026-11-{day:02}");
        let (writer, reader) = if day % 2 == 0 {
            (&on_a, &on_b)
        } else {
            (&on_b, &on_a)
        };
        let token = writer.complete(&goal, &date).await;
        let done = reader.done_in_november(&token).await;
        assert_eq!(
            done, day,
            "after completing day {day} on one process, the other shows it"
        );
    }
    drop((a, b));
    drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_with_mongodb_and_redis_fed_by_cdc() {
    let name = cqrs_testkit::unique_name("mada");
    let (pg, mongo, redis) = (
        cqrs_testkit::postgres_url(),
        cqrs_testkit::mongodb_url(),
        cqrs_testkit::redis_url(),
    );
    let args = [
        "serve",
        "--store",
        "postgres",
        "--database-url",
        &pg,
        "--pg-schema",
        &name,
        "--read-store",
        "mongo-redis",
        "--mongodb-url",
        &mongo,
        "--mongo-database",
        &name,
        "--redis-url",
        &redis,
        "--redis-prefix",
        &name,
        "--sync",
        "cdc",
    ];
    let served = serve(&args, &[("MADA_JWT_SECRET", SECRET)], false);
    assert!(
        served.printed.contains("MongoDB + Redis read stores"),
        "{}",
        served.printed
    );
    let ann = Client::new(&served.url, Some(token("ann")));
    let health = ann.category("Health").await;
    let (goal, _) = ann.goal("Run", &health, "2026-11-25").await;
    let done = ann
        .gql(
            "mutation($g: ID!) { completeGoal(id: $g, date: \"2026-11-25\") { token } }",
            json!({ "g": goal }),
        )
        .await;
    let token = done.data()["completeGoal"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        let today = ann.today("2026-11-25", Some(&token)).await;
        assert_eq!(
            (today["done"].as_i64(), today["total"].as_i64()),
            (Some(1), Some(1))
        );
    }
    let http = mada::http_client::client(std::time::Duration::from_secs(10)).unwrap();
    let metrics = http
        .get(format!("{}/metrics", served.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("mada_cache_hits_total"), "{metrics}");
    assert!(metrics.contains("mada_cache_hit_ratio"), "{metrics}");
    drop(served);

    // Clean up: the slots (which would keep WAL), the schema, the read side.
    let pool = sqlx::PgPool::connect(&pg).await.unwrap();
    sqlx::query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE $1 || '%'")
        .bind(&name)
        .execute(&pool)
        .await
        .unwrap();
    drop_schema(&name).await;
    let mongo = cqrs_mongo::MongoReadModelStore::connect(&mongo, &name)
        .await
        .unwrap();
    mongo.database().drop().await.unwrap();
    let redis = cqrs_redis::RedisReadModelStore::connect(&redis)
        .await
        .unwrap()
        .with_prefix(&name);
    redis.delete_all().await.unwrap();
}

/// `--sync inline` (no runner: a follower of the log wakes the subscriptions) while
/// the network to PostgreSQL is cut for two seconds: requests meanwhile get
/// UNAVAILABLE, not a hang or a wrong answer; afterwards a write is pushed to the
/// live subscription opened before the cut (the follower subscribed again after
/// its subscription failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_updates_survive_a_cut_to_postgres_in_inline_mode() {
    use std::time::{Duration, Instant};

    use crate::harness::Socket;
    use crate::proxy::Proxy;

    let schema = cqrs_testkit::unique_name("mada");
    let url = cqrs_testkit::postgres_url();
    let address = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let proxy = Proxy::start(&[&format!("http://{address}")]).await;
    let through = url.replace(&address, proxy.url.trim_start_matches("http://"));
    let args = [
        "serve",
        "--store",
        "postgres",
        "--database-url",
        &through,
        "--pg-schema",
        &schema,
        "--sync",
        "inline",
        "--read-wait-ms",
        "1000",
        "--request-timeout-ms",
        "3000",
    ];
    let served = serve(&args, &[("MADA_JWT_SECRET", SECRET)], false);
    let ann = Client::new(&served.url, Some(token("ann")));
    let health = ann.category("Health").await;
    let (goal, _) = ann.goal("Run", &health, "2026-11-01").await;
    let mut socket = Socket::signed_in(&served.url, &token("ann")).await;
    socket.subscribe_today("1", "2026-11-25").await;
    assert_eq!(
        socket.next_today(Duration::from_secs(5)).await.unwrap()["done"],
        0
    );

    proxy.cut();
    let cut = Instant::now();
    let refused = ann
        .gql("{ today(date: \"2026-11-25\") { total } }", json!({}))
        .await;
    assert_eq!(refused.code(), "UNAVAILABLE", "{:?}", refused.body);
    assert!(cut.elapsed() < Duration::from_secs(5), "answered in time");
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.restore();

    // The pool reconnects; then the write is pushed to the subscription.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let done = ann
            .gql(
                "mutation($g: ID!) { completeGoal(id: $g, date: \"2026-11-25\") { token } }",
                json!({ "g": goal }),
            )
            .await;
        if done.body.get("errors").is_none() {
            break;
        }
        assert_eq!(done.code(), "UNAVAILABLE", "{:?}", done.body);
        assert!(Instant::now() < deadline, "PostgreSQL never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let pushed = socket
            .next_today(Duration::from_secs(15))
            .await
            .expect("the subscription got nothing after the cut");
        if pushed["done"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the write never reached the subscription"
        );
    }
    drop(served);
    drop_schema(&schema).await;
}
