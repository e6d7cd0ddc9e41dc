//! Starting the planner with its read models synced as `--sync` says: the store's
//! subscription, inline in the append's transaction, change-data-capture from the
//! write-ahead log, or Kafka.

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{EventStore, EventSubscriber, Projection, ReadModelStore};
use cqrs_kafka::KafkaError;
use cqrs_postgres::PgEventStore;
use mada::binlog::BinlogFeeds;
use mada::cdc::CdcFeeds;
use mada::kafka::KafkaSync;
use mada::projections::{CategoriesProjection, PlanProjection};
use mada::{Planner, PlannerOptions, ReadStores};
use sqlx::PgPool;
use tokio::task::JoinHandle;

use crate::stores::{START_HINT, WriteDb};
use crate::{Cli, ReadStoreKind, StoreKind, SyncKind};

/// Checks the flags fit together before anything is connected.
pub(crate) fn check(cli: &Cli) -> Result<(), String> {
    match cli.sync {
        SyncKind::Inline
            if cli.store == StoreKind::Memory || cli.read_store != ReadStoreKind::Same =>
        {
            Err(
                "--sync inline needs --store postgres|mysql --read-store same: the read \
                 models are written in the transaction that appends the events, and no \
                 transaction spans the event store and another store (a second write that \
                 fails would leave them disagreeing)"
                    .into(),
            )
        }
        SyncKind::Cdc if cli.store == StoreKind::Memory => Err(
            "--sync cdc needs --store postgres|mysql: it reads PostgreSQL's write-ahead log \
             or MySQL's binlog"
                .into(),
        ),
        // `serve` names its slots `{schema}_{projection}`; PostgreSQL allows 63 bytes.
        SyncKind::Cdc if cli.store == StoreKind::Postgres && cli.pg_schema.len() > 40 => {
            Err(format!(
                "--sync cdc names its replication slots after --pg-schema, which has {} \
             characters: use at most 40",
                cli.pg_schema.len()
            ))
        }
        _ => Ok(()),
    }
}

/// The prefix of the CDC slots (PostgreSQL: the schema's name) or binlog readers
/// (MySQL: the database's name, so that two deployments on one server register
/// as different replicas) of `serve` and `project`, kept across restarts.
pub(crate) fn cdc_prefix(cli: &Cli) -> String {
    match cli.store {
        StoreKind::Mysql => cli.mysql_database.clone(),
        _ => cli.pg_schema.clone(),
    }
}

/// PostgreSQL's event store, applying the planner's projections inline if
/// `--sync inline`.
pub(crate) fn pg_events(cli: &Cli, pool: PgPool) -> PgEventStore {
    let events = PgEventStore::new(pool);
    if cli.sync == SyncKind::Inline {
        events
            .with_inline_projection(PlanProjection)
            .with_inline_projection(CategoriesProjection)
    } else {
        events
    }
}

/// A started planner and what keeps its sync going.
pub(crate) struct Started<S, P, K> {
    pub(crate) planner: Arc<Planner<S, P, K>>,
    relay: Option<JoinHandle<Result<(), KafkaError>>>,
    kafka: Option<KafkaSync>,
    cdc: Option<CdcFeeds>,
    binlog: Option<BinlogFeeds>,
}

