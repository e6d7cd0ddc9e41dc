//! The GraphQL schema: queries for the screens, a mutation per command, and a
//! subscription to today's list. Every resolver acts for the caller alone
//! ([`Caller`], from the token): a user's queries read only the documents keyed by
//! their id, and the write model refuses commands on others' goals and categories as
//! if they did not exist.

mod errors;
mod metrics;
mod mutation;
mod query;
mod subscription;
mod types;

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, Schema};
use uuid::Uuid;

pub use errors::Code;
pub(crate) use errors::coded;

use crate::PlannerService;
use mutation::MutationRoot;
use query::QueryRoot;
use subscription::SubscriptionRoot;

/// The schema type.
pub type MadaSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Who is asking, and the request's correlation id: put in every request's data.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The signed-in user (the token's subject).
    pub user: String,
    /// The request's correlation id, carried into the events it writes.
    pub correlation: Uuid,
    /// The device the request comes from (its `x-mada-device` header), carried into
    /// the events it writes.
    pub device: Option<String>,
}

/// Limits on what a query may ask.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// The deepest selection.
    pub depth: usize,
    /// The most fields (each counts 1).
    pub complexity: usize,
    /// How long a query given a token waits for the read models.
    pub read_wait: Duration,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            depth: 8,
            complexity: 250,
            read_wait: Duration::from_secs(5),
        }
    }
}

pub(crate) struct Api {
    planner: Arc<dyn PlannerService>,
    read_wait: Duration,
}

/// The schema, over `planner`.
pub fn schema(planner: Arc<dyn PlannerService>, limits: QueryLimits) -> MadaSchema {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(Api {
            planner,
            read_wait: limits.read_wait,
        })
        .limit_depth(limits.depth)
        .limit_complexity(limits.complexity)
        .limit_recursive_depth(32)
        .limit_directives(8)
        .extension(metrics::Metrics)
        .finish()
}

/// The caller and the API from a resolver's context.
pub(crate) fn parts<'c>(ctx: &'c Context<'_>) -> async_graphql::Result<(&'c Caller, &'c Api)> {
    let caller = ctx
        .data::<Caller>()
        .map_err(|_| coded(Code::Unauthenticated, "sign in"))?;
    Ok((caller, ctx.data_unchecked::<Api>()))
}
