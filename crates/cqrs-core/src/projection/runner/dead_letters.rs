//! Setting aside the events a runner cannot apply
//! ([`ProjectionRunner::with_dead_letters`]).

use std::borrow::Cow;

use tokio::sync::watch;

use super::ProjectionRunner;
use crate::error::Error;
use crate::event::{Position, RecordedEvent};
use crate::ports::{EventSubscriber, ReadModelStore};
use crate::projection::{Projection, ProjectionStats};

/// The position of the event an error is about, if it is a decoding error that names
/// one: that event would fail the same way every time.
fn poisoned(error: &Error) -> Option<Position> {
    match error {
        Error::Codec { location, .. } => location.position,
        _ => None,
    }
}

impl<P, Src, S> ProjectionRunner<P, Src, S>
where
    P: Projection,
    Src: EventSubscriber + 'static,
    S: ReadModelStore + 'static,
{
    /// Applies `batch` and commits it; with dead letters, sets aside the events that
    /// cannot be decoded, and with `one_by_one`, applies each event alone and sets
    /// aside one the store refuses while it answers.
    pub(super) async fn apply_guarded(
        &self,
        target: &str,
        checkpoint: Position,
        batch: &[RecordedEvent],
        one_by_one: bool,
        progress: &watch::Sender<ProjectionStats>,
    ) -> Result<Position, Error> {
        if self.dead_letters.is_none() {
            return self.apply_to(target, checkpoint, batch).await;
        }
        if !one_by_one {
            return self
                .apply_setting_aside(target, checkpoint, batch, progress)
                .await;
        }
        tracing::info!(
            events = batch.len(),
            "the store kept failing: applying one event at a time"
        );
        let mut at = checkpoint;
        for event in batch.iter().filter(|e| e.position > checkpoint) {
            let single = std::slice::from_ref(event);
            match self.apply_setting_aside(target, at, single, progress).await {
                Ok(position) => at = position,
                Err(error @ Error::Backend { .. }) => {
                    // The event, or the store? Only if the store answers is it the event.
                    if self.store.checkpoint(target).await.is_err() {
                        return Err(error);
                    }
                    self.set_aside(target, event, &error, progress).await?;
                    at = self.apply_through(target, at, &[], event.position).await?;
                }
                Err(other) => return Err(other),
            }
        }
        Ok(at)
    }

    /// Applies `batch`, setting aside each event that cannot be decoded, and commits
    /// the checkpoint past the whole batch.
    async fn apply_setting_aside(
        &self,
        target: &str,
        checkpoint: Position,
        batch: &[RecordedEvent],
        progress: &watch::Sender<ProjectionStats>,
    ) -> Result<Position, Error> {
        let through = batch.last().map_or(checkpoint, |e| e.position);
        let mut events = Cow::Borrowed(batch);
        loop {
            let error = match self
                .apply_through(target, checkpoint, &events, through)
                .await
            {
                Ok(position) => return Ok(position),
                Err(error) => error,
            };
            let found = poisoned(&error)
                .and_then(|position| events.iter().position(|e| e.position == position));
            let Some(index) = found else {
                return Err(error);
            };
            self.set_aside(target, &events[index], &error, progress)
                .await?;
            events.to_mut().remove(index);
        }
    }

    async fn set_aside(
        &self,
        target: &str,
        event: &RecordedEvent,
        error: &Error,
        progress: &watch::Sender<ProjectionStats>,
    ) -> Result<(), Error> {
        let Some(dead) = &self.dead_letters else {
            return Ok(());
        };
        tracing::warn!(
            %error,
            event_id = %event.event_id,
            stream = %event.stream_id,
            position = %event.position,
            "event set aside: the read model goes on without it"
        );
        dead.sink.set_aside(target, event, error).await?;
        progress.send_modify(|p| p.set_aside += 1);
        Ok(())
    }
}
