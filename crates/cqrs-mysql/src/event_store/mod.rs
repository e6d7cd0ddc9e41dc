//! [`MySqlEventStore`]: the core's event-store ports on MySQL / MariaDB.

mod append;
mod bulk;
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
}

impl std::fmt::Debug for MySqlEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlEventStore")
            .field("pool", &self.pool)
            .field("inline", &self.inline.len())
            .finish_non_exhaustive()
    }
}

impl MySqlEventStore {
    /// The default time between two polls of a subscription with nothing new.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(50);

    /// An event store on `pool`'s database (migrated with
    /// [`migrate`](crate::migrate)).
    pub fn new(pool: MySqlPool) -> Self {
        Self {
            wake: Arc::new(wake::Poller::new(Self::DEFAULT_POLL_INTERVAL)),
            pool,
            inline: Arc::new([]),
        }
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

    /// The pool.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }
}
