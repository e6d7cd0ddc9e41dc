//! The read side of [`MongoReadModelStore`]: by id, by ids, and by query.

use std::collections::HashMap;

use std::future::Future;

use cqrs_core::{Error, Projection, ReadModel, ReadModelReader, StoredDocument};
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};

use crate::convert::stored;
use crate::store::MongoReadModelStore;

/// A query on the documents of a read model: a filter, a sort and a limit. Fields are
/// named by their path in the document (`"date"`, `"owner.id"`); tombstones are never
/// returned.
///
/// ```
/// use cqrs_mongo::Query;
/// use mongodb::bson::doc;
///
/// // The ten largest totals above 100.
/// let query = Query::new()
///     .filter(doc! { "total": { "$gt": 100 } })
///     .sort_by("total", false)
///     .limit(10);
/// # let _ = query;
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    filter: Document,
    sort: Document,
    limit: Option<i64>,
}

impl Query {
    /// Every document.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the documents that match `filter`, a MongoDB filter on document fields.
    #[must_use]
    pub fn filter(mut self, filter: Document) -> Self {
        self.filter = filter;
        self
    }

    /// Sorts by `field`, after the sorts already given; ascending or not.
    #[must_use]
    pub fn sort_by(mut self, field: &str, ascending: bool) -> Self {
        self.sort.insert(
            format!("value.{field}"),
            if ascending { 1_i32 } else { -1_i32 },
        );
        self
    }

    /// Returns at most `limit` documents.
    #[must_use]
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(i64::from(limit));
        self
    }

    /// The filter on stored documents (`{_id, value, position}`): field paths under
    /// `value`, tombstones left out.
    fn stored_filter(&self) -> Document {
        let mut filter = Document::new();
        for (key, value) in &self.filter {
            let key = if key.starts_with('$') || key == "_id" {
                key.clone()
            } else {
                format!("value.{key}")
            };
            filter.insert(key, value.clone());
        }
        filter.insert("value", doc! { "$ne": Bson::Null });
        filter
    }
}

impl MongoReadModelStore {
    /// The documents of `projection` that match `query`, in its order, with their
    /// ids. A filter with a top-level operator (`$or`, `$and`) must name fields with
    /// their stored path (`value.total`).
    ///
    /// # Errors
    /// [`Error::Backend`] if the server fails.
    pub async fn find(
        &self,
        projection: &str,
        query: &Query,
    ) -> Result<Vec<(String, StoredDocument)>, Error> {
        cqrs_core::within(self.deadline, "find", async {
            let collection = self.collection(projection);
            let mut find = collection.find(query.stored_filter());
            if !query.sort.is_empty() {
                find = find.sort(query.sort.clone());
            }
            if let Some(limit) = query.limit {
                find = find.limit(limit);
            }
            let documents: Vec<Document> = find
                .await
                .map_err(Error::backend_in("find documents"))?
                .try_collect()
                .await
                .map_err(Error::backend_in("find documents"))?;
            collect(projection, documents)
        })
        .await
    }
}

/// The stored documents of `projection` as the port's type, tombstones included.
fn collect<C: FromIterator<(String, StoredDocument)>>(
    projection: &str,
    documents: Vec<Document>,
) -> Result<C, Error> {
    documents
        .into_iter()
        .filter_map(|doc| stored(projection, doc).transpose())
        .collect()
}

/// Queries on a typed [`ReadModel`] kept in MongoDB: the documents come back as the
/// projection's own type.
///
/// ```no_run
/// # async fn demo(totals: cqrs_core::ReadModel<impl cqrs_core::Projection, cqrs_mongo::MongoReadModelStore>) -> Result<(), cqrs_core::Error> {
/// use cqrs_mongo::{MongoQuery, Query};
/// use mongodb::bson::doc;
///
/// let largest = totals.find(&Query::new().sort_by("total", false).limit(10)).await?;
/// # Ok(()) }
/// ```
pub trait MongoQuery<P: Projection> {
    /// The documents that match `query`, in its order, decoded, with their ids.
    ///
    /// # Errors
    /// [`Error::Backend`] if the server fails, [`Error::Codec`] if a document cannot
    /// be decoded.
    fn find(
        &self,
        query: &Query,
    ) -> impl Future<Output = Result<Vec<(String, P::Document)>, Error>> + Send;
}

impl<P: Projection> MongoQuery<P> for ReadModel<P, MongoReadModelStore> {
    async fn find(&self, query: &Query) -> Result<Vec<(String, P::Document)>, Error> {
        let target = self.target();
        let found = self.store().find(&target, query).await?;
        found
            .into_iter()
            .map(|(id, doc)| {
                let document = serde_json::from_value(doc.value)
                    .map_err(|e| Error::codec("document", e).in_projection(&target, Some(&id)))?;
                Ok((id, document))
            })
            .collect()
    }
}

impl ReadModelReader for MongoReadModelStore {
    async fn get(&self, projection: &str, id: &str) -> Result<Option<StoredDocument>, Error> {
        cqrs_core::within(self.deadline, "get", async {
            let found = self
                .collection(projection)
                .find_one(doc! { "_id": id })
                .await
                .map_err(Error::backend_in("get document"))?;
            let Some(found) = found else { return Ok(None) };
            Ok(stored(projection, found)?
                .map(|(_, d)| d)
                .filter(|d| !d.value.is_null()))
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
            let documents: Vec<Document> = self
                .collection(projection)
                .find(doc! { "_id": { "$in": ids } })
                .await
                .map_err(Error::backend_in("get documents"))?
                .try_collect()
                .await
                .map_err(Error::backend_in("get documents"))?;
            collect(projection, documents)
        })
        .await
    }
}
