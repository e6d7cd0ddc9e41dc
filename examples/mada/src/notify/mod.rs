//! `mada notify`: push notifications through Firebase Cloud Messaging, from a
//! stateless worker (any number of replicas; a lease picks the one that works).
//!
//! * [`fcm`]: the FCM HTTP v1 client (OAuth2 with a service account).
//! * [`outbox`]: the notifier's tables: intents and outcomes, keyed by cause.
//! * [`reminder`]: when a reminder is due in a user's time zone; the messages.
//! * [`worker`]: the loop.
//! * [`clock`]: the system's clock, or one a test controls.

pub mod clock;
pub mod fcm;
pub mod outbox;
pub mod reminder;
pub mod worker;

pub use worker::{Notifier, NotifierOptions, NotifyError, Round};

/// The event metadata key naming the device a change came from.
pub const DEVICE_METADATA: &str = "device";
