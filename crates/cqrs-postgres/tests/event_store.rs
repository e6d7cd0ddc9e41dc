//! The event store against a real PostgreSQL: appends, conflicts under concurrent
//! writers, idempotent commands, snapshots, upcasting on load.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use chrono::NaiveDate;
use common::TestDb;
use cqrs_core::{
    AppendRequest, CommandLog, Error, Event, EventAppender, ExpectedVersion, LogReader, Metadata,
    NewEvent, RawEvent, Repository, SnapshotPolicy, SnapshotStore, StreamId, StreamReader, Version,
};
use mada::domain::{CategoryFact, Goal, GoalAction, GoalCommand, Schedule};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

fn raw(event_type: &str, payload: serde_json::Value) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event: RawEvent {
            event_type: event_type.into(),
            schema_version: 1,
            payload,
        },
        metadata: Metadata::new().with_user("ada").with("source", "test"),
    }
}

#[tokio::test]
async fn appends_and_reads_back_streams_and_the_log() {
    let db = TestDb::new(4).await;
    let store = db.store();
    let first = store
        .append(AppendRequest::new(
            "s-1",
            ExpectedVersion::NoStream,
            vec![raw("A", json!({"n": 1})), raw("B", json!(null))],
        ))
        .await
        .unwrap();
    assert_eq!(
        (first.previous_version, first.version),
        (Version(0), Version(2))
    );
    let second = store
        .append(AppendRequest::new(
            "s-2",
            ExpectedVersion::Any,
            vec![raw("A", json!({"n": 2}))],
        ))
        .await
        .unwrap();
    assert!(
        second.position > first.position,
        "a later append has a later position"
    );

    let s1 = store
        .read_stream(&StreamId::new("s-1"), Version::INITIAL, usize::MAX)
        .await
        .unwrap();
    assert_eq!(s1.len(), 2);
    assert_eq!(s1[0].event.payload, json!({"n": 1}));
    assert_eq!(s1[1].event.payload, json!(null));
    assert_eq!(s1[0].metadata.extra["source"], "test");
    assert_eq!(s1[1].position, first.position.unwrap());
    assert_eq!(
        store
            .read_stream(&StreamId::new("s-1"), Version(1), usize::MAX)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .read_stream(&StreamId::new("nope"), Version::INITIAL, usize::MAX)
            .await
            .unwrap()
            .is_empty()
    );

    let all = common::settled_log(&store, &db.pool).await;
    assert_eq!(
        all.iter().map(|e| e.stream_id.as_str()).collect::<Vec<_>>(),
        ["s-1", "s-1", "s-2"]
    );
    assert!(store.head().await.unwrap() >= second.position.unwrap());
    assert_eq!(
        store.read_all(all[0].position, 1).await.unwrap()[0].event_id,
        all[1].event_id
    );
    db.drop().await;
}

