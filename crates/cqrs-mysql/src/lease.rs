//! [`MySqlLease`]: projection leases as MySQL named locks (`GET_LOCK`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_core::{Error, Lease};
use sqlx::{ConnectOptions, Connection, MySqlConnection, MySqlPool};
use tokio::sync::Mutex;

/// Leases as named locks: `GET_LOCK` on a connection of its own, held while the
/// lease is held. A renewal checks the connection is alive. If the holder's process
/// dies, its session ends and the server frees the lock at once, without waiting for
/// the time to live. A holder that loses its connection loses the lease at its next
/// renewal. Within one process (clones of one `MySqlLease`), a holder that has not
/// renewed for its time to live (a runner task that panicked or was aborted) loses
/// the lease to the next holder that asks, as with the other stores.
///
/// The lock's name is `cqrs:` and the SHA-1 of the lease's name (named locks are at
/// most 64 characters).
#[derive(Clone, Debug)]
pub struct MySqlLease {
    pool: MySqlPool,
    connect_timeout: Duration,
    slots: Arc<std::sync::Mutex<HashMap<String, Slot>>>,
}

/// One lease name's state in this process, behind its own lock.
type Slot = Arc<Mutex<Option<Held>>>;

/// A lease held by this process.
#[derive(Debug)]
struct Held {
    holder: String,
    conn: MySqlConnection,
    renewed: Instant,
    ttl: Duration,
}

impl MySqlLease {
    /// Leases on the server of `pool` (a connection is opened per lease held, outside
    /// the pool, so that leases never starve it).
    pub fn new(pool: MySqlPool) -> Self {
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

    async fn connect(&self) -> Result<MySqlConnection, Error> {
        let options = self.pool.connect_options();
        match tokio::time::timeout(self.connect_timeout, options.connect()).await {
            Ok(conn) => conn.map_err(Error::backend_in("lease connection")),
            Err(_) => Err(Error::backend(
                "lease connection",
                format!("no connection within {:?}", self.connect_timeout),
            )),
        }
    }
}

impl Lease for MySqlLease {
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
        let taken: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(CONCAT('cqrs:', SHA1(?)), 0)")
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .map_err(Error::backend_in("take lease"))?;
        let taken = taken == Some(1);
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
                // Closing the session frees its named locks.
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
