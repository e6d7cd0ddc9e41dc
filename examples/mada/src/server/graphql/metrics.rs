//! Request latency per operation: how long each root field took, labelled by the
//! field's name (bounded by the schema, unlike client-chosen operation names).

use std::sync::Arc;
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ServerResult, Value};

/// Records `mada_graphql_field_seconds{field, outcome}` for root fields.
pub(super) struct Metrics;

impl ExtensionFactory for Metrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(MetricsExtension)
    }
}

struct MetricsExtension;

#[async_trait::async_trait]
impl Extension for MetricsExtension {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.path_node.parent.is_some() {
            return next.run(ctx, info).await;
        }
        let field = format!("{}.{}", info.parent_type, info.name);
        let started = Instant::now();
        let result = next.run(ctx, info).await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::histogram!("mada_graphql_field_seconds", "field" => field, "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        result
    }
}
