//! The GraphQL types: scalars, what queries return, what mutations take.

use async_graphql::{
    ComplexObject, Enum, ID, InputObject, InputValueError, InputValueResult, Result, Scalar,
    ScalarType, SimpleObject, Value,
};
use chrono::{Datelike, NaiveDate};
use cqrs_core::Position;

use super::errors::{Code, coded};
use crate::domain::Schedule;
use crate::projections::{CategoryItem, DayCount, MonthCalendar, PlannedGoal};
use crate::{Receipt, TodayEntry, TodayView};

/// A day, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Date(pub(crate) NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| InputValueError::custom(format!("`{s}` is not a day (YYYY-MM-DD)"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// A month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Month {
    pub(crate) year: i32,
    pub(crate) month: u32,
}

#[Scalar(name = "Month")]
impl ScalarType for Month {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d")
                .map(|d| Month {
                    year: d.year(),
                    month: d.month(),
                })
                .map_err(|_| InputValueError::custom(format!("`{s}` is not a month (YYYY-MM)"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(format!("{:04}-{:02}", self.year, self.month))
    }
}

/// A time of day, `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeOfDay(pub(crate) chrono::NaiveTime);

#[Scalar(name = "TimeOfDay")]
impl ScalarType for TimeOfDay {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => chrono::NaiveTime::parse_from_str(s, "%H:%M")
                .map(TimeOfDay)
                .map_err(|_| {
                    InputValueError::custom(format!("`{s}` is not a time of day (HH:MM)"))
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%H:%M").to_string())
    }
}

/// The signed-in user's notification settings.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct Settings {
    /// The reminder's time zone, if a reminder is set.
    time_zone: Option<String>,
    /// The reminder's time of day, if set.
    reminder_at: Option<TimeOfDay>,
    /// The registered devices, as the last 8 characters of their tokens.
    devices: Vec<String>,
}

impl From<&crate::domain::Profile> for Settings {
    fn from(profile: &crate::domain::Profile) -> Self {
        let tail = |token: &String| {
            let chars: Vec<char> = token.chars().collect();
            chars[chars.len().saturating_sub(8)..].iter().collect()
        };
        Self {
            time_zone: profile.reminder.as_ref().map(|(tz, _)| tz.clone()),
            reminder_at: profile.reminder.as_ref().map(|(_, at)| TimeOfDay(*at)),
            devices: profile.devices.iter().map(tail).collect(),
        }
    }
}

/// A consistency token: a mutation returns one; a query given it as `after` first
/// waits until the read models include that mutation (read your writes, in any
/// replica). Opaque to clients; today the position of the mutation's last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token(pub(crate) Position);

#[Scalar(name = "Token")]
impl ScalarType for Token {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => s
                .parse::<u64>()
                .map(|n| Token(Position(n)))
                .map_err(|_| InputValueError::custom("not a consistency token")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.0.to_string())
    }
}

/// Parses a GraphQL id as a UUID.
pub(crate) fn uuid(id: &ID, what: &str) -> Result<uuid::Uuid> {
    id.parse().map_err(|_| {
        coded(
            Code::Validation,
            format!("`{}` is not a {what} id", id.as_str()),
        )
    })
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub(crate) enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl From<Weekday> for chrono::Weekday {
    fn from(day: Weekday) -> Self {
        match day {
            Weekday::Mon => Self::Mon,
            Weekday::Tue => Self::Tue,
            Weekday::Wed => Self::Wed,
            Weekday::Thu => Self::Thu,
            Weekday::Fri => Self::Fri,
            Weekday::Sat => Self::Sat,
            Weekday::Sun => Self::Sun,
        }
    }
}

impl From<chrono::Weekday> for Weekday {
    fn from(day: chrono::Weekday) -> Self {
        match day {
            chrono::Weekday::Mon => Self::Mon,
            chrono::Weekday::Tue => Self::Tue,
            chrono::Weekday::Wed => Self::Wed,
            chrono::Weekday::Thu => Self::Thu,
            chrono::Weekday::Fri => Self::Fri,
            chrono::Weekday::Sat => Self::Sat,
            chrono::Weekday::Sun => Self::Sun,
        }
    }
}

/// A category.
#[derive(Debug, Clone, PartialEq, Eq, SimpleObject)]
pub(crate) struct Category {
    /// Its id.
    id: ID,
    /// Its name.
    name: String,
    /// Its colour, `#rrggbb`.
    colour: String,
}

impl From<&CategoryItem> for Category {
    fn from(item: &CategoryItem) -> Self {
        Self {
            id: ID(item.category_id.to_string()),
            name: item.name.clone(),
            colour: item.colour.clone(),
        }
    }
}

/// A day's list.
#[derive(Debug, Clone, PartialEq, SimpleObject)]
pub(crate) struct TodayList {
    /// The day.
    date: Date,
    /// The goals due, in the order they were planned.
    items: Vec<TodayItem>,
    /// How many of them are done.
    done: i32,
    /// How many there are.
    total: i32,
}

impl From<&TodayView> for TodayList {
    fn from(view: &TodayView) -> Self {
        Self {
            date: Date(view.day),
            items: view.items.iter().map(TodayItem::from).collect(),
            done: count(view.done()),
            total: count(view.items.len()),
        }
    }
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A goal on a day's list.
#[derive(Debug, Clone, PartialEq, SimpleObject)]
pub(crate) struct TodayItem {
    /// The goal.
    goal_id: ID,
    /// Its title.
    title: String,
    /// Its memo.
    memo: Option<String>,
    /// Whether it is done that day.
    done: bool,
    /// Its category, unless deleted since.
    category: Option<Category>,
}

impl From<&TodayEntry> for TodayItem {
    fn from(entry: &TodayEntry) -> Self {
        Self {
            goal_id: ID(entry.goal_id.to_string()),
            title: entry.title.clone(),
            memo: entry.memo.clone(),
            done: entry.done,
            category: entry.category.as_ref().map(Category::from),
        }
    }
}

/// A month of the calendar.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct Calendar {
    /// The month.
    month: Month,
    /// The days with something due, in order.
    days: Vec<CalendarDay>,
}

/// A day of the calendar.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct CalendarDay {
    /// The day.
    date: Date,
    /// Goals due.
    scheduled: i32,
    /// Goals done.
    done: i32,
}

impl From<&MonthCalendar> for Calendar {
    fn from(month: &MonthCalendar) -> Self {
        let days = month
            .days
            .iter()
            .filter_map(|(day, DayCount { scheduled, done })| {
                let date = NaiveDate::from_ymd_opt(month.year, month.month, *day)?;
                Some(CalendarDay {
                    date: Date(date),
                    scheduled: i32::try_from(*scheduled).unwrap_or(i32::MAX),
                    done: i32::try_from(*done).unwrap_or(i32::MAX),
                })
            })
            .collect();
        Self {
            month: Month {
                year: month.year,
                month: month.month,
            },
            days,
        }
    }
}

/// When a goal is due.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "Schedule")]
pub(crate) struct ScheduleView {
    /// The first day.
    start: Date,
    /// The last day; none for a goal that repeats with no end.
    end: Option<Date>,
    /// The weekdays it is due on; empty for every day.
    weekdays: Vec<Weekday>,
}

impl From<&Schedule> for ScheduleView {
    fn from(schedule: &Schedule) -> Self {
        Self {
            start: Date(schedule.start),
            end: schedule.end.map(Date),
            weekdays: schedule
                .weekdays
                .iter()
                .map(|d| Weekday::from(*d))
                .collect(),
        }
    }
}

/// The most days [`Goal::done_dates`] covers in one query.
const MAX_DONE_SPAN: i64 = 366;

/// A goal.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub(crate) struct Goal {
    /// Its id.
    id: ID,
    /// Its title.
    title: String,
    /// Its memo.
    memo: Option<String>,
    /// Its category, unless deleted since.
    category: Option<Category>,
    /// When it is due.
    schedule: ScheduleView,
    #[graphql(skip)]
    done: std::collections::BTreeSet<NaiveDate>,
}

