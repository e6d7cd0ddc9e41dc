//! Bad input and limits: each gets a clear, coded error; nothing panics, and the
//! server keeps answering.

use std::time::Duration;

use mada::server::ServerConfig;
use mada::server::auth::Authenticator;
use mada::server::graphql::QueryLimits;
use serde_json::json;

use crate::harness::{SECRET, Said, Socket, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_a_bad_request_error() {
    let server = TestServer::start().await;
    let ada = server.client("ada");
    let raw = [
        ("{\"query\": ", 400, "not a GraphQL request in JSON"),
        ("[1, 2, 3]", 400, "not a GraphQL request in JSON"),
        ("{\"query\": 42}", 400, "not a GraphQL request in JSON"),
    ];
    for (body, status, says) in raw {
        let reply = ada.post_raw(body.to_owned(), &[]).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        assert_eq!(reply.code(), "BAD_REQUEST", "{body}");
        assert!(
            reply.message().contains(says),
            "{body}: {}",
            reply.message()
        );
    }
    let queries = [
        ("{ today(date: 20261125) { total } }", "Date"),
        ("{ today(date: \"2026-13-01\") { total } }", "is not a day"),
        (
            "{ calendar(month: \"November\") { days { date } } }",
            "is not a month",
        ),
        (
            "{ today(date: \"2026-11-25\", after: \"-1\") { total } }",
            "not a consistency token",
        ),
        (
            "{ today(date: \"2026-11-25\") { total secret } }",
            "Unknown field \"secret\"",
        ),
        (
            "{ today(date: \"2026-11-25\", colour: 1) { total } }",
            "Unknown argument",
        ),
        (
            "mutation { createGoal(goal: { title: \"x\", categoryId: \"a\", schedule: { start: \"2026-11-25\" }, owner: \"bob\" }) { id } }",
            "owner",
        ),
        ("{ today { total } }", "date"),
        ("{ today(date: \"2026-11-25\") { total }", "expected"),
        (
            "subscription { today(date: \"2026-11-25\") { total } }",
            "Subscription",
        ),
    ];
    for (query, says) in queries {
        let reply = ada.gql(query, json!({})).await;
        assert_eq!(reply.status, 200, "{query}");
        assert_eq!(reply.code(), "BAD_REQUEST", "{query}: {}", reply.body);
        assert!(
            reply.message().contains(says),
            "{query}: {}",
            reply.message()
        );
    }
    // Variables of the wrong type too.
    let reply = ada
        .gql(
            "query($d: Date!) { today(date: $d) { total } }",
            json!({ "d": [1] }),
        )
        .await;
    assert_eq!(reply.code(), "BAD_REQUEST", "{}", reply.body);
    // Still serving.
    assert_eq!(ada.gql("{ me }", json!({})).await.data()["me"], "ada");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_too_deep_and_too_complex_queries_hit_their_limits() {
    let config = ServerConfig {
        body_limit: 4096,
        limits: QueryLimits {
            depth: 3,
            complexity: 50,
            ..QueryLimits::default()
        },
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(Authenticator::hs256(SECRET), config).await;
    let ada = server.client("ada");

    let big = json!({ "query": format!("{{ me }} # {}", "x".repeat(5000)) }).to_string();
    let reply = ada.post_raw(big, &[]).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.code(), "LIMIT");
    assert!(
        reply.message().contains("4096 bytes"),
        "{}",
        reply.message()
    );

    let deep = ada
        .gql(
            "{ today(date: \"2026-11-25\") { items { category { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(deep.code(), "LIMIT", "{}", deep.body);
    assert!(deep.message().contains("too deep"));

    let aliases: String = (0..60).map(|i| format!("a{i}: me ")).collect();
    let wide = ada.gql(&format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(wide.code(), "LIMIT", "{}", wide.body);
    assert!(wide.message().contains("too complex"));

    assert_eq!(ada.gql("{ me }", json!({})).await.data()["me"], "ada");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_takes_too_long_times_out() {
    let config = ServerConfig {
        request_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(Authenticator::hs256(SECRET), config).await;
    let ada = server.client("ada");
    // A token no write reached: the query would wait 5 s for it.
    let started = std::time::Instant::now();
    let reply = ada
        .gql(
            "{ today(date: \"2026-11-25\", after: \"123456789\") { total } }",
            json!({}),
        )
        .await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.code(), "TIMEOUT", "{}", reply.body);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_holds_at_most_the_configured_number_of_sockets() {
    let config = ServerConfig {
        sockets_per_user: 2,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(Authenticator::hs256(SECRET), config).await;
    let token = server.token("ada");
    let first = Socket::signed_in(&server.url, &token).await;
    let _second = Socket::signed_in(&server.url, &token).await;
    let mut third = Socket::connect(
        &server.url,
        json!({ "authorization": format!("Bearer {token}") }),
    )
    .await;
    match third.next(Duration::from_secs(5)).await {
        Some(Said::Closed(reason)) => assert!(reason.contains("LIMIT"), "{reason}"),
        other => panic!("a third socket was accepted: {other:?}"),
    }
    // Another user is not held back by ada's sockets.
    Socket::signed_in(&server.url, &server.token("bob")).await;
    // Closing one frees its slot.
    drop(first);
    let mut again = None;
    for _ in 0..50 {
        let mut socket = Socket::connect(
            &server.url,
            json!({ "authorization": format!("Bearer {token}") }),
        )
        .await;
        match socket.next(Duration::from_secs(5)).await {
            Some(Said::Message(m)) if m["type"] == "connection_ack" => {
                again = Some(socket);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert!(again.is_some(), "the closed socket's slot was never freed");
}
