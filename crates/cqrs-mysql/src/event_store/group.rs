//! Group commit: concurrent appends share one transaction.
//!
//! Appends are queued; worker tasks each take every append waiting (up to a limit
//! of appends and bytes) and send them in one round trip: `START TRANSACTION`, the
//! group's streams locked in sorted order, a `cqrs_append` call per append (each a
//! member: it rolls back to its own savepoint when it writes nothing or fails, so
//! each succeeds, conflicts or fails on its own), `COMMIT`. Under load, N commits
//! (N redo-log and binlog flushes, N turns of the log tail's lock) become one; an
//! append alone waits for nobody and takes the one-append path.
//!
//! Why the streams are locked first: a member holds the tail's lock from its first
//! event to the commit. If a later member then waited for a stream's lock held by
//! an append elsewhere, which itself waits for the tail, the two would deadlock.
//! Taking every stream of the group before any tail makes the group wait like a
//! single append does: streams first, then the tail.

use std::collections::BTreeSet;
use std::sync::Arc;

use cqrs_core::{AppendRequest, AppendResult, Error, GroupCommitCounters};
use sqlx::mysql::MySqlRow;
use sqlx::{Executor, MySqlPool};
use tokio::sync::{Mutex, mpsc, oneshot};
use tracing::Instrument;

use super::append::{Mode, append_one, call, row_result, text_literal};

/// The most appends one transaction takes.
pub(crate) const MAX_GROUP: usize = 256;

/// The most bytes of SQL one group sends (well under the server's default
/// `max_allowed_packet`, 16 MiB); an append larger than this goes alone.
const MAX_GROUP_BYTES: usize = 4 << 20;

/// The longest stream id `cqrs_streams` holds, in bytes.
const MAX_STREAM_BYTES: usize = 255;

pub(crate) struct Job {
    pub(crate) request: AppendRequest,
    pub(crate) reply: oneshot::Sender<Result<AppendResult, Error>>,
}

/// Starts `workers` tasks serving a new queue; returns its sender.
pub(crate) fn start(
    pool: MySqlPool,
    workers: usize,
    counters: Arc<GroupCommitCounters>,
    deadline: std::time::Duration,
) -> mpsc::Sender<Job> {
    let (sender, receiver) = mpsc::channel::<Job>(MAX_GROUP * 4);
    let receiver = Arc::new(Mutex::new(receiver));
    for _ in 0..workers.max(1) {
        let (pool, receiver, counters) = (pool.clone(), receiver.clone(), counters.clone());
        tokio::spawn(async move {
            // An append taken that did not fit the last group: first of the next.
            let mut carried: Option<(Job, String)> = None;
            loop {
                let group = {
                    let mut receiver = receiver.lock().await;
                    let first = match carried.take() {
                        Some(first) => first,
                        None => {
                            let Some(job) = receiver.recv().await else {
                                return; // every sender is gone: the store was dropped
                            };
                            match member(job) {
                                Some(first) => first,
                                None => continue,
                            }
                        }
                    };
                    let mut bytes = first.1.len();
                    let mut group = vec![first];
                    while group.len() < MAX_GROUP {
                        let Ok(job) = receiver.try_recv() else { break };
                        let Some(next) = member(job) else { continue };
                        if bytes + next.1.len() > MAX_GROUP_BYTES {
                            carried = Some(next);
                            break;
                        }
                        bytes += next.1.len();
                        group.push(next);
                    }
                    group
                };
                run(&pool, group, &counters, deadline).await;
            }
        });
    }
    sender
}

/// A job and its `CALL`, or `None` if it was answered already (a request that
/// cannot be written as a call).
fn member(job: Job) -> Option<(Job, String)> {
    match call(&job.request, Mode::Member) {
        Ok(call) => Some((job, call)),
        Err(error) => {
            let _ = job.reply.send(Err(error));
            None
        }
    }
}

