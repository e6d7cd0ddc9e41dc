//! Schema migrations, embedded and numbered, applied once each.

use sqlx::{Executor, MySqlPool};

use crate::error::MySqlError;

/// The migrations, in order: number, description, SQL (statements separated by
/// `;` at the end of a line, a procedure's body included: the server reads a
/// `CREATE PROCEDURE ... END` as one statement).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "event store",
        include_str!("../migrations/0001_event_store.sql"),
    ),
    (
        2,
        "read models",
        include_str!("../migrations/0002_read_models.sql"),
    ),
    (
        3,
        "binlog readers",
        include_str!("../migrations/0003_binlog_readers.sql"),
    ),
    (
        4,
        "group commit, events through JSON_TABLE",
        include_str!("../migrations/0004_group_commit.sql"),
    ),
];

/// Creates or upgrades the event store's and the read models' tables (and the
/// append procedure) in the pool's database. Safe to call from many processes at once: a named lock
/// (`GET_LOCK`) lets one migrate while the others wait (up to 60 s), then find
/// nothing left to do.
///
/// # Errors
/// [`MySqlError::Migration`] naming the migration that failed, or
/// [`MySqlError::Database`] if the lock or the bookkeeping fails.
pub async fn migrate(pool: &MySqlPool) -> Result<(), MySqlError> {
    let mut conn = pool.acquire().await?;
    let locked: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK('cqrs_migrations', 60)")
        .fetch_one(&mut *conn)
        .await?;
    if locked != Some(1) {
        return Err(MySqlError::Database(sqlx::Error::Protocol(
            "another process held the migration lock for 60 s".into(),
        )));
    }
    let result = apply(&mut conn).await;
    let _ = sqlx::query("SELECT RELEASE_LOCK('cqrs_migrations')")
        .execute(&mut *conn)
        .await;
    result
}

async fn apply(conn: &mut sqlx::MySqlConnection) -> Result<(), MySqlError> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS cqrs_schema_migrations (
             version     BIGINT       NOT NULL PRIMARY KEY,
             description VARCHAR(255) NOT NULL,
             applied_at  DATETIME(6)  NOT NULL
         ) ENGINE = InnoDB",
    )
    .await?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM cqrs_schema_migrations")
        .fetch_all(&mut *conn)
        .await?;
    for &(version, description, sql) in MIGRATIONS {
        if applied.contains(&version) {
            continue;
        }
        tracing::info!(version, description, "applying migration");
        let failed = |source| MySqlError::Migration {
            version,
            description,
            source,
        };
        conn.execute(sqlx::raw_sql(sql)).await.map_err(failed)?;
        sqlx::query(
            "INSERT INTO cqrs_schema_migrations (version, description, applied_at)
             VALUES (?, ?, UTC_TIMESTAMP(6))",
        )
        .bind(version)
        .bind(description)
        .execute(&mut *conn)
        .await
        .map_err(failed)?;
    }
    Ok(())
}
