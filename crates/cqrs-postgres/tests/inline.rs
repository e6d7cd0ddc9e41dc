//! Inline projections: documents written in the append's transaction.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use chrono::NaiveDate;
use common::TestDb;
use cqrs_core::{
    CommandError, Metadata, ProjectionRunner, ReadModelReader, Repository, StreamId, StreamReader,
    Version,
};
use mada::domain::{CategoryFact, Goal, GoalAction, GoalCommand, Schedule};
use mada::projections::{Plan, PlanProjection};
use uuid::Uuid;

fn d(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn create(goal: Uuid) -> GoalCommand {
    GoalCommand::new(
        "ada",
        goal,
        GoalAction::Create {
            title: "Stretch".into(),
            memo: None,
            category: CategoryFact::Active {
                category_id: Uuid::from_u128(1),
                owner: "ada".into(),
            },
            schedule: Schedule::daily(d("2026-11-01"), d("2026-11-30")),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_update_one_inline_document_without_losing_a_change() {
    const GOALS: usize = 16;
    let db = TestDb::new(GOALS as u32 + 4).await;
    let store = db.store().with_inline_projection(PlanProjection);
    let repo = Repository::<Goal, _>::new(store.clone());

    // Sixteen goals of one user, written at once: every append changes the same
    // month document.
    let tasks: Vec<_> = (0..GOALS)
        .map(|i| {
            let repo = repo.clone();
            tokio::spawn(async move {
                let goal = Uuid::now_v7();
                repo.execute(&create(goal), Metadata::new()).await.unwrap();
                let day = d("2026-11-01") + chrono::Duration::days(i as i64);
                repo.execute(
                    &GoalCommand::new("ada", goal, GoalAction::Complete { day }),
                    Metadata::new(),
                )
                .await
                .unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    // No runner ran: the inline document is already complete, and equals what a
    // runner builds from the same events.
    let read = db.read_models();
    let plan = |value: serde_json::Value| serde_json::from_value::<Plan>(value).unwrap();
    let inline = plan(read.get("plan", "ada").await.unwrap().unwrap().value);
    let month = inline.month(2026, 11);
    assert_eq!(month.days[&1].scheduled, GOALS as u32);
    let done: u32 = month.days.values().map(|count| count.done).sum();
    assert_eq!(done, GOALS as u32);

    let head = common::last_position(&db.pool).await;
    let runner = ProjectionRunner::new(PlanProjection, db.store(), read.clone())
        .with_name("plan_rebuilt")
        .spawn();
    runner.wait_for(head).await.unwrap();
    runner.stop().await.unwrap();
    // The same plan (goals in the order of their positions there, of their commits
    // inline: compared by what they say, not by order).
    let rebuilt = plan(
        read.get("plan_rebuilt", "ada")
            .await
            .unwrap()
            .unwrap()
            .value,
    );
    assert_eq!(rebuilt.month(2026, 11), month);
    let goals = |p: &Plan| {
        let mut goals = p.goals.clone();
        goals.sort_by_key(|g| g.goal_id);
        goals
    };
    assert_eq!(goals(&rebuilt), goals(&inline));
    db.drop().await;
}

#[tokio::test]
async fn when_the_inline_projection_fails_the_events_are_not_stored_either() {
    let db = TestDb::new(4).await;
    let store = db.store().with_inline_projection(PlanProjection);
    let repo = Repository::<Goal, _>::new(store.clone());
    sqlx::query("ALTER TABLE cqrs_documents ADD CONSTRAINT no_plan CHECK (projection <> 'plan')")
        .execute(&db.pool)
        .await
        .unwrap();
    let goal = Uuid::now_v7();
    let err = repo
        .execute(&create(goal), Metadata::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, CommandError::Store(cqrs_core::Error::Backend { .. })),
        "{err:?}"
    );
    let events = store
        .read_stream(
            &StreamId::new(format!("goal-{goal}")),
            Version::INITIAL,
            usize::MAX,
        )
        .await
        .unwrap();
    assert!(
        events.is_empty(),
        "the append rolled back with the read model"
    );
    db.drop().await;
}
