//! Projection workers (`mada project`) SIGKILLed at random points while commands
//! keep coming: during start-up, mid-batch, while idle. Each kill is followed by a
//! new worker, which resumes from the read models' checkpoints. At the end every
//! read model equals a rebuild from the events, document for document, with nothing
//! extra, and (with the Redis cache) every entry the cache gives equals its store's.
//!
//! The test command kills 8 workers per read-model store; `scripts/soak.sh` (scale
//! 64) kills 50.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use cqrs_core::{Aliased, LogReader, Projection, ReadModelReader, ReadModelWriter};
use cqrs_mongo::MongoReadModelStore;
use cqrs_postgres::{PgEventStore, PgReadModelStore};
use cqrs_redis::{RedisCache, RedisReadModelStore};
use mada::domain::Schedule;
use mada::projections::{CategoriesProjection, PlanProjection};
use mada::{Consistency, NewGoal, Planner, PlannerOptions, ReadStores};
use tokio::sync::watch;

use crate::rebuilt::{assert_read_models_equal_a_rebuild, rebuild, schema_pool};
use crate::roles::{migrate, worker};

/// How many workers are killed per store: 8, or 50 in the soak
/// (`CQRS_RELIABILITY_SCALE` ≥ 7).
fn kills() -> usize {
    (8 * cqrs_testkit::linearizability::scale()).min(50)
}

/// A small pseudo-random sequence (fixed seed: the same kill points every run).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

/// Writes commands of three users through a planner on `schema` until `stop`:
/// categories created and renamed, goals created, completed, uncompleted and
/// rescheduled. Returns how many it wrote.
fn writer(schema: String, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let pool = schema_pool(&schema).await;
        let options = PlannerOptions {
            consistency: Consistency::Eventual,
            ..PlannerOptions::default()
        };
        let planner = Planner::start_reader(
            PgEventStore::new(pool.clone()),
            ReadStores::all(PgReadModelStore::new(pool)),
            options,
        );
        let day = |n: u64| NaiveDate::from_ymd_opt(2026, 11, 1).unwrap() + chrono::Days::new(n);
        let mut rng = Rng(7);
        let mut goals = Vec::new();
        let mut written = 0;
        let users = ["ann", "bob", "cy"];
        let mut categories = Vec::new();
        for user in users {
            categories.push(
                planner
                    .create_category(user, "Home", "#336699")
                    .await
                    .unwrap(),
            );
        }
        while !*stop.borrow() {
            let u = usize::try_from(rng.below(3)).unwrap();
            let (user, category) = (users[u], categories[u]);
            match rng.below(6) {
                0 | 1 => {
                    let goal = NewGoal {
                        title: format!("goal {written}"),
                        memo: None,
                        category_id: category,
                        schedule: Schedule::daily(day(0), day(20)),
                    };
                    goals.push((u, planner.create_goal(user, goal).await.unwrap()));
                }
                2 if !goals.is_empty() => {
                    let (_, goal) = goals[usize::try_from(rng.below(goals.len() as u64)).unwrap()];
                    let owner = goals.iter().find(|(_, g)| *g == goal).unwrap().0;
                    let _ = planner
                        .complete_goal(users[owner], goal, day(rng.below(20)))
                        .await;
                }
                3 if !goals.is_empty() => {
                    let (owner, goal) =
                        goals[usize::try_from(rng.below(goals.len() as u64)).unwrap()];
                    let _ = planner
                        .uncomplete_goal(users[owner], goal, day(rng.below(20)))
                        .await;
                }
                4 if !goals.is_empty() => {
                    let (owner, goal) =
                        goals[usize::try_from(rng.below(goals.len() as u64)).unwrap()];
                    let start = rng.below(5);
                    let schedule = Schedule::daily(day(start), day(start + 10));
                    let _ = planner.reschedule_goal(users[owner], goal, schedule).await;
                }
                _ => {
                    let name = format!("Home {written}");
                    planner
                        .rename_category(user, category, &name)
                        .await
                        .unwrap();
                }
            }
            written += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        written
    })
}

