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

/// Entry points for the fuzz targets of `reliability/fuzz`, behind the `fuzzing`
/// feature: not part of the API, and may change in any release.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// The events the change-data-capture stream makes of a replication stream of
    /// `pgoutput` messages (protocol version 1) from the table `namespace.cqrs_events`.
    ///
    /// # Errors
    /// What the stream would fail with on these messages.
    pub fn pgoutput<'a>(
        messages: impl IntoIterator<Item = &'a [u8]>,
        namespace: &str,
    ) -> Result<Vec<cqrs_core::RecordedEvent>, cqrs_core::Error> {
        crate::cdc::decode_messages(messages, namespace)
    }
}

/// The driver, re-exported so that users name the same types (`PgPool`,
/// `PgConnectOptions`) without a version to keep in step.
pub use sqlx;
