//! The application service: commands in, read models out.

mod command;
mod service;

pub use command::{Command, Receipt};
pub use service::{Changes, PlannerService};

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use cqrs_core::{
    Aggregate, CommandError, DeadLetters, Error, EventStore, EventSubscriber, Metadata, Position,
    Projection, ProjectionHandle, ProjectionRunner, ReadModel, ReadModelStore, Repository,
    SnapshotPolicy,
};

use crate::domain::{
    Category, CategoryAction, CategoryCommand, CategoryError, CategoryFact, CategoryId, Goal,
    GoalAction, GoalCommand, GoalError, GoalId, Profile, ProfileAction, ProfileCommand,
    ProfileError, Schedule,
};
use crate::projections::{
    CategoriesProjection, CategoryItem, CategoryList, MonthCalendar, Plan, PlanProjection,
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
    /// A profile rule was broken (device token, time zone); tell the user.
    #[error(transparent)]
    Profile(#[from] ProfileError),
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
#[derive(Debug, Clone, PartialEq, Eq)]
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

impl TodayView {
    /// `plan`'s list for `day`, with each goal's category from `categories`.
    pub fn of(plan: &Plan, categories: &CategoryList, day: NaiveDate) -> Self {
        let items = plan
            .today(day)
            .items
            .into_iter()
            .map(|item| TodayEntry {
                category: categories.find(item.category_id).cloned(),
                goal_id: item.goal_id,
                title: item.title,
                memo: item.memo,
                done: item.done,
            })
            .collect();
        Self { day, items }
    }

    /// How many of the goals are done.
    pub fn done(&self) -> usize {
        self.items.iter().filter(|item| item.done).count()
    }
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

/// A task telling subscriptions when the read models moved, in a planner that runs
/// no projection itself.
struct Follower {
    moved: tokio::sync::watch::Receiver<Position>,
    task: tokio::task::JoinHandle<()>,
    /// Inline projections: a command's effect is readable when it returns.
    inline: bool,
}

/// Where each of the planner's read models is kept: one store per projection, of any
/// types (the same store for both with [`ReadStores::all`]).
#[derive(Debug, Clone)]
pub struct ReadStores<P, K = P> {
    /// The users' plans ([`PlanProjection`]): today's lists and months are computed
    /// from them.
    pub plans: P,
    /// The category lists ([`CategoriesProjection`]).
    pub categories: K,
}

impl<R: Clone> ReadStores<R> {
    /// Every read model in `store`.
    pub fn all(store: R) -> Self {
        Self {
            plans: store.clone(),
            categories: store,
        }
    }
}

/// Where each of the planner's projections reads its events from, and where it sets
/// aside an event it cannot apply.
pub trait Feeds {
    /// The source of a projection's events.
    type Source: EventSubscriber + 'static;
    /// Where a projection sets aside what it cannot apply.
    type DeadLetters: DeadLetters + 'static;

    /// The source of `projection`.
    fn source(&self, projection: &str) -> Self::Source;

    /// Where `projection` sets aside an event it cannot apply; `None` (the default)
    /// to stop on such an event instead.
    fn dead_letters(&self, projection: &str) -> Option<Self::DeadLetters> {
        let _ = projection;
        None
    }
}

/// The event store's own subscription, for every projection; no dead letters.
#[derive(Debug, Clone)]
pub struct StoreFeeds<S>(pub S);

impl<S: EventSubscriber + Clone + 'static> Feeds for StoreFeeds<S> {
    type Source = S;
    type DeadLetters = cqrs_core::MemoryDeadLetters;

    fn source(&self, _: &str) -> S {
        self.0.clone()
    }
}

/// How many times in a row the store may refuse a batch before the runner looks for
/// the event to set aside.
const DEAD_LETTER_ATTEMPTS: u32 = 5;

/// A runner of `projection` into `store`, fed as `feeds` says.
fn runner<P: Projection, F: Feeds, R: ReadModelStore + 'static>(
    projection: P,
    feeds: &F,
    store: R,
    options: &PlannerOptions,
) -> ProjectionRunner<P, F::Source, R> {
    let runner = ProjectionRunner::new(projection, feeds.source(P::NAME), store)
        .with_batch_size(options.batch_size);
    match feeds.dead_letters(P::NAME) {
        Some(dead) => runner.with_dead_letters(dead, DEAD_LETTER_ATTEMPTS),
        None => runner,
    }
}

/// Runs the planner's projections alone, each into its store in `read`, fed as
/// `feeds` says — the `project` role, beside API processes started with
/// [`Planner::start_reader`]. With `lease`, any number of such processes is safe:
/// one runner per projection works (named after the read model), the others wait
/// and take over within `ttl` of its death.
pub fn project<F, P, K, L>(
    feeds: &F,
    read: ReadStores<P, K>,
    options: &PlannerOptions,
    lease: Option<(L, Duration)>,
) -> Vec<ProjectionHandle>
where
    F: Feeds,
    P: ReadModelStore + 'static,
    K: ReadModelStore + 'static,
    L: cqrs_core::Lease + Clone + 'static,
{
    let plans = runner(PlanProjection, feeds, read.plans, options);
    let categories = runner(CategoriesProjection, feeds, read.categories, options);
    match lease {
        Some((lease, ttl)) => vec![
            plans.with_lease(lease.clone(), ttl).spawn(),
            categories.with_lease(lease, ttl).spawn(),
        ],
        None => vec![plans.spawn(), categories.spawn()],
    }
}

/// The MADA planner: executes users' commands on the write model and answers their
/// queries from the read models, which two projections keep up to date.
///
/// Generic over the stores: the event store `S`, and a read-model store per read
/// model (`P` plans, `K` category lists), in memory for the embedded default, real
/// backends behind the same ports.
pub struct Planner<S, P, K = P> {
    categories: Repository<Category, S>,
    goals: Repository<Goal, S>,
    profiles: Repository<Profile, S>,
    plans: ReadModel<PlanProjection, P>,
    category_lists: ReadModel<CategoriesProjection, K>,
    projections: Vec<ProjectionHandle>,
    /// Without runners in this process (inline projections, or a reader of read
    /// models other processes keep): a task that tells [`Changes`] when they moved.
    follower: Option<Follower>,
    written: AtomicU64,
    options: PlannerOptions,
}

impl<S, P, K> std::fmt::Debug for Planner<S, P, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner")
            .field("written", &self.written)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<S, P, K> Planner<S, P, K>
where
    S: EventStore + EventSubscriber + Clone + 'static,
    P: ReadModelStore + Clone + 'static,
    K: ReadModelStore + Clone + 'static,
{
    /// Starts the projections, each into its own store, fed by the event store's own
    /// subscription, and returns the planner.
    pub fn start(store: S, read: ReadStores<P, K>, options: PlannerOptions) -> Self {
        let feeds = StoreFeeds(store.clone());
        Self::start_with(store, &feeds, read, options)
    }

    /// Starts the projections, each into its own store, each fed and setting aside
    /// what it cannot apply as `feeds` says (for example through Kafka:
    /// [`KafkaSync`](crate::kafka::KafkaSync)), and returns the planner.
    pub fn start_with<F: Feeds>(
        store: S,
        feeds: &F,
        read: ReadStores<P, K>,
        options: PlannerOptions,
    ) -> Self {
        let snapshots = match options.snapshot_every {
            0 => SnapshotPolicy::Never,
            n => SnapshotPolicy::Every(n),
        };
        let wait = options.read_timeout;
        let plans = runner(PlanProjection, feeds, read.plans, &options);
        let categories = runner(CategoriesProjection, feeds, read.categories, &options);
        let (plans_reader, categories_reader) = (
            plans.read_model().with_wait_timeout(wait),
            categories.read_model().with_wait_timeout(wait),
        );
        Self {
            categories: Repository::new(store.clone()).with_snapshots(snapshots),
            goals: Repository::new(store.clone()).with_snapshots(snapshots),
            profiles: Repository::new(store),
            plans: plans_reader,
            category_lists: categories_reader,
            projections: vec![plans.spawn(), categories.spawn()],
            follower: None,
            written: AtomicU64::new(0),
            options,
        }
    }

    /// Starts the planner over an event store that applies both projections
    /// inline, in the transaction of every append (a PostgreSQL store with
    /// `with_inline_projection(PlanProjection)` and `(CategoriesProjection)`), whose
    /// documents `read` reads. No runner: a command's effect is in the read models
    /// when it returns, so waits for tokens return at once.
    ///
    /// This is the one safe way for the application to write both the events and a
    /// read model: one transaction. A read model in another store (MongoDB, Redis)
    /// would disagree with the events whenever its write failed after theirs.
    pub fn start_inline(store: S, read: ReadStores<P, K>, options: PlannerOptions) -> Self {
        let snapshots = match options.snapshot_every {
            0 => SnapshotPolicy::Never,
            n => SnapshotPolicy::Every(n),
        };
        // Subscriptions to today's list still need to know when the log moved.
        let (moved, follow) = tokio::sync::watch::channel(Position::START);
        let source = store.clone();
        let follower = tokio::spawn(async move {
            // A subscription ends after an error: subscribe again from the last
            // position seen, after a pause, for as long as the planner lives.
            let mut after = loop {
                match source.head().await {
                    Ok(head) => break head,
                    Err(error) => {
                        tracing::warn!(%error, "cannot read the log's head; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            };
            loop {
                let mut batches = source.subscribe(after, 500);
                while let Some(batch) = futures::StreamExt::next(&mut batches).await {
                    match batch {
                        Ok(batch) => {
                            if let Some(last) = batch.last() {
                                after = last.position;
                                moved.send_replace(after);
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, "following the log for live updates failed; resubscribing");
                        }
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Self {
            categories: Repository::new(store.clone()).with_snapshots(snapshots),
            goals: Repository::new(store.clone()).with_snapshots(snapshots),
            profiles: Repository::new(store),
            plans: ReadModel::new(read.plans),
            category_lists: ReadModel::new(read.categories),
            projections: Vec::new(),
            follower: Some(Follower {
                moved: follow,
                task: follower,
                inline: true,
            }),
            written: AtomicU64::new(0),
            options,
        }
    }

    /// Starts the planner without projections: other processes (`mada project`)
    /// keep the read models in `read`, and this planner only reads them — the read
    /// and write roles of the API. Waits for tokens poll the read models'
    /// checkpoints, so read-your-writes holds across processes; subscriptions wake
    /// when a checkpoint moves (polled every 50 ms).
    pub fn start_reader(store: S, read: ReadStores<P, K>, options: PlannerOptions) -> Self {
        let snapshots = match options.snapshot_every {
            0 => SnapshotPolicy::Never,
            n => SnapshotPolicy::Every(n),
        };
        let (moved, follow) = tokio::sync::watch::channel(Position::START);
        let (plans, categories) = (read.plans.clone(), read.categories.clone());
        let task = tokio::spawn(async move {
            let mut last = None;
            loop {
                let now = (
                    plans.checkpoint(PlanProjection::NAME).await,
                    categories.checkpoint(CategoriesProjection::NAME).await,
                );
                if let (Ok(p), Ok(c)) = now
                    && last != Some((p, c))
                {
                    last = Some((p, c));
                    // A mark that grows whenever either moves.
                    moved.send_replace(Position(p.0.saturating_add(c.0)));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let wait = options.read_timeout;
        Self {
            categories: Repository::new(store.clone()).with_snapshots(snapshots),
            goals: Repository::new(store.clone()).with_snapshots(snapshots),
            profiles: Repository::new(store),
            plans: ReadModel::new(read.plans).with_wait_timeout(wait),
            category_lists: ReadModel::new(read.categories).with_wait_timeout(wait),
            projections: Vec::new(),
            follower: Some(Follower {
                moved: follow,
                task,
                inline: false,
            }),
            written: AtomicU64::new(0),
            options,
        }
    }

    /// Executes `command` for `user`, who is recorded as the events' user; returns
    /// the position of its last event (`None` if it changed nothing).
    async fn execute<A>(
        &self,
        repository: &Repository<A, S>,
        user: &str,
        command: A::Command,
        metadata: Metadata,
    ) -> Result<Option<Position>, PlannerError>
    where
        A: Aggregate,
        PlannerError: From<CommandError<A::Error>>,
    {
        let outcome = repository
            .execute(&command, metadata.with_user(user))
            .await?;
        if let Some(position) = outcome.position {
            self.written.fetch_max(position.0, Ordering::SeqCst);
        }
        Ok(outcome.position)
    }

    async fn category(
        &self,
        user: &str,
        category_id: CategoryId,
        action: CategoryAction,
        metadata: Metadata,
    ) -> Result<Option<Position>, PlannerError> {
        let command = CategoryCommand::new(user, category_id, action);
        self.execute(&self.categories, user, command, metadata)
            .await
    }

    async fn goal(
        &self,
        user: &str,
        goal_id: GoalId,
        action: GoalAction,
        metadata: Metadata,
    ) -> Result<Option<Position>, PlannerError> {
        let command = GoalCommand::new(user, goal_id, action);
        self.execute(&self.goals, user, command, metadata).await
    }

    async fn profile(
        &self,
        user: &str,
        action: ProfileAction,
        metadata: Metadata,
    ) -> Result<Option<Position>, PlannerError> {
        let command = ProfileCommand {
            user_id: user.to_owned(),
            action,
        };
        self.execute(&self.profiles, user, command, metadata).await
    }

    /// `user`'s notification profile (devices and reminder), from the write model.
    ///
    /// # Errors
    /// [`PlannerError::Store`] if the store fails.
    pub async fn settings(&self, user: &str) -> Result<Profile, PlannerError> {
        Ok(self.profiles.load(user).await?.state)
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
        let command = Command::CreateCategory {
            name: name.into(),
            colour: colour.into(),
        };
        Ok(self.run(user, command).await?.created.unwrap_or_default())
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
        let name = name.into();
        let command = Command::RenameCategory { category_id, name };
        self.run(user, command).await.map(drop)
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
        let colour = colour.into();
        let command = Command::RecolourCategory {
            category_id,
            colour,
        };
        self.run(user, command).await.map(drop)
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
        let command = Command::DeleteCategory { category_id };
        self.run(user, command).await.map(drop)
    }

    /// Creates a goal; returns its id.
    ///
    /// # Errors
    /// [`PlannerError::Goal`] if a rule is broken (title, memo, schedule, category).
    pub async fn create_goal(&self, user: &str, goal: NewGoal) -> Result<GoalId, PlannerError> {
        let receipt = self.run(user, Command::CreateGoal(goal)).await?;
        Ok(receipt.created.unwrap_or_default())
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
        let command = Command::EditGoal {
            goal_id,
            title: title.into(),
            memo: memo.map(Into::into),
            category_id,
        };
        self.run(user, command).await.map(drop)
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
        let command = Command::RescheduleGoal { goal_id, schedule };
        self.run(user, command).await.map(drop)
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
        let command = Command::CompleteGoal { goal_id, day };
        self.run(user, command).await.map(drop)
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
        let command = Command::UncompleteGoal { goal_id, day };
        self.run(user, command).await.map(drop)
    }

    /// Deletes a goal.
    ///
    /// # Errors
    /// [`PlannerError::Goal`] if the goal is unknown or already deleted.
    pub async fn delete_goal(&self, user: &str, goal_id: GoalId) -> Result<(), PlannerError> {
        self.run(user, Command::DeleteGoal { goal_id })
            .await
            .map(drop)
    }

    /// Waits, per [`Consistency`], until every projection has applied this
    /// planner's writes (at most [`PlannerOptions::read_timeout`]).
    ///
    /// # Errors
    /// [`Error::Timeout`] or [`Error::Closed`] if a projection does not get there.
    pub async fn sync(&self) -> Result<(), PlannerError> {
        if self.options.consistency == Consistency::Eventual {
            return Ok(());
        }
        let position = Position(self.written.load(Ordering::SeqCst));
        self.wait_for(position, self.options.read_timeout).await
    }

    /// Waits until every projection has applied every event up to `token` (a
    /// [`Receipt::token`], perhaps from another process), for at most `limit`.
    ///
    /// # Errors
    /// [`Error::Timeout`] or [`Error::Closed`] if a projection does not get there.
    pub async fn wait_for(&self, token: Position, limit: Duration) -> Result<(), PlannerError> {
        if self.follower.as_ref().is_some_and(|f| f.inline) {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + limit;
        self.plans.wait_for_timeout(token, limit).await?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        self.category_lists.wait_for_timeout(token, left).await?;
        Ok(())
    }

    /// The projections' stats, plans first, then category lists.
    pub fn stats(&self) -> Vec<cqrs_core::ProjectionStats> {
        self.projections
            .iter()
            .map(ProjectionHandle::stats)
            .collect()
    }

    /// `user`'s categories.
    ///
    /// # Errors
    /// [`PlannerError::Store`] if the read side fails.
    pub async fn categories(&self, user: &str) -> Result<CategoryList, PlannerError> {
        self.sync().await?;
        self.categories_now(user).await
    }

    /// `user`'s categories as the read model has them now, whatever the
    /// [`Consistency`]: wait for a token first ([`wait_for`](Self::wait_for)) to read
    /// a write.
    ///
    /// # Errors
    /// [`PlannerError::Store`] if the read side fails.
    pub async fn categories_now(&self, user: &str) -> Result<CategoryList, PlannerError> {
        Ok(self
            .category_lists
            .get(user)
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
        let plan = self.plan(user).await?;
        Ok(TodayView::of(&plan, &categories, day))
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
        Ok(self.plan(user).await?.month(year, month))
    }

    /// `user`'s plan (empty if they have no goal): their goals, schedules and done
    /// days, from which today's lists and months are computed.
    ///
    /// # Errors
    /// [`PlannerError::Store`] if the read side fails.
    pub async fn plan(&self, user: &str) -> Result<Plan, PlannerError> {
        self.sync().await?;
        self.plan_now(user).await
    }

    /// `user`'s plan as the read model has it now, whatever the [`Consistency`].
    ///
    /// # Errors
    /// [`PlannerError::Store`] if the read side fails.
    pub async fn plan_now(&self, user: &str) -> Result<Plan, PlannerError> {
        Ok(self.plans.get(user).await?.unwrap_or_else(|| Plan {
            user_id: user.into(),
            goals: Vec::new(),
        }))
    }

    /// Asks the projections to stop after the batch each is applying, and waits until
    /// they have; unlike [`shutdown`](Self::shutdown), through a shared reference
    /// (the server holds the planner behind an `Arc`).
    pub async fn halt(&self) {
        for projection in &self.projections {
            projection.halt().await;
        }
        if let Some(follower) = &self.follower {
            follower.task.abort();
        }
    }

    /// Stops the projections.
    ///
    /// # Errors
    /// The first error a projection had stopped with.
    pub async fn shutdown(self) -> Result<(), PlannerError> {
        if let Some(follower) = &self.follower {
            follower.task.abort();
        }
        let mut first = Ok(());
        for projection in self.projections {
            if let Err(e) = projection.stop().await
                && first.is_ok()
            {
                first = Err(e.into());
            }
        }
        first
    }
}
