//! The notifier against the local FCM-compatible server (`cqrs_testkit::fcm`) on
//! loopback, beside its ceiling in the same run: the same FCM client posting the
//! same messages with no bookkeeping (no outbox rows, no claims, no outcomes).
//!
//! Run with `cargo bench -p cqrs-benches --bench notify` (needs
//! `scripts/services.sh up postgres`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use cqrs_benches::pool_in;
use cqrs_postgres::PgReadModelStore;
use cqrs_testkit::fcm::{FakeFcm, ServiceAccount};
use criterion::{Criterion, Throughput};
use mada::notify::clock::ManualClock;
use mada::notify::fcm::{Fcm, Sent};
use mada::notify::outbox::{self, Intent};
use mada::notify::{Notifier, NotifierOptions};
use serde_json::json;

fn message(n: u64) -> serde_json::Value {
    let key = format!("bench:{n}");
    json!({
        "token": format!("device-{}", n % 100),
        "notification": { "title": "Today in MADA", "body": "2 goals left today: Run, Read" },
        "data": { "kind": "reminder", "date": "2026-11-26" },
        "android": { "collapse_key": key, "notification": { "tag": key } },
    })
}

async fn fcm_client(server: &FakeFcm, account: &ServiceAccount) -> Fcm {
    let key = yup_oauth2::parse_service_account_key(&account.key_json).expect("key");
    Fcm::new(key, &server.url, None, Duration::from_secs(10))
        .await
        .expect("client")
}

fn main() {
    let rt = cqrs_benches::runtime();
    let mut criterion = Criterion::default().configure_from_args();
    let schema = cqrs_testkit::unique_name("bench");
    let (server, account, pool) = rt.block_on(async {
        let server = FakeFcm::start("bench").await;
        let account = ServiceAccount::generate(&server.token_uri, "bench");
        server.trust(&account);
        let pool = pool_in(&schema, 8).await;
        cqrs_postgres::migrate(&pool).await.expect("migrate");
        (server, account, pool)
    });
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let notifier = rt.block_on(async {
        let fcm = fcm_client(&server, &account).await;
        let store = PgReadModelStore::new(pool.clone());
        Notifier::new(
            pool.clone(),
            store,
            fcm,
            clock.clone(),
            NotifierOptions::default(),
        )
        .await
        .expect("notifier")
    });
    let raw = rt.block_on(fcm_client(&server, &account));
    let mut next = 0_u64;

    let mut group = criterion.benchmark_group("notify");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(1));
    group.bench_function("raw-fcm-client", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let raw = raw.clone();
            let from = next;
            next += iters;
            async move {
                let started = Instant::now();
                for n in from..from + iters {
                    assert!(matches!(raw.send(&message(n)).await, Sent::Delivered(_)));
                }
                started.elapsed()
            }
        });
    });
    group.bench_function("notifier", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (pool, notifier, clock) = (pool.clone(), &notifier, clock.clone());
            let from = next;
            next += iters;
            async move {
                // The intents as the notifier's own rounds would record them, then
                // rounds until every one is sent and recorded.
                let intents: Vec<Intent> = (from..from + iters)
                    .map(|n| Intent {
                        key: format!("bench:{n}"),
                        user_id: format!("user{}", n % 100),
                        device: format!("device-{}", n % 100),
                        kind: "reminder",
                        message: message(n),
                    })
                    .collect();
                let now = Utc::now();
                clock.set(now);
                let mut tx = pool.begin().await.expect("tx");
                outbox::enqueue(&mut tx, &intents, now)
                    .await
                    .expect("enqueue");
                tx.commit().await.expect("commit");
                let started = Instant::now();
                let mut sent = 0;
                while sent < intents.len() {
                    sent += notifier.round().await.expect("round").sent;
                }
                started.elapsed()
            }
        });
    });
    group.finish();
    rt.block_on(async {
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&pool)
            .await
            .expect("drop");
    });
    criterion.final_summary();
}
