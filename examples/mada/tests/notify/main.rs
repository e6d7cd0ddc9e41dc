//! The notifier: the FCM client against a local FCM-compatible server (token
//! exchange, faults), reminders in users' time zones, cross-device messages, dead
//! devices, replicas, and a notifier process killed mid-send.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod client;
mod harness;
mod kill;
mod schedule;
mod worker;
