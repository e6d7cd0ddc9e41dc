//! [`MongoReadModelStore`]: where read models live in MongoDB, and how to connect.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::{Document, doc};
use mongodb::options::{ClientOptions, ServerAddress};
use mongodb::{Client, Collection, Database};

use crate::error::MongoError;

/// The collection of projection checkpoints: `{_id: read model, position}`.
pub(crate) const CHECKPOINTS: &str = "cqrs_checkpoints";
/// The collection of aliases: `{_id: alias, target}`.
pub(crate) const ALIASES: &str = "cqrs_aliases";

/// Read models in MongoDB: a collection per read model (named after it, or as
/// configured with [`with_collection`](Self::with_collection)), a document per
/// read-model document, shaped `{_id: id, value: <the document>, position: <i64>}`.
///
/// # Guarantees, without transactions
/// It needs neither multi-document transactions nor change streams (FerretDB, or a
/// MongoDB without a replica set, have neither), so a commit is *idempotent*, not
/// atomic:
///
/// 1. every change of the batch is written in one `update` command (one round trip;
///    batches larger than [`with_max_statements`](Self::with_max_statements) are
///    split), and
///    each statement only matches a stored document whose position is lower than the
///    change's: a document never goes back, and an event already applied to it is
///    never applied again;
/// 2. then the checkpoint moves forward (`$max`), never back.
///
/// A crash between the two leaves documents ahead of the checkpoint; the runner
/// replays from the checkpoint and the position guard makes the replay a no-op for
/// every document already written. A deleted document stays as a tombstone
/// (`value: null`) that keeps its position, so that a replayed event does not bring it
/// back. Readers see each document change atomically (one document write), but not a
/// batch at once: between 1 and 2 some documents of a batch may show it and others
/// not yet.
///
/// Cheap to clone: clones share the driver's connection pool.
#[derive(Clone, Debug)]
pub struct MongoReadModelStore {
    pub(crate) db: Database,
    collections: Arc<HashMap<String, String>>,
    pub(crate) max_statements: usize,
    pub(crate) deadline: Duration,
}

/// Fails at once if every host refuses a TCP connection: the driver would otherwise
/// wait its whole server-selection timeout before saying so. Anything else (a host
/// that answers, a timeout, a name to resolve, a socket path) is left to the driver.
async fn refused_everywhere(hosts: &[ServerAddress]) -> Result<(), std::io::Error> {
    let mut refused = None;
    for host in hosts {
        let ServerAddress::Tcp { host, port } = host else {
            return Ok(());
        };
        let address = (host.as_str(), port.unwrap_or(27017));
        let attempt = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(address),
        )
        .await;
        match attempt {
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                refused = Some(error);
            }
            _ => return Ok(()),
        }
    }
    refused.map_or(Ok(()), Err)
}

impl MongoReadModelStore {
    /// The default most update statements sent in one command; larger batches take
    /// more round trips (MongoDB's own limit is 100,000 statements and 16 MiB per
    /// command).
    pub const MAX_STATEMENTS: usize = 1_000;

    /// The most statements per command on FerretDB v1, which holds one PostgreSQL
    /// connection per statement that matches a document until the command ends: a
    /// command of more statements than its pool has connections never ends.
    pub const FERRETDB_MAX_STATEMENTS: usize = 64;

    /// The default longest wait for the server on any call (see
    /// [`with_deadline`](Self::with_deadline)).
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

    /// Connects to the server at `url` (a `mongodb://` URL) and uses `database`. Waits
    /// at most 10 s for the server.
    ///
    /// # Errors
    /// [`MongoError::Connect`] if the URL is invalid or the server does not answer a
    /// ping.
    pub async fn connect(url: &str, database: &str) -> Result<Self, MongoError> {
        let mut options = ClientOptions::parse(url)
            .await
            .map_err(MongoError::connect(url))?;
        options
            .server_selection_timeout
            .get_or_insert(Duration::from_secs(10));
        options
            .connect_timeout
            .get_or_insert(Duration::from_secs(10));
        options
            .app_name
            .get_or_insert_with(|| "cqrs-mongo".to_owned());
        refused_everywhere(&options.hosts)
            .await
            .map_err(|e| MongoError::connect(url)(e.into()))?;
        let client = Client::with_options(options).map_err(MongoError::connect(url))?;
        let db = client.database(database);
        let info = db
            .run_command(doc! { "buildInfo": 1 })
            .await
            .map_err(MongoError::connect(url))?;
        let mut store = Self::new(db);
        if info.contains_key("ferretdbVersion") {
            tracing::info!(
                max_statements = Self::FERRETDB_MAX_STATEMENTS,
                "FerretDB detected: smaller update commands"
            );
            store.max_statements = Self::FERRETDB_MAX_STATEMENTS;
        }
        Ok(store)
    }

    /// A store in `db`, over an existing client. Unlike [`connect`](Self::connect),
    /// it does not ask the server what it is: on FerretDB, set
    /// [`with_max_statements`](Self::with_max_statements) to
    /// [`FERRETDB_MAX_STATEMENTS`](Self::FERRETDB_MAX_STATEMENTS).
    pub fn new(db: Database) -> Self {
        Self {
            db,
            collections: Arc::default(),
            max_statements: Self::MAX_STATEMENTS,
            deadline: Self::DEFAULT_DEADLINE,
        }
    }

    /// Sets the longest any call waits for the server: 30 s by default. The driver
    /// has no such limit on an operation whose connection stops answering (here, a
    /// half-open connection held a call for 30 s, until the driver's monitor gave up
    /// on the server). Past it the call fails with an [`Error::Backend`](cqrs_core::Error::Backend) for which
    /// [`is_timed_out`](cqrs_core::Error::is_timed_out) is true, and a runner retries it. A
    /// commit cut off this way may have written some of its documents and not the
    /// checkpoint; replaying its batch is a no-op for those (documents are guarded
    /// by position).
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sends at most `max_statements` update statements per command (at least 1).
    #[must_use]
    pub fn with_max_statements(mut self, max_statements: usize) -> Self {
        self.max_statements = max_statements.max(1);
        self
    }

    /// Stores the read model `projection` in `collection` instead of a collection
    /// named after it.
    #[must_use]
    pub fn with_collection(mut self, projection: &str, collection: &str) -> Self {
        Arc::make_mut(&mut self.collections).insert(projection.to_owned(), collection.to_owned());
        self
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The name of the collection that holds the read model `projection`.
    pub fn collection_name<'a>(&'a self, projection: &'a str) -> &'a str {
        self.collections
            .get(projection)
            .map_or(projection, String::as_str)
    }

    /// The collection that holds the read model `projection`, for queries the helpers
    /// do not cover. Documents are `{_id, value, position}`; tombstones have
    /// `value: null`.
    pub fn collection(&self, projection: &str) -> Collection<Document> {
        self.db.collection(self.collection_name(projection))
    }
}
