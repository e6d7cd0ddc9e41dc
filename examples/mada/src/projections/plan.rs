//! Each user's plan: their goals with schedules and completions, one document per
//! user. Today's list and a month are computed from it when read.
//!
//! Why not a document per day (as before): a goal may now repeat with no end, and a
//! projection cannot write an unbounded number of days, nor one ahead of time (it is
//! a function of events, and time passing is not one). A plan is small (a goal is a
//! title, a schedule and its done days), one document read answers both screens,
//! and computing a day or a month from it costs microseconds (`BENCHMARKS.md`).

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};
use cqrs_core::{Envelope, Projection};
use serde::{Deserialize, Serialize};

use super::views::{DayCount, MonthCalendar, TodayItem, TodayList};
use crate::domain::{CategoryId, GoalDetails, GoalEvent, GoalId, Schedule, UserId};

/// One user's goals, in the order they were planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The user.
    pub user_id: UserId,
    /// The goals.
    pub goals: Vec<PlannedGoal>,
}

/// A goal as the plan keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedGoal {
    /// The goal.
    pub goal_id: GoalId,
    /// Its title.
    pub title: String,
    /// Its category.
    pub category_id: CategoryId,
    /// Its memo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    /// When it is due.
    pub schedule: Schedule,
    /// The days it was done (stored as day numbers: see [`day_numbers`]).
    #[serde(default, with = "day_numbers")]
    pub done: BTreeSet<NaiveDate>,
}

/// Done days as numbers (days since 1 January of year 1), in order: a plan holds
/// every completion of every goal, and numbers are a third of the size of ISO dates
/// and decode without parsing a date (see `BENCHMARKS.md`).
pub mod day_numbers {
    use std::collections::BTreeSet;

    use chrono::{Datelike, NaiveDate};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes the days as numbers.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(days: &BTreeSet<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
        let numbers: Vec<i32> = days.iter().map(Datelike::num_days_from_ce).collect();
        numbers.serialize(s)
    }

    /// Reads the days back.
    ///
    /// # Errors
    /// A number that is no day.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<NaiveDate>, D::Error> {
        let numbers = Vec::<i32>::deserialize(d)?;
        numbers
            .into_iter()
            .map(|n| {
                NaiveDate::from_num_days_from_ce_opt(n)
                    .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a day")))
            })
            .collect()
    }
}

impl Plan {
    /// The goals due on `day`, in the order they were planned.
    pub fn today(&self, day: NaiveDate) -> TodayList {
        let items = self
            .goals
            .iter()
            .filter(|goal| goal.schedule.contains(day))
            .map(|goal| TodayItem {
                goal_id: goal.goal_id,
                title: goal.title.clone(),
                category_id: goal.category_id,
                memo: goal.memo.clone(),
                done: goal.done.contains(&day),
            })
            .collect();
        TodayList {
            user_id: self.user_id.clone(),
            day,
            items,
        }
    }

    /// Per day of `month` of `year` with something due, how many goals are due and
    /// how many are done.
    pub fn month(&self, year: i32, month: u32) -> MonthCalendar {
        let mut calendar = MonthCalendar {
            user_id: self.user_id.clone(),
            year,
            month,
            days: Default::default(),
        };
        let Some((first, last)) = month_bounds(year, month) else {
            return calendar;
        };
        for goal in &self.goals {
            for day in goal.schedule.days_between(first, last) {
                let count: &mut DayCount = calendar.days.entry(day.day()).or_default();
                count.scheduled += 1;
                count.done += u32::from(goal.done.contains(&day));
            }
        }
        calendar
    }

    fn goal(&mut self, goal_id: GoalId) -> Option<&mut PlannedGoal> {
        self.goals.iter_mut().find(|goal| goal.goal_id == goal_id)
    }
}

/// The first and last days of a month (`None` for no such month).
fn month_bounds(year: i32, month: u32) -> Option<(NaiveDate, NaiveDate)> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    Some((first, next.pred_opt()?))
}

/// Builds [`Plan`]s, one document per user.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanProjection;

fn owner(event: &GoalEvent) -> &UserId {
    match event {
        GoalEvent::GoalCreated { user_id, .. }
        | GoalEvent::GoalEdited { user_id, .. }
        | GoalEvent::GoalRescheduled { user_id, .. }
        | GoalEvent::GoalCompleted { user_id, .. }
        | GoalEvent::GoalUncompleted { user_id, .. }
        | GoalEvent::GoalDeleted { user_id, .. } => user_id,
    }
}

fn set_details(goal: &mut PlannedGoal, details: &GoalDetails) {
    goal.title.clone_from(&details.title);
    goal.category_id = details.category_id;
    goal.memo.clone_from(&details.memo);
}

impl Projection for PlanProjection {
    const NAME: &'static str = "plan";
    type Event = GoalEvent;
    type Document = Plan;

    fn document_ids(&self, event: &Envelope<GoalEvent>) -> Vec<String> {
        vec![owner(&event.event).clone()]
    }

    fn apply(&self, _: &str, plan: &mut Option<Plan>, event: &Envelope<GoalEvent>) {
        match &event.event {
            GoalEvent::GoalCreated {
                goal_id,
                user_id,
                details,
                schedule,
            } => {
                let plan = plan.get_or_insert_with(|| Plan {
                    user_id: user_id.clone(),
                    goals: Vec::new(),
                });
                if plan.goal(*goal_id).is_none() {
                    plan.goals.push(PlannedGoal {
                        goal_id: *goal_id,
                        title: details.title.clone(),
                        category_id: details.category_id,
                        memo: details.memo.clone(),
                        schedule: schedule.clone(),
                        done: BTreeSet::new(),
                    });
                }
            }
            GoalEvent::GoalEdited {
                goal_id, details, ..
            } => {
                if let Some(goal) = plan.as_mut().and_then(|p| p.goal(*goal_id)) {
                    set_details(goal, details);
                }
            }
            GoalEvent::GoalRescheduled {
                goal_id,
                details,
                to,
                done_before,
                ..
            } => {
                if let Some(goal) = plan.as_mut().and_then(|p| p.goal(*goal_id)) {
                    set_details(goal, details);
                    goal.schedule = to.clone();
                    goal.done = done_before
                        .iter()
                        .copied()
                        .filter(|day| to.contains(*day))
                        .collect();
                }
            }
            GoalEvent::GoalCompleted { goal_id, day, .. } => {
                if let Some(goal) = plan.as_mut().and_then(|p| p.goal(*goal_id)) {
                    goal.done.insert(*day);
                }
            }
            GoalEvent::GoalUncompleted { goal_id, day, .. } => {
                if let Some(goal) = plan.as_mut().and_then(|p| p.goal(*goal_id)) {
                    goal.done.remove(day);
                }
            }
            GoalEvent::GoalDeleted { goal_id, .. } => {
                if let Some(doc) = plan {
                    doc.goals.retain(|goal| goal.goal_id != *goal_id);
                    if doc.goals.is_empty() {
                        *plan = None;
                    }
                }
            }
        }
    }
}
