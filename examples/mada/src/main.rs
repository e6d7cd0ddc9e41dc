//! The `mada` binary: runs the planner's demo scenario and prints the read models.

use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};
use cqrs_core::Projection;
use cqrs_core::{MemoryEventStore, MemoryReadModelStore};
use cqrs_mongo::MongoReadModelStore;
use cqrs_postgres::{PgEventStore, PgReadModelStore};
use cqrs_redis::{RedisCache, RedisReadModelStore};
use mada::kafka::KafkaSync;
use mada::projections::{CalendarProjection, CategoriesProjection, TodayProjection};
use mada::{Planner, PlannerOptions, ReadStores, render, scenario};
use sqlx::postgres::PgConnectOptions;
use tracing_subscriber::EnvFilter;

/// MADA, a personal planner on CQRS and event sourcing.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Where events and read models are kept.
    #[arg(long, value_enum, env = "MADA_STORE", default_value_t = StoreKind::Memory, global = true)]
    store: StoreKind,

    /// The user the demo plans for.
    #[arg(long, env = "MADA_USER", default_value = "alice", global = true)]
    user: String,

    /// The day the demo takes as today (YYYY-MM-DD); the real date by default.
    #[arg(long, env = "MADA_TODAY", global = true)]
    today: Option<NaiveDate>,

    /// PostgreSQL URL, for `--store postgres`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://cqrs:cqrs@127.0.0.1:5432/cqrs",
        global = true
    )]
    database_url: String,

    /// PostgreSQL schema the demo uses, for `--store postgres`. The demo drops it
    /// and creates it again, so every run starts empty.
    #[arg(
        long,
        env = "MADA_PG_SCHEMA",
        default_value = "mada_demo",
        global = true
    )]
    pg_schema: String,

    /// Where the read models are kept: with the events (`same`), or today's lists and
    /// calendars in MongoDB with today's lists cached in Redis, and the category lists
    /// in Redis (`mongo-redis`).
    #[arg(long, value_enum, env = "MADA_READ_STORE", default_value_t = ReadStoreKind::Same, global = true)]
    read_store: ReadStoreKind,

    /// MongoDB URL, for `--read-store mongo-redis`.
    #[arg(
        long,
        env = "MONGODB_URL",
        default_value = "mongodb://127.0.0.1:27017/",
        global = true
    )]
    mongodb_url: String,

    /// MongoDB database of the read models, for `--read-store mongo-redis`. The demo
    /// drops it first, so every run starts empty.
    #[arg(
        long,
        env = "MADA_MONGO_DATABASE",
        default_value = "mada_demo",
        global = true
    )]
    mongo_database: String,

    /// Redis URL, for `--read-store mongo-redis`.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379/",
        global = true
    )]
    redis_url: String,

    /// Prefix of the demo's Redis keys, for `--read-store mongo-redis`. The demo
    /// deletes the keys under it first.
    #[arg(
        long,
        env = "MADA_REDIS_PREFIX",
        default_value = "mada_demo",
        global = true
    )]
    redis_prefix: String,

    /// How long today's lists stay in the Redis cache, in seconds.
    #[arg(long, env = "MADA_CACHE_TTL", default_value_t = 300, global = true)]
    cache_ttl: u64,

    /// How the read models follow the event store: its own subscription, or through
    /// Kafka (a relay publishes the events, each projection consumes them).
    #[arg(long, value_enum, env = "MADA_SYNC", default_value_t = SyncKind::Subscription, global = true)]
    sync: SyncKind,

    /// Kafka bootstrap servers, for `--sync kafka`.
    #[arg(
        long,
        env = "KAFKA_BROKERS",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    kafka_brokers: String,

    /// Prefix of the demo's Kafka topics and consumer groups, for `--sync kafka`. Each
    /// run adds a random suffix and deletes its topics and groups at the end.
    #[arg(
        long,
        env = "MADA_KAFKA_PREFIX",
        default_value = "mada_demo",
        global = true
    )]
    kafka_prefix: String,

    /// Snapshot aggregates every this many events (0: never).
    #[arg(long, env = "MADA_SNAPSHOT_EVERY", default_value_t = 50, global = true)]
    snapshot_every: u64,

    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the scripted scenario and print today's list and the month (the default).
    Demo,
}

