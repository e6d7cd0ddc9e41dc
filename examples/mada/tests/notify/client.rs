//! The FCM client against the local server: the token exchange it checks, and
//! what each fault becomes.

use std::time::Duration;

use cqrs_testkit::fcm::Fault;
use mada::notify::fcm::Sent;
use serde_json::json;

use crate::harness::{client, fcm};

fn message(device: &str) -> serde_json::Value {
    json!({
        "token": device,
        "notification": { "title": "t", "body": "b" },
        "data": { "kind": "test" },
        "android": { "collapse_key": format!("k-{device}") },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_exchanges_a_signed_assertion_and_sorts_every_reply() {
    let (server, account) = fcm().await;
    let fcm = client(&server, &account, Duration::from_millis(800)).await;

    let first = fcm.send(&message("d1")).await;
    assert!(
        matches!(&first, Sent::Delivered(name) if name.starts_with("projects/mada-test/messages/")),
        "{first:?}"
    );
    assert_eq!(
        server.exchanges(),
        1,
        "the assertion was verified and a token issued"
    );
    fcm.send(&message("d2")).await;
    assert_eq!(server.exchanges(), 1, "the access token is cached");

    // 401: one fresh token, then it goes through.
    server.inject([Fault::Unauthorized]);
    assert!(matches!(fcm.send(&message("d3")).await, Sent::Delivered(_)));
    assert_eq!(server.exchanges(), 2);

    server.inject([Fault::Unregistered]);
    assert_eq!(fcm.send(&message("d4")).await, Sent::Unregistered);

    server.inject([Fault::TooMany(7)]);
    match fcm.send(&message("d5")).await {
        Sent::Retry { after, .. } => assert_eq!(after, Some(Duration::from_secs(7))),
        other => panic!("429 should be retried: {other:?}"),
    }
    server.inject([Fault::ServerError]);
    assert!(matches!(
        fcm.send(&message("d6")).await,
        Sent::Retry { after: None, .. }
    ));
    server.inject([Fault::BadRequest]);
    assert!(matches!(fcm.send(&message("d7")).await, Sent::Rejected(_)));
    // A reply slower than the client's timeout: unknown outcome, retried.
    server.inject([Fault::Slow(Duration::from_secs(2))]);
    assert!(matches!(fcm.send(&message("d8")).await, Sent::Retry { .. }));

    // The schema is checked: data values must be strings.
    let bad = json!({ "token": "d9", "data": { "n": 1 } });
    match fcm.send(&bad).await {
        Sent::Rejected(why) => assert!(why.contains("must be a string"), "{why}"),
        other => panic!("{other:?}"),
    }
    let delivered: Vec<String> = server
        .delivered()
        .iter()
        .map(|m| m["token"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(delivered, ["d1", "d2", "d3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assertion_signed_by_another_key_gets_no_token() {
    let (server, account) = fcm().await;
    let stranger =
        cqrs_testkit::fcm::ServiceAccount::generate(&server.token_uri, crate::harness::PROJECT);
    let fcm = client(&server, &stranger, Duration::from_secs(5)).await;
    assert!(matches!(fcm.send(&message("d1")).await, Sent::Retry { .. }));
    assert_eq!(server.exchanges(), 0);
    assert!(server.delivered().is_empty());
    drop(account);
}
