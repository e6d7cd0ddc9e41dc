//! `mada project` (projection workers, behind leases) and `mada migrate` (the
//! schema, once per release).

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{EventStore, EventSubscriber, Projection, ReadModelStore};
use mada::binlog::BinlogFeeds;
use mada::cdc::CdcFeeds;
use mada::kafka::KafkaSync;
use mada::projections::{CategoriesProjection, PlanProjection};
use mada::{PlannerOptions, StoreFeeds};

use crate::lease::AnyLease;
use crate::stores::{OnStores, Stores, WriteDb, connect_postgres, on_stores};
use crate::{Cli, StoreKind, SyncKind};

/// Creates or upgrades the schema `--pg-schema` (the event store's tables and the
/// notifier's), or the MySQL database `--mysql-database` (created if missing); safe
/// to run from many processes at once (the migrations lock).
pub(crate) async fn migrate(cli: &Cli) -> Result<String, String> {
    match cli.store {
        StoreKind::Memory => Err("mada migrate needs --store postgres|mysql".into()),
        StoreKind::Mysql => {
            crate::stores::connect_mysql(&cli.mysql_url, &cli.mysql_database, false)
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "MySQL database `{}` migrated\n",
                cli.mysql_database
            ))
        }
        StoreKind::Postgres => {
            let pool = connect_postgres(&cli.database_url, &cli.pg_schema)
                .await
                .map_err(|e| e.to_string())?;
            mada::notify::outbox::migrate(&pool)
                .await
                .map_err(|e| format!("the notifier's tables: {e}"))?;
            Ok(format!("schema `{}` migrated\n", cli.pg_schema))
        }
    }
}

/// Runs the projections until SIGINT or SIGTERM, serving `/healthz`, `/readyz` and
/// `/metrics` on `--listen`.
pub(crate) async fn run(cli: &Cli, options: PlannerOptions) -> Result<String, String> {
    if cli.store == StoreKind::Memory {
        return Err(
            "mada project needs --store postgres|mysql: its leases live there, and the \
             events it projects"
                .into(),
        );
    }
    if cli.sync == SyncKind::Inline {
        return Err(
            "--sync inline has no projection workers: the appends write the read models".into(),
        );
    }
    on_stores(cli, false, Project { cli, options }).await
}

struct Project<'a> {
    cli: &'a Cli,
    options: PlannerOptions,
}

impl OnStores for Project<'_> {
    async fn run<S, P, K>(self, stores: Stores<'_, S, P, K>) -> Result<String, String>
    where
        S: EventStore + EventSubscriber + Clone + Send + Sync + 'static,
        P: ReadModelStore + Clone + Send + Sync + 'static,
        K: ReadModelStore + Clone + Send + Sync + 'static,
    {
        let cli = self.cli;
        let lease = AnyLease::of(stores.db).ok_or("mada project needs --store postgres|mysql")?;
        let lease = Some((lease, Duration::from_secs(cli.project_lease_ttl.max(1))));
        let Stores {
            events, read, db, ..
        } = stores;
        let handles = match (cli.sync, db) {
            (SyncKind::Cdc, WriteDb::Mysql(pool)) => {
                let feeds = BinlogFeeds::new(pool, &cli.mysql_url, &crate::sync::cdc_prefix(cli))
                    .map_err(|e| format!("change-data-capture: {e}"))?;
                mada::project(&feeds, read, &self.options, lease)
            }
            (SyncKind::Cdc, _) => {
                let pool = db.pg().ok_or("--sync cdc needs --store postgres|mysql")?;
                let plans = read.plans.checkpoint(PlanProjection::NAME).await;
                let categories = read.categories.checkpoint(CategoriesProjection::NAME).await;
                let (plans, categories) = (
                    plans.map_err(|e| e.to_string())?,
                    categories.map_err(|e| e.to_string())?,
                );
                let feeds = CdcFeeds::create(pool, &cli.pg_schema, &events, plans, categories)
                    .await
                    .map_err(|e| format!("change-data-capture: {e}"))?;
                mada::project(&feeds, read, &self.options, lease)
            }
            (SyncKind::Kafka, _) => {
                let feeds = KafkaSync::new(&cli.kafka_brokers, &cli.kafka_prefix);
                mada::project(&feeds, read, &self.options, lease)
            }
            (SyncKind::Subscription | SyncKind::Inline, _) => {
                mada::project(&StoreFeeds(events), read, &self.options, lease)
            }
        };
        let handles = Arc::new(handles);
        let stats = Arc::clone(&handles);
        let router = mada::server::worker_router(Arc::new(move || {
            stats
                .iter()
                .map(cqrs_core::ProjectionHandle::stats)
                .collect()
        }));
        let listener = tokio::net::TcpListener::bind(cli.listen)
            .await
            .map_err(|e| format!("--listen {}: {e}", cli.listen))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        println!(
            "MADA projection worker on {} (health on http://{address}/)",
            stores_label(cli)
        );
        let drain = Duration::from_secs(cli.drain_secs);
        mada::server::serve(listener, router, crate::serve::shutdown_signal(), drain)
            .await
            .map_err(|e| e.to_string())?;
        // Each runner finishes its batch, gives its lease back, and stops.
        for handle in handles.iter() {
            handle.halt().await;
        }
        Ok("stopped\n".to_owned())
    }
}

fn stores_label(cli: &Cli) -> String {
    match cli.store {
        StoreKind::Mysql => format!(
            "MySQL database `{}`, sync {:?}",
            cli.mysql_database, cli.sync
        ),
        _ => format!("schema `{}`, sync {:?}", cli.pg_schema, cli.sync),
    }
    .to_lowercase()
}
