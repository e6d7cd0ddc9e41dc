//! The goal aggregate's rules, given/when/then.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

use chrono::{NaiveDate, Weekday};
use cqrs_core::testing::AggregateTest;
use mada::domain::{
    CategoryFact, Goal, GoalAction, GoalCommand, GoalDetails, GoalError, GoalEvent, Schedule,
    ScheduleError,
};
use uuid::Uuid;

fn d(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

struct Ids {
    goal: Uuid,
    category: Uuid,
}

fn ids() -> Ids {
    Ids {
        goal: Uuid::from_u128(1),
        category: Uuid::from_u128(2),
    }
}

fn active() -> CategoryFact {
    CategoryFact::Active {
        category_id: ids().category,
        owner: "ada".into(),
    }
}

fn details(title: &str) -> GoalDetails {
    GoalDetails {
        title: title.into(),
        category_id: ids().category,
        memo: None,
    }
}

fn mwf() -> Schedule {
    Schedule::weekly(
        d("2026-11-02"),
        d("2026-11-13"),
        [Weekday::Mon, Weekday::Wed, Weekday::Fri],
    )
}

fn created() -> GoalEvent {
    GoalEvent::GoalCreated {
        goal_id: ids().goal,
        user_id: "ada".into(),
        details: details("Run"),
        schedule: mwf(),
    }
}

fn create(title: &str, category: CategoryFact, schedule: Schedule) -> GoalCommand {
    GoalCommand::new(
        "ada",
        ids().goal,
        GoalAction::Create {
            title: title.into(),
            memo: None,
            category,
            schedule,
        },
    )
}

fn complete(day: &str) -> GoalCommand {
    GoalCommand::new("ada", ids().goal, GoalAction::Complete { day: d(day) })
}

#[test]
fn a_goal_is_created_with_a_trimmed_title() {
    AggregateTest::<Goal>::given_no_events()
        .when(create("  Run ", active(), mwf()))
        .then_expect_events([created()]);
}

#[test]
fn titles_must_be_present_and_short() {
    AggregateTest::<Goal>::given_no_events()
        .when(create(" ", active(), mwf()))
        .then_expect_error(GoalError::EmptyTitle);
    AggregateTest::<Goal>::given_no_events()
        .when(create(&"é".repeat(101), active(), mwf()))
        .then_expect_error(GoalError::TitleTooLong(101));
}

#[test]
fn the_category_must_exist_belong_to_the_user_and_be_live() {
    let category = ids().category;
    AggregateTest::<Goal>::given_no_events()
        .when(create(
            "Run",
            CategoryFact::Missing {
                category_id: category,
            },
            mwf(),
        ))
        .then_expect_error(GoalError::UnknownCategory(category));
    AggregateTest::<Goal>::given_no_events()
        .when(create(
            "Run",
            CategoryFact::Active {
                category_id: category,
                owner: "bob".into(),
            },
            mwf(),
        ))
        .then_expect_error(GoalError::UnknownCategory(category));
    AggregateTest::<Goal>::given_no_events()
        .when(create(
            "Run",
            CategoryFact::Deleted {
                category_id: category,
            },
            mwf(),
        ))
        .then_expect_error(GoalError::CategoryDeleted(category));
}

#[test]
fn the_schedule_must_be_valid() {
    AggregateTest::<Goal>::given_no_events()
        .when(create(
            "Run",
            active(),
            Schedule::daily(d("2026-11-02"), d("2026-11-01")),
        ))
        .then_expect_error_matching(|e| {
            matches!(
                e,
                GoalError::Schedule(ScheduleError::EndsBeforeStart { .. })
            )
        });
}

#[test]
fn a_goal_is_completed_only_on_a_day_it_is_due() {
    AggregateTest::<Goal>::given([created()])
        .when(complete("2026-11-04"))
        .then_expect_events([GoalEvent::GoalCompleted {
            goal_id: ids().goal,
            user_id: "ada".into(),
            day: d("2026-11-04"),
        }]);
    AggregateTest::<Goal>::given([created()])
        .when(complete("2026-11-03"))
        .then_expect_error(GoalError::NotScheduled(d("2026-11-03")));
}

#[test]
fn completing_twice_or_uncompleting_an_open_day_changes_nothing() {
    let done = GoalEvent::GoalCompleted {
        goal_id: ids().goal,
        user_id: "ada".into(),
        day: d("2026-11-04"),
    };
    AggregateTest::<Goal>::given([created(), done.clone()])
        .when(complete("2026-11-04"))
        .then_expect_events([]);
    AggregateTest::<Goal>::given([created()])
        .when(GoalCommand::new(
            "ada",
            ids().goal,
            GoalAction::Uncomplete {
                day: d("2026-11-04"),
            },
        ))
        .then_expect_events([]);
    AggregateTest::<Goal>::given([created(), done])
        .when(GoalCommand::new(
            "ada",
            ids().goal,
            GoalAction::Uncomplete {
                day: d("2026-11-04"),
            },
        ))
        .then_expect_events([GoalEvent::GoalUncompleted {
            goal_id: ids().goal,
            user_id: "ada".into(),
            day: d("2026-11-04"),
        }]);
}

#[test]
fn rescheduling_keeps_completions_on_days_still_due() {
    let done = GoalEvent::GoalCompleted {
        goal_id: ids().goal,
        user_id: "ada".into(),
        day: d("2026-11-04"),
    };
    let to = Schedule::daily(d("2026-11-04"), d("2026-11-05"));
    let state = AggregateTest::<Goal>::given([created(), done])
        .when(GoalCommand::new(
            "ada",
            ids().goal,
            GoalAction::Reschedule {
                schedule: to.clone(),
            },
        ))
        .then_state();
    assert_eq!(state.schedule, Some(to));
    assert_eq!(
        state.done.into_iter().collect::<Vec<_>>(),
        vec![d("2026-11-04")]
    );
}

#[test]
fn a_deleted_goal_refuses_everything() {
    let deleted = GoalEvent::GoalDeleted {
        goal_id: ids().goal,
        user_id: "ada".into(),
        schedule: mwf(),
        done: vec![],
    };
    AggregateTest::<Goal>::given([created(), deleted.clone()])
        .when(complete("2026-11-04"))
        .then_expect_error(GoalError::Deleted);
    AggregateTest::<Goal>::given([created(), deleted])
        .when(GoalCommand::new("ada", ids().goal, GoalAction::Delete))
        .then_expect_error(GoalError::Deleted);
}

#[test]
fn another_users_goal_does_not_exist_for_them() {
    AggregateTest::<Goal>::given([created()])
        .when(GoalCommand::new(
            "bob",
            ids().goal,
            GoalAction::Complete {
                day: d("2026-11-04"),
            },
        ))
        .then_expect_error(GoalError::NotFound);
    AggregateTest::<Goal>::given_no_events()
        .when(complete("2026-11-04"))
        .then_expect_error(GoalError::NotFound);
}

#[test]
fn editing_to_the_same_details_records_nothing() {
    let edit = |title: &str| {
        GoalCommand::new(
            "ada",
            ids().goal,
            GoalAction::Edit {
                title: title.into(),
                memo: None,
                category: active(),
            },
        )
    };
    AggregateTest::<Goal>::given([created()])
        .when(edit("Run"))
        .then_expect_events([]);
    AggregateTest::<Goal>::given([created()])
        .when(edit("Run far"))
        .then_expect_events([GoalEvent::GoalEdited {
            goal_id: ids().goal,
            user_id: "ada".into(),
            details: details("Run far"),
            schedule: mwf(),
        }]);
}
