//! Events, their serialized form, and the envelope every stored event travels in.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::Error;

mod tagged;

/// A domain event: something that happened, named in the past tense.
///
/// Events are stored as JSON with a stable type name and a schema version. Derive the
/// trait (`#[derive(Event)]`, re-exported from `cqrs-derive`): it lists every type
/// name and names them in a namespace, `goal.Created` for `GoalEvent::Created`, so
/// that two aggregates' events with the same variant name never collide in one store.
///
/// The default [`encode`](Event::encode) / [`decode`](Event::decode) expect the serde
/// default layout of an enum (*externally tagged*): the variant's content is the
/// payload, and [`VARIANTS`](Event::VARIANTS) maps each stored name to its variant.
/// Override both for another layout.
///
/// ```
/// use cqrs_core::Event;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
/// enum CounterEvent {
///     Incremented { by: u32 },
///     Reset,
/// }
///
/// assert_eq!(CounterEvent::TYPES, ["counter.Incremented", "counter.Reset"]);
/// let raw = CounterEvent::Incremented { by: 2 }.encode().unwrap();
/// assert_eq!(raw.event_type, "counter.Incremented");
/// assert_eq!(raw.payload, serde_json::json!({ "by": 2 }));
/// assert_eq!(CounterEvent::decode(raw).unwrap(), CounterEvent::Incremented { by: 2 });
/// ```
///
/// Implemented by hand, `TYPES` and `event_type` must agree, and `VARIANTS` defaults
/// to `TYPES` (stored names are the variant names, with no namespace).
pub trait Event: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Every stored type name this event type can have. Events whose stored type name
    /// is not listed are not for this type: projections skip them, and decoding one
    /// is an [`Error::Codec`].
    const TYPES: &'static [&'static str];

    /// The serde variant name of each type in [`TYPES`](Event::TYPES), in the same
    /// order: what the stored name is decoded as. Defaults to `TYPES` (no namespace).
    const VARIANTS: &'static [&'static str] = Self::TYPES;

    /// The stable name of this event, stored beside its payload. Never rename it once
    /// events are stored; add an upcaster instead.
    fn event_type(&self) -> &'static str;

    /// The schema version this code writes for this event (default 1). Raise it when
    /// the payload's shape changes and teach [`upcast`](Event::upcast) the old shape.
    fn schema_version(&self) -> u32 {
        1
    }

    /// Upgrades a stored event of an older schema version, one step or many, to the
    /// shape the current code reads. Called by [`decode`](Event::decode) before
    /// deserializing. The default returns the event unchanged.
    fn upcast(raw: RawEvent) -> Result<RawEvent, Error> {
        Ok(raw)
    }

    /// Serializes the event to its stored form.
    ///
    /// # Errors
    /// [`Error::Codec`] if serde fails or the serialized variant name differs from
    /// [`event_type`](Event::event_type).
    fn encode(&self) -> Result<RawEvent, Error> {
        let event_type = self.event_type();
        let variant = variant_of::<Self>(event_type)?;
        let value = serde_json::to_value(self).map_err(|e| Error::codec(event_type, e))?;
        let payload = match value {
            Value::String(name) if name == variant => Value::Null,
            Value::Object(mut map) if map.len() == 1 && map.contains_key(variant) => {
                map.remove(variant).unwrap_or(Value::Null)
            }
            other => {
                return Err(Error::codec(
                    event_type,
                    format!(
                        "expected an externally tagged enum variant named `{variant}`, got {}",
                        short(&other)
                    ),
                ));
            }
        };
        Ok(RawEvent {
            event_type: event_type.to_owned(),
            schema_version: self.schema_version(),
            payload,
        })
    }

    /// Upcasts and deserializes a stored event.
    ///
    /// # Errors
    /// [`Error::Codec`] if the upcaster or serde fails.
    fn decode(raw: RawEvent) -> Result<Self, Error> {
        Self::upcast(raw)?.deserialize_variant::<Self>()
    }

    /// Decodes a stored event that stays where it is (an event of a batch many
    /// projections read). The default copies it and calls [`decode`](Event::decode);
    /// `#[derive(Event)]` without an upcaster reads the payload in place instead
    /// ([`RawEvent::deserialize_variant`]), which is what makes a projection's decode
    /// cheap. Override it with `decode` when an upcaster is declared by hand and
    /// most stored events need no upcasting.
    ///
    /// # Errors
    /// As [`decode`](Event::decode).
    fn decode_ref(raw: &RawEvent) -> Result<Self, Error> {
        Self::decode(raw.clone())
    }

    /// Whether a stored type name belongs to this event type.
    fn handles(event_type: &str) -> bool {
        Self::TYPES.contains(&event_type)
    }
}

