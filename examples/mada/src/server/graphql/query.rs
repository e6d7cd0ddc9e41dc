//! Queries: today's list, a month, the categories, one goal.

use async_graphql::{Context, ID, Object, Result};

use super::errors::{Code, coded, planner_error};
use super::types::{Calendar, Category, Date, Goal, Month, Settings, TodayList, Token, uuid};
use super::{Api, Caller, parts};
use crate::TodayView;
use crate::projections::{CategoryList, Plan};

/// The root of queries.
#[derive(Debug, Default)]
pub struct QueryRoot;

impl Api {
    /// Waits for `after` if given: read your writes.
    async fn reach(&self, caller: &Caller, after: Option<Token>) -> Result<()> {
        if let Some(Token(position)) = after {
            self.planner
                .wait_for(position, self.read_wait)
                .await
                .map_err(|e| planner_error(e, caller.correlation))?;
        }
        Ok(())
    }

    pub(super) async fn plan(&self, caller: &Caller) -> Result<Plan> {
        self.planner
            .plan(&caller.user)
            .await
            .map_err(|e| planner_error(e, caller.correlation))
    }

    pub(super) async fn categories(&self, caller: &Caller) -> Result<CategoryList> {
        self.planner
            .categories(&caller.user)
            .await
            .map_err(|e| planner_error(e, caller.correlation))
    }

    pub(super) async fn today(&self, caller: &Caller, date: Date) -> Result<TodayView> {
        let (plan, categories) = futures::try_join!(self.plan(caller), self.categories(caller))?;
        Ok(TodayView::of(&plan, &categories, date.0))
    }
}

#[Object(name = "Query")]
impl QueryRoot {
    /// The signed-in user's id.
    async fn me(&self, ctx: &Context<'_>) -> Result<ID> {
        let (caller, _) = parts(ctx)?;
        Ok(ID(caller.user.clone()))
    }

    /// The signed-in user's notification settings (from the write model: always
    /// current).
    async fn settings(&self, ctx: &Context<'_>) -> Result<Settings> {
        let (caller, api) = parts(ctx)?;
        let profile = api
            .planner
            .settings(&caller.user)
            .await
            .map_err(|e| planner_error(e, caller.correlation))?;
        Ok(Settings::from(&profile))
    }

    /// The signed-in user's list for `date`, with each goal's category.
    async fn today(
        &self,
        ctx: &Context<'_>,
        date: Date,
        after: Option<Token>,
    ) -> Result<TodayList> {
        let (caller, api) = parts(ctx)?;
        api.reach(caller, after).await?;
        Ok(TodayList::from(&api.today(caller, date).await?))
    }

    /// The signed-in user's calendar for `month`: per day, goals due and done.
    async fn calendar(
        &self,
        ctx: &Context<'_>,
        month: Month,
        after: Option<Token>,
    ) -> Result<Calendar> {
        let (caller, api) = parts(ctx)?;
        api.reach(caller, after).await?;
        let plan = api.plan(caller).await?;
        Ok(Calendar::from(&plan.month(month.year, month.month)))
    }

    /// The signed-in user's categories, by name.
    async fn categories(&self, ctx: &Context<'_>, after: Option<Token>) -> Result<Vec<Category>> {
        let (caller, api) = parts(ctx)?;
        api.reach(caller, after).await?;
        let list = api.categories(caller).await?;
        Ok(list.categories.iter().map(Category::from).collect())
    }

    /// One of the signed-in user's goals (`NOT_FOUND` for any other id, another
    /// user's included).
    async fn goal(&self, ctx: &Context<'_>, id: ID, after: Option<Token>) -> Result<Goal> {
        let (caller, api) = parts(ctx)?;
        let goal_id = uuid(&id, "goal")?;
        api.reach(caller, after).await?;
        let (plan, categories) = futures::try_join!(api.plan(caller), api.categories(caller))?;
        let goal = plan
            .goals
            .iter()
            .find(|g| g.goal_id == goal_id)
            .ok_or_else(|| coded(Code::NotFound, "no such goal"))?;
        Ok(Goal::new(goal, categories.find(goal.category_id)))
    }
}
