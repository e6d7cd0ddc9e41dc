//! `mada dead-letters`: what the projections fed through Kafka set aside.

use std::fmt::Write;
use std::time::Duration;

use cqrs_core::Projection;
use mada::kafka::KafkaSync;
use mada::projections::{CategoriesProjection, PlanProjection};

use crate::Cli;
use crate::stores::START_HINT;

/// Lists the dead letters of the three projections under `--kafka-prefix`.
pub(crate) async fn list(cli: &Cli) -> Result<String, String> {
    cqrs_kafka::probe(&cli.kafka_brokers, Duration::from_secs(5))
        .await
        .map_err(|e| format!("{e} {START_HINT}"))?;
    let kafka = KafkaSync::new(&cli.kafka_brokers, &cli.kafka_prefix);
    let projections = [PlanProjection::NAME, CategoriesProjection::NAME];
    let all = kafka
        .dead_letters(&projections)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = format!("Dead letters under `{}`:\n", kafka.prefix());
    let mut total = 0;
    for (projection, letters) in &all {
        total += letters.len();
        if letters.is_empty() {
            let _ = writeln!(out, "  {projection}: none");
            continue;
        }
        let _ = writeln!(out, "  {projection}: {}", letters.len());
        for letter in letters {
            let origin = match (&letter.source, letter.position, &letter.event_id) {
                (Some((topic, partition, offset)), _, _) => {
                    format!("record {topic}[{partition}]@{offset}")
                }
                (None, Some(position), Some(id)) => format!("event {id} at position {position}"),
                _ => "a record".to_owned(),
            };
            let _ = writeln!(out, "    #{} {origin}: {}", letter.offset, letter.error);
        }
    }
    if total > 0 {
        out.push_str(
            "To replay: fix the projection (or add an upcaster), then rebuild the read model; \
             a rebuild reads every event again, the set-aside ones included.\n",
        );
    }
    Ok(out)
}
