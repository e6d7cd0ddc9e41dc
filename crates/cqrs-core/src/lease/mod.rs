//! [`SessionLeases`]: leases held as locks of a database session (PostgreSQL
//! advisory locks, MySQL named locks), for the adapters to build their
//! [`Lease`](crate::Lease) on.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::error::Error;

/// A database whose sessions can hold named locks, freed when the session ends.
pub trait SessionLock: Send + Sync {
    /// A session (a connection of its own, outside any pool).
    type Session: Send;

    /// Opens a session.
    ///
    /// # Errors
    /// [`Error::Backend`] if the server cannot be reached in time.
    fn connect(&self) -> impl Future<Output = Result<Self::Session, Error>> + Send;

    /// Takes the lock `name` in `session` without waiting; whether it was free.
    ///
    /// # Errors
    /// [`Error::Backend`] if the server fails.
    fn try_lock(
        &self,
        session: &mut Self::Session,
        name: &str,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Checks that `session` is alive (then its locks are held).
    ///
    /// # Errors
    /// [`Error::Backend`] if it is not.
    fn ping(session: &mut Self::Session) -> impl Future<Output = Result<(), Error>> + Send;

    /// Ends `session`, which frees its locks.
    ///
    /// # Errors
    /// [`Error::Backend`] if closing fails (the server frees the locks when it
    /// notices the session is gone).
    fn close(session: Self::Session) -> impl Future<Output = Result<(), Error>> + Send;
}

/// One lease name's state in this process, behind its own lock: taking or renewing
/// one lease (network I/O) never waits for another.
type Slot<S> = Arc<Mutex<Option<Held<S>>>>;

/// A lease held by this process.
struct Held<S> {
    holder: String,
    session: S,
    renewed: Instant,
    ttl: Duration,
}

/// Leases as session locks: a lease is a lock held by a session of its own. A
/// renewal checks the session is alive. If the holder's process dies, its session
/// ends and the server frees the lock at once, whatever the time to live; a holder
/// that loses its session loses the lease at its next renewal. Within one process
/// (clones of one value), a holder that has not renewed for its time to live (a
/// runner task that panicked or was aborted) loses the lease to the next holder that
/// asks, as with the other stores.
pub struct SessionLeases<B: SessionLock> {
    backend: B,
    slots: Arc<std::sync::Mutex<HashMap<String, Slot<B::Session>>>>,
}

impl<B: SessionLock + Clone> Clone for SessionLeases<B> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            slots: Arc::clone(&self.slots),
        }
    }
}

impl<B: SessionLock + std::fmt::Debug> std::fmt::Debug for SessionLeases<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLeases")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl<B: SessionLock> SessionLeases<B> {
    /// Leases on `backend`'s sessions.
    pub fn new(backend: B) -> Self {
        Self {
            backend,
            slots: Arc::default(),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// A copy with another backend value (settings changed), the same leases.
    #[must_use]
    pub fn with_backend(self, backend: B) -> Self {
        Self {
            backend,
            slots: self.slots,
        }
    }

    fn slot(&self, name: &str) -> Slot<B::Session> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.entry(name.to_owned()).or_default().clone()
    }

    /// [`Lease::acquire`](crate::Lease::acquire).
    ///
    /// # Errors
    /// [`Error::Backend`] if the server fails.
    pub async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, Error> {
        let slot = self.slot(name);
        let mut held = slot.lock().await;
        if let Some(lease) = held.as_mut() {
            if lease.holder == holder {
                return match B::ping(&mut lease.session).await {
                    Ok(()) => {
                        lease.renewed = Instant::now();
                        lease.ttl = ttl;
                        Ok(true)
                    }
                    Err(error) => {
                        *held = None;
                        Err(error)
                    }
                };
            }
            if lease.renewed.elapsed() < lease.ttl {
                return Ok(false);
            }
            // Its holder stopped renewing without releasing: free the lock.
            tracing::warn!(lease = name, stale = %lease.holder, "taking over a lease not renewed in time");
            if let Some(stale) = held.take() {
                let _ = B::close(stale.session).await;
            }
        }
        let mut session = self.backend.connect().await?;
        let taken = match self.backend.try_lock(&mut session, name).await {
            Ok(taken) => taken,
            Err(error) => {
                let _ = B::close(session).await;
                return Err(error);
            }
        };
        if taken {
            *held = Some(Held {
                holder: holder.to_owned(),
                session,
                renewed: Instant::now(),
                ttl,
            });
        } else {
            let _ = B::close(session).await;
        }
        Ok(taken)
    }

    /// [`Lease::release`](crate::Lease::release): ends the holder's session.
    ///
    /// # Errors
    /// [`Error::Backend`] if closing the session fails.
    pub async fn release(&self, name: &str, holder: &str) -> Result<(), Error> {
        let slot = self.slot(name);
        let mut held = slot.lock().await;
        if held.as_ref().is_some_and(|lease| lease.holder == holder) {
            if let Some(lease) = held.take() {
                B::close(lease.session).await?;
            }
        }
        Ok(())
    }
}