impl Goal {
    pub(crate) fn new(goal: &PlannedGoal, category: Option<&CategoryItem>) -> Self {
        Self {
            id: ID(goal.goal_id.to_string()),
            title: goal.title.clone(),
            memo: goal.memo.clone(),
            category: category.map(Category::from),
            schedule: ScheduleView::from(&goal.schedule),
            done: goal.done.clone(),
        }
    }
}

#[ComplexObject]
impl Goal {
    /// The days it was done between `from` and `to` (both included, at most 366
    /// days apart).
    async fn done_dates(&self, from: Date, to: Date) -> Result<Vec<Date>> {
        let span = (to.0 - from.0).num_days();
        if !(0..MAX_DONE_SPAN).contains(&span) {
            return Err(coded(
                Code::Validation,
                format!("`from` must come before `to`, at most {MAX_DONE_SPAN} days apart"),
            ));
        }
        Ok(self.done.range(from.0..=to.0).map(|d| Date(*d)).collect())
    }
}

/// What a mutation did.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct Written {
    /// The id of what it created, if it created something.
    id: Option<ID>,
    /// Pass it as `after` to a query to read this write.
    token: Token,
}

impl From<Receipt> for Written {
    fn from(receipt: Receipt) -> Self {
        Self {
            id: receipt.created.map(|id| ID(id.to_string())),
            token: Token(receipt.token),
        }
    }
}

/// When a goal is due.
#[derive(Debug, Clone, InputObject)]
pub(crate) struct ScheduleInput {
    /// The first day.
    pub(crate) start: Date,
    /// The last day (the same as `start` for one day); none: no end.
    pub(crate) end: Option<Date>,
    /// Only on these weekdays; none or empty: every day.
    pub(crate) weekdays: Option<Vec<Weekday>>,
}

impl From<ScheduleInput> for Schedule {
    fn from(input: ScheduleInput) -> Self {
        Self {
            start: input.start.0,
            end: input.end.map(|d| d.0),
            weekdays: input
                .weekdays
                .unwrap_or_default()
                .into_iter()
                .map(chrono::Weekday::from)
                .collect(),
        }
    }
}

/// A goal to create.
#[derive(Debug, Clone, InputObject)]
pub(crate) struct NewGoalInput {
    /// Its title.
    pub(crate) title: String,
    /// An optional memo.
    pub(crate) memo: Option<String>,
    /// Its category.
    pub(crate) category_id: ID,
    /// When it is due.
    pub(crate) schedule: ScheduleInput,
}
