//! Wake-ups for subscriptions, sent after commit and coalesced.
//!
//! `NOTIFY` inside an append's transaction makes PostgreSQL take a cluster-wide lock
//! at that commit: committing appends then queue behind one another. Here appends
//! commit without it, and one task per store sends `pg_notify('cqrs_events', head)`
//! after them: while one notification is on its way, any number of appends that
//! commit meanwhile are covered by the next one. A subscriber is woken once per
//! burst, a round trip after the commit; one that misses a wake-up (the process
//! died in between) finds the events at its next poll.

use std::sync::Mutex;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::subscription::CHANNEL;

/// Sends coalesced notifications for one store and its clones.
#[derive(Debug)]
pub(crate) struct Notifier {
    /// The highest position appended that is not notified yet (0: none).
    pending: watch::Sender<u64>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Notifier {
    pub(crate) fn new() -> Self {
        Self {
            pending: watch::Sender::new(0),
            task: Mutex::new(None),
        }
    }

    /// Asks for a notification of `position` (or later), starting the task that
    /// sends them if it is not running (inside the Tokio runtime only).
    pub(crate) fn notify(&self, pool: &PgPool, position: u64) {
        self.pending.send_if_modified(|pending| {
            let newer = position > *pending;
            if newer {
                *pending = position;
            }
            newer
        });
        let mut task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if task.as_ref().is_none_or(JoinHandle::is_finished) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let receiver = self.pending.subscribe();
                *task = Some(runtime.spawn(send(pool.clone(), receiver)));
            }
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
    }
}

/// Sends a notification whenever `pending` moves, one at a time.
async fn send(pool: PgPool, mut pending: watch::Receiver<u64>) {
    // The first value is news: it was set before this task started.
    pending.mark_changed();
    while pending.changed().await.is_ok() {
        let position = *pending.borrow_and_update();
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(position.to_string())
            .execute(&pool)
            .await;
        if let Err(error) = sent {
            // Subscribers poll anyway; try again with the next append.
            tracing::debug!(%error, "could not notify subscribers; they will poll");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
