//! [`PgCdcSource`]: change-data-capture of the events from PostgreSQL's write-ahead
//! log, through a logical replication slot.

mod pgoutput;
mod stream;

/// What the change-data-capture stream makes of `messages`, decoded in order as one
/// replication stream of `namespace.cqrs_events`: the events of every committed
/// transaction. For the fuzz targets of `reliability/fuzz` (the `fuzzing` feature).
#[cfg(feature = "fuzzing")]
pub(crate) fn decode_messages<'a>(
    messages: impl IntoIterator<Item = &'a [u8]>,
    namespace: &str,
) -> Result<Vec<cqrs_core::RecordedEvent>, cqrs_core::Error> {
    let mut decoder = pgoutput::Decoder::default();
    let mut events = Vec::new();
    for message in messages {
        if let Some(transaction) = decoder.decode(message, namespace, "cqrs_events")? {
            events.extend(stream::to_events(transaction)?);
        }
    }
    Ok(events)
}

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cqrs_core::{EventBatchStream, EventSubscriber, Position};
use sqlx::PgPool;

use crate::error::PgError;
use crate::subscription::Listener;

/// Reads the events committed to `cqrs_events` from the write-ahead log, through a
/// logical replication slot and the built-in `pgoutput` plugin, and delivers them as
/// an [`EventSubscriber`]: feed a [`ProjectionRunner`](cqrs_core::ProjectionRunner)
/// with it and the write path is not touched at all.
///
/// * **Commit order, then position order.** The slot yields transactions in commit
///   order. Commit order and positions can disagree (see the crate docs on
///   positions), so the source holds events back until they are below the safe
///   position, and releases them in position order: a consumer that checkpoints
///   positions never skips one.
/// * **At least once.** The slot advances past a transaction only once every event
///   of it was delivered and the consumer asked for more (a runner asks only after
///   committing the batch). A consumer killed in between gets those events again
///   from the slot; the runner's checkpoint makes them no-ops.
/// * **Explicit slots.** [`create`](Self::create) makes the slot and its publication,
///   [`drop_slot`](Self::drop_slot) removes them. **An abandoned slot keeps every WAL
///   segment from its position on: the server's disk fills up.** Drop slots you no
///   longer read, and watch [`retained_wal_bytes`](Self::retained_wal_bytes).
/// * **Only what follows the slot.** A slot sees the changes committed after it was
///   created; create it before the events it must deliver (or catch a new read model
///   up from the event store first, then switch).
///
/// Why the SQL functions (`pg_logical_slot_peek_binary_changes`,
/// `pg_replication_slot_advance`) and not the streaming replication protocol: they
/// run over an ordinary connection of the pool, with the same driver, TLS and
/// credentials (plus the `REPLICATION` attribute), and give exactly the
/// "advance after handling" control that at-least-once needs. The streaming protocol
/// would push changes with less latency; no maintained Rust driver offered it on the
/// sqlx connection this crate uses.
#[derive(Clone)]
pub struct PgCdcSource {
    pool: PgPool,
    slot: Arc<str>,
    publication: Arc<str>,
    poll_interval: Duration,
    listen: Arc<Listener>,
    decoded: Arc<AtomicU64>,
}

impl std::fmt::Debug for PgCdcSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCdcSource")
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

fn check_name(name: &str) -> Result<(), PgError> {
    let ok = !name.is_empty()
        && name.len() <= 59
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(PgError::InvalidName(name.to_owned()))
    }
}

impl PgCdcSource {
    /// A source reading the existing slot `slot` (and its publication `{slot}_pub`).
    ///
    /// # Errors
    /// [`PgError::InvalidName`] unless `slot` is 1 to 59 lower-case letters, digits
    /// and underscores.
    pub fn new(pool: PgPool, slot: &str) -> Result<Self, PgError> {
        check_name(slot)?;
        Ok(Self {
            listen: Arc::new(Listener::new(pool.clone())),
            pool,
            slot: slot.into(),
            publication: format!("{slot}_pub").into(),
            poll_interval: Duration::from_millis(200),
            decoded: Arc::default(),
        })
    }

