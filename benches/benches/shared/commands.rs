//! The command-throughput harness the postgres and mysql benches share: tasks
//! toggling MADA goals day after day, each command timed; criterion's
//! commands/s per system and task count, then p50 / p99 per system.
//! Included by those benches (`#[path]`), not a target.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cqrs_benches::{GOALS_PER_TASK, Goals, percentile, toggle};
use criterion::{BenchmarkId, Criterion, Throughput};
use mada::domain::GoalCommand;
use uuid::Uuid;

/// The systems of one bench, each run by `who`.
pub(crate) trait Systems: Sync {
    /// Which system.
    type Who: Copy + Send + Sync + 'static;

    /// Runs `per_task` commands on each of `tasks` tasks on `who`; every latency.
    fn run(
        &self,
        who: Self::Who,
        tasks: usize,
        per_task: usize,
    ) -> impl Future<Output = Vec<Duration>>;
}

/// Runs `per_task` commands on each of `tasks` tasks, task `t` toggling its goals of
/// `goals` through `execute`; returns every latency.
pub(crate) async fn toggling<F, Fut>(
    goals: &Goals,
    tasks: usize,
    per_task: usize,
    execute: F,
) -> Vec<Duration>
where
    F: Fn(Uuid, GoalCommand) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let done = goals.done.clone();
            let ids = goals.ids[t].clone();
            let execute = execute.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for i in 0..per_task {
                    let g = i % GOALS_PER_TASK;
                    let complete = !done[t][g].fetch_xor(true, Ordering::Relaxed);
                    let command = toggle(ids[g], "bench", complete);
                    let started = Instant::now();
                    execute(ids[g], command).await;
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.expect("task"));
    }
    all
}

/// Criterion's commands/s for every system at every task count, in `group`.
pub(crate) fn commands<S: Systems>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    group: &str,
    systems: &S,
    named: &[(&str, S::Who)],
    task_counts: &[usize],
) {
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(1));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for &tasks in task_counts {
        for &(name, who) in named {
            group.bench_with_input(BenchmarkId::new(name, tasks), &tasks, |b, &tasks| {
                b.to_async(rt).iter_custom(|iters| async move {
                    let per_task = (iters as usize).div_ceil(tasks);
                    let started = Instant::now();
                    systems.run(who, tasks, per_task).await;
                    // Report the time per command as if exactly `iters` ran.
                    started
                        .elapsed()
                        .mul_f64(iters as f64 / (per_task * tasks) as f64)
                });
            });
        }
    }
    group.finish();
}

/// Prints p50 / p99 of `per_line` commands per system at 1 and 8 tasks.
pub(crate) fn latencies<S: Systems>(
    rt: &tokio::runtime::Runtime,
    systems: &S,
    named: &[(&str, S::Who)],
    per_line: usize,
) {
    println!("\ncommand latency ({per_line} commands per line; same server, same goals)");
    println!(
        "{:<28} {:>5} {:>10} {:>10}",
        "system", "tasks", "p50", "p99"
    );
    for tasks in [1usize, 8] {
        for &(name, who) in named {
            let mut all = rt.block_on(systems.run(who, tasks, per_line / tasks));
            all.sort_unstable();
            println!(
                "{name:<28} {tasks:>5} {:>10.3?} {:>10.3?}",
                percentile(&all, 0.50),
                percentile(&all, 0.99)
            );
        }
    }
}
