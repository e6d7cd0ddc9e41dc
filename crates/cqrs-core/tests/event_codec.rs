//! Decoding stored events: the in-place path (`decode_ref`, `deserialize_variant`)
//! agrees with the owned one (`decode`) on every variant layout, and refuses what it
//! refuses, with the same typed error.

use cqrs_core::{Error, Event, RawEvent};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum ShapeEvent {
    Cleared,
    Renamed(String),
    Moved(i32, i32),
    Resized {
        width: u32,
        height: u32,
    },
    Tagged(Option<String>),
    Grouped {
        members: Vec<String>,
        note: Option<String>,
    },
}

fn every_shape() -> Vec<ShapeEvent> {
    vec![
        ShapeEvent::Cleared,
        ShapeEvent::Renamed("façade ✓".into()),
        ShapeEvent::Moved(-3, 7),
        ShapeEvent::Resized {
            width: 640,
            height: 480,
        },
        ShapeEvent::Tagged(Some("red".into())),
        ShapeEvent::Tagged(None),
        ShapeEvent::Grouped {
            members: vec!["a".into(), "b".into()],
            note: None,
        },
    ]
}

#[test]
fn in_place_and_owned_decoding_agree_on_every_layout() {
    for event in every_shape() {
        let raw = event.encode().expect("encode");
        assert_eq!(ShapeEvent::decode_ref(&raw).expect("decode_ref"), event);
        assert_eq!(
            raw.deserialize_variant::<ShapeEvent>().expect("in place"),
            event
        );
        // What serde itself reads from the object the payload stands for.
        if !raw.payload.is_null() {
            let variant = raw.event_type.trim_start_matches("shape.");
            let object = json!({ variant: raw.payload.clone() });
            assert_eq!(
                serde_json::from_value::<ShapeEvent>(object).expect("serde"),
                event
            );
        }
        assert_eq!(ShapeEvent::decode(raw).expect("decode"), event);
    }
}

fn raw(event_type: &str, payload: serde_json::Value) -> RawEvent {
    RawEvent {
        event_type: event_type.into(),
        schema_version: 1,
        payload,
    }
}

#[test]
fn bad_payloads_are_typed_errors_naming_the_type_on_both_paths() {
    let bad = [
        raw("shape.Cleared", json!({ "unexpected": 1 })),
        raw("shape.Renamed", json!(5)),
        raw("shape.Moved", json!([1])),
        raw("shape.Moved", json!({ "x": 1 })),
        raw("shape.Resized", json!({ "width": 1 })),
        raw("shape.Resized", json!({ "width": "wide", "height": 1 })),
        raw("shape.Resized", serde_json::Value::Null),
        raw("shape.Unknown", json!({})),
    ];
    for raw in bad {
        let in_place = ShapeEvent::decode_ref(&raw).expect_err("refused in place");
        let owned = ShapeEvent::decode(raw.clone()).expect_err("refused owned");
        for error in [in_place, owned] {
            assert!(
                matches!(&error, Error::Codec { .. }),
                "{raw:?} gave {error:?}"
            );
            assert!(error.to_string().contains(&raw.event_type), "{error}");
        }
    }
}

/// An upcaster the derive is told about still runs on the in-place path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(upcast = upcast_size)]
enum SizeEvent {
    #[event(version = 2)]
    Resized { width: u32, height: u32 },
}

fn upcast_size(mut raw: RawEvent) -> Result<RawEvent, Error> {
    if raw.schema_version == 1 {
        let side = raw.payload["side"].clone();
        raw.payload = json!({ "width": side, "height": side });
        raw.schema_version = 2;
    }
    Ok(raw)
}

#[test]
fn a_declared_upcaster_runs_on_the_in_place_path_too() {
    let old = RawEvent {
        event_type: "size.Resized".into(),
        schema_version: 1,
        payload: json!({ "side": 4 }),
    };
    let expected = SizeEvent::Resized {
        width: 4,
        height: 4,
    };
    assert_eq!(
        SizeEvent::decode_ref(&old).expect("upcast in place"),
        expected
    );
    assert_eq!(SizeEvent::decode(old).expect("upcast"), expected);
}
