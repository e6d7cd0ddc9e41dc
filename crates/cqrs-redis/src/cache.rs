//! [`RedisCache`]: a read-through cache in Redis in front of another read-model store,
//! kept current by the projection's own commits.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cqrs_core::{
    DocumentChange, Error, Index, Position, ReadModelReader, ReadModelWriter, StoredDocument,
};
use redis::aio::ConnectionManager;

use crate::error::RedisError;
use crate::scripts::CACHE_SET;
use crate::store::{DEFAULT_PREFIX, connect, decode_position, encode_position, unlink_matching};

/// What a cache entry says, after its 20-digit position and a `|`.
const VALUE: &str = "v|";
const ABSENT: &str = "n|";
const WRITING: &str = "w|";

/// A read-through cache in Redis in front of another read-model store `S` (MongoDB,
/// PostgreSQL ...). Give it to the projection's runner *and* to the readers: the runner
/// writes through it, readers read through it.
///
/// * A read ([`get`](ReadModelReader::get)) returns the cached entry, or reads `S` and
///   caches what it found (or that nothing was there) for the time to live.
/// * A commit first marks every entry it changes as *being written* at the batch's
///   positions, then commits to `S`, then caches the new values.
///
/// # Never stale
/// Every entry carries the position of the document it holds, and an entry is only
/// ever replaced by one at the same or a later position (a Lua script compares them).
/// So a reader that read `S` *before* a commit cannot cache its older copy *after* the
/// commit's mark: once the projection has applied an event, no read through the cache
/// returns a document older than that event. If the commit fails after the mark (or
/// the process dies), the marks only turn reads into misses, which read `S`. The one
/// limit: a reader stalled between reading `S` and filling the cache for longer than
/// the time to live (the marks expire) could cache an older copy, until the next
/// commit of that document or the time to live.
///
/// If Redis is unreachable or does not answer within the deadline
/// ([`with_deadline`](Self::with_deadline), 1 s by default), reads fall back to `S`
/// (logged; for a second after a failure they skip Redis altogether, so an outage
/// adds no latency to every read), and commits fail (the runner retries), so a cache
/// outage never serves old data.
///
/// [`get_many`](ReadModelReader::get_many) (what runners use to load documents)
/// reads `S` directly.
#[derive(Clone)]
pub struct RedisCache<S> {
    inner: S,
    conn: ConnectionManager,
    prefix: Arc<str>,
    ttl: Duration,
    only: Option<Arc<HashSet<String>>>,
    /// The longest a call waits for Redis.
    deadline: Duration,
    /// Until when reads skip Redis, after it failed one.
    bypass_until: Arc<Mutex<Option<Instant>>>,
    counts: Arc<Counts>,
}

/// How long reads go straight to the store after Redis failed one, so that an outage
/// does not add a failing round trip (and the driver's reconnection attempts) to every
/// read.
const BYPASS: Duration = Duration::from_secs(1);

/// How a [`RedisCache`]'s reads went, since it was made (shared by its clones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads answered by Redis (a document, or a known absence).
    pub hits: u64,
    /// Reads that went to the store behind (no entry, an entry being written, or
    /// Redis unreachable).
    pub misses: u64,
}

impl CacheStats {
    /// Hits over all reads; `None` before the first read.
    pub fn hit_ratio(&self) -> Option<f64> {
        let reads = self.hits + self.misses;
        #[allow(clippy::cast_precision_loss)]
        (reads > 0).then(|| self.hits as f64 / reads as f64)
    }
}

#[derive(Debug, Default)]
struct Counts {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<S> std::fmt::Debug for RedisCache<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .field("only", &self.only)
            .finish_non_exhaustive()
    }
}

impl<S: ReadModelReader + ReadModelWriter> RedisCache<S> {
    /// The default time to live of an entry.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

    /// The default longest wait for Redis (see [`with_deadline`](Self::with_deadline)).
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(1);

    /// A cache in the Redis at `url` in front of `inner`, for every read model, with
    /// keys under `cqrs:cache:` and the default time to live.
    ///
    /// # Errors
    /// [`RedisError::Connect`] if the server cannot be reached.
    pub async fn connect(inner: S, url: &str) -> Result<Self, RedisError> {
        Ok(Self::new(inner, connect(url).await?))
    }

