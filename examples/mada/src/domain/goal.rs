//! A goal: something a user means to do on a day, or on several.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use cqrs_core::{Aggregate, Command, Event};
use serde::{Deserialize, Serialize};

use super::{Category, CategoryId, GoalId, Schedule, ScheduleError, UserId};

/// The longest goal title, in characters.
pub const MAX_TITLE_CHARS: usize = 100;
/// The longest memo, in characters.
pub const MAX_MEMO_CHARS: usize = 1000;

/// What the write model says about the category a goal is to use, looked up by the
/// application before it sends the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CategoryFact {
    /// The category exists and is not deleted.
    Active {
        /// The category.
        category_id: CategoryId,
        /// Its owner.
        owner: UserId,
    },
    /// The category was deleted.
    Deleted {
        /// The category.
        category_id: CategoryId,
    },
    /// No such category.
    Missing {
        /// The id asked for.
        category_id: CategoryId,
    },
}

impl CategoryFact {
    /// The fact about category `category_id` in state `state`.
    pub fn of(category_id: CategoryId, state: &Category) -> Self {
        match &state.owner {
            None => Self::Missing { category_id },
            Some(_) if state.deleted => Self::Deleted { category_id },
            Some(owner) => Self::Active {
                category_id,
                owner: owner.clone(),
            },
        }
    }

    /// The category's id, if it may be used by `user`.
    ///
    /// # Errors
    /// [`GoalError::UnknownCategory`] or [`GoalError::CategoryDeleted`].
    pub fn usable_by(&self, user: &str) -> Result<CategoryId, GoalError> {
        match self {
            Self::Active { category_id, owner } if owner == user => Ok(*category_id),
            Self::Active { category_id, .. } | Self::Missing { category_id } => {
                Err(GoalError::UnknownCategory(*category_id))
            }
            Self::Deleted { category_id } => Err(GoalError::CategoryDeleted(*category_id)),
        }
    }
}

/// A goal's title, category and memo: what its read models show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalDetails {
    /// The title.
    pub title: String,
    /// The category.
    pub category_id: CategoryId,
    /// An optional memo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

/// A request about one goal, made by one user.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalCommand {
    /// The goal.
    pub goal_id: GoalId,
    /// Who asks: its owner, for every action but `Create` (which makes them the
    /// owner). Another user's goal is reported as missing.
    pub user_id: UserId,
    /// What to do.
    pub action: GoalAction,
}

impl GoalCommand {
    /// `user_id` asks for `action` on goal `goal_id`.
    pub fn new(user_id: impl Into<UserId>, goal_id: GoalId, action: GoalAction) -> Self {
        Self {
            goal_id,
            user_id: user_id.into(),
            action,
        }
    }
}

/// What a user can do to a goal.
#[derive(Debug, Clone, PartialEq)]
pub enum GoalAction {
    /// Creates it.
    Create {
        /// Its title.
        title: String,
        /// An optional memo.
        memo: Option<String>,
        /// Its category, as the write model knows it.
        category: CategoryFact,
        /// When it is due.
        schedule: Schedule,
    },
    /// Changes its title, memo and category.
    Edit {
        /// The new title.
        title: String,
        /// The new memo.
        memo: Option<String>,
        /// The category, as the write model knows it.
        category: CategoryFact,
    },
    /// Changes when it is due. Completions on days still due are kept.
    Reschedule {
        /// The new schedule.
        schedule: Schedule,
    },
    /// Marks it done on a day it is due. Completing it again changes nothing.
    Complete {
        /// The day.
        day: NaiveDate,
    },
    /// Marks it not done on a day. Changes nothing if it was not done.
    Uncomplete {
        /// The day.
        day: NaiveDate,
    },
    /// Deletes it.
    Delete,
}

impl Command for GoalCommand {
    fn aggregate_id(&self) -> String {
        self.goal_id.to_string()
    }
}

