//! Errors: [`Error`] for everything a port can fail with, [`CommandError`] for
//! executing a command (a domain rejection kept apart from infrastructure failures).

use std::fmt;

use crate::event::{Position, StreamId, Version};
use crate::ports::ExpectedVersion;

/// A boxed error from a backend driver, kept as the source of [`Error::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong in a port: appending, reading, subscribing, storing read models.
///
/// Adapters wrap their driver errors in [`Error::Backend`]; an optimistic-concurrency
/// conflict is always [`Error::Conflict`], never a raw database error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stream was not at the expected version: another writer appended first.
    /// Reload the stream and decide again (the [`Repository`](crate::Repository)
    /// does this for you, a bounded number of times).
    #[error(
        "version conflict on stream `{stream_id}`: expected {expected}, actual version is {actual}"
    )]
    Conflict {
        /// The stream written to.
        stream_id: StreamId,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The stream's version when the append was attempted.
        actual: Version,
    },

    /// An event or document could not be serialized, deserialized or upcast. The data
    /// is kept as it was; fix the code (or add an upcaster) and retry.
    #[error("cannot encode or decode `{event_type}`: {message}")]
    Codec {
        /// The event type (or document kind) concerned.
        event_type: String,
        /// What went wrong.
        message: String,
    },

    /// The input was refused before anything was written (for example an append of
    /// events whose metadata is not valid for the store). Nothing was stored.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A subscription, runner or store was closed or stopped; the operation cannot
    /// complete. Start it again.
    #[error("closed: {0}")]
    Closed(String),

    /// A projection did not reach the position waited for in time. The projection
    /// may still be catching up; wait longer or check that its runner is alive.
    #[error("projection `{projection}` is at {reached}, did not reach {wanted} in time")]
    Timeout {
        /// The projection waited on.
        projection: String,
        /// The position waited for.
        wanted: Position,
        /// The position it had reached.
        reached: Position,
    },

    /// The backend failed (connection lost, server error, ...). Usually transient:
    /// retry later. The driver's error is the source.
    #[error("backend error in {context}: {source}")]
    Backend {
        /// What was being done.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// A [`Error::Codec`] for `event_type`.
    pub fn codec(event_type: impl Into<String>, message: impl fmt::Display) -> Self {
        Self::Codec {
            event_type: event_type.into(),
            message: message.to_string(),
        }
    }

    /// A [`Error::Backend`] wrapping a driver error.
    pub fn backend(context: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            context,
            source: source.into(),
        }
    }

    /// Whether this is an optimistic-concurrency conflict.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }
}

/// Why a command was not executed.
///
/// `E` is the aggregate's domain error: [`CommandError::Rejected`] is the user's
/// mistake (show it to them); the other variants are infrastructure's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError<E> {
    /// The aggregate refused the command (a business rule). Nothing was appended.
    #[error(transparent)]
    Rejected(E),

    /// Other writers kept winning the race for the stream; the command was decided
    /// `attempts` times and every append conflicted. Nothing was appended; retrying
    /// later is safe.
    #[error("gave up after {attempts} conflicting attempts: {last}")]
    TooManyConflicts {
        /// How many times the command was decided and appended.
        attempts: u32,
        /// The last conflict.
        #[source]
        last: Error,
    },

    /// A store failed. Whether the events were appended is unknown only if the
    /// failure hit the append itself: retry with the same command id to be safe.
    #[error(transparent)]
    Store(#[from] Error),
}

impl<E> CommandError<E> {
    /// The domain error, if the aggregate rejected the command.
    pub fn rejection(&self) -> Option<&E> {
        match self {
            Self::Rejected(e) => Some(e),
            _ => None,
        }
    }
}
