//! `mada relay`: publishes the planner's events from PostgreSQL or MySQL to Kafka
//! until stopped (SIGINT or SIGTERM), one replica at a time.

use std::time::Duration;

use cqrs_core::EventSubscriber;
use cqrs_kafka::KafkaRelay;
use cqrs_mysql::{MySqlEventStore, MySqlLease};
use cqrs_postgres::{PgEventStore, PgLease};
use mada::kafka::KafkaSync;

use crate::stores::{START_HINT, connect_mysql, connect_postgres};
use crate::{Cli, StoreKind};

/// Runs the relay until a signal stops it (`Ok`) or it fails.
pub(crate) async fn run_relay(cli: &Cli) -> Result<String, String> {
    let text = |e: Box<dyn std::error::Error>| e.to_string();
    let ttl = Duration::from_secs(cli.relay_lease_ttl.max(1));
    match cli.store {
        StoreKind::Memory => Err(
            "the relay publishes events another process writes: run it with --store \
             postgres|mysql"
                .into(),
        ),
        StoreKind::Postgres => {
            let pool = connect_postgres(&cli.database_url, &cli.pg_schema)
                .await
                .map_err(text)?;
            let lease = PgLease::new(pool.clone());
            relay(
                cli,
                |relay| relay.with_lease(lease, ttl),
                &PgEventStore::new(pool),
            )
            .await
        }
        StoreKind::Mysql => {
            let pool = connect_mysql(&cli.mysql_url, &cli.mysql_database, false)
                .await
                .map_err(text)?;
            let lease = MySqlLease::new(pool.clone());
            relay(
                cli,
                |relay| relay.with_lease(lease, ttl),
                &MySqlEventStore::new(pool),
            )
            .await
        }
    }
}

/// Publishes `events` (the relay under the lease `lease` gives it).
async fn relay(
    cli: &Cli,
    lease: impl FnOnce(KafkaRelay) -> KafkaRelay,
    events: &impl EventSubscriber,
) -> Result<String, String> {
    cqrs_kafka::probe(&cli.kafka_brokers, Duration::from_secs(5))
        .await
        .map_err(|e| format!("{e} {START_HINT}"))?;
    let kafka = KafkaSync::new(&cli.kafka_brokers, &cli.kafka_prefix);
    let relay = lease(kafka.relay().with_batch_size(cli.relay_batch));
    tracing::info!(prefix = kafka.prefix(), "relay starting");
    tokio::select! {
        result = relay.run(events) => match result {
            Ok(()) => Err("the relay's event source ended".into()),
            Err(error) => Err(format!("the relay stopped: {error}")),
        },
        served = crate::health::serve(cli) => served,
        () = crate::serve::shutdown_signal() => Ok(String::new()),
    }
}
