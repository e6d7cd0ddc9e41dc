//! [`SnapshotStore`] and [`CommandLog`] for [`PgEventStore`].

use chrono::{DateTime, Utc};
use cqrs_core::{
    AppendResult, CommandLog, Error, ExpectedVersion, Snapshot, SnapshotStore, StreamId, Version,
};
use uuid::Uuid;

use super::PgEventStore;
use super::row::AppendRow;

impl SnapshotStore for PgEventStore {
    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>, Error> {
        cqrs_core::within(self.deadline, "load_snapshot", async {
            let row: Option<(i64, i32, serde_json::Value, DateTime<Utc>)> = sqlx::query_as(
                "SELECT version, schema, state, taken_at FROM cqrs_snapshots WHERE stream_id = $1",
            )
            .bind(stream_id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::backend_in("load_snapshot"))?;
            let Some((version, schema, state, taken_at)) = row else {
                return Ok(None);
            };
            Ok(Some(Snapshot {
                stream_id: stream_id.clone(),
                version: Version::try_from(version)?,
                schema: u32::try_from(schema)
                    .map_err(|_| Error::out_of_range("snapshot schema", schema))?,
                state,
                taken_at,
            }))
        })
        .await
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), Error> {
        cqrs_core::within(self.deadline, "save_snapshot", async {
            sqlx::query(
                "INSERT INTO cqrs_snapshots AS s (stream_id, version, schema, state, taken_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (stream_id) DO UPDATE
                   SET version = EXCLUDED.version, schema = EXCLUDED.schema,
                       state = EXCLUDED.state, taken_at = EXCLUDED.taken_at
                 WHERE s.version < EXCLUDED.version",
            )
            .bind(snapshot.stream_id.as_str())
            .bind(i64::try_from(snapshot.version)?)
            .bind(i32::try_from(snapshot.schema).map_err(|_| {
                Error::InvalidInput(format!(
                    "snapshot schema {} is out of range",
                    snapshot.schema
                ))
            })?)
            .bind(&snapshot.state)
            .bind(snapshot.taken_at)
            .execute(&self.pool)
            .await
            .map_err(Error::backend_in("save_snapshot"))?;
            Ok(())
        })
        .await
    }
}

impl CommandLog for PgEventStore {
    async fn handled_command(&self, command_id: Uuid) -> Result<Option<AppendResult>, Error> {
        cqrs_core::within(self.deadline, "handled_command", async {
            let row: Option<AppendRow> = sqlx::query_as(
                "SELECT stream_id, 'duplicate' AS status, previous_version, version, position AS last_position
                 FROM cqrs_commands WHERE command_id = $1",
            )
            .bind(command_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::backend_in("handled_command"))?;
            row.map(|row| {
                let stream_id = StreamId::new(row.stream_id.clone().unwrap_or_default());
                row.into_result(&stream_id, ExpectedVersion::Any)
            })
            .transpose()
        })
        .await
    }
}
