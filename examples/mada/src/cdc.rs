//! MADA over change-data-capture: each projection reads the committed events from a
//! logical replication slot of its own on PostgreSQL's write-ahead log
//! ([`PgCdcSource`]), without touching the write path.

use std::collections::HashMap;

use cqrs_core::{LogReader, Position, Projection};
use cqrs_postgres::{PgCdcSource, PgError};
use sqlx::PgPool;

use crate::Feeds;
use crate::projections::{CategoriesProjection, PlanProjection};

/// One replication slot per planner projection, named `{prefix}_{projection}`.
#[derive(Debug, Clone)]
pub struct CdcFeeds {
    sources: HashMap<&'static str, PgCdcSource>,
}

/// Why CDC cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CdcError {
    /// The server refused (no `REPLICATION` attribute, `wal_level` not `logical`,
    /// a bad slot name).
    #[error(transparent)]
    Postgres(#[from] PgError),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] cqrs_core::Error),
    /// A slot was just made, after events its read model lacks: a slot only sees
    /// what is committed after it exists.
    #[error(
        "the replication slot `{slot}` is new, but the log holds events up to {head} and \
         the read model `{projection}` stops at {checkpoint}: a new slot cannot deliver \
         them. Catch the read model up once with `--sync subscription`, then switch"
    )]
    SlotTooLate {
        /// The slot.
        slot: String,
        /// The read model.
        projection: &'static str,
        /// The log's head.
        head: Position,
        /// The read model's checkpoint.
        checkpoint: Position,
    },
}

impl CdcFeeds {
    /// The slot names for `prefix`.
    pub fn slots(prefix: &str) -> [(&'static str, String); 2] {
        [PlanProjection::NAME, CategoriesProjection::NAME].map(|p| (p, format!("{prefix}_{p}")))
    }

    /// Makes (or reopens) the slots under `prefix` in the database of `pool`, whose
    /// events `events` holds, for read models whose checkpoints are `plans` and
    /// `categories` (read before this call: they only grow, so the check is safe);
    /// refuses a slot made too late to deliver events its read model lacks.
    ///
    /// # Errors
    /// See [`CdcError`].
    pub async fn create(
        pool: &PgPool,
        prefix: &str,
        events: &impl LogReader,
        plans: Position,
        categories: Position,
    ) -> Result<Self, CdcError> {
        let mut sources = HashMap::new();
        for (projection, slot) in Self::slots(prefix) {
            let existed = slot_exists(pool, &slot).await?;
            let source = PgCdcSource::create(pool.clone(), &slot).await?;
            if !existed {
                let head = events.head().await?;
                let checkpoint = if projection == PlanProjection::NAME {
                    plans
                } else {
                    categories
                };
                if head > checkpoint {
                    source.drop_slot().await?;
                    return Err(CdcError::SlotTooLate {
                        slot,
                        projection,
                        head,
                        checkpoint,
                    });
                }
            }
            sources.insert(projection, source);
        }
        Ok(Self { sources })
    }

    /// Drops the slots (a slot no one reads keeps WAL on the server's disk forever).
    ///
    /// # Errors
    /// The server refused.
    pub async fn drop_slots(&self) -> Result<(), PgError> {
        for source in self.sources.values() {
            source.drop_slot().await?;
        }
        Ok(())
    }
}

async fn slot_exists(pool: &PgPool, slot: &str) -> Result<bool, PgError> {
    let exists =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)")
            .bind(slot)
            .fetch_one(pool)
            .await?;
    Ok(exists)
}

impl Feeds for CdcFeeds {
    type Source = PgCdcSource;
    type DeadLetters = cqrs_core::MemoryDeadLetters;

    /// The slot of `projection`.
    ///
    /// # Panics
    /// For a projection that is not one of the planner's two.
    fn source(&self, projection: &str) -> PgCdcSource {
        self.sources[projection].clone()
    }
}
