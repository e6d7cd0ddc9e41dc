//! GraphQL requests to MADA's API, as its HTTP handler reads them: a JSON body,
//! executed against the schema for a signed-in caller, over an in-memory planner
//! (a fresh one, on a fresh runtime, for every input).
//!
//! Input: the request body. Before it runs, `$ALICE_GOAL`, `$ALICE_CATEGORY`,
//! `$BOB_GOAL` and `$BOB_CATEGORY` in it are replaced by the ids of goals and
//! categories made for the run, so that inputs reach past "not found". The caller is
//! Alice. Checks:
//! * the request is answered (a response that serializes), with no panic;
//! * Bob's plan, categories and settings are the same after as before, and nothing of
//!   his (his goal's title, his category's name) is in the answer: a user sees and
//!   changes only their own data, whatever they send.

use std::sync::Arc;

use chrono::NaiveDate;
use cqrs_core::{MemoryEventStore, MemoryReadModelStore};
use mada::domain::Schedule;
use mada::server::graphql::{Caller, QueryLimits, schema};
use mada::{NewGoal, Planner, PlannerOptions, ReadStores};

/// What only Bob may see.
const BOB_TITLE: &str = "bob-private-goal-7f3a";
const BOB_CATEGORY: &str = "bob-private-category-7f3a";

/// Runs one input.
pub fn run(input: &[u8]) {
    let _ = answer(input);
}

/// Runs one input and returns the answer (`None` if the input is not a request).
pub fn answer(input: &[u8]) -> Option<serde_json::Value> {
    let text = std::str::from_utf8(input).ok()?;
    // A runtime per input: dropping it ends the planner's projection runners.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(request(text))
}

async fn request(text: &str) -> Option<serde_json::Value> {
    let planner = Planner::start(
        MemoryEventStore::new(),
        ReadStores::all(MemoryReadModelStore::new()),
        PlannerOptions::default(),
    );
    let day = NaiveDate::from_ymd_opt(2026, 11, 27).expect("a day");
    let mut ids = Vec::new();
    for (user, title, category) in [
        ("alice", "alice-goal", "alice-category"),
        ("bob", BOB_TITLE, BOB_CATEGORY),
    ] {
        let category_id = planner
            .create_category(user, category, "#336699")
            .await
            .expect("a category");
        let goal = NewGoal {
            title: title.to_owned(),
            memo: None,
            category_id,
            schedule: Schedule::every_day_from(day),
        };
        let goal_id = planner.create_goal(user, goal).await.expect("a goal");
        ids.push((goal_id.to_string(), category_id.to_string()));
    }
    planner.sync().await.expect("the read models catch up");
    let text = text
        .replace("$ALICE_GOAL", &ids[0].0)
        .replace("$ALICE_CATEGORY", &ids[0].1)
        .replace("$BOB_GOAL", &ids[1].0)
        .replace("$BOB_CATEGORY", &ids[1].1);
    let request = serde_json::from_str::<async_graphql::Request>(&text).ok()?;
    let before = bob(&planner).await;
    let planner = Arc::new(planner);
    let schema = schema(planner.clone(), QueryLimits::default());
    let request = request.data(Caller {
        user: "alice".to_owned(),
        correlation: uuid::Uuid::nil(),
        device: None,
    });
    let response = schema.execute(request).await;
    let answer = serde_json::to_string(&response).expect("a response serializes");
    for secret in [BOB_TITLE, BOB_CATEGORY] {
        assert!(
            !answer.contains(secret),
            "Bob's data in Alice's answer: {answer}"
        );
    }
    assert_eq!(
        bob(&planner).await,
        before,
        "Alice's request changed Bob's data"
    );
    Some(serde_json::from_str(&answer).expect("the answer is JSON"))
}

/// Everything of Bob's, as JSON.
async fn bob<S, P, K>(planner: &Planner<S, P, K>) -> String
where
    S: cqrs_core::EventStore + cqrs_core::EventSubscriber + Clone + 'static,
    P: cqrs_core::ReadModelStore + Clone + 'static,
    K: cqrs_core::ReadModelStore + Clone + 'static,
{
    let plan = planner.plan("bob").await.expect("Bob's plan");
    let categories = planner.categories("bob").await.expect("Bob's categories");
    let settings = planner.settings("bob").await.expect("Bob's settings");
    format!("{plan:?}\n{categories:?}\n{settings:?}")
}
