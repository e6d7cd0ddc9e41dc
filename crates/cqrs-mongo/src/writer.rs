//! The write side of [`MongoReadModelStore`]: guarded batched writes, checkpoints,
//! indexes, aliases.

use cqrs_core::{DocumentChange, Error, Index, Position, ReadModelWriter};
use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::IndexOptions;

use crate::command::update;
use crate::convert::{json_to_bson, position_from, position_to_bson};
use crate::store::{ALIASES, CHECKPOINTS, MongoReadModelStore};

impl MongoReadModelStore {
    /// Deletes the checkpoint of `projection`, leaving its documents: the first step
    /// of [`reset`](ReadModelWriter::reset), and what a reset that failed after it
    /// leaves behind (public for the test that shows this is safe).
    ///
    /// # Errors
    /// [`Error::Backend`] if the server fails.
    #[doc(hidden)]
    pub async fn reset_checkpoint(&self, projection: &str) -> Result<(), Error> {
        self.db
            .collection::<Document>(CHECKPOINTS)
            .delete_one(doc! { "_id": projection })
            .await
            .map_err(Error::backend_in("reset checkpoint"))?;
        Ok(())
    }

    /// Writes `changes` to the documents of `projection`, each only if the stored
    /// document is at an earlier position: the first half of a commit, without the
    /// checkpoint. One `update` command per
    /// [`with_max_statements`](Self::with_max_statements) changes.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a position beyond `i64::MAX`, [`Error::Codec`] for
    /// a value BSON cannot hold, [`Error::Backend`] if the server fails.
    pub async fn write_documents(
        &self,
        projection: &str,
        changes: &[DocumentChange],
    ) -> Result<(), Error> {
        let collection = self.collection_name(projection);
        for chunk in changes.chunks(self.max_statements) {
            let statements = chunk
                .iter()
                .map(|change| statement(projection, change, true))
                .collect::<Result<Vec<_>, _>>()?;
            let lost_races = update(&self.db, collection, statements, "write documents").await?;
            if lost_races.is_empty() {
                continue;
            }
            // An upsert that lost a race with another writer inserting the same new
            // document: the document exists now, so update it (guarded) instead.
            let retries = lost_races
                .iter()
                .map(|&i| statement(projection, &chunk[i], false))
                .collect::<Result<Vec<_>, _>>()?;
            let again = update(&self.db, collection, retries, "write documents").await?;
            if !again.is_empty() {
                return Err(Error::backend(
                    "write documents",
                    format!("{} statements still hit a duplicate key", again.len()),
                ));
            }
        }
        Ok(())
    }

    /// Moves the checkpoint of `projection` to `position` unless it is already there
    /// or further: the second half of a commit.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a position beyond `i64::MAX`, [`Error::Backend`] if
    /// the server fails.
    pub async fn write_checkpoint(
        &self,
        projection: &str,
        position: Position,
    ) -> Result<(), Error> {
        let position = position_to_bson(position)?;
        self.db
            .collection::<Document>(CHECKPOINTS)
            .update_one(
                doc! { "_id": projection },
                doc! { "$max": { "position": position } },
            )
            .upsert(true)
            .await
            .map_err(Error::backend_in("write checkpoint"))?;
        Ok(())
    }
}

/// The guarded update statement of one change. With `upsert`, a missing document is
/// created; a stored one at the same or a later position is left alone (and the
/// upsert reports a duplicate key).
fn statement(projection: &str, change: &DocumentChange, upsert: bool) -> Result<Document, Error> {
    let position = position_to_bson(change.position())?;
    let value = match change {
        DocumentChange::Put { value, .. } => json_to_bson(projection, value)?,
        DocumentChange::Delete { .. } => Bson::Null,
    };
    Ok(doc! {
        "q": { "_id": change.id(), "position": { "$lt": position } },
        "u": { "$set": { "value": value, "position": position } },
        "upsert": upsert,
    })
}

impl ReadModelWriter for MongoReadModelStore {
    async fn checkpoint(&self, projection: &str) -> Result<Position, Error> {
        cqrs_core::within(self.deadline, "checkpoint", async {
            let found = self
                .db
                .collection::<Document>(CHECKPOINTS)
                .find_one(doc! { "_id": projection })
                .await
                .map_err(Error::backend_in("read checkpoint"))?;
            found.map_or(Ok(Position::START), |d| {
                position_from(&d, "position").map_err(|e| e.in_projection(projection, None))
            })
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
            self.write_documents(projection, &changes).await?;
            self.write_checkpoint(projection, checkpoint).await
        })
        .await
    }

    /// Deletes the checkpoint first, then drops the documents. A failure in between
    /// leaves documents with no checkpoint: the next runner replays from the first
    /// event over them, and the per-document guard skips what they already include,
    /// so the read model is still complete. (The other order would leave a
    /// checkpoint over an empty collection: a runner resuming from it would miss
    /// every event before it.)
    async fn reset(&self, projection: &str) -> Result<(), Error> {
        cqrs_core::within(self.deadline, "reset", async {
            self.reset_checkpoint(projection).await?;
            self.collection(projection)
                .drop()
                .await
                .map_err(Error::backend_in("drop read model"))?;
            Ok(())
        })
        .await
    }

    async fn prepare(&self, projection: &str, indexes: &[Index]) -> Result<(), Error> {
        cqrs_core::within(self.deadline, "prepare", async {
            if indexes.is_empty() {
                return Ok(());
            }
            let models = indexes.iter().map(|index| {
                let mut keys = Document::new();
                for field in index.fields {
                    keys.insert(format!("value.{field}"), 1_i32);
                }
                IndexModel::builder()
                    .keys(keys)
                    .options(
                        IndexOptions::builder()
                            .name(index.name.to_owned())
                            .unique(index.unique)
                            .build(),
                    )
                    .build()
            });
            self.collection(projection)
                .create_indexes(models)
                .await
                .map_err(Error::backend_in("create indexes"))?;
            Ok(())
        })
        .await
    }

    async fn alias(&self, alias: &str) -> Result<Option<String>, Error> {
        cqrs_core::within(self.deadline, "alias", async {
            let found = self
                .db
                .collection::<Document>(ALIASES)
                .find_one(doc! { "_id": alias })
                .await
                .map_err(Error::backend_in("read alias"))?;
            Ok(found.and_then(|d| d.get_str("target").ok().map(str::to_owned)))
        })
        .await
    }

    async fn set_alias(&self, alias: &str, target: &str) -> Result<(), Error> {
        cqrs_core::within(self.deadline, "set_alias", async {
            self.db
                .collection::<Document>(ALIASES)
                .update_one(doc! { "_id": alias }, doc! { "$set": { "target": target } })
                .upsert(true)
                .await
                .map_err(Error::backend_in("set alias"))?;
            Ok(())
        })
        .await
    }
}
