//! Building blocks for subscriptions.

use futures::StreamExt;
use tokio::sync::watch;

use crate::event::Position;
use crate::ports::{EventBatchStream, LogReader};

/// A catch-up subscription over any [`LogReader`]: reads pages of up to `batch_size`
/// events after `after` until it reaches the head, then waits for `wake` to change
/// and reads again. No wake-up is lost: the change is marked seen *before* each
/// read, so an append that lands during the read wakes the next wait.
///
/// `wake` is whatever signals new events: the in-memory store's head, or a channel
/// fed by PostgreSQL `LISTEN`. The stream ends when every sender of `wake` is gone,
/// and after the first error.
pub fn catch_up<R, T>(
    reader: R,
    wake: watch::Receiver<T>,
    after: Position,
    batch_size: usize,
) -> EventBatchStream
where
    R: LogReader + 'static,
    T: Send + Sync + 'static,
{
    let batch_size = batch_size.max(1);
    futures::stream::unfold(Some((reader, wake, after)), move |state| async move {
        let (reader, mut wake, mut after) = state?;
        loop {
            wake.borrow_and_update();
            match reader.read_all(after, batch_size).await {
                Ok(batch) => {
                    if let Some(last) = batch.last() {
                        after = last.position;
                        return Some((Ok(batch), Some((reader, wake, after))));
                    }
                }
                Err(error) => return Some((Err(error), None)),
            }
            if wake.changed().await.is_err() {
                return None;
            }
        }
    })
    .boxed()
}

/// Forwards the events of `source` after `after` to `publisher`, batch by batch, until
/// `source` ends; returns the position of the last event published.
///
/// This is the safe way to put events on a transport: the events are committed in
/// the store first and published from there, so an event is never published that
/// was not stored, and a relay restarted from the transport's last position
/// publishes nothing twice (with an idempotent publisher) and loses nothing.
///
/// # Errors
/// The first error of the source or the publisher.
pub async fn relay<S, P>(
    source: &S,
    publisher: &P,
    after: Position,
    batch_size: usize,
) -> Result<Position, crate::Error>
where
    S: crate::ports::EventSubscriber + ?Sized,
    P: crate::ports::EventPublisher + ?Sized,
{
    let mut stream = source.subscribe(after, batch_size);
    let mut last = after;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        publisher.publish(&batch).await?;
        if let Some(event) = batch.last() {
            last = event.position;
        }
    }
    Ok(last)
}
