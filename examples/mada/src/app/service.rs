//! [`PlannerService`]: the planner behind one object-safe trait, so the server is
//! compiled once for every combination of stores.

use std::time::Duration;

use cqrs_core::{EventStore, EventSubscriber, Metadata, Position, ProjectionStats, ReadModelStore};
use futures::future::BoxFuture;
use tokio::sync::watch;

use super::{Command, Planner, PlannerError, Receipt};
use crate::domain::Profile;
use crate::projections::{CategoryList, Plan};

/// What the server needs of a planner, whatever its stores.
///
/// Implemented by every [`Planner`]; the GraphQL API holds an
/// `Arc<dyn PlannerService>`.
pub trait PlannerService: Send + Sync + 'static {
    /// [`Planner::run_with`].
    fn run<'a>(
        &'a self,
        user: &'a str,
        command: Command,
        metadata: Metadata,
    ) -> BoxFuture<'a, Result<Receipt, PlannerError>>;

    /// [`Planner::wait_for`].
    fn wait_for(&self, token: Position, limit: Duration)
    -> BoxFuture<'_, Result<(), PlannerError>>;

    /// [`Planner::categories_now`].
    fn categories<'a>(&'a self, user: &'a str)
    -> BoxFuture<'a, Result<CategoryList, PlannerError>>;

    /// [`Planner::settings`].
    fn settings<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<Profile, PlannerError>>;

    /// [`Planner::plan_now`].
    fn plan<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<Plan, PlannerError>>;

    /// Checks that the event store answers (its head) and returns it.
    fn head(&self) -> BoxFuture<'_, Result<Position, PlannerError>>;

    /// [`Planner::stats`].
    fn stats(&self) -> Vec<ProjectionStats>;

    /// A waiter for the next change of any read model.
    fn changes(&self) -> Changes;

    /// [`Planner::halt`].
    fn halt(&self) -> BoxFuture<'_, ()>;
}

/// Tells when a read model has moved: wakes after any projection's position moved
/// (or, without projections in process, after the log or the read models'
/// checkpoints moved), including moves made while the caller was busy between two
/// waits.
#[derive(Debug, Clone)]
pub struct Changes {
    progress: Vec<watch::Receiver<ProjectionStats>>,
    /// The positions the projections had when this waiter was made or last woke:
    /// kept between calls, so that a batch committed while the caller was reading
    /// (after a wake, before the next call) still wakes the next call.
    seen: Vec<Position>,
    log: Option<watch::Receiver<Position>>,
}

impl Changes {
    pub(super) fn new(
        progress: Vec<watch::Receiver<ProjectionStats>>,
        log: Option<watch::Receiver<Position>>,
    ) -> Self {
        let seen = progress.iter().map(|p| p.borrow().position).collect();
        Self {
            progress,
            seen,
            log,
        }
    }

    /// Waits until a projection reached a position it had not reached when this
    /// waiter was made or last woke. Returns `false` once the projections are gone
    /// (the planner shut down).
    pub async fn next(&mut self) -> bool {
        if let Some(log) = &mut self.log {
            // A watch remembers what this receiver has seen: a value sent while
            // the caller was busy makes this return at once.
            return log.changed().await.is_ok();
        }
        if self.progress.is_empty() {
            return false;
        }
        loop {
            let now: Vec<Position> = self.progress.iter().map(|p| p.borrow().position).collect();
            if now.iter().zip(&self.seen).any(|(now, seen)| now > seen) {
                self.seen = now;
                return true;
            }
            let waits = self.progress.iter_mut().map(|p| Box::pin(p.changed()));
            let (changed, _, _) = futures::future::select_all(waits).await;
            if changed.is_err() {
                return false;
            }
        }
    }
}

impl<S, P, K> PlannerService for Planner<S, P, K>
where
    S: EventStore + EventSubscriber + Clone + Send + Sync + 'static,
    P: ReadModelStore + Clone + Send + Sync + 'static,
    K: ReadModelStore + Clone + Send + Sync + 'static,
{
    fn run<'a>(
        &'a self,
        user: &'a str,
        command: Command,
        metadata: Metadata,
    ) -> BoxFuture<'a, Result<Receipt, PlannerError>> {
        Box::pin(self.run_with(user, command, metadata))
    }

    fn wait_for(
        &self,
        token: Position,
        limit: Duration,
    ) -> BoxFuture<'_, Result<(), PlannerError>> {
        Box::pin(Planner::wait_for(self, token, limit))
    }

    fn categories<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, Result<CategoryList, PlannerError>> {
        Box::pin(self.categories_now(user))
    }

    fn settings<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<Profile, PlannerError>> {
        Box::pin(Planner::settings(self, user))
    }

    fn plan<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<Plan, PlannerError>> {
        Box::pin(self.plan_now(user))
    }

    fn head(&self) -> BoxFuture<'_, Result<Position, PlannerError>> {
        Box::pin(async move { Ok(self.goals.store().head().await?) })
    }

    fn stats(&self) -> Vec<ProjectionStats> {
        Planner::stats(self)
    }

    fn changes(&self) -> Changes {
        Changes::new(
            self.projections.iter().map(|h| h.progress()).collect(),
            self.follower.as_ref().map(|f| f.moved.clone()),
        )
    }

    fn halt(&self) -> BoxFuture<'_, ()> {
        Box::pin(Planner::halt(self))
    }
}
