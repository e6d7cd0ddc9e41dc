//! Inline projections: read models written in the transaction that appends the
//! events, so they can never disagree with them.
//!
//! The one safe form of "the application writes both": the events and the
//! documents commit together or not at all. No document lock is needed: an append
//! that writes events holds the log tail's lock until it commits, so the inline
//! read-modify-writes of two appends never overlap.

use cqrs_core::{Error, Guard, Projection, ProjectionBatch, RecordedEvent};
use futures::future::BoxFuture;
use sqlx::MySqlConnection;

use crate::read_model::{load_documents, write_documents};

/// A projection applied inline, type-erased so that one store holds several.
pub(crate) trait InlineProjection: Send + Sync {
    /// Applies `events` (just appended, in this transaction) to the projection's
    /// documents.
    fn apply<'a>(
        &'a self,
        conn: &'a mut MySqlConnection,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), Error>>;
}

/// A [`Projection`] applied inline, under its name.
pub(crate) struct Inline<P>(pub(crate) P);

impl<P: Projection> InlineProjection for Inline<P> {
    fn apply<'a>(
        &'a self,
        conn: &'a mut MySqlConnection,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let plan = ProjectionBatch::plan(&self.0, events)?;
            if plan.is_empty() {
                return Ok(());
            }
            let stored = load_documents(conn, P::NAME, plan.document_ids()).await?;
            let changes = plan.apply(&self.0, P::NAME, stored, Guard::ApplyAll)?;
            write_documents(conn, P::NAME, changes, Guard::ApplyAll).await
        })
    }
}
