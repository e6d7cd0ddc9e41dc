//! Read-side ports: documents of read models, and projection checkpoints.
//!
//! A read model is a set of JSON documents keyed by id, owned by one projection (the
//! projection's name is its namespace: a collection, a key prefix, a table). Every
//! document records the position of the last event applied to it.
//!
//! # The commit contract
//! [`ReadModelWriter::commit`] receives the document changes of a batch of events and
//! the projection's new checkpoint. A store must make them durable in one of two ways:
//!
//! * **Atomically**: all the changes and the checkpoint, or nothing. What each store
//!   does: PostgreSQL, one transaction; Redis, one Lua script (`EVALSHA`), which the
//!   server runs without interleaving another command and which checks everything
//!   it can refuse before its first write (not `MULTI`/`EXEC`, which cannot read
//!   positions to guard each write); in memory, one lock.
//! * **Idempotently** (stores without multi-document transactions: MongoDB, which
//!   this library uses without a replica set, and FerretDB): write each document
//!   with one guarded `update` statement, only if its stored position is lower
//!   than the change's position (the per-document guard), keep deleted documents as
//!   tombstones that carry their position, and write the checkpoint *after* every
//!   document. A crash in between leaves the checkpoint behind; the runner replays
//!   from it, and every event already applied to a document is skipped because the
//!   document's position says so. The [`ProjectionRunner`](crate::ProjectionRunner)
//!   relies on those positions: it loads the documents a batch touches and never
//!   applies an event to a document whose position is at or past the event's.
//!
//! Either way, a [`DocumentChange::Delete`] should leave a tombstone (the id and the
//! position, no value) that [`ReadModelReader::get_many`] returns as a `Null` value
//! and [`ReadModelReader::get`] hides: without it, an event replayed to a deleted
//! document would be applied to an empty one. An atomic store never replays a
//! committed batch, so it may drop tombstones; keeping them makes every store behave
//! alike, and is what the in-memory store does.

use std::collections::HashMap;
use std::future::Future;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::forward_port;
use crate::error::Error;
use crate::event::Position;

/// A read-model document as stored: its value and the position of the last event
/// applied to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDocument {
    /// The document.
    pub value: Value,
    /// The position of the last event applied to it.
    pub position: Position,
}

/// A change to one document, made by the event at `position`.
#[derive(Debug, Clone, PartialEq)]
pub enum DocumentChange {
    /// Create or replace the document.
    Put {
        /// The document's id.
        id: String,
        /// The new value.
        value: Value,
        /// The position of the last event applied to it.
        position: Position,
    },
    /// Remove the document.
    Delete {
        /// The document's id.
        id: String,
        /// The position of the event that removed it.
        position: Position,
    },
}

impl DocumentChange {
    /// The id of the changed document.
    pub fn id(&self) -> &str {
        match self {
            Self::Put { id, .. } | Self::Delete { id, .. } => id,
        }
    }

    /// The position of the event that made the change.
    pub fn position(&self) -> Position {
        match self {
            Self::Put { position, .. } | Self::Delete { position, .. } => *position,
        }
    }
}

/// An index a projection asks its store for, on fields of its documents (dotted
/// paths into the document's JSON, ascending). Stores that can query by field
/// (MongoDB) create it when a runner starts; the others ignore it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// The index's name, unique within the read model.
    pub name: &'static str,
    /// The indexed fields, in order: dotted paths into the document.
    pub fields: &'static [&'static str],
    /// Whether two documents may not share the same values.
    pub unique: bool,
}

/// Reads read-model documents.
pub trait ReadModelReader: Send + Sync {
    /// The document `id` of `projection`, if it exists (tombstones are not returned).
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails.
    fn get(
        &self,
        projection: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<StoredDocument>, Error>> + Send;

    /// The documents among `ids` that exist, in one round trip where the store allows.
    /// A store that keeps tombstones returns them here as a `Null` value, so that the
    /// runner sees their position.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails.
    fn get_many(
        &self,
        projection: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, StoredDocument>, Error>> + Send;
}

/// Writes read-model documents and checkpoints (see the module docs for the contract).
pub trait ReadModelWriter: Send + Sync {
    /// The position of the last event `projection` has fully applied
    /// (`Position::START` if none).
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails.
    fn checkpoint(&self, projection: &str) -> impl Future<Output = Result<Position, Error>> + Send;

    /// Applies `changes` and moves the checkpoint of `projection` to `checkpoint`,
    /// atomically or idempotently.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails; then the checkpoint did not move.
    fn commit(
        &self,
        projection: &str,
        changes: Vec<DocumentChange>,
        checkpoint: Position,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Removes every document and the checkpoint of `projection`, for a rebuild or
    /// after a cut-over to a new version.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails.
    fn reset(&self, projection: &str) -> impl Future<Output = Result<(), Error>> + Send;

    /// Prepares the store for `projection` before a runner writes to it: creates the
    /// `indexes` it declares, where the store has indexes. Idempotent.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails.
    fn prepare(
        &self,
        projection: &str,
        indexes: &[Index],
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = (projection, indexes);
        async { Ok(()) }
    }

    /// The read model that the name `alias` points to, if it was ever pointed
    /// anywhere (see [`cut_over`](crate::cut_over)). A runner started under a
    /// projection's own name writes to the model this returns, and
    /// [`Aliased`](crate::Aliased) readers read from it.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails.
    fn alias(&self, alias: &str) -> impl Future<Output = Result<Option<String>, Error>> + Send;

    /// Points the name `alias` at the read model `target`.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails; the alias is then unchanged.
    fn set_alias(
        &self,
        alias: &str,
        target: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Both read-model roles: what a [`ProjectionRunner`](crate::ProjectionRunner) needs.
pub trait ReadModelStore: ReadModelReader + ReadModelWriter {}

impl<T> ReadModelStore for T where T: ReadModelReader + ReadModelWriter {}

forward_port!(ReadModelReader {
    fn get(&self, projection: &str, id: &str) -> impl Future<Output = Result<Option<StoredDocument>, Error>> + Send;
    fn get_many(&self, projection: &str, ids: &[String]) -> impl Future<Output = Result<HashMap<String, StoredDocument>, Error>> + Send;
});
forward_port!(ReadModelWriter {
    fn checkpoint(&self, projection: &str) -> impl Future<Output = Result<Position, Error>> + Send;
    fn commit(&self, projection: &str, changes: Vec<DocumentChange>, checkpoint: Position) -> impl Future<Output = Result<(), Error>> + Send;
    fn reset(&self, projection: &str) -> impl Future<Output = Result<(), Error>> + Send;
    fn prepare(&self, projection: &str, indexes: &[Index]) -> impl Future<Output = Result<(), Error>> + Send;
    fn alias(&self, alias: &str) -> impl Future<Output = Result<Option<String>, Error>> + Send;
    fn set_alias(&self, alias: &str, target: &str) -> impl Future<Output = Result<(), Error>> + Send;
});
