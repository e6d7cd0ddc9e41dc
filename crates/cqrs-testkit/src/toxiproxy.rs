//! Network faults between a client and a server, through Toxiproxy (the
//! `toxiproxy` service of `scripts/services.sh`): a [`Proxy`] listens on a port of
//! its own and forwards to the server; [`Fault`]s (latency, bandwidth, resets,
//! black holes) are added to it and lifted while a test runs.

use serde_json::json;

use crate::http::request;
use crate::{server_unreachable, toxiproxy_url};

/// A fault on a proxy's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every reply is held `ms` milliseconds, ± `jitter`.
    Latency {
        /// The delay, in milliseconds.
        ms: u32,
        /// The variation, in milliseconds.
        jitter: u32,
    },
    /// Replies flow at most `kb_per_s` kilobytes per second.
    Bandwidth {
        /// The rate.
        kb_per_s: u32,
    },
    /// Connections are reset (TCP RST) `after_ms` milliseconds after they open or
    /// the fault is added, mid-request or not.
    Reset {
        /// When, in milliseconds.
        after_ms: u32,
    },
    /// Data stops flowing both ways and connections stay open: a half-open
    /// connection, a black hole.
    BlackHole,
}

impl Fault {
    fn toxic(self) -> serde_json::Value {
        let (kind, stream, attributes) = match self {
            Self::Latency { ms, jitter } => (
                "latency",
                "downstream",
                json!({ "latency": ms, "jitter": jitter }),
            ),
            Self::Bandwidth { kb_per_s } => {
                ("bandwidth", "downstream", json!({ "rate": kb_per_s }))
            }
            Self::Reset { after_ms } => ("reset_peer", "upstream", json!({ "timeout": after_ms })),
            Self::BlackHole => ("timeout", "upstream", json!({ "timeout": 0 })),
        };
        json!({ "name": "fault", "type": kind, "stream": stream, "toxicity": 1.0, "attributes": attributes })
    }
}

/// A TCP proxy to a server, removed when dropped.
#[derive(Debug)]
pub struct Proxy {
    api: String,
    name: String,
    listen: String,
}

impl Proxy {
    /// A proxy to `upstream` (`host:port`) on a free port of loopback.
    ///
    /// # Panics
    /// If Toxiproxy cannot be reached (with how to start it) or refuses.
    pub fn new(upstream: &str) -> Self {
        Self::at("127.0.0.1:0", upstream)
    }

    /// A proxy to `upstream` listening on `listen` (`host:port`): for a server that
    /// tells its clients where to connect, such as a Kafka broker's advertised
    /// listener. One proxy at a time can hold an address.
    ///
    /// # Panics
    /// If Toxiproxy cannot be reached (with how to start it) or refuses (the address
    /// is taken).
    pub fn at(listen: &str, upstream: &str) -> Self {
        let api = toxiproxy_url();
        let name = crate::unique_name("proxy");
        let body = json!({ "name": name, "listen": listen, "upstream": upstream, "enabled": true });
        let response = request(&api, "POST", "/proxies", Some(&body.to_string()))
            .unwrap_or_else(|e| server_unreachable("Toxiproxy", &api, e));
        assert_eq!(response.status, 201, "create a proxy: {}", response.body);
        let created: serde_json::Value =
            serde_json::from_str(&response.body).expect("Toxiproxy's answer");
        let listen = created["listen"]
            .as_str()
            .expect("listen address")
            .to_owned();
        Self { api, name, listen }
    }

    /// Where the proxy listens (`127.0.0.1:port`): connect there instead of to the
    /// server.
    pub fn listen(&self) -> &str {
        &self.listen
    }

    /// The port the proxy listens on.
    ///
    /// # Panics
    /// Never for an address Toxiproxy returned.
    pub fn port(&self) -> u16 {
        self.listen
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port")
    }

    /// Adds `fault` (one at a time: it replaces the one in place).
    ///
    /// # Panics
    /// If Toxiproxy refuses.
    pub fn add(&self, fault: Fault) {
        self.lift();
        let path = format!("/proxies/{}/toxics", self.name);
        let response = request(&self.api, "POST", &path, Some(&fault.toxic().to_string()))
            .expect("add a toxic");
        assert_eq!(response.status, 200, "add {fault:?}: {}", response.body);
    }

    /// Lifts the fault in place, if any.
    ///
    /// # Panics
    /// If Toxiproxy cannot be reached.
    pub fn lift(&self) {
        let path = format!("/proxies/{}/toxics/fault", self.name);
        request(&self.api, "DELETE", &path, None).expect("remove a toxic");
    }

    /// Cuts every connection and refuses new ones (`enabled: false`), or lets them
    /// in again.
    ///
    /// # Panics
    /// If Toxiproxy refuses.
    pub fn set_enabled(&self, enabled: bool) {
        let path = format!("/proxies/{}", self.name);
        let body = json!({ "enabled": enabled }).to_string();
        let response = request(&self.api, "POST", &path, Some(&body)).expect("toggle a proxy");
        assert_eq!(response.status, 200, "enable={enabled}: {}", response.body);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = request(
            &self.api,
            "DELETE",
            &format!("/proxies/{}", self.name),
            None,
        );
    }
}
