//! PostgreSQL benches against the real server (`scripts/services.sh up postgres`),
//! each beside a peer or a ceiling measured in the same run:
//!
//! * commands/s through the repository at 1, 8 and 64 tasks, beside cqrs-es 0.5 +
//!   postgres-es 0.5 running the same MADA goal commands on the same database;
//! * p50 / p99 command latency at 1 and 8 tasks, both (printed after criterion);
//! * catch-up projection throughput into `PgReadModelStore` (batch 1,000), beside a
//!   raw batched upsert of the same document changes, batch by batch (no load, no
//!   guard, no checkpoint);
//! * bulk append beside `COPY` of the same rows into a bare table and into one with
//!   the event table's indexes;
//! * a command on a 10,000-event stream beside one on a 10-event stream.
//!
//! Run with `cargo bench -p cqrs-benches --bench postgres`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cqrs_benches::{Goals, catch_up, create_goal, planner_events, pool_in, toggle};
use cqrs_core::{
    AppendRequest, DocumentChange, ExpectedVersion, Metadata, NewEvent, RawEvent, Repository,
    SnapshotPolicy,
};
use cqrs_postgres::{PgEventStore, PgReadModelStore};
use criterion::{BenchmarkId, Criterion, Throughput};
use mada::domain::Goal;
use postgres_es::PostgresCqrs;
use uuid::Uuid;

const TASKS: [usize; 3] = [1, 8, 64];

#[path = "shared/commands.rs"]
mod commands;
#[path = "shared/peer.rs"]
mod peer;
use peer::PeerGoal;

// --- set-up -------------------------------------------------------------------------

/// postgres-es's tables (from its `db/init.sql`).
const PEER_SCHEMA: &str = "
CREATE TABLE events (aggregate_type text NOT NULL, aggregate_id text NOT NULL,
  sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL, event_version text NOT NULL,
  payload json NOT NULL, metadata json NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id, sequence));
CREATE TABLE snapshots (aggregate_type text NOT NULL, aggregate_id text NOT NULL,
  last_sequence bigint CHECK (last_sequence >= 0) NOT NULL, current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
  payload json NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id, last_sequence));";

struct Systems {
    ours: Repository<Goal, PgEventStore>,
    quiet: Repository<Goal, PgEventStore>,
    grouped: Repository<Goal, PgEventStore>,
    peer: Arc<PostgresCqrs<PeerGoal>>,
    ours_goals: Goals,
    quiet_goals: Goals,
    grouped_goals: Goals,
    peer_goals: Goals,
}

