//! A test projection that is not idempotent on its own: it counts. Applying an event
//! twice to a document, or skipping one, changes the result, so comparing a read
//! model with a fresh rebuild shows any lost or duplicated effect.

use cqrs_core::{
    AppendRequest, Envelope, Event, EventAppender, ExpectedVersion, Index, MemoryEventStore,
    MemoryReadModelStore, Metadata, NewEvent, Position, Projection, ProjectionRunner,
    RecordedEvent, StoredDocument,
};
use serde::{Deserialize, Serialize};

/// An event of the tally log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum TallyEvent {
    /// `amount` was added to `key`.
    Added {
        /// The counter.
        key: String,
        /// How much.
        amount: i64,
    },
    /// `key` was removed.
    Cleared {
        /// The counter.
        key: String,
    },
}

/// A counter document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// The key (to query by).
    pub key: String,
    /// How many events were applied to it.
    pub count: u64,
    /// The sum of their amounts.
    pub total: i64,
}

/// Counts per key, plus a document `all` over every key (deleted keys included).
#[derive(Debug, Clone, Copy, Default)]
pub struct TallyProjection;

impl Projection for TallyProjection {
    const NAME: &'static str = "tally";
    type Event = TallyEvent;
    type Document = Tally;

    fn document_ids(&self, event: &Envelope<TallyEvent>) -> Vec<String> {
        match &event.event {
            TallyEvent::Added { key, .. } | TallyEvent::Cleared { key } => {
                vec![key.clone(), "all".to_owned()]
            }
        }
    }

    fn apply(&self, id: &str, doc: &mut Option<Tally>, event: &Envelope<TallyEvent>) {
        match &event.event {
            TallyEvent::Cleared { .. } if id != "all" => *doc = None,
            TallyEvent::Cleared { .. } => doc.get_or_insert_with(Tally::default).count += 1,
            TallyEvent::Added { amount, .. } => {
                let tally = doc.get_or_insert_with(|| Tally {
                    key: id.to_owned(),
                    ..Tally::default()
                });
                tally.count += 1;
                tally.total += amount;
            }
        }
    }

    fn indexes(&self) -> Vec<Index> {
        vec![Index {
            name: "by_total",
            fields: &["total"],
            unique: false,
        }]
    }
}

/// `n` tally events, the same for the same `seed`: 97 keys, about one in eleven a
/// clear.
pub fn tally_log(n: usize, seed: u64) -> Vec<TallyEvent> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let x = state >> 33;
            let key = format!("k{}", x % 97);
            if x % 11 == 0 {
                TallyEvent::Cleared { key }
            } else {
                #[allow(clippy::cast_possible_wrap)]
                let amount = (x % 1000) as i64 - 300;
                TallyEvent::Added { key, amount }
            }
        })
        .collect()
}

/// Appends `events` to `store`, one stream per key, in order; returns the last
/// position.
///
/// # Panics
/// If the in-memory store refuses an append (it does not).
pub async fn append_tally(store: &MemoryEventStore, events: &[TallyEvent]) -> Position {
    let mut last = Position::START;
    for event in events {
        let (TallyEvent::Added { key, .. } | TallyEvent::Cleared { key }) = event;
        let new = NewEvent::encode(event, Metadata::new()).expect("encode");
        let appended = store
            .append(AppendRequest::new(
                format!("tally-{key}"),
                ExpectedVersion::Any,
                vec![new],
            ))
            .await
            .expect("append");
        last = appended.position.unwrap_or(last);
    }
    last
}

/// The tally read model built from `store` in memory, in one pass: what any store
/// must hold after applying the same log. Sorted by id, tombstones left out.
///
/// # Panics
/// If the in-memory store fails (it does not).
pub async fn reference_tally(store: &MemoryEventStore) -> Vec<(String, StoredDocument)> {
    use cqrs_core::LogReader;
    let events = store
        .read_all(Position::START, usize::MAX)
        .await
        .expect("read");
    reference_tally_of(&events).await
}

/// The tally read model built in memory from `events` (a whole log, read from any
/// store), in one pass. Sorted by id, tombstones left out.
///
/// # Panics
/// If an event is not a tally event.
pub async fn reference_tally_of(events: &[RecordedEvent]) -> Vec<(String, StoredDocument)> {
    let read_models = MemoryReadModelStore::new();
    let runner = ProjectionRunner::new(
        TallyProjection,
        MemoryEventStore::new(),
        read_models.clone(),
    );
    runner.apply(Position::START, events).await.expect("apply");
    read_models.documents(TallyProjection::NAME)
}
