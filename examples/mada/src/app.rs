//! The application service: commands in, read models out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use cqrs_core::{
    Aggregate, CommandError, Error, EventStore, EventSubscriber, Metadata, Position, Projection,
    ProjectionHandle, ProjectionRunner, ReadModelStore, Repository, SnapshotPolicy,
};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::domain::{
    Category, CategoryCommand, CategoryError, CategoryFact, CategoryId, Colour, Goal, GoalCommand,
    GoalError, GoalId, Schedule,
};
use crate::projections::{
    CalendarProjection, CategoriesProjection, CategoryItem, CategoryList, MonthCalendar, TodayList,
    TodayProjection, month_key, today_key,
};

/// Why a planner operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlannerError {
    /// A category rule was broken; tell the user.
    #[error(transparent)]
    Category(#[from] CategoryError),
    /// A goal rule was broken; tell the user.
    #[error(transparent)]
    Goal(#[from] GoalError),
    /// Other writes to the same goal or category kept winning; try again.
    #[error("too busy, try again: {0}")]
    Busy(Error),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] Error),
}

impl<E: Into<PlannerError> + std::error::Error> From<CommandError<E>> for PlannerError {
    fn from(error: CommandError<E>) -> Self {
        match error {
            CommandError::Rejected(e) => e.into(),
            CommandError::TooManyConflicts { last, .. } => Self::Busy(last),
            CommandError::Store(e) => Self::Store(e),
            other => Self::Store(Error::InvalidInput(other.to_string())),
        }
    }
}

/// How fresh the read models a query sees are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// A query first waits until the projections have applied every event written
    /// through this planner (read your own writes).
    #[default]
    ReadYourWrites,
    /// A query reads whatever the projections have applied so far.
    Eventual,
}

/// Options of a [`Planner`].
#[derive(Debug, Clone)]
pub struct PlannerOptions {
    /// How fresh queries are.
    pub consistency: Consistency,
    /// Snapshot aggregates every this many events (0: never).
    pub snapshot_every: u64,
    /// Events per projection batch.
    pub batch_size: usize,
    /// How long a query waits for the projections to catch up.
    pub read_timeout: Duration,
}

impl Default for PlannerOptions {
    fn default() -> Self {
        Self {
            consistency: Consistency::ReadYourWrites,
            snapshot_every: 50,
            batch_size: 500,
            read_timeout: Duration::from_secs(10),
        }
    }
}

/// A goal to create.
#[derive(Debug, Clone)]
pub struct NewGoal {
    /// Its title.
    pub title: String,
    /// An optional memo.
    pub memo: Option<String>,
    /// Its category.
    pub category_id: CategoryId,
    /// When it is due.
    pub schedule: Schedule,
}

/// Today's list, with each goal's category joined in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TodayView {
    /// The day.
    pub day: NaiveDate,
    /// The goals due.
    pub items: Vec<TodayEntry>,
}

/// One goal of [`TodayView`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TodayEntry {
    /// The goal.
    pub goal_id: GoalId,
    /// Its title.
    pub title: String,
    /// Its memo.
    pub memo: Option<String>,
    /// Whether it is done.
    pub done: bool,
    /// Its category, unless it was deleted since.
    pub category: Option<CategoryItem>,
}

/// The MADA planner: executes users' commands on the write model and answers their
/// queries from the read models, which three projections keep up to date.
///
/// Generic over the stores: the in-memory ones for the embedded default, real
/// backends behind the same ports.
pub struct Planner<S, R> {
    categories: Repository<Category, S>,
    goals: Repository<Goal, S>,
    read: R,
    projections: Vec<ProjectionHandle>,
    written: AtomicU64,
    options: PlannerOptions,
}

impl<S, R> std::fmt::Debug for Planner<S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner")
            .field("written", &self.written)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<S, R> Planner<S, R>
