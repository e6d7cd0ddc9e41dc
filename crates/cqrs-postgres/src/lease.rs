//! [`PgLease`]: projection leases as PostgreSQL session advisory locks.

use std::time::Duration;

use cqrs_core::{Error, Lease, SessionLeases, SessionLock};
use sqlx::{Connection, PgConnection, PgPool};

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
/// A holder that goes silent while its connection stays open (a frozen process, a
/// network partition) loses it as well, after three times its time to live: the
/// server ends the session (`idle_session_timeout`, PostgreSQL 14 and later; on older
/// servers a warning is logged and only TCP keepalive ends it).
///
/// The lock key is `hashtext(name)`: two names with the same 32-bit hash share a lease
/// (harmless: one of the two runners waits).
#[derive(Clone, Debug)]
pub struct PgLease {
    leases: SessionLeases<Sessions>,
}

/// PostgreSQL sessions for [`SessionLeases`].
#[derive(Clone, Debug)]
struct Sessions {
    pool: PgPool,
    connect_timeout: Duration,
}

impl PgLease {
    /// Leases on the server of `pool` (a connection is opened per lease held, outside
    /// the pool, so that leases never starve it).
    pub fn new(pool: PgPool) -> Self {
        Self {
            leases: SessionLeases::new(Sessions {
                pool,
                connect_timeout: Duration::from_secs(10),
            }),
        }
    }

    /// Sets the longest wait for a lease's connection (default 10 s); a connection
    /// that takes longer fails the attempt with a backend error.
    #[must_use]
    pub fn with_connect_timeout(self, timeout: Duration) -> Self {
        let sessions = Sessions {
            connect_timeout: timeout,
            ..self.leases.backend().clone()
        };
        Self {
            leases: self.leases.with_backend(sessions),
        }
    }
}

impl SessionLock for Sessions {
    type Session = PgConnection;

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

    async fn try_lock(&self, conn: &mut PgConnection, name: &str) -> Result<bool, Error> {
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(NAMESPACE)
            .bind(name)
            .fetch_one(conn)
            .await
            .map_err(Error::backend_in("take lease"))
    }

    /// `idle_session_timeout` (PostgreSQL 14 and later; refused before): the server
    /// ends the session once it has heard nothing from it for `ttl`.
    async fn expire_after(&self, conn: &mut PgConnection, ttl: Duration) -> Result<(), Error> {
        let ms = u64::try_from(ttl.as_millis())
            .unwrap_or(u64::MAX)
            .clamp(1, i32::MAX as u64);
        sqlx::query(&format!("SET idle_session_timeout = {ms}"))
            .execute(conn)
            .await
            .map_err(Error::backend_in("lease session timeout"))?;
        Ok(())
    }

    async fn ping(conn: &mut PgConnection) -> Result<(), Error> {
        conn.ping().await.map_err(Error::backend_in("renew lease"))
    }

    async fn close(conn: PgConnection) -> Result<(), Error> {
        // Closing the session frees its advisory locks.
        conn.close()
            .await
            .map_err(Error::backend_in("release lease"))
    }
}

impl Lease for PgLease {
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, Error> {
        self.leases.acquire(name, holder, ttl).await
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), Error> {
        self.leases.release(name, holder).await
    }
}
