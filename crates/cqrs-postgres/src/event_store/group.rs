//! Group commit: concurrent appends share one transaction.
//!
//! Appends are queued; a few worker tasks each take every append waiting (up to a
//! limit), run them through `cqrs_append_group` in one round trip and one
//! transaction, and answer each with its own outcome. Under load this turns N
//! commits (N WAL flushes, N notifications) into one; alone, an append waits for
//! nobody.

use std::sync::Arc;

use cqrs_core::{AppendRequest, AppendResult, Error, Position, Version};
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};
use tracing::Instrument;

use super::columns::{self, EventColumns};

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
pub(crate) fn start(pool: PgPool, workers: usize, notify: bool) -> mpsc::Sender<Job> {
    let (sender, receiver) = mpsc::channel::<Job>(MAX_GROUP * 4);
    let receiver = Arc::new(Mutex::new(receiver));
    for _ in 0..workers.max(1) {
        let (pool, receiver) = (pool.clone(), receiver.clone());
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
                run(&pool, group, notify).await;
            }
        });
    }
    sender
}

type Row = (String, i64, i64, Option<i64>);

async fn run(pool: &PgPool, mut group: Vec<Job>, notify: bool) {
    let size = group.len();
    if size == 1 {
        // Nobody to share the commit with: the single-append function is cheaper.
        let Some(job) = group.pop() else { return };
        let result = match super::append::call_append(pool, &job.request, notify).await {
            Ok(row) => super::append::outcome(&job.request, row),
            Err(error) => Err(error),
        };
        let _ = job.reply.send(Ok(Outcome::Done(result)));
        return;
    }
    let span = tracing::debug_span!("group_commit", appends = size);
    match execute(pool, &group, notify).instrument(span).await {
        Ok(rows) => {
            for (job, (status, previous, version, last)) in group.into_iter().zip(rows) {
                let previous_version = Version(u64::try_from(previous).unwrap_or_default());
                let version = Version(u64::try_from(version).unwrap_or_default());
                let outcome = match status.as_str() {
                    "retry" => Outcome::Retry(job.request),
                    "conflict" => Outcome::Done(Err(Error::Conflict {
                        stream_id: job.request.stream_id,
                        expected: job.request.expected,
                        actual: version,
                    })),
                    "ok" | "duplicate" => Outcome::Done(Ok(AppendResult {
                        stream_id: job.request.stream_id,
                        previous_version,
                        version,
                        position: last.and_then(|p| u64::try_from(p).ok()).map(Position),
                        already_handled: status == "duplicate",
                    })),
                    other => Outcome::Done(Err(Error::backend(
                        "append",
                        format!("unexpected status `{other}`"),
                    ))),
                };
                let _ = job.reply.send(Ok(outcome));
            }
        }
        Err(error) => {
            // The transaction failed as a whole: nothing of the group was written.
            let message = error.to_string();
            for job in group {
                let _ = job.reply.send(Err(Error::backend(
                    "append (group commit)",
                    message.clone(),
                )));
            }
        }
    }
}

/// Runs the group; on failure, the driver's message (every job gets it).
async fn execute(pool: &PgPool, group: &[Job], notify: bool) -> Result<Vec<Row>, String> {
    let mut streams = Vec::with_capacity(group.len());
    let mut expected = Vec::with_capacity(group.len());
    let mut commands = Vec::with_capacity(group.len());
    let mut events = EventColumns::default();
    for (i, job) in group.iter().enumerate() {
        let request = &job.request;
        streams.push(request.stream_id.as_str());
        expected.push(columns::expected(request.expected).map_err(|e| e.to_string())?);
        commands.push(request.command_id);
        events
            .push(i + 1, &request.events)
            .map_err(|e| e.to_string())?;
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
        .map_err(|e| e.to_string())
}
