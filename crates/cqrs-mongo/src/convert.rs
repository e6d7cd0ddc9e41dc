//! Between the ports' types (JSON values, `u64` positions) and BSON.

use cqrs_core::{Error, Position, StoredDocument};
use mongodb::bson::{self, Bson, Document};

/// A position as a BSON 64-bit integer.
pub(crate) fn position_to_bson(position: Position) -> Result<i64, Error> {
    i64::try_from(position.0).map_err(|_| {
        Error::InvalidInput(format!(
            "position {position} is beyond what MongoDB stores as a 64-bit integer"
        ))
    })
}

/// A stored position (missing or negative means the start).
pub(crate) fn position_from(doc: &Document, field: &str) -> Position {
    let raw = match doc.get(field) {
        Some(Bson::Int64(v)) => *v,
        Some(Bson::Int32(v)) => i64::from(*v),
        _ => 0,
    };
    Position(u64::try_from(raw).unwrap_or(0))
}

/// A JSON value as BSON.
pub(crate) fn json_to_bson(projection: &str, value: &serde_json::Value) -> Result<Bson, Error> {
    bson::to_bson(value).map_err(|e| Error::codec(projection, e))
}

/// A stored read-model document (`{_id, value, position}`) as the port's type, with
/// its id. A tombstone has a `Null` value.
pub(crate) fn stored(doc: Document) -> Option<(String, StoredDocument)> {
    let id = doc.get_str("_id").ok()?.to_owned();
    let position = position_from(&doc, "position");
    let value = match doc.get("value") {
        None | Some(Bson::Null) => serde_json::Value::Null,
        Some(value) => value.clone().into_relaxed_extjson(),
    };
    Some((id, StoredDocument { value, position }))
}
