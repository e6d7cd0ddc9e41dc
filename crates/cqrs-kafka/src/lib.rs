#![doc = include_str!("../README.md")]

mod checkpoint;
mod client;
mod dead_letters;
mod debezium;
mod error;
mod record;
mod relay;
mod subscriber;
mod topics;

pub use crate::client::probe;
pub use crate::dead_letters::{DeadLetter, KafkaDeadLetters};
pub use crate::debezium::debezium_connector;
pub use crate::error::KafkaError;
pub use crate::record::{Record, decode_record, headers};
pub use crate::relay::KafkaRelay;
pub use crate::subscriber::KafkaSubscriber;

/// The client, re-exported so that users name the same types.
pub use rdkafka;
