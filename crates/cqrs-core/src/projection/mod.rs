//! Projections: pure functions from events to read-model documents, and the runner
//! that keeps them up to date.

mod apply;
mod cut_over;
mod handle;
mod read_model;
mod runner;

pub use apply::{Guard, ProjectionBatch};
pub use cut_over::{Aliased, CutOver, CutOverOptions, cut_over};
pub use handle::{ProjectionHandle, ProjectionStats};
pub use read_model::ReadModel;
pub use runner::ProjectionRunner;

pub(crate) use apply::apply_batch;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::event::{Envelope, Event};
use crate::ports::Index;

/// Builds a read model: a set of JSON documents, each shaped for one screen or query.
///
/// For each event, [`document_ids`](Projection::document_ids) names the documents it
/// changes, and [`apply`](Projection::apply) changes each one. Both are pure and
/// synchronous; the runner loads the documents, applies a whole batch, and commits the
/// changes with the projection's checkpoint. The runner applies an event to a document
/// at most once, using the position each document records, so `apply` may increment
/// counters safely.
///
/// ```
/// use cqrs_core::{Envelope, Event, Projection};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Serialize, Deserialize, Event)]
/// enum AccountEvent { Deposited { owner: String, amount: u64 } }
///
/// #[derive(Debug, Default, Serialize, Deserialize)]
/// struct Total { amount: u64 }
///
/// struct TotalsByOwner;
/// impl Projection for TotalsByOwner {
///     const NAME: &'static str = "totals_by_owner";
///     type Event = AccountEvent;
///     type Document = Total;
///     fn document_ids(&self, event: &Envelope<AccountEvent>) -> Vec<String> {
///         match &event.event { AccountEvent::Deposited { owner, .. } => vec![owner.clone()] }
///     }
///     fn apply(&self, _id: &str, doc: &mut Option<Total>, event: &Envelope<AccountEvent>) {
///         let AccountEvent::Deposited { amount, .. } = &event.event;
///         doc.get_or_insert_with(Total::default).amount += amount;
///     }
/// }
/// ```
pub trait Projection: Send + Sync + 'static {
    /// The default name: the read model's namespace (collection, key prefix, table)
    /// and the key of its checkpoint. A runner can use another, for a rebuild beside
    /// the live version.
    const NAME: &'static str;

    /// The events it reads; stored events of other types are skipped.
    type Event: Event;

    /// The documents it writes.
    type Document: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The ids of the documents `event` changes (none if it changes nothing).
    fn document_ids(&self, event: &Envelope<Self::Event>) -> Vec<String>;

    /// Applies `event` to document `id` (`None` if it does not exist). Setting it to
    /// `None` deletes it.
    fn apply(&self, id: &str, document: &mut Option<Self::Document>, event: &Envelope<Self::Event>);

    /// The indexes the read side queries the documents by; stores that have indexes
    /// create them when a runner starts. None by default.
    fn indexes(&self) -> Vec<Index> {
        Vec::new()
    }
}
