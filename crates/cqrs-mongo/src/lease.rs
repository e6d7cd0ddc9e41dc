//! [`MongoLease`]: projection leases as documents.

use std::time::{Duration, SystemTime};

use cqrs_core::{Error, Lease};
use mongodb::bson::{DateTime, Document, doc};
use mongodb::{Collection, Database};

use crate::error::backend;

/// MongoDB's code for a duplicate key.
const DUPLICATE_KEY: i32 = 11_000;

/// Leases as documents of a collection (`cqrs_leases` by default):
/// `{_id: name, holder, expires}`. Taking or renewing is one conditional upsert that
/// matches only a lease that is free, expired, or already the holder's; if another
/// holder has it, the upsert's insert hits the `_id` and nothing changes.
///
/// Expiry times come from the clock of the process that takes the lease: the clocks
/// of the runners must agree to well within the time to live.
#[derive(Clone, Debug)]
pub struct MongoLease {
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
            leases: db.collection(collection),
        }
    }
}

impl Lease for MongoLease {
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, Error> {
        let now = SystemTime::now();
        let expires = DateTime::from_system_time(now + ttl);
        let now = DateTime::from_system_time(now);
        let result = self
            .leases
            .update_one(
                doc! {
                    "_id": name,
                    "$or": [ { "holder": holder }, { "expires": { "$lt": now } } ],
                },
                doc! { "$set": { "holder": holder, "expires": expires } },
            )
            .upsert(true)
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if is_duplicate_key(&error) => Ok(false),
            Err(error) => Err(backend("take lease")(error)),
        }
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), Error> {
        self.leases
            .delete_one(doc! { "_id": name, "holder": holder })
            .await
            .map_err(backend("release lease"))?;
        Ok(())
    }
}

fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    match &*error.kind {
        mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(e)) => {
            e.code == DUPLICATE_KEY
        }
        mongodb::error::ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
        _ => error.to_string().contains("E11000"),
    }
}
