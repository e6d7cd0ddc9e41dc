//! The `mada` binary: runs the planner's demo scenario and prints the read models.

use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};
use cqrs_core::{MemoryEventStore, MemoryReadModelStore};
use mada::{Planner, PlannerOptions, render, scenario};
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
    match cli.command.unwrap_or(Cmd::Demo) {
        Cmd::Demo => match cli.store {
            StoreKind::Memory => {
                let planner = Planner::start(
                    MemoryEventStore::new(),
                    MemoryReadModelStore::new(),
                    options,
                );
                let result = scenario::run(&planner, &cli.user, today).await;
                let shutdown = planner.shutdown().await;
                match result.and_then(|report| shutdown.map(|()| report)) {
                    Ok(report) => {
                        print!("{}", render::report(&report, "in-memory"));
                        ExitCode::SUCCESS
                    }
                    Err(error) => {
                        eprintln!("mada: {error}");
                        ExitCode::FAILURE
                    }
                }
            }
        },
    }
}
