//! [`RedisReadModelStore`]: where read models live in Redis, and how to connect.

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{Error, Position};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::RedisError;

/// Read models in Redis. Each read model has three keys, sharing a hash tag so that
/// they live in one slot of a Redis Cluster:
///
/// * `{prefix}:{<name>}:docs`, a hash: document id → the document's JSON;
/// * `{prefix}:{<name>}:pos`, a hash: document id → the position of the last event
///   applied to it (a deleted document keeps its position here: its tombstone);
/// * `{prefix}:{<name>}:checkpoint`, a string: the projection's checkpoint.
///
/// Positions are stored as 20-digit decimal strings, so that Lua compares them exactly
/// (as strings), whatever their size.
///
/// # Guarantees
/// A commit is **atomic**: one Lua script checks the keys' types, then writes every
/// change (each guarded by the document's position) and moves the checkpoint forward.
/// The checks come before the first write and a script with writes is refused up
/// front when the server is out of memory, so a script either writes everything or
/// nothing; no reader or other client sees a batch half-applied. Durability is the
/// server's: with `appendonly yes` and `appendfsync always` a commit survives a crash
/// of the server; with the defaults, the last second may be lost, and then the
/// documents and checkpoint go back *together* (the script is one entry in the
/// append-only file), and the runner replays.
///
/// Cheap to clone: clones share one multiplexed connection, which reconnects on its
/// own after the server comes back.
#[derive(Clone)]
pub struct RedisReadModelStore {
    pub(crate) conn: ConnectionManager,
    prefix: Arc<str>,
    pub(crate) deadline: Duration,
}

impl std::fmt::Debug for RedisReadModelStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReadModelStore")
            .field("prefix", &self.prefix)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// The key prefix used unless another is given.
pub const DEFAULT_PREFIX: &str = "cqrs";

/// Connects to `url` with a connection manager that reconnects after failures, times
/// out connecting after 5 s and a command after 10 s.
pub(crate) async fn connect(url: &str) -> Result<ConnectionManager, RedisError> {
    let client = redis::Client::open(url).map_err(RedisError::connect(url))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(10)))
        .set_number_of_retries(2);
    ConnectionManager::new_with_config(client, config)
        .await
        .map_err(RedisError::connect(url))
}

impl RedisReadModelStore {
    /// The default longest wait for the server on any call (see
    /// [`with_deadline`](Self::with_deadline)): the response timeout
    /// [`connect`](Self::connect) gives its connection.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

    /// Connects to the server at `url` (`redis://host:port/db`), with keys under the
    /// prefix `cqrs`.
    ///
    /// # Errors
    /// [`RedisError::Connect`] if the URL is invalid or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, RedisError> {
        Ok(Self::new(connect(url).await?))
    }

    /// A store over an existing connection manager, with keys under the prefix `cqrs`.
    pub fn new(conn: ConnectionManager) -> Self {
        Self {
            conn,
            prefix: Arc::from(DEFAULT_PREFIX),
            deadline: Self::DEFAULT_DEADLINE,
        }
    }

    /// Sets the longest any call waits for the server: 10 s by default, whatever the
    /// connection's own response timeout (a connection given to [`new`](Self::new)
    /// may have none). Past it the call fails with an [`Error::Backend`] for which
    /// [`is_timed_out`](Error::is_timed_out) is true, and a runner retries it; a
    /// commit cut off this way either ran whole on the server or not at all (it is
    /// one script), and replaying its batch is a no-op either way (documents are
    /// guarded by position).
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Puts every key under `prefix` instead of `cqrs` (to share a server between
    /// applications or tests).
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = Arc::from(prefix);
        self
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Deletes every key under this store's prefix (every read model, checkpoint and
    /// alias, and a [`RedisCache`](crate::RedisCache)'s entries under the same
    /// prefix), walking the keyspace with `SCAN`. Returns how many keys went. For
    /// demos and tests that start empty; read models are rebuilt from the events.
    ///
    /// # Errors
    /// [`Error::Backend`] if the server fails (some keys may be gone).
    pub async fn delete_all(&self) -> Result<u64, Error> {
        let pattern = format!("{}:*", self.prefix);
        unlink_matching(&mut self.conn.clone(), &pattern, "delete keys").await
    }

    /// The connection, for commands the store does not cover.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The hash of the documents of `projection`.
    pub fn documents_key(&self, projection: &str) -> String {
        format!("{}:{{{projection}}}:docs", self.prefix)
    }

    pub(crate) fn positions_key(&self, projection: &str) -> String {
        format!("{}:{{{projection}}}:pos", self.prefix)
    }

    pub(crate) fn checkpoint_key(&self, projection: &str) -> String {
        format!("{}:{{{projection}}}:checkpoint", self.prefix)
    }

    pub(crate) fn aliases_key(&self) -> String {
        format!("{}:aliases", self.prefix)
    }
}

/// Unlinks every key matching `pattern`, walking the keyspace with `SCAN` (never
/// `KEYS`, which blocks the server while it walks every key). Returns how many.
pub(crate) async fn unlink_matching(
    conn: &mut ConnectionManager,
    pattern: &str,
    context: &'static str,
) -> Result<u64, Error> {
    let (mut cursor, mut unlinked) = (0_u64, 0_u64);
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1_000)
            .query_async(conn)
            .await
            .map_err(Error::backend_in(context))?;
        if !keys.is_empty() {
            let n: u64 = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(conn)
                .await
                .map_err(Error::backend_in(context))?;
            unlinked += n;
        }
        if next == 0 {
            return Ok(unlinked);
        }
        cursor = next;
    }
}

/// A position as a fixed-width decimal string, ordered like the number.
pub(crate) fn encode_position(position: Position) -> String {
    format!("{:020}", position.0)
}

/// A stored position (none is the start).
///
/// # Errors
/// [`Error::Codec`] if it is not a number: never a silent 0, which would let events
/// be applied again to a document that already includes them.
pub(crate) fn decode_position(stored: Option<&str>) -> Result<Position, Error> {
    match stored {
        None => Ok(Position::START),
        Some(text) => text
            .parse()
            .map(Position)
            .map_err(|_| Error::out_of_range("position", format!("`{text}`"))),
    }
}
