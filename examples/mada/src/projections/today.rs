//! Today's to-do list: one document per user and day.

use chrono::NaiveDate;
use cqrs_core::{Envelope, Projection};
use serde::{Deserialize, Serialize};

use crate::domain::{CategoryId, GoalDetails, GoalEvent, GoalId, UserId};

/// The id of `user`'s list for `day`.
pub fn today_key(user: &str, day: NaiveDate) -> String {
    format!("{user}/{day}")
}

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

/// Builds [`TodayList`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct TodayProjection;

fn upsert(
    list: &mut Option<TodayList>,
    user: &str,
    day: NaiveDate,
    goal_id: GoalId,
    details: &GoalDetails,
    done: bool,
) {
    let list = list.get_or_insert_with(|| TodayList {
        user_id: user.to_owned(),
        day,
        items: Vec::new(),
    });
    let item = TodayItem {
        goal_id,
        title: details.title.clone(),
        category_id: details.category_id,
        memo: details.memo.clone(),
        done,
    };
    match list.items.iter_mut().find(|i| i.goal_id == goal_id) {
        Some(existing) => *existing = item,
        None => list.items.push(item),
    }
}

fn remove(list: &mut Option<TodayList>, goal_id: GoalId) {
    if let Some(doc) = list {
        doc.items.retain(|i| i.goal_id != goal_id);
        if doc.items.is_empty() {
            *list = None;
        }
    }
}

fn parse_day(id: &str) -> Option<NaiveDate> {
    id.rsplit('/').next()?.parse().ok()
}

impl Projection for TodayProjection {
    const NAME: &'static str = "today";
    type Event = GoalEvent;
    type Document = TodayList;

    fn document_ids(&self, event: &Envelope<GoalEvent>) -> Vec<String> {
        match &event.event {
            GoalEvent::GoalCreated {
                user_id, schedule, ..
            }
            | GoalEvent::GoalEdited {
                user_id, schedule, ..
            }
            | GoalEvent::GoalDeleted {
                user_id, schedule, ..
            } => schedule.days().map(|day| today_key(user_id, day)).collect(),
            GoalEvent::GoalRescheduled {
                user_id, from, to, ..
            } => {
                let mut days: Vec<NaiveDate> = from.days().chain(to.days()).collect();
                days.sort_unstable();
                days.dedup();
                days.into_iter()
                    .map(|day| today_key(user_id, day))
                    .collect()
            }
            GoalEvent::GoalCompleted { user_id, day, .. }
            | GoalEvent::GoalUncompleted { user_id, day, .. } => {
                vec![today_key(user_id, *day)]
            }
        }
    }

    fn apply(&self, id: &str, list: &mut Option<TodayList>, event: &Envelope<GoalEvent>) {
        let Some(day) = parse_day(id) else {
            return;
        };
        match &event.event {
            GoalEvent::GoalCreated {
                goal_id,
                user_id,
                details,
                ..
            } => {
                upsert(list, user_id, day, *goal_id, details, false);
            }
            GoalEvent::GoalEdited {
                goal_id, details, ..
            } => {
                if let Some(item) = list
                    .as_mut()
                    .and_then(|l| l.items.iter_mut().find(|i| i.goal_id == *goal_id))
                {
                    item.title.clone_from(&details.title);
                    item.category_id = details.category_id;
                    item.memo.clone_from(&details.memo);
                }
            }
            GoalEvent::GoalRescheduled {
                goal_id,
                user_id,
                details,
                to,
                done_before,
                ..
            } => {
                if to.contains(day) {
                    upsert(
                        list,
                        user_id,
                        day,
                        *goal_id,
                        details,
                        done_before.contains(&day),
                    );
                } else {
                    remove(list, *goal_id);
                }
            }
            GoalEvent::GoalCompleted { goal_id, .. }
            | GoalEvent::GoalUncompleted { goal_id, .. } => {
                let done = matches!(event.event, GoalEvent::GoalCompleted { .. });
                if let Some(item) = list
                    .as_mut()
                    .and_then(|l| l.items.iter_mut().find(|i| i.goal_id == *goal_id))
                {
                    item.done = done;
                }
            }
            GoalEvent::GoalDeleted { goal_id, .. } => remove(list, *goal_id),
        }
    }
}
