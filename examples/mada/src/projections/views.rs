//! What the screens show, computed from a [`Plan`](super::Plan) at read time:
//! today's list and the month calendar.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::domain::{CategoryId, GoalId, UserId};

/// The goals due on one day for one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TodayList {
    /// The user.
    pub user_id: UserId,
    /// The day.
    pub day: NaiveDate,
    /// The goals, in the order they were planned.
    pub items: Vec<TodayItem>,
}

/// One goal on a day's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TodayItem {
    /// The goal.
    pub goal_id: GoalId,
    /// Its title.
    pub title: String,
    /// Its category.
    pub category_id: CategoryId,
    /// Its memo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    /// Whether it is done that day.
    pub done: bool,
}

/// One month of one user's calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthCalendar {
    /// The user.
    pub user_id: UserId,
    /// The year.
    pub year: i32,
    /// The month, 1 to 12.
    pub month: u32,
    /// Per day of the month with something due, the counts.
    pub days: BTreeMap<u32, DayCount>,
}

/// How many goals are due on a day, and how many of them are done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCount {
    /// Goals due.
    pub scheduled: u32,
    /// Goals done.
    pub done: u32,
}
