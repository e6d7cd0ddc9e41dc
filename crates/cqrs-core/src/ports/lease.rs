//! The lease port: at most one runner drives a projection at a time.

use std::future::Future;
use std::time::Duration;

use futures::future::BoxFuture;

use super::forward_port;
use crate::error::Error;

/// A named, expiring lease, held by one holder at a time.
///
/// A [`ProjectionRunner`](crate::ProjectionRunner) given a lease
/// ([`with_lease`](crate::ProjectionRunner::with_lease)) takes it before it reads an
/// event, renews it while it runs, stops writing when a renewal fails, and releases it
/// when stopped. A second runner of the same projection waits until the lease is free
/// or has expired.
///
/// A lease is not a fence: a holder that stalls longer than the time to live (a long
/// GC-free pause is still possible: a frozen VM, a stopped container) may still finish
/// the batch it had started after another runner took over. The read-model stores
/// make that harmless (every document write is guarded by the document's position, and
/// checkpoints only move forward), so the lease is about not doing the work twice, not
/// about correctness.
pub trait Lease: Send + Sync {
    /// Takes the lease `name` for `holder` for `ttl`, or renews it if `holder`
    /// already has it. Returns whether `holder` holds it now.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails (the caller must then assume it does
    /// not hold the lease).
    fn acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Gives the lease `name` up, if `holder` has it.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails (the lease then expires on its own).
    fn release(&self, name: &str, holder: &str) -> impl Future<Output = Result<(), Error>> + Send;
}

/// A [`Lease`] as a trait object (`Arc<dyn DynLease>`), for a type that keeps a
/// lease of any kind without naming it (the projection runner, a relay). Every
/// [`Lease`] is one.
pub trait DynLease: Send + Sync {
    /// [`Lease::acquire`], boxed.
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>>;

    /// [`Lease::release`], boxed.
    fn release<'a>(&'a self, name: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), Error>>;
}

impl<L: Lease> DynLease for L {
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(Lease::acquire(self, name, holder, ttl))
    }

    fn release<'a>(&'a self, name: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Lease::release(self, name, holder))
    }
}

forward_port!(Lease {
    fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> impl Future<Output = Result<bool, Error>> + Send;
    fn release(&self, name: &str, holder: &str) -> impl Future<Output = Result<(), Error>> + Send;
});