    /// Creates the publication of `cqrs_events` (in the pool's current schema) and
    /// the logical replication slot `slot`, unless they exist, and returns a source
    /// reading them. The role needs the `REPLICATION` attribute, and the server
    /// `wal_level = logical`.
    ///
    /// # Errors
    /// [`PgError::InvalidName`], or [`PgError::Database`] if the server refuses.
    pub async fn create(pool: PgPool, slot: &str) -> Result<Self, PgError> {
        let source = Self::new(pool, slot)?;
        let publication_exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_publication WHERE pubname = $1)")
                .bind(&*source.publication)
                .fetch_one(&source.pool)
                .await?;
        if !publication_exists {
            sqlx::query(&format!(
                "CREATE PUBLICATION {} FOR TABLE cqrs_events",
                source.publication
            ))
            .execute(&source.pool)
            .await?;
        }
        let slot_exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)",
        )
        .bind(&*source.slot)
        .fetch_one(&source.pool)
        .await?;
        if !slot_exists {
            sqlx::query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')")
                .bind(&*source.slot)
                .execute(&source.pool)
                .await?;
            tracing::info!(slot = %source.slot, "created logical replication slot");
        }
        Ok(source)
    }

    /// Drops the slot and its publication. Do it for every slot no longer read.
    ///
    /// # Errors
    /// [`PgError::Database`] if the server refuses (for example while a session is
    /// still reading the slot).
    pub async fn drop_slot(&self) -> Result<(), PgError> {
        sqlx::query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1")
            .bind(&*self.slot)
            .execute(&self.pool)
            .await?;
        sqlx::query(&format!("DROP PUBLICATION IF EXISTS {}", self.publication))
            .execute(&self.pool)
            .await?;
        tracing::info!(slot = %self.slot, "dropped logical replication slot");
        Ok(())
    }

    /// How many bytes of WAL the server keeps for this slot: what an abandoned slot
    /// costs, growing with every write.
    ///
    /// # Errors
    /// [`PgError::Database`], or if the slot does not exist.
    pub async fn retained_wal_bytes(&self) -> Result<u64, PgError> {
        let retained: i64 = sqlx::query_scalar(
            "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1",
        )
        .bind(&*self.slot)
        .fetch_one(&self.pool)
        .await?;
        // Negative when the slot is ahead of the flushed WAL: nothing retained.
        Ok(u64::try_from(retained).unwrap_or(0))
    }

    /// Reads through the publication `publication` instead of `{slot}_pub` (for
    /// example one shared by several slots, or the publication of the slot a copy was
    /// made from: a slot can only decode changes through a publication that existed
    /// when they were written). [`drop_slot`](Self::drop_slot) drops it too.
    ///
    /// # Errors
    /// [`PgError::InvalidName`] unless `publication` is 1 to 59 lower-case letters,
    /// digits and underscores.
    pub fn with_publication(mut self, publication: &str) -> Result<Self, PgError> {
        check_name(publication)?;
        self.publication = publication.into();
        Ok(self)
    }

    /// Sets how often the slot is read when no notification arrives (default 200 ms).
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The slot's name.
    pub fn slot(&self) -> &str {
        &self.slot
    }

    /// How many WAL messages this source and its clones have decoded so far: the
    /// cost of reading the slot. Catching up N events decodes about N inserts (plus
    /// their transactions' begins and commits), not N for every batch.
    pub fn messages_decoded(&self) -> u64 {
        self.decoded.load(Ordering::Relaxed)
    }
}

impl EventSubscriber for PgCdcSource {
    fn subscribe(&self, after: Position, batch_size: usize) -> EventBatchStream {
        let wake = self.listen.wake_up(self.poll_interval);
        stream::subscribe(self.clone(), wake, after, batch_size)
    }
}
