//! [`MongoError`]: what setting up the MongoDB adapter can fail with.
//!
//! The ports themselves return [`cqrs_core::Error`], with driver errors wrapped in
//! [`cqrs_core::Error::Backend`].

/// An error connecting to MongoDB or preparing a read model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MongoError {
    /// The URL is not valid, or the server could not be reached. Check the URL and that
    /// the server is up.
    #[error("cannot connect to MongoDB: {0}")]
    Connect(#[source] mongodb::error::Error),

    /// The server refused or failed a command.
    #[error("MongoDB error: {0}")]
    Driver(#[from] mongodb::error::Error),
}

impl From<MongoError> for cqrs_core::Error {
    fn from(error: MongoError) -> Self {
        cqrs_core::Error::backend("mongodb", error)
    }
}
