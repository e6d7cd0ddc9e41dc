//! Debezium's change events of the event table, as the subscriber reads them, and
//! the connector configuration that produces them.

use cqrs_core::{Metadata, Position, RawEvent, RecordedEvent, StreamId, Version};
use rdkafka::message::Message;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::record::Record;

/// The change event's envelope (JSON converter without schemas).
#[derive(Deserialize)]
struct Change {
    after: Option<Value>,
    source: Source,
    op: String,
}

#[derive(Deserialize)]
struct Source {
    table: String,
}

/// A row of `cqrs_events` as Debezium writes it: jsonb columns as JSON text, the
/// timestamp as ISO 8601.
#[derive(Deserialize)]
struct Row {
    position: u64,
    stream_id: String,
    version: u64,
    event_id: uuid::Uuid,
    event_type: String,
    schema_version: u32,
    payload: String,
    metadata: Option<String>,
    recorded_at: String,
}

/// Decodes a change event of the event table (an event) or of the heartbeat table
/// (a watermark); anything else (a tombstone, another table, a delete) is
/// [`Record::Other`].
pub(crate) fn decode(message: &impl Message) -> Result<Record, String> {
    let Some(value) = message.payload() else {
        return Ok(Record::Other); // a tombstone
    };
    let change: Change = serde_json::from_slice(value)
        .map_err(|error| format!("not a Debezium change event: {error}"))?;
    if !matches!(change.op.as_str(), "c" | "r" | "u") {
        return Ok(Record::Other);
    }
    let Some(after) = change.after else {
        return Ok(Record::Other);
    };
    match change.source.table.as_str() {
        "cqrs_events" => {
            let row: Row = serde_json::from_value(after)
                .map_err(|error| format!("not a row of cqrs_events: {error}"))?;
            event(row).map(Record::Event)
        }
        "cqrs_cdc_heartbeat" => {
            let safe = after
                .get("safe")
                .and_then(Value::as_i64)
                .ok_or("a heartbeat row without `safe`")?;
            // Below the first position (no transaction finished yet): nothing is safe.
            Ok(Record::Watermark(Position(
                u64::try_from(safe).unwrap_or(0),
            )))
        }
        _ => Ok(Record::Other),
    }
}

fn event(row: Row) -> Result<RecordedEvent, String> {
    let payload: Value = serde_json::from_str(&row.payload)
        .map_err(|error| format!("`payload` is not JSON: {error}"))?;
    let metadata: Metadata = match row.metadata.as_deref() {
        None => Metadata::new(),
        Some(text) => serde_json::from_str(text)
            .map_err(|error| format!("`metadata` is not metadata: {error}"))?,
    };
    let recorded_at = chrono::DateTime::parse_from_rfc3339(&row.recorded_at)
        .map_err(|error| format!("`recorded_at`: {error}"))?
        .with_timezone(&chrono::Utc);
    Ok(RecordedEvent {
        event_id: row.event_id,
        stream_id: StreamId::new(row.stream_id),
        version: Version(row.version),
        position: Position(row.position),
        recorded_at,
        metadata,
        event: RawEvent {
            event_type: row.event_type,
            schema_version: row.schema_version,
            payload,
        },
    })
}

/// The configuration of a Debezium PostgreSQL connector whose topic a
/// [`KafkaSubscriber::debezium`](crate::KafkaSubscriber::debezium) can read: the
/// event table and the heartbeat table of `schema` (migrated by `cqrs-postgres`),
/// through the slot and publication `slot` (pgoutput; created by the connector,
/// dropped by you when the connector goes), routed to the one topic `topic` with a
/// single partition, so that heartbeats and events keep their commit order. The
/// heartbeat runs `SELECT {schema}.cqrs_cdc_heartbeat()` every `heartbeat_ms`
/// milliseconds: the subscriber releases events up to the safe position it records,
/// so this is the latency's floor.
///
/// Add `database.hostname`, `database.port`, `database.user`, `database.dbname`
/// and, from your secret store, `database.password`, then `PUT` it to
/// `/connectors/{name}/config` of Kafka Connect. It streams only what is committed
/// after the slot exists (`snapshot.mode = no_data`): catch a new read model up from
/// the event store first, or rebuild it from the store.
pub fn debezium_connector(schema: &str, slot: &str, topic: &str, heartbeat_ms: u64) -> Value {
    json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "plugin.name": "pgoutput",
        "slot.name": slot,
        "publication.name": slot,
        "publication.autocreate.mode": "filtered",
        "snapshot.mode": "no_data",
        "topic.prefix": topic,
        "schema.include.list": schema,
        "table.include.list": format!("{schema}.cqrs_events,{schema}.cqrs_cdc_heartbeat"),
        "heartbeat.interval.ms": heartbeat_ms.to_string(),
        // Debezium waits this long for more changes before handing a batch to Kafka
        // Connect (500 ms by default): it would add to every event's latency.
        "poll.interval.ms": (heartbeat_ms / 5).clamp(1, 100).to_string(),
        "heartbeat.action.query": format!("SELECT {schema}.cqrs_cdc_heartbeat()"),
        "transforms": "route",
        "transforms.route.type": "io.debezium.transforms.ByLogicalTableRouter",
        "transforms.route.topic.regex": ".*",
        "transforms.route.topic.replacement": topic,
        "topic.creation.default.partitions": "1",
        "topic.creation.default.replication.factor": "-1",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "time.precision.mode": "adaptive_time_microseconds",
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rdkafka::message::{OwnedMessage, Timestamp};

    use super::*;

    fn message(value: &Value) -> OwnedMessage {
        let bytes = serde_json::to_vec(value).unwrap();
        OwnedMessage::new(
            Some(bytes),
            None,
            "t".into(),
            Timestamp::NotAvailable,
            0,
            0,
            None,
        )
    }

    #[test]
    fn an_insert_into_the_event_table_is_an_event() {
        let id = uuid::Uuid::now_v7();
        let change = json!({
            "before": null,
            "after": {
                "position": 42, "stream_id": "goal-1", "version": 3, "event_id": id,
                "event_type": "goal.Created", "schema_version": 2,
                "payload": "{\"title\": \"run\"}",
                "metadata": "{\"user_id\": \"ada\"}",
                "recorded_at": "2026-11-26T10:00:00.123456Z"
            },
            "source": { "table": "cqrs_events", "txId": 7 },
            "op": "c"
        });
        let Record::Event(event) = decode(&message(&change)).unwrap() else {
            panic!("not an event")
        };
        assert_eq!(event.position, Position(42));
        assert_eq!(event.event_id, id);
        assert_eq!(event.event.payload, json!({ "title": "run" }));
        assert_eq!(event.metadata.user_id.as_deref(), Some("ada"));
    }

    #[test]
    fn a_heartbeat_is_a_watermark_and_the_rest_is_ignored() {
        let beat = json!({ "after": { "id": 1, "safe": 99 }, "source": { "table": "cqrs_cdc_heartbeat" }, "op": "u" });
        assert_eq!(
            decode(&message(&beat)).unwrap(),
            Record::Watermark(Position(99))
        );
        let delete = json!({ "after": null, "source": { "table": "cqrs_events" }, "op": "d" });
        assert_eq!(decode(&message(&delete)).unwrap(), Record::Other);
        let garbled = json!({ "after": { "position": "x" }, "source": { "table": "cqrs_events" }, "op": "c" });
        assert!(
            decode(&message(&garbled))
                .unwrap_err()
                .contains("cqrs_events")
        );
    }
}
