//! The repository's aggregate cache: a bounded, scan-resistant cache (S3-FIFO, from
//! `quick_cache`) of aggregates as this process last wrote them.

use crate::event::StreamId;

use super::Loaded;

/// Aggregates as last written by a repository, keyed by stream. Entries read often
/// stay; a burst of one-off aggregates evicts each other, not the hot ones.
pub(super) struct Cache<A> {
    entries: quick_cache::sync::Cache<StreamId, Loaded<A>>,
}

impl<A: Clone> Cache<A> {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(capacity),
        }
    }

    pub(super) fn get(&self, stream_id: &StreamId) -> Option<Loaded<A>> {
        self.entries.get(stream_id)
    }

    pub(super) fn put(&self, stream_id: StreamId, loaded: Loaded<A>) {
        self.entries.insert(stream_id, loaded);
    }

    pub(super) fn forget(&self, stream_id: &StreamId) {
        self.entries.remove(stream_id);
    }
}
