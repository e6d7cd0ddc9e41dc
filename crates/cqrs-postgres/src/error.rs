//! [`PgError`]: what setting up the PostgreSQL adapters can fail with.
//!
//! The ports themselves return [`cqrs_core::Error`], with driver errors wrapped in
//! [`cqrs_core::Error::Backend`] and version conflicts as
//! [`cqrs_core::Error::Conflict`].

/// An error connecting to PostgreSQL or preparing its schema.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The server could not be reached or refused the connection (or the URL is not
    /// valid). Check the URL and that the server is up. The URL is kept with its
    /// password hidden.
    #[error("cannot connect to PostgreSQL at {url}: {source}")]
    Connect {
        /// The URL, password hidden.
        url: String,
        /// The driver's error (`connection refused`, authentication, ...).
        #[source]
        source: sqlx::Error,
    },

    /// A schema migration failed; the schema is as it was before that migration
    /// (each runs in its own transaction). The message names the migration.
    #[error("migration {version} ({description}) failed: {source}")]
    Migration {
        /// The migration's number.
        version: i64,
        /// What it does.
        description: &'static str,
        /// The server's error.
        #[source]
        source: sqlx::Error,
    },

    /// A slot or publication name that is not 1 to 59 lower-case letters, digits
    /// and underscores.
    #[error("invalid name `{0}`: use 1 to 59 lower-case letters, digits and underscores")]
    InvalidName(String),

    /// The server failed a query.
    #[error("PostgreSQL error: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<PgError> for cqrs_core::Error {
    fn from(error: PgError) -> Self {
        cqrs_core::Error::backend("postgres", error)
    }
}
