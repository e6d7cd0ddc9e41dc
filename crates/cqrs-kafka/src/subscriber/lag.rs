//! The consumer's lag, from librdkafka's statistics: no extra request to the broker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::statistics::Statistics;

/// How often librdkafka reports its statistics, in milliseconds.
pub(super) const INTERVAL_MS: &str = "1000";

/// Unknown yet.
const UNKNOWN: u64 = u64::MAX;

/// The last measured lag, shared by a subscriber and its subscriptions.
#[derive(Debug, Clone)]
pub(super) struct Lag(Arc<AtomicU64>);

impl Default for Lag {
    fn default() -> Self {
        Self(Arc::new(AtomicU64::new(UNKNOWN)))
    }
}

impl Lag {
    /// Records behind the partitions' ends, summed, if measured.
    pub(super) fn get(&self) -> Option<u64> {
        match self.0.load(Ordering::Relaxed) {
            UNKNOWN => None,
            lag => Some(lag),
        }
    }
}

/// The consumer's context: keeps the lag from each statistics report.
pub(super) struct LagContext(pub(super) Lag);

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        // Per partition: its end (the last stable offset, for read_committed) minus
        // the committed offset, which moves only once a batch is stored. Partition
        // -1 is librdkafka's internal one; -1 means not known yet.
        let lags = statistics
            .topics
            .values()
            .flat_map(|topic| topic.partitions.values())
            .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
            .map(|p| u64::try_from(p.consumer_lag).unwrap_or(0));
        let mut total = None;
        for lag in lags {
            total = Some(total.unwrap_or(0) + lag);
        }
        if let Some(total) = total {
            (self.0).0.store(total, Ordering::Relaxed);
            tracing::debug!(lag = total, "Kafka consumer lag");
        }
    }
}

impl ConsumerContext for LagContext {}
