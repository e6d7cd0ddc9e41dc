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

    /// Asks the server to end `session` (freeing its locks) once it has heard
    /// nothing from it for `silence` ([`SessionLeases`] asks for three times the
    /// lease's time to live): a holder cut off from the server by a network partition
    /// then loses its locks, rather than when the server's TCP keepalive gives up on
    /// it (hours, by default). A healthy holder is heard from at every renewal, a
    /// third of the time to live apart. The default does nothing.
    ///
    /// # Errors
    /// [`Error::Backend`] if the server refuses.
    fn expire_after(
        &self,
        session: &mut Self::Session,
        silence: Duration,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = (session, silence);
        async { Ok(()) }
    }

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

/// How many times its time to live a lease's session may stay silent before the
/// server ends it ([`SessionLock::expire_after`]): a holder renews a third of the
/// time to live apart, so it must miss about nine renewals in a row, or spend three
/// times the time to live on one batch, before the server takes the lease from it.
const SILENCE: u32 = 3;

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
/// ends and the server frees the lock at once; a holder that loses its session loses
/// the lease at its next renewal. Within one process (clones of one value), a holder
/// that has not renewed for its time to live (a runner task that panicked or was
/// aborted) loses the lease to the next holder that asks, as with the other stores.
///
/// A holder that goes silent while its connection stays open (a frozen process, a
/// network partition) loses the lease too: the session is asked to end once the
/// server has heard nothing from it for three times the time to live
/// ([`SessionLock::expire_after`]; three times, so that a busy holder under load is
/// not cut off by a slow renewal). And a renewal, or a take-over, that gets no answer
/// within the time to live fails and drops its session, closing the connection;
/// without that, a half-open connection would hold both the call and the lock for
/// as long as it stayed open.
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
        // A renewal or a take-over that gets no answer within the time to live is a
        // failure, and its session is dropped (closing its connection): a session
        // whose connection stopped answering would otherwise hold the lock, and this
        // call, for as long as the connection stays half-open. (The holder writes
        // nothing while its renewal waits, so how long it waits decides only how
        // soon it gives up, not whether two holders write.)
        let limit = ttl.max(Duration::from_millis(1));
        let slot = self.slot(name);
        let mut held = slot.lock().await;
        if let Some(lease) = held.as_mut() {
            if lease.holder == holder {
                // A new time to live sets the session's silence limit again, under
                // the same deadline as the ping.
                let changed = lease.ttl != ttl;
                let renew = crate::within(limit, "renew lease", async {
                    B::ping(&mut lease.session).await?;
                    if changed {
                        self.expire_after(&mut lease.session, ttl * SILENCE).await;
                    }
                    Ok(())
                });
                return match renew.await {
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
                let _ = crate::within(limit, "release lease", B::close(stale.session)).await;
            }
        }
        let mut session = self.backend.connect().await?;
        let locked = crate::within(limit, "take lease", async {
            let taken = self.backend.try_lock(&mut session, name).await?;
            if taken {
                self.expire_after(&mut session, ttl * SILENCE).await;
            }
            Ok(taken)
        })
        .await;
        let taken = match locked {
            Ok(taken) => taken,
            Err(error) => {
                // Dropped unclosed if it does not close in time: its connection ends
                // either way, and the server frees what it took.
                let _ = crate::within(limit, "release lease", B::close(session)).await;
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
            let _ = crate::within(limit, "release lease", B::close(session)).await;
        }
        Ok(taken)
    }

    /// [`SessionLock::expire_after`], logged if refused: the lease still works, as
    /// long as the server notices a lost session some other way.
    async fn expire_after(&self, session: &mut B::Session, ttl: Duration) {
        if let Err(error) = self.backend.expire_after(session, ttl).await {
            tracing::warn!(%error, "the server will not end a lease's session that goes silent; a holder cut off by a partition keeps the lease until its connection times out");
        }
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
