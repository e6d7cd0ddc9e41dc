//! Connecting to the servers the flags name.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{
    Aliased, EventStore, EventSubscriber, MemoryEventStore, MemoryReadModelStore, ReadModelStore,
};
use cqrs_mongo::MongoReadModelStore;
use cqrs_postgres::PgReadModelStore;
use cqrs_redis::{RedisCache, RedisReadModelStore};
use mada::ReadStores;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use crate::sync::pg_events;
use crate::{Cli, ReadStoreKind, StoreKind};

/// MADA's read side on two servers, each read model where it serves best: the
/// users' plans (today's lists and months are computed from them) in MongoDB, cached
/// in Redis (read by every screen, kept current by the projection's own commits); the
/// category lists, small and hot, in Redis. Readers follow the aliases `mada rebuild`
/// moves.
pub(crate) type MongoRedis =
    ReadStores<Arc<Aliased<RedisCache<MongoReadModelStore>>>, Arc<Aliased<RedisReadModelStore>>>;

/// The read models in PostgreSQL, read through the aliases `mada rebuild` moves.
pub(crate) type PgRead = Arc<Aliased<PgReadModelStore>>;

/// Connects to MongoDB and Redis, empties the database and keys if `fresh`, and
/// builds the split read side.
pub(crate) async fn mongo_redis(
    cli: &Cli,
    fresh: bool,
) -> Result<MongoRedis, Box<dyn std::error::Error>> {
    let mongo = MongoReadModelStore::connect(&cli.mongodb_url, &cli.mongo_database)
        .await
        .map_err(|e| format!("{e} {START_HINT}"))?;
    let redis = RedisReadModelStore::connect(&cli.redis_url)
        .await
        .map_err(|e| format!("{e} {START_HINT}"))?
        .with_prefix(&cli.redis_prefix);
    if fresh {
        mongo.database().drop().await?;
        redis.delete_all().await?;
    }
    // The database holds the plans only, in whichever version `mada rebuild` made
    // live: the cache takes every read model in it.
    let cache = RedisCache::new(mongo.clone(), redis.connection())
        .with_prefix(&cli.redis_prefix)
        .with_ttl(Duration::from_secs(cli.cache_ttl.max(1)));
    Ok(ReadStores {
        plans: Arc::new(Aliased::new(cache)),
        categories: Arc::new(Aliased::new(redis)),
    })
}

/// The hint for a server that cannot be reached: this binary runs from the
/// repository, whose script starts the servers.
pub(crate) const START_HINT: &str =
    "(in this repository, `scripts/services.sh up` starts the servers)";

/// Connects to PostgreSQL with `schema` as the search path.
async fn pool(url: &str, schema: &str) -> Result<PgPool, Box<dyn std::error::Error>> {
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
    Ok(pool)
}

/// Connects to PostgreSQL with `schema` as the search path, creating and migrating
/// it if needed (the migrations take a lock: safe from many processes at once).
pub(crate) async fn connect_postgres(
    url: &str,
    schema: &str,
) -> Result<PgPool, Box<dyn std::error::Error>> {
    let pool = pool(url, schema).await?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .execute(&pool)
        .await?;
    cqrs_postgres::migrate(&pool).await?;
    Ok(pool)
}

/// Connects to PostgreSQL, recreates `schema` empty and migrates it: every demo
/// starts from nothing.
pub(crate) async fn fresh_postgres(
    url: &str,
    schema: &str,
) -> Result<PgPool, Box<dyn std::error::Error>> {
    let pool = pool(url, schema).await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&pool)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await?;
    cqrs_postgres::migrate(&pool).await?;
    Ok(pool)
}

/// Connects to MySQL / MariaDB and to the database `database` in it (created if
/// missing; dropped and created again if `fresh`), migrated.
pub(crate) async fn connect_mysql(
    url: &str,
    database: &str,
    fresh: bool,
) -> Result<sqlx::MySqlPool, Box<dyn std::error::Error>> {
    if database.is_empty()
        || !database
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(
            format!("--mysql-database `{database}`: use letters, digits and underscores").into(),
        );
    }
    let options = sqlx::mysql::MySqlConnectOptions::from_str(url)
        .map_err(|e| format!("--mysql-url {}: {e}", cqrs_core::redact_url(url)))?;
    let admin = cqrs_mysql::connect_pool(options.clone(), 1)
        .await
        .map_err(|e| format!("{e} {START_HINT}"))?;
    if fresh {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {database}"))
            .execute(&admin)
            .await?;
    }
    sqlx::query(&format!("CREATE DATABASE IF NOT EXISTS {database}"))
        .execute(&admin)
        .await?;
    admin.close().await;
    let pool = cqrs_mysql::connect_pool(options.database(database), 8).await?;
    cqrs_mysql::migrate(&pool).await?;
    Ok(pool)
}

