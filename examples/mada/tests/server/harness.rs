//! A server on loopback over the in-memory stores, and clients for it.

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{MemoryEventStore, MemoryReadModelStore};
use futures::{SinkExt, StreamExt};
use mada::server::auth::{Authenticator, hs256_token};
use mada::server::{Gauges, ServerConfig};
use mada::{Planner, PlannerOptions, PlannerService, ReadStores};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Message, http::HeaderValue};

/// Held for the whole of each test that runs many processes under load (the
/// fail-over drill, the roles, the kills, the soak), so that no two of them share
/// this 2-core machine: each measures or waits on timing that another's load would
/// starve.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub type MemoryPlanner = Planner<MemoryEventStore, MemoryReadModelStore>;

/// A server on a free loopback port.
pub struct TestServer {
    pub url: String,
    pub events: MemoryEventStore,
    pub planner: Arc<MemoryPlanner>,
    secret: Vec<u8>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub const SECRET: &[u8] = b"a test secret of at least thirty-two bytes";

impl TestServer {
    /// HS256 with [`SECRET`], default limits.
    pub async fn start() -> Self {
        Self::start_with(Authenticator::hs256(SECRET), ServerConfig::default()).await
    }

    pub async fn start_with(auth: Authenticator, config: ServerConfig) -> Self {
        let events = MemoryEventStore::new();
        let read = ReadStores::all(MemoryReadModelStore::new());
        let options = PlannerOptions {
            consistency: mada::Consistency::Eventual,
            ..PlannerOptions::default()
        };
        let planner = Arc::new(Planner::start(events.clone(), read, options));
        let service: Arc<dyn PlannerService> = planner.clone();
        let router = mada::server::router(service, auth, config, Gauges::default()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let never = std::future::pending();
            mada::server::serve(listener, router, never, Duration::from_secs(1))
                .await
                .unwrap();
        });
        Self {
            url,
            events,
            planner,
            secret: SECRET.to_vec(),
            task,
        }
    }

    /// A valid token for `user`.
    pub fn token(&self, user: &str) -> String {
        hs256_token(&self.secret, user, Duration::from_secs(600)).unwrap()
    }

    /// A client signed in as `user`.
    pub fn client(&self, user: &str) -> Client {
        Client::new(&self.url, Some(self.token(user)))
    }
}

/// Posts GraphQL requests.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    pub url: String,
    pub token: Option<String>,
}

/// A reply: HTTP status and JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub request_id: Option<String>,
}

impl Reply {
    /// The `data`, asserting there is no error.
    pub fn data(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {}",
            self.body
        );
        &self.body["data"]
    }

    /// The first error's code.
    pub fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {}", self.body))
    }

    /// The first error's message.
    pub fn message(&self) -> &str {
        self.body["errors"][0]["message"].as_str().unwrap()
    }
}

impl Client {
    pub fn new(url: &str, token: Option<String>) -> Self {
        Self {
            http: mada::http_client::client(std::time::Duration::from_secs(30)).unwrap(),
            url: url.to_owned(),
            token,
        }
    }

    /// Posts a raw body.
    pub async fn post_raw(
        &self,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        Reply {
            status,
            body,
            request_id,
        }
    }

    pub async fn gql(&self, query: &str, variables: Value) -> Reply {
        let body = json!({ "query": query, "variables": variables }).to_string();
        self.post_raw(body, &[]).await
    }

