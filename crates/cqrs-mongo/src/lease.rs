//! [`MongoLease`]: projection leases as documents.

use std::time::{Duration, SystemTime};

use cqrs_core::{Error, Lease};
use mongodb::bson::{DateTime, Document, doc};
use mongodb::{Collection, Database};

use crate::command::update;

/// Leases as documents of a collection (`cqrs_leases` by default):
/// `{_id: name, holder, expires}`. Taking or renewing is one conditional upsert that
/// matches only a lease that is free, expired, or already the holder's; if another
/// holder has it, the upsert's insert hits the `_id` and nothing changes.
///
/// Expiry times come from the clock of the process that takes the lease: the clocks
/// of the runners must agree to well within the time to live.
#[derive(Clone, Debug)]
pub struct MongoLease {
    db: Database,
    leases: Collection<Document>,
}

impl MongoLease {
    /// Leases in the collection `cqrs_leases` of `db`.
    pub fn new(db: &Database) -> Self {
        Self::in_collection(db, "cqrs_leases")
    }

    /// Leases in the collection `collection` of `db`.
    pub fn in_collection(db: &Database, collection: &str) -> Self {
        Self {
            db: db.clone(),
            leases: db.collection(collection),
        }
    }
}

impl Lease for MongoLease {
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, Error> {
        let now = SystemTime::now();
        let expires = DateTime::from_system_time(now + ttl);
        let now = DateTime::from_system_time(now);
        let statement = doc! {
            "q": {
                "_id": name,
                "$or": [ { "holder": holder }, { "expires": { "$lt": now } } ],
            },
            "u": { "$set": { "holder": holder, "expires": expires } },
            "upsert": true,
        };
        // Another holder has it: the upsert's insert hits its `_id`.
        let taken_by_another =
            update(&self.db, self.leases.name(), vec![statement], "take lease").await?;
        Ok(taken_by_another.is_empty())
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), Error> {
        self.leases
            .delete_one(doc! { "_id": name, "holder": holder })
            .await
            .map_err(Error::backend_in("release lease"))?;
        Ok(())
    }
}