where
    S: EventStore + EventSubscriber + Clone + 'static,
    R: ReadModelStore + Clone + 'static,
{
    /// Starts the projections and returns the planner.
    pub fn start(store: S, read: R, options: PlannerOptions) -> Self {
        let snapshots = match options.snapshot_every {
            0 => SnapshotPolicy::Never,
            n => SnapshotPolicy::Every(n),
        };
        let batch = options.batch_size;
        let projections = vec![
            ProjectionRunner::new(TodayProjection, store.clone(), read.clone())
                .with_batch_size(batch)
                .spawn(),
            ProjectionRunner::new(CalendarProjection, store.clone(), read.clone())
                .with_batch_size(batch)
                .spawn(),
            ProjectionRunner::new(CategoriesProjection, store.clone(), read.clone())
                .with_batch_size(batch)
                .spawn(),
        ];
        Self {
            categories: Repository::new(store.clone()).with_snapshots(snapshots),
            goals: Repository::new(store).with_snapshots(snapshots),
            read,
            projections,
            written: AtomicU64::new(0),
            options,
        }
    }

    async fn execute<A>(
        &self,
        repository: &Repository<A, S>,
        user: &str,
        command: A::Command,
    ) -> Result<(), PlannerError>
    where
        A: Aggregate,
        PlannerError: From<CommandError<A::Error>>,
    {
        let outcome = repository
            .execute(&command, Metadata::new().with_user(user))
            .await?;
        if let Some(position) = outcome.position {
            self.written.fetch_max(position.0, Ordering::SeqCst);
        }
        Ok(())
    }

    async fn category(&self, user: &str, command: CategoryCommand) -> Result<(), PlannerError> {
        self.execute(&self.categories, user, command).await
    }

    async fn goal(&self, user: &str, command: GoalCommand) -> Result<(), PlannerError> {
        self.execute(&self.goals, user, command).await
    }

    async fn category_fact(&self, category_id: CategoryId) -> Result<CategoryFact, PlannerError> {
        let loaded = self.categories.load(&category_id.to_string()).await?;
        Ok(CategoryFact::of(category_id, &loaded.state))
    }

    /// Creates a category; returns its id.
    ///
    /// # Errors
    /// [`PlannerError::Category`] for an invalid name or colour.
    pub async fn create_category(
        &self,
        user: &str,
        name: &str,
        colour: &str,
    ) -> Result<CategoryId, PlannerError> {
        let category_id = Uuid::now_v7();
        let colour: Colour = colour.parse()?;
        self.category(
            user,
            CategoryCommand::Create {
                category_id,
                user_id: user.into(),
                name: name.into(),
                colour,
            },
        )
        .await?;
        Ok(category_id)
    }

    /// Renames a category.
    ///
    /// # Errors
    /// [`PlannerError::Category`] if the category is unknown, deleted, or the name invalid.
    pub async fn rename_category(
        &self,
        user: &str,
        category_id: CategoryId,
        name: &str,
    ) -> Result<(), PlannerError> {
        self.category(
            user,
            CategoryCommand::Rename {
                category_id,
                user_id: user.into(),
                name: name.into(),
            },
        )
        .await
    }

    /// Changes a category's colour.
    ///
    /// # Errors
    /// [`PlannerError::Category`] if the category is unknown, deleted, or the colour invalid.
    pub async fn recolour_category(
        &self,
        user: &str,
        category_id: CategoryId,
        colour: &str,
    ) -> Result<(), PlannerError> {
        let colour: Colour = colour.parse()?;
        self.category(
            user,
            CategoryCommand::Recolour {
                category_id,
                user_id: user.into(),
                colour,
            },
        )
        .await
    }

    /// Deletes a category.
    ///
    /// # Errors
    /// [`PlannerError::Category`] if the category is unknown or already deleted.
    pub async fn delete_category(
        &self,
        user: &str,
        category_id: CategoryId,
    ) -> Result<(), PlannerError> {
        self.category(
            user,
            CategoryCommand::Delete {
                category_id,
                user_id: user.into(),
            },
        )
        .await
    }

    /// Creates a goal; returns its id.
    ///
    /// # Errors
    /// [`PlannerError::Goal`] if a rule is broken (title, memo, schedule, category).
    pub async fn create_goal(&self, user: &str, goal: NewGoal) -> Result<GoalId, PlannerError> {
        let goal_id = Uuid::now_v7();
        let category = self.category_fact(goal.category_id).await?;
        self.goal(
            user,
            GoalCommand::Create {
                goal_id,
                user_id: user.into(),
                title: goal.title,
                memo: goal.memo,
                category,
                schedule: goal.schedule,
            },
        )
        .await?;
        Ok(goal_id)
    }

    /// Changes a goal's title, memo and category.
    ///
    /// # Errors
    /// [`PlannerError::Goal`] if a rule is broken.
    pub async fn edit_goal(
        &self,
        user: &str,
        goal_id: GoalId,
        title: &str,
        memo: Option<&str>,
        category_id: CategoryId,
    ) -> Result<(), PlannerError> {
        let category = self.category_fact(category_id).await?;
        self.goal(
            user,
            GoalCommand::Edit {
                goal_id,
                user_id: user.into(),
                title: title.into(),
                memo: memo.map(Into::into),
                category,
            },
        )
        .await
    }

    /// Changes when a goal is due.
    ///
    /// # Errors
    /// [`PlannerError::Goal`] if the goal is unknown or the schedule invalid.
    pub async fn reschedule_goal(
        &self,
        user: &str,
        goal_id: GoalId,
        schedule: Schedule,
    ) -> Result<(), PlannerError> {
        self.goal(
            user,
            GoalCommand::Reschedule {
                goal_id,
                user_id: user.into(),
                schedule,
            },
        )
        .await
    }

    /// Marks a goal done on `day`.
    ///
    /// # Errors
    /// [`PlannerError::Goal`] if the goal is unknown or not due that day.
    pub async fn complete_goal(
        &self,
        user: &str,
        goal_id: GoalId,
        day: NaiveDate,
    ) -> Result<(), PlannerError> {
        self.goal(
            user,
            GoalCommand::Complete {
                goal_id,
                user_id: user.into(),
                day,
            },
        )
        .await
    }

    /// Marks a goal not done on `day`.
    ///
    /// # Errors
    /// [`PlannerError::Goal`] if the goal is unknown or not due that day.
    pub async fn uncomplete_goal(
        &self,
        user: &str,
        goal_id: GoalId,
        day: NaiveDate,
    ) -> Result<(), PlannerError> {
        self.goal(
            user,
            GoalCommand::Uncomplete {
                goal_id,
                user_id: user.into(),
                day,
            },
        )
        .await
    }

    /// Deletes a goal.
    ///
    /// # Errors
    /// [`PlannerError::Goal`] if the goal is unknown or already deleted.
    pub async fn delete_goal(&self, user: &str, goal_id: GoalId) -> Result<(), PlannerError> {
        self.goal(
            user,
            GoalCommand::Delete {
                goal_id,
                user_id: user.into(),
            },
        )
        .await
    }

    /// Waits, per [`Consistency`], until every projection has applied this
    /// planner's writes.
    ///
    /// # Errors
    /// [`Error::Timeout`] or [`Error::Closed`] if a projection does not get there.
    pub async fn sync(&self) -> Result<(), PlannerError> {
        if self.options.consistency == Consistency::Eventual {
            return Ok(());
        }
        let position = Position(self.written.load(Ordering::SeqCst));
        for projection in &self.projections {
            projection
                .wait_for_timeout(position, self.options.read_timeout)
                .await?;
        }
        Ok(())
    }

    async fn document<D: DeserializeOwned>(
        &self,
        projection: &str,
        id: &str,
    ) -> Result<Option<D>, PlannerError> {
        let Some(stored) = self.read.get(projection, id).await? else {
            return Ok(None);
        };
        serde_json::from_value(stored.value)
            .map(Some)
            .map_err(|e| Error::codec(projection, e).into())
    }

    /// `user`'s categories.
    ///
    /// # Errors
    /// [`PlannerError::Store`] if the read side fails.
    pub async fn categories(&self, user: &str) -> Result<CategoryList, PlannerError> {
        self.sync().await?;
        Ok(self
            .document::<CategoryList>(CategoriesProjection::NAME, user)
            .await?
            .unwrap_or_else(|| CategoryList {
                user_id: user.into(),
                categories: Vec::new(),
            }))
    }

    /// `user`'s to-do list for `day`, with categories joined in.
    ///
    /// # Errors
    /// [`PlannerError::Store`] if the read side fails.
    pub async fn today(&self, user: &str, day: NaiveDate) -> Result<TodayView, PlannerError> {
        let categories = self.categories(user).await?;
        let list = self
            .document::<TodayList>(TodayProjection::NAME, &today_key(user, day))
            .await?;
        let items = list
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .map(|item| TodayEntry {
                category: categories.find(item.category_id).cloned(),
                goal_id: item.goal_id,
                title: item.title,
                memo: item.memo,
                done: item.done,
            })
            .collect();
        Ok(TodayView { day, items })
    }

    /// `user`'s calendar for a month.
    ///
    /// # Errors
    /// [`PlannerError::Store`] if the read side fails.
    pub async fn month(
        &self,
        user: &str,
        year: i32,
        month: u32,
    ) -> Result<MonthCalendar, PlannerError> {
        self.sync().await?;
        Ok(self
            .document(CalendarProjection::NAME, &month_key(user, year, month))
            .await?
            .unwrap_or_else(|| MonthCalendar {
                user_id: user.into(),
                year,
                month,
                days: Default::default(),
            }))
    }

    /// Stops the projections.
    ///
    /// # Errors
    /// The first error a projection had stopped with.
    pub async fn shutdown(self) -> Result<(), PlannerError> {
        let mut first = Ok(());
        for projection in self.projections {
            if let Err(e) = projection.stop().await {
                if first.is_ok() {
                    first = Err(e.into());
                }
            }
        }
        first
    }
}
