//! [`ProjectionTest`]: `given(events)` then check documents.

use std::collections::HashMap;
use std::fmt::Debug;

use chrono::Utc;
use uuid::Uuid;

use crate::event::{Envelope, Event, Metadata, Position, RecordedEvent, StreamId, Version};
use crate::memory::MemoryReadModelStore;
use crate::ports::{ReadModelReader, ReadModelWriter};

/// Applies `batch` the way a runner does and commits it.
async fn apply_and_commit<P: Projection>(
    projection: &P,
    store: &MemoryReadModelStore,
    name: &str,
    batch: &[RecordedEvent],
) -> Result<(), crate::Error> {
    let Some(last) = batch.last().map(|e| e.position) else {
        return Ok(());
    };
    let changes = apply_batch(projection, store, name, batch).await?;
    store.commit(name, changes, last).await
}
use crate::projection::{Projection, apply_batch};

/// Tests a projection without a runner: feeds it events through the same code the
/// runner uses, into an in-memory store, then checks the documents.
///
/// After every [`given`](Self::given), the whole history so far is replayed into a
/// fresh store, one event per batch, and must give the same documents, positions
/// included. That proves the read model is a function of the events alone, which
/// rebuilds, cut-overs and the replays after a crash (at-least-once delivery) rely
/// on: a projection that counts calls in a field, reads the clock, or depends on how
/// events are batched fails it.
///
/// ```
/// # use cqrs_core::{Envelope, Event, Projection};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Serialize, Deserialize, Event)]
/// # enum Ev { Added { n: u64 } }
/// # struct Sum;
/// # impl Projection for Sum {
/// #     const NAME: &'static str = "sum";
/// #     type Event = Ev;
/// #     type Document = u64;
/// #     fn document_ids(&self, _: &Envelope<Ev>) -> Vec<String> { vec!["total".into()] }
/// #     fn apply(&self, _: &str, doc: &mut Option<u64>, e: &Envelope<Ev>) {
/// #         let Ev::Added { n } = e.event; *doc.get_or_insert(0) += n;
/// #     }
/// # }
/// use cqrs_core::testing::ProjectionTest;
///
/// ProjectionTest::new(Sum)
///     .given("counter-1", [Ev::Added { n: 2 }, Ev::Added { n: 3 }])
///     .then_expect_document("total", 5);
/// ```
#[derive(Debug)]
pub struct ProjectionTest<P> {
    projection: P,
    store: MemoryReadModelStore,
    history: Vec<RecordedEvent>,
    versions: HashMap<StreamId, u64>,
}

impl<P: Projection> ProjectionTest<P> {
    /// A test of `projection` with no event yet.
    pub fn new(projection: P) -> Self {
        Self {
            projection,
            store: MemoryReadModelStore::new(),
            history: Vec::new(),
            versions: HashMap::new(),
        }
    }

    /// Appends `events` to `stream_id` (versions and positions follow those given
    /// before), round-trips them through their stored form, applies them as one
    /// batch, then checks that replaying every event so far from scratch gives the
    /// same documents.
    ///
    /// # Panics
    /// If an event does not survive its stored form, if the projection fails, or if
    /// the replay gives other documents than the batches did.
    #[track_caller]
    #[must_use]
    pub fn given(mut self, stream_id: &str, events: impl IntoIterator<Item = P::Event>) -> Self {
        let stream_id = StreamId::new(stream_id);
        let mut batch: Vec<RecordedEvent> = Vec::new();
        for event in events {
            let position = Position(self.history.len() as u64 + batch.len() as u64 + 1);
            let version = self.versions.entry(stream_id.clone()).or_insert(0);
            *version += 1;
            let raw = match event.encode() {
                Ok(raw) => raw,
                Err(error) => panic!("cannot encode `{}`: {error}", event.event_type()),
            };
            batch.push(Envelope {
                event_id: Uuid::now_v7(),
                stream_id: stream_id.clone(),
                version: Version(*version),
                position,
                recorded_at: Utc::now(),
                metadata: Metadata::new(),
                event: raw,
            });
        }
        self.history.extend(batch.iter().cloned());
        let name = P::NAME;
        let outcome = futures::executor::block_on(async {
            apply_and_commit(&self.projection, &self.store, name, &batch).await?;
            let replay = MemoryReadModelStore::new();
            for event in &self.history {
                apply_and_commit(&self.projection, &replay, name, std::slice::from_ref(event))
                    .await?;
            }
            Ok::<_, crate::Error>(replay.documents(name))
        });
        match outcome {
            Ok(replayed) => {
                let batched = self.store.documents(name);
                if replayed != batched {
                    panic!(
                        "projection `{name}` is not replay-safe: replaying the same events gave \
                         other documents\n  in batches: {batched:?}\n  replayed:   {replayed:?}"
                    );
                }
                self
            }
            Err(error) => panic!("projection `{name}` failed: {error}"),
        }
    }

    /// The document `id`, if it exists.
    ///
    /// # Panics
    /// If it cannot be decoded.
    #[track_caller]
    pub fn document(&self, id: &str) -> Option<P::Document> {
        let stored = futures::executor::block_on(self.store.get(P::NAME, id));
        match stored {
            Ok(Some(doc)) => match serde_json::from_value(doc.value) {
                Ok(document) => Some(document),
                Err(error) => panic!("document `{id}` cannot be decoded: {error}"),
            },
            Ok(None) => None,
            Err(error) => panic!("cannot read document `{id}`: {error}"),
        }
    }

    /// Asserts document `id` equals `expected`.
    ///
    /// # Panics
    /// If it does not, or does not exist.
    #[track_caller]
    pub fn then_expect_document(&self, id: &str, expected: P::Document) -> &Self
    where
        P::Document: PartialEq + Debug,
    {
        match self.document(id) {
            Some(document) => assert_eq!(document, expected, "document `{id}` differs"),
            None => panic!("document `{id}` does not exist; expected {expected:?}"),
        }
        self
    }

    /// Asserts document `id` does not exist.
    ///
    /// # Panics
    /// If it does.
    #[track_caller]
    pub fn then_expect_no_document(&self, id: &str) -> &Self
    where
        P::Document: Debug,
    {
        if let Some(document) = self.document(id) {
            panic!("document `{id}` exists: {document:?}");
        }
        self
    }
}
