//! [`MemoryEventBus`]: an in-process event transport, shaped like one Kafka partition.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::lock;
use crate::error::Error;
use crate::event::{Position, RecordedEvent};
use crate::ports::{EventBatchStream, EventPublisher, EventSubscriber, LogReader};
use crate::subscription::catch_up;

/// An in-process event bus: a retained, ordered log of published events that any
/// number of subscribers read from their own position, like one partition of a
/// topic with an idempotent producer.
///
/// Publishing is idempotent by position: an event whose position is not past the
/// last one published is dropped, so a publisher that re-sends after a failure
/// creates no duplicate. Feed it from a store with [`relay`](crate::relay).
#[derive(Clone)]
pub struct MemoryEventBus {
    log: Arc<Mutex<Vec<RecordedEvent>>>,
    head: Arc<watch::Sender<Position>>,
}

impl Default for MemoryEventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryEventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryEventBus")
            .field("head", &*self.head.borrow())
            .finish_non_exhaustive()
    }
}

impl MemoryEventBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self {
            log: Arc::default(),
            head: Arc::new(watch::Sender::new(Position::START)),
        }
    }

    /// The position of the last event published (`Position::START` if none): where a
    /// relay resumes.
    pub fn last_published(&self) -> Position {
        *self.head.borrow()
    }
}

impl EventPublisher for MemoryEventBus {
    async fn publish(&self, events: &[RecordedEvent]) -> Result<(), Error> {
        let mut log = lock(&self.log);
        let mut last = log.last().map_or(Position::START, |e| e.position);
        for event in events {
            if event.position > last {
                last = event.position;
                log.push(event.clone());
            }
        }
        drop(log);
        self.head.send_if_modified(|head| {
            let changed = *head != last;
            *head = last;
            changed
        });
        Ok(())
    }
}

impl LogReader for MemoryEventBus {
    async fn read_all(&self, after: Position, limit: usize) -> Result<Vec<RecordedEvent>, Error> {
        let log = lock(&self.log);
        let start = log.partition_point(|e| e.position <= after);
        Ok(log.iter().skip(start).take(limit).cloned().collect())
    }

    async fn head(&self) -> Result<Position, Error> {
        Ok(self.last_published())
    }
}

impl EventSubscriber for MemoryEventBus {
    fn subscribe(&self, after: Position, batch_size: usize) -> EventBatchStream {
        catch_up(self.clone(), self.head.subscribe(), after, batch_size)
    }
}
