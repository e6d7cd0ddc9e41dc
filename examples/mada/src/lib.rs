//! MADA, a personal planner built on [`cqrs_core`].
//!
//! A user has categories (a name and a colour) and goals (a title, a category, a day,
//! a range of days or every day from a date on with no end, optionally only on
//! chosen weekdays, an optional memo), done or not done per day. The write model
//! ([`domain`]) is two kinds of aggregates; the read side ([`projections`]) is two
//! read models: each user's plan, from which today's list and the month calendar are
//! computed when read, and the category list. [`Planner`] ties them together over any
//! stores that implement the ports, one store per read model ([`ReadStores`]); the
//! binary runs it in memory (the default), on PostgreSQL, and with its read side on
//! MongoDB and Redis.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use cqrs_core::{MemoryEventStore, MemoryReadModelStore};
//! use mada::{NewGoal, Planner, PlannerOptions, ReadStores, domain::Schedule};
//!
//! let read = ReadStores::all(MemoryReadModelStore::new());
//! let planner = Planner::start(MemoryEventStore::new(), read, PlannerOptions::default());
//! let day = "2026-11-25".parse().unwrap();
//! let health = planner.create_category("ada", "Health", "#2e7d32").await.unwrap();
//! let run = planner
//!     .create_goal("ada", NewGoal { title: "Run".into(), memo: None, category_id: health, schedule: Schedule::on(day) })
//!     .await
//!     .unwrap();
//! planner.complete_goal("ada", run, day).await.unwrap();
//!
//! let today = planner.today("ada", day).await.unwrap();
//! assert!(today.items[0].done);
//! assert_eq!(today.items[0].category.as_ref().unwrap().name, "Health");
//! planner.shutdown().await.unwrap();
//! # });
//! ```

mod app;
pub mod binlog;
pub mod cdc;
pub mod domain;
pub mod http_client;
pub mod kafka;
pub mod notify;
pub mod projections;
pub mod render;
pub mod scenario;
pub mod server;

pub use app::{
    Changes, Command, Consistency, Feeds, NewGoal, Planner, PlannerError, PlannerOptions,
    PlannerService, ReadStores, Receipt, StoreFeeds, TodayEntry, TodayView, project,
};
