//! PostgreSQL's `pgoutput` messages, as the change-data-capture source reads them
//! from a replication slot: the decoder, then the rows of `cqrs_events` as events.
//!
//! Input: messages, each after its length as a big-endian `u32`; a length past the
//! end takes what is left. The seeds are messages a real server sent (see
//! `corpus/README.md`). The watched table is `cqrs_fuzz.cqrs_events`.

/// The schema of the watched table in the seeds.
pub const NAMESPACE: &str = "cqrs_fuzz";

/// Splits `input` into its messages.
pub fn messages(mut input: &[u8]) -> Vec<&[u8]> {
    let mut messages = Vec::new();
    while input.len() >= 4 {
        let len = u32::from_be_bytes([input[0], input[1], input[2], input[3]]);
        let len = usize::try_from(len)
            .unwrap_or(usize::MAX)
            .min(input.len() - 4);
        messages.push(&input[4..4 + len]);
        input = &input[4 + len..];
    }
    messages
}

/// Runs one input.
pub fn run(input: &[u8]) {
    let messages = messages(input);
    let inserts = messages.iter().filter(|m| m.first() == Some(&b'I')).count();
    if let Ok(events) = cqrs_postgres::fuzzing::pgoutput(messages, NAMESPACE) {
        assert!(events.len() <= inserts, "more events than inserts");
    }
}