/// Starts the planner on `events` and `read` (events in `db`), its read models
/// synced per `--sync`; Kafka topics and CDC slots or binlog readers under
/// `prefix`.
pub(crate) async fn start<S, P, K>(
    cli: &Cli,
    events: S,
    read: ReadStores<P, K>,
    db: WriteDb<'_>,
    prefix: &str,
    options: PlannerOptions,
    reader: bool,
) -> Result<Started<S, P, K>, String>
where
    S: EventStore + EventSubscriber + Clone + 'static,
    P: ReadModelStore + Clone + 'static,
    K: ReadModelStore + Clone + 'static,
{
    let (mut relay, mut kafka, mut cdc, mut binlog) = (None, None, None, None);
    let planner = match cli.sync {
        // The API's write and read roles: `mada project` keeps the read models.
        _ if reader => Planner::start_reader(events, read, options),
        SyncKind::Subscription => Planner::start(events, read, options),
        SyncKind::Inline => Planner::start_inline(events, read, options),
        SyncKind::Cdc if matches!(db, WriteDb::Mysql(_)) => {
            let WriteDb::Mysql(pool) = db else {
                unreachable!("matched above")
            };
            let feeds = BinlogFeeds::new(pool, &cli.mysql_url, prefix)
                .map_err(|e| format!("change-data-capture: {e}"))?;
            let planner = Planner::start_with(events, &feeds, read, options);
            binlog = Some(feeds);
            planner
        }
        SyncKind::Cdc => {
            let pool = db.pg().ok_or("--sync cdc needs --store postgres|mysql")?;
            let plans = read.plans.checkpoint(PlanProjection::NAME).await;
            let categories = read.categories.checkpoint(CategoriesProjection::NAME).await;
            let (plans, categories) = (
                plans.map_err(|e| e.to_string())?,
                categories.map_err(|e| e.to_string())?,
            );
            let feeds = CdcFeeds::create(pool, prefix, &events, plans, categories)
                .await
                .map_err(|e| format!("change-data-capture: {e}"))?;
            let planner = Planner::start_with(events, &feeds, read, options);
            cdc = Some(feeds);
            planner
        }
        SyncKind::Kafka => {
            cqrs_kafka::probe(&cli.kafka_brokers, Duration::from_secs(5))
                .await
                .map_err(|e| format!("{e} {START_HINT}"))?;
            let sync = KafkaSync::new(&cli.kafka_brokers, prefix);
            let publisher = sync.relay();
            let source = events.clone();
            relay = Some(tokio::spawn(async move { publisher.run(&source).await }));
            let planner = Planner::start_with(events, &sync, read, options);
            kafka = Some(sync);
            planner
        }
    };
    Ok(Started {
        planner: Arc::new(planner),
        relay,
        kafka,
        cdc,
        binlog,
    })
}

impl<S, P, K> Started<S, P, K>
where
    S: EventStore + EventSubscriber + Clone + 'static,
    P: ReadModelStore + Clone + 'static,
    K: ReadModelStore + Clone + 'static,
{
    /// Completes if the Kafka relay stops (never without one), saying why.
    pub(crate) async fn relay_stopped(&mut self) -> String {
        let Some(relay) = self.relay.as_mut() else {
            return std::future::pending().await;
        };
        match relay.await {
            Ok(Err(error)) => format!("the Kafka relay stopped: {error} {START_HINT}"),
            Ok(Ok(())) => "the Kafka relay stopped".to_owned(),
            Err(error) => format!("the Kafka relay failed: {error}"),
        }
    }

    /// Stops the projections (after their batch in progress) and the relay; with
    /// `remove`, also deletes the Kafka topics and groups and drops the CDC slots
    /// (the demo's: no one will read them again, and a slot no one reads keeps WAL).
    ///
    /// # Errors
    /// The first error a projection had stopped with.
    pub(crate) async fn finish(self, remove: bool) -> Result<(), String> {
        if let Some(relay) = &self.relay {
            relay.abort();
        }
        let stopped = match Arc::try_unwrap(self.planner) {
            Ok(planner) => planner.shutdown().await.map_err(|e| e.to_string()),
            Err(shared) => {
                shared.halt().await;
                Ok(())
            }
        };
        if remove {
            if let Some(kafka) = self.kafka {
                let projections = [PlanProjection::NAME, CategoriesProjection::NAME];
                if let Err(error) = kafka.delete(&projections).await {
                    tracing::warn!(%error, prefix = kafka.prefix(), "could not delete the demo's topics");
                }
            }
            if let Some(cdc) = self.cdc
                && let Err(error) = cdc.drop_slots().await
            {
                tracing::warn!(%error, "could not drop the demo's replication slots");
            }
            if let Some(binlog) = self.binlog
                && let Err(error) = binlog.forget().await
            {
                tracing::warn!(%error, "could not forget the demo's binlog readers");
            }
        }
        stopped
    }
}
