//! [`ProjectionRunner`]: feeds a projection from a subscription into a read-model store.

mod dead_letters;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::watch;
use tracing::Instrument;

use super::handle::{ProjectionHandle, ProjectionStats};
use super::{Projection, ReadModel, apply_batch};
use crate::backoff::Backoff;
use crate::error::Error;
use crate::event::{Position, RecordedEvent};
use crate::ports::{DeadLetters, DynDeadLetters, DynLease, EventSubscriber, Lease, ReadModelStore};

struct DeadLetterConfig {
    sink: Arc<dyn DynDeadLetters>,
    attempts: u32,
}

struct LeaseConfig {
    lease: Arc<dyn DynLease>,
    ttl: Duration,
    holder: String,
}

/// How often the stats take the source's backlog while no batch comes.
const BACKLOG_REFRESH: Duration = Duration::from_secs(1);

/// Why [`ProjectionRunner::follow`] returned without an error.
enum Exit {
    Stopped,
    /// A renewal was refused: another runner holds the lease.
    LeaseLost,
    /// A renewal failed with a backend error: whether the lease is still held is
    /// unknown, so the runner steps down as if lost.
    LeaseUnknown(Error),
    /// The runner's name is now an alias of another read model (a cut-over, maybe in
    /// another process): it stops writing the old one and follows the alias.
    Retarget,
}

/// How waiting for the lease ended.
enum Lead {
    Leading,
    Stopped,
    Retarget,
}

/// Throughput over about the last second of batches.
struct Meter {
    window_start: Instant,
    window_events: u64,
    rate: f64,
}

impl Meter {
    fn new() -> Self {
        Self {
            window_start: Instant::now(),
            window_events: 0,
            rate: 0.0,
        }
    }

    fn record(&mut self, events: u64) -> f64 {
        self.window_events += events;
        let elapsed = self.window_start.elapsed();
        if elapsed >= Duration::from_secs(1) {
            #[allow(clippy::cast_precision_loss)]
            let rate = self.window_events as f64 / elapsed.as_secs_f64();
            self.rate = rate;
            self.window_start = Instant::now();
            self.window_events = 0;
        } else if self.rate == 0.0 && elapsed > Duration::ZERO {
            #[allow(clippy::cast_precision_loss)]
            let rate = self.window_events as f64 / elapsed.as_secs_f64();
            return rate;
        }
        self.rate
    }
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
/// # #[derive(Debug, Clone, Serialize, Deserialize, Event)]
/// # enum Ev { Happened }
/// # struct Count;
/// # impl Projection for Count {
/// #     const NAME: &'static str = "count";
/// #     type Event = Ev;
/// #     type Document = u64;
/// #     fn document_ids(&self, _: &Envelope<Ev>) -> Vec<String> { vec!["all".into()] }
/// #     fn apply(&self, _: &str, doc: &mut Option<u64>, _: &Envelope<Ev>) { *doc.get_or_insert(0) += 1 }
/// # }
/// use cqrs_core::{AppendRequest, EventAppender, ExpectedVersion, MemoryEventStore,
///     MemoryReadModelStore, Metadata, NewEvent, ProjectionRunner};
///
/// let events = MemoryEventStore::new();
/// let runner = ProjectionRunner::new(Count, events.clone(), MemoryReadModelStore::new());
/// let count = runner.read_model();
/// let handle = runner.spawn();
///
/// let new = NewEvent::encode(&Ev::Happened, Metadata::new()).unwrap();
/// let appended = events
///     .append(AppendRequest::new("thing-1", ExpectedVersion::Any, vec![new]))
///     .await
///     .unwrap();
///
/// // Read your own write: wait (10 s at most) until the projection has applied it.
/// if let Some(position) = appended.position {
///     count.wait_for(position).await.unwrap();
/// }
/// assert_eq!(count.get("all").await.unwrap(), Some(1));
/// handle.stop().await.unwrap();
/// # });
/// ```
pub struct ProjectionRunner<P, Src, S> {
    projection: Arc<P>,
    source: Src,
    store: S,
    name: String,
    follow_alias: bool,
    batch_size: usize,
    max_backoff: Duration,
    lease: Option<LeaseConfig>,
    dead_letters: Option<DeadLetterConfig>,
    progress: watch::Sender<ProjectionStats>,
}

impl<P, Src, S> std::fmt::Debug for ProjectionRunner<P, Src, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionRunner")
            .field("name", &self.name)
            .field("follow_alias", &self.follow_alias)
            .field("batch_size", &self.batch_size)
            .field("lease", &self.lease.as_ref().map(|l| (&l.holder, l.ttl)))
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
    /// the name [`P::NAME`](Projection::NAME), or, if that name is an alias (after a
    /// [`cut_over`](crate::cut_over)), to the read model it points to. When the alias
    /// moves (a cut-over, maybe in another process), the runner follows it within a
    /// second: it stops writing the old read model, releases its lease, takes the
    /// new one's and resumes from the new one's checkpoint. A standby waiting for the
    /// old one's lease follows too. (This costs one alias lookup a second.)
    pub fn new(projection: P, source: Src, store: S) -> Self {
        Self {
            projection: Arc::new(projection),
            source,
            store,
            name: P::NAME.to_owned(),
            follow_alias: true,
            batch_size: Self::DEFAULT_BATCH_SIZE,
            max_backoff: Duration::from_secs(5),
            lease: None,
            dead_letters: None,
            progress: watch::channel(ProjectionStats::new(P::NAME.to_owned())).0,
        }
    }

