//! [`RedisLease`]: projection leases as expiring keys.

use std::time::Duration;

use cqrs_core::{Error, Lease};
use redis::aio::ConnectionManager;

use crate::error::RedisError;
use crate::scripts::{ACQUIRE, RELEASE};
use crate::store::{DEFAULT_PREFIX, connect};

/// Leases as keys `{prefix}:lease:{name}` holding the holder's id, with a time to live
/// (`SET NX PX`, renewed with `PEXPIRE` by the holder only, released by the holder
/// only: both checks are Lua scripts, so they are atomic). The server's clock decides
/// expiry, so the runners' clocks do not matter.
#[derive(Clone)]
pub struct RedisLease {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLease")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisLease {
    /// Connects to `url`, with keys under the prefix `cqrs`.
    ///
    /// # Errors
    /// [`RedisError::Connect`] if the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, RedisError> {
        Ok(Self::new(connect(url).await?))
    }

    /// Leases over an existing connection manager, with keys under the prefix `cqrs`.
    pub fn new(conn: ConnectionManager) -> Self {
        Self {
            conn,
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }

    /// Puts the lease keys under `prefix` instead.
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.prefix);
        self
    }

    fn key(&self, name: &str) -> String {
        format!("{}:lease:{name}", self.prefix)
    }
}

impl Lease for RedisLease {
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, Error> {
        let ttl = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut conn = self.conn.clone();
        let held: i64 = ACQUIRE
            .key(self.key(name))
            .arg(holder)
            .arg(ttl)
            .invoke_async(&mut conn)
            .await
            .map_err(Error::backend_in("take lease"))?;
        Ok(held == 1)
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        let _: i64 = RELEASE
            .key(self.key(name))
            .arg(holder)
            .invoke_async(&mut conn)
            .await
            .map_err(Error::backend_in("release lease"))?;
        Ok(())
    }
}