    /// Creates a category; returns its id.
    pub async fn category(&self, name: &str) -> String {
        let reply = self
            .gql(
                "mutation($n: String!) { createCategory(name: $n, colour: \"#2e7d32\") { id token } }",
                json!({ "n": name }),
            )
            .await;
        reply.data()["createCategory"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates a goal due every day from `start` in `category`; returns its id and
    /// the token.
    pub async fn goal(&self, title: &str, category: &str, start: &str) -> (String, String) {
        let reply = self
            .gql(
                "mutation($g: NewGoalInput!) { createGoal(goal: $g) { id token } }",
                json!({ "g": { "title": title, "categoryId": category, "schedule": { "start": start } } }),
            )
            .await;
        let written = &reply.data()["createGoal"];
        (
            written["id"].as_str().unwrap().to_owned(),
            written["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Today's list for `date`, after `token`.
    pub async fn today(&self, date: &str, after: Option<&str>) -> Value {
        let reply = self
            .gql(
                "query($d: Date!, $a: Token) { today(date: $d, after: $a) { date done total items { goalId title done category { id name } } } }",
                json!({ "d": date, "a": after }),
            )
            .await;
        reply.data()["today"].clone()
    }
}

impl Client {
    /// Marks `goal` done on `date`; returns the mutation's token.
    pub async fn complete(&self, goal: &str, date: &str) -> String {
        let written = self
            .gql(
                "mutation($g: ID!, $d: Date!) { completeGoal(id: $g, date: $d) { token } }",
                json!({ "g": goal, "d": date }),
            )
            .await;
        written.data()["completeGoal"]["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// How many completions November 2026 shows, read after `token`.
    pub async fn done_in_november(&self, token: &str) -> i64 {
        let read = self
            .gql(
                "query($a: Token) { calendar(month: \"2026-11\", after: $a) { days { done } } }",
                json!({ "a": token }),
            )
            .await;
        read.data()["calendar"]["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["done"].as_i64().unwrap())
            .sum()
    }
}

/// A graphql-transport-ws connection.
pub struct Socket {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// What the server said on a socket.
#[derive(Debug)]
pub enum Said {
    Message(Value),
    Closed(String),
}

impl Socket {
    /// Connects and sends `connection_init` with `payload`.
    pub async fn connect(url: &str, payload: Value) -> Self {
        let ws = url.replace("http://", "ws://") + "/graphql/ws";
        let mut request = ws.into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        let (mut stream, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let init = json!({ "type": "connection_init", "payload": payload });
        stream.send(Message::text(init.to_string())).await.unwrap();
        Self { stream }
    }

    /// Connects as the bearer of `token` and waits for the acknowledgement.
    pub async fn signed_in(url: &str, token: &str) -> Self {
        let mut socket =
            Self::connect(url, json!({ "authorization": format!("Bearer {token}") })).await;
        match socket.next(Duration::from_secs(5)).await {
            Some(Said::Message(m)) if m["type"] == "connection_ack" => socket,
            other => panic!("no connection_ack: {other:?}"),
        }
    }

    /// Subscribes to today's list for `date` under `id`.
    pub async fn subscribe_today(&mut self, id: &str, date: &str) {
        let message = json!({
            "id": id,
            "type": "subscribe",
            "payload": {
                "query": "subscription($d: Date!) { today(date: $d) { date done total items { goalId title done } } }",
                "variables": { "d": date },
            },
        });
        self.stream
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }

    /// The next thing the server says within `wait`, answering pings.
    pub async fn next(&mut self, wait: Duration) -> Option<Said> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()?;
            match message {
                None => return Some(Said::Closed(String::new())),
                Some(Err(e)) => return Some(Said::Closed(e.to_string())),
                Some(Ok(Message::Close(frame))) => {
                    return Some(Said::Closed(
                        frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    ));
                }
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    if value["type"] == "ping" {
                        let pong = json!({ "type": "pong" }).to_string();
                        self.stream.send(Message::text(pong)).await.unwrap();
                        continue;
                    }
                    return Some(Said::Message(value));
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next `today` list pushed within `wait`.
    pub async fn next_today(&mut self, wait: Duration) -> Option<Value> {
        match self.next(wait).await? {
            Said::Message(m) if m["type"] == "next" => Some(m["payload"]["data"]["today"].clone()),
            other => panic!("expected a pushed list, got {other:?}"),
        }
    }
}
