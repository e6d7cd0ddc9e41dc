//! [`SnapshotStore`] and [`CommandLog`] for [`PgEventStore`].

use chrono::{DateTime, Utc};
use cqrs_core::{
    AppendResult, CommandLog, Error, Position, Snapshot, SnapshotStore, StreamId, Version,
};
use uuid::Uuid;

use super::PgEventStore;
use crate::error::backend;

fn version(value: i64) -> Version {
    Version(u64::try_from(value).unwrap_or_default())
}

impl SnapshotStore for PgEventStore {
    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>, Error> {
        let row: Option<(i64, i32, serde_json::Value, DateTime<Utc>)> = sqlx::query_as(
            "SELECT version, schema, state, taken_at FROM cqrs_snapshots WHERE stream_id = $1",
        )
        .bind(stream_id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend("load_snapshot"))?;
        Ok(row.map(|(v, schema, state, taken_at)| Snapshot {
            stream_id: stream_id.clone(),
            version: version(v),
            schema: u32::try_from(schema).unwrap_or_default(),
            state,
            taken_at,
        }))
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO cqrs_snapshots AS s (stream_id, version, schema, state, taken_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (stream_id) DO UPDATE
               SET version = EXCLUDED.version, schema = EXCLUDED.schema,
                   state = EXCLUDED.state, taken_at = EXCLUDED.taken_at
             WHERE s.version < EXCLUDED.version",
        )
        .bind(snapshot.stream_id.as_str())
        .bind(i64::try_from(snapshot.version.0).unwrap_or(i64::MAX))
        .bind(i32::try_from(snapshot.schema).unwrap_or(i32::MAX))
        .bind(&snapshot.state)
        .bind(snapshot.taken_at)
        .execute(&self.pool)
        .await
        .map_err(backend("save_snapshot"))?;
        Ok(())
    }
}

impl CommandLog for PgEventStore {
    async fn handled_command(&self, command_id: Uuid) -> Result<Option<AppendResult>, Error> {
        let row: Option<(String, i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT stream_id, previous_version, version, position FROM cqrs_commands WHERE command_id = $1",
        )
        .bind(command_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend("handled_command"))?;
        Ok(row.map(|(stream_id, previous, v, position)| AppendResult {
            stream_id: StreamId::new(stream_id),
            previous_version: version(previous),
            version: version(v),
            position: position.and_then(|p| u64::try_from(p).ok()).map(Position),
            already_handled: true,
        }))
    }
}
