//! [`MySqlReadModelStore`]: read-model documents as rows, committed atomically with
//! the projection's checkpoint.

use std::collections::HashMap;

use cqrs_core::{
    DocumentChange, Error, Guard, Position, ReadModelReader, ReadModelWriter, StoredDocument,
};
use sqlx::{MySqlConnection, MySqlPool};

use crate::event_store::text;

/// The most rows one statement writes or reads (placeholders stay far below the
/// protocol's 65,535).
const CHUNK: usize = 1_000;

/// Read models in a MySQL / MariaDB database (the tables of
/// [`migrate`](crate::migrate)): a projection's documents and its checkpoint commit
/// in one transaction, so a crash never leaves documents ahead of or behind their
/// checkpoint. A document never goes back: a change at or below the stored
/// document's position is skipped, so a replay after a crash changes nothing.
#[derive(Clone, Debug)]
pub struct MySqlReadModelStore {
    pool: MySqlPool,
    deadline: std::time::Duration,
}

impl MySqlReadModelStore {
    /// The default longest wait for the server on any call (see
    /// [`with_deadline`](Self::with_deadline)).
    pub const DEFAULT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

    /// Read models on `pool`'s database (migrated with [`migrate`](crate::migrate)).
    pub fn new(pool: MySqlPool) -> Self {
        Self {
            pool,
            deadline: Self::DEFAULT_DEADLINE,
        }
    }

    /// Sets the longest any call waits for the server: 30 s by default (the driver
    /// waits for ever on a connection that stops answering). Past it the call fails
    /// with an [`Error::Backend`] for which [`is_timed_out`](Error::is_timed_out) is
    /// true, and a runner retries it; a commit cut off this way either committed
    /// whole or not at all, and replaying its batch is a no-op either way
    /// (documents are guarded by position).
    #[must_use]
    pub fn with_deadline(mut self, deadline: std::time::Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The pool.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }
}

fn document(
    projection: &str,
    id: Vec<u8>,
    value: Vec<u8>,
    position: u64,
) -> Result<(String, StoredDocument), Error> {
    let id = text(id, "document id").map_err(|e| e.in_projection(projection, None))?;
    let value = serde_json::from_slice(&value)
        .map_err(|e| Error::codec("document", e).in_projection(projection, Some(&id)))?;
    Ok((
        id,
        StoredDocument {
            value,
            position: Position(position),
        },
    ))
}

/// The live documents of `projection` among `ids`.
pub(crate) async fn load_documents(
    conn: &mut MySqlConnection,
    projection: &str,
    ids: &[String],
) -> Result<HashMap<String, StoredDocument>, Error> {
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!(
            "SELECT id, value, position FROM cqrs_documents
             WHERE projection = ? AND id IN ({marks}) AND value IS NOT NULL"
        );
        let mut query = sqlx::query_as::<_, (Vec<u8>, Vec<u8>, u64)>(&sql).bind(projection);
        for id in chunk {
            query = query.bind(id);
        }
        let rows = query
            .fetch_all(&mut *conn)
            .await
            .map_err(Error::backend_in("load documents"))?;
        for (id, value, position) in rows {
            let (id, doc) = document(projection, id, value, position)?;
            found.insert(id, doc);
        }
    }
    Ok(found)
}

/// Writes `changes` to `projection` in the connection's transaction. With
/// [`Guard::SkipApplied`], a change at or below a document's position leaves it.
pub(crate) async fn write_documents(
    conn: &mut MySqlConnection,
    projection: &str,
    changes: Vec<DocumentChange>,
    guard: Guard,
) -> Result<(), Error> {
    // Assignments run left to right: the value is decided on the old position.
    let update = match guard {
        Guard::ApplyAll => "value = VALUES(value), position = GREATEST(position, VALUES(position))",
        _ => {
            "value = IF(VALUES(position) > position, VALUES(value), value),
             position = GREATEST(position, VALUES(position))"
        }
    };
    let mut rows = Vec::with_capacity(changes.len());
    for change in changes {
        let (id, value, position) = match change {
            DocumentChange::Put {
                id,
                value,
                position,
            } => {
                let value = serde_json::to_vec(&value).map_err(|e| {
                    Error::codec("document", e).in_projection(projection, Some(&id))
                })?;
                (id, Some(value), position)
            }
            DocumentChange::Delete { id, position } => (id, None, position),
        };
        rows.push((id, value, position.0));
    }
    for chunk in rows.chunks(CHUNK) {
        let marks = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO cqrs_documents (projection, id, value, position) VALUES {marks}
             ON DUPLICATE KEY UPDATE {update}"
        );
        let mut query = sqlx::query(&sql);
        for (id, value, position) in chunk {
            query = query.bind(projection).bind(id).bind(value).bind(position);
        }
        query
            .execute(&mut *conn)
            .await
            .map_err(Error::backend_in("write documents"))?;
    }
    Ok(())
}

