#![doc = include_str!("../README.md")]

#[cfg(feature = "binlog")]
mod cdc;
mod error;
mod event_store;
mod inline;
mod lease;
mod migrate;
mod pool;
mod read_model;

#[cfg(feature = "binlog")]
pub use cdc::{BinlogCoordinate, MySqlBinlogSource};
pub use error::MySqlError;

/// Entry points for the fuzz targets of `reliability/fuzz`, behind the `fuzzing`
/// feature: not part of the API, and may change in any release.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use mysql_async::binlog::value::BinlogValue;

    /// The event the binlog source makes of the after-image `values` of an insert
    /// into `cqrs_events`.
    ///
    /// # Errors
    /// What the source would fail with on this row.
    pub fn binlog_row(
        values: Vec<Option<BinlogValue<'static>>>,
    ) -> Result<cqrs_core::RecordedEvent, cqrs_core::Error> {
        crate::cdc::decode_row(values)
    }

    /// Whether the binlog source parses an event of this raw type (it skips the
    /// others unparsed).
    pub fn binlog_parses(event_type: u8) -> bool {
        crate::cdc::parsed(event_type)
    }

    /// The events the binlog source makes of a rows event of `table` (the table map
    /// the stream gave for it), watching `cqrs_events` of `database`.
    ///
    /// # Errors
    /// What the source would fail with on this event.
    pub fn binlog_rows(
        rows: &mysql_async::binlog::events::RowsEventData<'_>,
        table: &mysql_async::binlog::events::TableMapEvent<'_>,
        database: &str,
    ) -> Result<Vec<cqrs_core::RecordedEvent>, cqrs_core::Error> {
        Ok(match crate::cdc::rows_of(rows, table, database)? {
            crate::cdc::Change::Rows(events) => events,
            _ => Vec::new(),
        })
    }
}
pub use event_store::MySqlEventStore;
pub use lease::MySqlLease;
pub use migrate::migrate;
pub use pool::{CONNECT_TIMEOUT, connect_pool};
pub use read_model::MySqlReadModelStore;
