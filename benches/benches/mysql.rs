//! MySQL / MariaDB benches against the real server (`scripts/services.sh up mysql`),
//! beside the peer measured in the same run: commands/s through the repository at
//! 1, 8 and 64 tasks — the store with its defaults (group commit) and without group
//! commit — beside
//! cqrs-es 0.5 + mysql-es 0.5 running the same MADA goal commands on the same
//! server; p50 / p99 command latency at 1 and 8 tasks (printed after criterion).
//!
//! Run with `cargo bench -p cqrs-benches --bench mysql`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cqrs_benches::{Goals, create_goal};
use cqrs_core::{Metadata, Repository, SnapshotPolicy};
use cqrs_mysql::MySqlEventStore;
use criterion::Criterion;
use mada::domain::Goal;
use mysql_es::MysqlCqrs;
use sqlx::MySqlPool;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};

#[path = "shared/commands.rs"]
mod commands;
#[path = "shared/peer.rs"]
mod peer;
use peer::PeerGoal;

const TASKS: [usize; 3] = [1, 8, 64];

/// mysql-es's tables (from its `db/init.sql`, with each `CHECK` after `NOT NULL`:
/// MariaDB refuses the other order).
const PEER_SCHEMA: &str = "
CREATE TABLE events (aggregate_type varchar(255) NOT NULL, aggregate_id varchar(255) NOT NULL,
  sequence bigint NOT NULL CHECK (sequence >= 0), event_type text NOT NULL, event_version text NOT NULL,
  payload json NOT NULL, metadata json NOT NULL,
  CONSTRAINT events_pk PRIMARY KEY (aggregate_type, aggregate_id, sequence));
CREATE TABLE snapshots (aggregate_type varchar(255) NOT NULL, aggregate_id varchar(255) NOT NULL,
  last_sequence bigint NOT NULL CHECK (last_sequence >= 0),
  current_snapshot bigint NOT NULL CHECK (current_snapshot >= 0), payload json NOT NULL,
  CONSTRAINT snapshots_pk PRIMARY KEY (aggregate_type, aggregate_id));";

/// A pool on a new database `name` of the test server, with a case-insensitive
/// collation as MySQL's default (mysql-es reads `VARCHAR` columns as text, which
/// the driver refuses for a binary collation; cqrs-mysql stores bytes and does not
/// care).
async fn database(name: &str, connections: u32) -> MySqlPool {
    let url = cqrs_testkit::mysql_url();
    let admin = MySqlPool::connect(&url)
        .await
        .unwrap_or_else(|e| cqrs_testkit::server_unreachable("MySQL (MariaDB)", &url, e));
    sqlx::query(&format!(
        "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    ))
    .execute(&admin)
    .await
    .expect("create database");
    let options = MySqlConnectOptions::from_str(&url)
        .expect("url")
        .database(name);
    MySqlPoolOptions::new()
        .max_connections(connections)
        .connect_with(options)
        .await
        .expect("pool")
}

struct Systems {
    ours: Repository<Goal, MySqlEventStore>,
    single: Repository<Goal, MySqlEventStore>,
    peer: Arc<MysqlCqrs<PeerGoal>>,
    ours_goals: Goals,
    single_goals: Goals,
    peer_goals: Goals,
}

/// A repository as the benches use it: snapshots every 50 events, a cache.
fn repository(store: MySqlEventStore) -> Repository<Goal, MySqlEventStore> {
    Repository::new(store)
        .with_snapshots(SnapshotPolicy::Every(50))
        .with_cache(10_000)
}

async fn systems() -> Systems {
    let ours_pool = database(&cqrs_testkit::unique_name("bench"), 80).await;
    cqrs_mysql::migrate(&ours_pool).await.expect("migrate");
    let ours = repository(MySqlEventStore::new(ours_pool.clone()));
    let single = repository(MySqlEventStore::new(ours_pool).with_group_commit(0));
    let peer_pool = database(&cqrs_testkit::unique_name("peer"), 80).await;
    sqlx::raw_sql(PEER_SCHEMA)
        .execute(&peer_pool)
        .await
        .expect("peer schema");
    let peer = Arc::new(mysql_es::mysql_snapshot_cqrs::<PeerGoal>(
        peer_pool,
        vec![],
        50,
        (),
    ));
    let max_tasks = TASKS[TASKS.len() - 1];
    let (ours_goals, peer_goals) = (Goals::new(max_tasks), Goals::new(max_tasks));
    let single_goals = Goals::new(max_tasks);
    for goal in ours_goals.ids.iter().chain(&single_goals.ids).flatten() {
        ours.execute(&create_goal(*goal, "bench"), Metadata::new())
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
        single,
        peer,
        ours_goals,
        single_goals,
        peer_goals,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Who {
    Ours,
    Single,
    Peer,
}

const SYSTEMS: [(&str, Who); 3] = [
    ("cqrs-mysql", Who::Ours),
    ("cqrs-mysql-no-group-commit", Who::Single),
    ("cqrs-es+mysql-es", Who::Peer),
];

impl commands::Systems for Systems {
    type Who = Who;

    async fn run(&self, who: Who, tasks: usize, per_task: usize) -> Vec<Duration> {
        match who {
            Who::Ours | Who::Single => {
                let (ours, goals) = if who == Who::Ours {
                    (self.ours.clone(), &self.ours_goals)
                } else {
                    (self.single.clone(), &self.single_goals)
                };
                commands::toggling(goals, tasks, per_task, move |_, command| {
                    let ours = ours.clone();
                    async move {
                        ours.execute(&command, Metadata::new()).await.expect("ours");
                    }
                })
                .await
            }
            Who::Peer => {
                let peer = self.peer.clone();
                commands::toggling(&self.peer_goals, tasks, per_task, move |goal, command| {
                    let peer = peer.clone();
                    async move {
                        peer.execute(&goal.to_string(), command)
                            .await
                            .expect("peer");
                    }
                })
                .await
            }
        }
    }
}

fn main() {
    let rt = cqrs_benches::runtime();
    let systems = rt.block_on(systems());
    let mut criterion = Criterion::default().configure_from_args();
    commands::commands(
        &mut criterion,
        &rt,
        "commands/mysql",
        &systems,
        &SYSTEMS,
        &TASKS,
    );
    criterion.final_summary();
    commands::latencies(&rt, &systems, &SYSTEMS, 1000);
}
