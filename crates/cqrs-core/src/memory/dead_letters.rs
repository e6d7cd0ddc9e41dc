//! [`MemoryDeadLetters`]: set-aside events, in memory.

use std::sync::{Arc, Mutex};

use super::lock;
use crate::error::Error;
use crate::event::RecordedEvent;
use crate::ports::DeadLetters;

/// An event a runner set aside, as [`MemoryDeadLetters`] keeps it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The read model that could not apply it.
    pub projection: String,
    /// The event.
    pub event: RecordedEvent,
    /// Why, as displayed.
    pub error: String,
}

/// Dead letters in memory, for tests and the embedded default. Cheap to clone:
/// clones share the letters.
#[derive(Debug, Clone, Default)]
pub struct MemoryDeadLetters {
    letters: Arc<Mutex<Vec<DeadLetter>>>,
}

impl MemoryDeadLetters {
    /// No letters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every letter, oldest first.
    pub fn letters(&self) -> Vec<DeadLetter> {
        lock(&self.letters).clone()
    }
}

impl DeadLetters for MemoryDeadLetters {
    async fn set_aside(
        &self,
        projection: &str,
        event: &RecordedEvent,
        error: &Error,
    ) -> Result<(), Error> {
        lock(&self.letters).push(DeadLetter {
            projection: projection.to_owned(),
            event: event.clone(),
            error: error.to_string(),
        });
        Ok(())
    }
}
