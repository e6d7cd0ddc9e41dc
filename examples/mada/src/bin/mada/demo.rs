//! `mada demo`: the scripted scenario on the stores the flags name, printed.

use std::time::Duration;

use chrono::NaiveDate;
use cqrs_core::Projection;
use cqrs_core::{MemoryEventStore, MemoryReadModelStore};
use mada::kafka::KafkaSync;
use mada::projections::{CategoriesProjection, PlanProjection};
use mada::{Planner, PlannerOptions, ReadStores, render, scenario};

use crate::stores::{START_HINT, fresh_postgres, mongo_redis};
use crate::{Cli, ReadStoreKind, StoreKind, SyncKind};

/// Runs the demo on the stores the flags name.
pub(crate) async fn run_demo(
    cli: &Cli,
    options: PlannerOptions,
    today: NaiveDate,
) -> Result<String, String> {
    match (cli.store, cli.read_store) {
        (StoreKind::Memory, ReadStoreKind::Same) => {
            let read = ReadStores::all(MemoryReadModelStore::new());
            run(
                cli,
                MemoryEventStore::new(),
                read,
                options,
                today,
                "the in-memory store",
            )
            .await
        }
        (StoreKind::Memory, ReadStoreKind::MongoRedis) => {
            let read = mongo_redis(cli, true).await.map_err(|e| e.to_string())?;
            let events = MemoryEventStore::new();
            let label = "the in-memory event store, MongoDB + Redis read stores";
            run(cli, events, read, options, today, label).await
        }
        (StoreKind::Postgres, ReadStoreKind::Same) => {
            let (events, read) = fresh_postgres(&cli.database_url, &cli.pg_schema)
                .await
                .map_err(|e| e.to_string())?;
            run(
                cli,
                events,
                ReadStores::all(read),
                options,
                today,
                "the PostgreSQL store",
            )
            .await
        }
        (StoreKind::Postgres, ReadStoreKind::MongoRedis) => {
            let (events, _) = fresh_postgres(&cli.database_url, &cli.pg_schema)
                .await
                .map_err(|e| e.to_string())?;
            let read = mongo_redis(cli, true).await.map_err(|e| e.to_string())?;
            let label = "the PostgreSQL event store, MongoDB + Redis read stores";
            run(cli, events, read, options, today, label).await
        }
    }
}

/// Starts the planner on `events` and `read`, its projections fed per `--sync`, and
/// runs the demo.
async fn run<S, P, K>(
    cli: &Cli,
    events: S,
    read: ReadStores<P, K>,
    options: PlannerOptions,
    today: NaiveDate,
    label: &str,
) -> Result<String, String>
where
    S: cqrs_core::EventStore + cqrs_core::EventSubscriber + Clone + 'static,
    P: cqrs_core::ReadModelStore + Clone + 'static,
    K: cqrs_core::ReadModelStore + Clone + 'static,
{
    let user = cli.user.as_str();
    if cli.sync == SyncKind::Subscription {
        return demo(Planner::start(events, read, options), user, today, label).await;
    }
    cqrs_kafka::probe(&cli.kafka_brokers, Duration::from_secs(5))
        .await
        .map_err(|e| format!("{e} {START_HINT}"))?;
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let kafka = KafkaSync::new(
        &cli.kafka_brokers,
        &format!("{}_{}", cli.kafka_prefix, &suffix[suffix.len() - 12..]),
    );
    let relay = kafka.relay();
    let source = events.clone();
    let mut relay = tokio::spawn(async move { relay.run(&source).await });
    let planner = Planner::start_with(events, &kafka, read, options);
    let label = format!("{label}, read models synced through Kafka");
    let result = tokio::select! {
        result = demo(planner, user, today, &label) => result,
        ended = &mut relay => Err(match ended {
            Ok(Err(error)) => format!("the Kafka relay stopped: {error} {START_HINT}"),
            Ok(Ok(())) => "the Kafka relay stopped".to_owned(),
            Err(error) => format!("the Kafka relay failed: {error}"),
        }),
    };
    relay.abort();
    let projections = [PlanProjection::NAME, CategoriesProjection::NAME];
    if let Err(error) = kafka.delete(&projections).await {
        tracing::warn!(%error, prefix = kafka.prefix(), "could not delete the demo's topics");
    }
    result
}

async fn demo<S, P, K>(
    planner: Planner<S, P, K>,
    user: &str,
    today: NaiveDate,
    store: &str,
) -> Result<String, String>
where
    S: cqrs_core::EventStore + cqrs_core::EventSubscriber + Clone + 'static,
    P: cqrs_core::ReadModelStore + Clone + 'static,
    K: cqrs_core::ReadModelStore + Clone + 'static,
{
    let result = scenario::run(&planner, user, today).await;
    let shutdown = planner.shutdown().await;
    let report = result.map_err(|e| e.to_string())?;
    shutdown.map_err(|e| e.to_string())?;
    Ok(render::report(&report, store))
}
