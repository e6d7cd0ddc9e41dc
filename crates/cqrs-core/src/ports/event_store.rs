//! Write-side ports: appending, reading streams and the global log, snapshots, and
//! the log of handled commands.

use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::forward_port;
use crate::error::Error;
use crate::event::{NewEvent, Position, RecordedEvent, StreamId, Version};

/// What a writer expects a stream's version to be, checked atomically with the append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the version (no concurrency check).
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version (`Exact(Version(0))` is the same as
    /// [`NoStream`](ExpectedVersion::NoStream)).
    Exact(Version),
}

impl ExpectedVersion {
    /// Whether a stream at `actual` satisfies this expectation.
    pub fn matches(self, actual: Version) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == Version::INITIAL,
            Self::Exact(v) => v == actual,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream => f.write_str("no stream"),
            Self::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// A request to append events to one stream, atomically.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendRequest {
    /// The stream to append to.
    pub stream_id: StreamId,
    /// The version the stream must be at.
    pub expected: ExpectedVersion,
    /// The events, in order. May be empty (then only the command id is recorded).
    pub events: Vec<NewEvent>,
    /// The id of the command that produced the events. If set and already recorded,
    /// nothing is appended and the earlier result is returned with
    /// [`AppendResult::already_handled`] set.
    pub command_id: Option<Uuid>,
}

impl AppendRequest {
    /// A request without a command id.
    pub fn new(
        stream_id: impl Into<StreamId>,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Self {
        Self {
            stream_id: stream_id.into(),
            expected,
            events,
            command_id: None,
        }
    }

    /// Records `command_id` with the append, making it idempotent.
    #[must_use]
    pub fn with_command_id(mut self, command_id: Uuid) -> Self {
        self.command_id = Some(command_id);
        self
    }

    /// The events of this request as a store that answered `result` recorded them,
    /// for an adapter that applies them in the append's transaction (inline read
    /// models): versions after [`AppendResult::previous_version`], positions
    /// consecutive up to [`AppendResult::position`] (a store whose positions are not
    /// consecutive within one append must not use this). `recorded_at` is this
    /// process's clock, not the server's. Empty if nothing was appended.
    pub fn recorded(&self, result: &AppendResult) -> Vec<RecordedEvent> {
        let Some(last) = result.position else {
            return Vec::new();
        };
        if result.already_handled {
            return Vec::new();
        }
        let count = self.events.len() as u64;
        let now = Utc::now();
        self.events
            .iter()
            .enumerate()
            .map(|(i, new)| crate::event::Envelope {
                event_id: new.event_id,
                stream_id: self.stream_id.clone(),
                version: result.previous_version.plus(i as u64 + 1),
                position: Position((last.0 + 1 + i as u64).saturating_sub(count)),
                recorded_at: now,
                metadata: new.metadata.clone(),
                event: new.event.clone(),
            })
            .collect()
    }
}

/// The result of an append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendResult {
    /// The stream appended to.
    pub stream_id: StreamId,
    /// The stream's version before the append; the new events have the versions
    /// after it, up to [`version`](AppendResult::version).
    pub previous_version: Version,
    /// The stream's version after the append.
    pub version: Version,
    /// The global position of the last event appended, `None` if none was. Wait for
    /// a projection to reach it to read your own writes.
    pub position: Option<Position>,
    /// `true` if the command id had already been handled: nothing was appended now
    /// and this is the earlier result.
    #[serde(default)]
    pub already_handled: bool,
}

/// Appends events to a stream with an optimistic-concurrency check.
pub trait EventAppender: Send + Sync {
    /// Appends `request.events` atomically: all of them or none.
    ///
    /// # Errors
    /// [`Error::Conflict`] if the stream is not at `request.expected`; nothing is
    /// appended. [`Error::Backend`] if the store fails.
    fn append(
        &self,
        request: AppendRequest,
    ) -> impl Future<Output = Result<AppendResult, Error>> + Send;
}