    /// A typed reader of the read model this runner writes, whose waits follow this
    /// runner (before and after [`spawn`](Self::spawn)).
    pub fn read_model(&self) -> ReadModel<P, S>
    where
        S: Clone,
    {
        ReadModel::following(
            self.store.clone(),
            self.name.clone(),
            self.progress.subscribe(),
        )
    }

    /// Writes to the read model `name` instead, whatever aliases say (for a new
    /// version built beside the live one).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self.follow_alias = false;
        let name = self.name.clone();
        self.progress.send_modify(|p| p.target = name);
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

    /// Runs only while holding `lease` (named after the read model written to), so that one
    /// runner at a time drives the projection: the runner takes it before reading,
    /// renews it every third of `ttl`, goes back to waiting if a renewal fails, and
    /// releases it when stopped. `ttl` should be longer than the slowest batch commit;
    /// a crashed runner's lease is free again after `ttl`.
    #[must_use]
    pub fn with_lease(mut self, lease: impl Lease + 'static, ttl: Duration) -> Self {
        self.lease = Some(LeaseConfig {
            lease: Arc::new(lease),
            ttl: ttl.max(Duration::from_millis(30)),
            holder: uuid::Uuid::now_v7().to_string(),
        });
        self
    }

    /// Sets aside, into `dead_letters`, an event the runner cannot apply, and goes on
    /// (without this, such an event stops the runner, or makes it retry forever):
    ///
    /// * an event that cannot be decoded or upcast ([`Error::Codec`] naming its
    ///   position) at once: it would fail the same way every time;
    /// * an event whose changes the store keeps refusing: after `attempts` failures
    ///   in a row without progress (each after the usual backoff), the runner applies
    ///   the next batch one event at a time, and sets aside an event that fails alone
    ///   *while the store answers* (its checkpoint can be read). While the store does
    ///   not answer at all, nothing is set aside: the runner keeps retrying, as an
    ///   outage must not cost events.
    ///
    /// The checkpoint then moves past the event; the read model lacks its effect
    /// until the projection is fixed and rebuilt (a
    /// [`cut_over`](crate::cut_over)). [`ProjectionStats::set_aside`] counts them.
    #[must_use]
    pub fn with_dead_letters(
        mut self,
        dead_letters: impl DeadLetters + 'static,
        attempts: u32,
    ) -> Self {
        self.dead_letters = Some(DeadLetterConfig {
            sink: Arc::new(dead_letters),
            attempts: attempts.max(1),
        });
        self
    }

    /// The name the runner was given (its projection's, or
    /// [`with_name`](Self::with_name)'s). The read model it writes to is this, or what
    /// this is an alias of; see [`ProjectionHandle::target`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The read model written to: the name, or what it is an alias of.
    async fn target(&self) -> Result<String, Error> {
        if !self.follow_alias {
            return Ok(self.name.clone());
        }
        Ok(self
            .store
            .alias(&self.name)
            .await?
            .unwrap_or_else(|| self.name.clone()))
    }

    /// Removes the read model and its checkpoint, so the next run rebuilds it from
    /// the first event.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails.
    pub async fn reset(&self) -> Result<(), Error> {
        let target = self.target().await?;
        tracing::info!(projection = %self.name, %target, "resetting projection for a rebuild");
        self.store.reset(&target).await
    }

