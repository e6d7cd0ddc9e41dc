//! Reading: [`StreamReader`], [`LogReader`] and [`EventSubscriber`] for
//! [`MySqlEventStore`].

use chrono::{DateTime, Utc};
use cqrs_core::{
    Envelope, Error, EventBatchStream, EventSubscriber, LogReader, Metadata, Position, RawEvent,
    RecordedEvent, StreamId, StreamReader, Version,
};
use uuid::Uuid;

use super::MySqlEventStore;

/// The columns of an event, in the order the queries select them.
pub(crate) const EVENT_COLUMNS: &str = "position, stream_id, version, event_id, event_type, schema_version, payload, metadata, recorded_at";

/// A row of [`EVENT_COLUMNS`]: names and JSON as the bytes they are stored as,
/// decoded here so that a corrupt one is a codec error naming the event, not a
/// driver error.
pub(crate) type EventRow = (
    u64,
    Vec<u8>,
    u64,
    Uuid,
    Vec<u8>,
    u32,
    Vec<u8>,
    Vec<u8>,
    DateTime<Utc>,
);

/// Stored bytes as text.
pub(crate) fn text(bytes: Vec<u8>, what: &str) -> Result<String, Error> {
    String::from_utf8(bytes).map_err(|e| Error::codec(what.to_owned(), e))
}

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
    let (position, version) = (Position(position), Version(version));
    let stream_id = StreamId::new(
        text(stream_id, "stream id")
            .map_err(|e| e.at_event(&StreamId::new("?"), version, position))?,
    );
    let located = |e: Error| e.at_event(&stream_id, version, position);
    let event_type = text(event_type, "event type").map_err(located)?;
    let payload: serde_json::Value = serde_json::from_slice(&payload)
        .map_err(|e| located(Error::codec(format!("{event_type} payload"), e)))?;
    let metadata: Metadata = serde_json::from_slice(&metadata)
        .map_err(|e| located(Error::codec(format!("{event_type} metadata"), e)))?;
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

impl StreamReader for MySqlEventStore {
    async fn read_stream(
        &self,
        stream_id: &StreamId,
        after: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        cqrs_core::within(self.deadline, "read_stream", async {
            let rows: Vec<EventRow> = sqlx::query_as(&format!(
                "SELECT {EVENT_COLUMNS} FROM cqrs_events WHERE stream_id = ? AND version > ?
                 ORDER BY version LIMIT ?"
            ))
            .bind(stream_id.as_str())
            .bind(after.0)
            .bind(limit as u64)
            .fetch_all(&self.pool)
            .await
            .map_err(Error::backend_in("read_stream"))?;
            rows.into_iter().map(into_event).collect()
        })
        .await
    }
}

impl LogReader for MySqlEventStore {
    /// Events after `after`, in position order. Every committed position is below
    /// every position a transaction still in progress will take (appends take them
    /// under the tail's lock, in commit order), so no event can appear later below
    /// what this returned.
    async fn read_all(&self, after: Position, limit: usize) -> Result<Vec<RecordedEvent>, Error> {
        cqrs_core::within(self.deadline, "read_all", async {
            let rows: Vec<EventRow> = sqlx::query_as(&format!(
                "SELECT {EVENT_COLUMNS} FROM cqrs_events WHERE position > ? ORDER BY position LIMIT ?"
            ))
            .bind(after.0)
            .bind(limit as u64)
            .fetch_all(&self.pool)
            .await
            .map_err(Error::backend_in("read_all"))?;
            rows.into_iter().map(into_event).collect()
        })
        .await
    }

    async fn head(&self) -> Result<Position, Error> {
        cqrs_core::within(self.deadline, "head", async {
            let head: u64 = sqlx::query_scalar("SELECT position FROM cqrs_tail WHERE id = 1")
                .fetch_one(&self.pool)
                .await
                .map_err(Error::backend_in("head"))?;
            Ok(Position(head))
        })
        .await
    }
}

impl EventSubscriber for MySqlEventStore {
    fn subscribe(&self, after: Position, batch_size: usize) -> EventBatchStream {
        cqrs_core::catch_up(self.clone(), self.wake.subscribe(), after, batch_size)
    }
}
