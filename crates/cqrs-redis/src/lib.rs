#![doc = include_str!("../README.md")]

mod cache;
mod error;
mod lease;
mod read_model;
mod scripts;
mod store;

pub use crate::cache::{CacheStats, RedisCache};
pub use crate::error::RedisError;
pub use crate::lease::RedisLease;
pub use crate::store::{DEFAULT_PREFIX, RedisReadModelStore};

/// The driver, re-exported so that users name the same types.
pub use redis;
