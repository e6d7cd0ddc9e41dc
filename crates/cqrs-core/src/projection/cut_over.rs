//! Rebuilds without downtime: build a new version of a read model beside the live
//! one, then point readers at it ([`cut_over`]) through an alias ([`Aliased`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::handle::ProjectionHandle;
use crate::error::Error;
use crate::event::Position;
use crate::ports::{DocumentChange, Index, ReadModelReader, ReadModelWriter, StoredDocument};

/// A read-model store whose readers follow aliases: a read of `today` (a document or
/// the checkpoint) reads the read model the alias `today` points to (itself if it
/// points nowhere). Writes are passed through unchanged (runners resolve aliases
/// themselves, and follow them when they move).
///
/// Resolved aliases are kept for the refresh interval (1 s by default), so a read
/// costs no extra round trip; after a [`cut_over`] elsewhere, readers switch within
/// one interval (a cut-over in this process, through this value, switches them at
/// once). That is why [`cut_over`] waits a grace period longer than the readers'
/// refresh interval before it drops the old version.
#[derive(Debug)]
pub struct Aliased<S> {
    store: S,
    refresh: Duration,
    resolved: Mutex<HashMap<String, (String, Instant)>>,
}

impl<S: ReadModelWriter> Aliased<S> {
    /// The default time a resolved alias is trusted.
    pub const DEFAULT_REFRESH: Duration = Duration::from_secs(1);

    /// Readers of `store` that follow aliases.
    pub fn new(store: S) -> Self {
        Self {
            store,
            refresh: Self::DEFAULT_REFRESH,
            resolved: Mutex::new(HashMap::new()),
        }
    }

    /// Sets how long a resolved alias is trusted before it is read again.
    #[must_use]
    pub fn with_refresh(mut self, refresh: Duration) -> Self {
        self.refresh = refresh;
        self
    }

    /// The store underneath.
    pub fn inner(&self) -> &S {
        &self.store
    }

    /// The read model `name` points to now.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails.
    pub async fn resolve(&self, name: &str) -> Result<String, Error> {
        if let Some((target, at)) = crate::memory::lock(&self.resolved).get(name) {
            if at.elapsed() < self.refresh {
                return Ok(target.clone());
            }
        }
        let target = self
            .store
            .alias(name)
            .await?
            .unwrap_or_else(|| name.to_owned());
        crate::memory::lock(&self.resolved)
            .insert(name.to_owned(), (target.clone(), Instant::now()));
        Ok(target)
    }
}

impl<S: ReadModelReader + ReadModelWriter> ReadModelReader for Aliased<S> {
    async fn get(&self, projection: &str, id: &str) -> Result<Option<StoredDocument>, Error> {
        let target = self.resolve(projection).await?;
        self.store.get(&target, id).await
    }

    async fn get_many(
        &self,
        projection: &str,
        ids: &[String],
    ) -> Result<HashMap<String, StoredDocument>, Error> {
        let target = self.resolve(projection).await?;
        self.store.get_many(&target, ids).await
    }
}

impl<S: ReadModelWriter> ReadModelWriter for Aliased<S> {
    async fn checkpoint(&self, projection: &str) -> Result<Position, Error> {
        // A reader waiting for a position waits for the version it reads.
        let target = self.resolve(projection).await?;
        self.store.checkpoint(&target).await
    }

    async fn commit(
        &self,
        projection: &str,
        changes: Vec<DocumentChange>,
        checkpoint: Position,
    ) -> Result<(), Error> {
        self.store.commit(projection, changes, checkpoint).await
    }

    async fn reset(&self, projection: &str) -> Result<(), Error> {
        self.store.reset(projection).await
    }

    async fn prepare(&self, projection: &str, indexes: &[Index]) -> Result<(), Error> {
        self.store.prepare(projection, indexes).await
    }

    async fn alias(&self, alias: &str) -> Result<Option<String>, Error> {
        self.store.alias(alias).await
    }

    async fn set_alias(&self, alias: &str, target: &str) -> Result<(), Error> {
        self.store.set_alias(alias, target).await?;
        crate::memory::lock(&self.resolved)
            .insert(alias.to_owned(), (target.to_owned(), Instant::now()));
        Ok(())
    }
}

/// What a [`cut_over`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CutOver {
    /// The name readers use.
    pub alias: String,
    /// The read model it pointed to before, now dropped.
    pub previous: String,
    /// The read model it points to now.
    pub current: String,
}

/// How long a [`cut_over`] may wait, and how long it keeps the old version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CutOverOptions {
    /// The longest wait for the new version to reach the head (default 60 s). A new
    /// version that stalls makes the cut-over fail with [`Error::Timeout`], changing
    /// nothing.
    pub deadline: Duration,
    /// How long readers may go on reading the old version after the switch before it
    /// is dropped (default 2 s): longer than the readers' [`Aliased`] refresh
    /// interval, and than the longest read in flight.
    pub grace: Duration,
}

impl Default for CutOverOptions {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(60),
            grace: Duration::from_secs(2),
        }
    }
}

impl CutOverOptions {
    /// Sets the longest wait for the new version to reach the head.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets how long the old version is kept after the switch.
    #[must_use]
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }
}

/// Switches readers of `alias` from the live version of a read model to a new one
/// built beside it, without a moment where they read nothing:
///
/// 1. waits, at most `options.deadline`, until `next` (a runner started
///    [`with_name`](crate::ProjectionRunner::with_name) on a new name) has applied
///    every event up to `head` (take it from [`LogReader::head`](crate::LogReader::head)
///    just before);
/// 2. points `alias` at `next`'s read model: readers switch, and runners under the
///    projection's name write there (those running, in this process or others,
///    follow the alias within a second; see [`ProjectionRunner::new`](crate::ProjectionRunner::new));
/// 3. stops `live`, the runner of the old version ([`ProjectionHandle::halt`]; `next`
///    goes on: it is the live one now);
/// 4. waits `options.grace` (longer than the readers' [`Aliased`] refresh interval,
///    and than the longest read in flight) and drops the old version.
///
/// Both versions are complete and current until the switch, so a reader sees either
/// the old one or the new one, never a half-built one. If it fails before the switch,
/// nothing changed and `live` still runs.
///
/// # Errors
/// [`Error::Timeout`] if `next` does not get to `head` within the deadline,
/// [`Error::Closed`] if it ended; [`Error::InvalidInput`] if `alias` already points
/// to `next`;
/// [`Error::Backend`] if the store fails (if the switch happened, the old version is
/// then left in place, to drop by hand with [`ReadModelWriter::reset`]).
pub async fn cut_over<S: ReadModelWriter>(
    store: &S,
    alias: &str,
    live: &ProjectionHandle,
    next: &ProjectionHandle,
    head: Position,
    options: CutOverOptions,
) -> Result<CutOver, Error> {
    next.wait_for_timeout(head, options.deadline).await?;
    let current = next.target();
    let previous = store
        .alias(alias)
        .await?
        .unwrap_or_else(|| alias.to_owned());
    if previous == current {
        return Err(Error::InvalidInput(format!(
            "`{alias}` already points to `{current}`"
        )));
    }
    store.set_alias(alias, &current).await?;
    tracing::info!(%alias, %previous, %current, "readers switched to the new version");
    live.halt().await;
    tokio::time::sleep(options.grace).await;
    store.reset(&previous).await?;
    tracing::info!(%previous, "old version dropped");
    Ok(CutOver {
        alias: alias.to_owned(),
        previous,
        current,
    })
}
