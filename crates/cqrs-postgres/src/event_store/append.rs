//! Appending: [`EventAppender`] for [`PgEventStore`].

use std::sync::atomic::{AtomicUsize, Ordering};

use cqrs_core::{AppendRequest, AppendResult, Error, EventAppender};
use sqlx::PgExecutor;
use tracing::Instrument;

use super::PgEventStore;
use super::columns::{self, EventColumns};
use super::group::{Job, Outcome as GroupOutcome};
use super::row::AppendRow;

/// Calls `cqrs_append` for `request` on `executor` (the pool, or a transaction) and
/// turns its row into the port's result.
pub(super) async fn append_one<'e>(
    executor: impl PgExecutor<'e>,
    request: &AppendRequest,
    notify: bool,
) -> Result<AppendResult, Error> {
    let mut events = EventColumns::default();
    events.push(1, &request.events)?;
    let query = sqlx::query_as("SELECT * FROM cqrs_append($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(request.stream_id.as_str())
        .bind(columns::expected(request.expected)?)
        .bind(request.command_id);
    let row: AppendRow = events
        .bind(query)
        .bind(notify)
        .fetch_one(executor)
        .await
        .map_err(Error::backend_in("append"))?;
    row.into_result(&request.stream_id, request.expected)
}

impl PgEventStore {
    /// An append with the inline projections, all in one transaction.
    async fn append_inline(&self, request: &AppendRequest) -> Result<AppendResult, Error> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(Error::backend_in("append"))?;
        let result = append_one(&mut *tx, request, self.notify).await?;
        if !result.already_handled && result.position.is_some() {
            let events = request.recorded(&result);
            for projection in self.inline.iter() {
                projection.apply(&mut tx, &events).await?;
            }
        }
        // An error above drops the transaction: the events roll back with the
        // documents. Here both commit (with the command id, even for no event).
        tx.commit().await.map_err(Error::backend_in("append"))?;
        Ok(result)
    }
}

/// With group commit, how many appends in progress go straight to the server
/// before the next ones queue for a group. Measured (BENCHMARKS.md): at 8
/// concurrent appends the single-append path outruns groups of a few, whose
/// heavier function and two transactions at a time cost more than PostgreSQL's
/// own overlapping of commits saves; at 64, groups win several times over.
const DIRECT_APPENDS: usize = 8;

/// Counts a store's appends in progress while it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    /// Counts one more; says how many were in progress before it.
    fn enter(count: &'a AtomicUsize) -> (Self, usize) {
        let before = count.fetch_add(1, Ordering::AcqRel);
        (Self(count), before)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl EventAppender for PgEventStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendResult, Error> {
        let span = tracing::debug_span!("append", stream = %request.stream_id, events = request.events.len());
        let call = async move {
            if !self.inline.is_empty() {
                return self.append_inline(&request).await;
            }
            if let Some(queue) = self.group_queue() {
                // While few appends are in progress, each goes straight to the
                // server (no queue, no task switch): PostgreSQL overlaps their
                // commits' WAL flushes itself. Beyond that, they queue and share
                // transactions (and notifications).
                let (_in_flight, before) = InFlight::enter(&self.in_flight);
                if before < DIRECT_APPENDS {
                    self.group_counters.alone(1);
                    return append_one(&self.pool, &request, self.notify).await;
                }
                let (reply, answer) = tokio::sync::oneshot::channel();
                if queue.send(Job { request, reply }).await.is_err() {
                    return Err(Error::Closed("the group-commit workers stopped".into()));
                }
                return match answer.await {
                    Ok(Ok(GroupOutcome::Done(result))) => result,
                    Ok(Ok(GroupOutcome::Retry(request))) => {
                        append_one(&self.pool, &request, self.notify).await
                    }
                    Ok(Err(error)) => Err(error),
                    Err(_) => Err(Error::Closed("the group-commit worker stopped".into())),
                };
            }
            append_one(&self.pool, &request, self.notify).await
        };
        cqrs_core::within(self.deadline, "append", call)
            .instrument(span)
            .await
    }
}
