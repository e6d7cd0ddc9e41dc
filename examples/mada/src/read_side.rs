//! [`SplitReadStore`]: MADA's read side on two servers, each read model where it
//! serves best.

use std::collections::HashMap;

use cqrs_core::{
    DocumentChange, Error, Index, Position, Projection, ReadModelReader, ReadModelWriter,
    StoredDocument,
};
use cqrs_mongo::MongoReadModelStore;
use cqrs_redis::{RedisCache, RedisReadModelStore};

use crate::projections::CategoriesProjection;

/// The read side of MADA on MongoDB and Redis:
///
/// * today's lists and the month calendars, documents shaped for a screen, in MongoDB;
/// * today's lists also cached in Redis (the screen opened most), kept current by the
///   projection's own commits ([`RedisCache`]);
/// * the category lists, small and hot, in Redis.
///
/// Every read model is routed by its name: the categories' (and its rebuilt versions,
/// `categories_*`) to Redis, the others to MongoDB through the cache.
#[derive(Clone, Debug)]
pub struct SplitReadStore {
    documents: RedisCache<MongoReadModelStore>,
    hot: RedisReadModelStore,
}

impl SplitReadStore {
    /// Documents in `mongo` (today's lists cached in Redis by `cache`), categories in
    /// `redis`.
    pub fn new(documents: RedisCache<MongoReadModelStore>, hot: RedisReadModelStore) -> Self {
        Self { documents, hot }
    }

    fn in_redis(name: &str) -> bool {
        let categories = CategoriesProjection::NAME;
        name == categories
            || name
                .strip_prefix(categories)
                .is_some_and(|rest| rest.starts_with('_'))
    }
}

/// Calls `$method` on the store that holds the read model `$name`.
macro_rules! routed {
    ($self:ident, $name:expr, $method:ident($($arg:expr),*)) => {
        if Self::in_redis($name) {
            $self.hot.$method($($arg),*).await
        } else {
            $self.documents.$method($($arg),*).await
        }
    };
}

impl ReadModelReader for SplitReadStore {
    async fn get(&self, projection: &str, id: &str) -> Result<Option<StoredDocument>, Error> {
        routed!(self, projection, get(projection, id))
    }

    async fn get_many(
        &self,
        projection: &str,
        ids: &[String],
    ) -> Result<HashMap<String, StoredDocument>, Error> {
        routed!(self, projection, get_many(projection, ids))
    }
}

impl ReadModelWriter for SplitReadStore {
    async fn checkpoint(&self, projection: &str) -> Result<Position, Error> {
        routed!(self, projection, checkpoint(projection))
    }

    async fn commit(
        &self,
        projection: &str,
        changes: Vec<DocumentChange>,
        checkpoint: Position,
    ) -> Result<(), Error> {
        routed!(self, projection, commit(projection, changes, checkpoint))
    }

    async fn reset(&self, projection: &str) -> Result<(), Error> {
        routed!(self, projection, reset(projection))
    }

    async fn prepare(&self, projection: &str, indexes: &[Index]) -> Result<(), Error> {
        routed!(self, projection, prepare(projection, indexes))
    }

    async fn alias(&self, alias: &str) -> Result<Option<String>, Error> {
        routed!(self, alias, alias(alias))
    }

    async fn set_alias(&self, alias: &str, target: &str) -> Result<(), Error> {
        routed!(self, alias, set_alias(alias, target))
    }
}