    /// A cache over an existing connection manager.
    pub fn new(inner: S, conn: ConnectionManager) -> Self {
        Self {
            inner,
            conn,
            prefix: Arc::from(DEFAULT_PREFIX),
            ttl: Self::DEFAULT_TTL,
            deadline: Self::DEFAULT_DEADLINE,
            only: None,
            bypass_until: Arc::default(),
            counts: Arc::default(),
        }
    }

    /// How its reads went so far: hits and misses of the read models it caches.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.counts.hits.load(Ordering::Relaxed),
            misses: self.counts.misses.load(Ordering::Relaxed),
        }
    }

    /// Sets how long an entry lives (at least 1 ms).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// Sets the longest any call waits for Redis: 1 s by default. A read that gets
    /// no answer in time reads the store behind instead (and skips Redis for a
    /// second), so a half-open connection to Redis costs a read at most this much;
    /// a commit that gets none fails, and the runner retries it. Every entry a late
    /// call may still write is guarded by its position, so a call cut off this way
    /// cannot make the cache stale.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Puts the cache keys under `prefix` instead of `cqrs`.
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = Arc::from(prefix);
        self
    }

    /// Caches only the read models named in `projections`; the others pass through.
    #[must_use]
    pub fn only<I: IntoIterator<Item = T>, T: Into<String>>(mut self, projections: I) -> Self {
        self.only = Some(Arc::new(projections.into_iter().map(Into::into).collect()));
        self
    }

    /// The store underneath.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn bypassed(&self) -> bool {
        self.bypass_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|until| Instant::now() < until)
    }

    fn cached(&self, projection: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.contains(projection))
    }

    /// The cache key of a document: all of a read model's entries share a hash tag.
    fn key(&self, projection: &str, id: &str) -> String {
        format!("{}:cache:{{{projection}}}:{id}", self.prefix)
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// Sets `entries` (key, position, entry) unless they hold a later position.
    async fn set(&self, entries: Vec<(String, String, String)>) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut invocation = CACHE_SET.prepare_invoke();
        invocation.arg(self.ttl_ms());
        for (key, position, entry) in entries {
            invocation.key(key).arg(position).arg(entry);
        }
        let mut conn = self.conn.clone();
        cqrs_core::within(self.deadline, "update cache", async {
            let _: i64 = invocation
                .invoke_async(&mut conn)
                .await
                .map_err(Error::backend_in("update cache"))?;
            Ok(())
        })
        .await
    }

    /// The cache entry (key, position, entry) of document `id` at `position`: its value,
    /// or `None` for a document that does not exist (never did, or was deleted).
    fn entry(
        &self,
        projection: &str,
        id: &str,
        position: Position,
        value: Option<&serde_json::Value>,
    ) -> Result<(String, String, String), Error> {
        let p = encode_position(position);
        let entry = match value {
            Some(value) => {
                let json = serde_json::to_string(value).map_err(|e| Error::codec(projection, e))?;
                format!("{p}|{VALUE}{json}")
            }
            None => format!("{p}|{ABSENT}"),
        };
        Ok((self.key(projection, id), p, entry))
    }

    /// Reads `S` and caches what it found; a failure to cache is logged, not returned.
    async fn fill(&self, projection: &str, id: &str) -> Result<Option<StoredDocument>, Error> {
        let found = self.inner.get(projection, id).await?;
        let entry = match &found {
            Some(doc) => self.entry(projection, id, doc.position, Some(&doc.value))?,
            None => self.entry(projection, id, Position::START, None)?,
        };
        if let Err(error) = self.set(vec![entry]).await {
            tracing::warn!(%error, projection, id, "could not fill the cache");
        }
        Ok(found)
    }
}

