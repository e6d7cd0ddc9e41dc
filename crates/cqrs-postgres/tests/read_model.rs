//! Read models in PostgreSQL: a batch and its checkpoint commit together, and a
//! projection runner over the real stores resumes where it stopped.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::time::Duration;

use chrono::NaiveDate;
use common::TestDb;
use cqrs_core::{
    DocumentChange, Metadata, Position, ProjectionRunner, ReadModelReader, ReadModelWriter,
    Repository,
};
use mada::domain::{CategoryFact, Goal, GoalAction, GoalCommand, Schedule};
use mada::projections::{Plan, PlanProjection};
use serde_json::json;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

fn put(id: &str, n: u64, position: u64) -> DocumentChange {
    DocumentChange::Put {
        id: id.into(),
        value: json!({ "n": n }),
        position: Position(position),
    }
}

#[tokio::test]
async fn a_failure_in_the_middle_of_a_batch_leaves_neither_documents_nor_checkpoint() {
    let db = TestDb::new(2).await;
    let store = db.read_models();
    store
        .commit("p", vec![put("a", 1, 1), put("b", 1, 1)], Position(1))
        .await
        .unwrap();

    // Make the server refuse one document of the next batch, after others were sent.
    sqlx::query("ALTER TABLE cqrs_documents ADD CONSTRAINT no_poison CHECK (id <> 'poison')")
        .execute(&db.pool)
        .await
        .unwrap();
    let err = store
        .commit(
            "p",
            vec![put("a", 2, 2), put("poison", 2, 2), put("c", 2, 2)],
            Position(2),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, cqrs_core::Error::Backend { .. }), "{err}");

    assert_eq!(
        store.checkpoint("p").await.unwrap(),
        Position(1),
        "the checkpoint did not move"
    );
    assert_eq!(
        store.get("p", "a").await.unwrap().unwrap().value,
        json!({ "n": 1 }),
        "a is as before"
    );
    assert!(
        store.get("p", "c").await.unwrap().is_none(),
        "c was not written"
    );
    db.drop().await;
}

/// The other way round: the documents are sent first and the checkpoint fails.
#[tokio::test]
async fn a_refused_checkpoint_leaves_no_document_of_its_batch() {
    let db = TestDb::new(2).await;
    let store = db.read_models();
    store
        .commit("p", vec![put("a", 1, 1)], Position(1))
        .await
        .unwrap();
    sqlx::query("ALTER TABLE cqrs_checkpoints ADD CONSTRAINT low CHECK (position < 100)")
        .execute(&db.pool)
        .await
        .unwrap();
    let err = store
        .commit("p", vec![put("a", 2, 100), put("b", 2, 100)], Position(100))
        .await
        .unwrap_err();
    assert!(matches!(err, cqrs_core::Error::Backend { .. }), "{err}");
    assert_eq!(store.checkpoint("p").await.unwrap(), Position(1));
    let a = store.get("p", "a").await.unwrap().unwrap();
    assert_eq!((a.value, a.position), (json!({ "n": 1 }), Position(1)));
    assert!(
        store.get("p", "b").await.unwrap().is_none(),
        "b was not written"
    );
    db.drop().await;
}

#[tokio::test]
async fn documents_are_guarded_by_position_and_deletions_leave_tombstones() {
    let db = TestDb::new(2).await;
    let store = db.read_models();
    store
        .commit("p", vec![put("a", 5, 5)], Position(5))
        .await
        .unwrap();
    // A replayed, older change does not overwrite a newer document.
    store
        .commit("p", vec![put("a", 3, 3)], Position(3))
        .await
        .unwrap();
    assert_eq!(
        store.get("p", "a").await.unwrap().unwrap().value,
        json!({ "n": 5 })
    );
    assert_eq!(
        store.checkpoint("p").await.unwrap(),
        Position(5),
        "the checkpoint never goes back"
    );

    store
        .commit(
            "p",
            vec![DocumentChange::Delete {
                id: "a".into(),
                position: Position(6),
            }],
            Position(6),
        )
        .await
        .unwrap();
    assert!(store.get("p", "a").await.unwrap().is_none());
    let many = store
        .get_many("p", &["a".to_owned(), "zz".to_owned()])
        .await
        .unwrap();
    assert_eq!(
        many["a"].value,
        serde_json::Value::Null,
        "the tombstone is visible to the runner"
    );
    assert_eq!(many["a"].position, Position(6));
    assert!(!many.contains_key("zz"));

    store.reset("p").await.unwrap();
    assert_eq!(store.checkpoint("p").await.unwrap(), Position::START);
    assert!(
        store
            .get_many("p", &["a".to_owned()])
            .await
            .unwrap()
            .is_empty()
    );
    db.drop().await;
}

fn d(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

#[tokio::test]
async fn a_runner_over_postgres_reads_its_writes_and_resumes_after_a_restart() {
    let db = TestDb::new(8).await;
    let events = db.store();
    let read = db.read_models();
    let repo = Repository::<Goal, _>::new(events.clone());
    let goal = Uuid::now_v7();
    let create = GoalCommand::new(
        "ada",
        goal,
        GoalAction::Create {
            title: "Swim".into(),
            memo: None,
            category: CategoryFact::Active {
                category_id: Uuid::now_v7(),
                owner: "ada".into(),
            },
            schedule: Schedule::daily(d("2026-11-23"), d("2026-11-27")),
        },
    );
    let complete = |day| GoalCommand::new("ada", goal, GoalAction::Complete { day });

    let plan_of = |value: serde_json::Value| serde_json::from_value::<Plan>(value).unwrap();
    let plans = ProjectionRunner::new(PlanProjection, events.clone(), read.clone())
        .with_batch_size(3)
        .spawn();
    repo.execute(&create, Metadata::new()).await.unwrap();
    let done = repo
        .execute(&complete(d("2026-11-25")), Metadata::new())
        .await
        .unwrap();
    plans
        .wait_for_timeout(done.position.unwrap(), WAIT)
        .await
        .unwrap();
    let plan = plan_of(read.get("plan", "ada").await.unwrap().unwrap().value);
    assert!(plan.today(d("2026-11-25")).items[0].done);
    plans.stop().await.unwrap();

    // Events written while no runner runs are applied by the next one, from the
    // checkpoint, once each.
    let mut last = done.position.unwrap();
    for day in ["2026-11-23", "2026-11-24", "2026-11-26"] {
        last = repo
            .execute(&complete(d(day)), Metadata::new())
            .await
            .unwrap()
            .position
            .unwrap();
    }
    let plans = ProjectionRunner::new(PlanProjection, events.clone(), read.clone()).spawn();
    plans.wait_for_timeout(last, WAIT).await.unwrap();
    let plan = plan_of(read.get("plan", "ada").await.unwrap().unwrap().value);
    let month = plan.month(2026, 11);
    assert_eq!(month.days.values().map(|c| c.done).sum::<u32>(), 4);
    assert_eq!(month.days.values().map(|c| c.scheduled).sum::<u32>(), 5);
    for (day, done) in [
        ("23", true),
        ("24", true),
        ("25", true),
        ("26", true),
        ("27", false),
    ] {
        let list = plan.today(d(&format!("2026-11-{day}")));
        assert_eq!(list.items.len(), 1, "day {day}");
        assert_eq!(list.items[0].done, done, "day {day}");
    }
    assert_eq!(read.checkpoint("plan").await.unwrap(), last);
    plans.stop().await.unwrap();
    db.drop().await;
}
