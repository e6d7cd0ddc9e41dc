//! The month calendar: one document per user and month, with per-day counts.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use cqrs_core::{Envelope, Projection};
use serde::{Deserialize, Serialize};

use crate::domain::{GoalEvent, Schedule, UserId};

/// The id of `user`'s calendar for the month of `day`.
pub fn month_key(user: &str, year: i32, month: u32) -> String {
    format!("{user}/{year:04}-{month:02}")
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

/// Builds [`MonthCalendar`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct CalendarProjection;

fn months(user: &str, days: impl Iterator<Item = NaiveDate>) -> Vec<String> {
    let mut keys: Vec<String> = days.map(|d| month_key(user, d.year(), d.month())).collect();
    keys.dedup();
    keys.sort_unstable();
    keys.dedup();
    keys
}

fn parse_month(id: &str) -> Option<(i32, u32)> {
    let (year, month) = id.rsplit('/').next()?.split_once('-')?;
    Some((year.parse().ok()?, month.parse().ok()?))
}

struct Month<'a> {
    calendar: &'a mut Option<MonthCalendar>,
    user: &'a str,
    year: i32,
    month: u32,
}

impl Month<'_> {
    fn contains(&self, day: NaiveDate) -> bool {
        day.year() == self.year && day.month() == self.month
    }

    fn change(&mut self, day: NaiveDate, scheduled: i64, done: i64) {
        if !self.contains(day) {
            return;
        }
        let calendar = self.calendar.get_or_insert_with(|| MonthCalendar {
            user_id: self.user.to_owned(),
            year: self.year,
            month: self.month,
            days: BTreeMap::new(),
        });
        let count = calendar.days.entry(day.day()).or_default();
        count.scheduled = add(count.scheduled, scheduled);
        count.done = add(count.done, done);
        if count.scheduled == 0 {
            calendar.days.remove(&day.day());
        }
        if calendar.days.is_empty() {
            *self.calendar = None;
        }
    }

    fn schedule(&mut self, schedule: &Schedule, done: &[NaiveDate], sign: i64) {
        for day in schedule.days() {
            let was_done = i64::from(done.contains(&day));
            self.change(day, sign, sign * was_done);
        }
    }
}

fn add(count: u32, delta: i64) -> u32 {
    u32::try_from((i64::from(count) + delta).max(0)).unwrap_or(u32::MAX)
}

impl Projection for CalendarProjection {
    const NAME: &'static str = "calendar";
    type Event = GoalEvent;
    type Document = MonthCalendar;

    fn document_ids(&self, event: &Envelope<GoalEvent>) -> Vec<String> {
        match &event.event {
            GoalEvent::GoalCreated {
                user_id, schedule, ..
            }
            | GoalEvent::GoalDeleted {
                user_id, schedule, ..
            } => months(user_id, schedule.days()),
            GoalEvent::GoalRescheduled {
                user_id, from, to, ..
            } => months(user_id, from.days().chain(to.days())),
            GoalEvent::GoalCompleted { user_id, day, .. }
            | GoalEvent::GoalUncompleted { user_id, day, .. } => {
                vec![month_key(user_id, day.year(), day.month())]
            }
            GoalEvent::GoalEdited { .. } => Vec::new(),
        }
    }

    fn apply(&self, id: &str, calendar: &mut Option<MonthCalendar>, event: &Envelope<GoalEvent>) {
        let Some((year, month)) = parse_month(id) else {
            return;
        };
        let user = match &event.event {
            GoalEvent::GoalCreated { user_id, .. }
            | GoalEvent::GoalEdited { user_id, .. }
            | GoalEvent::GoalRescheduled { user_id, .. }
            | GoalEvent::GoalCompleted { user_id, .. }
            | GoalEvent::GoalUncompleted { user_id, .. }
            | GoalEvent::GoalDeleted { user_id, .. } => user_id.as_str(),
        };
        let mut m = Month {
            calendar,
            user,
            year,
            month,
        };
        match &event.event {
            GoalEvent::GoalCreated { schedule, .. } => m.schedule(schedule, &[], 1),
            GoalEvent::GoalDeleted { schedule, done, .. } => m.schedule(schedule, done, -1),
            GoalEvent::GoalRescheduled {
                from,
                to,
                done_before,
                ..
            } => {
                m.schedule(from, done_before, -1);
                let kept: Vec<NaiveDate> = done_before
                    .iter()
                    .copied()
                    .filter(|d| to.contains(*d))
                    .collect();
                m.schedule(to, &kept, 1);
            }
            GoalEvent::GoalCompleted { day, .. } => m.change(*day, 0, 1),
            GoalEvent::GoalUncompleted { day, .. } => m.change(*day, 0, -1),
            GoalEvent::GoalEdited { .. } => {}
        }
    }
}
