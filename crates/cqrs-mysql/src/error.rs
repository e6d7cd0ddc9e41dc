//! [`MySqlError`]: what setting up the MySQL / MariaDB adapters can fail with.
//!
//! The ports themselves return [`cqrs_core::Error`], with driver errors wrapped in
//! [`cqrs_core::Error::Backend`] and version conflicts as
//! [`cqrs_core::Error::Conflict`].

/// An error connecting to MySQL / MariaDB or preparing its schema.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MySqlError {
    /// The server could not be reached or refused the connection (or the URL is not
    /// valid). Check the URL and that the server is up. The URL is kept with its
    /// password hidden.
    #[error("cannot connect to MySQL at {url}: {source}")]
    Connect {
        /// The URL, password hidden.
        url: String,
        /// The driver's error (`connection refused`, authentication, ...).
        #[source]
        source: sqlx::Error,
    },

    /// A schema migration failed. MySQL commits each DDL statement on its own, so
    /// the statements of that migration before the failing one stay applied; the
    /// message names the migration.
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

    /// A binlog reader's name is not 1 to 64 ASCII letters, digits, `_` or `-`.
    #[error("invalid binlog reader name {0:?}: use 1 to 64 ASCII letters, digits, '_' or '-'")]
    InvalidName(String),

    /// A URL could not be read.
    #[error("invalid MySQL URL {url}: {reason}")]
    InvalidUrl {
        /// The URL, password hidden.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The server cannot be read by change-data-capture as it is set up: the binlog
    /// is off or not in full row format, or the event table is not the one this
    /// crate creates. The message says what to change.
    #[error("change-data-capture cannot read this server: {0}")]
    NotReplicable(String),

    /// The server failed a query.
    #[error("MySQL error: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<MySqlError> for cqrs_core::Error {
    fn from(error: MySqlError) -> Self {
        cqrs_core::Error::backend("mysql", error)
    }
}