/// The serde variant that the stored name `event_type` of `E` decodes as.
fn variant_of<E: Event>(event_type: &str) -> Result<&'static str, Error> {
    E::TYPES
        .iter()
        .position(|t| *t == event_type)
        .and_then(|i| E::VARIANTS.get(i).copied())
        .ok_or_else(|| {
            Error::codec(
                event_type,
                format!(
                    "not a type of this event (it has {}); an event of another aggregate in the same stream, or a renamed type without an upcaster",
                    E::TYPES.join(", ")
                ),
            )
        })
}

fn short(value: &Value) -> String {
    let mut text = value.to_string();
    if text.len() > 80 {
        let mut cut = 80;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// An event in its stored, untyped form: type name, schema version and JSON payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawEvent {
    /// The stable type name ([`Event::event_type`]).
    pub event_type: String,
    /// The schema version the payload was written with.
    pub schema_version: u32,
    /// The event's content as JSON.
    pub payload: Value,
}

impl RawEvent {
    /// Deserializes the payload as the variant of `E` that the stored type name maps
    /// to (the default externally tagged layout), as it is: no upcasting. Reads the
    /// payload in place, without copying it.
    ///
    /// ```
    /// use cqrs_core::{Event, RawEvent};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
    /// enum CounterEvent {
    ///     Incremented { by: u32 },
    ///     Reset,
    /// }
    ///
    /// let raw = CounterEvent::Incremented { by: 2 }.encode().unwrap();
    /// let event: CounterEvent = raw.deserialize_variant().unwrap();
    /// assert_eq!(event, CounterEvent::Incremented { by: 2 });
    /// ```
    ///
    /// # Errors
    /// [`Error::Codec`] if the type name is not one of `E`'s or serde fails.
    pub fn deserialize_variant<E: Event>(&self) -> Result<E, Error> {
        let variant = variant_of::<E>(&self.event_type)?;
        E::deserialize(tagged::Tagged {
            variant,
            payload: &self.payload,
        })
        .map_err(|e| Error::codec(&self.event_type, e))
    }
}

/// Identifies an event stream, usually `"{Aggregate::TYPE}-{aggregate id}"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamId(String);

impl StreamId {
    /// Wraps a stream id as is.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The stream id of aggregate `id` of type `aggregate_type`: `"{type}-{id}"`.
    pub fn for_aggregate(aggregate_type: &str, id: &str) -> Self {
        Self(format!("{aggregate_type}-{id}"))
    }

    /// The stream id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for StreamId {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for StreamId {
    fn from(value: String) -> Self {
        Self(value)
    }
}

/// A stream's version: the number of events in it. The first event of a stream has
/// version 1; `Version(0)` means "no event yet".
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Version(pub u64);

impl Version {
    /// The version before any event.
    pub const INITIAL: Self = Self(0);

    /// The version after `n` more events.
    #[must_use]
    pub fn plus(self, n: u64) -> Self {
        Self(self.0.saturating_add(n))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A position in the global log of all events, ordering every event of a store. The
/// first event has position 1; `Position(0)` means "before the first event", the
/// checkpoint of a projection that has applied nothing.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Position(pub u64);

impl Position {
    /// The position before the first event.
    pub const START: Self = Self(0);
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// `TryFrom` between a counter and a store's signed 64-bit column, both ways, with
/// typed errors: a number read back that is negative is [`Error::Codec`] (never a
/// silent 0), one too large to store is [`Error::InvalidInput`].
macro_rules! signed_column {
    ($type:ident, $what:literal) => {
        impl TryFrom<i64> for $type {
            type Error = Error;

            #[doc = concat!("A ", $what, " read from a store's signed column.")]
            ///
            /// # Errors
            /// [`Error::Codec`] if it is negative.
            fn try_from(value: i64) -> Result<Self, Error> {
                u64::try_from(value)
                    .map(Self)
                    .map_err(|_| Error::out_of_range($what, value))
            }
        }

        impl TryFrom<$type> for i64 {
            type Error = Error;

            #[doc = concat!("A ", $what, " for a store's signed column.")]
            ///
            /// # Errors
            /// [`Error::InvalidInput`] past `i64::MAX`.
            fn try_from(value: $type) -> Result<Self, Error> {
                i64::try_from(value.0).map_err(|_| {
                    Error::InvalidInput(format!(concat!($what, " {} is out of range"), value))
                })
            }
        }
    };
}

signed_column!(Version, "version");
signed_column!(Position, "position");

/// Context recorded with every event: who asked, why, and as part of what.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Groups every message caused, directly or not, by one original request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The id of the message (usually the command) that directly caused this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// The acting user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The tenant the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Free key-values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the correlation id.
    #[must_use]
    pub fn with_correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Sets the causation id.
    #[must_use]
    pub fn with_causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Sets the acting user.
    #[must_use]
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user_id = Some(user.into());
        self
    }

    /// Sets the tenant.
    #[must_use]
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant.into());
        self
    }

    /// Adds a free key-value.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }
}

