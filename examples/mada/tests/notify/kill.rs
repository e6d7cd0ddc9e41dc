//! The notifier as a process, SIGKILLed mid-send 10 times and restarted: every due
//! reminder reaches FCM, none is lost, and a repeat can only be the one message in
//! flight at a kill — which carries the same collapse key, so the device shows it
//! once.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cqrs_testkit::fcm::Fault;

use crate::harness::{Db, fcm, reminded_user};

const USERS: usize = 60;
const KILLS: usize = 10;

struct Files {
    dir: std::path::PathBuf,
}

impl Files {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(cqrs_testkit::unique_name("notify"));
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn set_clock(&self, now: DateTime<Utc>) {
        // Written then renamed: the notifier never reads half a time.
        let tmp = self.dir.join("clock.tmp");
        std::fs::write(&tmp, now.to_rfc3339()).unwrap();
        std::fs::rename(&tmp, self.dir.join("clock")).unwrap();
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A notifier process, killed when dropped (a failing test leaves none behind).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn notifier(db: &Db, files: &Files, endpoint: &str, health: Option<u16>) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mada"));
    if let Some(port) = health {
        command.args(["--health-listen", &format!("127.0.0.1:{port}")]);
    }
    command
        .args(["notify", "--store", "postgres"])
        .args([
            "--database-url",
            &cqrs_testkit::postgres_url(),
            "--pg-schema",
            &db.schema,
        ])
        .args(["--fcm-endpoint", endpoint, "--notify-tick-ms", "20"])
        .arg("--fcm-credentials")
        .arg(files.dir.join("key.json"))
        .arg("--clock-file")
        .arg(files.dir.join("clock"))
        .env_remove("MADA_FCM_CREDENTIALS_JSON")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map(Running)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_killed_mid_send_ten_times_loses_nothing_and_repeats_only_what_was_in_flight() {
    let db = Db::new().await;
    let planner = db.planner();
    let (server, account) = fcm().await;
    let files = Files::new();
    std::fs::write(files.dir.join("key.json"), &account.key_json).unwrap();
    for u in 0..USERS {
        reminded_user(
            &planner,
            &format!("user{u}"),
            "Europe/Paris",
            &["phone"],
            "2026-11-01",
        )
        .await;
    }
    planner.sync().await.unwrap();
    // 08:00 in Paris; every send takes 120 ms, so the kills land mid-send.
    let mut now: DateTime<Utc> = "2026-11-26T07:00:00Z".parse().unwrap();
    files.set_clock(now);
    server.inject(std::iter::repeat_n(
        Fault::Slow(Duration::from_millis(120)),
        400,
    ));

    let mut kills_mid_send = 0;
    for kill in 0..KILLS {
        let mut child = notifier(&db, &files, &server.url, None);
        let before = server.requests();
        tokio::time::sleep(Duration::from_millis(350 + 97 * (kill as u64 % 5))).await;
        child.0.kill().unwrap(); // SIGKILL
        child.0.wait().unwrap();
        if server.requests() > before {
            kills_mid_send += 1;
        }
        // Past the claim of whatever was being sent when it died (30 s).
        now += chrono::Duration::seconds(31);
        files.set_clock(now);
    }
    assert!(
        kills_mid_send >= KILLS / 2,
        "only {kills_mid_send} kills came while sending"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = notifier(&db, &files, &server.url, Some(port));
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.deliveries_by_key().len() < USERS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let it record the last outcomes.
    let counts = loop {
        let counts = mada::notify::outbox::counts(&db.pool).await.unwrap();
        if counts == [("sent".to_owned(), USERS as i64)] || Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Its health endpoint answers, for Kubernetes' probes.
    let http = mada::http_client::client(Duration::from_secs(5)).unwrap();
    let mut healthy = false;
    for _ in 0..100 {
        let reply = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await;
        if reply.is_ok_and(|r| r.status() == 200) {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(child);
    assert!(healthy, "the notifier's /healthz never answered");

    let by_key = server.deliveries_by_key();
    assert_eq!(by_key.len(), USERS, "every due reminder reached FCM");
    assert_eq!(
        counts,
        [("sent".to_owned(), USERS as i64)],
        "and is recorded as sent"
    );
    let repeats: usize = by_key.values().map(|n| n - 1).sum();
    println!("{kills_mid_send} kills mid-send, {repeats} repeated deliveries (same collapse key)");
    assert!(
        repeats <= kills_mid_send,
        "a repeat needs a kill between FCM's answer and the record"
    );
    for message in server.delivered() {
        let key = message["android"]["collapse_key"].as_str().unwrap();
        assert!(key.starts_with("reminder:user"), "{key}");
        assert_eq!(message["android"]["notification"]["tag"], key);
    }
    drop(planner);
    db.drop_schema().await;
}
