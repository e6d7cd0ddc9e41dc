//! Each test gets its own schema in the test database, so tests run in parallel.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::str::FromStr;
use std::time::Duration;

use cqrs_postgres::{PgEventStore, PgReadModelStore};
use cqrs_testkit::{OrUnreachable, postgres_url, unique_name};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub struct TestDb {
    pub schema: String,
    pub pool: PgPool,
    admin: PgPool,
}

impl TestDb {
    /// A fresh, migrated schema, and a pool of `connections` whose search path is it.
    pub async fn new(connections: u32) -> Self {
        Self::through(connections, None).await
    }

    /// As [`new`](Self::new), the pool connecting to `port` on loopback (a fault
    /// proxy in front of the server) when given.
    pub async fn through(connections: u32, port: Option<u16>) -> Self {
        let url = postgres_url();
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&url)
            .await
            .or_unreachable("PostgreSQL", &url);
        let schema = unique_name("t");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .expect("create schema");
        let options = PgConnectOptions::from_str(&url)
            .expect("url")
            .options([("search_path", schema.as_str())])
            // Names the pool's sessions in pg_stat_activity, for tests that kill them.
            .application_name(&schema);
        let options = match port {
            Some(port) => options.host("127.0.0.1").port(port),
            None => options,
        };
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .or_unreachable("PostgreSQL", &url);
        cqrs_postgres::migrate(&pool).await.expect("migrate");
        Self {
            schema,
            pool,
            admin,
        }
    }

    /// Terminates (`pg_terminate_backend`) every session of this test's pool that is
    /// running a statement now; returns how many.
    pub async fn kill_busy_sessions(&self) -> u64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = $1 AND state = 'active') AS killed",
        )
        .bind(&self.schema)
        .fetch_one(&self.admin)
        .await
        .map(|n: i64| n as u64)
        .expect("terminate sessions")
    }

    pub fn store(&self) -> PgEventStore {
        PgEventStore::new(self.pool.clone()).with_poll_interval(Duration::from_millis(100))
    }

    pub fn read_models(&self) -> PgReadModelStore {
        PgReadModelStore::new(self.pool.clone())
    }

    /// Drops the schema (a failed test leaves it, to look at).
    pub async fn drop(self) {
        self.pool.close().await;
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .execute(&self.admin)
            .await
            .expect("drop schema");
    }
}

/// The position of the last committed event, whether or not it is safe yet (other
/// tests' open transactions can hold the safe position back for a moment).
pub async fn last_position(pool: &PgPool) -> cqrs_core::Position {
    let max: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM cqrs_events")
        .fetch_one(pool)
        .await
        .expect("max");
    cqrs_core::Position(max.map_or(0, |p| u64::try_from(p).expect("positive")))
}

/// The whole log through `read_all`, once every committed event is safe to read.
pub async fn settled_log(store: &PgEventStore, pool: &PgPool) -> Vec<cqrs_core::RecordedEvent> {
    use cqrs_core::LogReader;
    let committed: i64 = sqlx::query_scalar("SELECT count(*) FROM cqrs_events")
        .fetch_one(pool)
        .await
        .expect("count");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let all = store
            .read_all(cqrs_core::Position::START, 1_000_000)
            .await
            .expect("read_all");
        if all.len() as i64 >= committed {
            return all;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {committed} events became safe",
            all.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Appends through `cqrs_append` in a transaction of its own that it holds open
/// (`pg_sleep`) before it commits or rolls back.
#[derive(Clone)]
pub struct Slow(pub sqlx::PgPool);

impl cqrs_testkit::event_stores::SlowAppender for Slow {
    async fn append_slowly(
        &self,
        stream: &str,
        events: Vec<cqrs_core::NewEvent>,
        delay: std::time::Duration,
        commit: bool,
    ) {
        let count = events.len();
        let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.event_id).collect();
        let payloads: Vec<serde_json::Value> =
            events.iter().map(|e| e.event.payload.clone()).collect();
        let mut tx = self.0.begin().await.unwrap();
        let (status,): (String,) =
            sqlx::query_as("SELECT status FROM cqrs_append($1, -1, NULL, $2, $3, $4, $5, $6)")
                .bind(stream)
                .bind(&ids)
                .bind(vec!["Written"; count])
                .bind(vec![1_i32; count])
                .bind(payloads)
                .bind(vec![serde_json::json!({}); count])
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        assert_eq!(status, "ok");
        sqlx::query("SELECT pg_sleep($1)")
            .bind(delay.as_secs_f64())
            .execute(&mut *tx)
            .await
            .unwrap();
        if commit {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
    }
}
