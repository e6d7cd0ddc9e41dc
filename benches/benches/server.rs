//! MADA's server over HTTP on loopback (`scripts/services.sh up` for the real
//! stores), clients and server in one process on the same two cores:
//!
//! * `today` query throughput at 1 and 64 concurrent clients, with the read models
//!   in memory, in MongoDB, and in MongoDB behind the Redis cache (criterion), then
//!   p50 / p99 per request and queries per second over a fixed run (printed);
//! * read-your-writes: a mutation, then a query passing its token, until the answer
//!   shows the write; p50 / p99 per sync mode (subscription in memory and on
//!   PostgreSQL, inline, change-data-capture, Kafka), printed.
//!
//! Run with `cargo bench -p cqrs-benches --bench server`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Days;
use cqrs_benches::{month_start, percentile, pool_in};
use cqrs_core::{
    EventStore, EventSubscriber, MemoryEventStore, MemoryReadModelStore, Position, Projection,
    ReadModelStore,
};
use cqrs_mongo::MongoReadModelStore;
use cqrs_postgres::{PgEventStore, PgReadModelStore};
use cqrs_redis::{RedisCache, RedisReadModelStore};
use criterion::{BenchmarkId, Criterion, Throughput};
use mada::cdc::CdcFeeds;
use mada::domain::Schedule;
use mada::kafka::KafkaSync;
use mada::projections::{CategoriesProjection, PlanProjection};
use mada::server::auth::{Authenticator, hs256_token};
use mada::server::{Gauges, ServerConfig};
use mada::{Consistency, NewGoal, Planner, PlannerOptions, PlannerService, ReadStores};
use serde_json::{Value, json};

const SECRET: &[u8] = b"the benches' secret, thirty-two bytes or more";
const USERS: usize = 100;
const GOALS: usize = 5;
const CLIENTS: [usize; 2] = [1, 64];

fn options() -> PlannerOptions {
    PlannerOptions {
        consistency: Consistency::Eventual,
        ..PlannerOptions::default()
    }
}

fn day() -> chrono::NaiveDate {
    month_start() + Days::new(10)
}

/// Serves `planner` on a free loopback port; returns its GraphQL URL.
async fn serve<S, P, K>(planner: Arc<Planner<S, P, K>>) -> String
where
    S: EventStore + EventSubscriber + Clone + Send + Sync + 'static,
    P: ReadModelStore + Clone + Send + Sync + 'static,
    K: ReadModelStore + Clone + Send + Sync + 'static,
{
    let service: Arc<dyn PlannerService> = planner;
    let router = mada::server::router(
        service,
        Authenticator::hs256(SECRET),
        ServerConfig::default(),
        Gauges::default(),
    )
    .expect("router");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/graphql", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let never = std::future::pending();
        mada::server::serve(listener, router, never, Duration::from_secs(1)).await
    });
    url
}

/// Gives each of `USERS` users a category and `GOALS` goals due every day from the
/// month's start; returns one goal per user.
async fn load<S, P, K>(planner: &Planner<S, P, K>) -> Vec<uuid::Uuid>
where
    S: EventStore + EventSubscriber + Clone + 'static,
    P: ReadModelStore + Clone + 'static,
    K: ReadModelStore + Clone + 'static,
{
    let mut first = Vec::new();
    for u in 0..USERS {
        let user = format!("user{u}");
        let category = planner
            .create_category(&user, "Health", "#2e7d32")
            .await
            .expect("category");
        for g in 0..GOALS {
            let goal = NewGoal {
                title: format!("Goal {g}"),
                memo: None,
                category_id: category,
                schedule: Schedule::every_day_from(month_start()),
            };
            let id = planner.create_goal(&user, goal).await.expect("goal");
            if g == 0 {
                first.push(id);
            }
        }
    }
    planner.sync().await.expect("caught up");
    first
}

/// Clients of `url`, one token per user.
#[derive(Clone)]
struct Clients {
    http: reqwest::Client,
    url: String,
    tokens: Arc<Vec<String>>,
}

impl Clients {
    fn new(url: String) -> Self {
        let tokens = (0..USERS)
            .map(|u| {
                hs256_token(SECRET, &format!("user{u}"), Duration::from_secs(3600)).expect("token")
            })
            .collect();
        Self {
            http: mada::http_client::client(Duration::from_secs(30)).expect("client"),
            url,
            tokens: Arc::new(tokens),
        }
    }

    async fn post(&self, user: usize, query: &str, variables: Value) -> Value {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let reply = self
            .http
            .post(&self.url)
            .bearer_auth(&self.tokens[user % USERS])
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let value: Value =
            serde_json::from_slice(&reply.bytes().await.expect("body")).expect("json");
        assert!(value.get("errors").is_none(), "{value}");
        value
    }

