//! An event as a Kafka record: the payload as JSON, everything else in headers; and
//! the relay's watermark records.

use std::collections::BTreeMap;

use cqrs_core::{Metadata, Position, RawEvent, RecordedEvent, StreamId, Version};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};

/// The header names, shared by the relay and its consumers.
pub mod headers {
    /// The stored type name (`goal.Created`).
    pub const EVENT_TYPE: &str = "cqrs-event-type";
    /// The payload's schema version.
    pub const SCHEMA_VERSION: &str = "cqrs-schema-version";
    /// The event's id (UUID v7): the same on every copy of the event.
    pub const EVENT_ID: &str = "cqrs-event-id";
    /// The stream the event belongs to.
    pub const STREAM_ID: &str = "cqrs-stream-id";
    /// The event's version in its stream.
    pub const VERSION: &str = "cqrs-version";
    /// The event's position in the global log.
    pub const POSITION: &str = "cqrs-position";
    /// When the store recorded it (RFC 3339).
    pub const RECORDED_AT: &str = "cqrs-recorded-at";
    /// The correlation id, if any.
    pub const CORRELATION_ID: &str = "cqrs-correlation-id";
    /// The causation id, if any.
    pub const CAUSATION_ID: &str = "cqrs-causation-id";
    /// The acting user, if any.
    pub const USER_ID: &str = "cqrs-user-id";
    /// The tenant, if any.
    pub const TENANT_ID: &str = "cqrs-tenant-id";
    /// The metadata's free key-values, as a JSON object, if any.
    pub const EXTRA: &str = "cqrs-metadata";
    /// On a watermark record (no key, empty value, no other header): the position up
    /// to which the relay has published every event, so that no event at or before
    /// it comes later on this partition. Consumers of your own should skip these
    /// records.
    pub const WATERMARK: &str = "cqrs-watermark";
    /// On a dead letter set aside by a runner: the read model that could not apply it.
    pub const DEAD_LETTER_PROJECTION: &str = "cqrs-dead-letter-projection";
    /// On a dead letter: why the record was set aside.
    pub const DEAD_LETTER_ERROR: &str = "cqrs-dead-letter-error";
    /// On a dead letter: the topic the record was read from.
    pub const DEAD_LETTER_TOPIC: &str = "cqrs-dead-letter-topic";
    /// On a dead letter: the partition the record was read from.
    pub const DEAD_LETTER_PARTITION: &str = "cqrs-dead-letter-partition";
    /// On a dead letter: the offset the record had.
    pub const DEAD_LETTER_OFFSET: &str = "cqrs-dead-letter-offset";
}

/// The headers of `event`'s record.
pub(crate) fn headers_of(event: &RecordedEvent) -> OwnedHeaders {
    let text = [
        (headers::EVENT_TYPE, Some(event.event.event_type.clone())),
        (
            headers::SCHEMA_VERSION,
            Some(event.event.schema_version.to_string()),
        ),
        (headers::EVENT_ID, Some(event.event_id.to_string())),
        (headers::STREAM_ID, Some(event.stream_id.to_string())),
        (headers::VERSION, Some(event.version.to_string())),
        (headers::POSITION, Some(event.position.to_string())),
        (headers::RECORDED_AT, Some(event.recorded_at.to_rfc3339())),
        (
            headers::CORRELATION_ID,
            event.metadata.correlation_id.map(|id| id.to_string()),
        ),
        (
            headers::CAUSATION_ID,
            event.metadata.causation_id.map(|id| id.to_string()),
        ),
        (headers::USER_ID, event.metadata.user_id.clone()),
        (headers::TENANT_ID, event.metadata.tenant_id.clone()),
        (
            headers::EXTRA,
            (!event.metadata.extra.is_empty())
                .then(|| serde_json::to_string(&event.metadata.extra).unwrap_or_default()),
        ),
    ];
    text.into_iter()
        .filter_map(|(key, value)| value.map(|value| (key, value)))
        .fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            })
        })
}

/// The record's value: the event's payload as JSON.
pub(crate) fn payload_of(event: &RecordedEvent) -> Vec<u8> {
    serde_json::to_vec(&event.event.payload).unwrap_or_default()
}

/// A watermark record's headers.
pub(crate) fn watermark_headers(position: Position) -> OwnedHeaders {
    let value = position.to_string();
    OwnedHeaders::new().insert(Header {
        key: headers::WATERMARK,
        value: Some(value.as_bytes()),
    })
}

/// What a record of a relay topic is.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
// Moved once, straight out of `decode_record`: boxing every event would cost more.
#[allow(clippy::large_enum_variant)]
pub enum Record {
    /// An event.
    Event(RecordedEvent),
    /// A watermark: every event up to this position is before it on its partition.
    Watermark(Position),
    /// Nothing to apply (with Debezium: a tombstone, a delete, another table).
    Other,
}

/// Decodes a record the [`KafkaRelay`](crate::KafkaRelay) wrote, for consumers of
/// your own.
///
/// # Errors
/// [`KafkaError::BadRecord`](crate::KafkaError::BadRecord) saying what is missing or garbled.
pub fn decode_record(message: &impl Message) -> Result<Record, crate::KafkaError> {
    decode(message).map_err(|reason| crate::KafkaError::BadRecord { reason })
}