/// The backends the binary can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StoreKind {
    /// In memory, in this process: no server needed; everything is gone at exit.
    Memory,
    /// Events and read models in PostgreSQL (`--database-url`, `--pg-schema`).
    Postgres,
}

/// How the read models follow the event store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SyncKind {
    /// Each projection subscribes to the event store.
    Subscription,
    /// A relay publishes the events to Kafka (`--kafka-brokers`), keyed by user; each
    /// projection consumes them in its own consumer group.
    Kafka,
}

/// Where the read models can be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReadStoreKind {
    /// With the events (`--store`).
    Same,
    /// Documents in MongoDB, today's lists cached in Redis, category lists in Redis.
    MongoRedis,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let today = cli
        .today
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let options = PlannerOptions {
        snapshot_every: cli.snapshot_every,
        ..PlannerOptions::default()
    };
    let result = match cli.command.as_ref().unwrap_or(&Cmd::Demo) {
        Cmd::Demo => run_demo(&cli, options, today).await,
    };
    match result {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("mada: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the demo on the stores the flags name.
async fn run_demo(cli: &Cli, options: PlannerOptions, today: NaiveDate) -> Result<String, String> {
    match (cli.store, cli.read_store) {
        (StoreKind::Memory, ReadStoreKind::Same) => {
            let read = ReadStores::all(MemoryReadModelStore::new());
            run(
                cli,
                MemoryEventStore::new(),
                read,
                options,
                today,
                "the in-memory store",
            )
            .await
        }
        (StoreKind::Memory, ReadStoreKind::MongoRedis) => {
            let read = mongo_redis(cli).await.map_err(|e| e.to_string())?;
            let events = MemoryEventStore::new();
            let label = "the in-memory event store, MongoDB + Redis read stores";
            run(cli, events, read, options, today, label).await
        }
        (StoreKind::Postgres, ReadStoreKind::Same) => {
            let (events, read) = postgres(&cli.database_url, &cli.pg_schema)
                .await
                .map_err(|e| e.to_string())?;
            run(
                cli,
                events,
                ReadStores::all(read),
                options,
                today,
                "the PostgreSQL store",
            )
            .await
        }
        (StoreKind::Postgres, ReadStoreKind::MongoRedis) => {
            let (events, _) = postgres(&cli.database_url, &cli.pg_schema)
                .await
                .map_err(|e| e.to_string())?;
            let read = mongo_redis(cli).await.map_err(|e| e.to_string())?;
            let label = "the PostgreSQL event store, MongoDB + Redis read stores";
            run(cli, events, read, options, today, label).await
        }
    }
}

/// Connects to MongoDB and Redis, empties the demo's database and keys, and builds
/// the split read side.
/// MADA's read side on two servers, each read model where it serves best: today's
/// lists and the month calendars, documents shaped for a screen, in MongoDB, today's
/// lists also cached in Redis (the screen opened most, kept current by the
/// projection's own commits); the category lists, small and hot, in Redis.
type MongoRedis =
    ReadStores<RedisCache<MongoReadModelStore>, MongoReadModelStore, RedisReadModelStore>;

async fn mongo_redis(cli: &Cli) -> Result<MongoRedis, Box<dyn std::error::Error>> {
    let mongo = MongoReadModelStore::connect(&cli.mongodb_url, &cli.mongo_database)
        .await
        .map_err(|e| format!("{e} {START_HINT}"))?;
    mongo.database().drop().await?;
    let redis = RedisReadModelStore::connect(&cli.redis_url)
        .await
        .map_err(|e| format!("{e} {START_HINT}"))?
        .with_prefix(&cli.redis_prefix);
    redis.delete_all().await?;
    let cache = RedisCache::new(mongo.clone(), redis.connection())
        .with_prefix(&cli.redis_prefix)
        .with_ttl(Duration::from_secs(cli.cache_ttl.max(1)))
        .only([TodayProjection::NAME]);
    Ok(ReadStores {
        today: cache,
        calendar: mongo,
        categories: redis,
    })
}

/// The hint for a server that cannot be reached: this binary runs from the
/// repository, whose script starts the servers.
const START_HINT: &str = "(in this repository, `scripts/services.sh up` starts the servers)";

/// Starts the planner on `events` and `read`, its projections fed per `--sync`, and
/// runs the demo.
async fn run<S, T, C, K>(
    cli: &Cli,
    events: S,
    read: ReadStores<T, C, K>,
    options: PlannerOptions,
    today: NaiveDate,
    label: &str,
) -> Result<String, String>
where
    S: cqrs_core::EventStore + cqrs_core::EventSubscriber + Clone + 'static,
    T: cqrs_core::ReadModelStore + Clone + 'static,
    C: cqrs_core::ReadModelStore + Clone + 'static,
    K: cqrs_core::ReadModelStore + Clone + 'static,
{
    let user = cli.user.as_str();
    if cli.sync == SyncKind::Subscription {
        return demo(Planner::start(events, read, options), user, today, label).await;
    }
    cqrs_kafka::probe(&cli.kafka_brokers, Duration::from_secs(5))
        .await
        .map_err(|e| format!("{e} {START_HINT}"))?;
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let kafka = KafkaSync::new(
        &cli.kafka_brokers,
        &format!("{}_{}", cli.kafka_prefix, &suffix[suffix.len() - 12..]),
    );
    let relay = kafka.relay();
    let source = events.clone();
    let mut relay = tokio::spawn(async move { relay.run(&source).await });
    let planner = Planner::start_with(events, |name| kafka.subscriber(name), read, options);
    let label = format!("{label}, read models synced through Kafka");
    let result = tokio::select! {
        result = demo(planner, user, today, &label) => result,
        ended = &mut relay => Err(match ended {
            Ok(Err(error)) => format!("the Kafka relay stopped: {error} {START_HINT}"),
            Ok(Ok(())) => "the Kafka relay stopped".to_owned(),
            Err(error) => format!("the Kafka relay failed: {error}"),
        }),
    };
    relay.abort();
    let projections = [
        TodayProjection::NAME,
        CalendarProjection::NAME,
        CategoriesProjection::NAME,
    ];
    if let Err(error) = kafka.delete(&projections).await {
        tracing::warn!(%error, prefix = kafka.prefix(), "could not delete the demo's topics");
    }
    result
}

async fn demo<S, T, C, K>(
    planner: Planner<S, T, C, K>,
    user: &str,
    today: NaiveDate,
    store: &str,
) -> Result<String, String>
where
    S: cqrs_core::EventStore + cqrs_core::EventSubscriber + Clone + 'static,
    T: cqrs_core::ReadModelStore + Clone + 'static,
    C: cqrs_core::ReadModelStore + Clone + 'static,
    K: cqrs_core::ReadModelStore + Clone + 'static,
{
    let result = scenario::run(&planner, user, today).await;
    let shutdown = planner.shutdown().await;
    let report = result.map_err(|e| e.to_string())?;
    shutdown.map_err(|e| e.to_string())?;
    Ok(render::report(&report, store))
}

/// Connects to PostgreSQL, recreates `schema` empty and migrates it.
async fn postgres(
    url: &str,
    schema: &str,
) -> Result<(PgEventStore, PgReadModelStore), Box<dyn std::error::Error>> {
    if schema.is_empty()
        || !schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(format!("--pg-schema `{schema}`: use letters, digits and underscores").into());
    }
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| format!("--database-url {}: {e}", cqrs_core::redact_url(url)))?
        .options([("search_path", schema)]);
    let pool = cqrs_postgres::connect_pool(options, 8)
        .await
        .map_err(|e| format!("{e} {START_HINT}"))?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&pool)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await?;
    cqrs_postgres::migrate(&pool).await?;
    Ok((PgEventStore::new(pool.clone()), PgReadModelStore::new(pool)))
}