async fn systems() -> Systems {
    let connections = 80;
    let ours_pool = pool_in(&cqrs_testkit::unique_name("bench"), connections).await;
    cqrs_postgres::migrate(&ours_pool).await.expect("migrate");
    let ours = Repository::<Goal, _>::new(PgEventStore::new(ours_pool))
        .with_snapshots(SnapshotPolicy::Every(50))
        .with_cache(10_000);
    let peer_pool = pool_in(&cqrs_testkit::unique_name("peer"), connections).await;
    sqlx::raw_sql(PEER_SCHEMA)
        .execute(&peer_pool)
        .await
        .expect("peer schema");
    let peer = Arc::new(postgres_es::postgres_snapshot_cqrs::<PeerGoal>(
        peer_pool,
        vec![],
        50,
        (),
    ));

    let quiet = Repository::<Goal, _>::new(ours.store().clone().with_notifications(false))
        .with_snapshots(SnapshotPolicy::Every(50))
        .with_cache(10_000);
    let grouped = Repository::<Goal, _>::new(ours.store().clone().with_group_commit(0))
        .with_snapshots(SnapshotPolicy::Every(50))
        .with_cache(10_000);
    let max_tasks = TASKS[TASKS.len() - 1];
    let (ours_goals, quiet_goals, peer_goals) = (
        Goals::new(max_tasks),
        Goals::new(max_tasks),
        Goals::new(max_tasks),
    );
    for goal in ours_goals.ids.iter().flatten() {
        ours.execute(&create_goal(*goal, "bench"), Metadata::new())
            .await
            .expect("create");
    }
    for goal in quiet_goals.ids.iter().flatten() {
        quiet
            .execute(&create_goal(*goal, "bench"), Metadata::new())
            .await
            .expect("create");
    }
    let grouped_goals = Goals::new(max_tasks);
    for goal in grouped_goals.ids.iter().flatten() {
        grouped
            .execute(&create_goal(*goal, "bench"), Metadata::new())
            .await
            .expect("create");
    }
    for goal in peer_goals.ids.iter().flatten() {
        peer.execute(&goal.to_string(), create_goal(*goal, "bench"))
            .await
            .expect("peer create");
    }
    Systems {
        ours,
        quiet,
        grouped,
        peer,
        ours_goals,
        quiet_goals,
        grouped_goals,
        peer_goals,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Who {
    Ours,
    Quiet,
    Grouped,
    Peer,
}

const SYSTEMS: [(&str, Who); 4] = [
    ("cqrs-postgres", Who::Ours),
    ("cqrs-postgres-no-notify", Who::Quiet),
    ("cqrs-postgres-no-group-commit", Who::Grouped),
    ("cqrs-es+postgres-es", Who::Peer),
];

impl commands::Systems for Systems {
    type Who = Who;

    async fn run(&self, who: Who, tasks: usize, per_task: usize) -> Vec<Duration> {
        let (goals, ours) = match who {
            Who::Ours => (&self.ours_goals, self.ours.clone()),
            Who::Quiet => (&self.quiet_goals, self.quiet.clone()),
            Who::Grouped => (&self.grouped_goals, self.grouped.clone()),
            Who::Peer => {
                let peer = self.peer.clone();
                return commands::toggling(
                    &self.peer_goals,
                    tasks,
                    per_task,
                    move |goal, command| {
                        let peer = peer.clone();
                        async move {
                            peer.execute(&goal.to_string(), command)
                                .await
                                .expect("peer");
                        }
                    },
                )
                .await;
            }
        };
        commands::toggling(goals, tasks, per_task, move |_, command| {
            let ours = ours.clone();
            async move {
                ours.execute(&command, Metadata::new()).await.expect("ours");
            }
        })
        .await
    }
}

// --- projection throughput ------------------------------------------------------------

fn projection(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let (_memory, events) = rt.block_on(planner_events(100));
    let pool = rt.block_on(pool_in(&cqrs_testkit::unique_name("proj"), 8));
    rt.block_on(cqrs_postgres::migrate(&pool)).expect("migrate");
    let store = PgReadModelStore::new(pool.clone());
    // The document changes the projection makes, batch by batch, for the ceiling.
    let batches = rt.block_on(cqrs_benches::changes_per_batch(&events, 1000));
    let mut group = c.benchmark_group("projection/postgres");
    group.throughput(Throughput::Elements(events.len() as u64));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let mut round = 0u64;
    group.bench_function("plan/batch-1000", |b| {
        b.to_async(rt).iter(|| {
            round += 1;
            let name = format!("plan_{round}");
            let store = store.clone();
            let source = _memory.clone();
            let events = &events;
            catch_up(store, source, events, 1000, name)
        });
    });
    group.bench_function("ceiling/raw-batched-upsert", |b| {
        b.to_async(rt).iter(|| {
            round += 1;
            let name = format!("raw_{round}");
            let pool = pool.clone();
            let batches = &batches;
            async move {
                for changes in batches {
                    let mut ids = Vec::with_capacity(changes.len());
                    let mut values = Vec::with_capacity(changes.len());
                    let mut positions = Vec::with_capacity(changes.len());
                    for change in changes {
                        let DocumentChange::Put { id, value, position } = change else {
                            unreachable!("the plan projection deletes nothing");
                        };
                        ids.push(id.as_str());
                        values.push(value);
                        positions.push(position.0 as i64);
                    }
                    sqlx::query(
                        "INSERT INTO cqrs_documents (projection, id, value, position)
                         SELECT $1, t.id, t.value, t.position FROM unnest($2::text[], $3::jsonb[], $4::bigint[]) AS t(id, value, position)
                         ON CONFLICT (projection, id) DO UPDATE SET value = EXCLUDED.value, position = EXCLUDED.position",
                    )
                    .bind(&name)
                    .bind(&ids)
                    .bind(&values)
                    .bind(&positions)
                    .execute(&pool)
                    .await
                    .expect("upsert");
                }
                sqlx::query("DELETE FROM cqrs_documents WHERE projection = $1").bind(&name).execute(&pool).await.expect("delete");
            }
        });
    });
    group.finish();
}

// --- bulk append ------------------------------------------------------------------------

fn bulk(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    const STREAMS: usize = 100;
    const PER_STREAM: usize = 100;
    let pool = rt.block_on(pool_in(&cqrs_testkit::unique_name("bulk"), 4));
    rt.block_on(cqrs_postgres::migrate(&pool)).expect("migrate");
    // Two ceilings: `COPY` into a bare copy of the table (no index, no constraint),
    // and into one with the event table's indexes and constraints (what every row
    // of a checked append must maintain).
    rt.block_on(sqlx::query("CREATE TABLE copy_target (LIKE cqrs_events)").execute(&pool))
        .expect("copy table");
    rt.block_on(
        sqlx::query("CREATE TABLE copy_indexed (LIKE cqrs_events INCLUDING ALL)").execute(&pool),
    )
    .expect("indexed copy table");
    let store = PgEventStore::new(pool.clone());
    let event = |n: usize| NewEvent {
        event_id: Uuid::now_v7(),
        event: RawEvent {
            event_type: "Imported".into(),
            schema_version: 1,
            payload: serde_json::json!({ "n": n, "note": "imported" }),
        },
        metadata: Metadata::new(),
    };
    let mut group = c.benchmark_group("bulk/postgres");
    group.throughput(Throughput::Elements((STREAMS * PER_STREAM) as u64));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("append_many", |b| {
        b.to_async(rt).iter(|| {
            let requests: Vec<AppendRequest> = (0..STREAMS)
                .map(|_| {
                    AppendRequest::new(
                        format!("import-{}", Uuid::now_v7()),
                        ExpectedVersion::NoStream,
                        (0..PER_STREAM).map(event).collect(),
                    )
                })
                .collect();
            let store = store.clone();
            async move { store.append_many(requests).await.expect("append_many") }
        });
    });
    for (name, table) in [
        ("ceiling/copy", "copy_target"),
        ("ceiling/copy-indexed", "copy_indexed"),
    ] {
        group.bench_function(name, |b| {
        b.to_async(rt).iter(|| {
            let mut csv = String::with_capacity(STREAMS * PER_STREAM * 160);
            let mut position = 1u64;
            for _ in 0..STREAMS {
                let stream = format!("import-{}", Uuid::now_v7());
                for n in 0..PER_STREAM {
                    let e = event(n);
                    let payload = e.event.payload.to_string().replace('"', "\"\"");
                    csv.push_str(&format!(
                        "{position},{stream},{},{},Imported,1,\"{payload}\",\"{{}}\",2026-11-25 00:00:00+00\n",
                        n + 1,
                        e.event_id
                    ));
                    position += 1;
                }
            }
            let pool = pool.clone();
            async move {
                let mut conn = pool.acquire().await.expect("conn");
                sqlx::query(&format!("TRUNCATE {table}")).execute(&mut *conn).await.expect("truncate");
                let mut copy = conn
                    .copy_in_raw(&format!("COPY {table} (position, stream_id, version, event_id, event_type, schema_version, payload, metadata, recorded_at) FROM STDIN (FORMAT csv)"))
                    .await
                    .expect("copy");
                copy.send(csv.as_bytes()).await.expect("send");
                copy.finish().await.expect("finish")
            }
        });
    });
    }
    group.finish();
}

// --- stream length -----------------------------------------------------------------------

/// One command on a goal with 10 events beside one on a goal with 10,000: with
/// snapshots every 50 events (and no cache), both load a snapshot and fewer than 50
/// events.
fn stream_length(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let pool = rt.block_on(pool_in(&cqrs_testkit::unique_name("length"), 4));
    rt.block_on(cqrs_postgres::migrate(&pool)).expect("migrate");
    let repo = Repository::<Goal, _>::new(PgEventStore::new(pool))
        .with_snapshots(SnapshotPolicy::Every(50));
    let mut group = c.benchmark_group("stream-length/postgres");
    group.throughput(Throughput::Elements(1));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for events in [10usize, 10_000] {
        let goal = Uuid::now_v7();
        let done = Arc::new(AtomicBool::new(false));
        rt.block_on(async {
            repo.execute(&create_goal(goal, "bench"), Metadata::new())
                .await
                .expect("create");
            for _ in 1..events {
                let complete = !done.fetch_xor(true, Ordering::Relaxed);
                repo.execute(&toggle(goal, "bench", complete), Metadata::new())
                    .await
                    .expect("toggle");
            }
        });
        group.bench_with_input(BenchmarkId::new("command", events), &events, |b, _| {
            b.to_async(rt).iter(|| {
                let complete = !done.fetch_xor(true, Ordering::Relaxed);
                let repo = repo.clone();
                async move {
                    repo.execute(&toggle(goal, "bench", complete), Metadata::new())
                        .await
                        .expect("toggle")
                }
            });
        });
    }
    group.finish();
}

fn main() {
    let rt = cqrs_benches::runtime();
    let mut criterion = Criterion::default().configure_from_args();
    let systems = rt.block_on(systems());
    commands::commands(
        &mut criterion,
        &rt,
        "commands/postgres",
        &systems,
        &SYSTEMS,
        &TASKS,
    );
    projection(&mut criterion, &rt);
    bulk(&mut criterion, &rt);
    stream_length(&mut criterion, &rt);
    criterion.final_summary();
    commands::latencies(&rt, &systems, &SYSTEMS, 2000);
}
