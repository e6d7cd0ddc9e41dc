//! [`GroupCommitStats`]: what an event store's group commit has done, for the
//! adapters that group concurrent appends into shared transactions.

use std::sync::atomic::{AtomicU64, Ordering};

/// How group commit has gone so far: for tuning, and to see that groups form.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupCommitStats {
    /// Transactions that carried more than one append.
    pub groups: u64,
    /// Appends that went in those transactions.
    pub grouped_appends: u64,
    /// Appends that went alone (few others in progress, nobody else waiting, or
    /// one a group could not take).
    pub alone: u64,
}

/// The counters behind [`GroupCommitStats`], shared by a store's clones (an
/// adapter keeps one in an `Arc`).
#[derive(Debug, Default)]
pub struct GroupCommitCounters {
    groups: AtomicU64,
    grouped_appends: AtomicU64,
    alone: AtomicU64,
}

impl GroupCommitCounters {
    /// Counts a transaction that carried `appends` appends.
    pub fn group(&self, appends: usize) {
        self.groups.fetch_add(1, Ordering::Relaxed);
        let appends = u64::try_from(appends).unwrap_or(u64::MAX);
        self.grouped_appends.fetch_add(appends, Ordering::Relaxed);
    }

    /// Counts `appends` appends that went alone.
    pub fn alone(&self, appends: usize) {
        let appends = u64::try_from(appends).unwrap_or(u64::MAX);
        self.alone.fetch_add(appends, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            groups: self.groups.load(Ordering::Relaxed),
            grouped_appends: self.grouped_appends.load(Ordering::Relaxed),
            alone: self.alone.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up() {
        let counters = GroupCommitCounters::default();
        counters.group(3);
        counters.group(5);
        counters.alone(2);
        let stats = counters.stats();
        assert_eq!(
            (stats.groups, stats.grouped_appends, stats.alone),
            (2, 8, 2)
        );
    }
}
