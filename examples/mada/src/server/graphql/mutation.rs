//! Mutations: one per command, each returning what it created and a consistency
//! token.

use async_graphql::{Context, ID, Object, Result};
use cqrs_core::Metadata;

use super::errors::planner_error;
use super::parts;
use super::types::{Date, NewGoalInput, ScheduleInput, TimeOfDay, Written, uuid};
use crate::{Command, NewGoal};

/// The root of mutations.
#[derive(Debug, Default)]
pub struct MutationRoot;

async fn run(ctx: &Context<'_>, command: Command) -> Result<Written> {
    let (caller, api) = parts(ctx)?;
    let name = command.name();
    let mut metadata = Metadata::new().with_correlation_id(caller.correlation);
    if let Some(device) = &caller.device {
        // The notifier skips this device when it tells the user's others.
        metadata = metadata.with(crate::notify::DEVICE_METADATA, device.clone());
    }
    let outcome = api.planner.run(&caller.user, command, metadata).await;
    let code = match &outcome {
        Ok(_) => "OK",
        Err(e) => super::errors::code_of(e).as_str(),
    };
    metrics::counter!("mada_commands_total", "command" => name, "outcome" => code).increment(1);
    outcome
        .map(Written::from)
        .map_err(|e| planner_error(e, caller.correlation))
}

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Creates a category; returns its id.
    async fn create_category(
        &self,
        ctx: &Context<'_>,
        name: String,
        colour: String,
    ) -> Result<Written> {
        run(ctx, Command::CreateCategory { name, colour }).await
    }

    /// Renames a category.
    async fn rename_category(&self, ctx: &Context<'_>, id: ID, name: String) -> Result<Written> {
        let category_id = uuid(&id, "category")?;
        run(ctx, Command::RenameCategory { category_id, name }).await
    }

    /// Changes a category's colour (`#rrggbb`).
    async fn recolour_category(
        &self,
        ctx: &Context<'_>,
        id: ID,
        colour: String,
    ) -> Result<Written> {
        let category_id = uuid(&id, "category")?;
        run(
            ctx,
            Command::RecolourCategory {
                category_id,
                colour,
            },
        )
        .await
    }

    /// Deletes a category.
    async fn delete_category(&self, ctx: &Context<'_>, id: ID) -> Result<Written> {
        let category_id = uuid(&id, "category")?;
        run(ctx, Command::DeleteCategory { category_id }).await
    }

    /// Creates a goal; returns its id.
    async fn create_goal(&self, ctx: &Context<'_>, goal: NewGoalInput) -> Result<Written> {
        let category_id = uuid(&goal.category_id, "category")?;
        let goal = NewGoal {
            title: goal.title,
            memo: goal.memo,
            category_id,
            schedule: goal.schedule.into(),
        };
        run(ctx, Command::CreateGoal(goal)).await
    }

    /// Changes a goal's title, memo and category.
    async fn edit_goal(
        &self,
        ctx: &Context<'_>,
        id: ID,
        title: String,
        memo: Option<String>,
        category_id: ID,
    ) -> Result<Written> {
        let goal_id = uuid(&id, "goal")?;
        let category_id = uuid(&category_id, "category")?;
        let command = Command::EditGoal {
            goal_id,
            title,
            memo,
            category_id,
        };
        run(ctx, command).await
    }

    /// Changes when a goal is due.
    async fn reschedule_goal(
        &self,
        ctx: &Context<'_>,
        id: ID,
        schedule: ScheduleInput,
    ) -> Result<Written> {
        let goal_id = uuid(&id, "goal")?;
        let schedule = schedule.into();
        run(ctx, Command::RescheduleGoal { goal_id, schedule }).await
    }

    /// Marks a goal done on `date`.
    async fn complete_goal(&self, ctx: &Context<'_>, id: ID, date: Date) -> Result<Written> {
        let goal_id = uuid(&id, "goal")?;
        run(
            ctx,
            Command::CompleteGoal {
                goal_id,
                day: date.0,
            },
        )
        .await
    }

    /// Marks a goal not done on `date`.
    async fn uncomplete_goal(&self, ctx: &Context<'_>, id: ID, date: Date) -> Result<Written> {
        let goal_id = uuid(&id, "goal")?;
        run(
            ctx,
            Command::UncompleteGoal {
                goal_id,
                day: date.0,
            },
        )
        .await
    }

    /// Deletes a goal.
    async fn delete_goal(&self, ctx: &Context<'_>, id: ID) -> Result<Written> {
        let goal_id = uuid(&id, "goal")?;
        run(ctx, Command::DeleteGoal { goal_id }).await
    }

    /// Receives pushes on the device with this FCM registration token. Send it
    /// also as the `x-mada-device` header of this device's mutations, so that the
    /// user's other devices are told of them and this one is not.
    async fn register_device(&self, ctx: &Context<'_>, token: String) -> Result<Written> {
        run(ctx, Command::RegisterDevice { token }).await
    }

    /// Stops pushes to a device.
    async fn unregister_device(&self, ctx: &Context<'_>, token: String) -> Result<Written> {
        let reason = "unregistered by the user".to_owned();
        run(ctx, Command::UnregisterDevice { token, reason }).await
    }

    /// Reminds the user of the day's unfinished goals every day at `at` (`HH:MM`) in
    /// `timeZone` (IANA, `Europe/Paris`).
    async fn set_reminder(
        &self,
        ctx: &Context<'_>,
        time_zone: String,
        at: TimeOfDay,
    ) -> Result<Written> {
        run(
            ctx,
            Command::SetReminder {
                time_zone,
                at: at.0,
            },
        )
        .await
    }

    /// No more reminders.
    async fn clear_reminder(&self, ctx: &Context<'_>) -> Result<Written> {
        run(ctx, Command::ClearReminder).await
    }
}
