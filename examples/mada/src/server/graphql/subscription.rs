//! The subscription: a user's list for a day, pushed whenever it changes.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, Result, Subscription};
use futures::Stream;

use super::errors::{Code, has_code};
use super::types::{Date, TodayList};
use super::{Api, parts};
use crate::TodayView;

/// The root of subscriptions.
#[derive(Debug, Default)]
pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// The signed-in user's list for `date`: now, then again each time it changes
    /// (a goal done or added, a category renamed, ...). A store outage does not end
    /// it: the list is pushed again once it can be read.
    async fn today(
        &self,
        ctx: &Context<'_>,
        date: Date,
    ) -> Result<impl Stream<Item = Result<TodayList>> + use<>> {
        let (caller, api) = parts(ctx)?;
        let caller = caller.clone();
        let planner = Arc::clone(&api.planner);
        let api = Api {
            planner: Arc::clone(&planner),
            read_wait: api.read_wait,
        };
        let state = (api, caller, planner.changes(), None::<TodayView>);
        Ok(futures::stream::unfold(
            Some(state),
            move |state| async move {
                let (api, caller, mut changes, last) = state?;
                let mut pause = Duration::from_millis(250);
                loop {
                    match api.today(&caller, date).await {
                        // A store outage: the subscription stays; the list is read
                        // again when the read models move or after a pause (250 ms
                        // doubling to 5 s), and pushed once it can be.
                        Err(error) if has_code(&error, Code::Unavailable) => {
                            tokio::select! {
                                more = changes.next() => if !more { return None },
                                () = tokio::time::sleep(pause) => {}
                            }
                            pause = (pause * 2).min(Duration::from_secs(5));
                            continue;
                        }
                        Err(error) => return Some((Err(error), None)),
                        Ok(view) if last.as_ref() != Some(&view) => {
                            let list = TodayList::from(&view);
                            return Some((Ok(list), Some((api, caller, changes, Some(view)))));
                        }
                        Ok(_) => {}
                    }
                    if !changes.next().await {
                        return None;
                    }
                }
            },
        ))
    }
}
