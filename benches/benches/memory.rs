//! In-memory benches: projection throughput and command throughput.
//!
//! Run with `cargo bench -p cqrs-benches --bench memory`. Numbers and the machine
//! they were taken on are in BENCHMARKS.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cqrs_benches::{create_goal, planner_events, toggle};
use cqrs_core::{
    AppendRequest, EventAppender, ExpectedVersion, MemoryEventStore, MemoryReadModelStore,
    Metadata, NewEvent, Position, Projection, ProjectionRunner, RecordedEvent, Repository,
    SnapshotPolicy,
};
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use mada::domain::{Goal, GoalEvent};
use mada::projections::PlanProjection;
use uuid::Uuid;

const USERS: usize = 100; // 3,100 events

fn runtime() -> tokio::runtime::Runtime {
    cqrs_benches::runtime()
}

/// Applies every event to a fresh read model, `batch` events at a time.
fn bench_apply<P: Projection + Clone>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &tokio::runtime::Runtime,
    name: &str,
    projection: P,
    store: &MemoryEventStore,
    events: &[RecordedEvent],
    batch: usize,
) {
    group.bench_with_input(BenchmarkId::new(name, batch), &batch, |b, &batch| {
        b.to_async(rt).iter(|| async {
            let runner = ProjectionRunner::new(
                projection.clone(),
                store.clone(),
                MemoryReadModelStore::new(),
            );
            let mut checkpoint = Position::START;
            for chunk in events.chunks(batch) {
                checkpoint = runner.apply(checkpoint, chunk).await.expect("apply");
            }
            checkpoint
        });
    });
}

/// Events applied per second to a read model, through `ProjectionRunner::apply`
/// (decode, load the documents a batch touches, apply, commit with the checkpoint).
fn projection_throughput(c: &mut Criterion) {
    let rt = runtime();
    let (store, events) = rt.block_on(planner_events(USERS));
    let mut group = c.benchmark_group("projection/memory");
    group.throughput(Throughput::Elements(events.len() as u64));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for batch in [1usize, 100, 1000] {
        bench_apply(
            &mut group,
            &rt,
            "plan",
            PlanProjection,
            &store,
            &events,
            batch,
        );
    }
    // The whole path: a spawned runner subscribed to the store, from position 0 to the head.
    group.bench_function("plan/subscribed/1000", |b| {
        b.to_async(&rt).iter(|| async {
            let handle =
                ProjectionRunner::new(PlanProjection, store.clone(), MemoryReadModelStore::new())
                    .with_batch_size(1000)
                    .spawn();
            handle
                .wait_for(Position(events.len() as u64))
                .await
                .expect("caught up");
            handle.stop().await.expect("stopped");
        });
    });
    group.finish();
}

