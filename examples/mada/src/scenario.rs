//! The demo: a scripted month of one user's planning.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use cqrs_core::{EventStore, EventSubscriber, ReadModelStore};

use crate::app::{NewGoal, Planner, PlannerError, TodayView};
use crate::domain::Schedule;
use crate::projections::{CategoryList, MonthCalendar};

/// What the scenario leaves in the read models, and the commands it saw refused.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    /// The user.
    pub user: String,
    /// The day the scenario calls today.
    pub today: NaiveDate,
    /// Today's list.
    pub today_list: TodayView,
    /// This month's calendar.
    pub month: MonthCalendar,
    /// The user's categories.
    pub categories: CategoryList,
    /// The refused commands: what was tried and why it was refused.
    pub rejections: Vec<(String, String)>,
    /// How many commands were accepted.
    pub commands: usize,
}

fn month_bounds(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    let first = day.with_day(1).unwrap_or(day);
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    };
    let last = next.and_then(|n| n.pred_opt()).unwrap_or(day);
    (first, last)
}

/// Runs the scenario for `user`, taking `today` as the current day: creates
/// categories and goals, completes goals on past days and today, deletes a goal,
/// renames and recolours categories, tries commands the rules refuse, and reads
/// today's list, the month's calendar and the categories back from the read models.
///
/// # Errors
/// Any failure other than the refusals the scenario means to show.
pub async fn run<S, P, K>(
    planner: &Planner<S, P, K>,
    user: &str,
    today: NaiveDate,
) -> Result<ScenarioReport, PlannerError>
where
    S: EventStore + EventSubscriber + Clone + 'static,
    P: ReadModelStore + Clone + 'static,
    K: ReadModelStore + Clone + 'static,
{
    let (first, last) = month_bounds(today);
    let mut commands = 0;

    let health = planner.create_category(user, "Health", "#2e7d32").await?;
    let learning = planner.create_category(user, "Learning", "#1565c0").await?;
    let home = planner.create_category(user, "Home", "#ef6c00").await?;
    let goal = |title: &str, category_id, schedule, memo: Option<&str>| NewGoal {
        title: title.into(),
        memo: memo.map(Into::into),
        category_id,
        schedule,
    };
    let run = planner
        .create_goal(
            user,
            goal(
                "Morning run",
                health,
                Schedule::weekly_from(first, [Weekday::Mon, Weekday::Wed, Weekday::Fri]),
                None,
            ),
        )
        .await?;
    let read = planner
        .create_goal(
            user,
            goal(
                "Read 20 pages",
                learning,
                Schedule::daily(first, last),
                Some("The Rust book, a chapter at a time"),
            ),
        )
        .await?;
    let plants = planner
        .create_goal(
            user,
            goal("Water the plants", home, Schedule::on(today), None),
        )
        .await?;
    let dentist = planner
        .create_goal(
            user,
            goal(
                "Call the dentist",
                health,
                Schedule::on(today),
                Some("Before noon"),
            ),
        )
        .await?;
    let garage = planner
        .create_goal(
            user,
            goal("Tidy the garage", home, Schedule::on(today), None),
        )
        .await?;
    commands += 8;

    // The past days of the month: reading done two days out of three, every run done.
    let mut day = first;
    while day < today {
        if day.day() % 3 != 0 {
            planner.complete_goal(user, read, day).await?;
            commands += 1;
        }
        if matches!(day.weekday(), Weekday::Mon | Weekday::Wed | Weekday::Fri) {
            planner.complete_goal(user, run, day).await?;
            commands += 1;
        }
        day += Duration::days(1);
    }
    // Today.
    planner.complete_goal(user, read, today).await?;
    commands += 1;
    planner.complete_goal(user, plants, today).await?;
    commands += 1;
    planner.complete_goal(user, dentist, today).await?;
    commands += 1;
    planner.uncomplete_goal(user, dentist, today).await?;
    commands += 1; // not yet, after all
    planner.delete_goal(user, garage).await?;
    commands += 1;
    planner.rename_category(user, learning, "Study").await?;
    commands += 1;
    planner.recolour_category(user, home, "#8e24aa").await?;
    commands += 1;

    // Commands the rules refuse.
    let mut rejections = Vec::new();
    let tomorrow = today + Duration::days(1);
    let mut refused = |what: &str, result: Result<(), PlannerError>| match result {
        Err(e @ (PlannerError::Goal(_) | PlannerError::Category(_))) => {
            rejections.push((what.to_owned(), e.to_string()));
            Ok(())
        }
        Err(other) => Err(other),
        Ok(()) => Err(PlannerError::Store(cqrs_core::Error::InvalidInput(
            format!("`{what}` was accepted"),
        ))),
    };
    refused(
        "complete \"Water the plants\" tomorrow",
        planner.complete_goal(user, plants, tomorrow).await,
    )?;
    refused(
        "create a goal with a blank title",
        planner
            .create_goal(user, goal("   ", home, Schedule::on(today), None))
            .await
            .map(drop),
    )?;
    let old = planner
        .create_category(user, "Old stuff", "#9e9e9e")
        .await?;
    planner.delete_category(user, old).await?;
    commands += 2;
    refused(
        "create a goal in a deleted category",
        planner
            .create_goal(user, goal("Sort the attic", old, Schedule::on(today), None))
            .await
            .map(drop),
    )?;
    refused(
        "rename a category to 41 characters",
        planner.rename_category(user, health, &"x".repeat(41)).await,
    )?;
    refused(
        "edit a deleted goal",
        planner
            .edit_goal(user, garage, "Tidy the shed", None, home)
            .await,
    )?;
    refused(
        "use the colour \"blue\"",
        planner.recolour_category(user, home, "blue").await,
    )?;

    Ok(ScenarioReport {
        user: user.to_owned(),
        today,
        today_list: planner.today(user, today).await?,
        month: planner.month(user, today.year(), today.month()).await?,
        categories: planner.categories(user).await?,
        rejections,
        commands,
    })
}
