//! The `mada` binary: runs the planner's demo scenario and prints the read models.

use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};
use cqrs_core::{MemoryEventStore, MemoryReadModelStore};
use cqrs_postgres::{PgEventStore, PgReadModelStore};
use mada::{Planner, PlannerOptions, render, scenario};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
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
    let result = match cli.command.unwrap_or(Cmd::Demo) {
        Cmd::Demo => match cli.store {
            StoreKind::Memory => {
                let planner = Planner::start(
                    MemoryEventStore::new(),
                    MemoryReadModelStore::new(),
                    options,
                );
                demo(planner, &cli.user, today, "in-memory").await
            }
            StoreKind::Postgres => match postgres(&cli.database_url, &cli.pg_schema).await {
                Ok((events, read)) => {
                    demo(
                        Planner::start(events, read, options),
                        &cli.user,
                        today,
                        "PostgreSQL",
                    )
                    .await
                }
                Err(error) => Err(error.to_string()),
            },
        },
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

/// Runs the scenario on `planner` and renders the report.
async fn demo<S, R>(
    planner: Planner<S, R>,
    user: &str,
    today: NaiveDate,
    store: &str,
) -> Result<String, String>
where
    S: cqrs_core::EventStore + cqrs_core::EventSubscriber + Clone + 'static,
    R: cqrs_core::ReadModelStore + Clone + 'static,
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
        .map_err(|e| format!("--database-url: {e}"))?
        .options([("search_path", schema)]);
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL at {url}: {e} (start it with `scripts/services.sh up postgres`)"))?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&pool)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await?;
    cqrs_postgres::migrate(&pool).await?;
    Ok((PgEventStore::new(pool.clone()), PgReadModelStore::new(pool)))
}
