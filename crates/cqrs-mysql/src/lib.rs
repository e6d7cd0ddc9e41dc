#![doc = include_str!("../README.md")]

mod error;
mod event_store;
mod migrate;
mod pool;

pub use error::MySqlError;
pub use event_store::MySqlEventStore;
pub use migrate::migrate;
pub use pool::{CONNECT_TIMEOUT, connect_pool};
