//! Group commit: concurrent appends share one transaction.
//!
//! Appends are queued; a few worker tasks each take every append waiting (up to a
//! limit), run them through `cqrs_append_group` in one round trip and one
//! transaction, and answer each with its own outcome. Under load this turns N
//! commits (N WAL flushes, N notifications) into one; alone, an append waits for
//! nobody.

use std::sync::Arc;

use cqrs_core::{AppendRequest, AppendResult, Error, GroupCommitCounters};
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};
use tracing::Instrument;

use super::columns::{self, EventColumns};
use super::row::{AppendRow, AppendStatus};

/// The most appends one transaction takes.
pub(crate) const MAX_GROUP: usize = 256;

pub(crate) struct Job {
    pub(crate) request: AppendRequest,
    pub(crate) reply: oneshot::Sender<Result<Outcome, Error>>,
}

/// What the group said about one request.
pub(crate) enum Outcome {
    /// Done: appended, conflicted or already handled.
    Done(Result<AppendResult, Error>),
    /// Its command id came twice in one group: send it again on its own.
    Retry(AppendRequest),
}

/// Starts `workers` tasks serving a new queue; returns its sender.
pub(crate) fn start(
    pool: PgPool,
    workers: usize,
    notify: bool,
    counters: Arc<GroupCommitCounters>,
    deadline: std::time::Duration,
) -> mpsc::Sender<Job> {
    let (sender, receiver) = mpsc::channel::<Job>(MAX_GROUP * 4);
    let receiver = Arc::new(Mutex::new(receiver));
    for _ in 0..workers.max(1) {
        let (pool, receiver, counters) = (pool.clone(), receiver.clone(), counters.clone());
        tokio::spawn(async move {
            loop {
                let group = {
                    let mut receiver = receiver.lock().await;
                    let Some(first) = receiver.recv().await else {
                        return; // every sender is gone: the store was dropped
                    };
                    let mut group = vec![first];
                    while group.len() < MAX_GROUP {
                        match receiver.try_recv() {
                            Ok(job) => group.push(job),
                            Err(_) => break,
                        }
                    }
                    group
                };
                run(&pool, group, notify, &counters, deadline).await;
            }
        });
    }
    sender
}

async fn run(
    pool: &PgPool,
    mut group: Vec<Job>,
    notify: bool,
    counters: &GroupCommitCounters,
    deadline: std::time::Duration,
) {
    let size = group.len();
    if size == 1 {
        // Nobody to share the commit with: the single-append function is cheaper.
        let Some(job) = group.pop() else { return };
        counters.alone(1);
        let result = cqrs_core::within(
            deadline,
            "append",
            super::append::append_one(pool, &job.request, notify),
        )
        .await;
        let _ = job.reply.send(Ok(Outcome::Done(result)));
        return;
    }
    let span = tracing::debug_span!("group_commit", appends = size);
    counters.group(size);
    let answer = tokio::time::timeout(deadline, execute(pool, &group, notify).instrument(span))
        .await
        .unwrap_or(Err(GroupError::NoAnswer));
    match answer {
        Ok(rows) => {
            for (job, row) in group.into_iter().zip(rows) {
                let outcome = if row.status == AppendStatus::Retry {
                    Outcome::Retry(job.request)
                } else {
                    Outcome::Done(row.into_result(&job.request.stream_id, job.request.expected))
                };
                let _ = job.reply.send(Ok(outcome));
            }
        }
        Err(GroupError::Input(error)) => {
            // Refused before anything was sent: every append gets the reason.
            let message = error.to_string();
            for job in group {
                let _ = job.reply.send(Err(Error::InvalidInput(message.clone())));
            }
        }
        Err(GroupError::NoAnswer) => {
            // Whether the transaction committed is unknown: each append is told so.
            for job in group {
                let _ = job
                    .reply
                    .send(Err(Error::timed_out("append (group commit)", deadline)));
            }
        }
        Err(GroupError::Driver(error)) => {
            // The transaction failed as a whole: nothing of the group was written.
            // Every append gets the driver's error itself (shared, as
            // `Arc<sqlx::Error>`), not a copy of its text.
            let error = Arc::new(error);
            for job in group {
                let _ = job
                    .reply
                    .send(Err(Error::backend("append (group commit)", error.clone())));
            }
        }
    }
}

/// Why a group failed as a whole.
enum GroupError {
    /// A request was refused before anything was sent.
    Input(Error),
    /// The server or the connection failed.
    Driver(sqlx::Error),
    /// No answer within the deadline.
    NoAnswer,
}

/// Runs the group in one transaction and one round trip.
async fn execute(pool: &PgPool, group: &[Job], notify: bool) -> Result<Vec<AppendRow>, GroupError> {
    let mut streams = Vec::with_capacity(group.len());
    let mut expected = Vec::with_capacity(group.len());
    let mut commands = Vec::with_capacity(group.len());
    let mut events = EventColumns::default();
    for (i, job) in group.iter().enumerate() {
        let request = &job.request;
        streams.push(request.stream_id.as_str());
        expected.push(columns::expected(request.expected).map_err(GroupError::Input)?);
        commands.push(request.command_id);
        events
            .push(i + 1, &request.events)
            .map_err(GroupError::Input)?;
    }
    let query =
        sqlx::query_as("SELECT * FROM cqrs_append_group($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(&streams)
            .bind(&expected)
            .bind(&commands)
            .bind(&events.owners);
    events
        .bind(query)
        .bind(notify)
        .fetch_all(pool)
        .await
        .map_err(GroupError::Driver)
}
