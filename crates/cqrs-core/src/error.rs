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

    /// An event, document or stored number could not be serialized, deserialized or
    /// upcast. The data is kept as it was; `location` says where it is (stream,
    /// version, position, projection, document): fix the code (or add an upcaster)
    /// and retry.
    #[error("cannot encode or decode `{what}`{location}: {message}")]
    Codec {
        /// The event type (or document kind, or column) concerned.
        what: String,
        /// What went wrong.
        message: String,
        /// Where the data is, as far as known.
        location: Box<Location>,
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

/// Where the data of an [`Error::Codec`] is: what an operator needs to find the row
/// or document. Printed as ` (stream `s`, version 3, position 17, projection `p`)`,
/// with only the parts known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Location {
    /// The stream of the event.
    pub stream_id: Option<StreamId>,
    /// The event's version in its stream.
    pub version: Option<Version>,
    /// The event's position in the global log.
    pub position: Option<Position>,
    /// The projection (read model) that was applying it.
    pub projection: Option<String>,
    /// The read-model document concerned.
    pub document: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(stream) = &self.stream_id {
            parts.push(format!("stream `{stream}`"));
        }
        if let Some(version) = self.version {
            parts.push(format!("version {version}"));
        }
        if let Some(position) = self.position {
            parts.push(format!("position {position}"));
        }
        if let Some(projection) = &self.projection {
            parts.push(format!("projection `{projection}`"));
        }
        if let Some(document) = &self.document {
            parts.push(format!("document `{document}`"));
        }
        if parts.is_empty() {
            Ok(())
        } else {
            write!(f, " ({})", parts.join(", "))
        }
    }
}

impl Error {
    /// A [`Error::Codec`] for `what` (an event type, a document kind, a column), with
    /// no location yet.
    pub fn codec(what: impl Into<String>, message: impl fmt::Display) -> Self {
        Self::Codec {
            what: what.into(),
            message: message.to_string(),
            location: Box::default(),
        }
    }

    /// Adds where a codec error happened: the event at `stream_id`, `version` and
    /// `position`. Other errors are returned unchanged.
    #[must_use]
    pub fn at_event(mut self, stream_id: &StreamId, version: Version, position: Position) -> Self {
        if let Self::Codec { location, .. } = &mut self {
            location.stream_id = Some(stream_id.clone());
            location.version = Some(version);
            location.position = Some(position);
        }
        self
    }

    /// Adds the projection (and, if known, the document) a codec error happened in.
    /// Other errors are returned unchanged.
    #[must_use]
    pub fn in_projection(mut self, projection: &str, document: Option<&str>) -> Self {
        if let Self::Codec { location, .. } = &mut self {
            location.projection = Some(projection.to_owned());
            if let Some(document) = document {
                location.document = Some(document.to_owned());
            }
        }
        self
    }

    /// A [`Error::Backend`] wrapping a driver error.
    pub fn backend(context: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            context,
            source: source.into(),
        }
    }

    /// A function that wraps a driver error in [`Error::Backend`], for `map_err`:
    /// `.map_err(Error::backend_in("append"))`. Every adapter uses this one helper.
    pub fn backend_in<E: Into<BoxError>>(context: &'static str) -> impl FnOnce(E) -> Self {
        move |source| Self::backend(context, source)
    }

    /// A stored integer that is not a valid `what` (negative, or too large): an
    /// [`Error::Codec`], never a silent 0 (which would defeat the guards built on
    /// positions and versions).
    pub fn out_of_range(what: &'static str, value: impl fmt::Display) -> Self {
        Self::codec(what, format!("{value} is out of range"))
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
