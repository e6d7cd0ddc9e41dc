//! The read models, given events.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

use std::collections::BTreeMap;

use chrono::{NaiveDate, Weekday};
use cqrs_core::testing::ProjectionTest;
use mada::domain::{CategoryEvent, GoalDetails, GoalEvent, Schedule};
use mada::projections::{
    CategoriesProjection, CategoryItem, CategoryList, DayCount, MonthCalendar, Plan,
    PlanProjection, TodayItem, TodayList,
};
use uuid::Uuid;

fn d(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

const GOAL: Uuid = Uuid::from_u128(1);
const CATEGORY: Uuid = Uuid::from_u128(2);

fn details(title: &str) -> GoalDetails {
    GoalDetails {
        title: title.into(),
        category_id: CATEGORY,
        memo: None,
    }
}

/// Mondays and Wednesdays from 28 October to 4 November 2026: two months.
fn schedule() -> Schedule {
    Schedule::weekly(
        d("2026-10-28"),
        d("2026-11-04"),
        [Weekday::Mon, Weekday::Wed],
    )
}

fn created() -> GoalEvent {
    GoalEvent::GoalCreated {
        goal_id: GOAL,
        user_id: "ada".into(),
        details: details("Swim"),
        schedule: schedule(),
    }
}

fn completed(day: &str) -> GoalEvent {
    GoalEvent::GoalCompleted {
        goal_id: GOAL,
        user_id: "ada".into(),
        day: d(day),
    }
}

fn item(title: &str, done: bool) -> TodayItem {
    TodayItem {
        goal_id: GOAL,
        title: title.into(),
        category_id: CATEGORY,
        memo: None,
        done,
    }
}

/// The plan of "ada" after the events so far.
fn plan(test: &ProjectionTest<PlanProjection>) -> Plan {
    test.document("ada").expect("ada's plan")
}

fn list(day: &str, items: Vec<TodayItem>) -> TodayList {
    TodayList {
        user_id: "ada".into(),
        day: d(day),
        items,
    }
}

#[test]
fn today_lists_a_goal_on_each_day_it_is_due() {
    let test =
        ProjectionTest::new(PlanProjection).given("goal-1", [created(), completed("2026-11-02")]);
    let plan = plan(&test);
    assert_eq!(
        plan.today(d("2026-10-28")),
        list("2026-10-28", vec![item("Swim", false)])
    );
    assert_eq!(
        plan.today(d("2026-11-02")),
        list("2026-11-02", vec![item("Swim", true)])
    );
    assert_eq!(plan.today(d("2026-10-29")), list("2026-10-29", vec![]));
}

#[test]
fn today_follows_edits_reschedules_and_deletion() {
    let to = Schedule::daily(d("2026-11-02"), d("2026-11-03"));
    let test = ProjectionTest::new(PlanProjection)
        .given("goal-1", [created(), completed("2026-11-02")])
        .given(
            "goal-1",
            [
                GoalEvent::GoalEdited {
                    goal_id: GOAL,
                    user_id: "ada".into(),
                    details: details("Swim 1 km"),
                    schedule: schedule(),
                },
                GoalEvent::GoalRescheduled {
                    goal_id: GOAL,
                    user_id: "ada".into(),
                    details: details("Swim 1 km"),
                    from: schedule(),
                    to: to.clone(),
                    done_before: vec![d("2026-11-02")],
                },
            ],
        );
    let plan = plan(&test);
    assert!(plan.today(d("2026-10-28")).items.is_empty());
    assert_eq!(
        plan.today(d("2026-11-02")),
        list("2026-11-02", vec![item("Swim 1 km", true)])
    );
    assert_eq!(
        plan.today(d("2026-11-03")),
        list("2026-11-03", vec![item("Swim 1 km", false)])
    );
    let test = test.given(
        "goal-1",
        [GoalEvent::GoalDeleted {
            goal_id: GOAL,
            user_id: "ada".into(),
            schedule: to,
            done: vec![d("2026-11-02")],
        }],
    );
    test.then_expect_no_document("ada");
}

/// "Every Monday and Thursday from now on": nothing is written per day, and any day
/// years ahead is answered from the one plan document.
#[test]
fn an_open_ended_goal_is_due_years_ahead_without_a_document_per_day() {
    let every = GoalEvent::GoalCreated {
        goal_id: GOAL,
        user_id: "ada".into(),
        details: details("Swim"),
        schedule: Schedule::weekly_from(d("2026-11-02"), [Weekday::Mon, Weekday::Thu]),
    };
    let test =
        ProjectionTest::new(PlanProjection).given("goal-1", [every, completed("2029-11-05")]);
    let plan = plan(&test);
    assert_eq!(plan.goals.len(), 1);
    assert_eq!(
        plan.today(d("2029-11-05")),
        list("2029-11-05", vec![item("Swim", true)])
    );
    assert!(plan.today(d("2029-11-06")).items.is_empty(), "a Tuesday");
    assert!(
        plan.today(d("2026-10-29")).items.is_empty(),
        "before it starts"
    );
    // March 2031: Mondays 3, 10, 17, 24, 31 and Thursdays 6, 13, 20, 27.
    let march = plan.month(2031, 3);
    let due: Vec<u32> = march.days.keys().copied().collect();
    assert_eq!(due, [3, 6, 10, 13, 17, 20, 24, 27, 31]);
    assert!(
        march
            .days
            .values()
            .all(|count| count.scheduled == 1 && count.done == 0)
    );
    assert_eq!(
        plan.month(2029, 11).days[&5],
        DayCount {
            scheduled: 1,
            done: 1
        }
    );
}

fn month(year: i32, month: u32, days: &[(u32, u32, u32)]) -> MonthCalendar {
    MonthCalendar {
        user_id: "ada".into(),
        year,
        month,
        days: days
            .iter()
            .map(|&(day, scheduled, done)| (day, DayCount { scheduled, done }))
            .collect::<BTreeMap<_, _>>(),
    }
}

#[test]
fn the_calendar_counts_due_and_done_goals_per_day_across_months() {
    let other = GoalEvent::GoalCreated {
        goal_id: Uuid::from_u128(9),
        user_id: "ada".into(),
        details: details("Read"),
        schedule: Schedule::on(d("2026-11-02")),
    };
    let test = ProjectionTest::new(PlanProjection)
        .given("goal-1", [created(), completed("2026-11-02")])
        .given("goal-9", [other]);
    let plan = plan(&test);
    assert_eq!(plan.month(2026, 10), month(2026, 10, &[(28, 1, 0)]));
    assert_eq!(
        plan.month(2026, 11),
        month(2026, 11, &[(2, 2, 1), (4, 1, 0)])
    );
    assert_eq!(plan.month(2026, 12), month(2026, 12, &[]));
}

#[test]
fn the_calendar_moves_counts_on_reschedule_and_drops_them_on_delete() {
    let to = Schedule::daily(d("2026-11-02"), d("2026-11-03"));
    let test = ProjectionTest::new(PlanProjection)
        .given("goal-1", [created(), completed("2026-11-02")])
        .given(
            "goal-1",
            [GoalEvent::GoalRescheduled {
                goal_id: GOAL,
                user_id: "ada".into(),
                details: details("Swim"),
                from: schedule(),
                to: to.clone(),
                done_before: vec![d("2026-11-02")],
            }],
        );
    let plan = plan(&test);
    assert_eq!(plan.month(2026, 10), month(2026, 10, &[]));
    assert_eq!(
        plan.month(2026, 11),
        month(2026, 11, &[(2, 1, 1), (3, 1, 0)])
    );
    test.given(
        "goal-1",
        [GoalEvent::GoalDeleted {
            goal_id: GOAL,
            user_id: "ada".into(),
            schedule: to,
            done: vec![d("2026-11-02")],
        }],
    )
    .then_expect_no_document("ada");
}

#[test]
fn the_category_list_is_sorted_and_follows_renames_and_deletions() {
    let a = Uuid::from_u128(10);
    let b = Uuid::from_u128(11);
    let created = |id, name: &str| CategoryEvent::CategoryCreated {
        category_id: id,
        user_id: "ada".into(),
        name: name.into(),
        colour: "#000000".parse().unwrap(),
    };
    ProjectionTest::new(CategoriesProjection)
        .given("category-a", [created(a, "Work")])
        .given("category-b", [created(b, "home")])
        .given(
            "category-a",
            [CategoryEvent::CategoryRenamed {
                category_id: a,
                user_id: "ada".into(),
                name: "Admin".into(),
            }],
        )
        .then_expect_document(
            "ada",
            CategoryList {
                user_id: "ada".into(),
                categories: vec![
                    CategoryItem {
                        category_id: a,
                        name: "Admin".into(),
                        colour: "#000000".into(),
                    },
                    CategoryItem {
                        category_id: b,
                        name: "home".into(),
                        colour: "#000000".into(),
                    },
                ],
            },
        )
        .then_expect_no_document("bob");
}
