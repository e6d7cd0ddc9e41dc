//! When a user's daily reminder is due, and the messages the notifier sends: pure
//! functions of the time, the user's settings and their day.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use crate::projections::TodayList;

/// A reminder to send now: the user's local day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Not yet today (local), or already handled for this day.
    No,
    /// Due for `day` (local), `late` after its time.
    Yes {
        /// The user's local day.
        day: NaiveDate,
        /// How long after the reminder time it is.
        late: Duration,
    },
    /// Due for `day`, but more than the stale window ago: skip it.
    Stale {
        /// The user's local day.
        day: NaiveDate,
    },
}

/// The instant `at` happens on `day` in `tz`: the earlier of two in an autumn
/// fold, and in a spring gap the first minute after it (08:00 never falls in one,
/// but 02:30 does).
pub fn instant(tz: Tz, day: NaiveDate, at: NaiveTime) -> Option<DateTime<Utc>> {
    let mut local = day.and_time(at);
    for _ in 0..180 {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                return Some(t.with_timezone(&Utc));
            }
            LocalResult::None => local += Duration::minutes(1),
        }
    }
    None
}

/// Whether the reminder at `at` in `tz` is due at `now`, given the last local day
/// it was handled for, and how late it may be sent (`stale`).
pub fn due(
    now: DateTime<Utc>,
    tz: Tz,
    at: NaiveTime,
    handled: Option<NaiveDate>,
    stale: Duration,
) -> Due {
    let day = now.with_timezone(&tz).date_naive();
    if handled.is_some_and(|h| h >= day) {
        return Due::No;
    }
    let Some(when) = instant(tz, day, at) else {
        return Due::No;
    };
    if now < when {
        return Due::No;
    }
    let late = now - when;
    if late > stale {
        Due::Stale { day }
    } else {
        Due::Yes { day, late }
    }
}

/// The collapse key of a notification: the same notification sent twice (after a
/// crash between sending and recording it) replaces itself on the device.
fn collapse(key: &str) -> Value {
    // APNs collapse ids are at most 64 bytes.
    let apns: String = key.chars().take(64).collect();
    json!({
        "android": { "collapse_key": key, "notification": { "tag": key } },
        "apns": { "headers": { "apns-collapse-id": apns } },
    })
}

fn merge(mut message: Value, extra: Value) -> Value {
    if let (Some(m), Some(e)) = (message.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
    }
    message
}

/// The reminder for `list` to `device`, or `None` when nothing is left to do.
pub fn reminder_message(list: &TodayList, device: &str, key: &str) -> Option<Value> {
    let left: Vec<&str> = list
        .items
        .iter()
        .filter(|item| !item.done)
        .map(|item| item.title.as_str())
        .collect();
    if left.is_empty() {
        return None;
    }
    let body = match left.len() {
        1 => format!("1 goal left today: {}", left[0]),
        n => format!("{n} goals left today: {}", left.join(", ")),
    };
    let message = json!({
        "token": device,
        "notification": { "title": "Today in MADA", "body": body },
        "data": { "kind": "reminder", "date": list.day.to_string(), "left": left.len().to_string() },
    });
    Some(merge(message, collapse(key)))
}

/// The data message telling `device` that a goal changed elsewhere.
pub fn sync_message(device: &str, key: &str, goal: &str, day: NaiveDate, done: bool) -> Value {
    let message = json!({
        "token": device,
        "data": { "kind": "goal_changed", "goal_id": goal, "date": day.to_string(), "done": done.to_string() },
    });
    merge(message, collapse(key))
}
