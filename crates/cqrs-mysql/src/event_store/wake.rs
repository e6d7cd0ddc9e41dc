//! Wake-ups for subscriptions: a poll, and every append through this store.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Bumps a counter every poll interval (in a task that runs while a subscription
/// listens) and after every append of this process.
#[derive(Debug)]
pub(crate) struct Poller {
    interval: Duration,
    wake: watch::Sender<u64>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Poller {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            wake: watch::Sender::new(0),
            task: Mutex::new(None),
        }
    }

    /// A receiver that changes at least every poll interval.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        let receiver = self.wake.subscribe();
        let mut task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let running = task.as_ref().is_some_and(|t| !t.is_finished());
        if !running {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let (wake, interval) = (self.wake.clone(), self.interval);
                *task = Some(runtime.spawn(async move {
                    // Ends when the last subscription is gone.
                    while wake.receiver_count() > 0 {
                        tokio::time::sleep(interval).await;
                        bump(&wake);
                    }
                }));
            }
        }
        receiver
    }

    /// Wakes the subscriptions now (an append just committed).
    pub(crate) fn bump(&self) {
        bump(&self.wake);
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
    }
}

fn bump(wake: &watch::Sender<u64>) {
    wake.send_modify(|n| *n = n.wrapping_add(1));
}
