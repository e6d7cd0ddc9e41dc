//! One queue per stream: commands on one aggregate inside one process wait for each
//! other instead of racing to append and conflicting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OwnedMutexGuard;

use crate::event::StreamId;

type Slots = Arc<Mutex<HashMap<StreamId, Arc<tokio::sync::Mutex<()>>>>>;

/// A lock per stream, created on first use and dropped when nobody holds or waits
/// for it (the map only holds streams with commands in flight).
#[derive(Clone, Default)]
pub(super) struct StreamLocks {
    slots: Slots,
}

/// Held while a command on a stream runs; the next one waiting goes on drop.
pub(super) struct StreamGuard {
    // Dropped first (fields drop in order): the lock is free before the clean-up.
    guard: Option<OwnedMutexGuard<()>>,
    stream_id: StreamId,
    slots: Slots,
}

impl StreamLocks {
    /// Waits for the turn of the command on `stream_id` (fair: first come, first
    /// served).
    pub(super) async fn lock(&self, stream_id: &StreamId) -> StreamGuard {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots.entry(stream_id.clone()).or_default().clone()
        };
        StreamGuard {
            guard: Some(slot.lock_owned().await),
            stream_id: stream_id.clone(),
            slots: self.slots.clone(),
        }
    }

    /// How many streams have a command in flight or waiting (for tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        // Only the map holds it: nobody runs or waits on this stream any more.
        // (Waiters clone the slot under this same map lock, so none can slip in.)
        if slots
            .get(&self.stream_id)
            .is_some_and(|slot| Arc::strong_count(slot) == 1)
        {
            slots.remove(&self.stream_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_command_waits_and_the_slot_is_dropped_after() {
        let locks = StreamLocks::default();
        let stream = StreamId::new("s-1");
        let first = locks.lock(&stream).await;
        let waiting = {
            let locks = locks.clone();
            let stream = stream.clone();
            tokio::spawn(async move {
                let _second = locks.lock(&stream).await;
            })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the second waits for the first");
        drop(first);
        waiting
            .await
            .expect("the second runs once the first is done");
        assert_eq!(locks.len(), 0, "no slot left behind");
    }
}
