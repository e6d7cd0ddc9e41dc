//! In-memory adapters of every port: for tests, benches and the embedded default.
//!
//! They keep everything in the process and lose it when it ends. They are correct
//! under concurrent use (every operation takes one lock, held for no `.await`), so
//! they are also the reference behaviour the real adapters are tested against.

mod bus;
mod dead_letters;
mod event_store;
mod lease;
mod read_model;

pub use bus::MemoryEventBus;
pub use dead_letters::{DeadLetter, MemoryDeadLetters};
pub use event_store::MemoryEventStore;
pub use lease::MemoryLease;
pub use read_model::MemoryReadModelStore;

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, recovering the data if a panicking thread poisoned it: every
/// critical section here leaves the data consistent before it can panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
