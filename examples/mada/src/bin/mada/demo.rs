//! `mada demo`: the scripted scenario on the stores the flags name, printed.

use chrono::NaiveDate;
use cqrs_core::{EventStore, EventSubscriber, ReadModelStore};
use mada::{PlannerOptions, ReadStores, render, scenario};

use crate::stores::{OnStores, Stores, WriteDb, on_stores};
use crate::sync;
use crate::{Cli, SyncKind};

/// Runs the demo on the stores the flags name.
pub(crate) async fn run_demo(
    cli: &Cli,
    options: PlannerOptions,
    today: NaiveDate,
) -> Result<String, String> {
    sync::check(cli)?;
    on_stores(
        cli,
        true,
        Demo {
            cli,
            options,
            today,
        },
    )
    .await
}

struct Demo<'a> {
    cli: &'a Cli,
    options: PlannerOptions,
    today: NaiveDate,
}

impl OnStores for Demo<'_> {
    async fn run<S, P, K>(self, stores: Stores<'_, S, P, K>) -> Result<String, String>
    where
        S: EventStore + EventSubscriber + Clone + Send + Sync + 'static,
        P: ReadModelStore + Clone + Send + Sync + 'static,
        K: ReadModelStore + Clone + Send + Sync + 'static,
    {
        let Stores {
            events,
            read,
            db,
            label,
            ..
        } = stores;
        run(self.cli, events, read, db, self.options, self.today, label).await
    }
}

/// Starts the planner on `events` and `read`, synced per `--sync`, runs the
/// scenario, and cleans up what the demo made for the sync (topics, slots).
async fn run<S, P, K>(
    cli: &Cli,
    events: S,
    read: ReadStores<P, K>,
    db: WriteDb<'_>,
    options: PlannerOptions,
    today: NaiveDate,
    label: &str,
) -> Result<String, String>
where
    S: EventStore + EventSubscriber + Clone + 'static,
    P: ReadModelStore + Clone + 'static,
    K: ReadModelStore + Clone + 'static,
{
    // Kafka topics and CDC slots of this run only: the demo deletes them at the end.
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let prefix = match cli.sync {
        SyncKind::Kafka => format!("{}_{}", cli.kafka_prefix, &suffix[suffix.len() - 12..]),
        _ => format!("mada_cdc_{}", &suffix[suffix.len() - 12..]),
    };
    let mut started = sync::start(cli, events, read, db, &prefix, options, false).await?;
    let label = match cli.sync {
        SyncKind::Subscription => label.to_owned(),
        SyncKind::Inline => format!("{label}, read models written inline"),
        SyncKind::Cdc => format!("{label}, read models synced by change-data-capture"),
        SyncKind::Kafka => format!("{label}, read models synced through Kafka"),
    };
    let user = cli.user.as_str();
    let planner = std::sync::Arc::clone(&started.planner);
    let result = tokio::select! {
        result = scenario::run(&*planner, user, today) => result.map_err(|e| e.to_string()),
        stopped = started.relay_stopped() => Err(stopped),
    };
    drop(planner);
    let finished = started.finish(true).await;
    let report = result?;
    finished?;
    Ok(render::report(&report, &label))
}
