//! `mada serve`: the planner over HTTP.
//!
//! | route | what |
//! |---|---|
//! | `POST /graphql` | queries and mutations ([`graphql`]), `Authorization: Bearer <JWT>` |
//! | `GET /graphql/ws` | subscriptions over WebSocket (`graphql-transport-ws`, or the older `graphql-ws`); the token in the `connection_init` payload as `{"authorization": "Bearer <JWT>"}` |
//! | `GET /` | the web page |
//! | `GET /healthz` | alive: the process answers |
//! | `GET /readyz` | ready: the event store answers and every projection has caught up and runs |
//! | `GET /metrics` | Prometheus text format |
//!
//! Every request gets a correlation id (the `x-request-id` header if it is a UUID, a
//! new one otherwise), returned in `x-request-id`, logged on the request's span, and
//! written into the metadata of the events a mutation appends.

pub mod auth;
pub mod graphql;
mod http;
mod ops;
mod page;
mod ws;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

use crate::PlannerService;
use auth::Authenticator;
use graphql::{MadaSchema, QueryLimits};

pub use ops::{Gauges, WorkerStats, worker_router};

/// How the server behaves: limits and timeouts.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Limits on queries, and how long a query waits for its `after` token.
    pub limits: QueryLimits,
    /// The largest request body, in bytes.
    pub body_limit: usize,
    /// How long a request may take, waits included.
    pub request_timeout: Duration,
    /// The most live WebSocket connections one user may hold.
    pub sockets_per_user: usize,
    /// The read role: the base URL of the write role (`http://mada-write:8080`) to
    /// which mutations are forwarded, so that clients see one endpoint and one
    /// schema. `None`: this process runs the mutations itself.
    pub write_url: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            limits: QueryLimits::default(),
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(10),
            sockets_per_user: 8,
            write_url: None,
        }
    }
}

/// What the handlers share.
pub(crate) struct AppState {
    schema: MadaSchema,
    auth: Authenticator,
    planner: Arc<dyn PlannerService>,
    config: ServerConfig,
    sockets: Mutex<HashMap<String, usize>>,
    gauges: Gauges,
    forward: Option<http::Forward>,
}

/// The server's routes over `planner`, with tokens checked by `auth`. `gauges` are
/// updated on every scrape of `/metrics` (for example a cache's hit ratio).
///
/// # Errors
/// The HTTP client for [`ServerConfig::write_url`] could not be built.
pub fn router(
    planner: Arc<dyn PlannerService>,
    auth: Authenticator,
    config: ServerConfig,
    gauges: Gauges,
) -> Result<Router, String> {
    ops::install_recorder();
    let forward = match &config.write_url {
        Some(url) => Some(http::Forward::new(url, config.request_timeout)?),
        None => None,
    };
    let state = Arc::new(AppState {
        schema: graphql::schema(Arc::clone(&planner), config.limits),
        auth,
        planner,
        config,
        sockets: Mutex::default(),
        gauges,
        forward,
    });
    Ok(Router::new()
        .route("/graphql", post(http::graphql))
        .route("/graphql/ws", get(ws::upgrade))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(page::routes())
        .with_state(state))
}

/// Serves `router` on `listener` until `shutdown` completes, then stops taking
/// connections and waits for the requests in flight (at most `drain`).
///
/// # Errors
/// The listener failed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!(?drain, "shutting down: draining the requests in flight");
        let _ = stopping.send(true);
    };
    let server = axum::serve(listener, router).with_graceful_shutdown(signal);
    let server = std::pin::pin!(server.into_future());
    tokio::select! {
        result = server => result,
        () = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(drain).await;
        } => {
            tracing::warn!(?drain, "requests still in flight after the drain time; stopping anyway");
            Ok(())
        }
    }
}
