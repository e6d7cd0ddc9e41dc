//! The read models and the projections that build them.
//!
//! | projection | document id | document |
//! |---|---|---|
//! | [`PlanProjection`] (`plan`) | `{user}` | [`Plan`]: the user's goals, schedules and done days |
//! | [`CategoriesProjection`] (`categories`) | `{user}` | [`CategoryList`]: the user's categories |
//!
//! The screens' views are computed from a plan when read: [`Plan::today`] gives
//! [`TodayList`], [`Plan::month`] a [`MonthCalendar`]. A goal may repeat with no end,
//! so nothing writes a document per day (see [`plan`] for why and what it costs).
//!
//! Plans keep category ids, not names: a rename would otherwise rewrite every goal in
//! the category. The query joins the small category list in (see
//! [`crate::Planner::today`]).

mod categories;
pub mod plan;
mod views;

pub use categories::{CategoriesProjection, CategoryItem, CategoryList};
pub use plan::{Plan, PlanProjection, PlannedGoal};
pub use views::{DayCount, MonthCalendar, TodayItem, TodayList};