/// A cached entry: `Some(Some(doc))`, `Some(None)` for a known absence, `None` when it
/// must be read from the store (missing, being written, or unreadable).
fn decode(entry: &str) -> Option<Option<StoredDocument>> {
    let (position, rest) = (entry.get(..20)?, entry.get(21..)?);
    let position = decode_position(Some(position)).ok()?;
    if let Some(json) = rest.strip_prefix(VALUE) {
        let value = serde_json::from_str(json).ok()?;
        Some(Some(StoredDocument { value, position }))
    } else if rest.starts_with(ABSENT) {
        Some(None)
    } else {
        None
    }
}

impl<S: ReadModelReader + ReadModelWriter> ReadModelReader for RedisCache<S> {
    async fn get(&self, projection: &str, id: &str) -> Result<Option<StoredDocument>, Error> {
        if !self.cached(projection) {
            return self.inner.get(projection, id).await;
        }
        if self.bypassed() {
            self.counts.misses.fetch_add(1, Ordering::Relaxed);
            return self.inner.get(projection, id).await;
        }
        let mut conn = self.conn.clone();
        let key = self.key(projection, id);
        let entry: Result<Option<String>, Error> =
            cqrs_core::within(self.deadline, "read cache", async {
                redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .map_err(Error::backend_in("read cache"))
            })
            .await;
        let miss = || self.counts.misses.fetch_add(1, Ordering::Relaxed);
        match entry {
            Ok(Some(entry)) => match decode(&entry) {
                Some(hit) => {
                    self.counts.hits.fetch_add(1, Ordering::Relaxed);
                    Ok(hit)
                }
                None => {
                    miss();
                    self.fill(projection, id).await
                }
            },
            Ok(None) => {
                miss();
                self.fill(projection, id).await
            }
            Err(error) => {
                miss();
                tracing::warn!(%error, projection, ?BYPASS, "cache unreachable; reading the store");
                *self
                    .bypass_until
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(Instant::now() + BYPASS);
                self.inner.get(projection, id).await
            }
        }
    }

    async fn get_many(
        &self,
        projection: &str,
        ids: &[String],
    ) -> Result<HashMap<String, StoredDocument>, Error> {
        self.inner.get_many(projection, ids).await
    }
}

impl<S: ReadModelReader + ReadModelWriter> ReadModelWriter for RedisCache<S> {
    async fn checkpoint(&self, projection: &str) -> Result<Position, Error> {
        self.inner.checkpoint(projection).await
    }

    async fn commit(
        &self,
        projection: &str,
        changes: Vec<DocumentChange>,
        checkpoint: Position,
    ) -> Result<(), Error> {
        if !self.cached(projection) {
            return self.inner.commit(projection, changes, checkpoint).await;
        }
        let marks = changes
            .iter()
            .map(|change| {
                let p = encode_position(change.position());
                let entry = format!("{p}|{WRITING}");
                (self.key(projection, change.id()), p, entry)
            })
            .collect();
        let values = changes
            .iter()
            .map(|change| {
                let value = match change {
                    DocumentChange::Put { value, .. } => Some(value),
                    DocumentChange::Delete { .. } => None,
                };
                self.entry(projection, change.id(), change.position(), value)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.set(marks).await?;
        self.inner.commit(projection, changes, checkpoint).await?;
        self.set(values).await
    }

    async fn reset(&self, projection: &str) -> Result<(), Error> {
        self.inner.reset(projection).await?;
        if !self.cached(projection) {
            return Ok(());
        }
        // Entries of the old read model would shadow the rebuilt one: drop them all.
        let pattern = format!("{}:cache:{{{projection}}}:*", self.prefix);
        // Not under the deadline: walking a large keyspace takes longer than a read
        // should wait. Each SCAN and UNLINK has the connection's response timeout.
        unlink_matching(&mut self.conn.clone(), &pattern, "clear cache").await?;
        Ok(())
    }

    async fn prepare(&self, projection: &str, indexes: &[Index]) -> Result<(), Error> {
        self.inner.prepare(projection, indexes).await
    }

    async fn alias(&self, alias: &str) -> Result<Option<String>, Error> {
        self.inner.alias(alias).await
    }

    async fn set_alias(&self, alias: &str, target: &str) -> Result<(), Error> {
        self.inner.set_alias(alias, target).await
    }
}
