//! Text rendering of the read models, for the terminal.

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};

use crate::app::TodayView;
use crate::projections::{CategoryList, MonthCalendar};
use crate::scenario::ScenarioReport;

/// Today's list as text.
pub fn today(view: &TodayView, user: &str) -> String {
    let mut out = format!("Today, {} ({user})\n", view.day.format("%A %-d %B %Y"));
    if view.items.is_empty() {
        out.push_str("  nothing planned\n");
    }
    for item in &view.items {
        let category = item.category.as_ref().map_or_else(
            || "(no category)".to_owned(),
            |c| format!("{} {}", c.name, c.colour),
        );
        let _ = write!(
            out,
            "  [{}] {:<22} {:<18}",
            if item.done { 'x' } else { ' ' },
            item.title,
            category
        );
        if let Some(memo) = &item.memo {
            let _ = write!(out, " {memo}");
        }
        out = out.trim_end().to_owned();
        out.push('\n');
    }
    let done = view.items.iter().filter(|i| i.done).count();
    let _ = writeln!(out, "  {done} of {} done", view.items.len());
    out
}

/// A month calendar as a grid of `done/due` counts; `today` is marked with `*`.
pub fn calendar(month: &MonthCalendar, today: Option<NaiveDate>) -> String {
    let Some(first) = NaiveDate::from_ymd_opt(month.year, month.month, 1) else {
        return String::new();
    };
    let mut out = format!("{}: goals done/due per day\n", first.format("%B %Y"));
    out.push_str("  Mon     Tue     Wed     Thu     Fri     Sat     Sun\n");
    let offset = first.weekday().num_days_from_monday() as usize;
    let mut line = " ".repeat(8 * offset);
    let mut day = first;
    while day.month() == month.month {
        let mark = if Some(day) == today { '*' } else { ' ' };
        let cell = match month.days.get(&day.day()) {
            Some(count) => format!("{:>2}{mark}{}/{}", day.day(), count.done, count.scheduled),
            None => format!("{:>2}{mark}", day.day()),
        };
        let _ = write!(line, "{cell:<8}");
        if day.weekday().num_days_from_monday() == 6 {
            out.push_str(line.trim_end());
            out.push('\n');
            line.clear();
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    if !line.trim().is_empty() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The category list as text.
pub fn categories(list: &CategoryList) -> String {
    let mut out = String::from("Categories\n");
    for c in &list.categories {
        let _ = writeln!(out, "  {:<12} {}", c.name, c.colour);
    }
    out
}

/// The whole scenario report; `stores` names where it ran ("the in-memory store").
pub fn report(report: &ScenarioReport, stores: &str) -> String {
    let mut out = format!(
        "MADA demo: {} commands for user `{}` on {stores}\n\n",
        report.commands, report.user
    );
    out.push_str("Refused by the business rules, as they should be:\n");
    for (what, why) in &report.rejections {
        let _ = writeln!(out, "  - {what}: {why}");
    }
    out.push('\n');
    out.push_str(&today(&report.today_list, &report.user));
    out.push('\n');
    out.push_str(&calendar(&report.month, Some(report.today)));
    out.push('\n');
    out.push_str(&categories(&report.categories));
    out
}
