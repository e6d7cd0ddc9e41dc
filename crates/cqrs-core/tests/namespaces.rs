//! Two aggregates whose events share a variant name live in one store: the derived
//! stored names are namespaced, so neither projection mistakes the other's events.

use std::time::Duration;

use cqrs_core::{
    AppendRequest, Envelope, Event, EventAppender, ExpectedVersion, LogReader, MemoryEventStore,
    MemoryReadModelStore, Metadata, NewEvent, Projection, ProjectionRunner, ReadModel,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum TaskEvent {
    Added { title: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum NoteEvent {
    Added { text: String, pinned: bool },
}

struct Titles;
impl Projection for Titles {
    const NAME: &'static str = "titles";
    type Event = TaskEvent;
    type Document = Vec<String>;
    fn document_ids(&self, _: &Envelope<TaskEvent>) -> Vec<String> {
        vec!["all".into()]
    }
    fn apply(&self, _: &str, doc: &mut Option<Vec<String>>, event: &Envelope<TaskEvent>) {
        let TaskEvent::Added { title } = &event.event;
        doc.get_or_insert_with(Vec::new).push(title.clone());
    }
}

struct Pinned;
impl Projection for Pinned {
    const NAME: &'static str = "pinned";
    type Event = NoteEvent;
    type Document = Vec<String>;
    fn document_ids(&self, _: &Envelope<NoteEvent>) -> Vec<String> {
        vec!["all".into()]
    }
    fn apply(&self, _: &str, doc: &mut Option<Vec<String>>, event: &Envelope<NoteEvent>) {
        let NoteEvent::Added { text, pinned } = &event.event;
        let doc = doc.get_or_insert_with(Vec::new);
        if *pinned {
            doc.push(text.clone());
        }
    }
}

async fn append<E: Event>(store: &MemoryEventStore, stream: &str, event: E) {
    let new = NewEvent::encode(&event, Metadata::new()).expect("encodes");
    store
        .append(AppendRequest::new(stream, ExpectedVersion::Any, vec![new]))
        .await
        .expect("appends");
}

#[test]
fn derived_names_are_namespaced_by_the_enum() {
    assert_eq!(TaskEvent::TYPES, ["task.Added"]);
    assert_eq!(NoteEvent::TYPES, ["note.Added"]);
    assert_eq!(TaskEvent::VARIANTS, ["Added"]);
}

#[tokio::test]
async fn two_aggregates_with_the_same_variant_name_share_a_store() {
    let events = MemoryEventStore::new();
    let read = MemoryReadModelStore::new();
    append(
        &events,
        "task-1",
        TaskEvent::Added {
            title: "Write".into(),
        },
    )
    .await;
    append(
        &events,
        "note-1",
        NoteEvent::Added {
            text: "Milk".into(),
            pinned: true,
        },
    )
    .await;
    append(
        &events,
        "task-2",
        TaskEvent::Added {
            title: "Read".into(),
        },
    )
    .await;
    append(
        &events,
        "note-2",
        NoteEvent::Added {
            text: "Eggs".into(),
            pinned: false,
        },
    )
    .await;

    let titles = ProjectionRunner::new(Titles, events.clone(), read.clone());
    let pinned = ProjectionRunner::new(Pinned, events.clone(), read.clone());
    let (title_reader, pinned_reader) = (titles.read_model(), pinned.read_model());
    let _titles = titles.spawn();
    let _pinned = pinned.spawn();

    let head = events.head().await.expect("head");
    let wait = Duration::from_secs(5);
    title_reader
        .wait_for_timeout(head, wait)
        .await
        .expect("titles keeps running");
    pinned_reader
        .wait_for_timeout(head, wait)
        .await
        .expect("pinned keeps running");
    assert_eq!(
        title_reader.get("all").await.expect("reads"),
        Some(vec!["Write".to_owned(), "Read".to_owned()])
    );
    assert_eq!(
        pinned_reader.get("all").await.expect("reads"),
        Some(vec!["Milk".to_owned()])
    );
    let _: &ReadModel<Titles, MemoryReadModelStore> = &title_reader;
}

/// A hand-written `Event` whose `TYPES` forgot a variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Forgetful {
    Listed,
    Forgotten,
}

impl Event for Forgetful {
    const TYPES: &'static [&'static str] = &["Listed"];
    fn event_type(&self) -> &'static str {
        match self {
            Self::Listed => "Listed",
            Self::Forgotten => "Forgotten",
        }
    }
}

#[test]
fn a_type_left_out_of_a_hand_written_list_is_an_error_not_a_silent_skip() {
    // Before, the repository stored and decoded it while projections skipped it.
    let error = Forgetful::Forgotten.encode().unwrap_err();
    assert!(matches!(error, cqrs_core::Error::Codec { .. }), "{error}");
    let stored = cqrs_core::RawEvent {
        event_type: "Forgotten".into(),
        schema_version: 1,
        payload: serde_json::Value::Null,
    };
    assert!(Forgetful::decode(stored).is_err(), "nor decoded");
    assert!(Forgetful::Listed.encode().is_ok());
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(namespace = "billing.invoice")]
#[serde(deny_unknown_fields)]
enum InvoiceEvent {
    #[serde(rename = "Issued", alias = "Sent")]
    Made { total: u64 },
    #[event(version = 2)]
    Paid,
    #[event(name = "LegacyVoided")]
    Voided,
}

#[test]
fn the_derive_follows_its_attributes_and_serde_renames() {
    assert_eq!(
        InvoiceEvent::TYPES,
        [
            "billing.invoice.Issued",
            "billing.invoice.Paid",
            "LegacyVoided"
        ]
    );
    assert_eq!(InvoiceEvent::VARIANTS, ["Issued", "Paid", "Voided"]);
    assert_eq!(InvoiceEvent::Paid.schema_version(), 2);
    assert_eq!(InvoiceEvent::Made { total: 1 }.schema_version(), 1);
    for event in [
        InvoiceEvent::Made { total: 7 },
        InvoiceEvent::Paid,
        InvoiceEvent::Voided,
    ] {
        let raw = event.encode().unwrap();
        assert_eq!(InvoiceEvent::decode(raw).unwrap(), event);
    }
}
