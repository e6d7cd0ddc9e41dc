//! [`MySqlBinlogSource`]: change-data-capture of the events from the binary log.

mod coordinate;
mod decode;
mod reader;
mod stream;

pub use coordinate::BinlogCoordinate;
#[cfg(feature = "fuzzing")]
pub(crate) use decode::event as decode_row;
#[cfg(feature = "fuzzing")]
pub(crate) use reader::{Change, parsed, rows_of};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cqrs_core::{EventBatchStream, EventSubscriber, Position};
use sqlx::MySqlPool;

use crate::error::MySqlError;

/// Reads the events committed to `cqrs_events` from the server's binary log (as a
/// replica does, through [`mysql_async`]'s binlog stream) and delivers them as an
/// [`EventSubscriber`]: feed a [`ProjectionRunner`](cqrs_core::ProjectionRunner)
/// with it and the write path is not touched.
///
/// * **In position order, none skipped.** Appends take their positions under the
///   log tail's lock, in commit order, so the binlog holds the events in position
///   order with no hole; the source still releases only the next position
///   (`delivered + 1`) and reads a missing one from the table if a later one comes
///   first, so a consumer can never pass an event.
/// * **At least once, resumed from a stored coordinate.** Each reader has a name;
///   when the consumer asks for the next batch (a runner does once it committed the
///   last), the binlog file and offset after the last transaction fully handled are
///   stored in `cqrs_binlog_readers`. A new subscription — after a restart or a
///   kill — opens the binlog there: events at or before the consumer's checkpoint
///   are skipped, nothing is missed. A consumer whose checkpoint is behind the
///   stored coordinate (a rebuilt read model) first gets the events in between from
///   the table.
/// * **A first start, or a binlog purged since.** With no stored coordinate (or one
///   whose file the server has purged: `expire_logs_days`, `PURGE BINARY LOGS`) the
///   source starts at the binlog's current end and reads what came before from the
///   table. To know what "before" is, it reads the tail with a shared lock: a moment
///   in which appends wait. Keep binlogs longer than a reader may be stopped.
/// * **One subscription per name at a time** (run its consumer under a lease). Each
///   name registers as a replica with its own server id (from the name, or
///   [`with_server_id`](Self::with_server_id)); the server drops an older
///   connection that registers the same id.
///
/// The server needs `log_bin`, `binlog_format = ROW` and `binlog_row_image = FULL`
/// (checked at the start, with a typed error). The user of `url` needs
/// `REPLICATION SLAVE`, `BINLOG MONITOR` (MariaDB; MySQL: `REPLICATION CLIENT`) and
/// `SELECT` on the database (a test runs with exactly those). Connections are
/// plain TCP (no TLS yet). The stream asks the server for a heartbeat every
/// [`heartbeat`](Self::with_heartbeat) and fails (the runner retries) after three
/// missed, so a dead connection never hangs a reader.
///
/// Why `mysql_async`: it is the maintained Rust client that speaks the replication
/// protocol (`COM_REGISTER_SLAVE`, `COM_BINLOG_DUMP`) and decodes row events; sqlx
/// does not. At scale, or to feed many consumers through Kafka, Debezium's MariaDB /
/// MySQL connector on Kafka Connect does the same job (the project runs Kafka Connect
/// with Debezium for PostgreSQL; see `cqrs-kafka`).
#[derive(Clone)]
pub struct MySqlBinlogSource {
    pool: MySqlPool,
    /// Holds the password: never printed.
    opts: mysql_async::Opts,
    name: Arc<str>,
    server_id: u32,
    heartbeat: Duration,
    stats: Arc<Stats>,
}

/// What the source and its clones have read, for tests and metrics.
#[derive(Debug, Default)]
struct Stats {
    from_binlog: AtomicU64,
    from_table: AtomicU64,
}

impl std::fmt::Debug for MySqlBinlogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlBinlogSource")
            .field("name", &self.name)
            .field("server_id", &self.server_id)
            .field("host", &self.opts.ip_or_hostname())
            .field("port", &self.opts.tcp_port())
            .finish_non_exhaustive()
    }
}

