//! [`SnapshotStore`] for [`MySqlEventStore`].

use chrono::{DateTime, Utc};
use cqrs_core::{Error, Snapshot, SnapshotStore, StreamId, Version};

use super::MySqlEventStore;

impl SnapshotStore for MySqlEventStore {
    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>, Error> {
        cqrs_core::within(self.deadline, "load_snapshot", async {
            let row: Option<(u64, u32, Vec<u8>, DateTime<Utc>)> = sqlx::query_as(
                "SELECT version, schema_version, state, taken_at FROM cqrs_snapshots
                 WHERE stream_id = ?",
            )
            .bind(stream_id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::backend_in("load_snapshot"))?;
            let Some((version, schema, state, taken_at)) = row else {
                return Ok(None);
            };
            let state = serde_json::from_slice(&state).map_err(|e| {
                Error::codec("snapshot", e).at_event(
                    stream_id,
                    Version(version),
                    cqrs_core::Position::START,
                )
            })?;
            Ok(Some(Snapshot {
                stream_id: stream_id.clone(),
                version: Version(version),
                schema,
                state,
                taken_at,
            }))
        })
        .await
    }

    /// Keeps the newest snapshot: an older one (a slow writer) changes nothing.
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), Error> {
        cqrs_core::within(self.deadline, "save_snapshot", async {
            let state =
                serde_json::to_string(&snapshot.state).map_err(|e| Error::codec("snapshot", e))?;
            sqlx::query(
                "INSERT INTO cqrs_snapshots (stream_id, version, schema_version, state, taken_at)
                 VALUES (?, ?, ?, ?, ?)
                 ON DUPLICATE KEY UPDATE
                   state = IF(VALUES(version) > version, VALUES(state), state),
                   schema_version = IF(VALUES(version) > version, VALUES(schema_version), schema_version),
                   taken_at = IF(VALUES(version) > version, VALUES(taken_at), taken_at),
                   version = GREATEST(version, VALUES(version))",
            )
            .bind(snapshot.stream_id.as_str())
            .bind(snapshot.version.0)
            .bind(snapshot.schema)
            .bind(state)
            .bind(snapshot.taken_at)
            .execute(&self.pool)
            .await
            .map_err(Error::backend_in("save_snapshot"))?;
            Ok(())
        })
        .await
    }
}