    /// User `user`'s list for the bench's day.
    async fn today(&self, user: usize, after: Option<&str>) -> Value {
        const TODAY: &str = "query($d: Date!, $a: Token) { today(date: $d, after: $a) { done total items { goalId title done category { name colour } } } }";
        let reply = self
            .post(user, TODAY, json!({ "d": day().to_string(), "a": after }))
            .await;
        reply["data"]["today"].clone()
    }

    /// `total` queries spread over `clients` concurrent clients; per-request latencies.
    async fn run(&self, clients: usize, total: u64) -> Vec<Duration> {
        let per = total.div_ceil(clients as u64);
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let me = self.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(usize::try_from(per).unwrap_or(0));
                    for n in 0..per {
                        let user = (c * 31 + usize::try_from(n).unwrap_or(0)) % USERS;
                        let started = Instant::now();
                        let list = me.today(user, None).await;
                        latencies.push(started.elapsed());
                        assert_eq!(list["total"], GOALS);
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("client"));
        }
        all
    }
}

type MongoRedis = ReadStores<RedisCache<MongoReadModelStore>, RedisReadModelStore>;

/// The three read sides of the `today` bench, each served.
async fn read_sides(name: &str) -> Vec<(&'static str, Clients)> {
    let mongo_url = cqrs_testkit::mongodb_url();
    let mongo = MongoReadModelStore::connect(&mongo_url, name)
        .await
        .unwrap_or_else(|e| cqrs_testkit::server_unreachable("MongoDB", &mongo_url, e));
    let redis_url = cqrs_testkit::redis_url();
    let redis = RedisReadModelStore::connect(&redis_url)
        .await
        .unwrap_or_else(|e| cqrs_testkit::server_unreachable("Redis", &redis_url, e))
        .with_prefix(name);

    let memory = Arc::new(Planner::start(
        MemoryEventStore::new(),
        ReadStores::all(MemoryReadModelStore::new()),
        options(),
    ));
    load(&memory).await;
    let in_mongo = Arc::new(Planner::start(
        MemoryEventStore::new(),
        ReadStores::all(mongo.clone()),
        options(),
    ));
    load(&in_mongo).await;
    // The cached side has a database of its own: two planners (two logs) must not
    // share a read model and its checkpoint.
    let behind = MongoReadModelStore::connect(&mongo_url, &format!("{name}_c"))
        .await
        .expect("mongo");
    let cache = RedisCache::new(behind, redis.connection())
        .with_prefix(name)
        .only([PlanProjection::NAME]);
    let cached_read: MongoRedis = ReadStores {
        plans: cache,
        categories: redis.clone(),
    };
    let cached = Arc::new(Planner::start(
        MemoryEventStore::new(),
        cached_read,
        options(),
    ));
    load(&cached).await;
    vec![
        ("memory", Clients::new(serve(memory).await)),
        ("mongodb", Clients::new(serve(in_mongo).await)),
        ("redis-cached", Clients::new(serve(cached).await)),
    ]
}

