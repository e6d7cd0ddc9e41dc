//! MADA over change-data-capture on MySQL / MariaDB: each projection reads the
//! committed events from the binlog through a reader of its own
//! ([`MySqlBinlogSource`]), without touching the write path.
//!
//! Unlike a PostgreSQL slot, a binlog reader needs nothing created beforehand: a new
//! one reads what its read model lacks from the event table, then follows the
//! binlog, and stores where it is in the database (`cqrs_binlog_readers`).

use std::collections::HashMap;

use cqrs_core::Projection;
use cqrs_mysql::{MySqlBinlogSource, MySqlError};
use sqlx::MySqlPool;

use crate::Feeds;
use crate::projections::{CategoriesProjection, PlanProjection};

/// One binlog reader per planner projection, named `{prefix}_{projection}`.
#[derive(Debug, Clone)]
pub struct BinlogFeeds {
    sources: HashMap<&'static str, MySqlBinlogSource>,
}

impl BinlogFeeds {
    /// Readers under `prefix` of the events in `pool`'s database, streaming the
    /// binlog of the server `url` names (its user needs the replication
    /// privileges: see [`MySqlBinlogSource`]).
    ///
    /// # Errors
    /// [`MySqlError::InvalidName`] if a name is longer than 64 characters or has
    /// characters other than ASCII letters, digits, `_` and `-`;
    /// [`MySqlError::InvalidUrl`].
    pub fn new(pool: &MySqlPool, url: &str, prefix: &str) -> Result<Self, MySqlError> {
        let mut sources = HashMap::new();
        for projection in [PlanProjection::NAME, CategoriesProjection::NAME] {
            let name = format!("{prefix}_{projection}");
            sources.insert(
                projection,
                MySqlBinlogSource::new(pool.clone(), url, &name)?,
            );
        }
        Ok(Self { sources })
    }

    /// Forgets where the readers are (the demo's: no one will read them again).
    ///
    /// # Errors
    /// The server refused.
    pub async fn forget(&self) -> Result<(), MySqlError> {
        for source in self.sources.values() {
            source.forget().await?;
        }
        Ok(())
    }
}

impl Feeds for BinlogFeeds {
    type Source = MySqlBinlogSource;
    type DeadLetters = cqrs_core::MemoryDeadLetters;

    /// The reader of `projection`.
    ///
    /// # Panics
    /// For a projection that is not one of the planner's two.
    fn source(&self, projection: &str) -> MySqlBinlogSource {
        self.sources[projection].clone()
    }
}
