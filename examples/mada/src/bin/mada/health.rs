//! `--health-listen`: `/healthz`, `/readyz` and `/metrics` for the roles that serve
//! no API (`relay`, `notify`), for Kubernetes' probes. Off unless given.

use std::sync::Arc;
use std::time::Duration;

use crate::Cli;

/// Serves the health endpoints on `--health-listen` until SIGINT or SIGTERM, or
/// never completes without it.
pub(crate) async fn serve(cli: &Cli) -> Result<String, String> {
    let Some(address) = cli.health_listen else {
        return std::future::pending().await;
    };
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("--health-listen {address}: {e}"))?;
    let router = mada::server::worker_router(Arc::new(Vec::new));
    mada::server::serve(
        listener,
        router,
        std::future::pending(),
        Duration::from_secs(1),
    )
    .await
    .map_err(|e| format!("--health-listen {address}: {e}"))?;
    Err("the health endpoint stopped".into())
}