impl MySqlBinlogSource {
    /// The default heartbeat period.
    pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(2);

    /// A reader named `name` of the events in `pool`'s database (migrated with
    /// [`migrate`](crate::migrate)), streaming the binlog from the server `url`
    /// names (`mysql://user:password@host:port`, the same server; its user needs
    /// the replication privileges above).
    ///
    /// # Errors
    /// [`MySqlError::InvalidName`] unless `name` is 1 to 64 ASCII letters, digits,
    /// `_` or `-`; [`MySqlError::InvalidUrl`] (the URL shown without its password).
    pub fn new(pool: MySqlPool, url: &str, name: &str) -> Result<Self, MySqlError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(MySqlError::InvalidName(name.to_owned()));
        }
        let opts = mysql_async::Opts::from_url(url).map_err(|e| MySqlError::InvalidUrl {
            url: cqrs_core::redact_url(url),
            reason: e.to_string(),
        })?;
        Ok(Self {
            pool,
            opts,
            server_id: server_id_of(name),
            name: name.into(),
            heartbeat: Self::DEFAULT_HEARTBEAT,
            stats: Arc::default(),
        })
    }

    /// Registers as the replica `server_id` (by default one derived from the name,
    /// at least 65,536). It must differ from every server's and other replica's id.
    #[must_use]
    pub fn with_server_id(mut self, server_id: u32) -> Self {
        self.server_id = server_id;
        self
    }

    /// How often the server sends a heartbeat while it has nothing to send (at least
    /// 100 ms; default [`DEFAULT_HEARTBEAT`](Self::DEFAULT_HEARTBEAT)).
    #[must_use]
    pub fn with_heartbeat(mut self, period: Duration) -> Self {
        self.heartbeat = period.max(Duration::from_millis(100));
        self
    }

    /// The reader's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The replica server id it registers as.
    pub fn server_id(&self) -> u32 {
        self.server_id
    }

    /// Where a new subscription resumes, if a coordinate is stored.
    ///
    /// # Errors
    /// [`MySqlError::Database`].
    pub async fn stored(&self) -> Result<Option<BinlogCoordinate>, MySqlError> {
        Ok(coordinate::load(&self.pool, &self.name).await?)
    }

    /// Forgets the stored coordinate: the next subscription starts at the binlog's
    /// end and reads what its consumer lacks from the table.
    ///
    /// # Errors
    /// [`MySqlError::Database`].
    pub async fn forget(&self) -> Result<(), MySqlError> {
        Ok(coordinate::forget(&self.pool, &self.name).await?)
    }

    /// How many events this source and its clones decoded from the binlog (each
    /// counted once, delivered or skipped as already handled).
    pub fn events_from_binlog(&self) -> u64 {
        self.stats.from_binlog.load(Ordering::Relaxed)
    }

    /// How many events this source and its clones read from the table instead: a
    /// first start, a consumer behind the stored coordinate, or a purged binlog.
    pub fn events_from_table(&self) -> u64 {
        self.stats.from_table.load(Ordering::Relaxed)
    }
}

impl EventSubscriber for MySqlBinlogSource {
    fn subscribe(&self, after: Position, batch_size: usize) -> EventBatchStream {
        stream::subscribe(self.clone(), after, batch_size)
    }
}

/// A replica id from `name` (FNV-1a), at least 2^16 so that it stays clear of the
/// small ids servers are usually given.
fn server_id_of(name: &str) -> u32 {
    let hash = name.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    hash | 0x0001_0000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ids_differ_by_name_and_stay_clear_of_small_ids() {
        let a = server_id_of("plan");
        let b = server_id_of("categories");
        assert_ne!(a, b);
        assert!(a >= 0x1_0000 && b >= 0x1_0000);
        assert_eq!(a, server_id_of("plan"), "stable across processes");
    }
}
