//! Wake-ups for subscriptions: `LISTEN cqrs_events`, plus a poll.
//!
//! One task per store listens on a dedicated connection and bumps a counter on
//! every notification and every poll interval; each subscription's catch-up loop
//! reads again when the counter changes. The task ends when no subscription is left
//! and starts again with the next one.

use std::sync::Mutex;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The channel `cqrs_append` notifies, with the last position as payload.
pub(crate) const CHANNEL: &str = "cqrs_events";

pub(crate) struct Listener {
    pool: PgPool,
    wake: watch::Sender<u64>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Listener {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self {
            pool,
            wake: watch::Sender::new(0),
            task: Mutex::new(None),
        }
    }

    /// A receiver that changes on every notification and at least every
    /// `poll_interval`. Starts the listening task if it is not running.
    pub(crate) fn wake_up(&self, poll_interval: Duration) -> watch::Receiver<u64> {
        let receiver = self.wake.subscribe();
        let mut task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let running = task.as_ref().is_some_and(|t| !t.is_finished());
        if !running {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let (pool, wake) = (self.pool.clone(), self.wake.clone());
                *task = Some(runtime.spawn(listen(pool, wake, poll_interval)));
            }
        }
        receiver
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
    }
}

fn bump(wake: &watch::Sender<u64>) {
    wake.send_modify(|n| *n = n.wrapping_add(1));
}

async fn listen(pool: PgPool, wake: watch::Sender<u64>, poll_interval: Duration) {
    let mut listener: Option<PgListener> = None;
    loop {
        if listener.is_none() {
            match PgListener::connect_with(&pool).await {
                Ok(mut l) => match l.listen(CHANNEL).await {
                    Ok(()) => listener = Some(l),
                    Err(error) => tracing::warn!(%error, "LISTEN failed; polling until it works"),
                },
                Err(error) => {
                    tracing::warn!(%error, "cannot open the LISTEN connection; polling until it works")
                }
            }
            // Whatever was notified while not listening: read again.
            bump(&wake);
        }
        let notified = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.map(drop),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = wake.closed() => return,
            result = notified => {
                if let Err(error) = result {
                    tracing::warn!(%error, "LISTEN connection lost; reconnecting");
                    listener = None;
                    tokio::time::sleep(poll_interval.min(Duration::from_secs(1))).await;
                }
                bump(&wake);
            }
            () = tokio::time::sleep(poll_interval) => bump(&wake),
        }
    }
}
