//! A `cqrs_events` row of the binlog as an event.
//!
//! The binlog names no columns (`binlog_row_metadata` is `MINIMAL` or off by
//! default): values come in the table's column order, which
//! [`reader`](super::reader) checks against [`EVENT_COLUMNS`](crate::event_store::EVENT_COLUMNS)
//! before it reads. Without the metadata, unsigned integers arrive as signed ones of
//! the same width: their bits are taken back as unsigned.

use chrono::{NaiveDate, TimeZone, Utc};
use cqrs_core::{Error, Position, RecordedEvent, StreamId, Version};
use mysql_async::Value;
use mysql_async::binlog::value::BinlogValue;
use uuid::Uuid;

use crate::event_store::{EventRow, into_event};

/// The event in the after-image `values` of an insert into `cqrs_events`.
pub(crate) fn event(values: Vec<Option<BinlogValue<'static>>>) -> Result<RecordedEvent, Error> {
    let bad = |what: &str| {
        Error::codec(
            format!("binlog row of cqrs_events: {what}"),
            "not an event as this crate writes it (a changed table?)",
        )
    };
    let mut values = values.into_iter().map(|value| match value {
        Some(BinlogValue::Value(value)) => Ok(value),
        _ => Err(bad("a value is missing or not a plain value")),
    });
    let mut next = || values.next().unwrap_or_else(|| Err(bad("too few columns")));
    let position = unsigned(next()?, 64).ok_or_else(|| bad("position"))?;
    let located = |e: Error| e.at_event(&StreamId::new("?"), Version(0), Position(position));
    let stream_id = bytes(next()?).ok_or_else(|| located(bad("stream_id")))?;
    let version = unsigned(next()?, 64).ok_or_else(|| located(bad("version")))?;
    // The binlog drops a BINARY(16)'s trailing zero bytes.
    let event_id = bytes(next()?)
        .filter(|b| b.len() <= 16)
        .map(|b| {
            let mut id = [0_u8; 16];
            id[..b.len()].copy_from_slice(&b);
            Uuid::from_bytes(id)
        })
        .ok_or_else(|| located(bad("event_id")))?;
    let event_type = bytes(next()?).ok_or_else(|| located(bad("event_type")))?;
    let schema_version = unsigned(next()?, 32)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| located(bad("schema_version")))?;
    let payload = bytes(next()?).ok_or_else(|| located(bad("payload")))?;
    let metadata = bytes(next()?).ok_or_else(|| located(bad("metadata")))?;
    let recorded_at = match next()? {
        Value::Date(y, mo, d, h, mi, s, us) => {
            NaiveDate::from_ymd_opt(y.into(), mo.into(), d.into())
                .and_then(|date| date.and_hms_micro_opt(h.into(), mi.into(), s.into(), us))
                .map(|at| Utc.from_utc_datetime(&at))
        }
        _ => None,
    }
    .ok_or_else(|| located(bad("recorded_at")))?;
    let row: EventRow = (
        position,
        stream_id,
        version,
        event_id,
        event_type,
        schema_version,
        payload,
        metadata,
        recorded_at,
    );
    into_event(row)
}

/// An unsigned integer column of `bits`, whether the server sent it as unsigned or
/// (without row metadata) as the signed integer of the same bits.
fn unsigned(value: Value, bits: u32) -> Option<u64> {
    match value {
        Value::UInt(v) => Some(v),
        // The same bits, read back as unsigned.
        #[allow(clippy::cast_sign_loss)]
        Value::Int(v) if bits == 64 => Some(v as u64),
        Value::Int(v) => {
            let mask = (1_u64 << bits) - 1;
            #[allow(clippy::cast_sign_loss)]
            Some(v as u64 & mask)
        }
        _ => None,
    }
}

fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::Bytes(bytes) => Some(bytes),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(payload: &[u8]) -> Vec<Option<BinlogValue<'static>>> {
        [
            Value::Int(-1), // 2^64 - 1 without row metadata
            Value::Bytes(b"goal-1".to_vec()),
            Value::Int(3),
            // A BINARY(16) ending in zeros, as the binlog sends it: cut short.
            Value::Bytes(vec![7, 1]),
            Value::Bytes(b"Done".to_vec()),
            Value::Int(-2), // 2^32 - 2 without row metadata
            Value::Bytes(payload.to_vec()),
            Value::Bytes(b"{}".to_vec()),
            Value::Date(2026, 11, 26, 23, 59, 58, 123_456),
        ]
        .into_iter()
        .map(|v| Some(BinlogValue::Value(v)))
        .collect()
    }

    #[test]
    fn a_row_decodes_with_its_unsigned_columns_read_back() {
        let event = event(row(br#"{"on":"2026-11-26"}"#)).expect("decodes");
        assert_eq!(event.position, Position(u64::MAX));
        assert_eq!(event.version, Version(3));
        assert_eq!(event.stream_id.as_str(), "goal-1");
        let mut id = [0_u8; 16];
        id[..2].copy_from_slice(&[7, 1]);
        assert_eq!(event.event_id, Uuid::from_bytes(id));
        assert_eq!(event.event.schema_version, u32::MAX - 1);
        assert_eq!(event.event.payload["on"], "2026-11-26");
        assert_eq!(
            event.recorded_at.to_rfc3339(),
            "2026-11-26T23:59:58.123456+00:00"
        );
    }

    #[test]
    fn a_corrupt_payload_is_a_codec_error_naming_the_event() {
        let error = event(row(b"{not json")).expect_err("corrupt");
        let message = error.to_string();
        assert!(matches!(error, Error::Codec { .. }), "{message}");
        assert!(message.contains("goal-1"), "{message}");
    }

    #[test]
    fn a_short_or_mistyped_row_is_a_codec_error_not_a_panic() {
        let mut short = row(b"{}");
        short.truncate(4);
        assert!(matches!(event(short), Err(Error::Codec { .. })));
        let mut mistyped = row(b"{}");
        mistyped[8] = Some(BinlogValue::Value(Value::Int(7)));
        assert!(matches!(event(mistyped), Err(Error::Codec { .. })));
        let mut null = row(b"{}");
        null[1] = None;
        assert!(matches!(event(null), Err(Error::Codec { .. })));
    }
}
