//! The raw `update` command, whose per-statement duplicate-key errors the adapter
//! reads as "already there" (a guarded upsert that matched nothing).

use cqrs_core::Error;
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};

/// MongoDB's code for a duplicate key.
const DUPLICATE_KEY: i32 = 11_000;

/// Runs one unordered `update` command of `updates` on `collection`; returns the
/// indexes of the statements that hit a duplicate key. Any other write error, or a
/// write-concern error, fails with `context`.
///
/// A raw command rather than the driver's typed helpers: one round trip for many
/// statements on every server version (`bulkWrite` needs MongoDB 8), and FerretDB's
/// reply to a failed upsert lacks fields the typed results require.
pub(crate) async fn update(
    db: &Database,
    collection: &str,
    updates: Vec<Document>,
    context: &'static str,
) -> Result<Vec<usize>, Error> {
    let reply = db
        .run_command(doc! { "update": collection, "updates": updates, "ordered": false })
        .await
        .map_err(Error::backend_in(context))?;
    let mut duplicates = Vec::new();
    if let Ok(errors) = reply.get_array("writeErrors") {
        for error in errors {
            let Some(error) = error.as_document() else {
                continue;
            };
            let code = error.get_i32("code").unwrap_or_default();
            let index = match error.get("index") {
                Some(Bson::Int32(i)) => usize::try_from(*i).ok(),
                Some(Bson::Int64(i)) => usize::try_from(*i).ok(),
                _ => None,
            };
            match (code, index) {
                (DUPLICATE_KEY, Some(index)) => duplicates.push(index),
                _ => return Err(Error::backend(context, format!("write error: {error}"))),
            }
        }
    }
    if let Ok(error) = reply.get_document("writeConcernError") {
        return Err(Error::backend(
            context,
            format!("write concern error: {error}"),
        ));
    }
    Ok(duplicates)
}
