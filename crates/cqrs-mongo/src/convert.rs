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

/// A stored position (a missing field is the start).
///
/// # Errors
/// [`Error::Codec`] if it is negative or not an integer: never a silent 0, which
/// would let events be applied again to a document that already includes them.
pub(crate) fn position_from(doc: &Document, field: &str) -> Result<Position, Error> {
    match doc.get(field) {
        None => Ok(Position::START),
        Some(Bson::Int64(v)) => Position::try_from(*v),
        Some(Bson::Int32(v)) => Position::try_from(i64::from(*v)),
        Some(other) => Err(Error::out_of_range("position", other)),
    }
}

/// A JSON value as BSON.
pub(crate) fn json_to_bson(projection: &str, value: &serde_json::Value) -> Result<Bson, Error> {
    bson::to_bson(value).map_err(|e| Error::codec(projection, e))
}

/// A stored read-model document (`{_id, value, position}`) of `projection` as the
/// port's type, with its id (`None` without a string id). A tombstone has a `Null`
/// value.
///
/// # Errors
/// [`Error::Codec`] if its position is not valid.
pub(crate) fn stored(
    projection: &str,
    doc: Document,
) -> Result<Option<(String, StoredDocument)>, Error> {
    let Ok(id) = doc.get_str("_id").map(str::to_owned) else {
        return Ok(None);
    };
    let position =
        position_from(&doc, "position").map_err(|e| e.in_projection(projection, Some(&id)))?;
    let value = match doc.get("value") {
        None | Some(Bson::Null) => serde_json::Value::Null,
        Some(value) => value.clone().into_relaxed_extjson(),
    };
    Ok(Some((id, StoredDocument { value, position })))
}
