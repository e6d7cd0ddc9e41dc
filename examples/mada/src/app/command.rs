//! Every planner operation as one value ([`Command`]), and what running one returns
//! ([`Receipt`]): the single entry point the API and the typed methods share.

use chrono::NaiveDate;
use cqrs_core::{EventStore, EventSubscriber, Metadata, Position, ReadModelStore};
use uuid::Uuid;

use super::{NewGoal, Planner, PlannerError};
use crate::domain::{
    CategoryAction, CategoryId, Colour, GoalAction, GoalId, ProfileAction, Schedule,
};

/// A change a user asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Create a category.
    CreateCategory {
        /// Its name.
        name: String,
        /// Its colour, `#rrggbb`.
        colour: String,
    },
    /// Rename a category.
    RenameCategory {
        /// The category.
        category_id: CategoryId,
        /// The new name.
        name: String,
    },
    /// Change a category's colour.
    RecolourCategory {
        /// The category.
        category_id: CategoryId,
        /// The new colour, `#rrggbb`.
        colour: String,
    },
    /// Delete a category.
    DeleteCategory {
        /// The category.
        category_id: CategoryId,
    },
    /// Create a goal.
    CreateGoal(NewGoal),
    /// Change a goal's title, memo and category.
    EditGoal {
        /// The goal.
        goal_id: GoalId,
        /// The new title.
        title: String,
        /// The new memo.
        memo: Option<String>,
        /// The new category.
        category_id: CategoryId,
    },
    /// Change when a goal is due.
    RescheduleGoal {
        /// The goal.
        goal_id: GoalId,
        /// The new schedule.
        schedule: Schedule,
    },
    /// Mark a goal done on a day.
    CompleteGoal {
        /// The goal.
        goal_id: GoalId,
        /// The day.
        day: NaiveDate,
    },
    /// Mark a goal not done on a day.
    UncompleteGoal {
        /// The goal.
        goal_id: GoalId,
        /// The day.
        day: NaiveDate,
    },
    /// Delete a goal.
    DeleteGoal {
        /// The goal.
        goal_id: GoalId,
    },
    /// Receive pushes on a device.
    RegisterDevice {
        /// Its FCM registration token.
        token: String,
    },
    /// Stop pushes to a device.
    UnregisterDevice {
        /// Its token.
        token: String,
        /// Why.
        reason: String,
    },
    /// Be reminded of the day's goals every day at `at` in `time_zone`.
    SetReminder {
        /// An IANA time zone.
        time_zone: String,
        /// The time of day.
        at: chrono::NaiveTime,
    },
    /// No more reminders.
    ClearReminder,
}

impl Command {
    /// The command's name, for logs and metrics (`create_goal`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::CreateCategory { .. } => "create_category",
            Self::RenameCategory { .. } => "rename_category",
            Self::RecolourCategory { .. } => "recolour_category",
            Self::DeleteCategory { .. } => "delete_category",
            Self::CreateGoal(_) => "create_goal",
            Self::EditGoal { .. } => "edit_goal",
            Self::RescheduleGoal { .. } => "reschedule_goal",
            Self::CompleteGoal { .. } => "complete_goal",
            Self::UncompleteGoal { .. } => "uncomplete_goal",
            Self::DeleteGoal { .. } => "delete_goal",
            Self::RegisterDevice { .. } => "register_device",
            Self::UnregisterDevice { .. } => "unregister_device",
            Self::SetReminder { .. } => "set_reminder",
            Self::ClearReminder => "clear_reminder",
        }
    }
}

/// What a command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The id of what it created (a category or a goal), if it created something.
    pub created: Option<Uuid>,
    /// The consistency token: the position of the command's last event, or
    /// [`Position::START`] if it changed nothing. A read that first waits for it
    /// ([`Planner::wait_for`]) sees the command's effect, in any process reading
    /// the same stores.
    pub token: Position,
}