/// The text of header `key`, if present.
fn header<'a>(message: &'a impl Message, key: &str) -> Option<&'a [u8]> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|header| header.key == key)
        .and_then(|header| header.value)
}

/// Header `key`, required and parsed.
fn required<T: std::str::FromStr>(message: &impl Message, key: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    let bytes = header(message, key).ok_or_else(|| format!("header `{key}` is missing"))?;
    let text = std::str::from_utf8(bytes).map_err(|_| format!("header `{key}` is not UTF-8"))?;
    text.parse()
        .map_err(|error| format!("header `{key}` (`{}`): {error}", clip(text)))
}

/// Header `key`, optional and parsed.
fn optional<T: std::str::FromStr>(message: &impl Message, key: &str) -> Result<Option<T>, String>
where
    T::Err: std::fmt::Display,
{
    match header(message, key) {
        None => Ok(None),
        Some(_) => required(message, key).map(Some),
    }
}

fn clip(text: &str) -> String {
    text.chars().take(60).collect()
}

/// Decodes a record of a relay topic; the error says what is wrong with it.
pub(crate) fn decode(message: &impl Message) -> Result<Record, String> {
    if header(message, headers::WATERMARK).is_some() {
        return required(message, headers::WATERMARK).map(|p| Record::Watermark(Position(p)));
    }
    let payload = message.payload().ok_or("the record has no value")?;
    let payload: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|error| format!("the value is not JSON: {error}"))?;
    let extra: Option<String> = optional(message, headers::EXTRA)?;
    let extra: BTreeMap<String, String> = match extra {
        None => BTreeMap::new(),
        Some(text) => serde_json::from_str(&text)
            .map_err(|error| format!("header `{}`: {error}", headers::EXTRA))?,
    };
    let recorded_at: String = required(message, headers::RECORDED_AT)?;
    let recorded_at = chrono::DateTime::parse_from_rfc3339(&recorded_at)
        .map_err(|error| format!("header `{}`: {error}", headers::RECORDED_AT))?
        .with_timezone(&chrono::Utc);
    Ok(Record::Event(RecordedEvent {
        event_id: required(message, headers::EVENT_ID)?,
        stream_id: StreamId::new(required::<String>(message, headers::STREAM_ID)?),
        version: Version(required(message, headers::VERSION)?),
        position: Position(required(message, headers::POSITION)?),
        recorded_at,
        metadata: Metadata {
            correlation_id: optional(message, headers::CORRELATION_ID)?,
            causation_id: optional(message, headers::CAUSATION_ID)?,
            user_id: optional(message, headers::USER_ID)?,
            tenant_id: optional(message, headers::TENANT_ID)?,
            extra,
        },
        event: RawEvent {
            event_type: required(message, headers::EVENT_TYPE)?,
            schema_version: required(message, headers::SCHEMA_VERSION)?,
            payload,
        },
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rdkafka::message::{OwnedMessage, Timestamp};

    use super::*;

    fn event() -> RecordedEvent {
        RecordedEvent {
            event_id: uuid::Uuid::now_v7(),
            stream_id: StreamId::new("goal-1"),
            version: Version(3),
            position: Position(42),
            recorded_at: chrono::Utc::now(),
            metadata: Metadata::new()
                .with_user("ada")
                .with_correlation_id(uuid::Uuid::now_v7()),
            event: RawEvent {
                event_type: "goal.Created".into(),
                schema_version: 2,
                payload: serde_json::json!({ "title": "run" }),
            },
        }
    }

    fn record(payload: Option<Vec<u8>>, headers: OwnedHeaders) -> OwnedMessage {
        OwnedMessage::new(
            payload,
            None,
            "t".into(),
            Timestamp::NotAvailable,
            0,
            0,
            Some(headers),
        )
    }

    #[test]
    fn an_event_survives_the_round_trip() {
        let original = event();
        let message = record(Some(payload_of(&original)), headers_of(&original));
        let Record::Event(decoded) = decode(&message).unwrap() else {
            panic!("not an event")
        };
        assert_eq!(decoded, original);
    }

    #[test]
    fn a_watermark_is_recognised() {
        let message = record(None, watermark_headers(Position(7)));
        assert!(matches!(
            decode(&message).unwrap(),
            Record::Watermark(Position(7))
        ));
    }

    #[test]
    fn garbled_records_are_errors_that_say_why() {
        let original = event();
        let no_value = record(None, headers_of(&original));
        assert_eq!(decode(&no_value).unwrap_err(), "the record has no value");
        let not_json = record(Some(b"{oops".to_vec()), headers_of(&original));
        assert!(
            decode(&not_json)
                .unwrap_err()
                .starts_with("the value is not JSON")
        );
        let bad_position = OwnedHeaders::new().insert(Header {
            key: headers::POSITION,
            value: Some("-3".as_bytes()),
        });
        let garbled = record(Some(b"{}".to_vec()), bad_position);
        assert!(decode(&garbled).unwrap_err().contains("is missing"));
        let bad_watermark = OwnedHeaders::new().insert(Header {
            key: headers::WATERMARK,
            value: Some("soon".as_bytes()),
        });
        assert!(
            decode(&record(None, bad_watermark))
                .unwrap_err()
                .contains("cqrs-watermark")
        );
    }
}
