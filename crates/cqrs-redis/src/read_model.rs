//! The ports of [`RedisReadModelStore`].

use std::collections::HashMap;

use cqrs_core::{
    DocumentChange, Error, Position, ReadModelReader, ReadModelWriter, StoredDocument,
};

use crate::scripts::COMMIT;
use crate::store::{RedisReadModelStore, decode_position, encode_position};

fn parse(projection: &str, json: &str) -> Result<serde_json::Value, Error> {
    serde_json::from_str(json).map_err(|e| Error::codec(projection, e))
}

impl RedisReadModelStore {
    /// Every document of `projection` (tombstones left out), sorted by id: for tests,
    /// debugging and small read models. Reads the whole hash.
    ///
    /// # Errors
    /// [`Error::Backend`] if the server fails, [`Error::Codec`] if a document is not
    /// JSON.
    pub async fn documents(
        &self,
        projection: &str,
    ) -> Result<Vec<(String, StoredDocument)>, Error> {
        cqrs_core::within(self.deadline, "documents", async {
            let mut conn = self.conn.clone();
            let (documents, positions): (HashMap<String, String>, HashMap<String, String>) =
                redis::pipe()
                    .hgetall(self.documents_key(projection))
                    .hgetall(self.positions_key(projection))
                    .query_async(&mut conn)
                    .await
                    .map_err(Error::backend_in("read documents"))?;
            let mut all = documents
                .into_iter()
                .map(|(id, json)| {
                    let position = decode_position(positions.get(&id).map(String::as_str))
                        .map_err(|e| e.in_projection(projection, Some(&id)))?;
                    Ok((
                        id,
                        StoredDocument {
                            value: parse(projection, &json)?,
                            position,
                        },
                    ))
                })
                .collect::<Result<Vec<_>, Error>>()?;
            all.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(all)
        })
        .await
    }
}

impl ReadModelReader for RedisReadModelStore {
    async fn get(&self, projection: &str, id: &str) -> Result<Option<StoredDocument>, Error> {
        cqrs_core::within(self.deadline, "get", async {
            let mut conn = self.conn.clone();
            let (json, position): (Option<String>, Option<String>) = redis::pipe()
                .hget(self.documents_key(projection), id)
                .hget(self.positions_key(projection), id)
                .query_async(&mut conn)
                .await
                .map_err(Error::backend_in("get document"))?;
            json.map(|json| {
                Ok(StoredDocument {
                    value: parse(projection, &json)?,
                    position: decode_position(position.as_deref())
                        .map_err(|e| e.in_projection(projection, Some(id)))?,
                })
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
            if ids.is_empty() {
                return Ok(HashMap::new());
            }
            let mut conn = self.conn.clone();
            let (documents, positions): (Vec<Option<String>>, Vec<Option<String>>) = redis::pipe()
                .cmd("HMGET")
                .arg(self.documents_key(projection))
                .arg(ids)
                .cmd("HMGET")
                .arg(self.positions_key(projection))
                .arg(ids)
                .query_async(&mut conn)
                .await
                .map_err(Error::backend_in("get documents"))?;
            let mut found = HashMap::new();
            for ((id, json), position) in ids.iter().zip(documents).zip(positions) {
                let Some(position) = position else { continue };
                let value = match json {
                    Some(json) => parse(projection, &json)?,
                    None => serde_json::Value::Null,
                };
                let position = decode_position(Some(&position))
                    .map_err(|e| e.in_projection(projection, Some(id)))?;
                found.insert(id.clone(), StoredDocument { value, position });
            }
            Ok(found)
        })
        .await
    }
}

impl ReadModelWriter for RedisReadModelStore {
    async fn checkpoint(&self, projection: &str) -> Result<Position, Error> {
        cqrs_core::within(self.deadline, "checkpoint", async {
            let mut conn = self.conn.clone();
            let stored: Option<String> = redis::cmd("GET")
                .arg(self.checkpoint_key(projection))
                .query_async(&mut conn)
                .await
                .map_err(Error::backend_in("read checkpoint"))?;
            decode_position(stored.as_deref()).map_err(|e| e.in_projection(projection, None))
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
            let mut invocation = COMMIT.prepare_invoke();
            invocation
                .key(self.documents_key(projection))
                .key(self.positions_key(projection))
                .key(self.checkpoint_key(projection))
                .arg(encode_position(checkpoint));
            for change in &changes {
                match change {
                    DocumentChange::Put {
                        id,
                        value,
                        position,
                    } => {
                        let json = serde_json::to_string(value)
                            .map_err(|e| Error::codec(projection, e))?;
                        invocation
                            .arg("p")
                            .arg(id)
                            .arg(encode_position(*position))
                            .arg(json);
                    }
                    DocumentChange::Delete { id, position } => {
                        invocation
                            .arg("d")
                            .arg(id)
                            .arg(encode_position(*position))
                            .arg("");
                    }
                }
            }
            let mut conn = self.conn.clone();
            let written: i64 = invocation
                .invoke_async(&mut conn)
                .await
                .map_err(Error::backend_in("commit batch"))?;
            tracing::trace!(written, changes = changes.len(), "batch committed to Redis");
            Ok(())
        })
        .await
    }

    async fn reset(&self, projection: &str) -> Result<(), Error> {
        cqrs_core::within(self.deadline, "reset", async {
            let mut conn = self.conn.clone();
            let _: i64 = redis::cmd("UNLINK")
                .arg(self.documents_key(projection))
                .arg(self.positions_key(projection))
                .arg(self.checkpoint_key(projection))
                .query_async(&mut conn)
                .await
                .map_err(Error::backend_in("reset read model"))?;
            Ok(())
        })
        .await
    }

    async fn alias(&self, alias: &str) -> Result<Option<String>, Error> {
        cqrs_core::within(self.deadline, "alias", async {
            let mut conn = self.conn.clone();
            redis::cmd("HGET")
                .arg(self.aliases_key())
                .arg(alias)
                .query_async(&mut conn)
                .await
                .map_err(Error::backend_in("read alias"))
        })
        .await
    }

    async fn set_alias(&self, alias: &str, target: &str) -> Result<(), Error> {
        cqrs_core::within(self.deadline, "set_alias", async {
            let mut conn = self.conn.clone();
            let _: i64 = redis::cmd("HSET")
                .arg(self.aliases_key())
                .arg(alias)
                .arg(target)
                .query_async(&mut conn)
                .await
                .map_err(Error::backend_in("set alias"))?;
            Ok(())
        })
        .await
    }
}
