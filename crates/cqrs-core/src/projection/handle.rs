//! [`ProjectionHandle`]: controls a running projection and tells how far it is.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Projection, ReadModel};
use crate::error::Error;
use crate::event::Position;
use crate::ports::ReadModelReader;

/// Where a running projection is, and how fast it goes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProjectionStats {
    /// The read model written to (after alias resolution).
    pub target: String,
    /// The checkpoint: every event up to here is applied and committed.
    pub position: Position,
    /// Events applied and committed since the runner started.
    pub events: u64,
    /// Events per second over the last batches (about the last second of work).
    pub events_per_second: f64,
    /// How old the last applied event was when its batch was committed: how far the
    /// read model trails the write side, in time. `None` before the first batch.
    pub lag: Option<Duration>,
    /// How many records the source holds beyond what was applied, if it knows
    /// ([`EventSubscriber::backlog`](crate::EventSubscriber::backlog): a Kafka
    /// consumer's lag, in messages), taken after every batch and every second.
    pub backlog: Option<u64>,
    /// Whether the runner has read everything there was: its last batch was shorter
    /// than the batch size, or no batch came for a second (an empty or idle source),
    /// or the source reported a backlog of zero. A full batch makes it `false` again.
    pub caught_up: bool,
    /// Whether the runner holds its lease (always `true` without a lease).
    pub leader: bool,
    /// How many times another runner took the lease away (a renewal was refused).
    pub leases_lost: u64,
    /// How many times a renewal could not reach the lease store; the runner then
    /// stepped down, not knowing whether it still held the lease.
    pub lease_errors: u64,
    /// How many times a backend error made the runner resume from its checkpoint.
    pub retries: u64,
    /// The wait before the next retry, zero while the runner is healthy. It starts
    /// small, doubles with each failure in a row (with jitter) up to the maximum,
    /// and starts small again once a batch has gone through.
    pub backoff: Duration,
    /// Events set aside into the dead letters since the runner started
    /// ([`ProjectionRunner::with_dead_letters`](crate::ProjectionRunner::with_dead_letters)).
    pub set_aside: u64,
    /// The last error the runner retried after.
    pub last_error: Option<String>,
    /// Why the runner ended, once it has.
    pub ended: Option<String>,
}

impl ProjectionStats {
    pub(crate) fn new(target: String) -> Self {
        Self {
            target,
            position: Position::START,
            events: 0,
            events_per_second: 0.0,
            lag: None,
            backlog: None,
            set_aside: 0,
            caught_up: false,
            leader: false,
            leases_lost: 0,
            lease_errors: 0,
            retries: 0,
            backoff: Duration::ZERO,
            last_error: None,
            ended: None,
        }
    }
}

/// Controls a spawned [`ProjectionRunner`](crate::ProjectionRunner) and tells how far it is.
///
/// Dropping the handle stops the runner (after the batch in progress), as
/// [`stop`](Self::stop) does: keep it for as long as the projection should run.
#[derive(Debug)]
#[must_use = "dropping the handle stops the runner; keep it while the projection should run"]
pub struct ProjectionHandle {
    pub(crate) name: String,
    pub(crate) progress: watch::Receiver<ProjectionStats>,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) task: JoinHandle<Result<(), Error>>,
}

/// Waits until `progress` reaches `position`, or its runner ends.
pub(crate) async fn wait_for_progress(
    progress: &watch::Receiver<ProjectionStats>,
    name: &str,
    position: Position,
) -> Result<(), Error> {
    let mut progress = progress.clone();
    let result = progress
        .wait_for(|p| p.position >= position || p.ended.is_some())
        .await
        .map(|p| p.clone());
    match result {
        Ok(p) if p.position >= position => Ok(()),
        Ok(p) => Err(Error::Closed(format!(
            "projection `{name}` ended at {} ({}) before reaching {position}",
            p.position,
            p.ended.unwrap_or_default()
        ))),
        Err(_) => Err(Error::Closed(format!("projection `{name}` is gone"))),
    }
}

impl ProjectionHandle {
    /// How long [`wait_for`](Self::wait_for) waits.
    pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

    /// The projection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Position, throughput, lag and leadership, as of the last committed batch.
    pub fn stats(&self) -> ProjectionStats {
        self.progress.borrow().clone()
    }

    /// The read model the runner writes to: its name, or what the name is an alias of.
    pub fn target(&self) -> String {
        self.progress.borrow().target.clone()
    }

    /// The checkpoint: every event up to it is applied and committed.
    pub fn position(&self) -> Position {
        self.progress.borrow().position
    }

    /// A receiver of the runner's stats, which changes after every committed batch
    /// (and every second while idle): wait on it to learn when the read model moved,
    /// for example to push fresh documents to subscribed clients.
    pub fn progress(&self) -> watch::Receiver<ProjectionStats> {
        self.progress.clone()
    }

    /// A typed reader of the documents this runner writes, over `store` (the one the
    /// runner writes to, or a reader in front of it), whose waits follow this runner.
    pub fn read_model<P: Projection, R: ReadModelReader>(&self, store: R) -> ReadModel<P, R> {
        ReadModel::following(store, self.name.clone(), self.progress.clone())
    }

    /// Waits until the projection has applied every event up to `position` (read
    /// your own writes: pass the position a command returned), for at most
    /// [`DEFAULT_WAIT`](Self::DEFAULT_WAIT).
    ///
    /// # Errors
    /// [`Error::Timeout`] if it does not get there in time, [`Error::Closed`] if the
    /// runner ended before getting there.
    pub async fn wait_for(&self, position: Position) -> Result<(), Error> {
        self.wait_for_timeout(position, Self::DEFAULT_WAIT).await
    }

    /// [`wait_for`](Self::wait_for) with another time limit.
    ///
    /// # Errors
    /// [`Error::Timeout`] if the limit passes first, [`Error::Closed`] if the runner
    /// ended.
    pub async fn wait_for_timeout(&self, position: Position, limit: Duration) -> Result<(), Error> {
        let wait = wait_for_progress(&self.progress, &self.name, position);
        match tokio::time::timeout(limit, wait).await {
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

    /// Asks the runner to stop after the batch in progress and waits until it has
    /// ended, keeping the handle ([`join`](Self::join) it to learn how it ended).
    pub async fn halt(&self) {
        self.stop.send_replace(true);
        let mut progress = self.progress.clone();
        // An error means the runner is gone already: ended too.
        let _ = progress.wait_for(|p| p.ended.is_some()).await;
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