/// An event to append: its id, serialized content and metadata. The store assigns
/// the version, the position and the time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The event's unique id (UUID v7, time-ordered).
    pub event_id: Uuid,
    /// The serialized event.
    pub event: RawEvent,
    /// The event's metadata.
    pub metadata: Metadata,
}

impl NewEvent {
    /// Encodes `event` with a fresh UUID v7 id.
    ///
    /// # Errors
    /// [`Error::Codec`] if the event cannot be serialized.
    pub fn encode<E: Event>(event: &E, metadata: Metadata) -> Result<Self, Error> {
        Ok(Self {
            event_id: Uuid::now_v7(),
            event: event.encode()?,
            metadata,
        })
    }
}

/// A stored event with everything the store knows about it.
///
/// `E` is the event: [`RawEvent`] as it comes out of a store ([`RecordedEvent`]), or a
/// typed event after [`decode`](Envelope::decode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<E> {
    /// The event's unique id (UUID v7).
    pub event_id: Uuid,
    /// The stream the event belongs to.
    pub stream_id: StreamId,
    /// The event's version within its stream (1 for the first).
    pub version: Version,
    /// The event's position in the global log.
    pub position: Position,
    /// When the store recorded the event.
    pub recorded_at: DateTime<Utc>,
    /// The event's metadata.
    pub metadata: Metadata,
    /// The event itself.
    pub event: E,
}

/// A stored event as a store returns it.
pub type RecordedEvent = Envelope<RawEvent>;

impl<E> Envelope<E> {
    /// Replaces the event, keeping the envelope.
    pub fn map<F>(self, f: impl FnOnce(E) -> F) -> Envelope<F> {
        Envelope {
            event_id: self.event_id,
            stream_id: self.stream_id,
            version: self.version,
            position: self.position,
            recorded_at: self.recorded_at,
            metadata: self.metadata,
            event: f(self.event),
        }
    }
}

impl RecordedEvent {
    /// Upcasts and decodes the event into `E`.
    ///
    /// # Errors
    /// [`Error::Codec`] if it cannot be decoded.
    pub fn decode<E: Event>(self) -> Result<Envelope<E>, Error> {
        let Envelope {
            event_id,
            stream_id,
            version,
            position,
            recorded_at,
            metadata,
            event,
        } = self;
        let event = E::decode(event).map_err(|e| e.at_event(&stream_id, version, position))?;
        Ok(Envelope {
            event,
            event_id,
            stream_id,
            version,
            position,
            recorded_at,
            metadata,
        })
    }

    /// Decodes the event if `E` handles its type name, `Ok(None)` if not. Only the
    /// event is cloned, not the whole envelope, and only when it is decoded.
    ///
    /// # Errors
    /// [`Error::Codec`] (naming the stream, version and position) if `E` handles the
    /// type name but the payload cannot be decoded.
    pub fn decode_if<E: Event>(&self) -> Result<Option<Envelope<E>>, Error> {
        if !E::handles(&self.event.event_type) {
            return Ok(None);
        }
        let event = E::decode_ref(&self.event)
            .map_err(|e| e.at_event(&self.stream_id, self.version, self.position))?;
        Ok(Some(Envelope {
            event_id: self.event_id,
            stream_id: self.stream_id.clone(),
            version: self.version,
            position: self.position,
            recorded_at: self.recorded_at,
            metadata: self.metadata.clone(),
            event,
        }))
    }
}
