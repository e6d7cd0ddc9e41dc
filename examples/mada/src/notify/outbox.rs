//! The notifier's tables in PostgreSQL (in the schema of the events): what it has
//! to send and what became of it, the users' devices and reminders as the events
//! said, and how far it read the events.
//!
//! Every notification is a row keyed by its cause (`reminder:{user}:{day}:{device}`,
//! `sync:{event id}:{device}`), inserted in the same transaction that moves the
//! notifier's checkpoint or marks the user's day as reminded: a crash cannot lose an
//! intent or make one twice. A row is claimed (its `next_at` pushed past the claim
//! time) before it is sent and marked after; a crash between the two leaves it to be
//! sent again once the claim lapses — at least once, and once *in effect*: every
//! message carries its key as its collapse key, so a repeat replaces the first on
//! the device.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::Value;
use sqlx::{PgPool, Postgres, Row, Transaction};

/// Creates the tables if missing.
///
/// # Errors
/// The database refused.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    // One migrator at a time, whatever the number of replicas starting.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('mada_notify_migrate', 0))")
        .execute(&mut *tx)
        .await?;
    for statement in [
        "CREATE TABLE IF NOT EXISTS mada_notifications (
            key TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            device TEXT NOT NULL,
            kind TEXT NOT NULL,
            message JSONB NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INT NOT NULL DEFAULT 0,
            next_at TIMESTAMPTZ NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            done_at TIMESTAMPTZ,
            outcome TEXT)",
        "CREATE INDEX IF NOT EXISTS mada_notifications_due ON mada_notifications (next_at)
            WHERE state = 'pending'",
        "CREATE TABLE IF NOT EXISTS mada_notify_profiles (
            user_id TEXT PRIMARY KEY,
            time_zone TEXT,
            reminder_at TIME,
            devices TEXT[] NOT NULL DEFAULT '{}',
            reminded_on DATE)",
        "CREATE TABLE IF NOT EXISTS mada_notify_checkpoint (
            id INT PRIMARY KEY,
            position BIGINT NOT NULL)",
        "INSERT INTO mada_notify_checkpoint VALUES (1, 0) ON CONFLICT DO NOTHING",
    ] {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// A notification to send.
#[derive(Debug, Clone)]
pub struct Intent {
    /// Its key (its cause).
    pub key: String,
    /// The user.
    pub user_id: String,
    /// The device token.
    pub device: String,
    /// `reminder` or `sync`.
    pub kind: &'static str,
    /// The FCM `message`.
    pub message: Value,
}

/// Records `intents` (those already recorded are left alone).
///
/// # Errors
/// The database refused.
pub async fn enqueue(
    tx: &mut Transaction<'_, Postgres>,
    intents: &[Intent],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    for intent in intents {
        sqlx::query(
            "INSERT INTO mada_notifications (key, user_id, device, kind, message, next_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (key) DO NOTHING",
        )
        .bind(&intent.key)
        .bind(&intent.user_id)
        .bind(&intent.device)
        .bind(intent.kind)
        .bind(&intent.message)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The checkpoint, locked until `tx` ends (a second notifier that read the same
/// events waits, then sees it moved).
///
/// # Errors
/// The database refused.
pub async fn lock_checkpoint(tx: &mut Transaction<'_, Postgres>) -> Result<u64, sqlx::Error> {
    let position: i64 =
        sqlx::query_scalar("SELECT position FROM mada_notify_checkpoint WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut **tx)
            .await?;
    Ok(u64::try_from(position).unwrap_or(0))
}

/// Reads the checkpoint.
///
/// # Errors
/// The database refused.
pub async fn checkpoint(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let position: i64 =
        sqlx::query_scalar("SELECT position FROM mada_notify_checkpoint WHERE id = 1")
            .fetch_one(pool)
            .await?;
    Ok(u64::try_from(position).unwrap_or(0))
}

/// Moves the checkpoint.
///
/// # Errors
/// The database refused.
pub async fn set_checkpoint(
    tx: &mut Transaction<'_, Postgres>,
    position: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE mada_notify_checkpoint SET position = $1 WHERE id = 1")
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A user's devices as the notifier knows them.
///
/// # Errors
/// The database refused.
pub async fn devices(
    tx: &mut Transaction<'_, Postgres>,
    user: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let devices: Option<Vec<String>> =
        sqlx::query_scalar("SELECT devices FROM mada_notify_profiles WHERE user_id = $1")
            .bind(user)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(devices.unwrap_or_default())
}

/// Adds or removes a device of `user`.
///
/// # Errors
/// The database refused.
pub async fn set_device(
    tx: &mut Transaction<'_, Postgres>,
    user: &str,
    device: &str,
    present: bool,
) -> Result<(), sqlx::Error> {
    let sql = if present {
        "INSERT INTO mada_notify_profiles (user_id, devices) VALUES ($1, ARRAY[$2])
         ON CONFLICT (user_id) DO UPDATE SET devices =
           CASE WHEN $2 = ANY(mada_notify_profiles.devices) THEN mada_notify_profiles.devices
                ELSE array_append(mada_notify_profiles.devices, $2) END"
    } else {
        "UPDATE mada_notify_profiles SET devices = array_remove(devices, $2) WHERE user_id = $1"
    };
    sqlx::query(sql)
        .bind(user)
        .bind(device)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Sets (or with `None`, clears) `user`'s reminder.
///
/// # Errors
/// The database refused.
pub async fn set_reminder(
    tx: &mut Transaction<'_, Postgres>,
    user: &str,
    reminder: Option<(&str, NaiveTime)>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO mada_notify_profiles (user_id, time_zone, reminder_at) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE SET time_zone = $2, reminder_at = $3",
    )
    .bind(user)
    .bind(reminder.map(|(tz, _)| tz))
    .bind(reminder.map(|(_, at)| at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A user with a reminder and at least one device.
#[derive(Debug, Clone)]
pub struct Reminded {
    /// The user.
    pub user_id: String,
    /// The IANA time zone.
    pub time_zone: String,
    /// The time of day.
    pub at: NaiveTime,
    /// The devices.
    pub devices: Vec<String>,
    /// The last local day handled.
    pub reminded_on: Option<NaiveDate>,
}

/// The users with a reminder and a device.
///
/// # Errors
/// The database refused.
pub async fn reminded(pool: &PgPool) -> Result<Vec<Reminded>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT user_id, time_zone, reminder_at, devices, reminded_on FROM mada_notify_profiles
         WHERE reminder_at IS NOT NULL AND time_zone IS NOT NULL AND cardinality(devices) > 0",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Reminded {
                user_id: row.try_get("user_id")?,
                time_zone: row.try_get("time_zone")?,
                at: row.try_get("reminder_at")?,
                devices: row.try_get("devices")?,
                reminded_on: row.try_get("reminded_on")?,
            })
        })
        .collect()
}

/// Marks `user`'s `day` handled, unless a concurrent notifier did; returns whether
/// this call did.
///
/// # Errors
/// The database refused.
pub async fn mark_reminded(
    tx: &mut Transaction<'_, Postgres>,
    user: &str,
    day: NaiveDate,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE mada_notify_profiles SET reminded_on = $2
         WHERE user_id = $1 AND (reminded_on IS NULL OR reminded_on < $2)",
    )
    .bind(user)
    .bind(day)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A claimed notification.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Its key.
    pub key: String,
    /// The user.
    pub user_id: String,
    /// The device.
    pub device: String,
    /// The FCM message.
    pub message: Value,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

/// Claims up to `limit` notifications due at `now` until `until`: no other claim
/// takes them before then.
///
/// # Errors
/// The database refused.
pub async fn claim(
    pool: &PgPool,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let rows = sqlx::query(
        "UPDATE mada_notifications SET next_at = $2, attempts = attempts + 1
         WHERE key IN (SELECT key FROM mada_notifications
                       WHERE state = 'pending' AND next_at <= $1
                       ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING key, user_id, device, message, attempts",
    )
    .bind(now)
    .bind(until)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Claimed {
                key: row.try_get("key")?,
                user_id: row.try_get("user_id")?,
                device: row.try_get("device")?,
                message: row.try_get("message")?,
                attempts: row.try_get("attempts")?,
            })
        })
        .collect()
}

/// Records the end of a notification: `state` is `sent`, `dead` (refused, not
/// retried) or `dropped` (the device is gone).
///
/// # Errors
/// The database refused.
pub async fn finish(
    pool: &PgPool,
    key: &str,
    state: &str,
    outcome: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE mada_notifications SET state = $2, outcome = $3, done_at = $4 WHERE key = $1",
    )
    .bind(key)
    .bind(state)
    .bind(outcome)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// Puts a notification back for a later try at `at`.
///
/// # Errors
/// The database refused.
pub async fn retry_at(
    pool: &PgPool,
    key: &str,
    at: DateTime<Utc>,
    why: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE mada_notifications SET next_at = $2, outcome = $3 WHERE key = $1 AND state = 'pending'")
        .bind(key)
        .bind(at)
        .bind(why)
        .execute(pool)
        .await?;
    Ok(())
}

/// Counts notifications by state, for metrics and tests.
///
/// # Errors
/// The database refused.
pub async fn counts(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT state, count(*) FROM mada_notifications GROUP BY state ORDER BY state")
        .fetch_all(pool)
        .await
}
