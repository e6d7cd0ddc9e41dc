//! The seeds reach what they are there for: a seed that every decoder refuses at its
//! first byte would leave the replay and libFuzzer's first minutes testing nothing.

use std::path::Path;

use cqrs_core::{Event, RecordedEvent};
use cqrs_fuzz::targets::{binlog_row, kafka, pgoutput};
use cqrs_kafka::Record;

fn seed(target: &str, name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn envelope_seeds_are_recorded_events_that_decode() {
    let events: Vec<RecordedEvent> =
        serde_json::from_slice(&seed("envelope", "mada-demo-all.json")).expect("events");
    assert!(events.len() > 30, "{} events", events.len());
    for event in &events {
        let decoded = mada::domain::GoalEvent::decode_ref(&event.event).is_ok()
            || mada::domain::CategoryEvent::decode_ref(&event.event).is_ok();
        assert!(decoded, "{:?} does not decode", event.event);
    }
}

#[test]
fn pgoutput_seeds_are_a_real_servers_messages_and_decode_to_events() {
    let input = seed("pgoutput", "all-transactions.bin");
    let messages = pgoutput::messages(&input);
    assert_eq!(messages.len(), 20);
    let events = cqrs_postgres::fuzzing::pgoutput(messages, pgoutput::NAMESPACE).expect("decodes");
    assert_eq!(
        events.len(),
        6,
        "the inserts into cqrs_events, not those into `other`"
    );
}

#[test]
fn binlog_seeds_decode_to_events_or_to_the_error_they_are_for() {
    for name in ["unsigned-as-signed.txt", "unsigned.txt"] {
        let row = binlog_row::row(&seed("binlog_row", name));
        assert_eq!(row.len(), 9, "{name}");
        cqrs_mysql::fuzzing::binlog_row(row).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let row = binlog_row::row(&seed("binlog_row", "corrupt-payload-zero-date.txt"));
    assert!(cqrs_mysql::fuzzing::binlog_row(row).is_err());
}

#[test]
fn kafka_seeds_are_an_event_and_a_watermark() {
    let event = cqrs_kafka::decode_record(&kafka::message(&seed("kafka_record", "event.txt")));
    assert!(matches!(event, Ok(Record::Event(_))), "{event:?}");
    let mark = cqrs_kafka::decode_record(&kafka::message(&seed("kafka_record", "watermark.txt")));
    assert!(matches!(mark, Ok(Record::Watermark(_))), "{mark:?}");
    let event = cqrs_kafka::fuzzing::debezium(&kafka::message(&seed("debezium", "event.json")));
    assert!(matches!(event, Ok(Record::Event(_))), "{event:?}");
    let mark = cqrs_kafka::fuzzing::debezium(&kafka::message(&seed("debezium", "heartbeat.json")));
    assert!(matches!(mark, Ok(Record::Watermark(_))), "{mark:?}");
}

fn answer(name: &str) -> serde_json::Value {
    cqrs_fuzz::targets::graphql::answer(&seed("graphql", name)).expect("a request")
}

fn codes(answer: &serde_json::Value) -> Vec<String> {
    answer["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn graphql_seeds_read_and_write_alices_data_and_are_refused_bobs() {
    let read = answer("read-everything.json");
    assert!(codes(&read).is_empty(), "{read}");
    assert_eq!(read["data"]["goal"]["title"], "alice-goal", "{read}");
    let writes = answer("own-writes.json");
    assert!(codes(&writes).is_empty(), "{writes}");
    for name in [
        "read-bobs-goal.json",
        "complete-bobs-goal.json",
        "goal-in-bobs-category.json",
        "edit-into-bobs-category.json",
        "rename-bobs-category.json",
        "delete-bobs-things.json",
    ] {
        let refused = answer(name);
        assert_eq!(codes(&refused), ["NOT_FOUND"], "{name}: {refused}");
    }
}

#[test]
fn fcm_seeds_cover_every_outcome() {
    use mada::notify::fcm::{Reply, Sent, classify};
    let mut seen = std::collections::BTreeSet::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/fcm_reply");
    for entry in std::fs::read_dir(dir).expect("the FCM seeds") {
        let text = std::fs::read_to_string(entry.expect("a seed").path()).expect("text");
        let mut lines = text.splitn(3, '\n');
        let status = lines.next().and_then(|s| s.parse().ok()).expect("a status");
        let after = lines.next().filter(|s| !s.is_empty());
        let outcome = match classify(status, after, lines.next().unwrap_or("")) {
            Reply::Done(Sent::Delivered(name)) if !name.is_empty() => "delivered",
            Reply::Done(Sent::Unregistered) => "unregistered",
            Reply::Done(Sent::Rejected(_)) => "rejected",
            Reply::Done(Sent::Retry { after: Some(_), .. }) => "retry after",
            Reply::Done(Sent::Retry { after: None, .. }) => "retry",
            Reply::RefreshToken => "refresh",
            Reply::Done(other) => panic!("{other:?}"),
        };
        seen.insert(outcome);
    }
    let all = [
        "delivered",
        "refresh",
        "rejected",
        "retry",
        "retry after",
        "unregistered",
    ];
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), all);
}

#[test]
fn binlog_seeds_are_a_real_servers_files_and_decode_to_events() {
    use cqrs_fuzz::targets::binlog;
    for (name, expected) in [
        ("mariadb-three-transactions.bin", 8),
        ("first-transaction.bin", 1),
        ("no-checksum.bin", 4),
    ] {
        let events = binlog::events(&seed("binlog", name))
            .expect("a binlog file")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(events.len(), expected, "{name}");
    }
}
