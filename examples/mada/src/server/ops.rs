//! Operations endpoints: `/healthz`, `/readyz`, `/metrics`.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::AppState;

/// Updates of gauges the server cannot see itself (a cache's hit ratio, for
/// example), run on every scrape of `/metrics`.
#[derive(Clone, Default)]
pub struct Gauges(Vec<Arc<dyn Fn() + Send + Sync>>);

impl std::fmt::Debug for Gauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gauges({})", self.0.len())
    }
}

impl Gauges {
    /// Adds `update`, which sets gauges through the `metrics` macros.
    #[must_use]
    pub fn with(mut self, update: impl Fn() + Send + Sync + 'static) -> Self {
        self.0.push(Arc::new(update));
        self
    }
}

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's `metrics` recorder, once.
pub(super) fn install_recorder() {
    RECORDER.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        match metrics::set_global_recorder(recorder) {
            Ok(()) => Some(handle),
            Err(_) => {
                tracing::warn!("another metrics recorder is installed: /metrics stays empty");
                None
            }
        }
    });
}

/// Alive: the process answers.
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: the event store answers, and every projection has caught up once and is
/// running.
pub(super) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if let Err(error) = state.planner.head().await {
        tracing::warn!(%error, "not ready: the event store does not answer");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the event store does not answer\n",
        )
            .into_response();
    }
    for stats in state.planner.stats() {
        if stats.ended.is_some() {
            let body = format!("not ready: projection `{}` has stopped\n", stats.target);
            return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
        }
        if !stats.caught_up {
            let body = format!("not ready: projection `{}` is catching up\n", stats.target);
            return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
        }
    }
    (StatusCode::OK, "ready\n").into_response()
}

/// The metrics, in Prometheus text format.
pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    render(&state.planner.stats(), &state.gauges)
}

/// Projection stats, gauges, then the text format.
fn render(projections: &[cqrs_core::ProjectionStats], gauges: &Gauges) -> Response {
    let Some(Some(handle)) = RECORDER.get() else {
        return (StatusCode::NOT_FOUND, "no metrics recorder\n").into_response();
    };
    for stats in projections {
        let projection = stats.target.clone();
        #[allow(clippy::cast_precision_loss)]
        let position = stats.position.0 as f64;
        metrics::gauge!("mada_projection_position", "projection" => projection.clone())
            .set(position);
        let lag = stats.lag.map_or(0.0, |lag| lag.as_secs_f64());
        metrics::gauge!("mada_projection_lag_seconds", "projection" => projection.clone()).set(lag);
        let caught_up = if stats.caught_up { 1.0 } else { 0.0 };
        metrics::gauge!("mada_projection_caught_up", "projection" => projection.clone())
            .set(caught_up);
        let leader = if stats.leader { 1.0 } else { 0.0 };
        metrics::gauge!("mada_projection_leader", "projection" => projection).set(leader);
    }
    for update in &gauges.0 {
        update();
    }
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// The stats of the projection runners a worker process runs.
pub type WorkerStats = Arc<dyn Fn() -> Vec<cqrs_core::ProjectionStats> + Send + Sync>;

/// `/healthz`, `/readyz` and `/metrics` for a process that runs projections and no
/// API (`mada project`): ready while every runner runs, leading or standing by.
pub fn worker_router(stats: WorkerStats) -> axum::Router {
    use axum::routing::get;
    install_recorder();
    let ready = Arc::clone(&stats);
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/readyz",
            get(move || {
                let stats = ready();
                async move {
                    match stats.iter().find(|s| s.ended.is_some()) {
                        Some(s) => {
                            let body =
                                format!("not ready: projection `{}` has stopped\n", s.target);
                            (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
                        }
                        None => (StatusCode::OK, "ready\n").into_response(),
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let stats = stats();
                async move { render(&stats, &Gauges::default()) }
            }),
        )
}
