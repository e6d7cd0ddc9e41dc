//! MySQL / MariaDB adapters for [`cqrs_core`]: an event store whose subscriptions
//! never skip an event.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use cqrs_mysql::{MySqlEventStore, connect_pool, migrate};
//!
//! let pool = connect_pool("mysql://cqrs:cqrs@127.0.0.1:3306/cqrs".parse()?, 8).await?;
//! migrate(&pool).await?;
//! let store = MySqlEventStore::new(pool);
//! # let _ = store;
//! # Ok(())
//! # }
//! ```
//!
//! # Positions that never skip
//!
//! A subscription reads `position > p` again and again. With an `AUTO_INCREMENT`
//! position, taken when a transaction inserts and visible when it commits, a
//! transaction holding position 7 can commit after one holding 8 has been read:
//! the reader has moved past 7 and never sees it. MySQL and MariaDB have no
//! snapshot horizon to read up to (PostgreSQL's `pg_snapshot_xmin`), so this store
//! takes positions differently: `cqrs_append` locks the one row of `cqrs_tail`
//! after the stream's row and just before it writes the events, takes the next
//! positions from it, and keeps the lock until its transaction ends. Transactions
//! therefore take positions in the order they commit, a rolled-back transaction
//! gives its positions back, and the committed positions are always exactly
//! `1..=n`: a reader can never pass an event that commits later. The test
//! `a_tailing_subscriber_gets_every_committed_event_exactly_once_in_order` checks it
//! with writers that commit in random order or roll back, and fails when the
//! positions come from `AUTO_INCREMENT` instead.
//!
//! **The cost**: appends commit one at a time. Everything before the tail's lock
//! (the stream's lock, the command id, the version check) runs in parallel, but from
//! the lock to the commit (the inserts and the commit's flush) appends queue, so the
//! store's throughput is about one commit per flush of the redo log and binlog.
//! See BENCHMARKS.md for the numbers.

mod error;
mod event_store;
mod migrate;
mod pool;

pub use error::MySqlError;
pub use event_store::MySqlEventStore;
pub use migrate::migrate;
pub use pool::{CONNECT_TIMEOUT, connect_pool};