    /// Resets the read model and starts the runner: a rebuild from position 0.
    ///
    /// # Errors
    /// [`Error::Backend`] if the reset fails.
    #[must_use = "dropping the handle stops the runner"]
    pub async fn rebuild(self) -> Result<ProjectionHandle, Error> {
        self.reset().await?;
        Ok(self.spawn())
    }

    /// Applies one batch to the read model [`name`](Self::name) (no alias is
    /// followed) and commits it with the new checkpoint. Events at or before
    /// `checkpoint` are skipped. Returns the new checkpoint.
    ///
    /// # Errors
    /// [`Error::Codec`] if an event or document cannot be decoded, [`Error::Backend`]
    /// if the store fails.
    pub async fn apply(
        &self,
        checkpoint: Position,
        batch: &[RecordedEvent],
    ) -> Result<Position, Error> {
        self.apply_to(&self.name, checkpoint, batch).await
    }

    async fn apply_to(
        &self,
        target: &str,
        checkpoint: Position,
        batch: &[RecordedEvent],
    ) -> Result<Position, Error> {
        let through = batch.last().map_or(checkpoint, |e| e.position);
        self.apply_through(target, checkpoint, batch, through).await
    }

    /// Applies the events of `batch` after `checkpoint` and commits them with the
    /// checkpoint `through` (past events set aside from the batch, if any).
    async fn apply_through(
        &self,
        target: &str,
        checkpoint: Position,
        batch: &[RecordedEvent],
        through: Position,
    ) -> Result<Position, Error> {
        if through <= checkpoint {
            return Ok(checkpoint);
        }
        let fresh = batch.partition_point(|e| e.position <= checkpoint);
        let batch = &batch[fresh..];
        let changes = if batch.is_empty() {
            Vec::new()
        } else {
            apply_batch(&*self.projection, &self.store, target, batch).await?
        };
        let documents = changes.len();
        self.store.commit(target, changes, through).await?;
        tracing::debug!(events = batch.len(), documents, position = %through, "batch committed");
        Ok(through)
    }

