//! The subscription loop of [`PgCdcSource`]: peek the slot, hold events back until
//! they are safe, release them in position order, advance the slot once handled.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use cqrs_core::{
    Envelope, Error, EventBatchStream, Metadata, Position, RawEvent, RecordedEvent, StreamId,
    Version,
};
use futures::StreamExt;
use tokio::sync::watch;
use uuid::Uuid;

use super::PgCdcSource;
use super::pgoutput::{Decoder, Transaction};

/// A committed transaction not yet handled: where it ends in the WAL, and the
/// highest position among its events (it is handled once that was delivered).
struct Pending {
    end_lsn: u64,
    last_position: Position,
}

/// Catching up costs O(N log N) for N events, not O(N²): each event is decoded about
/// once (the slot is peeked only when the events decoded before cannot fill a
/// batch), and released from an ordered map, not by sorting what is pending for
/// every batch.
///
/// Events are released only up to `peeked_safe`, the safe position read *before*
/// the last peek, which decoded every transaction committed until then: every
/// transaction below that position had ended, so its events are in `ready`. (A safe
/// position read later could let an event of a transaction committed after the peek
/// be passed over for ever.)
struct State {
    source: PgCdcSource,
    wake: watch::Receiver<u64>,
    /// The schema whose `cqrs_events` is read (the pool's current schema).
    namespace: Option<String>,
    /// Transactions decoded and not yet handled, in commit order.
    pending: Vec<Pending>,
    /// Events decoded and not yet delivered, by position.
    ready: BTreeMap<Position, RecordedEvent>,
    /// The end LSN of the last transaction decoded: peeks return the slot's whole
    /// backlog each time; what is before this was seen already.
    seen_lsn: u64,
    /// Every event up to here was delivered (or was at or before `after`).
    delivered: Position,
    /// The safe position read just before the last peek: what may be released.
    peeked_safe: Position,
    batch_size: usize,
}

pub(super) fn subscribe(
    source: PgCdcSource,
    wake: watch::Receiver<u64>,
    after: Position,
    batch_size: usize,
) -> EventBatchStream {
    let state = State {
        source,
        wake,
        namespace: None,
        pending: Vec::new(),
        ready: BTreeMap::new(),
        seen_lsn: 0,
        delivered: after,
        peeked_safe: Position::START,
        batch_size: batch_size.max(1),
    };
    futures::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        match state.next_batch().await {
            Ok(batch) => Some((Ok(batch), Some(state))),
            Err(error) => Some((Err(error), None)),
        }
    })
    .boxed()
}

impl State {
    async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, Error> {
        // The consumer asks for more only after handling what it got: the slot can
        // move past every transaction fully delivered.
        self.advance().await?;
        loop {
            self.wake.borrow_and_update();
            if self.releasable(self.peeked_safe) < self.batch_size {
                // The safe position first, then the peek up to the WAL flushed by
                // then: every transaction below the safe position had ended, so
                // (committing synchronously) its commit is flushed and decoded.
                let (safe, flushed): (i64, String) =
                    sqlx::query_as("SELECT cqrs_safe_position(), pg_current_wal_flush_lsn()::text")
                        .fetch_one(&self.source.pool)
                        .await
                        .map_err(Error::backend_in("change-data-capture"))?;
                self.peek(&flushed).await?;
                // Negative only before any transaction ever ran: nothing is safe yet.
                self.peeked_safe = Position::try_from(safe.max(0))?;
            }
            let batch = self.release(self.peeked_safe);
            if !batch.is_empty() {
                return Ok(batch);
            }
            if self.wake.changed().await.is_err() {
                return Err(Error::Closed(
                    "the change-data-capture wake-ups stopped".into(),
                ));
            }
        }
    }

    /// Moves the slot past the longest run of transactions, in commit order, whose
    /// events were all delivered.
    async fn advance(&mut self) -> Result<(), Error> {
        let handled = self
            .pending
            .iter()
            .take_while(|tx| tx.last_position <= self.delivered)
            .count();
        if handled == 0 {
            return Ok(());
        }
        let lsn = self.pending[handled - 1].end_lsn;
        sqlx::query("SELECT pg_replication_slot_advance($1, $2::text::pg_lsn)")
            .bind(&*self.source.slot)
            .bind(format_lsn(lsn))
            .execute(&self.source.pool)
            .await
            .map_err(Error::backend_in("change-data-capture: advance the slot"))?;
        self.pending.drain(..handled);
        Ok(())
    }

    /// How many decoded events could be released now, up to a batch.
    fn releasable(&self, safe: Position) -> usize {
        self.ready.range(..=safe).take(self.batch_size).count()
    }

