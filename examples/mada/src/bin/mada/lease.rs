//! The leases of whichever database holds the events.

use std::time::Duration;

use cqrs_core::{Error, Lease};
use cqrs_mysql::MySqlLease;
use cqrs_postgres::PgLease;

use crate::stores::WriteDb;

/// A lease in PostgreSQL or in MySQL: workers of one deployment share the
/// database that holds the events, so they share its leases.
#[derive(Clone, Debug)]
pub(crate) enum AnyLease {
    /// Advisory locks in PostgreSQL.
    Postgres(PgLease),
    /// `GET_LOCK` in MySQL / MariaDB.
    Mysql(MySqlLease),
}

impl AnyLease {
    /// The leases of `db`; none in memory, where no other process could share them.
    pub(crate) fn of(db: WriteDb<'_>) -> Option<Self> {
        match db {
            WriteDb::Memory => None,
            WriteDb::Postgres(pool) => Some(Self::Postgres(PgLease::new(pool.clone()))),
            WriteDb::Mysql(pool) => Some(Self::Mysql(MySqlLease::new(pool.clone()))),
        }
    }
}

impl Lease for AnyLease {
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, Error> {
        match self {
            Self::Postgres(lease) => lease.acquire(name, holder, ttl).await,
            Self::Mysql(lease) => lease.acquire(name, holder, ttl).await,
        }
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), Error> {
        match self {
            Self::Postgres(lease) => lease.release(name, holder).await,
            Self::Mysql(lease) => lease.release(name, holder).await,
        }
    }
}
