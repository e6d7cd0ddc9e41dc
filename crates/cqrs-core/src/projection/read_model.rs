//! [`ReadModel`]: a typed reader of one projection's documents.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::time::Duration;

use tokio::sync::watch;

use super::Projection;
use super::handle::{ProjectionStats, wait_for_progress};
use crate::error::Error;
use crate::event::Position;
use crate::ports::{ReadModelReader, ReadModelWriter};
use crate::repository::CommandOutcome;

/// Reads the documents of one projection as its own type, `P::Document`, and waits
/// until they include a write (read your own writes), with a deadline by default.
///
/// Get one from the runner that keeps it up to date
/// ([`ProjectionRunner::read_model`](crate::ProjectionRunner::read_model)) or its
/// handle ([`ProjectionHandle::read_model`](crate::ProjectionHandle::read_model)):
/// waits then follow the runner. A reader made with [`ReadModel::new`], in a process
/// that runs no runner of the projection, waits by polling the projection's
/// checkpoint in the store instead: read your writes across processes.
///
/// It reads the read model under its name as the store resolves it; wrap the store in
/// [`Aliased`](crate::Aliased) to follow [`cut_over`](crate::cut_over)s. Cheap to
/// clone when the store is.
pub struct ReadModel<P, R> {
    store: R,
    name: String,
    progress: Option<watch::Receiver<ProjectionStats>>,
    wait: Duration,
    poll: Duration,
    _projection: PhantomData<fn() -> P>,
}

impl<P, R: Clone> Clone for ReadModel<P, R> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            name: self.name.clone(),
            progress: self.progress.clone(),
            wait: self.wait,
            poll: self.poll,
            _projection: PhantomData,
        }
    }
}

impl<P, R> std::fmt::Debug for ReadModel<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadModel")
            .field("name", &self.name)
            .field("follows_runner", &self.progress.is_some())
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl<P: Projection, R: ReadModelReader> ReadModel<P, R> {
    /// How long a wait lasts by default before [`Error::Timeout`].
    pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

    /// A reader of [`P::NAME`](Projection::NAME) in `store`, with no runner to
    /// follow: waits poll the projection's checkpoint in the store.
    pub fn new(store: R) -> Self {
        Self::named(store, P::NAME)
    }

    /// A reader of the read model `name` (a version built beside the live one).
    pub fn named(store: R, name: impl Into<String>) -> Self {
        Self {
            store,
            name: name.into(),
            progress: None,
            wait: Self::DEFAULT_WAIT,
            poll: Duration::from_millis(20),
            _projection: PhantomData,
        }
    }

    pub(crate) fn following(
        store: R,
        name: String,
        progress: watch::Receiver<ProjectionStats>,
    ) -> Self {
        Self {
            progress: Some(progress),
            ..Self::named(store, name)
        }
    }

    /// Sets how long [`wait_for`](Self::wait_for) and
    /// [`wait_for_outcome`](Self::wait_for_outcome) wait (default 10 s).
    #[must_use]
    pub fn with_wait_timeout(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The name of the read model read.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store, for its own queries (for example a MongoDB filter).
    pub fn store(&self) -> &R {
        &self.store
    }

    /// The read model read now: the one the runner followed writes to (after
    /// aliases), or the name.
    pub fn target(&self) -> String {
        match &self.progress {
            Some(progress) => progress.borrow().target.clone(),
            None => self.name.clone(),
        }
    }

    /// The document `id`, decoded, if it exists.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails, [`Error::Codec`] (naming the projection
    /// and the document) if it cannot be decoded.
    pub async fn get(&self, id: &str) -> Result<Option<P::Document>, Error> {
        let target = self.target();
        match self.store.get(&target, id).await? {
            Some(stored) => decode::<P>(&target, id, stored.value).map(Some),
            None => Ok(None),
        }
    }

    /// The documents among `ids` that exist, decoded, in one round trip where the
    /// store allows. Deleted documents are left out.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub async fn get_many(&self, ids: &[String]) -> Result<HashMap<String, P::Document>, Error> {
        let target = self.target();
        let stored = self.store.get_many(&target, ids).await?;
        let mut documents = HashMap::with_capacity(stored.len());
        for (id, doc) in stored {
            if doc.value.is_null() {
                continue;
            }
            let document = decode::<P>(&target, &id, doc.value)?;
            documents.insert(id, document);
        }
        Ok(documents)
    }
}

impl<P: Projection, R: ReadModelReader + ReadModelWriter> ReadModel<P, R> {
    /// Waits until the read model includes every event up to `position`, for at most
    /// the wait timeout (10 s unless [`with_wait_timeout`](Self::with_wait_timeout)).
    ///
    /// # Errors
    /// [`Error::Timeout`] if it does not get there in time, [`Error::Closed`] if the
    /// runner followed ended first, [`Error::Backend`] if polling the store fails.
    pub async fn wait_for(&self, position: Position) -> Result<(), Error> {
        self.wait_for_timeout(position, self.wait).await
    }

    /// [`wait_for`](Self::wait_for) with another deadline.
    ///
    /// # Errors
    /// As [`wait_for`](Self::wait_for).
    pub async fn wait_for_timeout(&self, position: Position, limit: Duration) -> Result<(), Error> {
        let waited = match &self.progress {
            Some(progress) => {
                tokio::time::timeout(limit, wait_for_progress(progress, &self.name, position)).await
            }
            None => tokio::time::timeout(limit, self.poll_checkpoint(position)).await,
        };
        match waited {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                projection: self.name.clone(),
                wanted: position,
                reached: self.reached().await,
            }),
        }
    }

    /// Waits until the read model includes what a command wrote. Returns at once if
    /// the command appended nothing.
    ///
    /// # Errors
    /// As [`wait_for`](Self::wait_for).
    pub async fn wait_for_outcome<E>(&self, outcome: &CommandOutcome<E>) -> Result<(), Error> {
        match outcome.position {
            Some(position) => self.wait_for(position).await,
            None => Ok(()),
        }
    }

    async fn poll_checkpoint(&self, position: Position) -> Result<(), Error> {
        loop {
            if self.store.checkpoint(&self.name).await? >= position {
                return Ok(());
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    async fn reached(&self) -> Position {
        match &self.progress {
            Some(progress) => progress.borrow().position,
            None => self
                .store
                .checkpoint(&self.name)
                .await
                .unwrap_or(Position::START),
        }
    }
}

fn decode<P: Projection>(
    name: &str,
    id: &str,
    value: serde_json::Value,
) -> Result<P::Document, Error> {
    serde_json::from_value(value)
        .map_err(|e| Error::codec("document", e).in_projection(name, Some(id)))
}
