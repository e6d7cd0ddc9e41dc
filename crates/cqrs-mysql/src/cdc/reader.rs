//! The binlog connection: checks the server, registers as a replica, and turns the
//! stream's events into what the subscription needs (rows of `cqrs_events`,
//! transaction ends, file changes).

use std::time::Duration;

use cqrs_core::{Error, RecordedEvent};
use futures::StreamExt;
use mysql_async::binlog::events::{EventData, RowsEventData, TableMapEvent};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn, Row};

use super::{BinlogCoordinate, MySqlBinlogSource, decode};
use crate::error::MySqlError;
use crate::event_store::EVENT_COLUMNS;
use crate::pool::CONNECT_TIMEOUT;

/// The server error for a binlog that cannot be read from the asked point (purged,
/// or not the start of an event).
pub(super) const ER_MASTER_FATAL_ERROR_READING_BINLOG: u16 = 1236;

/// What one binlog event means to the subscription.
pub(crate) enum Change {
    /// Events inserted into `cqrs_events` (in the transaction being read).
    Rows(Vec<RecordedEvent>),
    /// A transaction began (events up to its end belong to it).
    Begin,
    /// A transaction ended here (an XID, or a `COMMIT`): a point to resume at.
    End { offset: u64 },
    /// Another statement (DDL): its own transaction if none is open.
    Statement { offset: u64 },
    /// Anything else: a heartbeat, another table's change, a file change.
    Nothing,
}

/// A binlog stream of the events of one database.
pub(super) struct Reader {
    stream: BinlogStream,
    /// The file being read (a rotation changes it).
    pub(super) file: String,
    database: String,
    silence: Duration,
    /// Whether the format description came: the server's first event, a made-up
    /// rotation to the asked file, is sent before it and read with its checksum in
    /// the name; it says nothing new, so rotations count only after this.
    described: bool,
}

/// Why reading the binlog stopped.
pub(super) enum Failure {
    /// The server cannot send the binlog from the asked point (purged, or not the
    /// start of an event): start again from its end and the table.
    Unreadable(Error),
    /// Anything else: the subscription fails and is opened again.
    Failed(Error),
}

impl From<mysql_async::Error> for Failure {
    fn from(error: mysql_async::Error) -> Self {
        match &error {
            mysql_async::Error::Server(server)
                if server.code == ER_MASTER_FATAL_ERROR_READING_BINLOG =>
            {
                Self::Unreadable(backend(error))
            }
            _ => Self::Failed(backend(error)),
        }
    }
}

fn backend(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::backend("binlog", error)
}

/// A connection to the server, with the settings and table checked.
pub(super) async fn connect(source: &MySqlBinlogSource, database: &str) -> Result<Conn, Error> {
    let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(source.opts.clone()))
        .await
        .map_err(|_| backend(format!("no answer within {CONNECT_TIMEOUT:?}")))?
        .map_err(backend)?;
    let (log_bin, format, image): (i64, String, String) = conn
        .query_first("SELECT @@log_bin, @@binlog_format, @@binlog_row_image")
        .await
        .map_err(backend)?
        .ok_or_else(|| backend("the server answered no settings"))?;
    if log_bin != 1 || !format.eq_ignore_ascii_case("ROW") || !image.eq_ignore_ascii_case("FULL") {
        return Err(MySqlError::NotReplicable(format!(
            "log_bin = {log_bin}, binlog_format = {format}, binlog_row_image = {image}; \
             change-data-capture needs log_bin = 1, binlog_format = ROW, binlog_row_image = FULL"
        ))
        .into());
    }
    let columns: Option<String> = conn
        .exec_first(
            "SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION SEPARATOR ', ')
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'cqrs_events'",
            (database,),
        )
        .await
        .map_err(backend)?
        .flatten();
    if columns.as_deref() != Some(EVENT_COLUMNS) {
        return Err(MySqlError::NotReplicable(format!(
            "{database}.cqrs_events has the columns {columns:?}, not ({EVENT_COLUMNS}): \
             migrate the database with this version of the crate"
        ))
        .into());
    }
    Ok(conn)
}

/// The end of the binlog now.
pub(super) async fn end_of_binlog(conn: &mut Conn) -> Result<(String, u64), Error> {
    // MySQL 8.4 renamed the statement; MariaDB and older MySQL know the first.
    let row: Option<Row> = match conn.query_first("SHOW MASTER STATUS").await {
        Ok(row) => row,
        // If the other fails too, the first error is the one that explains.
        Err(first @ mysql_async::Error::Server(_)) => conn
            .query_first("SHOW BINARY LOG STATUS")
            .await
            .map_err(|_| backend(first))?,
        Err(other) => return Err(backend(other)),
    };
    let row = row.ok_or_else(|| backend(MySqlError::NotReplicable("the binlog is off".into())))?;
    let file: Option<String> = row.get(0);
    let offset: Option<u64> = row.get(1);
    file.zip(offset)
        .ok_or_else(|| backend("SHOW MASTER STATUS answered no file and position"))
}

impl Reader {
    /// Registers `conn` as a replica and streams the binlog from `file`, `offset`.
    pub(super) async fn open(
        source: &MySqlBinlogSource,
        mut conn: Conn,
        database: &str,
        file: &str,
        offset: u64,
    ) -> Result<Self, Error> {
        let nanos = u64::try_from(source.heartbeat.as_nanos()).unwrap_or(u64::MAX);
        conn.query_drop(format!("SET @master_heartbeat_period = {nanos}"))
            .await
            .map_err(backend)?;
        let request = BinlogStreamRequest::new(source.server_id)
            .with_filename(file.as_bytes())
            .with_pos(offset);
        let stream = conn.get_binlog_stream(request).await.map_err(backend)?;
        tracing::debug!(reader = %source.name, file, offset, "binlog stream opened");
        Ok(Self {
            stream,
            file: file.to_owned(),
            database: database.to_owned(),
            silence: source.heartbeat * 3,
            described: false,
        })
    }

