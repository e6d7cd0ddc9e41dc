//! Where a projection runner sets aside an event it cannot apply, so that one bad
//! event does not stop a read model.

use std::future::Future;

use futures::future::BoxFuture;

use super::forward_port;
use crate::error::Error;
use crate::event::RecordedEvent;

/// Keeps the events a [`ProjectionRunner`](crate::ProjectionRunner) could not apply
/// (see [`with_dead_letters`](crate::ProjectionRunner::with_dead_letters)), with
/// why, for an operator to look at.
///
/// Setting aside is *at least once*: a runner that crashes after setting an event
/// aside and before committing past it sets it aside again after the restart, with
/// the same event id.
pub trait DeadLetters: Send + Sync {
    /// Records that `projection` could not apply `event` because of `error`.
    ///
    /// # Errors
    /// [`Error::Backend`] if it cannot be recorded; the runner then does not move
    /// past the event.
    fn set_aside(
        &self,
        projection: &str,
        event: &RecordedEvent,
        error: &Error,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// [`DeadLetters`] as a trait object. Every [`DeadLetters`] is one.
pub trait DynDeadLetters: Send + Sync {
    /// [`DeadLetters::set_aside`], boxed.
    fn set_aside<'a>(
        &'a self,
        projection: &'a str,
        event: &'a RecordedEvent,
        error: &'a Error,
    ) -> BoxFuture<'a, Result<(), Error>>;
}

impl<D: DeadLetters> DynDeadLetters for D {
    fn set_aside<'a>(
        &'a self,
        projection: &'a str,
        event: &'a RecordedEvent,
        error: &'a Error,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(DeadLetters::set_aside(self, projection, event, error))
    }
}

forward_port!(DeadLetters {
    fn set_aside(&self, projection: &str, event: &RecordedEvent, error: &Error) -> impl Future<Output = Result<(), Error>> + Send;
});