impl ReadModelReader for MySqlReadModelStore {
    async fn get(&self, projection: &str, id: &str) -> Result<Option<StoredDocument>, Error> {
        cqrs_core::within(self.deadline, "get", async {
            let row: Option<(Vec<u8>, u64)> = sqlx::query_as(
                "SELECT value, position FROM cqrs_documents
                 WHERE projection = ? AND id = ? AND value IS NOT NULL",
            )
            .bind(projection)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::backend_in("get"))?;
            row.map(|(value, position)| {
                document(projection, id.as_bytes().to_vec(), value, position).map(|(_, d)| d)
            })
            .transpose()
        })
        .await
    }

    async fn get_many(
        &self,
        projection: &str,
        ids: &[String],
    ) -> Result<HashMap<String, StoredDocument>, Error> {
        cqrs_core::within(self.deadline, "get_many", async {
            let mut conn = self
                .pool
                .acquire()
                .await
                .map_err(Error::backend_in("get_many"))?;
            load_documents(&mut conn, projection, ids).await
        })
        .await
    }
}

impl ReadModelWriter for MySqlReadModelStore {
    async fn checkpoint(&self, projection: &str) -> Result<Position, Error> {
        cqrs_core::within(self.deadline, "checkpoint", async {
            let row: Option<u64> =
                sqlx::query_scalar("SELECT position FROM cqrs_checkpoints WHERE projection = ?")
                    .bind(projection)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(Error::backend_in("checkpoint"))?;
            Ok(Position(row.unwrap_or(0)))
        })
        .await
    }

    async fn commit(
        &self,
        projection: &str,
        changes: Vec<DocumentChange>,
        checkpoint: Position,
    ) -> Result<(), Error> {
        cqrs_core::within(self.deadline, "commit", async {
            let mut tx = self
                .pool
                .begin()
                .await
                .map_err(Error::backend_in("commit"))?;
            write_documents(&mut tx, projection, changes, Guard::SkipApplied).await?;
            sqlx::query(
                "INSERT INTO cqrs_checkpoints (projection, position, updated_at)
                 VALUES (?, ?, UTC_TIMESTAMP(6))
                 ON DUPLICATE KEY UPDATE position = GREATEST(position, VALUES(position)),
                                         updated_at = VALUES(updated_at)",
            )
            .bind(projection)
            .bind(checkpoint.0)
            .execute(&mut *tx)
            .await
            .map_err(Error::backend_in("commit"))?;
            tx.commit().await.map_err(Error::backend_in("commit"))
        })
        .await
    }

    async fn reset(&self, projection: &str) -> Result<(), Error> {
        cqrs_core::within(self.deadline, "reset", async {
            let mut tx = self
                .pool
                .begin()
                .await
                .map_err(Error::backend_in("reset"))?;
            for table in ["cqrs_documents", "cqrs_checkpoints"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE projection = ?"))
                    .bind(projection)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::backend_in("reset"))?;
            }
            tx.commit().await.map_err(Error::backend_in("reset"))
        })
        .await
    }

    async fn alias(&self, alias: &str) -> Result<Option<String>, Error> {
        cqrs_core::within(self.deadline, "alias", async {
            let target: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT target FROM cqrs_aliases WHERE alias = ?")
                    .bind(alias)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(Error::backend_in("read alias"))?;
            target.map(|t| text(t, "alias")).transpose()
        })
        .await
    }

    async fn set_alias(&self, alias: &str, target: &str) -> Result<(), Error> {
        cqrs_core::within(self.deadline, "set_alias", async {
            sqlx::query(
                "INSERT INTO cqrs_aliases (alias, target) VALUES (?, ?)
                 ON DUPLICATE KEY UPDATE target = VALUES(target)",
            )
            .bind(alias)
            .bind(target)
            .execute(&self.pool)
            .await
            .map_err(Error::backend_in("set alias"))?;
            Ok(())
        })
        .await
    }
}