/// What happened to a goal. Each event carries what the read models need to find
/// the documents it changes (the user, the days concerned), so projections stay
/// pure functions of one event and one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum GoalEvent {
    /// A goal was created.
    GoalCreated {
        /// The goal.
        goal_id: GoalId,
        /// Its owner.
        user_id: UserId,
        /// Its title, category and memo.
        details: GoalDetails,
        /// When it is due.
        schedule: Schedule,
    },
    /// A goal's title, category or memo changed.
    GoalEdited {
        /// The goal.
        goal_id: GoalId,
        /// Its owner.
        user_id: UserId,
        /// The new details.
        details: GoalDetails,
        /// When it is due (unchanged).
        schedule: Schedule,
    },
    /// A goal's schedule changed.
    GoalRescheduled {
        /// The goal.
        goal_id: GoalId,
        /// Its owner.
        user_id: UserId,
        /// Its details (unchanged).
        details: GoalDetails,
        /// The old schedule.
        from: Schedule,
        /// The new schedule.
        to: Schedule,
        /// The days it was done before; those still due stay done.
        done_before: Vec<NaiveDate>,
    },
    /// A goal was done on a day.
    GoalCompleted {
        /// The goal.
        goal_id: GoalId,
        /// Its owner.
        user_id: UserId,
        /// The day.
        day: NaiveDate,
    },
    /// A goal was marked not done on a day.
    GoalUncompleted {
        /// The goal.
        goal_id: GoalId,
        /// Its owner.
        user_id: UserId,
        /// The day.
        day: NaiveDate,
    },
    /// A goal was deleted.
    GoalDeleted {
        /// The goal.
        goal_id: GoalId,
        /// Its owner.
        user_id: UserId,
        /// When it was due.
        schedule: Schedule,
        /// The days it was done.
        done: Vec<NaiveDate>,
    },
}

/// Why a goal command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GoalError {
    /// The title is empty once trimmed.
    #[error("a goal needs a title")]
    EmptyTitle,
    /// The title is too long.
    #[error("a goal title has at most {MAX_TITLE_CHARS} characters, this one has {0}")]
    TitleTooLong(usize),
    /// The memo is too long.
    #[error("a memo has at most {MAX_MEMO_CHARS} characters, this one has {0}")]
    MemoTooLong(usize),
    /// The schedule is not valid.
    #[error("invalid schedule: {0}")]
    Schedule(#[from] ScheduleError),
    /// The category does not exist for this user.
    #[error("no such category: {0}")]
    UnknownCategory(CategoryId),
    /// The category was deleted.
    #[error("category {0} was deleted")]
    CategoryDeleted(CategoryId),
    /// The goal exists already.
    #[error("this goal exists already")]
    AlreadyExists,
    /// No such goal for this user.
    #[error("no such goal")]
    NotFound,
    /// The goal was deleted.
    #[error("this goal was deleted")]
    Deleted,
    /// The goal is not due on that day.
    #[error("this goal is not scheduled on {0}")]
    NotScheduled(NaiveDate),
}

/// A goal's state.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    /// Its owner, once created.
    pub owner: Option<UserId>,
    /// Its details, once created.
    pub details: Option<GoalDetails>,
    /// When it is due, once created.
    pub schedule: Option<Schedule>,
    /// The days it was done.
    pub done: BTreeSet<NaiveDate>,
    /// Whether it was deleted.
    pub deleted: bool,
}

fn valid_details(
    user: &str,
    title: &str,
    memo: Option<&String>,
    category: &CategoryFact,
) -> Result<GoalDetails, GoalError> {
    let title = title.trim();
    let chars = title.chars().count();
    if chars == 0 {
        return Err(GoalError::EmptyTitle);
    }
    if chars > MAX_TITLE_CHARS {
        return Err(GoalError::TitleTooLong(chars));
    }
    let memo = memo.map(|m| m.trim().to_owned()).filter(|m| !m.is_empty());
    if let Some(memo) = &memo {
        let chars = memo.chars().count();
        if chars > MAX_MEMO_CHARS {
            return Err(GoalError::MemoTooLong(chars));
        }
    }
    Ok(GoalDetails {
        title: title.to_owned(),
        category_id: category.usable_by(user)?,
        memo,
    })
}

