//! A MySQL binlog file, as the binlog source reads the server's stream: mysql_common
//! parses each event (the format description, table maps, rows events, checksums),
//! and the source turns the rows events of `cqrs_fuzz.cqrs_events` into events
//! (`cqrs_mysql::fuzzing::binlog_rows`, the code the live reader runs).
//!
//! Input: a binlog file (its 4-byte magic, then events). The seeds are files a
//! MariaDB 10.11 server wrote for a few transactions (see `corpus/README.md`), with
//! CRC32 checksums and without (mutations of a checksummed event are mostly refused
//! by the checksum, so the unchecked seed is the one that reaches the rows).

use mysql_common::binlog::EventStreamReader;
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::events::{EventData, RowsEventData};

/// The database of the watched table in the seeds.
pub const DATABASE: &str = "cqrs_fuzz";

/// The events the binlog source makes of every rows event of `input`, as far as the
/// file parses; `None` if it is not a binlog file.
///
/// Each event goes to mysql_common's reader on its own, as mysql_async hands it one
/// network packet per event: the event's declared size, or what is left. mysql_common
/// 0.37 panics on some malformed events (found by this target: an event shorter than
/// its header says, `corpus/binlog/cut-short.bin`; a DATETIME of the smallest packed
/// value, with overflow checks, `regressions/binlog/`; and an unbounded allocation
/// for a malformed `PREVIOUS_GTIDS_EVENT`, which the source avoids by not parsing
/// the event types it does not act on); the binlog source catches
/// such a panic and fails the subscription with an error instead, and so does this
/// target. Panics in this crate's own decoding are not caught here: the
/// `binlog_row` target drives it without a guard.
pub fn events(input: &[u8]) -> Option<Result<Vec<cqrs_core::RecordedEvent>, cqrs_core::Error>> {
    let mut rest = input.strip_prefix(b"\xfebin")?;
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut all = Vec::new();
    while rest.len() >= 13 {
        let size = u32::from_le_bytes([rest[9], rest[10], rest[11], rest[12]]);
        let size = usize::try_from(size)
            .unwrap_or(usize::MAX)
            .clamp(1, rest.len());
        let (packet, after) = rest.split_at(size);
        rest = after;
        // Everything mysql_common parses, as the binlog source guards it.
        let parsed = quietly(|| {
            let event = match reader.read(packet) {
                Ok(Some(event)) => event,
                Ok(None) => return Ok(None),
                Err(error) => return Err(cqrs_core::Error::backend("binlog", error)),
            };
            if !cqrs_mysql::fuzzing::binlog_parses(event.header().event_type_raw()) {
                return Ok(Some(Vec::new()));
            }
            let Ok(Some(EventData::RowsEvent(rows))) = event.read_data() else {
                return Ok(Some(Vec::new()));
            };
            let rows: RowsEventData<'_> = rows;
            let Some(table) = reader.get_tme(rows.table_id()) else {
                return Ok(Some(Vec::new()));
            };
            cqrs_mysql::fuzzing::binlog_rows(&rows, table, DATABASE).map(Some)
        });
        match parsed {
            Ok(Ok(Some(events))) => all.extend(events),
            Ok(Ok(None)) => break,
            Ok(Err(error)) => return Some(Err(error)),
            Err(_) => {
                return Some(Err(cqrs_core::Error::backend(
                    "binlog",
                    "an event mysql_common cannot parse (it panicked on it)",
                )));
            }
        }
    }
    Some(Ok(all))
}

/// Runs `f`, catching a panic without printing it: the global panic hook is set
/// aside meanwhile (libFuzzer's aborts the process, and the known panics of
/// mysql_common would drown the test log). Only this target does that.
fn quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result
}

/// Runs one input.
pub fn run(input: &[u8]) {
    if let Some(Err(error)) = events(input) {
        assert!(
            matches!(
                error,
                cqrs_core::Error::Codec { .. } | cqrs_core::Error::Backend { .. }
            ),
            "a bad binlog is a codec or backend error, not {error:?}"
        );
    }
}
