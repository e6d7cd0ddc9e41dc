//! The check every multi-process test ends with: the read models in a PostgreSQL
//! schema equal a rebuild from its events (read through their aliases, as the API
//! reads them).

use std::time::{Duration, Instant};

use cqrs_core::{
    Aliased, LogReader, MemoryReadModelStore, Position, Projection, ProjectionRunner,
    ReadModelReader, ReadModelWriter,
};
use cqrs_postgres::{PgEventStore, PgReadModelStore};
use mada::projections::{CategoriesProjection, PlanProjection};
use sqlx::PgPool;

/// A pool on `schema` of the test server.
pub async fn schema_pool(schema: &str) -> PgPool {
    let options: sqlx::postgres::PgConnectOptions = cqrs_testkit::postgres_url().parse().unwrap();
    PgPool::connect_with(options.options([("search_path", schema)]))
        .await
        .unwrap()
}

/// Waits until both read models have applied every event, then asserts each equals
/// a rebuild in memory, document for document, with nothing extra. Returns the head.
pub async fn assert_read_models_equal_a_rebuild(pool: &PgPool) -> Position {
    let events = PgEventStore::new(pool.clone());
    let head = events.head().await.unwrap();
    let read = Aliased::new(PgReadModelStore::new(pool.clone()));
    let deadline = Instant::now() + Duration::from_secs(60);
    for name in [PlanProjection::NAME, CategoriesProjection::NAME] {
        while read.checkpoint(name).await.unwrap() < head {
            assert!(
                Instant::now() < deadline,
                "{name} never caught up with {head}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let rebuilt = rebuild(&events, head).await;
    for name in [PlanProjection::NAME, CategoriesProjection::NAME] {
        let documents = rebuilt.documents(name);
        for (id, document) in &documents {
            let live = read.get(name, id).await.unwrap().map(|d| d.value);
            assert_eq!(
                live.as_ref(),
                Some(&document.value),
                "{name} {id} equals its rebuild"
            );
        }
        let target = read.resolve(name).await.unwrap();
        let (live,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM cqrs_documents WHERE projection = $1 AND value IS NOT NULL",
        )
        .bind(&target)
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(
            usize::try_from(live).unwrap(),
            documents.len(),
            "{name} ({target}): no extra document"
        );
    }
    head
}

/// Both read models rebuilt in memory from `events`, up to `head`.
pub async fn rebuild(events: &PgEventStore, head: Position) -> MemoryReadModelStore {
    let rebuilt = MemoryReadModelStore::new();
    for handle in [
        ProjectionRunner::new(PlanProjection, events.clone(), rebuilt.clone()).spawn(),
        ProjectionRunner::new(CategoriesProjection, events.clone(), rebuilt.clone()).spawn(),
    ] {
        handle.wait_for(head).await.unwrap();
        handle.stop().await.unwrap();
    }
    rebuilt
}
