//! [`PgReadModelStore`]: read-model documents as JSONB rows, committed atomically
//! with the projection's checkpoint.

use std::collections::HashMap;

use cqrs_core::{
    DocumentChange, Error, Guard, Position, ReadModelReader, ReadModelWriter, StoredDocument,
};
use sqlx::{PgConnection, PgPool};

/// Read models in PostgreSQL: a row per document in `cqrs_documents`, keyed by
/// projection and id, with the position of the last event applied. A commit writes
/// its documents and moves the checkpoint in one transaction: both or neither. A
/// deleted document stays as a tombstone (a row with no value).
///
/// It shares the event store's schema (run [`PgEventStore::migrate`](crate::PgEventStore::migrate)
/// or [`migrate`](crate::migrate) first) and may share its database or use another.
#[derive(Clone, Debug)]
pub struct PgReadModelStore {
    pool: PgPool,
    deadline: std::time::Duration,
}

impl PgReadModelStore {
    /// The default longest wait for the server on any call (see
    /// [`with_deadline`](Self::with_deadline)).
    pub const DEFAULT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

    /// A store over `pool`, whose schema is migrated.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            deadline: Self::DEFAULT_DEADLINE,
        }
    }

    /// Sets the longest any call waits for the server: 30 s by default. Past it the
    /// call fails with an [`Error::Backend`] for which
    /// [`is_timed_out`](Error::is_timed_out) is true, and a runner retries it; a
    /// commit cut off this way either committed whole or not at all, and replaying
    /// its batch is a no-op either way (documents are guarded by position).
    #[must_use]
    pub fn with_deadline(mut self, deadline: std::time::Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn to_i64(position: Position) -> Result<i64, Error> {
    i64::try_from(position)
}

/// Loads the documents among `ids` of `projection`, tombstones as `Null`.
pub(crate) async fn load_documents(
    conn: &mut PgConnection,
    projection: &str,
    ids: &[String],
) -> Result<HashMap<String, StoredDocument>, Error> {
    let rows: Vec<(String, Option<serde_json::Value>, i64)> = sqlx::query_as(
        "SELECT id, value, position FROM cqrs_documents WHERE projection = $1 AND id = ANY($2)",
    )
    .bind(projection)
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::backend_in("load documents"))?;
    rows.into_iter()
        .map(|row| document(projection, row))
        .collect()
}

fn document(
    projection: &str,
    (id, value, p): (String, Option<serde_json::Value>, i64),
) -> Result<(String, StoredDocument), Error> {
    let position = Position::try_from(p).map_err(|e| e.in_projection(projection, Some(&id)))?;
    let value = value.unwrap_or(serde_json::Value::Null);
    Ok((id, StoredDocument { value, position }))
}

/// The columns of `changes`, as the arrays the upsert binds.
type Columns = (Vec<String>, Vec<Option<serde_json::Value>>, Vec<i64>);

fn columns(changes: Vec<DocumentChange>) -> Result<Columns, Error> {
    let mut ids = Vec::with_capacity(changes.len());
    let mut values = Vec::with_capacity(changes.len());
    let mut positions = Vec::with_capacity(changes.len());
    for change in changes {
        let (id, value, position) = match change {
            DocumentChange::Put {
                id,
                value,
                position,
            } => (id, Some(value), position),
            DocumentChange::Delete { id, position } => (id, None, position),
        };
        ids.push(id);
        values.push(value);
        positions.push(to_i64(position)?);
    }
    Ok((ids, values, positions))
}

/// The statement that writes the documents bound as `$1` (projection), `$2` (ids),
/// `$3` (values, `NULL` for a tombstone) and `$4` (positions). With
/// [`Guard::SkipApplied`] a stored document at the same or a later position is left
/// alone; with [`Guard::ApplyAll`] every change is written (inline projections, whose
/// transactions serialize per document).
fn upsert(guard: Guard) -> String {
    let on_conflict = match guard {
        Guard::ApplyAll => {
            "DO UPDATE SET value = EXCLUDED.value, position = GREATEST(d.position, EXCLUDED.position)"
        }
        _ => {
            "DO UPDATE SET value = EXCLUDED.value, position = EXCLUDED.position WHERE d.position < EXCLUDED.position"
        }
    };
    format!(
        "INSERT INTO cqrs_documents AS d (projection, id, value, position)
         SELECT $1, t.id, t.value, t.position FROM unnest($2::text[], $3::jsonb[], $4::bigint[]) AS t(id, value, position)
         ON CONFLICT (projection, id) {on_conflict}"
    )
}

