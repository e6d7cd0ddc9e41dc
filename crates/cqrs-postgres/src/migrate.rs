//! The schema, as numbered SQL migrations embedded in the crate.
//!
//! Applied in order, each in its own transaction, under an advisory lock so that
//! several processes starting at once apply each migration once. The applied ones
//! are recorded in `cqrs_schema_migrations`.

use sqlx::{Connection, Executor, PgPool};

use crate::error::PgError;

/// The migrations: number, description, SQL.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "event store, snapshots, commands, read models",
        include_str!("../migrations/0001_event_store.sql"),
    ),
    (
        2,
        "bulk append",
        include_str!("../migrations/0002_append_many.sql"),
    ),
    (
        3,
        "group commit",
        include_str!("../migrations/0003_append_group.sql"),
    ),
    (
        4,
        "read-model aliases",
        include_str!("../migrations/0004_aliases.sql"),
    ),
    (
        5,
        "heartbeat for external CDC (Debezium)",
        include_str!("../migrations/0005_cdc_heartbeat.sql"),
    ),
];

/// An arbitrary, fixed advisory-lock key for migrations.
const LOCK_KEY: i64 = 0x6371_7273_6d69_6772; // "cqrsmigr"

/// Applies the migrations that are not applied yet, in the pool's current schema.
///
/// # Errors
/// [`PgError::Migration`] naming the migration that failed, or
/// [`PgError::Database`].
pub async fn migrate(pool: &PgPool) -> Result<(), PgError> {
    let mut conn = pool.acquire().await.map_err(PgError::Database)?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS cqrs_schema_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    let result = apply(&mut conn).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await;
    result?;
    unlocked?;
    Ok(())
}

async fn apply(conn: &mut sqlx::PgConnection) -> Result<(), PgError> {
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM cqrs_schema_migrations")
        .fetch_all(&mut *conn)
        .await?;
    for &(version, description, sql) in MIGRATIONS {
        if applied.contains(&version) {
            continue;
        }
        let failed = |source| PgError::Migration {
            version,
            description,
            source,
        };
        let mut tx = conn.begin().await?;
        // A plain `&str` without arguments runs as a simple query (several
        // statements at once), like `raw_sql`, whose future is not `Send`.
        (&mut *tx).execute(sql).await.map_err(failed)?;
        sqlx::query("INSERT INTO cqrs_schema_migrations (version, description) VALUES ($1, $2)")
            .bind(version)
            .bind(description)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        tracing::info!(version, description, "applied migration");
    }
    Ok(())
}
