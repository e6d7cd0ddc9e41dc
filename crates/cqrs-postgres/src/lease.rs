//! [`PgLease`]: projection leases as PostgreSQL session advisory locks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_core::{Error, Lease};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Mutex;

/// The first key of every lease lock, so that leases do not meet other advisory locks
/// ("cqrs" in ASCII).
const NAMESPACE: i32 = 0x6371_7273;

/// Leases as session advisory locks: `pg_try_advisory_lock` on a connection of its
/// own, held while the lease is held. A renewal checks the connection is alive. If
/// the holder's process dies, its session ends and the server frees the lock at once,
/// without waiting for the time to live. A holder that loses its connection loses the
/// lease at its next renewal. Within one process (clones of one `PgLease`), a holder
/// that has not renewed for its time to live (a runner task that panicked or was
/// aborted) loses the lease to the next holder that asks, as with the other stores.
///
/// The lock key is `hashtext(name)`: two names with the same 32-bit hash share a lease
/// (harmless: one of the two runners waits).
#[derive(Clone, Debug)]
pub struct PgLease {
    pool: PgPool,
    connect_timeout: Duration,
    slots: Arc<std::sync::Mutex<HashMap<String, Slot>>>,
}

/// One lease name's state in this process, behind its own lock: taking or renewing
/// one lease (network I/O) never waits for another.
type Slot = Arc<Mutex<Option<Held>>>;

/// A lease held by this process.
#[derive(Debug)]
struct Held {
    holder: String,
    conn: PgConnection,
    renewed: Instant,
    ttl: Duration,
}

impl PgLease {
    /// Leases on the server of `pool` (a connection is opened per lease held, outside
    /// the pool, so that leases never starve it).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            connect_timeout: Duration::from_secs(10),
            slots: Arc::default(),
        }
    }

    /// Sets the longest wait for a lease's connection (default 10 s); a connection
    /// that takes longer fails the attempt with a backend error.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    fn slot(&self, name: &str) -> Slot {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.entry(name.to_owned()).or_default().clone()
    }

    async fn connect(&self) -> Result<PgConnection, Error> {
        let options = self.pool.connect_options();
        match tokio::time::timeout(self.connect_timeout, PgConnection::connect_with(&options)).await
        {
            Ok(conn) => conn.map_err(Error::backend_in("lease connection")),
            Err(_) => Err(Error::backend(
                "lease connection",
                format!("no connection within {:?}", self.connect_timeout),
            )),
        }
    }
}

impl Lease for PgLease {
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, Error> {
        let slot = self.slot(name);
        let mut held = slot.lock().await;
        if let Some(lease) = held.as_mut() {
            if lease.holder == holder {
                return match lease.conn.ping().await {
                    Ok(()) => {
                        lease.renewed = Instant::now();
                        lease.ttl = ttl;
                        Ok(true)
                    }
                    Err(error) => {
                        *held = None;
                        Err(Error::backend_in("renew lease")(error))
                    }
                };
            }
            if lease.renewed.elapsed() < lease.ttl {
                return Ok(false);
            }
            // Its holder stopped renewing without releasing: free the lock.
            tracing::warn!(lease = name, stale = %lease.holder, "taking over a lease not renewed in time");
            if let Some(stale) = held.take() {
                let _ = stale.conn.close().await;
            }
        }
        let mut conn = self.connect().await?;
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(NAMESPACE)
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .map_err(Error::backend_in("take lease"))?;
        if taken {
            *held = Some(Held {
                holder: holder.to_owned(),
                conn,
                renewed: Instant::now(),
                ttl,
            });
        } else {
            let _ = conn.close().await;
        }
        Ok(taken)
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), Error> {
        let slot = self.slot(name);
        let mut held = slot.lock().await;
        if held.as_ref().is_some_and(|lease| lease.holder == holder) {
            if let Some(lease) = held.take() {
                // Closing the session frees its advisory locks.
                lease
                    .conn
                    .close()
                    .await
                    .map_err(Error::backend_in("release lease"))?;
            }
        }
        Ok(())
    }
}
