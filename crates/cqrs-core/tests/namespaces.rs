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
