//! [`MongoError`]: what setting up the MongoDB adapter can fail with.
//!
//! The ports themselves return [`cqrs_core::Error`], with driver errors wrapped in
//! [`cqrs_core::Error::Backend`].

/// An error connecting to MongoDB or preparing a read model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MongoError {
    /// The URL is not valid, or the server could not be reached. Check the URL and that
    /// the server is up. The URL is kept with its password hidden.
    #[error("cannot connect to MongoDB at {url}: {source}")]
    Connect {
        /// The URL, password hidden.
        url: String,
        /// The driver's error.
        #[source]
        source: mongodb::error::Error,
    },

    /// The server refused or failed a command.
    #[error("MongoDB error: {0}")]
    Driver(#[from] mongodb::error::Error),
}

impl MongoError {
    /// A [`MongoError::Connect`] for `url` (its password hidden in the message).
    pub(crate) fn connect(url: &str) -> impl FnOnce(mongodb::error::Error) -> Self {
        let url = cqrs_core::redact_url(url);
        move |source| Self::Connect { url, source }
    }
}

impl From<MongoError> for cqrs_core::Error {
    fn from(error: MongoError) -> Self {
        cqrs_core::Error::backend("mongodb", error)
    }
}
