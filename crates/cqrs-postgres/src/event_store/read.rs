//! Reading: [`StreamReader`], [`LogReader`] and [`EventSubscriber`] for
//! [`PgEventStore`].

use chrono::{DateTime, Utc};
use cqrs_core::{
    Envelope, Error, EventBatchStream, EventSubscriber, LogReader, Metadata, Position, RawEvent,
    RecordedEvent, StreamId, StreamReader, Version,
};
use uuid::Uuid;

use super::PgEventStore;

/// The columns of an event, in the order the queries select them.
pub(crate) const EVENT_COLUMNS: &str = "position, stream_id, version, event_id, event_type, schema_version, payload, metadata, recorded_at";

/// A row of [`EVENT_COLUMNS`].
pub(crate) type EventRow = (
    i64,
    String,
    i64,
    Uuid,
    String,
    i32,
    serde_json::Value,
    serde_json::Value,
    DateTime<Utc>,
);

/// Turns a row of [`EVENT_COLUMNS`] into an event.
pub(crate) fn into_event(row: EventRow) -> Result<RecordedEvent, Error> {
    let (
        position,
        stream_id,
        version,
        event_id,
        event_type,
        schema_version,
        payload,
        metadata,
        recorded_at,
    ) = row;
    let stream_id = StreamId::new(stream_id);
    let position = Position::try_from(position)?;
    let version = Version::try_from(version)
        .map_err(|e| e.at_event(&stream_id, Version::INITIAL, position))?;
    let located = |e: Error| e.at_event(&stream_id, version, position);
    let metadata: Metadata = serde_json::from_value(metadata)
        .map_err(|e| located(Error::codec(format!("{event_type} metadata"), e)))?;
    let schema_version = u32::try_from(schema_version)
        .map_err(|_| located(Error::out_of_range("schema_version", schema_version)))?;
    Ok(Envelope {
        event_id,
        stream_id,
        version,
        position,
        recorded_at,
        metadata,
        event: RawEvent {
            event_type,
            schema_version,
            payload,
        },
    })
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl StreamReader for PgEventStore {
    async fn read_stream(
        &self,
        stream_id: &StreamId,
        after: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let query = format!(
            "SELECT {EVENT_COLUMNS} FROM cqrs_events WHERE stream_id = $1 AND version > $2 ORDER BY version LIMIT $3"
        );
        let call = sqlx::query_as(&query)
            .bind(stream_id.as_str())
            .bind(clamp(after.0))
            .bind(clamp(limit as u64))
            .fetch_all(&self.pool);
        let rows: Vec<EventRow> = cqrs_core::within(self.deadline, "read_stream", async {
            call.await.map_err(Error::backend_in("read_stream"))
        })
        .await?;
        rows.into_iter().map(into_event).collect()
    }
}

impl LogReader for PgEventStore {
    /// Events after `after`, in position order, only up to the safe position: the
    /// first position any transaction still in progress could write. See the crate
    /// docs for why no event can then appear below what was returned.
    async fn read_all(&self, after: Position, limit: usize) -> Result<Vec<RecordedEvent>, Error> {
        let query = format!(
            "SELECT {EVENT_COLUMNS} FROM cqrs_events
             WHERE position > $1 AND position <= cqrs_safe_position()
             ORDER BY position LIMIT $2"
        );
        let call = sqlx::query_as(&query)
            .bind(clamp(after.0))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool);
        let rows: Vec<EventRow> = cqrs_core::within(self.deadline, "read_all", async {
            call.await.map_err(Error::backend_in("read_all"))
        })
        .await?;
        rows.into_iter().map(into_event).collect()
    }

    async fn head(&self) -> Result<Position, Error> {
        let call = sqlx::query_scalar(
            "SELECT max(position) FROM cqrs_events WHERE position <= cqrs_safe_position()",
        )
        .fetch_one(&self.pool);
        let head: Option<i64> = cqrs_core::within(self.deadline, "head", async {
            call.await.map_err(Error::backend_in("head"))
        })
        .await?;
        head.map_or(Ok(Position::START), Position::try_from)
    }
}

impl EventSubscriber for PgEventStore {
    fn subscribe(&self, after: Position, batch_size: usize) -> EventBatchStream {
        let wake = self.listen.wake_up(self.poll_interval);
        cqrs_core::catch_up(self.clone(), wake, after, batch_size)
    }
}