/// Commands per second through the repository (load with snapshot, decide, append),
/// beside the ceiling of appending the same events with no load and no decision.
fn command_throughput(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("commands/memory");
    group.throughput(Throughput::Elements(1));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    // `repository` has the defaults; `repository-no-queue` turns the per-stream queue
    // off, to show what the queue costs when nothing contends (each task owns its
    // goals).
    for (name, queue, tasks) in [
        ("repository", true, 1usize),
        ("repository-no-queue", false, 1),
        ("repository", true, 8),
        ("repository-no-queue", false, 8),
    ] {
        let store = MemoryEventStore::new();
        let repo = Repository::<Goal, _>::new(store.clone())
            .with_snapshots(SnapshotPolicy::Every(50))
            .with_stream_queue(queue);
        const GOALS_PER_TASK: usize = 64;
        let goals: Vec<Vec<Uuid>> = (0..tasks)
            .map(|t| {
                (0..GOALS_PER_TASK)
                    .map(|g| Uuid::from_u128((t * 1000 + g) as u128 + 1))
                    .collect()
            })
            .collect();
        rt.block_on(async {
            for goal in goals.iter().flatten() {
                repo.execute(&create_goal(*goal, "bench"), Metadata::new())
                    .await
                    .expect("create");
            }
        });
        let goals = Arc::new(goals);
        // Whether each goal is done on the day toggled; each task owns its goals.
        let done: Arc<Vec<Vec<AtomicBool>>> = cqrs_benches::done_flags(tasks, GOALS_PER_TASK);
        group.bench_with_input(BenchmarkId::new(name, tasks), &tasks, |b, &tasks| {
            b.to_async(&rt).iter_custom(|iters| {
                let repo = repo.clone();
                let goals = goals.clone();
                let done = done.clone();
                async move {
                    let per_task = (iters as usize).div_ceil(tasks);
                    let started = Instant::now();
                    let handles: Vec<_> = (0..tasks)
                        .map(|t| {
                            let repo = repo.clone();
                            let goals = goals.clone();
                            let done = done.clone();
                            tokio::spawn(async move {
                                for i in 0..per_task {
                                    let g = i % GOALS_PER_TASK;
                                    let complete = !done[t][g].fetch_xor(true, Ordering::Relaxed);
                                    let outcome = repo
                                        .execute(
                                            &toggle(goals[t][g], "bench", complete),
                                            Metadata::new(),
                                        )
                                        .await
                                        .expect("execute");
                                    assert_eq!(
                                        outcome.events.len(),
                                        1,
                                        "every command records one event"
                                    );
                                }
                            })
                        })
                        .collect();
                    for handle in handles {
                        handle.await.expect("task");
                    }
                    started.elapsed()
                }
            });
        });
    }
    // Ceiling: appends of one pre-encoded event with `ExpectedVersion::Any`.
    let store = MemoryEventStore::new();
    let event = NewEvent::encode(
        &GoalEvent::GoalCompleted {
            goal_id: Uuid::from_u128(1),
            user_id: "bench".into(),
            day: cqrs_benches::month_start(),
        },
        Metadata::new(),
    )
    .expect("encode");
    group.bench_function("append-ceiling/1", |b| {
        b.to_async(&rt).iter(|| async {
            store
                .append(AppendRequest::new(
                    "goal-ceiling",
                    ExpectedVersion::Any,
                    vec![event.clone()],
                ))
                .await
                .expect("append")
        });
    });
    group.finish();
}

/// What a read of today's list or of a month costs on top of fetching the user's plan:
/// decoding the stored JSON and computing the view, for a plan of 20 goals (10 daily
/// with no end, 10 on Mondays and Thursdays with no end), each done on every due day
/// of the year before: 5,690 done days.
fn plan_views(c: &mut Criterion) {
    use chrono::Weekday;
    use mada::domain::Schedule;
    use mada::projections::{Plan, PlannedGoal};
    let start = chrono::NaiveDate::from_ymd_opt(2025, 11, 1).expect("a date");
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).expect("a date");
    let goals = (0..20u128)
        .map(|n| {
            let schedule = if n % 2 == 0 {
                Schedule::every_day_from(start)
            } else {
                Schedule::weekly_from(start, [Weekday::Mon, Weekday::Thu])
            };
            PlannedGoal {
                goal_id: uuid::Uuid::from_u128(n + 1),
                title: format!("Goal {n}"),
                category_id: uuid::Uuid::from_u128(0),
                memo: None,
                done: schedule.days_between(start, today).collect(),
                schedule,
            }
        })
        .collect();
    let plan = Plan {
        user_id: "user".into(),
        goals,
    };
    let stored = serde_json::to_value(&plan).expect("json");
    let mut group = c.benchmark_group("view/plan");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("today/computed", |b| b.iter(|| plan.today(today)));
    group.bench_function("month/computed", |b| b.iter(|| plan.month(2026, 11)));
    group.bench_function("decode+today", |b| {
        b.iter(|| {
            let plan: Plan = serde_json::from_value(stored.clone()).expect("a plan");
            plan.today(today)
        });
    });
    group.finish();
    println!(
        "plan of 20 goals with a year of completions: {} bytes as JSON",
        stored.to_string().len()
    );
}

criterion_group!(
    benches,
    projection_throughput,
    command_throughput,
    plan_views
);
criterion_main!(benches);