/// The database the events are in.
#[derive(Clone, Copy, Debug)]
pub(crate) enum WriteDb<'a> {
    /// This process's memory.
    Memory,
    /// PostgreSQL.
    Postgres(&'a PgPool),
    /// MySQL / MariaDB.
    Mysql(&'a sqlx::MySqlPool),
}

impl<'a> WriteDb<'a> {
    /// The PostgreSQL pool, if the events are there.
    pub(crate) fn pg(self) -> Option<&'a PgPool> {
        match self {
            Self::Postgres(pool) => Some(pool),
            _ => None,
        }
    }
}

/// The stores the flags name, ready for a command to run on.
pub(crate) struct Stores<'a, S, P, K> {
    /// The event store.
    pub(crate) events: S,
    /// The read-model stores.
    pub(crate) read: ReadStores<P, K>,
    /// The database the events are in.
    pub(crate) db: WriteDb<'a>,
    /// The Redis cache in front of the plans, if there is one.
    pub(crate) cache: Option<RedisCache<MongoReadModelStore>>,
    /// What they are, for people.
    pub(crate) label: &'static str,
}

/// A command that runs on whatever stores the flags name.
pub(crate) trait OnStores {
    /// Runs on `stores`.
    async fn run<S, P, K>(self, stores: Stores<'_, S, P, K>) -> Result<String, String>
    where
        S: EventStore + EventSubscriber + Clone + Send + Sync + 'static,
        P: ReadModelStore + Clone + Send + Sync + 'static,
        K: ReadModelStore + Clone + Send + Sync + 'static;
}

/// Connects to the stores the flags name (emptied first if `fresh`; in-memory
/// events always start empty, so read models beside them are emptied too) and runs
/// `command` on them.
pub(crate) async fn on_stores(
    cli: &Cli,
    fresh: bool,
    command: impl OnStores,
) -> Result<String, String> {
    let text = |e: Box<dyn std::error::Error>| e.to_string();
    match (cli.store, cli.read_store) {
        (StoreKind::Memory, ReadStoreKind::Same) => {
            let read = ReadStores::all(MemoryReadModelStore::new());
            let label = "the in-memory store";
            let (events, cache) = (MemoryEventStore::new(), None);
            let stores = Stores {
                events,
                read,
                db: WriteDb::Memory,
                cache,
                label,
            };
            command.run(stores).await
        }
        (StoreKind::Memory, ReadStoreKind::MongoRedis) => {
            let read = mongo_redis(cli, true).await.map_err(text)?;
            let label = "the in-memory event store, MongoDB + Redis read stores";
            let (events, cache) = (MemoryEventStore::new(), Some(read.plans.inner().clone()));
            let stores = Stores {
                events,
                read,
                db: WriteDb::Memory,
                cache,
                label,
            };
            command.run(stores).await
        }
        (StoreKind::Mysql, read_store) => {
            let pool = connect_mysql(&cli.mysql_url, &cli.mysql_database, fresh)
                .await
                .map_err(text)?;
            let events = cqrs_mysql::MySqlEventStore::new(pool.clone());
            let events = if cli.sync == crate::SyncKind::Inline {
                events
                    .with_inline_projection(mada::projections::PlanProjection)
                    .with_inline_projection(mada::projections::CategoriesProjection)
            } else {
                events
            };
            if read_store == ReadStoreKind::Same {
                let read = ReadStores::all(Arc::new(Aliased::new(
                    cqrs_mysql::MySqlReadModelStore::new(pool.clone()),
                )));
                let stores = Stores {
                    events,
                    read,
                    db: WriteDb::Mysql(&pool),
                    cache: None,
                    label: "the MySQL store",
                };
                return command.run(stores).await;
            }
            let read = mongo_redis(cli, fresh).await.map_err(text)?;
            let cache = Some(read.plans.inner().clone());
            let stores = Stores {
                events,
                read,
                db: WriteDb::Mysql(&pool),
                cache,
                label: "the MySQL event store, MongoDB + Redis read stores",
            };
            command.run(stores).await
        }
        (StoreKind::Postgres, read_store) => {
            let pool = if fresh {
                fresh_postgres(&cli.database_url, &cli.pg_schema).await
            } else {
                connect_postgres(&cli.database_url, &cli.pg_schema).await
            }
            .map_err(text)?;
            let events = pg_events(cli, pool.clone());
            if read_store == ReadStoreKind::Same {
                let read = ReadStores::all(PgRead::new(Aliased::new(PgReadModelStore::new(
                    pool.clone(),
                ))));
                let label = "the PostgreSQL store";
                let stores = Stores {
                    events,
                    read,
                    db: WriteDb::Postgres(&pool),
                    cache: None,
                    label,
                };
                return command.run(stores).await;
            }
            let read = mongo_redis(cli, fresh).await.map_err(text)?;
            let label = "the PostgreSQL event store, MongoDB + Redis read stores";
            let cache = Some(read.plans.inner().clone());
            let stores = Stores {
                events,
                read,
                db: WriteDb::Postgres(&pool),
                cache,
                label,
            };
            command.run(stores).await
        }
    }
}
