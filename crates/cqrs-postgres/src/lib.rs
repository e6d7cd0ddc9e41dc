#![doc = include_str!("../README.md")]

mod cdc;
mod error;
mod event_store;
mod inline;
mod lease;
mod migrate;
mod pool;
mod read_model;
mod subscription;

pub use crate::cdc::PgCdcSource;
pub use crate::error::PgError;
pub use crate::event_store::PgEventStore;
pub use crate::lease::PgLease;
pub use crate::migrate::migrate;
pub use crate::pool::{CONNECT_TIMEOUT, connect_pool};
pub use crate::read_model::PgReadModelStore;

/// The driver, re-exported so that users name the same types (`PgPool`,
/// `PgConnectOptions`) without a version to keep in step.
pub use sqlx;
