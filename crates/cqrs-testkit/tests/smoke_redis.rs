//! Redis answers over a real connection.

use cqrs_testkit::{OrUnreachable, redis_url, unique_name};
use redis::AsyncCommands;

#[tokio::test]
async fn redis_sets_and_gets_a_value() {
    let url = redis_url();
    let client = redis::Client::open(url.as_str()).or_unreachable("Redis", &url);
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .or_unreachable("Redis", &url);

    let key = unique_name("smoke");
    let () = redis::cmd("SET")
        .arg(&key)
        .arg("hello")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut conn)
        .await
        .expect("SET");
    let value: Option<String> = conn.get(&key).await.expect("GET");
    assert_eq!(value.as_deref(), Some("hello"));
    let ttl: i64 = conn.pttl(&key).await.expect("PTTL");
    assert!(ttl > 0 && ttl <= 60_000, "ttl {ttl}");
    let removed: i64 = conn.del(&key).await.expect("DEL");
    assert_eq!(removed, 1);
}
