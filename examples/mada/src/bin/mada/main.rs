//! The `mada` binary: serves the planner over GraphQL (`serve`, the default), runs
//! the scripted scenario and prints the read models (`demo`), runs one of its roles
//! (`relay`), prints a token for demos (`token`), or lists what its projections set
//! aside (`dead-letters`).

mod dead_letters;
mod demo;
mod health;
mod lease;
mod notify;
mod project;
mod rebuild;
mod relay;
mod serve;
mod stores;
mod sync;
mod token;

use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};
use mada::PlannerOptions;
use tracing_subscriber::EnvFilter;

/// MADA, a personal planner on CQRS and event sourcing.
#[derive(Debug, Parser)]
#[command(version, about)]
pub(crate) struct Cli {
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

    /// MySQL / MariaDB URL, for `--store mysql` (a user allowed to create the
    /// database `--mysql-database`).
    #[arg(
        long,
        env = "MYSQL_URL",
        default_value = "mysql://cqrs:cqrs@127.0.0.1:3306/cqrs",
        global = true
    )]
    mysql_url: String,

    /// MySQL database the events and read models go in, for `--store mysql`. The
    /// demo drops it and creates it again, so every run starts empty.
    #[arg(
        long,
        env = "MADA_MYSQL_DATABASE",
        default_value = "mada_demo",
        global = true
    )]
    mysql_database: String,

    /// Where the read models are kept: with the events (`same`), or the users' plans
    /// in MongoDB, cached in Redis, and the category lists in Redis (`mongo-redis`).
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

    /// How long plans stay in the Redis cache, in seconds.
    #[arg(long, env = "MADA_CACHE_TTL", default_value_t = 300, global = true)]
    cache_ttl: u64,

    /// How the read models follow the event store: its own subscription, inline in
    /// the append's transaction, change-data-capture from PostgreSQL's write-ahead
    /// log, or through Kafka (a relay publishes the events, each projection consumes
    /// them).
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

    /// Prefix of the Kafka topics and consumer groups, for `--sync kafka` and
    /// `relay`. The demo adds a random suffix and deletes its topics and groups at
    /// the end; `relay` uses it as it is.
    #[arg(
        long,
        env = "MADA_KAFKA_PREFIX",
        default_value = "mada_demo",
        global = true
    )]
    kafka_prefix: String,

    /// The most events the relay publishes in one Kafka transaction.
    #[arg(long, env = "MADA_RELAY_BATCH", default_value_t = 500, global = true)]
    relay_batch: usize,

    /// How long the relay's lease lasts without renewal, in seconds: a standby relay
    /// takes over this long after the active one dies.
    #[arg(
        long,
        env = "MADA_RELAY_LEASE_TTL",
        default_value_t = 10,
        global = true
    )]
    relay_lease_ttl: u64,

    /// Snapshot aggregates every this many events (0: never).
    #[arg(long, env = "MADA_SNAPSHOT_EVERY", default_value_t = 50, global = true)]
    snapshot_every: u64,

    /// The address `serve` listens on (port 0: any free port).
    #[arg(
        long,
        env = "MADA_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    listen: std::net::SocketAddr,

    /// The HS256 secret tokens are signed with (`serve` checks them, `token` signs
    /// one). Without it, and without a public key or JWKS URL, `serve` on the
    /// in-memory store makes up a random one and prints a token for the demo user.
    #[arg(long, env = "MADA_JWT_SECRET", hide_env_values = true, global = true)]
    jwt_secret: Option<String>,

    /// A PEM file with the RSA public key RS256 tokens are signed with.
    #[arg(long, env = "MADA_JWT_PUBLIC_KEY", global = true)]
    jwt_public_key: Option<std::path::PathBuf>,

    /// The JWKS URL of an OpenID Connect issuer whose RS256 tokens are accepted (for
    /// Firebase Authentication: https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com).
    #[arg(long, env = "MADA_JWKS_URL", global = true)]
    jwks_url: Option<String>,

    /// The issuer tokens must name (`iss`); for Firebase,
    /// `https://securetoken.google.com/PROJECT`.
    #[arg(long, env = "MADA_JWT_ISSUER", global = true)]
    jwt_issuer: Option<String>,

    /// The audience tokens must name (`aud`); for Firebase, the project id.
    #[arg(long, env = "MADA_JWT_AUDIENCE", global = true)]
    jwt_audience: Option<String>,

    /// How long a token from `token` (or the demo's) is valid, in seconds.
    #[arg(long, env = "MADA_TOKEN_TTL", default_value_t = 86_400, global = true)]
    token_ttl: u64,

    /// Whether `serve` loads the demo scenario's data for `--user` first; by default
    /// only on the in-memory store.
    #[arg(long, env = "MADA_DEMO_DATA", global = true)]
    demo_data: Option<bool>,

    /// How long a query given a consistency token waits for the read models, in
    /// milliseconds.
    #[arg(
        long,
        env = "MADA_READ_WAIT_MS",
        default_value_t = 5_000,
        global = true
    )]
    read_wait_ms: u64,

    /// How long a request may take, in milliseconds.
    #[arg(
        long,
        env = "MADA_REQUEST_TIMEOUT_MS",
        default_value_t = 10_000,
        global = true
    )]
    request_timeout_ms: u64,

    /// The largest request body, in bytes.
    #[arg(long, env = "MADA_BODY_LIMIT", default_value_t = 65_536, global = true)]
    body_limit: usize,

    /// The most live WebSocket connections per user.
    #[arg(
        long,
        env = "MADA_SOCKETS_PER_USER",
        default_value_t = 8,
        global = true
    )]
    sockets_per_user: usize,

    /// The service-account key file (JSON) `notify` sends to FCM as.
    #[arg(long, env = "GOOGLE_APPLICATION_CREDENTIALS", global = true)]
    fcm_credentials: Option<std::path::PathBuf>,

    /// The service-account key itself (JSON), instead of a file.
    #[arg(
        long,
        env = "MADA_FCM_CREDENTIALS_JSON",
        hide_env_values = true,
        global = true
    )]
    fcm_credentials_json: Option<String>,

    /// FCM's endpoint (Google's by default; a local stand-in in tests).
    #[arg(
        long,
        env = "MADA_FCM_ENDPOINT",
        default_value = "https://fcm.googleapis.com",
        global = true
    )]
    fcm_endpoint: String,

    /// The Firebase project; the key's `project_id` by default.
    #[arg(long, env = "MADA_FCM_PROJECT", global = true)]
    fcm_project: Option<String>,

    /// Time between the notifier's rounds, in milliseconds.
    #[arg(
        long,
        env = "MADA_NOTIFY_TICK_MS",
        default_value_t = 1_000,
        global = true
    )]
    notify_tick_ms: u64,

    /// How late a reminder may still be sent, in minutes (after an outage).
    #[arg(
        long,
        env = "MADA_REMINDER_STALE_MINS",
        default_value_t = 120,
        global = true
    )]
    reminder_stale_mins: i64,

    /// How long a notification being sent is left to its sender before it is sent
    /// again (a sender that died mid-send), in seconds.
    #[arg(
        long,
        env = "MADA_NOTIFY_CLAIM_SECS",
        default_value_t = 30,
        global = true
    )]
    notify_claim_secs: i64,

    /// Read the time from this file (RFC 3339) instead of the system clock: for
    /// tests.
    #[arg(long, env = "MADA_CLOCK_FILE", global = true)]
    clock_file: Option<std::path::PathBuf>,

    /// Where `relay` and `notify` serve `/healthz`, `/readyz` and `/metrics` (for
    /// Kubernetes' probes); none by default.
    #[arg(long, env = "MADA_HEALTH_LISTEN", global = true)]
    health_listen: Option<std::net::SocketAddr>,

    /// Which part of the API `serve` runs: `all` (projections in process), `write`
    /// (commands; read models kept by `mada project`), or `read` (queries and
    /// subscriptions; mutations forwarded to `--write-url`).
    #[arg(long, value_enum, env = "MADA_ROLE", default_value_t = Role::All, global = true)]
    role: Role,

    /// The write role's base URL, for `serve --role read`.
    #[arg(long, env = "MADA_WRITE_URL", global = true)]
    write_url: Option<String>,

    /// How long a projection worker's lease lasts without renewal, in seconds
    /// (`project`): a standby takes over this long after the active one dies.
    #[arg(
        long,
        env = "MADA_PROJECT_LEASE_TTL",
        default_value_t = 10,
        global = true
    )]
    project_lease_ttl: u64,

    /// How long SIGTERM waits for the requests in flight, in seconds.
    #[arg(long, env = "MADA_DRAIN_SECS", default_value_t = 10, global = true)]
    drain_secs: u64,

    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serve the GraphQL API and the web page on `--listen` until SIGINT or SIGTERM
    /// (the default). On the in-memory store it first loads the demo's data for
    /// `--user` and prints their list, the page's URL and a token.
    Serve,
    /// Run the scripted scenario and print today's list and the month.
    Demo,
    /// Print an HS256 token for `--user`, signed with `--jwt-secret`.
    Token,
    /// Run the projections (`--store postgres`) until SIGINT or SIGTERM, for API
    /// processes started with `serve --role write|read`. Replicas are safe: a lease
    /// per read model lets one runner work, the others take over if it dies.
    /// Serves /healthz, /readyz and /metrics on `--listen`.
    Project,
    /// Create or upgrade the schema `--pg-schema` (`--store postgres`), once per
    /// release.
    Migrate,
    /// Send push notifications through FCM (`--store postgres`): reminders at each
    /// user's time and cross-device updates, until SIGINT or SIGTERM. Replicas are
    /// safe: a lease in PostgreSQL lets one work.
    Notify,
    /// Publish the events in PostgreSQL (`--store postgres`) to Kafka under
    /// `--kafka-prefix`, keyed by user, until SIGINT or SIGTERM. Replicas are safe:
    /// one publishes (a lease in PostgreSQL), the others wait to take over.
    Relay,
    /// List what the projections fed through Kafka (`--sync kafka`) set aside under
    /// `--kafka-prefix`: records that are not events, events they could not apply.
    DeadLetters,
    /// Rebuild read models from the first event beside the live ones, then make the
    /// new versions live (`--store postgres --sync subscription`): readers and the
    /// `project` workers switch within a second, with no moment where they see
    /// nothing; the old versions are dropped. A progress bar with an ETA on a
    /// terminal.
    Rebuild {
        /// Which read models.
        #[arg(long, value_enum, default_value_t = rebuild::Which::All)]
        projection: rebuild::Which,
    },
}

