//! Commands on one hot stream: 16 tasks each renaming the same goal
//! on PostgreSQL, with the repository's defaults (commands on one stream queue in the
//! process) beside the same repository with the queue off (every command races,
//! conflicts and retries with backoff, as commands from separate processes do).
//!
//! Run with `cargo bench -p cqrs-benches --bench contention`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cqrs_benches::{create_goal, pool_in};
use cqrs_core::{CommandError, Metadata, Repository, SnapshotPolicy};
use cqrs_postgres::PgEventStore;
use criterion::{BenchmarkId, Criterion, Throughput};
use mada::domain::{CategoryFact, Goal, GoalAction, GoalCommand};
use uuid::Uuid;

const TASKS: usize = 16;
const PER_TASK: usize = 10;

/// A rename of `goal` to a title never used before: every command appends an event.
fn rename(goal: Uuid, n: u64) -> GoalCommand {
    let category = CategoryFact::Active {
        category_id: Uuid::from_u128(0),
        owner: "bench".into(),
    };
    let action = GoalAction::Edit {
        title: format!("Morning run {n}"),
        memo: None,
        category,
    };
    GoalCommand::new("bench", goal, action)
}

/// Runs `TASKS` tasks of `PER_TASK` commands each on one goal; returns how many
/// gave up on conflicts.
async fn hot(repo: &Repository<Goal, PgEventStore>, goal: Uuid, titles: &Arc<AtomicU64>) -> u64 {
    let gave_up = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (repo, titles, gave_up) = (repo.clone(), titles.clone(), gave_up.clone());
            tokio::spawn(async move {
                for _ in 0..PER_TASK {
                    let n = titles.fetch_add(1, Ordering::Relaxed);
                    match repo.execute(&rename(goal, n), Metadata::new()).await {
                        Ok(_) => {}
                        Err(CommandError::TooManyConflicts { .. }) => {
                            gave_up.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => panic!("{error}"),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    gave_up.load(Ordering::Relaxed)
}

fn main() {
    let rt = cqrs_benches::runtime();
    let mut criterion = Criterion::default().configure_from_args();
    let schema = cqrs_testkit::unique_name("hot_bench");
    let pool = rt.block_on(pool_in(&schema, 16));
    let store = PgEventStore::new(pool.clone());
    rt.block_on(store.migrate()).expect("migrate");
    let mut group = criterion.benchmark_group("hot-stream/postgres");
    group.throughput(Throughput::Elements((TASKS * PER_TASK) as u64));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    for (name, queue) in [("queued (default)", true), ("racing", false)] {
        // Snapshots keep each load short as the stream grows over the iterations:
        // the line measures contention, not stream length.
        let repo = Repository::<Goal, _>::new(store.clone())
            .with_snapshots(SnapshotPolicy::Every(50))
            .with_stream_queue(queue);
        let goal = Uuid::now_v7();
        let titles = Arc::new(AtomicU64::new(0));
        rt.block_on(repo.execute(&create_goal(goal, "bench"), Metadata::new()))
            .expect("create");
        let gave_up = Arc::new(AtomicU64::new(0));
        group.bench_with_input(BenchmarkId::new("16-tasks", name), &queue, |b, _| {
            b.to_async(&rt).iter(|| {
                let (repo, titles, gave_up) = (repo.clone(), titles.clone(), gave_up.clone());
                async move {
                    let failed = hot(&repo, goal, &titles).await;
                    gave_up.fetch_add(failed, Ordering::Relaxed);
                }
            });
        });
        println!(
            "hot-stream/postgres/16-tasks/{name}: {} commands gave up on conflicts",
            gave_up.load(Ordering::Relaxed)
        );
    }
    group.finish();
    rt.block_on(async {
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&pool)
            .await
            .expect("drop schema");
    });
    criterion.final_summary();
}