    /// The next event's meaning. Fails if the server sends nothing, not even a
    /// heartbeat, for three heartbeat periods, or an event that does not parse.
    pub(super) async fn next(&mut self) -> Result<Change, Failure> {
        use futures::FutureExt;
        // mysql_common 0.37 panics on some malformed events rather than failing: an
        // event shorter than its header says, and (with overflow checks) a DATETIME
        // of the smallest packed value. The fuzz target `binlog` found both. Such an
        // event fails the subscription with an error, as one that does not parse,
        // and the stream it broke is dropped with it. (With `panic = "abort"` the
        // process aborts instead.)
        match std::panic::AssertUnwindSafe(self.next_change())
            .catch_unwind()
            .await
        {
            Ok(change) => change,
            Err(_) => Err(failed(
                "a binlog event that mysql_common cannot parse (it panicked on it)",
            )),
        }
    }

    async fn next_change(&mut self) -> Result<Change, Failure> {
        let event = match tokio::time::timeout(self.silence, self.stream.next()).await {
            Ok(Some(event)) => event?,
            Ok(None) => return Err(failed("the server ended the binlog stream")),
            Err(_) => {
                return Err(failed(&format!(
                    "no binlog event nor heartbeat for {:?}",
                    self.silence
                )));
            }
        };
        let offset = u64::from(event.header().log_pos());
        if !parsed(event.header().event_type_raw()) {
            return Ok(Change::Nothing);
        }
        let data = event.read_data().map_err(|e| Failure::Failed(backend(e)))?;
        Ok(match data {
            Some(EventData::FormatDescriptionEvent(_)) => {
                self.described = true;
                Change::Nothing
            }
            Some(EventData::RotateEvent(rotate)) if self.described => {
                self.file = rotate.name().into_owned();
                Change::Nothing
            }
            Some(EventData::QueryEvent(query)) => {
                let text = query.query();
                if text.starts_with('#') {
                    // MariaDB's stand-in for an event type a replica did not ask
                    // for (annotations, GTIDs): not a statement.
                    Change::Nothing
                } else if text.eq_ignore_ascii_case("BEGIN") {
                    Change::Begin
                } else if text.eq_ignore_ascii_case("COMMIT") {
                    Change::End { offset }
                } else {
                    Change::Statement { offset }
                }
            }
            Some(EventData::XidEvent(_)) => Change::End { offset },
            Some(EventData::RowsEvent(rows)) => self.rows(&rows)?,
            _ => Change::Nothing,
        })
    }

    fn rows(&self, rows: &RowsEventData<'_>) -> Result<Change, Failure> {
        let Some(table) = self.stream.get_tme(rows.table_id()) else {
            return Err(failed("a rows event without its table map"));
        };
        rows_of(rows, table, &self.database).map_err(Failure::Failed)
    }

    /// Closes the replica connection.
    pub(super) async fn close(self) {
        let _ = self.stream.close().await;
    }
}

fn failed(message: &str) -> Failure {
    Failure::Failed(backend(message.to_owned()))
}

/// The coordinate of `offset` in the file being read.
pub(super) fn at(reader: &Reader, offset: u64, position: cqrs_core::Position) -> BinlogCoordinate {
    BinlogCoordinate {
        file: reader.file.clone(),
        offset,
        position,
    }
}

/// What a rows event of `table` means: the events it inserts into `cqrs_events` of
/// `database`, or nothing (another table; an update or a delete, which this crate
/// never makes).
pub(crate) fn rows_of(
    rows: &RowsEventData<'_>,
    table: &TableMapEvent<'_>,
    database: &str,
) -> Result<Change, Error> {
    if table.database_name() != database || table.table_name() != "cqrs_events" {
        return Ok(Change::Nothing);
    }
    if !matches!(
        rows,
        RowsEventData::WriteRowsEvent(_) | RowsEventData::WriteRowsEventV1(_)
    ) {
        // The log is append-only: an update or a delete is not this crate's.
        tracing::warn!(
            %database,
            "an update or delete of cqrs_events in the binlog, ignored"
        );
        return Ok(Change::Nothing);
    }
    let mut events = Vec::new();
    for row in rows.rows(table) {
        let (_, after) = row.map_err(backend)?;
        let Some(mut after) = after else { continue };
        let values = (0..after.len())
            .map(|i| after.take(i).map(|value| value.into_owned()))
            .collect();
        events.push(decode::event(values)?);
    }
    Ok(Change::Rows(events))
}

/// Whether the reader parses an event of this type: the few it acts on. The others
/// are skipped unparsed: mysql_common 0.37 allocates what a malformed
/// `PREVIOUS_GTIDS_EVENT` claims to hold (found by fuzzing: a failed allocation of
/// petabytes, which aborts the process), and nothing here needs them.
pub(crate) fn parsed(event_type: u8) -> bool {
    use mysql_async::binlog::EventType as T;
    [
        T::QUERY_EVENT,
        T::ROTATE_EVENT,
        T::FORMAT_DESCRIPTION_EVENT,
        T::XID_EVENT,
        T::WRITE_ROWS_EVENT_V1,
        T::UPDATE_ROWS_EVENT_V1,
        T::DELETE_ROWS_EVENT_V1,
        T::WRITE_ROWS_EVENT,
        T::UPDATE_ROWS_EVENT,
        T::DELETE_ROWS_EVENT,
        T::PARTIAL_UPDATE_ROWS_EVENT,
    ]
    .iter()
    .any(|t| *t as u8 == event_type)
}
