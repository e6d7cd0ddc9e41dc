//! [`MemoryEventStore`]: every write-side port, in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use tokio::sync::watch;
use uuid::Uuid;

use super::lock;
use crate::error::Error;
use crate::event::{Envelope, Position, RecordedEvent, StreamId, Version};
use crate::ports::{
    AppendRequest, AppendResult, CommandLog, EventAppender, EventBatchStream, EventSubscriber,
    LogReader, Snapshot, SnapshotStore, StreamReader,
};
use crate::subscription::catch_up;

#[derive(Default)]
struct Inner {
    /// The global log; the event at index `i` has position `i + 1`.
    log: Vec<Arc<RecordedEvent>>,
    /// Per stream, the indices of its events in the log, in version order.
    streams: HashMap<StreamId, Vec<usize>>,
    commands: HashMap<Uuid, AppendResult>,
    snapshots: HashMap<StreamId, Snapshot>,
}

/// An event store in memory. Cheap to clone: clones share the same events.
///
/// Appends are serialized by one lock, so positions are assigned in commit order
/// and every event [`read_all`](LogReader::read_all) returns is final.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use cqrs_core::{AppendRequest, EventAppender, ExpectedVersion, MemoryEventStore, Metadata,
///     NewEvent, RawEvent, StreamReader, StreamId, Version};
///
/// let store = MemoryEventStore::new();
/// let event = NewEvent {
///     event_id: uuid::Uuid::now_v7(),
///     event: RawEvent { event_type: "Opened".into(), schema_version: 1, payload: serde_json::json!({}) },
///     metadata: Metadata::new(),
/// };
/// let result = store
///     .append(AppendRequest::new("account-1", ExpectedVersion::NoStream, vec![event]))
///     .await
///     .unwrap();
/// assert_eq!(result.version, Version(1));
/// let events = store.read_stream(&StreamId::new("account-1"), Version::INITIAL, usize::MAX).await.unwrap();
/// assert_eq!(events.len(), 1);
/// # });
/// ```
#[derive(Clone)]
pub struct MemoryEventStore {
    inner: Arc<Mutex<Inner>>,
    head: Arc<watch::Sender<Position>>,
}

impl Default for MemoryEventStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryEventStore")
            .field("head", &*self.head.borrow())
            .finish_non_exhaustive()
    }
}

impl MemoryEventStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            inner: Arc::default(),
            head: Arc::new(watch::Sender::new(Position::START)),
        }
    }

    /// How many events the store holds.
    pub fn len(&self) -> usize {
        lock(&self.inner).log.len()
    }

    /// Whether the store holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A receiver of the head position, updated after every append.
    pub fn watch_head(&self) -> watch::Receiver<Position> {
        self.head.subscribe()
    }

    fn append_now(&self, request: AppendRequest) -> Result<AppendResult, Error> {
        let mut inner = lock(&self.inner);
        if let Some(command_id) = request.command_id {
            if let Some(earlier) = inner.commands.get(&command_id) {
                let mut earlier = earlier.clone();
                earlier.already_handled = true;
                return Ok(earlier);
            }
        }
        let previous_version = Version(
            inner
                .streams
                .get(&request.stream_id)
                .map_or(0, |indices| indices.len() as u64),
        );
        if !request.expected.matches(previous_version) {
            return Err(Error::Conflict {
                stream_id: request.stream_id,
                expected: request.expected,
                actual: previous_version,
            });
        }
        let recorded_at = Utc::now();
        let first_index = inner.log.len();
        let count = request.events.len();
        for (offset, new) in request.events.into_iter().enumerate() {
            let index = first_index + offset;
            inner.log.push(Arc::new(Envelope {
                event_id: new.event_id,
                stream_id: request.stream_id.clone(),
                version: previous_version.plus(offset as u64 + 1),
                position: Position(index as u64 + 1),
                recorded_at,
                metadata: new.metadata,
                event: new.event,
            }));
        }
        if count > 0 {
            inner
                .streams
                .entry(request.stream_id.clone())
                .or_default()
                .extend(first_index..first_index + count);
        }
        let result = AppendResult {
            stream_id: request.stream_id,
            previous_version,
            version: previous_version.plus(count as u64),
            position: (count > 0).then(|| Position(inner.log.len() as u64)),
            already_handled: false,
        };
        if let Some(command_id) = request.command_id {
            inner.commands.insert(command_id, result.clone());
        }
        let head = Position(inner.log.len() as u64);
        drop(inner);
        if count > 0 {
            self.head.send_replace(head);
        }
        Ok(result)
    }
}

impl EventAppender for MemoryEventStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendResult, Error> {
        self.append_now(request)
    }
}

impl StreamReader for MemoryEventStore {
    async fn read_stream(
        &self,
        stream_id: &StreamId,
        after: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let inner = lock(&self.inner);
        let Some(indices) = inner.streams.get(stream_id) else {
            return Ok(Vec::new());
        };
        let skip = usize::try_from(after.0).unwrap_or(usize::MAX);
        Ok(indices
            .iter()
            .skip(skip)
            .take(limit)
            .map(|&i| RecordedEvent::clone(&inner.log[i]))
            .collect())
    }
}

impl LogReader for MemoryEventStore {
    async fn read_all(&self, after: Position, limit: usize) -> Result<Vec<RecordedEvent>, Error> {
        let inner = lock(&self.inner);
        let start = usize::try_from(after.0).unwrap_or(usize::MAX);
        Ok(inner
            .log
            .iter()
            .skip(start)
            .take(limit)
            .map(|e| RecordedEvent::clone(e))
            .collect())
    }

    async fn head(&self) -> Result<Position, Error> {
        Ok(Position(lock(&self.inner).log.len() as u64))
    }
}

impl CommandLog for MemoryEventStore {
    async fn handled_command(&self, command_id: Uuid) -> Result<Option<AppendResult>, Error> {
        Ok(lock(&self.inner).commands.get(&command_id).cloned())
    }
}

impl SnapshotStore for MemoryEventStore {
    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>, Error> {
        Ok(lock(&self.inner).snapshots.get(stream_id).cloned())
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), Error> {
        let mut inner = lock(&self.inner);
        let newer_stored = inner
            .snapshots
            .get(&snapshot.stream_id)
            .is_some_and(|s| s.version >= snapshot.version);
        if !newer_stored {
            inner.snapshots.insert(snapshot.stream_id.clone(), snapshot);
        }
        Ok(())
    }
}

impl EventSubscriber for MemoryEventStore {
    fn subscribe(&self, after: Position, batch_size: usize) -> EventBatchStream {
        catch_up(self.clone(), self.watch_head(), after, batch_size)
    }
}
