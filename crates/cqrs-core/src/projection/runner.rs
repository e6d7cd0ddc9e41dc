//! [`ProjectionRunner`]: feeds a projection from a subscription into a read-model store.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::{Projection, apply_batch};
use crate::error::Error;
use crate::event::{Position, RecordedEvent};
use crate::ports::{EventSubscriber, ReadModelStore};

/// Where a running projection is.
#[derive(Debug, Clone, PartialEq)]
struct Progress {
    /// The checkpoint: every event up to here is applied and committed.
    position: Position,
    /// Why the runner ended, once it has.
    ended: Option<String>,
}

/// Feeds a [`Projection`] from an [`EventSubscriber`] into a [`ReadModelStore`]:
/// subscribes from the stored checkpoint, applies each batch, and commits the
/// documents with the new checkpoint. After a restart it resumes from the checkpoint;
/// events it sees again are skipped, per document, by their position.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # use cqrs_core::{Envelope, Event, Projection};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Serialize, Deserialize)]
/// # enum Ev { Happened }
/// # impl Event for Ev {
/// #     const TYPES: &'static [&'static str] = &["Happened"];
/// #     fn event_type(&self) -> &'static str { "Happened" }
/// # }
/// # struct Count;
/// # impl Projection for Count {
/// #     const NAME: &'static str = "count";
/// #     type Event = Ev;
/// #     type Document = u64;
/// #     fn document_ids(&self, _: &Envelope<Ev>) -> Vec<String> { vec!["all".into()] }
/// #     fn apply(&self, _: &str, doc: &mut Option<u64>, _: &Envelope<Ev>) { *doc.get_or_insert(0) += 1 }
/// # }
/// use cqrs_core::{AppendRequest, EventAppender, ExpectedVersion, MemoryEventStore,
///     MemoryReadModelStore, Metadata, NewEvent, ProjectionRunner, ReadModelReader};
///
/// let events = MemoryEventStore::new();
/// let read_models = MemoryReadModelStore::new();
/// let handle = ProjectionRunner::new(Count, events.clone(), read_models.clone()).spawn();
///
/// let new = NewEvent::encode(&Ev::Happened, Metadata::new()).unwrap();
/// let appended = events
///     .append(AppendRequest::new("thing-1", ExpectedVersion::Any, vec![new]))
///     .await
///     .unwrap();
///
/// // Read your own write: wait until the projection has applied the event.
/// handle.wait_for(appended.position.unwrap()).await.unwrap();
/// let doc = read_models.get("count", "all").await.unwrap().unwrap();
/// assert_eq!(doc.value, serde_json::json!(1));
/// handle.stop().await.unwrap();
/// # });
/// ```
pub struct ProjectionRunner<P, Src, S> {
    projection: Arc<P>,
    source: Src,
    store: S,
    name: String,
    batch_size: usize,
    max_backoff: Duration,
}

impl<P, Src, S> std::fmt::Debug for ProjectionRunner<P, Src, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionRunner")
            .field("name", &self.name)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl<P, Src, S> ProjectionRunner<P, Src, S>
