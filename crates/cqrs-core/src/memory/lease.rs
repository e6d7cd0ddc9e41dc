//! [`MemoryLease`]: leases in memory, for runners in one process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::lock;
use crate::error::Error;
use crate::ports::Lease;

/// Leases in memory: enough to keep two runners in one process from driving the same
/// projection, and the reference behaviour of the real lease stores. Cheap to clone:
/// clones share the leases.
#[derive(Clone, Debug, Default)]
pub struct MemoryLease {
    held: Arc<Mutex<HashMap<String, (String, Instant)>>>,
}

impl MemoryLease {
    /// No lease held.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Lease for MemoryLease {
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, Error> {
        let mut held = lock(&self.held);
        let now = Instant::now();
        match held.get(name) {
            Some((owner, until)) if owner != holder && *until > now => Ok(false),
            _ => {
                held.insert(name.to_owned(), (holder.to_owned(), now + ttl));
                Ok(true)
            }
        }
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), Error> {
        let mut held = lock(&self.held);
        if held.get(name).is_some_and(|(owner, _)| owner == holder) {
            held.remove(name);
        }
        Ok(())
    }
}
