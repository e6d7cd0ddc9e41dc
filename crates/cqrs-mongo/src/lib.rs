#![doc = include_str!("../README.md")]

mod command;
mod convert;
mod error;
mod lease;
mod reader;
mod store;
mod writer;

pub use crate::error::MongoError;
pub use crate::lease::MongoLease;
pub use crate::reader::{MongoQuery, Query};
pub use crate::store::MongoReadModelStore;

/// The driver, re-exported so that users name the same `bson` types.
pub use mongodb;
