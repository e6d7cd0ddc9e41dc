//! Reminders at each user's own 08:00, across daylight-saving changes.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use mada::notify::reminder::{Due, due, instant};

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn d(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

const EIGHT: NaiveTime = NaiveTime::from_hms_opt(8, 0, 0).unwrap();

#[test]
fn eight_oclock_is_each_users_own_across_daylight_saving() {
    let seoul: Tz = "Asia/Seoul".parse().unwrap();
    let la: Tz = "America/Los_Angeles".parse().unwrap();
    // Seoul has no daylight saving: always UTC+9.
    assert_eq!(
        instant(seoul, d("2026-03-07"), EIGHT),
        Some(utc("2026-03-06T23:00:00Z"))
    );
    assert_eq!(
        instant(seoul, d("2026-03-09"), EIGHT),
        Some(utc("2026-03-08T23:00:00Z"))
    );
    // Los Angeles moves to PDT on 8 March 2026: 08:00 is 16:00 UTC before, 15:00 after.
    assert_eq!(
        instant(la, d("2026-03-07"), EIGHT),
        Some(utc("2026-03-07T16:00:00Z"))
    );
    assert_eq!(
        instant(la, d("2026-03-08"), EIGHT),
        Some(utc("2026-03-08T15:00:00Z"))
    );
    // And back to PST on 1 November 2026.
    assert_eq!(
        instant(la, d("2026-10-31"), EIGHT),
        Some(utc("2026-10-31T15:00:00Z"))
    );
    assert_eq!(
        instant(la, d("2026-11-01"), EIGHT),
        Some(utc("2026-11-01T16:00:00Z"))
    );
    // A time in the spring gap (02:30 does not exist on 8 March) comes at 03:00.
    let half_two = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
    assert_eq!(
        instant(la, d("2026-03-08"), half_two),
        Some(utc("2026-03-08T10:00:00Z"))
    );
    // A time in the autumn fold (01:30 happens twice on 1 November): the first.
    let half_one = NaiveTime::from_hms_opt(1, 30, 0).unwrap();
    assert_eq!(
        instant(la, d("2026-11-01"), half_one),
        Some(utc("2026-11-01T08:30:00Z"))
    );
}

#[test]
fn a_reminder_is_due_once_per_local_day_and_stale_after_the_window() {
    let la: Tz = "America/Los_Angeles".parse().unwrap();
    let window = Duration::hours(2);
    // 07:59 in LA on the DST day: not yet.
    assert_eq!(
        due(utc("2026-03-08T14:59:00Z"), la, EIGHT, None, window),
        Due::No
    );
    // 08:00 PDT.
    assert_eq!(
        due(utc("2026-03-08T15:00:00Z"), la, EIGHT, None, window),
        Due::Yes {
            day: d("2026-03-08"),
            late: Duration::zero()
        }
    );
    // Handled already for that day.
    assert_eq!(
        due(
            utc("2026-03-08T15:30:00Z"),
            la,
            EIGHT,
            Some(d("2026-03-08")),
            window
        ),
        Due::No
    );
    // Three hours late: stale.
    assert_eq!(
        due(
            utc("2026-03-08T18:00:01Z"),
            la,
            EIGHT,
            Some(d("2026-03-07")),
            window
        ),
        Due::Stale {
            day: d("2026-03-08")
        }
    );
    // At 23:00 UTC it is already the next day in Seoul, and 08:00 there.
    let seoul: Tz = "Asia/Seoul".parse().unwrap();
    assert_eq!(
        due(
            utc("2026-11-26T23:00:00Z"),
            seoul,
            EIGHT,
            Some(d("2026-11-26")),
            window
        ),
        Due::Yes {
            day: d("2026-11-27"),
            late: Duration::zero()
        }
    );
}