impl Aggregate for Goal {
    const TYPE: &'static str = "goal";
    type Command = GoalCommand;
    type Event = GoalEvent;
    type Error = GoalError;

    fn handle(&self, command: &GoalCommand) -> Result<Vec<GoalEvent>, GoalError> {
        let (goal_id, user) = (command.goal_id, command.user_id.as_str());
        if let GoalAction::Create {
            title,
            memo,
            category,
            schedule,
        } = &command.action
        {
            if self.owner.is_some() {
                return Err(GoalError::AlreadyExists);
            }
            let details = valid_details(user, title, memo.as_ref(), category)?;
            schedule.validate()?;
            return Ok(vec![GoalEvent::GoalCreated {
                goal_id,
                user_id: user.to_owned(),
                details,
                schedule: schedule.clone(),
            }]);
        }
        let (Some(owner), Some(details), Some(schedule)) =
            (&self.owner, &self.details, &self.schedule)
        else {
            return Err(GoalError::NotFound);
        };
        if owner != user {
            return Err(GoalError::NotFound);
        }
        if self.deleted {
            return Err(GoalError::Deleted);
        }
        let user_id = owner.clone();
        Ok(match &command.action {
            GoalAction::Create { .. } => Vec::new(),
            GoalAction::Edit {
                title,
                memo,
                category,
            } => {
                let new = valid_details(user, title, memo.as_ref(), category)?;
                if &new == details {
                    Vec::new()
                } else {
                    vec![GoalEvent::GoalEdited {
                        goal_id,
                        user_id,
                        details: new,
                        schedule: schedule.clone(),
                    }]
                }
            }
            GoalAction::Reschedule { schedule: to } => {
                to.validate()?;
                if to == schedule {
                    Vec::new()
                } else {
                    vec![GoalEvent::GoalRescheduled {
                        goal_id,
                        user_id,
                        details: details.clone(),
                        from: schedule.clone(),
                        to: to.clone(),
                        done_before: self.done.iter().copied().collect(),
                    }]
                }
            }
            GoalAction::Complete { day } => {
                if !schedule.contains(*day) {
                    return Err(GoalError::NotScheduled(*day));
                }
                if self.done.contains(day) {
                    Vec::new()
                } else {
                    vec![GoalEvent::GoalCompleted {
                        goal_id,
                        user_id,
                        day: *day,
                    }]
                }
            }
            GoalAction::Uncomplete { day } => {
                if !schedule.contains(*day) {
                    return Err(GoalError::NotScheduled(*day));
                }
                if self.done.contains(day) {
                    vec![GoalEvent::GoalUncompleted {
                        goal_id,
                        user_id,
                        day: *day,
                    }]
                } else {
                    Vec::new()
                }
            }
            GoalAction::Delete => vec![GoalEvent::GoalDeleted {
                goal_id,
                user_id,
                schedule: schedule.clone(),
                done: self.done.iter().copied().collect(),
            }],
        })
    }

    fn apply(&mut self, event: &GoalEvent) {
        match event {
            GoalEvent::GoalCreated {
                user_id,
                details,
                schedule,
                ..
            } => {
                self.owner = Some(user_id.clone());
                self.details = Some(details.clone());
                self.schedule = Some(schedule.clone());
            }
            GoalEvent::GoalEdited { details, .. } => self.details = Some(details.clone()),
            GoalEvent::GoalRescheduled { to, .. } => {
                self.done.retain(|day| to.contains(*day));
                self.schedule = Some(to.clone());
            }
            GoalEvent::GoalCompleted { day, .. } => {
                self.done.insert(*day);
            }
            GoalEvent::GoalUncompleted { day, .. } => {
                self.done.remove(day);
            }
            GoalEvent::GoalDeleted { .. } => self.deleted = true,
        }
    }
}
