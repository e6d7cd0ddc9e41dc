//! `mada rebuild`: a new version of each read model built beside the live one from
//! the first event, then made live, with no moment where readers see nothing.
//!
//! For each read model: a runner writes `{name}_r{unix time in ms}` from position 0 (a
//! progress bar with an ETA on a terminal), catches up with the head, stops; the
//! alias `{name}` then points at it. Readers (through `Aliased`) switch within a
//! second, and so do the runners of `mada project` (or of `serve --role all`): they
//! leave the old version, take the new one's lease and go on from its checkpoint.
//! The old version is dropped once its lease is free again (no runner writes it any
//! more) and the readers' grace period has passed. A lease per read model
//! (`rebuild:{name}`) keeps two rebuilds from racing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_core::{
    EventStore, EventSubscriber, Lease, Projection, ProjectionHandle, ProjectionRunner,
    ReadModelStore,
};
use cqrs_postgres::PgLease;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use mada::projections::{CategoriesProjection, PlanProjection};

use crate::stores::{OnStores, Stores, on_stores};
use crate::{Cli, StoreKind, SyncKind};

/// Which read models to rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Which {
    /// Both.
    All,
    /// The users' plans (today's lists and months).
    Plan,
    /// The category lists.
    Categories,
}

/// How long readers may go on reading the old version after the switch (longer than
/// their alias refresh, 1 s).
const GRACE: Duration = Duration::from_secs(2);

/// Rebuilds `which` beside the live read models and cuts over.
pub(crate) async fn run(cli: &Cli, which: Which) -> Result<String, String> {
    if cli.store != StoreKind::Postgres {
        return Err("mada rebuild needs --store postgres: its leases live there".into());
    }
    match cli.sync {
        SyncKind::Subscription => {}
        SyncKind::Inline => {
            return Err(
                "--sync inline writes the read models in the appends' transactions, \
                        under their own names: stop the API, then `mada migrate` and a \
                        restart rebuild nothing; rebuild with the workers' mode instead"
                    .into(),
            );
        }
        SyncKind::Cdc | SyncKind::Kafka => {
            return Err(format!(
                "mada rebuild runs beside workers fed by subscriptions (--sync subscription): \
                 with --sync {}, the workers' replication slots or consumer offsets belong \
                 to the live version, and could not resume the new one from its checkpoint",
                if cli.sync == SyncKind::Cdc {
                    "cdc"
                } else {
                    "kafka"
                }
            ));
        }
    }
    on_stores(cli, false, Rebuild { cli, which }).await
}

struct Rebuild<'a> {
    cli: &'a Cli,
    which: Which,
}

impl OnStores for Rebuild<'_> {
    async fn run<S, P, K>(self, stores: Stores<'_, S, P, K>) -> Result<String, String>
    where
        S: EventStore + EventSubscriber + Clone + Send + Sync + 'static,
        P: ReadModelStore + Clone + Send + Sync + 'static,
        K: ReadModelStore + Clone + Send + Sync + 'static,
    {
        let pool = stores
            .db
            .pg()
            .ok_or("mada rebuild needs --store postgres")?;
        let lease = Arc::new(PgLease::new(pool.clone()));
        let ttl = Duration::from_secs(self.cli.project_lease_ttl.max(1));
        let bars = MultiProgress::new();
        let version = format!(
            "r{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
        );
        // Positions are not a count (PostgreSQL's have gaps): count the events once,
        // for the progress bars' length.
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM cqrs_events")
            .fetch_one(pool)
            .await
            .map_err(|e| format!("counting the events: {e}"))?;
        let total = u64::try_from(total).unwrap_or(0);
        let job = |name: &'static str| Job {
            name,
            version: version.clone(),
            lease: Arc::clone(&lease),
            ttl,
            bar: bars.add(bar(name, total)),
        };
        let (plans, categories) = (self.which != Which::Categories, self.which != Which::Plan);
        let events = stores.events;
        let (plan, category) = tokio::join!(
            async {
                if plans {
                    job(PlanProjection::NAME)
                        .run(PlanProjection, events.clone(), stores.read.plans)
                        .await
                } else {
                    Ok(String::new())
                }
            },
            async {
                if categories {
                    job(CategoriesProjection::NAME)
                        .run(CategoriesProjection, events.clone(), stores.read.categories)
                        .await
                } else {
                    Ok(String::new())
                }
            },
        );
        Ok(format!("{}{}", plan?, category?))
    }
}

fn bar(name: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix:>10} [{bar:32}] {human_pos}/{human_len} events, ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(name.to_owned());
    bar
}

/// One read model's rebuild.
struct Job {
    name: &'static str,

    version: String,
    lease: Arc<PgLease>,
    ttl: Duration,
    bar: ProgressBar,
}

