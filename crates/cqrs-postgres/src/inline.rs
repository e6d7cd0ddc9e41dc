//! Inline projections: read models written in the transaction that appends the
//! events, so they can never disagree with them.
//!
//! This is the one safe form of "the application writes both": the events and the
//! documents commit together or not at all. Across two stores (events in
//! PostgreSQL, documents in MongoDB) no such transaction exists, which is why the
//! other stores are fed by projection runners instead.

use std::collections::BTreeSet;

use cqrs_core::{Error, Guard, Projection, ProjectionBatch, RecordedEvent};
use futures::future::BoxFuture;
use sqlx::PgConnection;

use crate::read_model::{load_documents, write_documents};

/// A projection applied inside an append's transaction (type-erased).
pub(crate) trait InlineProjection: Send + Sync {
    /// The read model's name.
    fn name(&self) -> &str;

    /// Applies `events` (just appended, in this transaction) and writes the
    /// documents they change.
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), Error>>;
}

pub(crate) struct Inline<P> {
    pub(crate) projection: P,
    pub(crate) name: String,
}

impl<P: Projection> InlineProjection for Inline<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let plan = ProjectionBatch::plan(&self.projection, events)?;
            if plan.is_empty() {
                return Ok(());
            }
            // Two appends can change one document concurrently: lock the documents,
            // in a fixed order so that two transactions cannot deadlock, before the
            // read-modify-write. Stream locks are always taken before these.
            let sorted: Vec<&String> = plan
                .document_ids()
                .iter()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            sqlx::query(
                "SELECT count(pg_advisory_xact_lock(hashtextextended($1 || '/' || id, 1)))
                 FROM (SELECT id FROM unnest($2::text[]) WITH ORDINALITY AS t(id, n) ORDER BY n) s",
            )
            .bind(&self.name)
            .bind(&sorted)
            .execute(&mut *conn)
            .await
            .map_err(Error::backend_in("inline projection lock"))?;
            let stored = load_documents(conn, &self.name, plan.document_ids()).await?;
            let changes = plan.apply(&self.projection, &self.name, stored, Guard::ApplyAll)?;
            write_documents(conn, &self.name, changes, Guard::ApplyAll).await
        })
    }
}
