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
pub use event_store::MySqlEventStore;
pub use lease::MySqlLease;
pub use migrate::migrate;
pub use pool::{CONNECT_TIMEOUT, connect_pool};
pub use read_model::MySqlReadModelStore;
