//! When a goal is due: one date, a date range, or every day from a date on with no
//! end, optionally only on chosen weekdays.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// When a goal is due.
///
/// A schedule may have no end ("every Monday and Thursday from now on"): nothing in
/// MADA enumerates a schedule's days as a whole; the read side asks which days of a
/// window are due ([`days_between`](Self::days_between)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// The first day.
    pub start: NaiveDate,
    /// The last day (equal to `start` for a single day), or `None`: no end.
    #[serde(default)]
    pub end: Option<NaiveDate>,
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
            end: Some(day),
            weekdays: Vec::new(),
        }
    }

    /// Due every day from `start` to `end`, both included.
    pub fn daily(start: NaiveDate, end: NaiveDate) -> Self {
        Self {
            start,
            end: Some(end),
            weekdays: Vec::new(),
        }
    }

    /// Due every day from `start` on, with no end.
    pub fn every_day_from(start: NaiveDate) -> Self {
        Self {
            start,
            end: None,
            weekdays: Vec::new(),
        }
    }

    /// Due on `weekdays` from `start` to `end`, both included.
    pub fn weekly(
        start: NaiveDate,
        end: NaiveDate,
        weekdays: impl IntoIterator<Item = Weekday>,
    ) -> Self {
        Self::weekly_from(start, weekdays).until(end)
    }

    /// Due on `weekdays` from `start` on, with no end.
    pub fn weekly_from(start: NaiveDate, weekdays: impl IntoIterator<Item = Weekday>) -> Self {
        let mut weekdays: Vec<Weekday> = weekdays.into_iter().collect();
        weekdays.sort_by_key(Weekday::num_days_from_monday);
        weekdays.dedup();
        Self {
            start,
            end: None,
            weekdays,
        }
    }

    /// The same schedule, ending on `end` (included).
    #[must_use]
    pub fn until(mut self, end: NaiveDate) -> Self {
        self.end = Some(end);
        self
    }

    /// Checks the schedule.
    ///
    /// # Errors
    /// The first rule it breaks.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        // With no end, every weekday comes round within a week of the start.
        let Some(end) = self.end else {
            return Ok(());
        };
        if end < self.start {
            return Err(ScheduleError::EndsBeforeStart {
                start: self.start,
                end,
            });
        }
        if self.days_between(self.start, end).next().is_none() {
            return Err(ScheduleError::NoDay {
                start: self.start,
                end,
            });
        }
        Ok(())
    }

    /// Whether the goal is due on `day`.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.start <= day
            && self.end.is_none_or(|end| day <= end)
            && (self.weekdays.is_empty() || self.weekdays.contains(&day.weekday()))
    }

    /// The days from `first` to `last` (both included) on which the goal is due, in
    /// order: at most `last - first + 1` of them, whatever the schedule.
    pub fn days_between(
        &self,
        first: NaiveDate,
        last: NaiveDate,
    ) -> impl Iterator<Item = NaiveDate> + '_ {
        let from = first.max(self.start);
        let to = self.end.map_or(last, |end| end.min(last));
        let span = (to - from).num_days().max(-1);
        (0..=span)
            .map(move |offset| from + Duration::days(offset))
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
        let days: Vec<_> = schedule
            .days_between(d("2026-01-01"), d("2026-12-31"))
            .map(|d| d.to_string())
            .collect();
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
        // Long ranges are fine: nothing enumerates them.
        assert!(
            Schedule::daily(d("2026-01-01"), d("2036-01-02"))
                .validate()
                .is_ok()
        );
        assert!(matches!(
            Schedule::weekly(d("2026-11-03"), d("2026-11-04"), [Weekday::Sun]).validate(),
            Err(ScheduleError::NoDay { .. })
        ));
        assert_eq!(
            Schedule::daily(d("2026-11-02"), d("2026-11-01"))
                .days_between(d("2026-01-01"), d("2026-12-31"))
                .count(),
            0
        );
    }

    #[test]
    fn an_open_ended_schedule_is_due_years_later_and_only_on_its_weekdays() {
        let schedule = Schedule::weekly_from(d("2026-11-02"), [Weekday::Mon, Weekday::Thu]);
        assert!(schedule.validate().is_ok());
        assert!(!schedule.contains(d("2026-10-29")), "not before its start");
        assert!(
            schedule.contains(d("2029-11-05")),
            "a Monday three years on"
        );
        assert!(!schedule.contains(d("2029-11-06")), "a Tuesday");
        let days: Vec<_> = schedule
            .days_between(d("2031-03-01"), d("2031-03-10"))
            .map(|d| d.to_string())
            .collect();
        assert_eq!(days, ["2031-03-03", "2031-03-06", "2031-03-10"]);
        let ended = schedule.clone().until(d("2026-11-05"));
        assert!(!ended.contains(d("2026-11-09")));
        assert_eq!(
            Schedule::every_day_from(d("2026-11-25"))
                .days_between(d("2026-11-01"), d("2026-11-30"))
                .count(),
            6
        );
    }
}
