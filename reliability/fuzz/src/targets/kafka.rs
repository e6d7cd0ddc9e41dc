//! Records of Kafka topics, as the consumers decode them: the relay's records (an
//! event in headers and a JSON value, or a watermark) and Debezium's change events.
//!
//! Input: header lines, `key: value` or `key` alone (a header with no value), then
//! an empty line and the record's value; with no empty line the record has no value
//! (a tombstone). Header values are bytes to the end of their line.

use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};

use super::head_and_body;

/// The record of `input`.
pub fn message(input: &[u8]) -> OwnedMessage {
    let (lines, body) = head_and_body(input);
    let mut headers = OwnedHeaders::new_with_capacity(lines.len());
    for line in lines {
        let (key, value) = match line.iter().position(|&b| b == b':') {
            Some(at) => {
                let value = &line[at + 1..];
                (&line[..at], Some(value.strip_prefix(b" ").unwrap_or(value)))
            }
            None => (line, None),
        };
        let key = String::from_utf8_lossy(key);
        headers = headers.insert(Header {
            key: key.as_ref(),
            value,
        });
    }
    OwnedMessage::new(
        body.map(<[u8]>::to_vec),
        None,
        "fuzz".to_owned(),
        Timestamp::NotAvailable,
        0,
        0,
        Some(headers),
    )
}

/// Runs one input through the relay's record decoder.
pub fn record(input: &[u8]) {
    let _ = cqrs_kafka::decode_record(&message(input));
}

/// Runs one input through the decoder of Debezium's change events.
pub fn debezium(input: &[u8]) {
    let _ = cqrs_kafka::fuzzing::debezium(&message(input));
}
