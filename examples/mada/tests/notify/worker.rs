//! The notifier's rounds, in process, with a clock the test sets: reminders at each
//! user's 08:00 (and not when stale or nothing is left), cross-device messages to
//! the other devices only, a device FCM forgot dropped, two replicas sending once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cqrs_core::Metadata;
use mada::Command;
use mada::notify::NotifierOptions;
use mada::notify::clock::ManualClock;
use serde_json::Value;

use crate::harness::{Db, fcm, notifier, reminded_user};

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn kinds(messages: &[Value], kind: &str) -> Vec<(String, String)> {
    messages
        .iter()
        .filter(|m| m["data"]["kind"] == kind)
        .map(|m| {
            (
                m["token"].as_str().unwrap().to_owned(),
                m["data"]["date"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_come_at_each_users_eight_oclock_and_changes_reach_the_other_devices() {
    let db = Db::new().await;
    let planner = db.planner();
    let (server, account) = fcm().await;
    let clock = Arc::new(ManualClock::new(utc("2026-03-07T12:00:00Z")));
    let notifier = notifier(
        &db,
        &server,
        &account,
        clock.clone(),
        NotifierOptions::default(),
    )
    .await;
    let mut goals = Vec::new();
    for (user, tz) in [("seo", "Asia/Seoul"), ("lax", "America/Los_Angeles")] {
        goals.push(reminded_user(&planner, user, tz, &["phone", "tablet"], "2026-03-01").await);
    }
    planner.sync().await.unwrap();

    // 07:59 in Seoul on 8 March: nothing. (Los Angeles' 7 March reminder, due at
    // 16:00 UTC, would be 7 hours late at 23:00: stale, skipped.)
    clock.set(utc("2026-03-07T22:59:00Z"));
    notifier.round().await.unwrap();
    assert!(server.delivered().is_empty());
    clock.set(utc("2026-03-07T23:00:00Z"));
    let round = notifier.round().await.unwrap();
    assert!(round.leader);
    let reminders = kinds(&server.delivered(), "reminder");
    assert_eq!(
        reminders,
        [
            ("seo-phone".into(), "2026-03-08".into()),
            ("seo-tablet".into(), "2026-03-08".into())
        ],
        "Seoul's 08:00; nothing stale for Los Angeles"
    );
    let first = &server.delivered()[0];
    assert_eq!(
        first["notification"]["body"],
        "1 goal left today: Water the plants"
    );
    // Another round at the same time sends nothing more.
    notifier.round().await.unwrap();
    assert_eq!(server.delivered().len(), 2);

    // Los Angeles switches to daylight time on 8 March: its 08:00 is 15:00 UTC.
    server.unregister("lax-tablet");
    clock.set(utc("2026-03-08T14:59:00Z"));
    notifier.round().await.unwrap();
    assert_eq!(server.delivered().len(), 2);
    clock.set(utc("2026-03-08T15:00:00Z"));
    notifier.round().await.unwrap();
    let reminders = kinds(&server.delivered(), "reminder");
    assert_eq!(reminders[2..], [("lax-phone".into(), "2026-03-08".into())]);
    // The tablet FCM forgot was dropped through the write model...
    notifier.round().await.unwrap();
    let settings = planner.settings("lax").await.unwrap();
    assert!(!settings.devices.contains("lax-tablet"), "{settings:?}");
    assert!(settings.devices.contains("lax-phone"));

    // Seoul's phone completes 9 March's goal: the tablet is told, the phone is not.
    let metadata = Metadata::new().with(mada::notify::DEVICE_METADATA, "seo-phone");
    let day = "2026-03-09".parse().unwrap();
    let command = Command::CompleteGoal {
        goal_id: goals[0],
        day,
    };
    planner.run_with("seo", command, metadata).await.unwrap();
    planner.sync().await.unwrap();
    notifier.round().await.unwrap();
    let syncs = kinds(&server.delivered(), "goal_changed");
    assert_eq!(syncs, [("seo-tablet".into(), "2026-03-09".into())]);
    // ...and with nothing left on 9 March, Seoul gets no reminder at its 08:00.
    clock.set(utc("2026-03-08T23:00:00Z"));
    notifier.round().await.unwrap();
    let late = kinds(&server.delivered(), "reminder");
    assert!(
        late.iter().all(|(_, date)| date != "2026-03-09"),
        "{late:?}"
    );

    // Every message carries its key as its collapse key, and no key came twice.
    assert!(server.deliveries_by_key().values().all(|n| *n == 1));
    drop(planner);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_send_a_notification_twice() {
    let db = Db::new().await;
    let planner = db.planner();
    let (server, account) = fcm().await;
    let clock = Arc::new(ManualClock::new(utc("2026-11-26T07:00:00Z")));
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let options = NotifierOptions {
            lease_ttl: Duration::from_millis(600),
            ..NotifierOptions::default()
        };
        replicas.push(Arc::new(
            notifier(&db, &server, &account, clock.clone(), options).await,
        ));
    }
    for u in 0..20 {
        reminded_user(
            &planner,
            &format!("user{u}"),
            "Europe/Paris",
            &["a", "b"],
            "2026-11-01",
        )
        .await;
    }
    planner.sync().await.unwrap();
    clock.set(utc("2026-11-26T07:00:00Z")); // 08:00 in Paris
    let tasks: Vec<_> = replicas
        .iter()
        .map(|r| {
            let r = Arc::clone(r);
            tokio::spawn(async move {
                let mut led = 0;
                for _ in 0..10 {
                    if r.round().await.unwrap().leader {
                        led += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                led
            })
        })
        .collect();
    let mut leaders = 0;
    for task in tasks {
        if task.await.unwrap() > 0 {
            leaders += 1;
        }
    }
    assert_eq!(leaders, 1, "one replica held the lease");
    let by_key = server.deliveries_by_key();
    assert_eq!(by_key.len(), 40, "every user's two devices reminded");
    assert!(by_key.values().all(|n| *n == 1), "{by_key:?}");
    assert_eq!(server.requests(), 40, "and no request was made twice");
    drop(planner);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_and_failing_fcm_is_retried_when_it_says_and_a_bad_message_is_not() {
    let db = Db::new().await;
    let planner = db.planner();
    let (server, account) = fcm().await;
    let start = utc("2026-11-26T07:00:00Z");
    let clock = Arc::new(ManualClock::new(start));
    let notifier = notifier(
        &db,
        &server,
        &account,
        clock.clone(),
        NotifierOptions::default(),
    )
    .await;
    for user in ["ann", "bob"] {
        reminded_user(&planner, user, "Europe/Paris", &["phone"], "2026-11-01").await;
    }
    planner.sync().await.unwrap();

    // The first send: 429 with Retry-After 120. The second: a 400, a dead letter.
    server.inject([
        cqrs_testkit::fcm::Fault::TooMany(120),
        cqrs_testkit::fcm::Fault::BadRequest,
    ]);
    notifier.round().await.unwrap();
    assert!(server.delivered().is_empty());
    let states = mada::notify::outbox::counts(&db.pool).await.unwrap();
    assert_eq!(states, [("dead".to_owned(), 1), ("pending".to_owned(), 1)]);
    clock.set(start + chrono::Duration::seconds(119));
    notifier.round().await.unwrap();
    assert!(server.delivered().is_empty(), "not before Retry-After");
    assert_eq!(server.requests(), 2);
    // Then a 500: tried again after the backoff (2 s after a second attempt).
    server.inject([cqrs_testkit::fcm::Fault::ServerError]);
    clock.set(start + chrono::Duration::seconds(121));
    notifier.round().await.unwrap();
    assert!(server.delivered().is_empty());
    assert_eq!(server.requests(), 3);
    clock.set(start + chrono::Duration::seconds(126));
    notifier.round().await.unwrap();
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1);
    let dead: String =
        sqlx::query_scalar("SELECT device FROM mada_notifications WHERE state = 'dead'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_ne!(
        delivered[0]["token"].as_str(),
        Some(dead.as_str()),
        "the busy one was delivered"
    );
    // The dead letter was never retried.
    assert_eq!(server.requests(), 4);
    let states = mada::notify::outbox::counts(&db.pool).await.unwrap();
    assert_eq!(states, [("dead".to_owned(), 1), ("sent".to_owned(), 1)]);
    drop(planner);
    db.drop_schema().await;
}
