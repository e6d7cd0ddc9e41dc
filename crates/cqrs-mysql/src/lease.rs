//! [`MySqlLease`]: projection leases as MySQL named locks (`GET_LOCK`).

use std::time::Duration;

use cqrs_core::{Error, Lease, SessionLeases, SessionLock};
use sqlx::{ConnectOptions, Connection, MySqlConnection, MySqlPool};

/// Leases as named locks: `GET_LOCK` on a connection of its own, held while the
/// lease is held. A renewal checks the connection is alive. If the holder's process
/// dies, its session ends and the server frees the lock at once, without waiting for
/// the time to live. A holder that loses its connection loses the lease at its next
/// renewal. Within one process (clones of one `MySqlLease`), a holder that has not
/// renewed for its time to live (a runner task that panicked or was aborted) loses
/// the lease to the next holder that asks, as with the other stores.
///
/// A holder that goes silent while its connection stays open (a frozen process, a
/// network partition) loses it as well, after three times its time to live: the
/// server closes the session (its `wait_timeout`, rounded up to a second).
///
/// The lock's name is `cqrs:` and the SHA-1 of the lease's name (named locks are at
/// most 64 characters).
#[derive(Clone, Debug)]
pub struct MySqlLease {
    leases: SessionLeases<Sessions>,
}

/// MySQL sessions for [`SessionLeases`].
#[derive(Clone, Debug)]
struct Sessions {
    pool: MySqlPool,
    connect_timeout: Duration,
}

impl MySqlLease {
    /// Leases on the server of `pool` (a connection is opened per lease held, outside
    /// the pool, so that leases never starve it).
    pub fn new(pool: MySqlPool) -> Self {
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
    type Session = MySqlConnection;

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

    async fn try_lock(&self, conn: &mut MySqlConnection, name: &str) -> Result<bool, Error> {
        let taken: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(CONCAT('cqrs:', SHA1(?)), 0)")
            .bind(name)
            .fetch_one(conn)
            .await
            .map_err(Error::backend_in("take lease"))?;
        Ok(taken == Some(1))
    }

    /// The session's `wait_timeout`, `silence` in whole seconds (at least 1, rounded
    /// up): the server closes the session once it has heard nothing from it for that
    /// long.
    async fn expire_after(
        &self,
        conn: &mut MySqlConnection,
        silence: Duration,
    ) -> Result<(), Error> {
        let seconds = silence.as_secs() + u64::from(silence.subsec_nanos() > 0);
        sqlx::query(&format!("SET SESSION wait_timeout = {}", seconds.max(1)))
            .execute(conn)
            .await
            .map_err(Error::backend_in("lease session timeout"))?;
        Ok(())
    }

    async fn ping(conn: &mut MySqlConnection) -> Result<(), Error> {
        conn.ping().await.map_err(Error::backend_in("renew lease"))
    }

    async fn close(conn: MySqlConnection) -> Result<(), Error> {
        // Closing the session frees its named locks.
        conn.close()
            .await
            .map_err(Error::backend_in("release lease"))
    }
}

impl Lease for MySqlLease {
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, Error> {
        self.leases.acquire(name, holder, ttl).await
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), Error> {
        self.leases.release(name, holder).await
    }
}
