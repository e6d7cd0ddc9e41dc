//! `mada serve`: the GraphQL API, the web page, health and metrics, on the stores
//! the flags name, until SIGINT or SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use cqrs_core::{EventStore, EventSubscriber, ReadModelStore};
use cqrs_mongo::MongoReadModelStore;
use cqrs_redis::RedisCache;
use mada::server::auth::{Authenticator, Jwks, Keys, hs256_token};
use mada::server::graphql::QueryLimits;
use mada::server::{Gauges, ServerConfig};
use mada::{PlannerOptions, PlannerService, ReadStores, render, scenario};

use crate::stores::{OnStores, Stores, WriteDb, on_stores};
use crate::sync;
use crate::{Cli, Role, StoreKind, SyncKind};

/// How tokens are checked, and the secret to sign the demo's token with: only when
/// the secret was made up here for this run (nobody else could sign one).
fn authenticator(cli: &Cli) -> Result<(Authenticator, Option<Vec<u8>>), String> {
    let (issuer, audience) = (cli.jwt_issuer.as_deref(), cli.jwt_audience.as_deref());
    if let Some(url) = &cli.jwks_url {
        let keys = Keys::Jwks(Jwks::new(url)?);
        return Ok((Authenticator::new(keys, issuer, audience), None));
    }
    if let Some(path) = &cli.jwt_public_key {
        let pem =
            std::fs::read(path).map_err(|e| format!("--jwt-public-key {}: {e}", path.display()))?;
        return Ok((Authenticator::rs256(&pem, issuer, audience)?, None));
    }
    if let Some(secret) = &cli.jwt_secret {
        if secret.len() < 32 {
            return Err("--jwt-secret: use at least 32 characters".into());
        }
        // No token printed: one in the log would be a credential anyone reading it
        // could use. `mada token` makes one.
        let keys = Keys::Hs256(secret.as_bytes().to_vec());
        return Ok((Authenticator::new(keys, issuer, audience), None));
    }
    if cli.store != StoreKind::Memory {
        return Err(
            "say how tokens are checked: --jwt-secret, --jwt-public-key or --jwks-url".into(),
        );
    }
    // The embedded demo: a secret of this run only, never shown; the token printed
    // below is the way in.
    let secret: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
        .iter()
        .flat_map(|u| u.into_bytes())
        .collect();
    Ok((Authenticator::hs256(&secret), Some(secret)))
}

fn config(cli: &Cli) -> ServerConfig {
    ServerConfig {
        limits: QueryLimits {
            read_wait: Duration::from_millis(cli.read_wait_ms),
            ..QueryLimits::default()
        },
        body_limit: cli.body_limit,
        request_timeout: Duration::from_millis(cli.request_timeout_ms),
        sockets_per_user: cli.sockets_per_user,
        write_url: cli.write_url.clone(),
    }
}

fn cache_gauges(cache: RedisCache<MongoReadModelStore>) -> Gauges {
    Gauges::default().with(move || {
        let stats = cache.stats();
        metrics::counter!("mada_cache_hits_total").absolute(stats.hits);
        metrics::counter!("mada_cache_misses_total").absolute(stats.misses);
        if let Some(ratio) = stats.hit_ratio() {
            metrics::gauge!("mada_cache_hit_ratio").set(ratio);
        }
    })
}

/// Runs `serve` on the stores the flags name.
pub(crate) async fn run(
    cli: &Cli,
    options: PlannerOptions,
    today: NaiveDate,
) -> Result<String, String> {
    sync::check(cli)?;
    if cli.role != Role::All && cli.store == StoreKind::Memory {
        return Err(
            "--role write and read need --store postgres|mysql: their read models are \
             kept by `mada project` processes, which must share the store"
                .into(),
        );
    }
    if cli.role == Role::Read && cli.write_url.is_none() {
        return Err("--role read needs --write-url: where mutations are forwarded".into());
    }
    let auth = authenticator(cli)?;
    on_stores(
        cli,
        false,
        Serve {
            cli,
            auth,
            options,
            today,
        },
    )
    .await
}

struct Serve<'a> {
    cli: &'a Cli,
    auth: (Authenticator, Option<Vec<u8>>),
    options: PlannerOptions,
    today: NaiveDate,
}

impl OnStores for Serve<'_> {
    async fn run<S, P, K>(self, stores: Stores<'_, S, P, K>) -> Result<String, String>
    where
        S: EventStore + EventSubscriber + Clone + Send + Sync + 'static,
        P: ReadModelStore + Clone + Send + Sync + 'static,
        K: ReadModelStore + Clone + Send + Sync + 'static,
    {
        let gauges = stores
            .cache
            .clone()
            .map_or_else(Gauges::default, cache_gauges);
        let Stores {
            events,
            read,
            db,
            label,
            ..
        } = stores;
        let stores = (events, read, db);
        start(
            self.cli,
            self.auth,
            self.options,
            self.today,
            stores,
            gauges,
            label,
        )
        .await
    }
}

async fn start<S, P, K>(
    cli: &Cli,
    (auth, secret): (Authenticator, Option<Vec<u8>>),
    options: PlannerOptions,
    today: NaiveDate,
    (events, read, db): (S, ReadStores<P, K>, WriteDb<'_>),
    gauges: Gauges,
    label: &str,
) -> Result<String, String>
where
    S: EventStore + EventSubscriber + Clone + Send + Sync + 'static,
    P: ReadModelStore + Clone + Send + Sync + 'static,
    K: ReadModelStore + Clone + Send + Sync + 'static,
{
    // Kafka topics under `--kafka-prefix`, CDC slots named after the schema: both
    // kept across restarts, so the read models resume where they were.
    let prefix = match cli.sync {
        SyncKind::Kafka => cli.kafka_prefix.clone(),
        _ => sync::cdc_prefix(cli),
    };
    let reader = cli.role != Role::All;
    let mut started = sync::start(cli, events, read, db, &prefix, options, reader).await?;
    let planner = Arc::clone(&started.planner);
    let user = cli.user.as_str();
    let demo_data = cli.demo_data.unwrap_or(cli.store == StoreKind::Memory);
    if demo_data {
        let report = scenario::run(&*planner, user, today)
            .await
            .map_err(|e| format!("loading the demo data: {e}"))?;
        println!("{}", render::today(&report.today_list, user));
    }
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", cli.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let service: Arc<dyn PlannerService> = planner;
    let router = mada::server::router(service, auth, config(cli), gauges)?;
    let role = format!("{:?}", cli.role).to_lowercase();
    println!("MADA serves on http://{address}/ ({label}, role {role})");
    println!(
        "  GraphQL: POST http://{address}/graphql, subscriptions on ws://{address}/graphql/ws"
    );
    if let Some(secret) = secret {
        let ttl = Duration::from_secs(cli.token_ttl);
        let token = hs256_token(&secret, user, ttl)?;
        println!(
            "  token for {user} (valid {} h): {token}",
            cli.token_ttl / 3600
        );
        println!("  open http://{address}/#day={today}&token={token}");
    }
    tracing::info!(%address, "serving");
    let drain = Duration::from_secs(cli.drain_secs);
    let served = tokio::select! {
        served = mada::server::serve(listener, router, shutdown_signal(), drain) => {
            served.map_err(|e| format!("serving on {address}: {e}"))
        }
        stopped = started.relay_stopped() => Err(stopped),
    };
    // The projections finish the batch they are applying, then stop.
    let finished = started.finish(false).await;
    served?;
    finished?;
    Ok("stopped\n".to_owned())
}

/// Completes on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
