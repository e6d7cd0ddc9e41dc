//! Ports that move events: subscribing to the log (catch-up, then live) and
//! publishing to a transport.

use std::future::Future;

use futures::stream::BoxStream;

use super::forward_port;
use crate::error::Error;
use crate::event::{Position, RecordedEvent};

/// A stream of event batches, each in position order and following the one before.
/// It ends only when its source is closed; an `Err` item is followed by the end.
pub type EventBatchStream = BoxStream<'static, Result<Vec<RecordedEvent>, Error>>;

/// Delivers the log from a position: first the events already stored (catch-up),
/// then new ones as they are appended (live), with no gap and no reordering.
///
/// Delivery is *at least once* across restarts: a consumer that resumes from its
/// checkpoint may see again events it applied after that checkpoint, so consumers
/// must be idempotent (the projection runner is).
pub trait EventSubscriber: Send + Sync {
    /// Events with a position greater than `after`, in batches of at most
    /// `batch_size`.
    fn subscribe(&self, after: Position, batch_size: usize) -> EventBatchStream;

    /// How many records the source holds beyond what its subscription has delivered
    /// and had applied, as last measured, if it knows (a Kafka consumer's lag); the
    /// [`ProjectionRunner`](crate::ProjectionRunner) reports it in
    /// [`ProjectionStats::backlog`](crate::ProjectionStats::backlog). `None` by
    /// default.
    fn backlog(&self) -> Option<u64> {
        None
    }
}

/// Publishes stored events to a transport (an in-process bus, Kafka).
///
/// Publishing is at-least-once: a publisher may deliver an event again after a
/// failure, never drop one it reported as published. Events of one stream are
/// published in version order.
pub trait EventPublisher: Send + Sync {
    /// Publishes `events` in order.
    ///
    /// # Errors
    /// [`Error::Backend`] if the transport fails; some of the events may have been
    /// published, so publish them again.
    fn publish(&self, events: &[RecordedEvent]) -> impl Future<Output = Result<(), Error>> + Send;
}

forward_port!(EventSubscriber {
    fn subscribe(&self, after: Position, batch_size: usize) -> EventBatchStream;
    fn backlog(&self) -> Option<u64>;
});
forward_port!(EventPublisher {
    fn publish(&self, events: &[RecordedEvent]) -> impl Future<Output = Result<(), Error>> + Send;
});
