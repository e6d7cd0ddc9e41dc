//! `mada relay`: publishes the planner's events from PostgreSQL to Kafka until
//! stopped (SIGINT or SIGTERM), one replica at a time.

use std::time::Duration;

use cqrs_postgres::{PgEventStore, PgLease};
use mada::kafka::KafkaSync;

use crate::stores::{START_HINT, connect_postgres};
use crate::{Cli, StoreKind};

/// Runs the relay until a signal stops it (`Ok`) or it fails.
pub(crate) async fn run_relay(cli: &Cli) -> Result<String, String> {
    if cli.store != StoreKind::Postgres {
        return Err(
            "the relay publishes events another process writes: run it with --store postgres"
                .into(),
        );
    }
    let pool = connect_postgres(&cli.database_url, &cli.pg_schema)
        .await
        .map_err(|e| e.to_string())?;
    cqrs_kafka::probe(&cli.kafka_brokers, Duration::from_secs(5))
        .await
        .map_err(|e| format!("{e} {START_HINT}"))?;
    let kafka = KafkaSync::new(&cli.kafka_brokers, &cli.kafka_prefix);
    let ttl = Duration::from_secs(cli.relay_lease_ttl.max(1));
    let relay = kafka
        .relay()
        .with_batch_size(cli.relay_batch)
        .with_lease(PgLease::new(pool.clone()), ttl);
    let events = PgEventStore::new(pool);
    tracing::info!(prefix = kafka.prefix(), "relay starting");
    tokio::select! {
        result = relay.run(&events) => match result {
            Ok(()) => Err("the relay's event source ended".into()),
            Err(error) => Err(format!("the relay stopped: {error}")),
        },
        served = crate::health::serve(cli) => served,
        () = crate::serve::shutdown_signal() => Ok(String::new()),
    }
}
