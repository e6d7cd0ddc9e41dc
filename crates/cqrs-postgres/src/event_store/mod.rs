//! [`PgEventStore`]: every write-side port of `cqrs-core`, in PostgreSQL.

mod append;
mod bulk;
mod columns;
mod group;
mod read;
mod row;
mod snapshot;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use cqrs_core::Projection;

use crate::error::PgError;
use crate::inline::{Inline, InlineProjection};

/// An event store in PostgreSQL. Cheap to clone: clones share the pool.
///
/// * **Appends** take one round trip (the `cqrs_append` function): lock the stream,
///   check the command id and the expected version, insert the events, record the
///   command, `NOTIFY`. A conflict is [`cqrs_core::Error::Conflict`].
/// * **Reads of the global log never skip an event**: see the crate docs.
/// * **Subscriptions** catch up with pages of `read_all`, then wait for a `NOTIFY`
///   (or, at the latest, the poll interval) to read again.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use cqrs_postgres::PgEventStore;
///
/// let store = PgEventStore::connect("postgres://cqrs:cqrs@127.0.0.1:5432/cqrs").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgEventStore {
    pool: PgPool,
    poll_interval: Duration,
    notify: bool,
    group_workers: usize,
    group: Arc<std::sync::Mutex<Option<tokio::sync::mpsc::Sender<group::Job>>>>,
    /// Appends in progress, across this store's clones.
    pub(crate) in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// What group commit did, across this store's clones.
    pub(crate) group_counters: Arc<cqrs_core::GroupCommitCounters>,
    listen: Arc<crate::subscription::Listener>,
    inline: Arc<Vec<Arc<dyn InlineProjection>>>,
    /// The longest a call waits for the server.
    pub(crate) deadline: Duration,
}

impl std::fmt::Debug for PgEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEventStore")
            .field("poll_interval", &self.poll_interval)
            .field("deadline", &self.deadline)
            .field(
                "inline",
                &self
                    .inline
                    .iter()
                    .map(|p| p.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl PgEventStore {
    /// The default longest wait before a subscription at the head reads again
    /// without a notification.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

    /// The default number of group-commit transactions at once (see
    /// [`with_group_commit`](Self::with_group_commit)).
    pub const DEFAULT_GROUP_WORKERS: usize = 2;

    /// The default longest wait for the server on any call (see
    /// [`with_deadline`](Self::with_deadline)).
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

    /// A store over `pool`. Does not touch the schema: call
    /// [`migrate`](Self::migrate) once, or use [`connect`](Self::connect).
    pub fn new(pool: PgPool) -> Self {
        Self {
            listen: Arc::new(crate::subscription::Listener::new(pool.clone())),
            pool,
            poll_interval: Self::DEFAULT_POLL_INTERVAL,
            notify: true,
            group_workers: Self::DEFAULT_GROUP_WORKERS,
            group: Arc::default(),
            in_flight: Arc::default(),
            group_counters: Arc::default(),
            inline: Arc::default(),
            deadline: Self::DEFAULT_DEADLINE,
        }
    }

    /// Sets the longest any call (an append, a read, a snapshot, a group-commit
    /// transaction) waits for the server: 30 s by default. A connection that goes
    /// half-open mid-request never answers, and nothing in TCP says so for a long
    /// time; past the deadline the call fails with an [`Error::Backend`](cqrs_core::Error::Backend) for which
    /// [`is_timed_out`](cqrs_core::Error::is_timed_out) is true. An append cut off this way
    /// may have committed: retry it with the same command id.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self.group = Arc::default();
        self.in_flight = Arc::default();
        self.group_counters = Arc::default();
        self
    }

    /// Connects to `url` (a pool of up to 16 connections, see [`connect_pool`]) and
    /// applies the schema migrations.
    ///
    /// # Errors
    /// [`PgError::Connect`] if the server cannot be reached (at once for a refused
    /// connection, not after a pool timeout; the URL in the message has its password
    /// hidden), [`PgError::Migration`] if the schema cannot be prepared.
    ///
    /// [`connect_pool`]: crate::connect_pool
    pub async fn connect(url: &str) -> Result<Self, PgError> {
        let options = crate::pool::options(url)?;
        let pool = crate::connect_pool(options, 16).await?;
        let store = Self::new(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the schema migrations that are not applied yet.
    ///
    /// # Errors
    /// [`PgError::Migration`] naming the migration that failed.
    pub async fn migrate(&self) -> Result<(), PgError> {
        crate::migrate::migrate(&self.pool).await
    }

    /// Sets the longest wait before a subscription at the head reads again without
    /// a notification (default 500 ms). Notifications make new events arrive at
    /// once; the poll covers a notification lost while reconnecting, and events held
    /// back behind a transaction that was still open.
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Applies `projection` inline: in the transaction of every append, so its
    /// documents (in `cqrs_documents`, read with a
    /// [`PgReadModelStore`](crate::PgReadModelStore)) can never disagree with the
    /// events. Appends then take three round trips instead of one, and appends whose
    /// events change the same document wait for each other.
    ///
    /// The safe form of "the application writes both": one transaction, one
    /// database. Inline documents carry no checkpoint; do not also run the same
    /// projection, under the same name, with a runner.
    #[must_use]
    pub fn with_inline_projection<P: Projection>(self, projection: P) -> Self {
        self.with_inline_projection_named(projection, P::NAME)
    }

    /// [`with_inline_projection`](Self::with_inline_projection) under another name.
    #[must_use]
    pub fn with_inline_projection_named<P: Projection>(
        mut self,
        projection: P,
        name: impl Into<String>,
    ) -> Self {
        let mut inline: Vec<_> = self.inline.iter().cloned().collect();
        inline.push(Arc::new(Inline {
            projection,
            name: name.into(),
        }));
        self.inline = Arc::new(inline);
        self
    }

    /// Whether appends send `NOTIFY cqrs_events` (default: yes). A notification
    /// wakes subscriptions at once, but PostgreSQL takes a cluster-wide lock to queue
    /// it at commit, which serializes notifying transactions: in this repository's
    /// benches, turning it off raised throughput at 8 concurrent writers by about
    /// half. Without it, subscriptions find new events at their next poll (see
    /// [`with_poll_interval`](Self::with_poll_interval)).
    #[must_use]
    pub fn with_notifications(mut self, notify: bool) -> Self {
        self.notify = notify;
        // The group-commit workers notify as the store did when they started.
        self.group = Arc::default();
        self.in_flight = Arc::default();
        self.group_counters = Arc::default();
        self
    }

    /// Sets group commit to `workers` concurrent transactions (0 turns it off; on by
    /// default with [`DEFAULT_GROUP_WORKERS`](Self::DEFAULT_GROUP_WORKERS)). An
    /// append while no other of this store (and its clones) is in progress goes
    /// straight to the server through the single-append function. Appends that come
    /// while one is in progress are queued, and each worker runs every append
    /// waiting, up to 256, in one transaction and one round trip, so their commits
    /// share one WAL flush and one notification. Each append still succeeds or
    /// conflicts on its own. Not used for stores with inline projections (their
    /// appends keep their own transactions).
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
                self.notify,
                Arc::clone(&self.group_counters),
                self.deadline,
            ));
        }
        queue.clone()
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