impl<S, P, K> Planner<S, P, K>
where
    S: EventStore + EventSubscriber + Clone + 'static,
    P: ReadModelStore + Clone + 'static,
    K: ReadModelStore + Clone + 'static,
{
    /// Runs `command` for `user`.
    ///
    /// # Errors
    /// [`PlannerError::Category`] or [`PlannerError::Goal`] if a rule refuses it,
    /// [`PlannerError::Busy`] if other writes kept winning, [`PlannerError::Store`]
    /// if a store failed.
    pub async fn run(&self, user: &str, command: Command) -> Result<Receipt, PlannerError> {
        self.run_with(user, command, Metadata::new()).await
    }

    /// [`run`](Self::run) with `metadata` on the events (a correlation id, for
    /// example); the user is set to `user` whatever `metadata` says.
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn run_with(
        &self,
        user: &str,
        command: Command,
        metadata: Metadata,
    ) -> Result<Receipt, PlannerError> {
        let (created, position) = match command {
            Command::CreateCategory { name, colour } => {
                let category_id = Uuid::now_v7();
                let colour: Colour = colour.parse()?;
                let action = CategoryAction::Create { name, colour };
                let position = self.category(user, category_id, action, metadata).await?;
                (Some(category_id), position)
            }
            Command::RenameCategory { category_id, name } => {
                let action = CategoryAction::Rename { name };
                (
                    None,
                    self.category(user, category_id, action, metadata).await?,
                )
            }
            Command::RecolourCategory {
                category_id,
                colour,
            } => {
                let action = CategoryAction::Recolour {
                    colour: colour.parse()?,
                };
                (
                    None,
                    self.category(user, category_id, action, metadata).await?,
                )
            }
            Command::DeleteCategory { category_id } => {
                let action = CategoryAction::Delete;
                (
                    None,
                    self.category(user, category_id, action, metadata).await?,
                )
            }
            Command::CreateGoal(goal) => {
                let goal_id = Uuid::now_v7();
                let category = self.category_fact(goal.category_id).await?;
                let action = GoalAction::Create {
                    title: goal.title,
                    memo: goal.memo,
                    category,
                    schedule: goal.schedule,
                };
                (
                    Some(goal_id),
                    self.goal(user, goal_id, action, metadata).await?,
                )
            }
            Command::EditGoal {
                goal_id,
                title,
                memo,
                category_id,
            } => {
                let category = self.category_fact(category_id).await?;
                let action = GoalAction::Edit {
                    title,
                    memo,
                    category,
                };
                (None, self.goal(user, goal_id, action, metadata).await?)
            }
            Command::RescheduleGoal { goal_id, schedule } => {
                let action = GoalAction::Reschedule { schedule };
                (None, self.goal(user, goal_id, action, metadata).await?)
            }
            Command::CompleteGoal { goal_id, day } => {
                let action = GoalAction::Complete { day };
                (None, self.goal(user, goal_id, action, metadata).await?)
            }
            Command::UncompleteGoal { goal_id, day } => {
                let action = GoalAction::Uncomplete { day };
                (None, self.goal(user, goal_id, action, metadata).await?)
            }
            Command::DeleteGoal { goal_id } => {
                let action = GoalAction::Delete;
                (None, self.goal(user, goal_id, action, metadata).await?)
            }
            Command::RegisterDevice { token } => {
                let action = ProfileAction::RegisterDevice { token };
                (None, self.profile(user, action, metadata).await?)
            }
            Command::UnregisterDevice { token, reason } => {
                let action = ProfileAction::UnregisterDevice { token, reason };
                (None, self.profile(user, action, metadata).await?)
            }
            Command::SetReminder { time_zone, at } => {
                let action = ProfileAction::SetReminder { time_zone, at };
                (None, self.profile(user, action, metadata).await?)
            }
            Command::ClearReminder => (
                None,
                self.profile(user, ProfileAction::ClearReminder, metadata)
                    .await?,
            ),
        };
        Ok(Receipt {
            created,
            token: position.unwrap_or(Position::START),
        })
    }
}