async fn run(
    pool: &MySqlPool,
    mut group: Vec<(Job, String)>,
    counters: &GroupCommitCounters,
    deadline: std::time::Duration,
) {
    let alone = group.len() == 1
        || group
            .iter()
            .any(|(job, call)| too_large(&job.request, call));
    if alone {
        // Nobody to share the commit with (or a request the group would fail for
        // everyone, which the one-append path reports as its own): one at a time.
        counters.alone(group.len());
        for (job, _) in group.drain(..) {
            let result =
                cqrs_core::within(deadline, "append", append_alone(pool, &job.request)).await;
            let _ = job.reply.send(result);
        }
        return;
    }
    let span = tracing::debug_span!("group_commit", appends = group.len());
    counters.group(group.len());
    let Ok(answer) = tokio::time::timeout(deadline, execute(pool, &group).instrument(span)).await
    else {
        // Whether the transaction committed is unknown: each append is told so.
        for (job, _) in group {
            let _ = job
                .reply
                .send(Err(Error::timed_out("append (group commit)", deadline)));
        }
        return;
    };
    match answer {
        Ok(rows) => {
            for ((job, _), row) in group.into_iter().zip(rows) {
                let _ = job.reply.send(row_result(&row, &job.request));
            }
        }
        Err(error) if super::append::is_deadlock(&error) => {
            // The group was a deadlock's victim and was rolled back whole: nothing
            // was written. Each append runs again on its own (which retries
            // deadlocks itself).
            for (job, _) in group {
                let result =
                    cqrs_core::within(deadline, "append", append_alone(pool, &job.request)).await;
                let _ = job.reply.send(result);
            }
        }
        Err(error) => {
            // The transaction failed as a whole: nothing of the group was written
            // (or, if the commit itself failed, its outcome is unknown). Every
            // append gets the driver's error itself, shared.
            let error = Arc::new(error);
            for (job, _) in group {
                let _ = job
                    .reply
                    .send(Err(Error::backend("append (group commit)", error.clone())));
            }
        }
    }
}

/// Whether `request` would fail a group for everyone: a stream id longer than
/// `cqrs_streams` holds fails the group's first statement.
fn too_large(request: &AppendRequest, call: &str) -> bool {
    request.stream_id.as_str().len() > MAX_STREAM_BYTES || call.len() > MAX_GROUP_BYTES
}

async fn append_alone(pool: &MySqlPool, request: &AppendRequest) -> Result<AppendResult, Error> {
    let mut conn = pool.acquire().await.map_err(Error::backend_in("append"))?;
    append_one(&mut conn, request, Mode::Own).await
}

/// Runs the group in one transaction and one round trip; returns one row per
/// append.
async fn execute(pool: &MySqlPool, group: &[(Job, String)]) -> Result<Vec<MySqlRow>, sqlx::Error> {
    let streams: BTreeSet<&str> = group
        .iter()
        .map(|(job, _)| job.request.stream_id.as_str())
        .collect();
    let mut sql =
        String::with_capacity(group.iter().map(|(_, call)| call.len() + 2).sum::<usize>() + 256);
    sql.push_str("START TRANSACTION;\nINSERT INTO cqrs_streams (stream_id, version) VALUES ");
    for (i, stream) in streams.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&text_literal(stream));
        sql.push_str(", 0)");
    }
    sql.push_str(" ON DUPLICATE KEY UPDATE stream_id = stream_id;\n");
    for (_, call) in group {
        sql.push_str(call);
        sql.push_str(";\n");
    }
    sql.push_str("COMMIT");
    let mut conn = pool.acquire().await?;
    match conn.fetch_all(sqlx::raw_sql(&sql)).await {
        Ok(rows) if rows.len() == group.len() => Ok(rows),
        Ok(rows) => Err(sqlx::Error::Protocol(format!(
            "{} answers to a group of {} appends",
            rows.len(),
            group.len()
        ))),
        Err(error) => {
            // The statements after the failing one did not run: the transaction
            // may still be open. Roll it back, or drop the connection.
            if conn.execute(sqlx::raw_sql("ROLLBACK")).await.is_err() {
                let _ = conn.close().await;
            }
            Err(error)
        }
    }
}