    /// Runs in a new task until stopped; the handle reports progress. Dropping the
    /// handle stops the runner.
    #[must_use = "dropping the handle stops the runner; keep it while the projection should run"]
    pub fn spawn(self) -> ProjectionHandle {
        let receiver = self.progress.subscribe();
        let (stop, stopped) = watch::channel(false);
        let name = self.name.clone();
        let span = tracing::info_span!("projection", projection = %name);
        let task = tokio::spawn(
            async move {
                let result = self.run(stopped).await;
                let reason = match &result {
                    Ok(()) => "stopped".to_owned(),
                    Err(error) => {
                        tracing::error!(%error, "projection runner failed");
                        error.to_string()
                    }
                };
                self.progress.send_modify(|p| {
                    p.ended = Some(reason);
                    p.leader = false;
                });
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

    async fn run(&self, mut stopped: watch::Receiver<bool>) -> Result<(), Error> {
        let progress = &self.progress;
        let mut backoff = Backoff::new(Duration::from_millis(50), self.max_backoff);
        // Backend failures in a row without progress: past the dead letters' attempts,
        // the next batch is applied one event at a time.
        let mut stuck = 0u32;
        loop {
            let before = progress.borrow().events;
            let isolate = self
                .dead_letters
                .as_ref()
                .is_some_and(|dead| stuck >= dead.attempts);
            let outcome = match self.target().await {
                Ok(target) => {
                    match self.lead(&target, progress, &mut stopped).await? {
                        Lead::Leading => {}
                        Lead::Stopped => return Ok(()),
                        Lead::Retarget => continue,
                    }
                    let outcome = self.follow(&target, progress, &mut stopped, isolate).await;
                    if !matches!(
                        outcome,
                        Ok(Exit::LeaseLost | Exit::LeaseUnknown(_)) | Err(Error::Backend { .. })
                    ) {
                        self.release(&target).await;
                    }
                    outcome
                }
                Err(error) => Err(error),
            };
            if progress.borrow().events > before || isolate {
                // Batches went through since the last failure: start small again.
                backoff.reset();
                stuck = 0;
            }
            match outcome {
                Ok(Exit::Stopped) => return Ok(()),
                Ok(Exit::Retarget) => {
                    tracing::info!(name = %self.name, "the alias moved (a cut-over); following it");
                    progress.send_modify(|p| p.leader = false);
                }
                Ok(Exit::LeaseLost) => {
                    tracing::warn!("lease lost: another runner took it over; waiting for it again");
                    progress.send_modify(|p| {
                        p.leader = false;
                        p.leases_lost += 1;
                    });
                }
                Ok(Exit::LeaseUnknown(error)) => {
                    tracing::warn!(
                        %error,
                        "cannot reach the lease store to renew the lease; stepping down until it answers"
                    );
                    progress.send_modify(|p| {
                        p.leader = false;
                        p.lease_errors += 1;
                        p.last_error = Some(error.to_string());
                    });
                }
                Err(error @ Error::Backend { .. }) => {
                    stuck = stuck.saturating_add(1);
                    let wait = backoff.fail();
                    tracing::warn!(%error, ?wait, "backend error, resuming from the checkpoint");
                    progress.send_modify(|p| {
                        p.retries += 1;
                        p.backoff = wait;
                        p.last_error = Some(error.to_string());
                    });
                    tokio::select! {
                        _ = stopped.wait_for(|stop| *stop) => return Ok(()),
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                Err(other) => return Err(other),
            }
        }
    }

    async fn release(&self, target: &str) {
        if let Some(lease) = &self.lease {
            if let Err(error) = lease.lease.release(target, &lease.holder).await {
                tracing::warn!(%error, "could not release the lease; it will expire");
            }
        }
    }

    /// Whether the runner's name now points to another read model than `target`.
    async fn retargeted(&self, target: &str) -> Result<bool, Error> {
        Ok(self.follow_alias && self.target().await? != target)
    }

    /// Waits until this runner holds its lease (at once without one), unless it is
    /// stopped or its alias moves first.
    async fn lead(
        &self,
        target: &str,
        progress: &watch::Sender<ProjectionStats>,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<Lead, Error> {
        let Some(lease) = &self.lease else {
            progress.send_modify(|p| p.leader = true);
            return Ok(Lead::Leading);
        };
        let mut waiting = false;
        loop {
            match lease.lease.acquire(target, &lease.holder, lease.ttl).await {
                Ok(true) => {
                    tracing::info!(holder = %lease.holder, "lease taken");
                    progress.send_modify(|p| p.leader = true);
                    return Ok(Lead::Leading);
                }
                Ok(false) if !waiting => {
                    tracing::info!("another runner holds the lease; waiting");
                    waiting = true;
                }
                Ok(false) => {}
                Err(error @ Error::Backend { .. }) => {
                    tracing::warn!(%error, "cannot reach the lease store; retrying");
                }
                Err(other) => return Err(other),
            }
            tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => return Ok(Lead::Stopped),
                () = tokio::time::sleep(lease.ttl / 3) => {}
            }
            // A standby waiting for the old read model's lease follows a cut-over
            // instead.
            match self.retargeted(target).await {
                Ok(true) => return Ok(Lead::Retarget),
                Ok(false) => {}
                Err(error @ Error::Backend { .. }) => {
                    tracing::warn!(%error, "cannot read the alias; retrying");
                }
                Err(other) => return Err(other),
            }
        }
    }

    async fn follow(
        &self,
        target: &str,
        progress: &watch::Sender<ProjectionStats>,
        stopped: &mut watch::Receiver<bool>,
        mut isolate: bool,
    ) -> Result<Exit, Error> {
        // The lease may have been taken just after a cut-over moved the alias: then
        // nothing is written to the old read model.
        if self.retargeted(target).await? {
            return Ok(Exit::Retarget);
        }
        self.store
            .prepare(target, &self.projection.indexes())
            .await?;
        let mut checkpoint = self.store.checkpoint(target).await?;
        progress.send_modify(|p| {
            p.position = checkpoint;
            target.clone_into(&mut p.target);
        });
        tracing::info!(position = %checkpoint, %target, "projection starting from its checkpoint");
        let mut stream = self.source.subscribe(checkpoint, self.batch_size);
        let renew_every = self
            .lease
            .as_ref()
            .map_or(Duration::from_secs(3600), |l| l.ttl / 3);
        let mut renewal = tokio::time::interval(renew_every);
        // After a long batch, renew once, not once per missed tick.
        renewal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        renewal.tick().await;
        let mut meter = Meter::new();
        // The source's backlog also changes while no batch comes (a consumer's lag
        // falls once its offsets are committed): the stats follow it every second.
        // It also tells when a source with nothing to deliver has been caught up
        // with: no batch for a whole period (or a backlog of zero) means the runner
        // has read everything there is, even if no batch ever came (an empty store).
        let mut refresh = tokio::time::interval_at(
            tokio::time::Instant::now() + BACKLOG_REFRESH,
            BACKLOG_REFRESH,
        );
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batches_since_refresh = 0_u64;
        let mut check_alias = false;
        loop {
            // A cut-over elsewhere moves the alias: seen within a second.
            if std::mem::take(&mut check_alias) && self.retargeted(target).await? {
                return Ok(Exit::Retarget);
            }
            let batch = tokio::select! {
                // In this order: once stopped (or retargeted), no further batch.
                biased;
                _ = stopped.wait_for(|stop| *stop) => return Ok(Exit::Stopped),
                _ = refresh.tick() => {
                    check_alias = true;
                    let backlog = self.source.backlog();
                    let idle = std::mem::take(&mut batches_since_refresh) == 0;
                    progress.send_if_modified(|p| {
                        let caught_up = p.caught_up
                            || backlog == Some(0)
                            || (backlog.is_none() && idle);
                        let changed = p.backlog != backlog || p.caught_up != caught_up;
                        p.backlog = backlog;
                        p.caught_up = caught_up;
                        changed
                    });
                    continue;
                }
                _ = renewal.tick() => None,
                batch = stream.next() => Some(batch),
            };
            let Some(batch) = batch else {
                if let Some(lease) = &self.lease {
                    match lease.lease.acquire(target, &lease.holder, lease.ttl).await {
                        Ok(true) => {}
                        Ok(false) => return Ok(Exit::LeaseLost),
                        Err(error) => return Ok(Exit::LeaseUnknown(error)),
                    }
                }
                continue;
            };
            let Some(batch) = batch else {
                return Err(Error::Closed(format!(
                    "the event source of projection `{}` ended",
                    self.name
                )));
            };
            let batch = batch?;
            batches_since_refresh += 1;
            let before = checkpoint;
            let one_by_one = std::mem::take(&mut isolate);
            checkpoint = self
                .apply_guarded(target, checkpoint, &batch, one_by_one, progress)
                .instrument(batch_span(&batch))
                .await?;
            let applied = batch.iter().filter(|e| e.position > before).count() as u64;
            let rate = meter.record(applied);
            let lag = batch
                .last()
                .and_then(|e| (chrono::Utc::now() - e.recorded_at).to_std().ok());
            let caught_up = batch.len() < self.batch_size;
            let backlog = self.source.backlog();
            progress.send_modify(|p| {
                p.backlog = backlog;
                p.position = checkpoint;
                p.backoff = Duration::ZERO;
                p.events += applied;
                p.events_per_second = rate;
                p.lag = lag.or(p.lag);
                p.caught_up = caught_up;
            });
            tracing::debug!(
                position = %checkpoint,
                events = applied,
                events_per_second = rate,
                lag_ms = lag.map_or(0, |l| u64::try_from(l.as_millis()).unwrap_or(u64::MAX)),
                caught_up,
                backlog,
                "projection progress"
            );
        }
    }
}

/// The span of one batch: its positions and the correlation ids of its events (the
/// first few distinct ones), so a trace leads from the request that wrote an event
/// to the batch that applied it.
fn batch_span(batch: &[RecordedEvent]) -> tracing::Span {
    let span = tracing::info_span!(
        "batch",
        from = tracing::field::Empty,
        to = tracing::field::Empty,
        correlation = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    if let (Some(first), Some(last)) = (batch.first(), batch.last()) {
        span.record("from", first.position.0);
        span.record("to", last.position.0);
    }
    let mut ids: Vec<uuid::Uuid> = Vec::new();
    for id in batch.iter().filter_map(|e| e.metadata.correlation_id) {
        if !ids.contains(&id) {
            ids.push(id);
            if ids.len() == 8 {
                break;
            }
        }
    }
    if !ids.is_empty() {
        let joined: Vec<String> = ids.iter().map(ToString::to_string).collect();
        span.record("correlation", tracing::field::display(joined.join(",")));
    }
    span
}
