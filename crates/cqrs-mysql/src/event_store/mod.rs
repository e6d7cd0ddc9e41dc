//! [`MySqlEventStore`]: the core's event-store ports on MySQL / MariaDB.

mod append;
mod bulk;
mod group;
mod read;
mod snapshot;
mod wake;

pub(crate) use read::{EVENT_COLUMNS, EventRow, into_event, text};

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::Projection;
use sqlx::MySqlPool;

use crate::inline::{Inline, InlineProjection};

/// An event store in a MySQL / MariaDB database (InnoDB), created by
/// [`migrate`](crate::migrate).
///
/// Appends take a stream's row lock, then the log tail's, and commit in one round
/// trip (the `cqrs_append` procedure). Positions are dense and taken in commit
/// order, so a subscription never skips an event (see the crate docs for why and
/// what it costs). Subscriptions poll (every 50 ms by default, and at once after an
/// append through this value): MySQL has no notification channel.
///
/// Cheap to clone: clones share the pool and the poller.
#[derive(Clone)]
pub struct MySqlEventStore {
    pub(crate) pool: MySqlPool,
    wake: Arc<wake::Poller>,
    /// Projections applied in each append's transaction.
    inline: Arc<[Arc<dyn InlineProjection>]>,
    /// Group commit: how many transactions at once (0: off).
    group_workers: usize,
    /// The group-commit queue, started on first use.
    group: Arc<std::sync::Mutex<Option<tokio::sync::mpsc::Sender<group::Job>>>>,
    /// What group commit did, across this store's clones.
    group_counters: Arc<cqrs_core::GroupCommitCounters>,
    /// Appends in progress, across this store's clones.
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// The longest a call waits for the server.
    pub(crate) deadline: Duration,
}

impl std::fmt::Debug for MySqlEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlEventStore")
            .field("pool", &self.pool)
            .field("inline", &self.inline.len())
            .field("group_workers", &self.group_workers)
            .finish_non_exhaustive()
    }
}

impl MySqlEventStore {
    /// The default number of group-commit transactions at once (see
    /// [`with_group_commit`](Self::with_group_commit)).
    pub const DEFAULT_GROUP_WORKERS: usize = 2;

    /// The default time between two polls of a subscription with nothing new.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(50);

    /// The default longest wait for the server on any call (see
    /// [`with_deadline`](Self::with_deadline)).
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

    /// An event store on `pool`'s database (migrated with
    /// [`migrate`](crate::migrate)).
    pub fn new(pool: MySqlPool) -> Self {
        Self {
            wake: Arc::new(wake::Poller::new(Self::DEFAULT_POLL_INTERVAL)),
            pool,
            inline: Arc::new([]),
            group_workers: Self::DEFAULT_GROUP_WORKERS,
            group: Arc::default(),
            group_counters: Arc::default(),
            in_flight: Arc::default(),
            deadline: Self::DEFAULT_DEADLINE,
        }
    }

    /// Sets the longest any call (an append, a read, a snapshot, a group-commit
    /// transaction) waits for the server: 30 s by default. A connection that goes
    /// half-open mid-request never answers, and nothing in TCP says so for a long
    /// time; past the deadline the call fails with an
    /// [`Error::Backend`](cqrs_core::Error::Backend) for which
    /// [`is_timed_out`](cqrs_core::Error::is_timed_out) is true. An append cut off
    /// this way may have committed: retry it with the same command id.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self.group = Arc::default();
        self.in_flight = Arc::default();
        self.group_counters = Arc::default();
        self
    }

    /// Applies `projection` inline: its documents (in this database's read-model
    /// tables, as [`MySqlReadModelStore`](crate::MySqlReadModelStore) reads them)
    /// are written in the transaction of every append, so they are current when
    /// the append returns and can never disagree with the events. Run no
    /// [`ProjectionRunner`](cqrs_core::ProjectionRunner) of it beside.
    #[must_use]
    pub fn with_inline_projection<P: Projection + 'static>(mut self, projection: P) -> Self {
        let mut inline: Vec<Arc<dyn InlineProjection>> = self.inline.to_vec();
        inline.push(Arc::new(Inline(projection)));
        self.inline = inline.into();
        self
    }

    /// Sets the time between two polls of a subscription with nothing new (at
    /// least 1 ms).
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.wake = Arc::new(wake::Poller::new(interval.max(Duration::from_millis(1))));
        self
    }

    /// Sets group commit to `workers` concurrent transactions (0 turns it off; on
    /// by default with [`DEFAULT_GROUP_WORKERS`](Self::DEFAULT_GROUP_WORKERS)). An
    /// append while no other of this store (and its clones) is in progress goes
    /// straight to the server, in a transaction of its own. Appends that come while
    /// one is in progress are queued, and each worker sends every append waiting
    /// (up to 256, and 4 MiB of SQL) in one transaction and one round trip, so they
    /// share one commit: one flush of the redo log and binlog, one turn of the log
    /// tail's lock. Each append still succeeds, conflicts or fails on its own (a
    /// savepoint each); an error that ends the whole transaction (a deadlock, a lost
    /// connection) fails every append of its group with
    /// [`Error::Backend`](cqrs_core::Error::Backend). Not used with inline
    /// projections (their appends keep their own transactions). The crate docs give
    /// the measured effect.
    #[must_use]
    pub fn with_group_commit(mut self, workers: usize) -> Self {
        self.group_workers = workers;
        self.group = Arc::default();
        self.in_flight = Arc::default();
        self.group_counters = Arc::default();
        self
    }

    /// What group commit has done so far (all zero while it is off).
    pub fn group_commit_stats(&self) -> cqrs_core::GroupCommitStats {
        self.group_counters.stats()
    }

    /// The group-commit queue, started on first use (inside the Tokio runtime).
    fn group_queue(&self) -> Option<tokio::sync::mpsc::Sender<group::Job>> {
        if self.group_workers == 0 || !self.inline.is_empty() {
            return None;
        }
        let mut queue = self
            .group
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if queue
            .as_ref()
            .is_none_or(tokio::sync::mpsc::Sender::is_closed)
        {
            tokio::runtime::Handle::try_current().ok()?;
            *queue = Some(group::start(
                self.pool.clone(),
                self.group_workers,
                Arc::clone(&self.group_counters),
                self.deadline,
            ));
        }
        queue.clone()
    }

    /// The pool.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }
}
