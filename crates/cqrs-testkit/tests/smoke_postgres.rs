//! PostgreSQL answers over a real connection, with what change-data-capture needs.

use std::time::Duration;

use cqrs_testkit::{OrUnreachable, postgres_url};
use sqlx::postgres::PgPoolOptions;

#[tokio::test]
async fn postgres_answers_a_query_and_is_set_up_for_logical_decoding() {
    let url = postgres_url();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await
        .or_unreachable("PostgreSQL", &url);

    let (sum,): (i32,) = sqlx::query_as("SELECT $1::int4 + 1")
        .bind(41)
        .fetch_one(&pool)
        .await
        .expect("query");
    assert_eq!(sum, 42);

    let (wal_level,): (String,) = sqlx::query_as("SHOW wal_level")
        .fetch_one(&pool)
        .await
        .expect("wal_level");
    assert_eq!(
        wal_level, "logical",
        "change-data-capture needs wal_level = logical"
    );
    let (slots,): (String,) = sqlx::query_as("SHOW max_replication_slots")
        .fetch_one(&pool)
        .await
        .expect("slots");
    assert!(
        slots.parse::<u32>().expect("a number") >= 16,
        "max_replication_slots = {slots}"
    );
    let (version,): (String,) = sqlx::query_as("SELECT version()")
        .fetch_one(&pool)
        .await
        .expect("version");
    assert!(version.starts_with("PostgreSQL"), "{version}");
}
