//! Aggregates and the commands they decide on.

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::event::{Event, StreamId};

/// A command: a request to change one aggregate, which may be refused.
pub trait Command: Send + Sync {
    /// The id of the aggregate the command targets.
    fn aggregate_id(&self) -> String;

    /// A unique id for this command, if the caller wants it handled at most once: a
    /// command whose id was already handled returns the earlier outcome and appends
    /// nothing. Use the client's idempotency key, or a UUID made when the user acted.
    fn command_id(&self) -> Option<Uuid> {
        None
    }
}

/// A consistency boundary: decides commands into events, and evolves by applying
/// them. Both are pure and synchronous; all I/O lives in the ports around them.
///
/// ```
/// use cqrs_core::{Aggregate, Command, Event};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
/// enum LightEvent { SwitchedOn, SwitchedOff }
///
/// struct Toggle { light: String }
/// impl Command for Toggle {
///     fn aggregate_id(&self) -> String { self.light.clone() }
/// }
///
/// #[derive(Debug, Default, Clone, Serialize, Deserialize)]
/// struct Light { on: bool }
///
/// #[derive(Debug, PartialEq, thiserror::Error)]
/// #[error("never")]
/// struct Never;
///
/// impl Aggregate for Light {
///     const TYPE: &'static str = "light";
///     type Command = Toggle;
///     type Event = LightEvent;
///     type Error = Never;
///     fn handle(&self, _: &Toggle) -> Result<Vec<LightEvent>, Never> {
///         Ok(vec![if self.on { LightEvent::SwitchedOff } else { LightEvent::SwitchedOn }])
///     }
///     fn apply(&mut self, event: &LightEvent) {
///         self.on = matches!(event, LightEvent::SwitchedOn);
///     }
/// }
/// ```
pub trait Aggregate:
    Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The aggregate's type name, the prefix of its stream ids. Never change it once
    /// events are stored.
    const TYPE: &'static str;

    /// The shape version of the serialized state, for snapshots: raise it when the
    /// state's shape changes and old snapshots are ignored (the stream is replayed).
    const SNAPSHOT_SCHEMA: u32 = 1;

    /// The commands it decides on.
    type Command: Command;
    /// The events it records.
    type Event: Event;
    /// Why it refuses a command (a business rule).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decides what happens when `command` is applied to the current state.
    ///
    /// # Errors
    /// The business rule the command breaks.
    fn handle(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Evolves the state by one event. Must not fail: the event already happened.
    fn apply(&mut self, event: &Self::Event);

    /// The stream id of the aggregate with id `id`.
    fn stream_id(id: &str) -> StreamId {
        StreamId::for_aggregate(Self::TYPE, id)
    }
}
