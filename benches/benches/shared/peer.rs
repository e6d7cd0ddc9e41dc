//! The peer: MADA's Goal as a cqrs-es 0.5 aggregate, deciding with the same pure
//! code, for the benches that measure cqrs-postgres and cqrs-mysql beside
//! postgres-es and mysql-es. Included by those benches (`#[path]`), not a target.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate as PeerAggregate, DomainEvent};
use mada::domain::{Goal, GoalCommand, GoalError, GoalEvent};
use serde::{Deserialize, Serialize};

/// MADA's goal events, as cqrs-es domain events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct PeerEvent(GoalEvent);

impl DomainEvent for PeerEvent {
    fn event_type(&self) -> String {
        cqrs_core::Event::event_type(&self.0).to_owned()
    }
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// MADA's goal, deciding with the same pure code, as a cqrs-es aggregate.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct PeerGoal(Goal);

impl PeerAggregate for PeerGoal {
    const TYPE: &'static str = "goal";
    type Command = GoalCommand;
    type Event = PeerEvent;
    type Error = GoalError;
    type Services = ();

    async fn handle(
        &mut self,
        command: GoalCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), GoalError> {
        for event in cqrs_core::Aggregate::handle(&self.0, &command)? {
            sink.write(PeerEvent(event), self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: PeerEvent) {
        cqrs_core::Aggregate::apply(&mut self.0, &event.0);
    }
}
