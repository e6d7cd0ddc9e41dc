//! [`MemoryReadModelStore`]: read-model documents and checkpoints, in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::lock;
use crate::error::Error;
use crate::event::Position;
use crate::ports::{DocumentChange, ReadModelReader, ReadModelWriter, StoredDocument};

#[derive(Default)]
struct ProjectionData {
    documents: HashMap<String, StoredDocument>,
    checkpoint: Position,
}

/// Read models in memory. A commit applies its changes and its checkpoint under one
/// lock: atomically. A deleted document is kept as a tombstone (its position, no
/// value), so that an event replayed to it is still recognised as applied. Cheap to
/// clone: clones share the same documents.
#[derive(Clone, Default)]
pub struct MemoryReadModelStore {
    inner: Arc<Mutex<HashMap<String, ProjectionData>>>,
    aliases: Arc<Mutex<HashMap<String, String>>>,
}

impl std::fmt::Debug for MemoryReadModelStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryReadModelStore")
            .finish_non_exhaustive()
    }
}

impl MemoryReadModelStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every document of `projection`, sorted by id (for tests and debugging).
    pub fn documents(&self, projection: &str) -> Vec<(String, StoredDocument)> {
        let inner = lock(&self.inner);
        let mut documents: Vec<_> = inner
            .get(projection)
            .map(|p| {
                p.documents
                    .iter()
                    .filter(|(_, d)| !d.value.is_null())
                    .map(|(id, d)| (id.clone(), d.clone()))
                    .collect()
            })
            .unwrap_or_default();
        documents.sort_by(|a, b| a.0.cmp(&b.0));
        documents
    }
}

impl ReadModelReader for MemoryReadModelStore {
    async fn get(&self, projection: &str, id: &str) -> Result<Option<StoredDocument>, Error> {
        Ok(lock(&self.inner)
            .get(projection)
            .and_then(|p| p.documents.get(id).cloned())
            .filter(|d| !d.value.is_null()))
    }

    async fn get_many(
        &self,
        projection: &str,
        ids: &[String],
    ) -> Result<HashMap<String, StoredDocument>, Error> {
        let inner = lock(&self.inner);
        let Some(data) = inner.get(projection) else {
            return Ok(HashMap::new());
        };
        Ok(ids
            .iter()
            .filter_map(|id| data.documents.get(id).map(|d| (id.clone(), d.clone())))
            .collect())
    }
}

impl ReadModelWriter for MemoryReadModelStore {
    async fn checkpoint(&self, projection: &str) -> Result<Position, Error> {
        Ok(lock(&self.inner)
            .get(projection)
            .map_or(Position::START, |p| p.checkpoint))
    }

    async fn commit(
        &self,
        projection: &str,
        changes: Vec<DocumentChange>,
        checkpoint: Position,
    ) -> Result<(), Error> {
        let mut inner = lock(&self.inner);
        let data = inner.entry(projection.to_owned()).or_default();
        for change in changes {
            match change {
                DocumentChange::Put {
                    id,
                    value,
                    position,
                } => {
                    data.documents
                        .insert(id, StoredDocument { value, position });
                }
                DocumentChange::Delete { id, position } => {
                    let tombstone = StoredDocument {
                        value: serde_json::Value::Null,
                        position,
                    };
                    data.documents.insert(id, tombstone);
                }
            }
        }
        data.checkpoint = data.checkpoint.max(checkpoint);
        Ok(())
    }

    async fn reset(&self, projection: &str) -> Result<(), Error> {
        lock(&self.inner).remove(projection);
        Ok(())
    }

    async fn alias(&self, alias: &str) -> Result<Option<String>, Error> {
        Ok(lock(&self.aliases).get(alias).cloned())
    }

    async fn set_alias(&self, alias: &str, target: &str) -> Result<(), Error> {
        lock(&self.aliases).insert(alias.to_owned(), target.to_owned());
        Ok(())
    }
}
