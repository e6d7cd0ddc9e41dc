//! The write model: categories and goals, as pure aggregates.
//!
//! Each category and each goal is its own aggregate (its own stream), so commands on
//! different goals never contend. A goal's rule about its category ("it must exist,
//! belong to the user and not be deleted") crosses aggregates: the application looks
//! the category up in the write model and hands the answer to the goal in the command
//! ([`CategoryFact`]), and the goal enforces the rule.

mod category;
mod goal;
mod profile;
mod schedule;

pub use category::{
    Category, CategoryAction, CategoryCommand, CategoryError, CategoryEvent, Colour, MAX_NAME_CHARS,
};
pub use goal::{
    CategoryFact, Goal, GoalAction, GoalCommand, GoalDetails, GoalError, GoalEvent, MAX_MEMO_CHARS,
    MAX_TITLE_CHARS,
};
pub use profile::{
    MAX_DEVICES, MAX_TOKEN_CHARS, Profile, ProfileAction, ProfileCommand, ProfileError,
    ProfileEvent,
};
pub use schedule::{Schedule, ScheduleError};

/// A user of the planner. Everything is scoped per user.
pub type UserId = String;

/// A category's id.
pub type CategoryId = uuid::Uuid;

/// A goal's id.
pub type GoalId = uuid::Uuid;
