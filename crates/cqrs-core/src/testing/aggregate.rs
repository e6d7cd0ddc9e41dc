//! [`AggregateTest`]: `given(events).when(command).then_expect_events(..)`.

use std::fmt::Debug;

use crate::aggregate::Aggregate;
use crate::event::Event;

/// Tests an aggregate's decisions without any store.
///
/// ```
/// # use cqrs_core::{Aggregate, Command, Event};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
/// # enum DoorEvent { Opened, Closed }
/// # enum DoorCommand { Open, Close }
/// # impl Command for DoorCommand { fn aggregate_id(&self) -> String { "front".into() } }
/// # #[derive(Debug, PartialEq, thiserror::Error)]
/// # enum DoorError { #[error("already open")] AlreadyOpen, #[error("already closed")] AlreadyClosed }
/// # #[derive(Debug, Default, Clone, Serialize, Deserialize)]
/// # struct Door { open: bool }
/// # impl Aggregate for Door {
/// #     const TYPE: &'static str = "door";
/// #     type Command = DoorCommand;
/// #     type Event = DoorEvent;
/// #     type Error = DoorError;
/// #     fn handle(&self, c: &DoorCommand) -> Result<Vec<DoorEvent>, DoorError> {
/// #         match (c, self.open) {
/// #             (DoorCommand::Open, true) => Err(DoorError::AlreadyOpen),
/// #             (DoorCommand::Open, false) => Ok(vec![DoorEvent::Opened]),
/// #             (DoorCommand::Close, false) => Err(DoorError::AlreadyClosed),
/// #             (DoorCommand::Close, true) => Ok(vec![DoorEvent::Closed]),
/// #         }
/// #     }
/// #     fn apply(&mut self, e: &DoorEvent) { self.open = matches!(e, DoorEvent::Opened) }
/// # }
/// use cqrs_core::testing::AggregateTest;
///
/// AggregateTest::<Door>::given([DoorEvent::Opened])
///     .when(DoorCommand::Close)
///     .then_expect_events([DoorEvent::Closed]);
/// AggregateTest::<Door>::given_no_events()
///     .when(DoorCommand::Close)
///     .then_expect_error(DoorError::AlreadyClosed);
/// ```
#[derive(Debug)]
pub struct AggregateTest<A> {
    state: A,
}

impl<A: Aggregate> AggregateTest<A> {
    /// Starts from the state after `events` (each round-tripped through its stored
    /// form first).
    ///
    /// # Panics
    /// If an event does not survive encoding and decoding.
    #[track_caller]
    pub fn given(events: impl IntoIterator<Item = A::Event>) -> Self {
        let mut state = A::default();
        for event in events {
            state.apply(&round_trip(&event));
        }
        Self { state }
    }

    /// Starts from the state of a new aggregate.
    pub fn given_no_events() -> Self {
        Self {
            state: A::default(),
        }
    }

    /// Decides `command` against the state.
    pub fn when(self, command: A::Command) -> AggregateThen<A> {
        let result = self.state.handle(&command);
        AggregateThen {
            state: self.state,
            result,
        }
    }
}

/// The outcome of [`AggregateTest::when`], to check.
#[derive(Debug)]
pub struct AggregateThen<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> AggregateThen<A> {
    /// Asserts the command produced exactly `expected`, and that each produced event
    /// survives encoding and decoding.
    ///
    /// # Panics
    /// If it did not.
    #[track_caller]
    pub fn then_expect_events(self, expected: impl IntoIterator<Item = A::Event>)
    where
        A::Event: PartialEq + Debug,
        A::Error: Debug,
    {
        let expected: Vec<_> = expected.into_iter().collect();
        match self.result {
            Ok(events) => {
                for event in &events {
                    assert_eq!(
                        &round_trip(event),
                        event,
                        "event changed in a round trip through its stored form"
                    );
                }
                assert_eq!(events, expected, "the command produced other events");
            }
            Err(error) => {
                panic!("expected events {expected:?}, the command was rejected: {error:?}")
            }
        }
    }

    /// Asserts the command was rejected with `expected`.
    ///
    /// # Panics
    /// If it was not.
    #[track_caller]
    pub fn then_expect_error(self, expected: A::Error)
    where
        A::Event: Debug,
        A::Error: PartialEq + Debug,
    {
        match self.result {
            Ok(events) => panic!("expected error {expected:?}, the command produced {events:?}"),
            Err(error) => assert_eq!(
                error, expected,
                "the command was rejected with another error"
            ),
        }
    }

    /// Asserts the command was rejected with an error that `check` accepts.
    ///
    /// # Panics
    /// If it was not.
    #[track_caller]
    pub fn then_expect_error_matching(self, check: impl FnOnce(&A::Error) -> bool)
    where
        A::Event: Debug,
        A::Error: Debug,
    {
        match self.result {
            Ok(events) => panic!("expected an error, the command produced {events:?}"),
            Err(error) => assert!(check(&error), "unexpected error: {error:?}"),
        }
    }

    /// The state after applying the produced events, to check further.
    ///
    /// # Panics
    /// If the command was rejected.
    #[track_caller]
    pub fn then_state(self) -> A
    where
        A::Error: Debug,
    {
        match self.result {
            Ok(events) => {
                let mut state = self.state;
                for event in &events {
                    state.apply(event);
                }
                state
            }
            Err(error) => panic!("expected events, the command was rejected: {error:?}"),
        }
    }
}

#[track_caller]
fn round_trip<E: Event>(event: &E) -> E {
    match event.encode().and_then(E::decode) {
        Ok(decoded) => decoded,
        Err(error) => panic!(
            "event `{}` does not survive its stored form: {error}",
            event.event_type()
        ),
    }
}
