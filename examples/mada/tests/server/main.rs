//! `mada serve` over real HTTP and WebSocket on loopback: the API's flows,
//! read-your-writes, the subscription, authentication and the authorization matrix,
//! bad input and limits, the binary's start-up and shutdown, the web page in a real
//! browser, and the roles as separate processes failing over under load.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod api;
mod authz;
mod backends;
mod binary;
mod browser;
mod failover;
mod harness;
mod keys;
mod kills;
mod limits;
mod proxy;
mod rebuild;
mod rebuilt;
mod roles;
mod soak;