/// Reads one stream.
pub trait StreamReader: Send + Sync {
    /// Up to `limit` events of `stream_id` with a version greater than `after`, in
    /// version order. An unknown stream is empty. Callers read a long stream in
    /// chunks (the [`Repository`](crate::Repository) reads
    /// [`STREAM_CHUNK`](crate::Repository::STREAM_CHUNK) at a time), so no read holds
    /// a whole stream in memory.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails.
    fn read_stream(
        &self,
        stream_id: &StreamId,
        after: Version,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, Error>> + Send;
}

/// Reads the global log of all events in position order.
///
/// **Contract:** every event returned is *final*: no event with a lower position
/// may become visible later. A store whose writers can commit out of position order
/// (PostgreSQL sequences under concurrent transactions) must hold back events until
/// every lower position is settled, or a reader that resumes "after the last
/// position seen" would skip an event for ever.
pub trait LogReader: Send + Sync {
    /// Up to `limit` events with a position greater than `after`, in position order.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails.
    fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, Error>> + Send;

    /// The position of the last final event (`Position::START` if none).
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails.
    fn head(&self) -> impl Future<Output = Result<Position, Error>> + Send;
}

/// Remembers which commands were handled, for idempotent commands.
pub trait CommandLog: Send + Sync {
    /// The result recorded for `command_id`, if that command was handled.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails.
    fn handled_command(
        &self,
        command_id: Uuid,
    ) -> impl Future<Output = Result<Option<AppendResult>, Error>> + Send;
}

/// An aggregate's state at a version, stored to skip replaying the events before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The aggregate's stream.
    pub stream_id: StreamId,
    /// The stream version the state includes.
    pub version: Version,
    /// A version of the state's *shape*; a snapshot whose `schema` differs from the
    /// aggregate's [`SNAPSHOT_SCHEMA`](crate::Aggregate::SNAPSHOT_SCHEMA) is ignored.
    pub schema: u32,
    /// The serialized state.
    pub state: Value,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
}

/// Stores snapshots, the latest one per stream.
pub trait SnapshotStore: Send + Sync {
    /// The latest snapshot of `stream_id`, if any.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails.
    fn load_snapshot(
        &self,
        stream_id: &StreamId,
    ) -> impl Future<Output = Result<Option<Snapshot>, Error>> + Send;

    /// Stores `snapshot` unless a newer one is already stored.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails.
    fn save_snapshot(&self, snapshot: Snapshot) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Every write-side role: what a [`Repository`](crate::Repository) needs.
pub trait EventStore:
    EventAppender + StreamReader + LogReader + CommandLog + SnapshotStore
{
}

impl<T> EventStore for T where
    T: EventAppender + StreamReader + LogReader + CommandLog + SnapshotStore
{
}

forward_port!(EventAppender {
    fn append(&self, request: AppendRequest) -> impl Future<Output = Result<AppendResult, Error>> + Send;
});
forward_port!(StreamReader {
    fn read_stream(&self, stream_id: &StreamId, after: Version, limit: usize) -> impl Future<Output = Result<Vec<RecordedEvent>, Error>> + Send;
});
forward_port!(LogReader {
    fn read_all(&self, after: Position, limit: usize) -> impl Future<Output = Result<Vec<RecordedEvent>, Error>> + Send;
    fn head(&self) -> impl Future<Output = Result<Position, Error>> + Send;
});
forward_port!(CommandLog {
    fn handled_command(&self, command_id: Uuid) -> impl Future<Output = Result<Option<AppendResult>, Error>> + Send;
});
forward_port!(SnapshotStore {
    fn load_snapshot(&self, stream_id: &StreamId) -> impl Future<Output = Result<Option<Snapshot>, Error>> + Send;
    fn save_snapshot(&self, snapshot: Snapshot) -> impl Future<Output = Result<(), Error>> + Send;
});
