//! The subscription loop of [`MySqlBinlogSource`]: read the binlog, release events
//! in position order, fill a gap from the table, store the coordinate once handled.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::time::Duration;

use cqrs_core::{Error, EventBatchStream, LogReader, Position, RecordedEvent};
use futures::StreamExt;

use super::reader::{self, Change, Failure, Reader};
use super::{BinlogCoordinate, MySqlBinlogSource, coordinate};
use crate::MySqlEventStore;

/// How long a position may stay missing from both the binlog and the table before
/// the subscription fails (it cannot happen with the store's appends; a hand-made
/// change to the table could cause it).
const GAP_DEADLINE: Duration = Duration::from_secs(10);

struct State {
    source: MySqlBinlogSource,
    /// Reads the table when the binlog cannot give an event.
    table: MySqlEventStore,
    batch_size: usize,
    /// The database whose `cqrs_events` is read (the pool's).
    database: Option<String>,
    reader: Option<Reader>,
    /// Every event up to here was delivered (or was at or before `after`).
    delivered: Position,
    /// Every event up to here is committed: one missing from `ready` is read from
    /// the table.
    known: Position,
    /// Events read from the binlog and not yet delivered, by position.
    ready: BTreeMap<Position, RecordedEvent>,
    /// Events of the transaction being read.
    open: Vec<RecordedEvent>,
    in_transaction: bool,
    /// The highest position read from the binlog (or below which all was).
    decoded: Position,
    /// Transaction ends read and not yet handled, in binlog order; each with the
    /// highest position at or before it. Ends with the same position are merged.
    ends: VecDeque<BinlogCoordinate>,
    /// The coordinate stored last.
    stored: Option<BinlogCoordinate>,
}

pub(super) fn subscribe(
    source: MySqlBinlogSource,
    after: Position,
    batch_size: usize,
) -> EventBatchStream {
    let state = State {
        table: MySqlEventStore::new(source.pool.clone()),
        source,
        batch_size: batch_size.max(1),
        database: None,
        reader: None,
        delivered: after,
        known: Position::START,
        ready: BTreeMap::new(),
        open: Vec::new(),
        in_transaction: false,
        decoded: Position::START,
        ends: VecDeque::new(),
        stored: None,
    };
    futures::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        match state.next_batch().await {
            Ok(batch) => Some((Ok(batch), Some(state))),
            Err(error) => {
                if let Some(reader) = state.reader.take() {
                    reader.close().await;
                }
                Some((Err(error), None))
            }
        }
    })
    .boxed()
}