#[tokio::test]
async fn a_wrong_expected_version_is_a_typed_conflict_and_writes_nothing() {
    let db = TestDb::new(4).await;
    let store = db.store();
    store
        .append(AppendRequest::new(
            "s",
            ExpectedVersion::NoStream,
            vec![raw("A", json!({}))],
        ))
        .await
        .unwrap();
    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(Version(0)),
        ExpectedVersion::Exact(Version(5)),
    ] {
        let err = store
            .append(AppendRequest::new("s", expected, vec![raw("B", json!({}))]))
            .await
            .unwrap_err();
        match err {
            Error::Conflict {
                expected: e,
                actual,
                ..
            } => {
                assert_eq!(e, expected);
                assert_eq!(actual, Version(1));
            }
            other => panic!("expected a conflict, got {other}"),
        }
    }
    assert_eq!(
        store
            .read_stream(&StreamId::new("s"), Version::INITIAL, usize::MAX)
            .await
            .unwrap()
            .len(),
        1
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_to_one_stream_conflict_and_lose_nothing() {
    const WRITERS: usize = 24;
    let db = TestDb::new(WRITERS as u32).await;
    common::assert_racing_writers_lose_nothing(&db.store(), "shared", WRITERS).await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_id_is_appended_once_even_when_copies_race() {
    let db = TestDb::new(8).await;
    let store = db.store();
    let command = Uuid::now_v7();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let request =
                    AppendRequest::new("s", ExpectedVersion::Any, vec![raw("A", json!({}))])
                        .with_command_id(command);
                store.append(request).await.unwrap()
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert_eq!(results.iter().filter(|r| !r.already_handled).count(), 1);
    assert!(
        results
            .iter()
            .all(|r| r.version == Version(1) && r.position == results[0].position)
    );
    assert_eq!(
        store
            .read_stream(&StreamId::new("s"), Version::INITIAL, usize::MAX)
            .await
            .unwrap()
            .len(),
        1
    );
    let recorded = store.handled_command(command).await.unwrap().unwrap();
    assert_eq!(
        (recorded.previous_version, recorded.version),
        (Version(0), Version(1))
    );
    assert!(
        store
            .handled_command(Uuid::now_v7())
            .await
            .unwrap()
            .is_none()
    );
    db.drop().await;
}

#[tokio::test]
async fn an_append_inside_a_transaction_that_already_wrote_is_refused() {
    let db = TestDb::new(2).await;
    let mut tx = db.pool.begin().await.unwrap();
    sqlx::query("CREATE TEMP TABLE scratch (x int)")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("INSERT INTO scratch VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query("SELECT * FROM cqrs_append('s', -1, NULL, ARRAY[gen_random_uuid()], ARRAY['A'], ARRAY[1], ARRAY['{}'::jsonb], ARRAY['{}'::jsonb])")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("first write of its transaction"),
        "{err}"
    );
    drop(tx);
    db.drop().await;
}

fn d(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

#[tokio::test]
async fn snapshots_make_a_long_stream_load_like_a_short_one() {
    let db = TestDb::new(4).await;
    let store = db.store();
    let repo = Repository::<Goal, _>::new(store.clone()).with_snapshots(SnapshotPolicy::Every(25));
    let goal = Uuid::now_v7();
    let category = Uuid::now_v7();
    repo.execute(
        &GoalCommand::new(
            "ada",
            goal,
            GoalAction::Create {
                title: "Read".into(),
                memo: None,
                category: CategoryFact::Active {
                    category_id: category,
                    owner: "ada".into(),
                },
                schedule: Schedule::daily(d("2026-11-01"), d("2026-11-30")),
            },
        ),
        Metadata::new(),
    )
    .await
    .unwrap();
    for i in 0..60 {
        let day = d("2026-11-01") + chrono::Duration::days(i % 30);
        let command = if i < 30 {
            GoalCommand::new("ada", goal, GoalAction::Complete { day })
        } else {
            GoalCommand::new("ada", goal, GoalAction::Uncomplete { day })
        };
        repo.execute(&command, Metadata::new()).await.unwrap();
    }
    let snapshot = store
        .load_snapshot(&StreamId::new(format!("goal-{goal}")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snapshot.version, Version(50));
    let loaded = repo.load(&goal.to_string()).await.unwrap();
    assert_eq!(loaded.version, Version(61));
    assert!(loaded.state.done.is_empty());
    let replayed = Repository::<Goal, _>::new(store.clone())
        .load(&goal.to_string())
        .await
        .unwrap();
    assert_eq!(replayed, loaded, "snapshot + tail equals a full replay");
    db.drop().await;
}

/// An event whose first schema stored minutes, the second seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(upcast = upcast_timer)]
enum TimerEvent {
    #[event(version = 2)]
    Set { seconds: u64 },
}

fn upcast_timer(mut raw: RawEvent) -> Result<RawEvent, Error> {
    if raw.schema_version == 1 {
        let minutes = raw.payload["minutes"]
            .as_u64()
            .ok_or_else(|| Error::codec("timer.Set", "v1 without minutes"))?;
        raw.payload = json!({ "seconds": minutes * 60 });
        raw.schema_version = 2;
    }
    Ok(raw)
}

#[tokio::test]
async fn old_schema_versions_are_upcast_when_loaded() {
    let db = TestDb::new(2).await;
    let store = db.store();
    let old = raw("timer.Set", json!({ "minutes": 3 }));
    let new = NewEvent::encode(&TimerEvent::Set { seconds: 10 }, Metadata::new()).unwrap();
    store
        .append(AppendRequest::new(
            "timer-1",
            ExpectedVersion::NoStream,
            vec![old, new],
        ))
        .await
        .unwrap();
    let events: Vec<TimerEvent> = store
        .read_stream(&StreamId::new("timer-1"), Version::INITIAL, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.decode::<TimerEvent>().unwrap().event)
        .collect();
    assert_eq!(
        events,
        vec![
            TimerEvent::Set { seconds: 180 },
            TimerEvent::Set { seconds: 10 }
        ]
    );
    let stored: i32 =
        sqlx::query_scalar("SELECT schema_version FROM cqrs_events WHERE version = 1")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(stored, 1, "the stored event is left as it was");
    db.drop().await;
}
