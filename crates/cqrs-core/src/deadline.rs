//! Deadlines on calls to a backend: a connection that goes half-open mid-request
//! (a network partition, a dead load balancer) never answers, and nothing in TCP
//! says so for a long time. Every adapter call runs under one.

use std::future::Future;
use std::time::Duration;

use crate::error::Error;

/// Runs `call` for at most `limit`. If it has not finished by then it is dropped
/// and the result is an [`Error::Backend`] in `context` whose source is an
/// [`std::io::Error`] of kind [`TimedOut`](std::io::ErrorKind::TimedOut)
/// ([`Error::is_timed_out`]).
///
/// Whether a write cut off this way took effect is unknown: an append may have
/// committed just before. Retry it with the same command id, which makes it take
/// effect once.
///
/// # Errors
/// `call`'s error, or the timeout.
pub async fn within<T, F>(limit: Duration, context: &'static str, call: F) -> Result<T, Error>
where
    F: Future<Output = Result<T, Error>>,
{
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result,
        Err(_) => Err(Error::timed_out(context, limit)),
    }
}

impl Error {
    /// The [`Error::Backend`] of a call that got no answer within `limit`.
    pub fn timed_out(context: &'static str, limit: Duration) -> Self {
        Self::backend(
            context,
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {limit:?}; whether it took effect is unknown"),
            ),
        )
    }

    /// Whether the backend did not answer in time ([`within`]): the outcome of the
    /// call is unknown.
    pub fn is_timed_out(&self) -> bool {
        match self {
            Self::Backend { source, .. } => source
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut),
            _ => false,
        }
    }
}
