//! [`ProjectionTest`]: `given(events)` then check documents.

use std::collections::HashMap;
use std::fmt::Debug;

use chrono::Utc;
use uuid::Uuid;

use crate::event::{Envelope, Event, Metadata, Position, RecordedEvent, StreamId, Version};
use crate::memory::MemoryReadModelStore;
use crate::ports::{ReadModelReader, ReadModelWriter};
use crate::projection::{Projection, apply_batch};

/// Tests a projection without a runner: feeds it events through the same code the
/// runner uses, into an in-memory store, then checks the documents.
///
/// Every batch is applied twice: the second time must change nothing, which proves
/// the projection is safe to replay (at-least-once delivery).
///
/// ```
/// # use cqrs_core::{Envelope, Event, Projection};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Serialize, Deserialize)]
/// # enum Ev { Added { n: u64 } }
/// # impl Event for Ev {
/// #     const TYPES: &'static [&'static str] = &["Added"];
/// #     fn event_type(&self) -> &'static str { "Added" }
/// # }
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
    position: u64,
    versions: HashMap<StreamId, u64>,
}

impl<P: Projection> ProjectionTest<P> {
    /// A test of `projection` with no event yet.
    pub fn new(projection: P) -> Self {
        Self {
            projection,
            store: MemoryReadModelStore::new(),
            position: 0,
            versions: HashMap::new(),
        }
    }

    /// Appends `events` to `stream_id` (versions and positions follow those given
    /// before), round-trips them through their stored form, and applies them as one
    /// batch, twice.
    ///
    /// # Panics
    /// If an event does not survive its stored form, if the projection fails, or if
    /// applying the batch again changes a document.
    #[track_caller]
    #[must_use]
    pub fn given(mut self, stream_id: &str, events: impl IntoIterator<Item = P::Event>) -> Self {
        let stream_id = StreamId::new(stream_id);
        let mut batch: Vec<RecordedEvent> = Vec::new();
        for event in events {
            self.position += 1;
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
                position: Position(self.position),
                recorded_at: Utc::now(),
                metadata: Metadata::new(),
                event: raw,
            });
        }
        let checkpoint = Position(self.position);
        let name = P::NAME;
        let outcome = futures::executor::block_on(async {
            let changes = apply_batch(&self.projection, &self.store, name, &batch).await?;
            self.store.commit(name, changes, checkpoint).await?;
            let before = self.store.documents(name);
            let replay = apply_batch(&self.projection, &self.store, name, &batch).await?;
            Ok::<_, crate::Error>((before, replay))
        });
        match outcome {
            Ok((_, replay)) if !replay.is_empty() => {
                panic!("replaying the batch changed documents: {replay:?}")
            }
            Ok(_) => self,
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