    /// Decodes the transactions committed up to `upto_lsn` that were not decoded
    /// before. The peek starts at the slot (the first transaction not handled), so
    /// what it holds in memory is the backlog not yet handled.
    async fn peek(&mut self, upto_lsn: &str) -> Result<(), Error> {
        let namespace = match &self.namespace {
            Some(namespace) => namespace.clone(),
            None => {
                let namespace: String = sqlx::query_scalar("SELECT current_schema()")
                    .fetch_one(&self.source.pool)
                    .await
                    .map_err(Error::backend_in("change-data-capture"))?;
                self.namespace = Some(namespace.clone());
                namespace
            }
        };
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
            "SELECT data FROM pg_logical_slot_peek_binary_changes($1, $2::text::pg_lsn, NULL,
                 'proto_version', '1', 'publication_names', $3)",
        )
        .bind(&*self.source.slot)
        .bind(upto_lsn)
        .bind(&*self.source.publication)
        .fetch_all(&self.source.pool)
        .await
        .map_err(|e| {
            Error::backend(
                "change-data-capture: read the slot",
                format!(
                    "{e} (does slot `{}` exist? create it with PgCdcSource::create)",
                    self.source.slot
                ),
            )
        })?;
        let mut decoder = Decoder::default();
        self.source
            .decoded
            .fetch_add(rows.len() as u64, std::sync::atomic::Ordering::Relaxed);
        for (data,) in rows {
            let Some(transaction) = decoder.decode(&data, &namespace, "cqrs_events")? else {
                continue;
            };
            if transaction.end_lsn <= self.seen_lsn {
                continue;
            }
            self.seen_lsn = transaction.end_lsn;
            let mut last_position = Position::START;
            for event in to_events(transaction)? {
                last_position = last_position.max(event.position);
                if event.position > self.delivered {
                    self.ready.insert(event.position, event);
                }
            }
            self.pending.push(Pending {
                end_lsn: self.seen_lsn,
                last_position,
            });
        }
        Ok(())
    }

    /// Up to a batch of pending events after `delivered` and at or below `safe`, in
    /// position order.
    fn release(&mut self, safe: Position) -> Vec<RecordedEvent> {
        let mut batch = Vec::with_capacity(self.batch_size.min(self.ready.len()));
        while batch.len() < self.batch_size {
            match self.ready.first_entry() {
                Some(entry) if *entry.key() <= safe => batch.push(entry.remove()),
                _ => break,
            }
        }
        if let Some(last) = batch.last() {
            self.delivered = last.position;
        }
        batch
    }
}

fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

fn column<'a>(row: &'a HashMap<String, Option<String>>, name: &str) -> Result<&'a str, Error> {
    row.get(name).and_then(Option::as_deref).ok_or_else(|| {
        Error::backend(
            "change-data-capture",
            format!("column `{name}` missing from the WAL row"),
        )
    })
}

fn parse<T: std::str::FromStr>(
    row: &HashMap<String, Option<String>>,
    name: &str,
) -> Result<T, Error>
where
    T::Err: std::fmt::Display,
{
    column(row, name)?
        .parse()
        .map_err(|e| Error::backend("change-data-capture", format!("column `{name}`: {e}")))
}

pub(super) fn to_events(transaction: Transaction) -> Result<Vec<RecordedEvent>, Error> {
    transaction
        .rows
        .iter()
        .map(|row| {
            let event_type = column(row, "event_type")?.to_owned();
            let payload = serde_json::from_str(column(row, "payload")?)
                .map_err(|e| Error::codec(&event_type, e))?;
            let metadata: Metadata = serde_json::from_str(column(row, "metadata")?)
                .map_err(|e| Error::codec(&event_type, e))?;
            let recorded_at =
                DateTime::parse_from_str(column(row, "recorded_at")?, "%Y-%m-%d %H:%M:%S%.f%#z")
                    .map_err(|e| {
                        Error::backend("change-data-capture", format!("column `recorded_at`: {e}"))
                    })?
                    .with_timezone(&Utc);
            Ok(Envelope {
                event_id: parse::<Uuid>(row, "event_id")?,
                stream_id: StreamId::new(column(row, "stream_id")?),
                version: Version::try_from(parse::<i64>(row, "version")?)?,
                position: Position::try_from(parse::<i64>(row, "position")?)?,
                recorded_at,
                metadata,
                event: RawEvent {
                    event_type,
                    schema_version: parse(row, "schema_version")?,
                    payload,
                },
            })
        })
        .collect()
}
