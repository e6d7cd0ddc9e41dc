//! Errors as clients see them: a message and a stable `extensions.code`.
//!
//! | code | when |
//! |---|---|
//! | `UNAUTHENTICATED` | no token, or one that is expired, badly signed, or not for this server |
//! | `BAD_REQUEST` | malformed JSON, a query that does not parse or fit the schema (unknown fields, wrong types) |
//! | `LIMIT` | a query too deep or too complex, a body too large, too many WebSockets |
//! | `TIMEOUT` | the request took longer than the server allows |
//! | `VALIDATION` | a value a rule refuses (empty title, bad colour, bad schedule, bad id) |
//! | `NOT_FOUND` | no such goal or category *for this user* (another user's ids are not found either) |
//! | `DELETED` | the goal or category was deleted |
//! | `NOT_SCHEDULED` | completing a goal on a day it is not due |
//! | `CONFLICT` | it exists already, or other writes to it kept winning (try again) |
//! | `NOT_CAUGHT_UP` | the read models did not reach the `after` token in time (try again) |
//! | `UNAVAILABLE` | a store failed; the details are in the server's log under the request's correlation id |

use async_graphql::ErrorExtensions;
use cqrs_core::Error;
use uuid::Uuid;

use crate::PlannerError;
use crate::domain::{CategoryError, GoalError, ProfileError};

/// A stable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Code {
    /// See the module docs.
    Unauthenticated,
    /// See the module docs.
    BadRequest,
    /// See the module docs.
    Limit,
    /// See the module docs.
    Timeout,
    /// See the module docs.
    Validation,
    /// See the module docs.
    NotFound,
    /// See the module docs.
    Deleted,
    /// See the module docs.
    NotScheduled,
    /// See the module docs.
    Conflict,
    /// See the module docs.
    NotCaughtUp,
    /// See the module docs.
    Unavailable,
}

impl Code {
    /// The code as clients see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::BadRequest => "BAD_REQUEST",
            Self::Limit => "LIMIT",
            Self::Timeout => "TIMEOUT",
            Self::Validation => "VALIDATION",
            Self::NotFound => "NOT_FOUND",
            Self::Deleted => "DELETED",
            Self::NotScheduled => "NOT_SCHEDULED",
            Self::Conflict => "CONFLICT",
            Self::NotCaughtUp => "NOT_CAUGHT_UP",
            Self::Unavailable => "UNAVAILABLE",
        }
    }
}

/// An error with `message` and `code`.
pub(crate) fn coded(code: Code, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code.as_str()))
}

/// Whether `error` carries `code`.
pub(crate) fn has_code(error: &async_graphql::Error, code: Code) -> bool {
    error
        .extensions
        .as_ref()
        .and_then(|e| e.get("code"))
        .is_some_and(|c| *c == async_graphql::Value::from(code.as_str()))
}

/// The code of a planner error.
pub(crate) fn code_of(error: &PlannerError) -> Code {
    match error {
        PlannerError::Category(e) => match e {
            CategoryError::NotFound => Code::NotFound,
            CategoryError::Deleted => Code::Deleted,
            CategoryError::AlreadyExists => Code::Conflict,
            _ => Code::Validation,
        },
        PlannerError::Goal(e) => match e {
            GoalError::NotFound | GoalError::UnknownCategory(_) => Code::NotFound,
            GoalError::Deleted | GoalError::CategoryDeleted(_) => Code::Deleted,
            GoalError::NotScheduled(_) => Code::NotScheduled,
            GoalError::AlreadyExists => Code::Conflict,
            _ => Code::Validation,
        },
        PlannerError::Profile(e) => match e {
            ProfileError::UnknownDevice => Code::NotFound,
            _ => Code::Validation,
        },
        PlannerError::Busy(_) => Code::Conflict,
        PlannerError::Store(Error::Timeout { .. }) => Code::NotCaughtUp,
        _ => Code::Unavailable,
    }
}

/// A planner error as the client sees it. Rule refusals carry the rule's message;
/// infrastructure failures are logged with `correlation` and reported as
/// `UNAVAILABLE` with nothing of their internals.
pub(crate) fn planner_error(error: PlannerError, correlation: Uuid) -> async_graphql::Error {
    let code = code_of(&error);
    let message = match code {
        Code::Unavailable => {
            tracing::error!(%correlation, %error, "a store failed");
            format!("the service is unavailable; try again (correlation id {correlation})")
        }
        Code::NotCaughtUp => {
            "the read models have not reached this token yet; try again".to_owned()
        }
        _ => error.to_string(),
    };
    coded(code, message)
}
