//! Stored events, as a store hands them to projections: decoding by copy, in place
//! and through an upcaster, then MADA's projections and the views computed from
//! their documents.
//!
//! Input: a JSON array of recorded events (`Envelope<RawEvent>`, as serde writes
//! it); anything else is skipped. Checks:
//! * decoding by copy ([`Event::decode`]) and in place ([`Event::decode_ref`]) give
//!   the same event or both fail, and a success equals serde's own decoding of the
//!   externally tagged form (`{"Variant": payload}`);
//! * an event type with an upcaster decodes on both paths alike;
//! * MADA's projections apply every event that decodes, and their documents
//!   serialize and read back equal; today's list and the month view of every goal's
//!   first day are computed without a panic.

use std::collections::HashMap;
use std::fmt::Debug;

use cqrs_core::{Error, Event, Projection, RawEvent, RecordedEvent};
use mada::domain::{CategoryEvent, GoalEvent, ProfileEvent};
use mada::projections::{CategoriesProjection, Plan, PlanProjection};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Runs one input.
pub fn run(input: &[u8]) {
    let Ok(events) = serde_json::from_slice::<Vec<RecordedEvent>>(input) else {
        return;
    };
    let mut plans = HashMap::new();
    let mut categories = HashMap::new();
    for event in &events {
        agree::<GoalEvent>(&event.event);
        agree::<CategoryEvent>(&event.event);
        agree::<ProfileEvent>(&event.event);
        agree::<Upcast>(&event.event);
        project(&PlanProjection, &mut plans, event);
        project(&CategoriesProjection, &mut categories, event);
    }
    for plan in plans.values().flatten() {
        views(plan);
    }
    round_trip(&plans);
    round_trip(&categories);
}

/// Both decoding paths give the same result, which is serde's own.
fn agree<E: Event + PartialEq + Debug>(raw: &RawEvent) {
    let in_place = E::decode_ref(raw);
    let copied = E::decode(raw.clone());
    match (&in_place, &copied) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "decode_ref and decode differ on {raw:?}"),
        (Err(a), Err(b)) => {
            assert!(matches!(a, Error::Codec { .. }), "not a codec error: {a:?}");
            assert!(matches!(b, Error::Codec { .. }), "not a codec error: {b:?}");
        }
        _ => panic!("decode_ref and decode disagree on {raw:?}: {in_place:?} / {copied:?}"),
    }
    if let Ok(event) = in_place {
        let upcast = E::upcast(raw.clone()).expect("upcast succeeded while decoding");
        let variant = E::TYPES
            .iter()
            .position(|t| *t == raw.event_type)
            .map(|i| E::VARIANTS[i])
            .expect("a decoded event has a known type");
        let tagged = serde_json::json!({ variant: upcast.payload });
        let by_serde: E = serde_json::from_value(tagged)
            .unwrap_or_else(|e| panic!("serde refuses what decode took ({raw:?}): {e}"));
        assert_eq!(event, by_serde, "decode differs from serde on {raw:?}");
    }
}

/// Applies `event` to the documents of `projection` it changes.
fn project<P: Projection>(
    projection: &P,
    documents: &mut HashMap<String, Option<P::Document>>,
    event: &RecordedEvent,
) {
    let Ok(Some(typed)) = event.decode_if::<P::Event>() else {
        return;
    };
    for id in projection.document_ids(&typed) {
        let document = documents.entry(id.clone()).or_default();
        projection.apply(&id, document, &typed);
    }
}

/// The views the read service computes from a plan.
fn views(plan: &Plan) {
    use chrono::Datelike;
    for goal in &plan.goals {
        let day = goal.schedule.start;
        let today = plan.today(day);
        assert!(today.items.len() <= plan.goals.len());
        let month = plan.month(day.year(), day.month());
        assert!(month.days.len() <= 31);
    }
}

/// Documents serialize, and read back equal to what was written.
fn round_trip<D: Serialize + for<'de> Deserialize<'de>>(documents: &HashMap<String, Option<D>>) {
    for document in documents.values().flatten() {
        let json = serde_json::to_value(document).expect("a document serializes");
        let back: D = serde_json::from_value(json.clone()).expect("a document reads back");
        let again = serde_json::to_value(&back).expect("a document serializes");
        assert_eq!(json, again, "a document changed on its way through JSON");
    }
}

/// An event type with an upcaster: schema 1 had `title` only, schema 2 adds `memo`
/// (empty for old events). Its upcaster refuses what it cannot read, as a careful
/// one would.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, cqrs_core::Event)]
#[event(namespace = "fuzz", upcast = upcast_note)]
enum Upcast {
    /// A note.
    #[event(version = 2)]
    Noted {
        /// Its title.
        title: String,
        /// Its memo.
        memo: String,
    },
    /// A reset.
    Reset,
}

fn upcast_note(mut raw: RawEvent) -> Result<RawEvent, Error> {
    if raw.event_type == "fuzz.Noted" && raw.schema_version < 2 {
        let Value::Object(fields) = &mut raw.payload else {
            return Err(Error::codec(&raw.event_type, "schema 1 is an object"));
        };
        fields
            .entry("memo")
            .or_insert_with(|| Value::String(String::new()));
        raw.schema_version = 2;
    }
    Ok(raw)
}