/// Starts and SIGKILLs `kills()` workers made by `start`, each after a random
/// 0–600 ms of work, while the writer writes; then stops the writer and starts a
/// last worker, returned with the number of commands written.
async fn kill_workers(
    schema: &str,
    start: impl Fn() -> crate::roles::Worker,
) -> (crate::roles::Worker, u64) {
    let (stop, stopped) = watch::channel(false);
    let writer = writer(schema.to_owned(), stopped);
    let mut rng = Rng(42);
    let kills = kills();
    for _ in 0..kills {
        let mut worker = start();
        tokio::time::sleep(Duration::from_millis(rng.below(600))).await;
        worker.child.kill().unwrap(); // SIGKILL
        worker.child.wait().unwrap();
    }
    stop.send_replace(true);
    let written = writer.await.unwrap();
    assert!(written > 0, "the writer wrote nothing");
    eprintln!("{kills} workers killed while {written} commands were written");
    (start(), written)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_at_random_points_leave_postgres_read_models_equal_to_a_rebuild() {
    let _heavy = crate::harness::HEAVY.lock().await;
    let schema = cqrs_testkit::unique_name("kills");
    migrate(&schema);
    let (_last, _) = kill_workers(&schema, || worker(&schema, &[])).await;
    let pool = schema_pool(&schema).await;
    assert_read_models_equal_a_rebuild(&pool).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}

/// Workers fed through Kafka (`--sync kafka`), a `mada relay` publishing the events
/// beside them: each killed worker's consumer group resumes from its committed
/// offsets and the read models' checkpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_fed_workers_killed_at_random_points_leave_read_models_equal_to_a_rebuild() {
    let _heavy = crate::harness::HEAVY.lock().await;
    let schema = cqrs_testkit::unique_name("kills");
    let brokers = cqrs_testkit::kafka_brokers();
    let _topics = cqrs_testkit::kafka::DeleteTopics::under(&brokers, [schema.clone()]);
    migrate(&schema);
    let store = crate::roles::on_postgres_at(&cqrs_testkit::postgres_url(), &schema);
    let relay: Vec<&str> = std::iter::once("relay")
        .chain(store.iter().map(String::as_str))
        .chain(["--kafka-brokers", &brokers, "--kafka-prefix", &schema])
        .collect();
    let mut relay = std::process::Command::new(env!("CARGO_BIN_EXE_mada"))
        .args(&relay)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let flags = [
        "--sync",
        "kafka",
        "--kafka-brokers",
        &brokers,
        "--kafka-prefix",
        &schema,
    ];
    let (_last, _) = kill_workers(&schema, || worker(&schema, &flags)).await;
    let pool = schema_pool(&schema).await;
    assert_read_models_equal_a_rebuild(&pool).await;
    relay.kill().unwrap();
    relay.wait().unwrap();
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}

/// Plans in MongoDB behind the Redis cache, category lists in Redis, as
/// `--read-store mongo-redis` keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_at_random_points_leave_mongo_and_redis_read_models_equal_to_a_rebuild() {
    let _heavy = crate::harness::HEAVY.lock().await;
    let name = cqrs_testkit::unique_name("kills");
    migrate(&name);
    let flags = [
        "--read-store",
        "mongo-redis",
        "--mongo-database",
        &name,
        "--redis-prefix",
        &name,
    ];
    let (_last, _) = kill_workers(&name, || worker(&name, &flags)).await;

    let pool = schema_pool(&name).await;
    let events = PgEventStore::new(pool.clone());
    let head = events.head().await.unwrap();
    let mongo = MongoReadModelStore::connect(&cqrs_testkit::mongodb_url(), &name)
        .await
        .unwrap();
    let redis = RedisReadModelStore::connect(&cqrs_testkit::redis_url())
        .await
        .unwrap()
        .with_prefix(&name);
    let cache = Aliased::new(RedisCache::new(mongo.clone(), redis.connection()).with_prefix(&name));
    let plans = Aliased::new(mongo.clone());
    let categories = Aliased::new(redis.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while plans.checkpoint(PlanProjection::NAME).await.unwrap() < head
        || categories
            .checkpoint(CategoriesProjection::NAME)
            .await
            .unwrap()
            < head
    {
        assert!(
            Instant::now() < deadline,
            "the read models never caught up with {head}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rebuilt = rebuild(&events, head).await;

    let expected = rebuilt.documents(PlanProjection::NAME);
    for (id, document) in &expected {
        let stored = plans
            .get(PlanProjection::NAME, id)
            .await
            .unwrap()
            .map(|d| d.value);
        assert_eq!(
            stored.as_ref(),
            Some(&document.value),
            "plan {id} equals its rebuild"
        );
        let cached = cache
            .get(PlanProjection::NAME, id)
            .await
            .unwrap()
            .map(|d| d.value);
        assert_eq!(
            cached.as_ref(),
            Some(&document.value),
            "the cache's plan {id} is not stale"
        );
    }
    let target = plans.resolve(PlanProjection::NAME).await.unwrap();
    let live = mongo
        .find(&target, &cqrs_mongo::Query::new())
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, d)| !d.value.is_null())
        .count();
    assert_eq!(live, expected.len(), "no extra plan in MongoDB");

    let expected: std::collections::HashMap<_, _> = rebuilt
        .documents(CategoriesProjection::NAME)
        .into_iter()
        .collect();
    let target = categories
        .resolve(CategoriesProjection::NAME)
        .await
        .unwrap();
    let live = redis.documents(&target).await.unwrap();
    assert_eq!(
        live.len(),
        expected.len(),
        "no extra category list in Redis"
    );
    for (id, document) in live {
        let rebuilt = expected.get(&id).map(|d| &d.value);
        assert_eq!(
            rebuilt,
            Some(&document.value),
            "category list {id} equals its rebuild"
        );
    }
    eprintln!("{head}: MongoDB, Redis and the cache equal a rebuild");

    mongo.database().drop().await.unwrap();
    redis.delete_all().await.unwrap();
    sqlx::query(&format!("DROP SCHEMA {name} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}