impl State {
    /// The next batch. Called again only once the consumer handled the last one, so
    /// everything delivered so far is handled.
    async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, Error> {
        self.store_handled().await?;
        let mut gap_since = None;
        loop {
            if self.reader.is_none() {
                self.open().await?;
            }
            let batch = self.release();
            if !batch.is_empty() {
                return Ok(batch);
            }
            let next = Position(self.delivered.0 + 1);
            let gap = self.known >= next || self.ready.keys().next().is_some_and(|&p| p > next);
            if gap {
                let batch = self.read_table().await?;
                if !batch.is_empty() {
                    return Ok(batch);
                }
                let since = *gap_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() > GAP_DEADLINE {
                    return Err(Error::backend(
                        "binlog",
                        format!("position {next} is committed but missing from the table"),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let Some(reader) = self.reader.as_mut() else {
                continue;
            };
            match reader.next().await {
                Ok(change) => self.apply(change),
                Err(Failure::Unreadable(error)) => {
                    tracing::warn!(
                        reader = %self.source.name,
                        %error,
                        "the binlog cannot be read from the stored coordinate (purged?); \
                         starting at its end, reading what is missing from the table"
                    );
                    if let Some(reader) = self.reader.take() {
                        reader.close().await;
                    }
                    coordinate::forget(&self.source.pool, &self.source.name)
                        .await
                        .map_err(Error::backend_in("binlog"))?;
                    self.stored = None;
                    self.ends.clear();
                    self.open.clear();
                    self.in_transaction = false;
                }
                Err(Failure::Failed(error)) => return Err(error),
            }
        }
    }

    /// Takes in one binlog change.
    fn apply(&mut self, change: Change) {
        match change {
            Change::Rows(events) => {
                let decoded = u64::try_from(events.len()).unwrap_or(u64::MAX);
                self.source
                    .stats
                    .from_binlog
                    .fetch_add(decoded, Ordering::Relaxed);
                self.open.extend(events);
            }
            Change::Begin => self.in_transaction = true,
            Change::Statement { .. } if self.in_transaction => {}
            Change::End { offset } | Change::Statement { offset } => {
                self.in_transaction = false;
                for event in self.open.drain(..) {
                    self.decoded = self.decoded.max(event.position);
                    if event.position > self.delivered {
                        self.ready.insert(event.position, event);
                    }
                }
                let Some(reader) = self.reader.as_ref() else {
                    return;
                };
                let end = reader::at(reader, offset, self.decoded);
                match self.ends.back_mut() {
                    // Nothing of ours since: the later end is the better resume point.
                    Some(last) if last.position == end.position => *last = end,
                    _ => self.ends.push_back(end),
                }
            }
            Change::Nothing => {}
        }
    }

    /// Releases the events that follow `delivered` without a hole.
    fn release(&mut self) -> Vec<RecordedEvent> {
        let mut batch = Vec::new();
        while batch.len() < self.batch_size {
            let Some(entry) = self.ready.first_entry() else {
                break;
            };
            if entry.key().0 != self.delivered.0 + 1 {
                break;
            }
            self.delivered = *entry.key();
            batch.push(entry.remove());
        }
        batch
    }

    /// Reads from the table what the binlog has not given: up to the known
    /// committed head or the first event waiting in `ready`.
    async fn read_table(&mut self) -> Result<Vec<RecordedEvent>, Error> {
        let until = self
            .ready
            .keys()
            .next()
            .map_or(self.known, |&first| Position(first.0 - 1).max(self.known));
        let wanted = usize::try_from(until.0 - self.delivered.0).unwrap_or(usize::MAX);
        let batch = self
            .table
            .read_all(self.delivered, wanted.min(self.batch_size))
            .await?;
        if let Some(last) = batch.last() {
            self.delivered = last.position;
            self.ready = self.ready.split_off(&Position(self.delivered.0 + 1));
            let read = u64::try_from(batch.len()).unwrap_or(u64::MAX);
            self.source
                .stats
                .from_table
                .fetch_add(read, Ordering::Relaxed);
        }
        Ok(batch)
    }

    /// Stores the end of the last transaction whose events were all handled.
    async fn store_handled(&mut self) -> Result<(), Error> {
        let mut handled = None;
        while self
            .ends
            .front()
            .is_some_and(|end| end.position <= self.delivered)
        {
            handled = self.ends.pop_front();
        }
        let Some(handled) = handled else {
            return Ok(());
        };
        if self.stored.as_ref() != Some(&handled) {
            coordinate::store(&self.source.pool, &self.source.name, &handled)
                .await
                .map_err(Error::backend_in("binlog"))?;
            self.stored = Some(handled);
        }
        Ok(())
    }

    /// Opens the binlog at the stored coordinate, or at its end (with the tail read
    /// under a shared lock, so every event committed before that end is known).
    async fn open(&mut self) -> Result<(), Error> {
        let database = match &self.database {
            Some(database) => database.clone(),
            None => {
                let database: Option<String> = sqlx::query_scalar("SELECT DATABASE()")
                    .fetch_one(&self.source.pool)
                    .await
                    .map_err(Error::backend_in("binlog"))?;
                let database = database.ok_or_else(|| {
                    Error::backend("binlog", "the pool's connections have no current database")
                })?;
                self.database = Some(database.clone());
                database
            }
        };
        let mut conn = reader::connect(&self.source, &database).await?;
        let stored = coordinate::load(&self.source.pool, &self.source.name)
            .await
            .map_err(Error::backend_in("binlog"))?;
        let (file, offset) = match stored {
            Some(stored) => {
                self.known = self.known.max(stored.position);
                self.decoded = self.decoded.max(stored.position);
                let start = (stored.file.clone(), stored.offset);
                self.stored = Some(stored);
                start
            }
            None => {
                let end = reader::end_of_binlog(&mut conn).await?;
                // Waits for an append committing now: its events are then in the
                // binlog before `end`, and in the table.
                let tail: u64 = sqlx::query_scalar(
                    "SELECT position FROM cqrs_tail WHERE id = 1 LOCK IN SHARE MODE",
                )
                .fetch_one(&self.source.pool)
                .await
                .map_err(Error::backend_in("binlog"))?;
                self.known = self.known.max(Position(tail));
                self.decoded = self.decoded.max(Position(tail));
                end
            }
        };
        tracing::info!(
            reader = %self.source.name,
            file,
            offset,
            after = %self.delivered,
            known = %self.known,
            "reading the binlog"
        );
        self.reader = Some(Reader::open(&self.source, conn, &database, &file, offset).await?);
        Ok(())
    }
}
