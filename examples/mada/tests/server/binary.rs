//! The `mada` binary: `cargo run -p mada` serves the demo data in memory, prints the
//! list, the URL and a token; SIGTERM drains requests in flight; `mada token`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::harness::Client;

/// A `mada` process whose start-up lines were read.
pub struct Served {
    pub child: Child,
    pub url: String,
    pub token: Option<String>,
    pub printed: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `mada` with `args` on a free port and reads its start-up lines, up to
/// the demo token's if `demo` (the in-memory default prints one).
pub fn serve(args: &[&str], envs: &[(&str, &str)], demo: bool) -> Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mada"));
    command
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("MADA_STORE")
        .env_remove("MADA_JWT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (name, value) in envs {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut printed, mut url, mut token) = (String::new(), None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if let Some(rest) = line.strip_prefix("MADA serves on ") {
            url = Some(rest.split('/').take(3).collect::<Vec<_>>().join("/"));
        }
        if line.trim_start().starts_with("token for ") {
            token = line.rsplit(' ').next().map(str::to_owned);
        }
        let last = if demo {
            "  open http"
        } else {
            "  GraphQL: POST"
        };
        if line.starts_with(last) {
            break;
        }
    }
    // Keep draining stdout so the process never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served {
        child,
        url: url.unwrap_or_else(|| panic!("no URL printed:\n{printed}")),
        token,
        printed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_command_serves_the_demo_data_in_memory() {
    let served = serve(&["--today", "2026-11-25", "--user", "bea"], &[], true);
    assert!(
        served
            .printed
            .contains("Today, Wednesday 25 November 2026 (bea)"),
        "{}",
        served.printed
    );
    assert!(served.printed.contains("2 of 4 done"), "{}", served.printed);
    assert!(
        served.printed.contains("open http://"),
        "{}",
        served.printed
    );
    let client = Client::new(&served.url, served.token.clone());
    let reply = client
        .gql(
            "{ me today(date: \"2026-11-25\") { done total } }",
            json!({}),
        )
        .await;
    assert_eq!(
        reply.data(),
        &json!({ "me": "bea", "today": { "done": 2, "total": 4 } })
    );
    // The page is served from the binary.
    let http = mada::http_client::client(Duration::from_secs(30)).unwrap();
    let page = http.get(format!("{}/", served.url)).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("<title>MADA</title>"));
    let script = http
        .get(format!("{}/app.js", served.url))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_request_in_flight_then_exits() {
    let mut served = serve(
        &["serve", "--read-wait-ms", "1500"],
        &[(
            "MADA_JWT_SECRET",
            "a secret of thirty-two bytes or more, for tests",
        )],
        false,
    );
    assert!(
        !served.printed.contains("token for"),
        "no token printed with a real secret"
    );
    let token = {
        let output = Command::new(env!("CARGO_BIN_EXE_mada"))
            .args(["token", "--user", "ann"])
            .env(
                "MADA_JWT_SECRET",
                "a secret of thirty-two bytes or more, for tests",
            )
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let client = Client::new(&served.url, Some(token));
    assert_eq!(client.gql("{ me }", json!({})).await.data()["me"], "ann");
    // A request that waits 1.5 s for a token, then SIGTERM while it waits.
    let waiting = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .gql(
                    "{ today(date: \"2026-11-25\", after: \"99999\") { total } }",
                    json!({}),
                )
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = served.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let reply = waiting.await.unwrap();
    assert_eq!(
        reply.code(),
        "NOT_CAUGHT_UP",
        "the request in flight got its answer"
    );
    let status = tokio::task::spawn_blocking(move || served.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn token_needs_a_secret_and_serve_on_postgres_needs_a_key() {
    let output = Command::new(env!("CARGO_BIN_EXE_mada"))
        .args(["token"])
        .env_remove("MADA_JWT_SECRET")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--jwt-secret"));
    let output = Command::new(env!("CARGO_BIN_EXE_mada"))
        .args(["serve", "--store", "postgres", "--listen", "127.0.0.1:0"])
        .env_remove("MADA_JWT_SECRET")
        .env_remove("MADA_JWKS_URL")
        .env_remove("MADA_JWT_PUBLIC_KEY")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--jwt-secret, --jwt-public-key or --jwks-url"),
        "{stderr}"
    );
}
