//! Each test gets its own database on the test server, so tests run in parallel.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::str::FromStr;
use std::time::Duration;

use cqrs_core::NewEvent;
use cqrs_testkit::event_stores::SlowAppender;
use sqlx::Executor;

use cqrs_mysql::{MySqlEventStore, MySqlReadModelStore};
use cqrs_testkit::{OrUnreachable, mysql_url, unique_name};
use sqlx::MySqlPool;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};

pub struct TestDb {
    pub database: String,
    pub pool: MySqlPool,
    admin: MySqlPool,
}

/// A pool of `connections` to the existing `database` on the test server.
pub async fn pool_in(database: &str, connections: u32) -> MySqlPool {
    pool_through(database, connections, None).await
}

/// As [`pool_in`], connecting to `port` on loopback (a fault proxy in front of the
/// server) when given.
pub async fn pool_through(database: &str, connections: u32, port: Option<u16>) -> MySqlPool {
    let url = mysql_url();
    let options = MySqlConnectOptions::from_str(&url)
        .expect("url")
        .database(database);
    let options = match port {
        Some(port) => options.host("127.0.0.1").port(port),
        None => options,
    };
    MySqlPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .or_unreachable("MySQL (MariaDB)", &url)
}

impl TestDb {
    /// A fresh, migrated database, and a pool of `connections` to it.
    pub async fn new(connections: u32) -> Self {
        Self::through(connections, None).await
    }

    /// As [`new`](Self::new), the pool connecting to `port` on loopback (a fault
    /// proxy in front of the server) when given.
    pub async fn through(connections: u32, port: Option<u16>) -> Self {
        let url = mysql_url();
        let admin = MySqlPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&url)
            .await
            .or_unreachable("MySQL (MariaDB)", &url);
        let database = unique_name("t");
        sqlx::query(&format!("CREATE DATABASE {database}"))
            .execute(&admin)
            .await
            .expect("create database");
        let pool = pool_through(&database, connections, port).await;
        cqrs_mysql::migrate(&pool).await.expect("migrate");
        Self {
            database,
            pool,
            admin,
        }
    }

    /// Kills (`KILL CONNECTION`) every session of this test's database that is
    /// running a statement now; returns how many.
    pub async fn kill_busy_sessions(&self) -> u64 {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT ID FROM information_schema.PROCESSLIST
             WHERE DB = ? AND COMMAND = 'Query' AND ID <> CONNECTION_ID()",
        )
        .bind(&self.database)
        .fetch_all(&self.admin)
        .await
        .expect("list sessions");
        let mut killed = 0;
        for id in ids {
            // It may have ended meanwhile (unknown thread id): not killed, then.
            if sqlx::query(&format!("KILL CONNECTION {id}"))
                .execute(&self.admin)
                .await
                .is_ok()
            {
                killed += 1;
            }
        }
        killed
    }

    pub fn store(&self) -> MySqlEventStore {
        MySqlEventStore::new(self.pool.clone()).with_poll_interval(Duration::from_millis(20))
    }

    pub fn read_models(&self) -> MySqlReadModelStore {
        MySqlReadModelStore::new(self.pool.clone())
    }

    /// Drops the database (a failed test leaves it, to look at).
    pub async fn drop(self) {
        self.pool.close().await;
        sqlx::query(&format!("DROP DATABASE {}", self.database))
            .execute(&self.admin)
            .await
            .expect("drop database");
    }
}

/// Appends through `cqrs_append` in a transaction of its own that it holds open.
#[derive(Clone)]
pub struct Slow(pub MySqlPool);

impl SlowAppender for Slow {
    async fn append_slowly(
        &self,
        stream: &str,
        events: Vec<NewEvent>,
        delay: Duration,
        commit: bool,
    ) {
        let json: Vec<_> = events
            .iter()
            .map(|e| serde_json::json!({ "id": e.event_id, "type": e.event.event_type, "schema": 1, "payload": e.event.payload, "metadata": {} }))
            .collect();
        let call = format!(
            "CALL cqrs_append('{stream}', -1, NULL, '{}', FALSE)",
            serde_json::Value::from(json)
        );
        // A deadlock's victim (first appends to a new stream) is rolled back whole:
        // begin again, as the store does.
        let mut tx = loop {
            let mut tx = self.0.begin().await.unwrap();
            match tx.fetch_one(sqlx::raw_sql(&call)).await {
                Ok(_) => break tx,
                Err(e)
                    if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("40001") =>
                {
                    drop(tx);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => panic!("slow append: {e}"),
            }
        };
        sqlx::query("DO SLEEP(?)")
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