impl Job {
    async fn run<Proj, S, R>(self, projection: Proj, events: S, store: R) -> Result<String, String>
    where
        Proj: Projection + 'static,
        S: EventStore + EventSubscriber + Clone + 'static,
        R: ReadModelStore + Clone + 'static,
    {
        let name = self.name;
        let err = |what: &str, e: cqrs_core::Error| format!("rebuilding `{name}`: {what}: {e}");
        let holder = uuid::Uuid::now_v7().to_string();
        let guard = format!("rebuild:{name}");
        if !self
            .lease
            .acquire(&guard, &holder, self.ttl)
            .await
            .map_err(|e| err("the rebuild lease", e))?
        {
            return Err(format!(
                "another `mada rebuild` of `{name}` is running; wait for it to end"
            ));
        }
        let result = self.rebuild(projection, events, store, &holder).await;
        let _ = self.lease.release(&guard, &holder).await;
        result
    }

    async fn rebuild<Proj, S, R>(
        &self,
        projection: Proj,
        events: S,
        store: R,
        holder: &str,
    ) -> Result<String, String>
    where
        Proj: Projection + 'static,
        S: EventStore + EventSubscriber + Clone + 'static,
        R: ReadModelStore + Clone + 'static,
    {
        let name = self.name;
        let err = |what: &str, e: cqrs_core::Error| format!("rebuilding `{name}`: {what}: {e}");
        let live = store
            .alias(name)
            .await
            .map_err(|e| err("reading its alias", e))?
            .unwrap_or_else(|| name.to_owned());
        let next = format!("{name}_{}", self.version);
        if next == live {
            return Err(format!(
                "rebuilding `{name}`: `{next}` is live already; try again"
            ));
        }
        let started = Instant::now();
        tracing::info!(%name, %live, %next, "rebuilding beside the live version");
        let handle = ProjectionRunner::new(projection, events.clone(), store.clone())
            .with_name(&next)
            .with_lease(Arc::clone(&self.lease), self.ttl)
            .rebuild()
            .await
            .map_err(|e| err("starting", e))?;
        self.follow(&handle, &events).await?;
        let applied = handle.stats().events;
        handle.stop().await.map_err(|e| err("stopping", e))?;
        // The switch: readers and the workers follow the alias within a second.
        store
            .set_alias(name, &next)
            .await
            .map_err(|e| err("pointing the alias at the new version", e))?;
        self.bar.finish();
        let took = started.elapsed();
        tracing::info!(%name, %next, ?took, "readers switched to the new version");
        tokio::time::sleep(GRACE).await;
        // Dropped once no runner holds its lease: the workers have moved on.
        self.drop_version(&store, &live, holder).await?;
        Ok(format!(
            "{name}: rebuilt from {applied} events into `{next}` in {:.1} s and made it live; \
             `{live}` dropped\n",
            took.as_secs_f64()
        ))
    }

    /// Shows the runner's progress (events applied of the events in the log) until
    /// it reaches the head, then waits for it to apply what came meanwhile.
    async fn follow<S: EventStore>(
        &self,
        handle: &ProjectionHandle,
        events: &S,
    ) -> Result<(), String> {
        let name = self.name;
        let err = |what: &str, e: cqrs_core::Error| format!("rebuilding `{name}`: {what}: {e}");
        let head = events.head().await.map_err(|e| err("the head", e))?;
        loop {
            let stats = handle.stats();
            if let Some(reason) = stats.ended {
                return Err(format!("rebuilding `{name}`: the runner ended: {reason}"));
            }
            // Events appended since the count at the start lengthen the bar.
            if stats.events > self.bar.length().unwrap_or(0) {
                self.bar.set_length(stats.events);
            }
            self.bar.set_position(stats.events);
            if stats.position >= head {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let head = events.head().await.map_err(|e| err("the head", e))?;
        handle
            .wait_for_timeout(head, Duration::from_secs(60))
            .await
            .map_err(|e| err("catching up with the head", e))?;
        self.bar.set_position(handle.stats().events);
        Ok(())
    }

    /// Removes the old version once its lease is free (taking it meanwhile, so no
    /// runner starts on it).
    async fn drop_version<R: ReadModelStore>(
        &self,
        store: &R,
        live: &str,
        holder: &str,
    ) -> Result<(), String> {
        let name = self.name;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.lease.acquire(live, holder, self.ttl).await {
                Ok(true) => break,
                Ok(false) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(false) => {
                    return Err(format!(
                        "`{name}` is live in its new version, but a runner still holds the old \
                         version `{live}`'s lease after 60 s; drop `{live}` by hand once it \
                         has moved on"
                    ));
                }
                Err(e) => return Err(format!("rebuilding `{name}`: the old version's lease: {e}")),
            }
        }
        let reset = store.reset(live).await;
        let _ = self.lease.release(live, holder).await;
        reset.map_err(|e| format!("rebuilding `{name}`: dropping `{live}`: {e}"))
    }
}
