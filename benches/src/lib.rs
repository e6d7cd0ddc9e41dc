//! Shared fixtures for the criterion benches: MADA events and goals to work on.

use chrono::NaiveDate;
use cqrs_core::{
    AppendRequest, DocumentChange, EventAppender, ExpectedVersion, Guard, MemoryEventStore,
    MemoryReadModelStore, Metadata, NewEvent, Position, ProjectionBatch, ProjectionRunner,
    ReadModelReader, ReadModelStore, ReadModelWriter, RecordedEvent,
};
use mada::domain::{CategoryFact, GoalAction, GoalCommand, GoalDetails, GoalEvent, Schedule};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use uuid::Uuid;

/// The first day of the month the fixtures plan.
pub fn month_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default()
}

/// A store holding, for each of `users` users, one goal due every day of November
/// 2026 and a completion on each of its 30 days: `users * 31` events.
///
/// # Panics
/// If the in-memory store refuses an append (it does not).
pub async fn planner_events(users: usize) -> (MemoryEventStore, Vec<RecordedEvent>) {
    let store = MemoryEventStore::new();
    let start = month_start();
    let end = start + chrono::Duration::days(29);
    for user in 0..users {
        let goal_id = Uuid::from_u128(user as u128 + 1);
        let user_id = format!("user{user}");
        let mut events = vec![GoalEvent::GoalCreated {
            goal_id,
            user_id: user_id.clone(),
            details: GoalDetails {
                title: "Read 20 pages".into(),
                category_id: Uuid::from_u128(0),
                memo: None,
            },
            schedule: Schedule::daily(start, end),
        }];
        events.extend(
            Schedule::daily(start, end)
                .days_between(start, end)
                .map(|day| GoalEvent::GoalCompleted {
                    goal_id,
                    user_id: user_id.clone(),
                    day,
                }),
        );
        let new = events
            .iter()
            .map(|e| NewEvent::encode(e, Metadata::new().with_user(user_id.clone())))
            .collect::<Result<Vec<_>, _>>()
            .expect("encodable");
        store
            .append(AppendRequest::new(
                format!("goal-{goal_id}"),
                ExpectedVersion::NoStream,
                new,
            ))
            .await
            .expect("append");
    }
    let all = cqrs_core::LogReader::read_all(&store, Position::START, usize::MAX)
        .await
        .expect("read");
    (store, all)
}

/// A command that completes (`done`) or reopens goal `goal` of `user` on the first
/// day of the month: every call produces exactly one event when alternated.
pub fn toggle(goal: Uuid, user: &str, done: bool) -> GoalCommand {
    let day = month_start();
    if done {
        GoalCommand::new(user, goal, GoalAction::Complete { day })
    } else {
        GoalCommand::new(user, goal, GoalAction::Uncomplete { day })
    }
}

/// The command creating goal `goal` for `user`, due every day of November 2026.
pub fn create_goal(goal: Uuid, user: &str) -> GoalCommand {
    let category = Uuid::from_u128(0);
    GoalCommand::new(
        user,
        goal,
        GoalAction::Create {
            title: "Morning run".into(),
            memo: None,
            category: CategoryFact::Active {
                category_id: category,
                owner: user.into(),
            },
            schedule: Schedule::daily(month_start(), month_start() + chrono::Duration::days(29)),
        },
    )
}

/// `tasks` rows of `per_task` flags, all false: per task and goal, whether the goal
/// is done on the toggled day (each task owns its goals).
pub fn done_flags(tasks: usize, per_task: usize) -> Arc<Vec<Vec<AtomicBool>>> {
    Arc::new(
        (0..tasks)
            .map(|_| (0..per_task).map(|_| AtomicBool::new(false)).collect())
            .collect(),
    )
}

/// Applies `events` in batches of `batch` to a fresh read model `name` of `store`,
/// then removes it: a catch-up from the first event, as a bench iteration.
///
/// # Panics
/// If the store fails.
pub async fn catch_up<S: ReadModelStore + Clone + 'static>(
    store: S,
    source: MemoryEventStore,
    events: &[RecordedEvent],
    batch: usize,
    name: String,
) {
    let runner = ProjectionRunner::new(mada::projections::PlanProjection, source, store.clone())
        .with_name(name.clone());
    let mut checkpoint = Position::START;
    for chunk in events.chunks(batch) {
        checkpoint = runner.apply(checkpoint, chunk).await.expect("apply");
    }
    store.reset(&name).await.expect("reset");
}

/// The document changes MADA's `plan` projection makes, batch by batch, from the
/// first event: what the ceilings of the catch-up benches write.
///
/// # Panics
/// If the projection fails on the fixtures.
pub async fn changes_per_batch(events: &[RecordedEvent], batch: usize) -> Vec<Vec<DocumentChange>> {
    let projection = mada::projections::PlanProjection;
    let memory = MemoryReadModelStore::new();
    let mut all = Vec::new();
    for chunk in events.chunks(batch) {
        let plan = ProjectionBatch::plan(&projection, chunk).expect("plan");
        let stored = memory
            .get_many("plan", plan.document_ids())
            .await
            .expect("load");
        let changes = plan
            .apply(&projection, "plan", stored, Guard::SkipApplied)
            .expect("apply");
        let last = chunk.last().expect("event").position;
        memory
            .commit("plan", changes.clone(), last)
            .await
            .expect("commit");
        all.push(changes);
    }
    all
}

/// A pool of `connections` on the test PostgreSQL server whose search path is a new
/// schema `schema`.
///
/// # Panics
/// If the server cannot be reached (with how to start it) or refuses.
pub async fn pool_in(schema: &str, connections: u32) -> sqlx::PgPool {
    use std::str::FromStr;
    let url = cqrs_testkit::postgres_url();
    let admin = sqlx::PgPool::connect(&url)
        .await
        .unwrap_or_else(|e| cqrs_testkit::server_unreachable("PostgreSQL", &url, e));
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .expect("schema");
    admin.close().await;
    let options = sqlx::postgres::PgConnectOptions::from_str(&url)
        .expect("url")
        .options([("search_path", schema)]);
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(connections)
        .connect_with(options)
        .await
        .expect("pool")
}

/// The benches' runtime: two worker threads, as many as the reference machine has
/// cores.
///
/// # Panics
/// If the runtime cannot be built.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The `q` quantile (0 to 1) of `sorted` latencies (nearest rank).
///
/// # Panics
/// If `sorted` is empty.
pub fn percentile(sorted: &[std::time::Duration], q: f64) -> std::time::Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// The repository README's example, compiled as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// Goals per task in the command benches.
pub const GOALS_PER_TASK: usize = 4;

/// Per task, its goals, and whether each is done on the toggled day.
pub struct Goals {
    /// Per task, its goals' ids.
    pub ids: Vec<Vec<Uuid>>,
    /// Per task and goal, whether it is done on the toggled day.
    pub done: Arc<Vec<Vec<AtomicBool>>>,
}

impl Goals {
    /// `tasks` tasks' worth of new goal ids, none done.
    pub fn new(tasks: usize) -> Self {
        Self {
            ids: (0..tasks)
                .map(|_| (0..GOALS_PER_TASK).map(|_| Uuid::now_v7()).collect())
                .collect(),
            done: done_flags(tasks, GOALS_PER_TASK),
        }
    }
}
