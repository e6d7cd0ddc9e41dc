//! The read models, each shaped for one screen, and the projections that build them.
//!
//! | projection | document id | document |
//! |---|---|---|
//! | [`TodayProjection`] (`today`) | `{user}/{YYYY-MM-DD}` | [`TodayList`]: the goals due that day |
//! | [`CalendarProjection`] (`calendar`) | `{user}/{YYYY-MM}` | [`MonthCalendar`]: per day, due and done counts |
//! | [`CategoriesProjection`] (`categories`) | `{user}` | [`CategoryList`]: the user's categories |
//!
//! Today's list keeps category ids, not names: a rename would otherwise have to
//! rewrite every day of every goal in the category. The query joins the small
//! category list in (see [`crate::Planner::today`]).

mod calendar;
mod categories;
mod today;

pub use calendar::{CalendarProjection, DayCount, MonthCalendar, month_key};
pub use categories::{CategoriesProjection, CategoryItem, CategoryList};
pub use today::{TodayItem, TodayList, TodayProjection, today_key};
