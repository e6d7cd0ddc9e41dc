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

/// Entry points for the fuzz targets of `reliability/fuzz`, behind the `fuzzing`
/// feature: not part of the API, and may change in any release.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// What the subscriber makes of a Debezium change event of the event table.
    ///
    /// # Errors
    /// The reason the subscriber would give for setting the record aside.
    pub fn debezium(message: &impl rdkafka::message::Message) -> Result<crate::Record, String> {
        crate::debezium::decode(message)
    }
}
pub use crate::record::{Record, decode_record, headers};
pub use crate::relay::KafkaRelay;
pub use crate::subscriber::KafkaSubscriber;

/// The client, re-exported so that users name the same types.
pub use rdkafka;