where
    P: Projection,
    Src: EventSubscriber + 'static,
    S: ReadModelStore + 'static,
{
    /// The default number of events per batch.
    pub const DEFAULT_BATCH_SIZE: usize = 500;

    /// A runner of `projection`, reading from `source` and writing to `store` under
    /// the name [`P::NAME`](Projection::NAME).
    pub fn new(projection: P, source: Src, store: S) -> Self {
        Self {
            projection: Arc::new(projection),
            source,
            store,
            name: P::NAME.to_owned(),
            batch_size: Self::DEFAULT_BATCH_SIZE,
            max_backoff: Duration::from_secs(5),
        }
    }

    /// Writes under `name` instead of `P::NAME` (for a new version built beside the
    /// live one).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the most events applied and committed at once (at least 1).
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Sets the longest wait between retries after a backend error (default 5 s).
    #[must_use]
    pub fn with_max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// The name the read model and checkpoint are stored under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Removes the read model and its checkpoint, so the next run rebuilds it from
    /// the first event.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails.
    pub async fn reset(&self) -> Result<(), Error> {
        tracing::info!(projection = %self.name, "resetting projection for a rebuild");
        self.store.reset(&self.name).await
    }

    /// Resets the read model and starts the runner: a rebuild from position 0.
    ///
    /// # Errors
    /// [`Error::Backend`] if the reset fails.
    pub async fn rebuild(self) -> Result<ProjectionHandle, Error> {
        self.reset().await?;
        Ok(self.spawn())
    }

    /// Applies one batch and commits it with the new checkpoint. Events at or
    /// before `checkpoint` are skipped. Returns the new checkpoint.
    ///
    /// # Errors
    /// [`Error::Codec`] if an event or document cannot be decoded, [`Error::Backend`]
    /// if the store fails.
    pub async fn apply(
        &self,
        checkpoint: Position,
        batch: &[RecordedEvent],
    ) -> Result<Position, Error> {
        let fresh = batch.partition_point(|e| e.position <= checkpoint);
        let batch = &batch[fresh..];
        let Some(last) = batch.last().map(|e| e.position) else {
            return Ok(checkpoint);
        };
        let changes = apply_batch(&*self.projection, &self.store, &self.name, batch).await?;
        let documents = changes.len();
        self.store.commit(&self.name, changes, last).await?;
        tracing::debug!(events = batch.len(), documents, position = %last, "batch committed");
        Ok(last)
    }

    /// Runs in a new task until stopped; the handle reports progress.
    pub fn spawn(self) -> ProjectionHandle {
        let (progress, receiver) = watch::channel(Progress {
            position: Position::START,
            ended: None,
        });
        let (stop, stopped) = watch::channel(false);
        let name = self.name.clone();
        let span = tracing::info_span!("projection", projection = %name);
        let task = tokio::spawn(
            async move {
                let result = self.run(&progress, stopped).await;
                let reason = match &result {
                    Ok(()) => "stopped".to_owned(),
                    Err(error) => {
                        tracing::error!(%error, "projection runner failed");
                        error.to_string()
                    }
                };
                progress.send_modify(|p| p.ended = Some(reason));
                result
            }
            .instrument(span),
        );
        ProjectionHandle {
            name,
            progress: receiver,
            stop,
            task,
        }
    }

    async fn run(
        &self,
        progress: &watch::Sender<Progress>,
        mut stopped: watch::Receiver<bool>,
    ) -> Result<(), Error> {
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.follow(progress, &mut stopped).await {
                Ok(()) => return Ok(()),
                Err(error @ Error::Backend { .. }) => {
                    tracing::warn!(%error, ?backoff, "backend error, resuming from the checkpoint");
                    tokio::select! {
                        _ = stopped.wait_for(|stop| *stop) => return Ok(()),
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.max_backoff);
                }
                Err(other) => return Err(other),
            }
        }
    }

    async fn follow(
        &self,
        progress: &watch::Sender<Progress>,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<(), Error> {
        let mut checkpoint = self.store.checkpoint(&self.name).await?;
        progress.send_modify(|p| p.position = checkpoint);
        tracing::info!(position = %checkpoint, "projection starting from its checkpoint");
        let mut stream = self.source.subscribe(checkpoint, self.batch_size);
        loop {
            let batch = tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => return Ok(()),
                batch = stream.next() => batch,
            };
            let Some(batch) = batch else {
                return Err(Error::Closed(format!(
                    "the event source of projection `{}` ended",
                    self.name
                )));
            };
            let batch = batch?;
            checkpoint = self.apply(checkpoint, &batch).await?;
            progress.send_modify(|p| p.position = checkpoint);
        }
    }
}

/// Controls a spawned [`ProjectionRunner`] and tells how far it is.
#[derive(Debug)]
pub struct ProjectionHandle {
    name: String,
    progress: watch::Receiver<Progress>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), Error>>,
}

impl ProjectionHandle {
    /// The projection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The checkpoint: every event up to it is applied and committed.
    pub fn position(&self) -> Position {
        self.progress.borrow().position
    }

    /// Waits until the projection has applied every event up to `position` (read
    /// your own writes: pass the position a command returned).
    ///
    /// # Errors
    /// [`Error::Closed`] if the runner ended before getting there.
    pub async fn wait_for(&self, position: Position) -> Result<(), Error> {
        let mut progress = self.progress.clone();
        let result = progress
            .wait_for(|p| p.position >= position || p.ended.is_some())
            .await
            .map(|p| p.clone());
        match result {
            Ok(p) if p.position >= position => Ok(()),
            Ok(p) => Err(Error::Closed(format!(
                "projection `{}` ended at {} ({}) before reaching {position}",
                self.name,
                p.position,
                p.ended.unwrap_or_default()
            ))),
            Err(_) => Err(Error::Closed(format!("projection `{}` is gone", self.name))),
        }
    }

    /// [`wait_for`](Self::wait_for) with a time limit.
    ///
    /// # Errors
    /// [`Error::Timeout`] if the limit passes first, [`Error::Closed`] if the runner
    /// ended.
    pub async fn wait_for_timeout(&self, position: Position, limit: Duration) -> Result<(), Error> {
        match tokio::time::timeout(limit, self.wait_for(position)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                projection: self.name.clone(),
                wanted: position,
                reached: self.position(),
            }),
        }
    }

    /// Whether the runner has ended (stopped or failed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the runner after the batch in progress, and returns how it ended.
    ///
    /// # Errors
    /// The error that ended the runner, if one did.
    pub async fn stop(self) -> Result<(), Error> {
        self.stop.send_replace(true);
        self.join().await
    }

    /// Stops the runner at once, at its next `.await`, without finishing the batch in
    /// progress: what a crash does. A batch whose commit did not complete is rolled
    /// back or, on a store without transactions, replayed harmlessly by the next
    /// runner, which resumes from the checkpoint.
    pub fn abort(self) {
        self.task.abort();
    }

    /// Waits for the runner to end on its own (it ends only on a fatal error or when
    /// its source closes).
    ///
    /// # Errors
    /// The error that ended it.
    pub async fn join(self) -> Result<(), Error> {
        match self.task.await {
            Ok(result) => result,
            Err(join) => Err(Error::Closed(format!(
                "projection `{}` task ended abnormally: {join}",
                self.name
            ))),
        }
    }
}
