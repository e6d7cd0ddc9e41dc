#![doc = include_str!("../README.md")]

mod checkpoint;
mod error;
mod record;
mod relay;
mod topics;

pub use crate::error::KafkaError;
pub use crate::record::headers;
pub use crate::relay::KafkaRelay;

/// The client, re-exported so that users name the same types.
pub use rdkafka;