/// The parts of the API a `serve` process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Role {
    /// Everything, projections included.
    All,
    /// Mutations (and queries); the read models are kept by `mada project`.
    Write,
    /// Queries and subscriptions; mutations forwarded to `--write-url`.
    Read,
}

/// The backends the binary can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StoreKind {
    /// In memory, in this process: no server needed; everything is gone at exit.
    Memory,
    /// Events and read models in PostgreSQL (`--database-url`, `--pg-schema`).
    Postgres,
    /// Events and read models in MySQL / MariaDB (`--mysql-url`,
    /// `--mysql-database`); the other roles (`project`, `relay`, `notify`, ...) keep
    /// their leases and outbox in PostgreSQL and do not run on it yet.
    Mysql,
}

/// How the read models follow the event store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SyncKind {
    /// Each projection subscribes to the event store.
    Subscription,
    /// The read models are written in the transaction that appends the events
    /// (`--store postgres --read-store same` only): a command's effect is readable
    /// when it returns.
    Inline,
    /// Each projection reads the committed events from a logical replication slot
    /// of its own on PostgreSQL's write-ahead log (`--store postgres`).
    Cdc,
    /// A relay publishes the events to Kafka (`--kafka-brokers`), keyed by user; each
    /// projection consumes them in its own consumer group.
    Kafka,
}

/// Where the read models can be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReadStoreKind {
    /// With the events (`--store`).
    Same,
    /// Plans in MongoDB, cached in Redis; category lists in Redis.
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
    let result = match cli.command.as_ref().unwrap_or(&Cmd::Serve) {
        Cmd::Serve => serve::run(&cli, options, today).await,
        Cmd::Token => token::print(&cli),
        Cmd::Notify => notify::run(&cli).await,
        Cmd::Project => project::run(&cli, options).await,
        Cmd::Migrate => project::migrate(&cli).await,
        Cmd::Demo => demo::run_demo(&cli, options, today).await,
        Cmd::Relay => relay::run_relay(&cli).await,
        Cmd::DeadLetters => dead_letters::list(&cli).await,
        Cmd::Rebuild { projection } => rebuild::run(&cli, *projection).await,
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
