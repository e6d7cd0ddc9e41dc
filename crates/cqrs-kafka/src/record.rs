//! An event as a Kafka record: the payload as JSON, everything else in headers.

use cqrs_core::RecordedEvent;
use rdkafka::message::{Header, OwnedHeaders};

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
