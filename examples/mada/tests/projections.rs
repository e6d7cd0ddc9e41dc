//! The read models, given events.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

use std::collections::BTreeMap;

use chrono::{NaiveDate, Weekday};
use cqrs_core::testing::ProjectionTest;
use mada::domain::{CategoryEvent, GoalDetails, GoalEvent, Schedule};
use mada::projections::{
    CalendarProjection, CategoriesProjection, CategoryItem, CategoryList, DayCount, MonthCalendar,
    TodayItem, TodayList, TodayProjection,
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

#[test]
fn today_lists_a_goal_on_each_day_it_is_due() {
    let test =
        ProjectionTest::new(TodayProjection).given("goal-1", [created(), completed("2026-11-02")]);
    test.then_expect_document(
        "ada/2026-10-28",
        TodayList {
            user_id: "ada".into(),
            day: d("2026-10-28"),
            items: vec![item("Swim", false)],
        },
    )
    .then_expect_document(
        "ada/2026-11-02",
        TodayList {
            user_id: "ada".into(),
            day: d("2026-11-02"),
            items: vec![item("Swim", true)],
        },
    )
    .then_expect_no_document("ada/2026-10-29");
}

#[test]
fn today_follows_edits_reschedules_and_deletion() {
    let to = Schedule::daily(d("2026-11-02"), d("2026-11-03"));
    let test = ProjectionTest::new(TodayProjection)
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
    test.then_expect_no_document("ada/2026-10-28")
        .then_expect_document(
            "ada/2026-11-02",
            TodayList {
                user_id: "ada".into(),
                day: d("2026-11-02"),
                items: vec![item("Swim 1 km", true)],
            },
        )
        .then_expect_document(
            "ada/2026-11-03",
            TodayList {
                user_id: "ada".into(),
                day: d("2026-11-03"),
                items: vec![item("Swim 1 km", false)],
            },
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
    test.then_expect_no_document("ada/2026-11-02")
        .then_expect_no_document("ada/2026-11-03");
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
    ProjectionTest::new(CalendarProjection)
        .given("goal-1", [created(), completed("2026-11-02")])
        .given("goal-9", [other])
        .then_expect_document("ada/2026-10", month(2026, 10, &[(28, 1, 0)]))
        .then_expect_document("ada/2026-11", month(2026, 11, &[(2, 2, 1), (4, 1, 0)]));
}

#[test]
fn the_calendar_moves_counts_on_reschedule_and_drops_them_on_delete() {
    let to = Schedule::daily(d("2026-11-02"), d("2026-11-03"));
    let test = ProjectionTest::new(CalendarProjection)
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
    test.then_expect_no_document("ada/2026-10")
        .then_expect_document("ada/2026-11", month(2026, 11, &[(2, 1, 1), (3, 1, 0)]));
    test.given(
        "goal-1",
        [GoalEvent::GoalDeleted {
            goal_id: GOAL,
            user_id: "ada".into(),
            schedule: to,
            done: vec![d("2026-11-02")],
        }],
    )
    .then_expect_no_document("ada/2026-11");
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