fn today_throughput(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    sides: &[(&'static str, Clients)],
) {
    let mut group = c.benchmark_group("server/today");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    for (side, clients) in sides {
        for n in CLIENTS {
            group.bench_with_input(BenchmarkId::new(*side, n), &n, |b, &n| {
                b.to_async(rt).iter_custom(|iters| {
                    let clients = clients.clone();
                    async move {
                        let started = Instant::now();
                        clients.run(n, iters.max(n as u64)).await;
                        started.elapsed()
                    }
                });
            });
        }
    }
    group.finish();

    println!("\n`today` over HTTP, 4,000 queries per row");
    println!(
        "{:<14} {:>8} {:>10} {:>10} {:>12}",
        "read side", "clients", "p50", "p99", "queries/s"
    );
    for (side, clients) in sides {
        for n in CLIENTS {
            let started = Instant::now();
            let mut latencies = rt.block_on(clients.run(n, 4_000));
            let elapsed = started.elapsed();
            latencies.sort_unstable();
            #[allow(clippy::cast_precision_loss)]
            let rate = latencies.len() as f64 / elapsed.as_secs_f64();
            println!(
                "{side:<14} {n:>8} {:>10.3?} {:>10.3?} {rate:>12.0}",
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99)
            );
        }
    }
}

/// Toggles `goal` of user 0 and reads today's list with the mutation's token, 200
/// times; prints p50 / p99 of the whole round trip.
async fn read_your_writes(mode: &str, clients: &Clients, goal: uuid::Uuid) {
    const COMPLETE: &str =
        "mutation($g: ID!, $d: Date!) { w: completeGoal(id: $g, date: $d) { token } }";
    const UNCOMPLETE: &str =
        "mutation($g: ID!, $d: Date!) { w: uncompleteGoal(id: $g, date: $d) { token } }";
    let mut latencies = Vec::with_capacity(200);
    for n in 0..220 {
        let done = n % 2 == 0;
        let started = Instant::now();
        let written = clients
            .post(
                0,
                if done { COMPLETE } else { UNCOMPLETE },
                json!({ "g": goal.to_string(), "d": day().to_string() }),
            )
            .await;
        let token = written["data"]["w"]["token"]
            .as_str()
            .expect("token")
            .to_owned();
        let list = clients.today(0, Some(&token)).await;
        let elapsed = started.elapsed();
        let mine = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|item| item["goalId"] == goal.to_string())
            .expect("the goal");
        assert_eq!(mine["done"], done, "{mode}: the read shows the write");
        if n >= 20 {
            latencies.push(elapsed); // the first 20 warm up
        }
    }
    latencies.sort_unstable();
    println!(
        "{mode:<24} {:>10.2?} {:>10.2?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
}

/// What a sync mode leaves to remove (slots, topics).
type Cleanup = Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()>>;

/// Read-your-writes round trips per sync mode.
async fn sync_modes() {
    println!("\nmutation, then a query with its token, until the answer shows it (200 each)");
    println!("{:<24} {:>10} {:>10}", "sync", "p50", "p99");
    let memory = Arc::new(Planner::start(
        MemoryEventStore::new(),
        ReadStores::all(MemoryReadModelStore::new()),
        options(),
    ));
    let goal = load(&memory).await[0];
    read_your_writes(
        "memory, subscription",
        &Clients::new(serve(memory).await),
        goal,
    )
    .await;

    for mode in ["subscription", "inline", "cdc", "kafka"] {
        let schema = cqrs_testkit::unique_name("bench");
        let pool = pool_in(&schema, 8).await;
        cqrs_postgres::migrate(&pool).await.expect("migrate");
        let read = ReadStores::all(PgReadModelStore::new(pool.clone()));
        let events = PgEventStore::new(pool.clone());
        let prefix = format!("bench_{}", &schema[schema.len() - 12..]);
        let (planner, cleanup): (Planner<PgEventStore, PgReadModelStore>, Cleanup) = match mode {
            "subscription" => (
                Planner::start(events, read, options()),
                Box::new(|| Box::pin(async {})),
            ),
            "inline" => {
                let events = events
                    .with_inline_projection(PlanProjection)
                    .with_inline_projection(CategoriesProjection);
                (
                    Planner::start_inline(events, read, options()),
                    Box::new(|| Box::pin(async {})),
                )
            }
            "cdc" => {
                let feeds =
                    CdcFeeds::create(&pool, &prefix, &events, Position::START, Position::START)
                        .await
                        .expect("replication slots");
                let planner = Planner::start_with(events, &feeds, read, options());
                (
                    planner,
                    Box::new(move || {
                        Box::pin(async move { feeds.drop_slots().await.expect("drop slots") })
                    }),
                )
            }
            _ => {
                let kafka = KafkaSync::new(&cqrs_testkit::kafka_brokers(), &prefix);
                let relay = kafka.relay();
                let source = events.clone();
                let relay = tokio::spawn(async move { relay.run(&source).await });
                let planner = Planner::start_with(events, &kafka, read, options());
                (
                    planner,
                    Box::new(move || {
                        Box::pin(async move {
                            relay.abort();
                            let _ = kafka
                                .delete(&[PlanProjection::NAME, CategoriesProjection::NAME])
                                .await;
                        })
                    }),
                )
            }
        };
        let planner = Arc::new(planner);
        let goal = load(&planner).await[0];
        let label = format!("postgres, {mode}");
        read_your_writes(
            &label,
            &Clients::new(serve(Arc::clone(&planner)).await),
            goal,
        )
        .await;
        planner.halt().await;
        cleanup().await;
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&pool)
            .await
            .expect("drop schema");
    }
}

fn main() {
    let rt = cqrs_benches::runtime();
    let mut criterion = Criterion::default().configure_from_args();
    let name = cqrs_testkit::unique_name("bench");
    let sides = rt.block_on(read_sides(&name));
    today_throughput(&mut criterion, &rt, &sides);
    rt.block_on(sync_modes());
    rt.block_on(async {
        for database in [name.clone(), format!("{name}_c")] {
            let mongo = MongoReadModelStore::connect(&cqrs_testkit::mongodb_url(), &database)
                .await
                .expect("mongo");
            mongo.database().drop().await.expect("drop");
        }
        let redis = RedisReadModelStore::connect(&cqrs_testkit::redis_url())
            .await
            .expect("redis")
            .with_prefix(&name);
        redis.delete_all().await.expect("delete");
    });
    criterion.final_summary();
}
