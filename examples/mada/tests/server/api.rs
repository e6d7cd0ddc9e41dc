//! The API's flows: mutations and queries, read-your-writes by token, the
//! subscription, correlation ids, error codes, health and metrics.

use std::time::Duration;

use cqrs_core::{LogReader, Position};
use serde_json::json;

use crate::harness::{Said, Socket, TestServer};

const DAY: &str = "2026-11-25";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_returns_a_token_after_which_queries_see_it() {
    let server = TestServer::start().await;
    let ada = server.client("ada");
    let health = ada.category("Health").await;
    let (run, token) = ada.goal("Run", &health, DAY).await;
    assert!(token.parse::<u64>().unwrap() > 0, "{token}");

    let today = ada.today(DAY, Some(&token)).await;
    assert_eq!(today["total"], 1);
    assert_eq!(today["items"][0]["goalId"], run.as_str());
    assert_eq!(today["items"][0]["category"]["name"], "Health");

    let done = ada
        .gql(
            "mutation($id: ID!) { completeGoal(id: $id, date: \"2026-11-25\") { id token } }",
            json!({ "id": run }),
        )
        .await;
    let written = &done.data()["completeGoal"];
    assert!(written["id"].is_null(), "completing creates nothing");
    let token = written["token"].as_str().unwrap();
    // Every read that passes the token sees the write, every time.
    let reply = ada
        .gql(
            "query($a: Token) { today(date: \"2026-11-25\", after: $a) { done total }
               calendar(month: \"2026-11\", after: $a) { month days { date scheduled done } }
               goal(id: \"%ID%\", after: $a) { title schedule { start end weekdays } doneDates(from: \"2026-11-01\", to: \"2026-11-30\") } }"
                .replace("%ID%", &run)
                .as_str(),
            json!({ "a": token }),
        )
        .await;
    let data = reply.data();
    assert_eq!(data["today"], json!({ "done": 1, "total": 1 }));
    assert_eq!(data["calendar"]["month"], "2026-11");
    let days = data["calendar"]["days"].as_array().unwrap();
    assert_eq!(
        days.len(),
        6,
        "every day from the 25th to the 30th: {days:?}"
    );
    assert_eq!(days[0], json!({ "date": DAY, "scheduled": 1, "done": 1 }));
    assert_eq!(
        data["goal"]["schedule"],
        json!({ "start": DAY, "end": null, "weekdays": [] })
    );
    assert_eq!(data["goal"]["doneDates"], json!([DAY]));

    let categories = ada
        .gql("{ categories { id name colour } }", json!({}))
        .await;
    assert_eq!(
        categories.data()["categories"],
        json!([{ "id": health, "name": "Health", "colour": "#2e7d32" }])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_read_models_do_not_reach_in_time_is_not_caught_up() {
    let config = mada::server::ServerConfig {
        limits: mada::server::graphql::QueryLimits {
            read_wait: Duration::from_millis(200),
            ..Default::default()
        },
        ..Default::default()
    };
    let auth = mada::server::auth::Authenticator::hs256(crate::harness::SECRET);
    let server = TestServer::start_with(auth, config).await;
    let reply = server
        .client("ada")
        .gql(
            "{ today(date: \"2026-11-25\", after: \"999999\") { total } }",
            json!({}),
        )
        .await;
    assert_eq!(reply.code(), "NOT_CAUGHT_UP", "{:?}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_rules_refuse_with_stable_codes() {
    let server = TestServer::start().await;
    let ada = server.client("ada");
    let cases = [
        (
            "mutation { createCategory(name: \"  \", colour: \"#000000\") { id } }",
            "VALIDATION",
        ),
        (
            "mutation { createCategory(name: \"A\", colour: \"red\") { id } }",
            "VALIDATION",
        ),
        (
            "mutation { renameCategory(id: \"not-an-id\", name: \"B\") { id } }",
            "VALIDATION",
        ),
        (
            "mutation { renameCategory(id: \"0190a0a0-0000-7000-8000-000000000000\", name: \"B\") { id } }",
            "NOT_FOUND",
        ),
        (
            "{ goal(id: \"0190a0a0-0000-7000-8000-000000000000\") { title } }",
            "NOT_FOUND",
        ),
    ];
    for (query, code) in cases {
        let reply = ada.gql(query, json!({})).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.code(), code, "{query}: {}", reply.body);
    }
    let health = ada.category("Health").await;
    let once = "mutation($c: ID!) { createGoal(goal: { title: \"Dentist\", categoryId: $c, schedule: { start: \"2026-11-25\", end: \"2026-11-25\" } }) { id } }";
    let goal = ada.gql(once, json!({ "c": health })).await.data()["createGoal"]["id"].clone();
    let not_due = ada
        .gql(
            "mutation($g: ID!) { completeGoal(id: $g, date: \"2026-11-26\") { token } }",
            json!({ "g": goal }),
        )
        .await;
    assert_eq!(not_due.code(), "NOT_SCHEDULED");
    assert_eq!(
        not_due.message(),
        "this goal is not scheduled on 2026-11-26"
    );
    let backwards = ada
        .gql(
            "mutation($g: ID!) { rescheduleGoal(id: $g, schedule: { start: \"2026-11-25\", end: \"2026-11-01\" }) { token } }",
            json!({ "g": goal }),
        )
        .await;
    assert_eq!(backwards.code(), "VALIDATION");
    let deleted = ada
        .gql(
            "mutation($g: ID!) { deleteGoal(id: $g) { token } }",
            json!({ "g": goal }),
        )
        .await;
    deleted.data();
    let again = ada
        .gql(
            "mutation($g: ID!) { deleteGoal(id: $g) { token } }",
            json!({ "g": goal }),
        )
        .await;
    assert_eq!(again.code(), "DELETED");
    let gone = ada
        .gql(
            "mutation($c: ID!) { deleteCategory(id: $c) { token } }",
            json!({ "c": health }),
        )
        .await;
    gone.data();
    let in_deleted = ada.gql(once, json!({ "c": health })).await;
    assert_eq!(in_deleted.code(), "DELETED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_id_travels_into_the_events_metadata() {
    let server = TestServer::start().await;
    let ada = server.client("ada");
    let id = "0190a0a0-1234-7000-8000-00000000abcd";
    let reply = ada
        .post_raw(
            json!({ "query": "mutation { createCategory(name: \"Home\", colour: \"#8e24aa\") { id } }" }).to_string(),
            &[("x-request-id", id)],
        )
        .await;
    reply.data();
    assert_eq!(reply.request_id.as_deref(), Some(id));
    let events = server.events.read_all(Position::START, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]
            .metadata
            .correlation_id
            .map(|u| u.to_string())
            .as_deref(),
        Some(id)
    );
    assert_eq!(events[0].metadata.user_id.as_deref(), Some("ada"));
    // Without one (or with one that is no UUID) the server makes one up and says it.
    let reply = ada
        .post_raw(
            json!({ "query": "{ me }" }).to_string(),
            &[("x-request-id", "hello")],
        )
        .await;
    let made_up = reply.request_id.unwrap();
    assert!(made_up.parse::<uuid::Uuid>().is_ok(), "{made_up}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_pushes_the_list_when_it_changes() {
    let server = TestServer::start().await;
    let ada = server.client("ada");
    let health = ada.category("Health").await;
    let (run, token) = ada.goal("Run", &health, DAY).await;
    ada.today(DAY, Some(&token)).await;

    let mut socket = Socket::signed_in(&server.url, &server.token("ada")).await;
    socket.subscribe_today("1", DAY).await;
    let first = socket.next_today(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        (first["done"].clone(), first["total"].clone()),
        (json!(0), json!(1))
    );

    ada.gql(
        "mutation($g: ID!) { completeGoal(id: $g, date: \"2026-11-25\") { token } }",
        json!({ "g": run }),
    )
    .await
    .data();
    let pushed = socket.next_today(Duration::from_secs(5)).await.unwrap();
    assert_eq!(pushed["done"], 1, "{pushed}");
    assert_eq!(pushed["items"][0]["done"], true);

    // A change that does not touch this day's list pushes nothing.
    ada.gql(
        "mutation($c: ID!) { createGoal(goal: { title: \"Later\", categoryId: $c, schedule: { start: \"2026-12-01\" } }) { token } }",
        json!({ "c": health }),
    )
    .await
    .data();
    assert!(
        socket.next(Duration::from_millis(700)).await.is_none(),
        "nothing new for the 25th"
    );

    let (_, _) = ada.goal("Stretch", &health, DAY).await;
    let pushed = socket.next_today(Duration::from_secs(5)).await.unwrap();
    assert_eq!(pushed["total"], 2, "{pushed}");
    assert!(!matches!(
        socket.next(Duration::from_millis(100)).await,
        Some(Said::Closed(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_answer() {
    let server = TestServer::start().await;
    let http = mada::http_client::client(Duration::from_secs(30)).unwrap();
    let get = |path: &str| http.get(format!("{}{path}", server.url)).send();
    let health = get("/healthz").await.unwrap();
    assert_eq!(health.status(), 200);
    let mut ready = get("/readyz").await.unwrap();
    for _ in 0..50 {
        if ready.status() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = get("/readyz").await.unwrap();
    }
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());

    let ada = server.client("ada");
    ada.category("Health").await;
    ada.today(DAY, None).await;
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    for expected in [
        "mada_graphql_field_seconds_count{field=\"Query.today\",outcome=\"ok\"}",
        "mada_graphql_field_seconds_count{field=\"Mutation.createCategory\",outcome=\"ok\"}",
        "mada_commands_total{command=\"create_category\",outcome=\"OK\"}",
        "mada_projection_position{projection=\"plan\"}",
        "mada_projection_lag_seconds{projection=\"categories\"}",
    ] {
        assert!(metrics.contains(expected), "{expected} in\n{metrics}");
    }

    // A stopped projection makes the server not ready.
    server.planner.halt().await;
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("has stopped"));
}

/// A writer the test's log goes to.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One trace from the request to the read model: the request's span, the events'
/// metadata and the projection batch that applied them all carry its id. (One
/// thread, so the test's subscriber sees the server's and the runners' tasks.)
#[tokio::test(flavor = "current_thread")]
async fn one_correlation_id_leads_from_the_request_to_the_projection_batch() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("mada=debug,cqrs_core=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = TestServer::start().await;
    let ada = server.client("ada");
    let id = "0190a0a0-5678-7000-8000-00000000cafe";
    let body = json!({ "query": "mutation { createCategory(name: \"Home\", colour: \"#8e24aa\") { token } }" });
    let reply = ada
        .post_raw(body.to_string(), &[("x-request-id", id)])
        .await;
    let token = reply.data()["createCategory"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    ada.gql(
        "query($a: Token) { categories(after: $a) { name } }",
        json!({ "a": token }),
    )
    .await
    .data();

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let request = log
        .lines()
        .find(|l| l.contains("request answered") && l.contains(&format!("correlation={id}")));
    assert!(request.is_some(), "the request's span names its id:\n{log}");
    let batch = log.lines().find(|l| {
        l.contains("batch committed")
            && l.contains("projection{projection=categories}")
            && l.contains(&format!("correlation={id}"))
    });
    assert!(
        batch.is_some(),
        "the batch that applied its event names it:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_and_the_reminder_are_set_through_the_api() {
    let server = TestServer::start().await;
    let ada = server.client("ada");
    let token = "fcm-token-of-adas-phone-0123456789";
    ada.gql(
        "mutation($t: String!) { registerDevice(token: $t) { token } }",
        json!({ "t": token }),
    )
    .await
    .data();
    ada.gql(
        "mutation { setReminder(timeZone: \"Asia/Seoul\", at: \"08:00\") { token } }",
        json!({}),
    )
    .await
    .data();
    let settings = ada
        .gql("{ settings { timeZone reminderAt devices } }", json!({}))
        .await;
    assert_eq!(
        settings.data()["settings"],
        json!({ "timeZone": "Asia/Seoul", "reminderAt": "08:00", "devices": ["23456789"] })
    );
    for (query, code) in [
        (
            "mutation { setReminder(timeZone: \"Mars/Olympus\", at: \"08:00\") { token } }",
            "VALIDATION",
        ),
        (
            "mutation { setReminder(timeZone: \"UTC\", at: \"8 am\") { token } }",
            "BAD_REQUEST",
        ),
        (
            "mutation { registerDevice(token: \"has spaces\") { token } }",
            "VALIDATION",
        ),
        (
            "mutation { unregisterDevice(token: \"never-registered\") { token } }",
            "NOT_FOUND",
        ),
    ] {
        assert_eq!(ada.gql(query, json!({})).await.code(), code, "{query}");
    }
    // Another user sees none of it.
    let bob = server
        .client("bob")
        .gql("{ settings { timeZone devices } }", json!({}))
        .await;
    assert_eq!(
        bob.data()["settings"],
        json!({ "timeZone": null, "devices": [] })
    );

    // A mutation from a device names it in its events, for the notifier.
    let reply = ada
        .post_raw(
            json!({ "query": "mutation { createCategory(name: \"Home\", colour: \"#8e24aa\") { token } }" }).to_string(),
            &[("x-mada-device", token)],
        )
        .await;
    reply.data();
    let events = server.events.read_all(Position::START, 100).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        last.metadata
            .extra
            .get(mada::notify::DEVICE_METADATA)
            .map(String::as_str),
        Some(token)
    );
}

/// A subscriber reads after each wake; a batch committed while it reads must wake
/// its next wait (it once took a fresh snapshot at each wait, and such a batch was
/// lost until the next write: a live list that stayed stale).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_between_two_waits_still_wakes_the_second() {
    use mada::PlannerService;
    let server = TestServer::start().await;
    let planner = &server.planner;
    let mut changes = PlannerService::changes(&**planner);
    let first = planner
        .run(
            "ada",
            mada::Command::CreateCategory {
                name: "A".into(),
                colour: "#000000".into(),
            },
        )
        .await
        .unwrap();
    planner
        .wait_for(first.token, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), changes.next())
            .await
            .unwrap()
    );
    // "Reading": meanwhile another write is applied by every projection.
    let second = planner
        .run(
            "ada",
            mada::Command::CreateCategory {
                name: "B".into(),
                colour: "#000000".into(),
            },
        )
        .await
        .unwrap();
    planner
        .wait_for(second.token, Duration::from_secs(5))
        .await
        .unwrap();
    let woke = tokio::time::timeout(Duration::from_secs(3), changes.next()).await;
    assert_eq!(
        woke.ok(),
        Some(true),
        "the second wait missed a change made before it began"
    );
}
