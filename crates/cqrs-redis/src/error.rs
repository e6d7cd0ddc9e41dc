//! [`RedisError`]: what setting up the Redis adapter can fail with.
//!
//! The ports themselves return [`cqrs_core::Error`], with driver errors wrapped in
//! [`cqrs_core::Error::Backend`].

/// An error connecting to Redis.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The URL is not valid, or the server could not be reached. Check the URL and that
    /// the server is up. The URL is kept with its password hidden.
    #[error("cannot connect to Redis at {url}: {source}")]
    Connect {
        /// The URL, password hidden.
        url: String,
        /// The driver's error.
        #[source]
        source: redis::RedisError,
    },

    /// The server refused or failed a command.
    #[error("Redis error: {0}")]
    Driver(#[from] redis::RedisError),
}

impl RedisError {
    /// A [`RedisError::Connect`] for `url` (its password hidden in the message).
    pub(crate) fn connect(url: &str) -> impl FnOnce(redis::RedisError) -> Self {
        let url = cqrs_core::redact_url(url);
        move |source| Self::Connect { url, source }
    }
}

impl From<RedisError> for cqrs_core::Error {
    fn from(error: RedisError) -> Self {
        cqrs_core::Error::backend("redis", error)
    }
}