/// Writes `changes` in one statement (see [`upsert`] for the guard).
pub(crate) async fn write_documents(
    conn: &mut PgConnection,
    projection: &str,
    changes: Vec<DocumentChange>,
    guard: Guard,
) -> Result<(), Error> {
    if changes.is_empty() {
        return Ok(());
    }
    let (ids, values, positions) = columns(changes)?;
    sqlx::query(&upsert(guard))
        .bind(projection)
        .bind(&ids)
        .bind(&values)
        .bind(&positions)
        .execute(&mut *conn)
        .await
        .map_err(Error::backend_in("write documents"))?;
    Ok(())
}

/// Moves the checkpoint bound as `$1` (projection) to `$5` unless it is past it.
const MOVE_CHECKPOINT: &str = "INSERT INTO cqrs_checkpoints AS c (projection, position) VALUES ($1, $5)
     ON CONFLICT (projection) DO UPDATE SET position = GREATEST(c.position, EXCLUDED.position), updated_at = now()";

impl ReadModelReader for PgReadModelStore {
    async fn get(&self, projection: &str, id: &str) -> Result<Option<StoredDocument>, Error> {
        cqrs_core::within(self.deadline, "get", async {
            let row: Option<(serde_json::Value, i64)> = sqlx::query_as(
                "SELECT value, position FROM cqrs_documents WHERE projection = $1 AND id = $2 AND value IS NOT NULL",
            )
            .bind(projection)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::backend_in("get"))?;
            row.map(|(value, p)| {
                let (_, document) = document(projection, (id.to_owned(), Some(value), p))?;
                Ok(document)
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

impl ReadModelWriter for PgReadModelStore {
    async fn checkpoint(&self, projection: &str) -> Result<Position, Error> {
        cqrs_core::within(self.deadline, "checkpoint", async {
            let row: Option<i64> =
                sqlx::query_scalar("SELECT position FROM cqrs_checkpoints WHERE projection = $1")
                    .bind(projection)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(Error::backend_in("checkpoint"))?;
            row.map_or(Ok(Position::START), Position::try_from)
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
            // One statement, so one round trip and atomic on its own: the documents in a
            // data-modifying CTE (run to completion whatever the outer statement reads),
            // then the checkpoint. An explicit transaction would cost three more round
            // trips (BEGIN, a second statement, COMMIT) for the same guarantee.
            let (ids, values, positions) = columns(changes)?;
            let statement = format!(
                "WITH documents AS ({}) {MOVE_CHECKPOINT}",
                upsert(Guard::SkipApplied)
            );
            sqlx::query(&statement)
                .bind(projection)
                .bind(&ids)
                .bind(&values)
                .bind(&positions)
                .bind(to_i64(checkpoint)?)
                .execute(&self.pool)
                .await
                .map_err(Error::backend_in("commit"))?;
            Ok(())
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
                sqlx::query(&format!("DELETE FROM {table} WHERE projection = $1"))
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
            sqlx::query_scalar("SELECT target FROM cqrs_aliases WHERE alias = $1")
                .bind(alias)
                .fetch_optional(&self.pool)
                .await
                .map_err(Error::backend_in("read alias"))
        })
        .await
    }

    async fn set_alias(&self, alias: &str, target: &str) -> Result<(), Error> {
        cqrs_core::within(self.deadline, "set_alias", async {
            sqlx::query(
                "INSERT INTO cqrs_aliases (alias, target) VALUES ($1, $2) \
                 ON CONFLICT (alias) DO UPDATE SET target = EXCLUDED.target",
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
