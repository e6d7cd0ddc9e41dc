#![doc = include_str!("../README.md")]

mod aggregate;
mod backoff;
mod deadline;
mod error;
mod event;
mod group_commit;
mod lease;
pub mod memory;
pub mod ports;
mod projection;
mod redact;
mod repository;
mod subscription;
pub mod testing;

/// `#[derive(Event)]`: see [`Event`] and the `cqrs-derive` crate docs.
#[cfg(feature = "derive")]
pub use cqrs_derive::Event;

pub use crate::aggregate::{Aggregate, Command};
pub use crate::backoff::Backoff;
pub use crate::deadline::within;
pub use crate::error::{BoxError, CommandError, Error, Location};
pub use crate::event::{
    Envelope, Event, Metadata, NewEvent, Position, RawEvent, RecordedEvent, StreamId, Version,
};
pub use crate::group_commit::{GroupCommitCounters, GroupCommitStats};
pub use crate::lease::{SessionLeases, SessionLock};
pub use crate::memory::{
    DeadLetter, MemoryDeadLetters, MemoryEventBus, MemoryEventStore, MemoryLease,
    MemoryReadModelStore,
};
pub use crate::ports::{
    AppendRequest, AppendResult, CommandLog, DeadLetters, DocumentChange, DynDeadLetters, DynLease,
    EventAppender, EventBatchStream, EventPublisher, EventStore, EventSubscriber, ExpectedVersion,
    Index, Lease, LogReader, ReadModelReader, ReadModelStore, ReadModelWriter, Snapshot,
    SnapshotStore, StoredDocument, StreamReader,
};
pub use crate::projection::{
    Aliased, CutOver, CutOverOptions, Guard, Projection, ProjectionBatch, ProjectionHandle,
    ProjectionRunner, ProjectionStats, ReadModel, cut_over,
};
pub use crate::redact::redact_url;
pub use crate::repository::{CommandOutcome, Loaded, Repository, SnapshotPolicy};
pub use crate::subscription::{catch_up, relay};
