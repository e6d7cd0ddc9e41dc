//! When a goal is due: one date, or a date range, optionally only on chosen weekdays.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// The longest range a goal may span, in days (a year, leap day included).
pub const MAX_SPAN_DAYS: i64 = 366;

/// When a goal is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// The first day.
    pub start: NaiveDate,
    /// The last day (equal to `start` for a single day).
    pub end: NaiveDate,
    /// If not empty, only these weekdays of the range are due.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<Weekday>,
}

/// Why a schedule is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The range ends before it starts.
    #[error("the range ends ({end}) before it starts ({start})")]
    EndsBeforeStart {
        /// The first day.
        start: NaiveDate,
        /// The last day.
        end: NaiveDate,
    },
    /// The range is longer than [`MAX_SPAN_DAYS`].
    #[error("the range spans {days} days; at most {MAX_SPAN_DAYS} are allowed")]
    TooLong {
        /// How many days it spans.
        days: i64,
    },
    /// Weekdays were chosen but none of them falls in the range.
    #[error("none of the chosen weekdays falls between {start} and {end}")]
    NoDay {
        /// The first day.
        start: NaiveDate,
        /// The last day.
        end: NaiveDate,
    },
}

impl Schedule {
    /// Due on one day.
    pub fn on(day: NaiveDate) -> Self {
        Self {
            start: day,
            end: day,
            weekdays: Vec::new(),
        }
    }

    /// Due every day from `start` to `end`, both included.
    pub fn daily(start: NaiveDate, end: NaiveDate) -> Self {
        Self {
            start,
            end,
            weekdays: Vec::new(),
        }
    }

    /// Due on `weekdays` from `start` to `end`, both included.
    pub fn weekly(
        start: NaiveDate,
        end: NaiveDate,
        weekdays: impl IntoIterator<Item = Weekday>,
    ) -> Self {
        let mut weekdays: Vec<Weekday> = weekdays.into_iter().collect();
        weekdays.sort_by_key(Weekday::num_days_from_monday);
        weekdays.dedup();
        Self {
            start,
            end,
            weekdays,
        }
    }

    /// Checks the schedule.
    ///
    /// # Errors
    /// The first rule it breaks.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        if self.end < self.start {
            return Err(ScheduleError::EndsBeforeStart {
                start: self.start,
                end: self.end,
            });
        }
        let days = (self.end - self.start).num_days() + 1;
        if days > MAX_SPAN_DAYS {
            return Err(ScheduleError::TooLong { days });
        }
        if self.days().next().is_none() {
            return Err(ScheduleError::NoDay {
                start: self.start,
                end: self.end,
            });
        }
        Ok(())
    }

    /// Whether the goal is due on `day`.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.start <= day
            && day <= self.end
            && (self.weekdays.is_empty() || self.weekdays.contains(&day.weekday()))
    }

    /// Every day the goal is due, in order. Bounded by [`MAX_SPAN_DAYS`] even for an
    /// invalid schedule.
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        let span = (self.end - self.start)
            .num_days()
            .clamp(-1, MAX_SPAN_DAYS - 1);
        (0..=span)
            .map(move |offset| self.start + Duration::days(offset))
            .filter(move |day| self.contains(*day))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        text.parse().expect("a test date")
    }

    #[test]
    fn weekly_days_fall_on_the_chosen_weekdays() {
        let schedule = Schedule::weekly(
            d("2026-11-01"),
            d("2026-11-15"),
            [Weekday::Wed, Weekday::Mon, Weekday::Mon],
        );
        assert_eq!(schedule.weekdays, vec![Weekday::Mon, Weekday::Wed]);
        let days: Vec<_> = schedule.days().map(|d| d.to_string()).collect();
        assert_eq!(
            days,
            ["2026-11-02", "2026-11-04", "2026-11-09", "2026-11-11"]
        );
        assert!(schedule.validate().is_ok());
    }

    #[test]
    fn invalid_schedules_are_refused() {
        assert!(matches!(
            Schedule::daily(d("2026-11-02"), d("2026-11-01")).validate(),
            Err(ScheduleError::EndsBeforeStart { .. })
        ));
        assert_eq!(
            Schedule::daily(d("2026-01-01"), d("2027-01-02")).validate(),
            Err(ScheduleError::TooLong { days: 367 })
        );
        assert!(matches!(
            Schedule::weekly(d("2026-11-03"), d("2026-11-04"), [Weekday::Sun]).validate(),
            Err(ScheduleError::NoDay { .. })
        ));
        assert_eq!(
            Schedule::daily(d("2026-11-02"), d("2026-11-01"))
                .days()
                .count(),
            0
        );
    }
}
