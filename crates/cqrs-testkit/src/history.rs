//! Histories of concurrent operations on an event store, checked for
//! linearizability by an independent checker: Porcupine
//! (`github.com/anishathalye/porcupine`), driven by `reliability/checker`, a Go
//! program with a model of the store (appends with expected versions and command
//! ids, stream reads, and log reads that never skip).
//!
//! A [`Recorder`] takes each operation's invocation and completion times and what it
//! returned; [`check`] (or [`assert_linearizable`]) writes the history as JSON and
//! runs the checker on it (built once per test process with the machine's Go,
//! modules cached like the test servers'). A history it rejects fails the test,
//! with the path of Porcupine's HTML view of it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use serde::Serialize;

/// A call on the event store, as the checker's model reads it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Input {
    /// `"append"`, `"read_stream"` or `"read_all"`.
    pub op: &'static str,
    /// The stream appended to or read.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stream: String,
    /// The version an append expects; `None` for any version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<u64>,
    /// The appended events' ids, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// The append's command id, if any.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub command: String,
    /// A read's start (exclusive): a position in the log, a version in a stream.
    #[serde(skip_serializing_if = "is_zero")]
    pub after: u64,
    /// A log read's limit.
    #[serde(skip_serializing_if = "is_zero_usize")]
    pub limit: usize,
}

/// What a call returned, as the checker's model reads it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Output {
    /// An append's outcome: `"ok"`, `"conflict"` or `"duplicate"`.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub status: &'static str,
    /// The stream's version before an append.
    pub previous: u64,
    /// The version after an append, or the actual version of a conflict.
    pub version: u64,
    /// The position of the last appended event (0 if none).
    pub position: u64,
    /// A stream read's event ids, in version order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// A log read's events, in the order returned.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<Entry>,
}

/// An event of a log read.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Its position.
    pub position: u64,
    /// Its id.
    pub event: String,
}

/// One operation of a history.
#[derive(Debug, Clone, Serialize)]
pub struct Operation {
    /// The client (task) that made it.
    pub client: usize,
    /// When it was called, in nanoseconds from the recorder's start.
    pub call: i64,
    /// When it returned; for an operation whose outcome was unknown when it
    /// returned, after every other operation.
    #[serde(rename = "return")]
    pub returned: i64,
    /// The call.
    pub input: Input,
    /// What it returned.
    pub output: Output,
}

#[derive(Serialize)]
struct History<'a> {
    operations: &'a [Operation],
}

/// Records operations from many tasks, with times from one clock.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    operations: Mutex<Vec<Operation>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            operations: Mutex::new(Vec::new()),
        }
    }

    /// Now, in nanoseconds from the start: take it just before a call and just
    /// after it returns.
    pub fn now(&self) -> i64 {
        i64::try_from(self.start.elapsed().as_nanos()).unwrap_or(i64::MAX)
    }

    /// Records an operation.
    ///
    /// # Panics
    /// If another thread panicked while recording.
    pub fn record(&self, operation: Operation) {
        self.operations.lock().expect("recorder").push(operation);
    }

    /// The operations recorded so far.
    ///
    /// # Panics
    /// If another thread panicked while recording.
    pub fn operations(&self) -> Vec<Operation> {
        self.operations.lock().expect("recorder").clone()
    }
}

/// How the checker searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The whole store at once: the strongest check; its search grows with every
    /// pair of concurrent operations that commute, so it suits a few clients.
    Whole,
    /// Each stream on its own, and the log on its own (`reliability/checker`'s
    /// `split.go`): a history it rejects is not linearizable, but it can miss an
    /// anomaly that only an order across a stream and the log shows. For many
    /// concurrent clients.
    Split,
}

/// The result of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The history is linearizable.
    Linearizable,
    /// It is not: no order of the operations that respects real time explains
    /// what they returned. Porcupine's HTML view of it is at the path.
    NotLinearizable(PathBuf),
}

/// Checks `operations` with the Porcupine checker; `name` names the files written
/// (the history as JSON and, when rejected, its HTML view) under the system's
/// temporary directory.
///
/// # Panics
/// If Go is missing or the checker cannot be built (with how to fix it), if the
/// history is malformed, or if the checker cannot decide within a minute
/// (`CQRS_CHECKER_TIMEOUT` seconds when set).
pub fn check(name: &str, operations: &[Operation], mode: Mode) -> Verdict {
    let dir = std::env::temp_dir().join("cqrs-histories");
    std::fs::create_dir_all(&dir).expect("a directory for histories");
    let history = dir.join(format!("{name}.json"));
    let view = dir.join(format!("{name}.html"));
    let json = serde_json::to_vec(&History { operations }).expect("history as JSON");
    std::fs::write(&history, json).expect("write the history");
    let mut command = Command::new(checker());
    if mode == Mode::Split {
        command.arg("-split");
    }
    // A minute by default; the soak's long histories need more
    // (`CQRS_CHECKER_TIMEOUT`, in seconds).
    let timeout = std::env::var("CQRS_CHECKER_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(60);
    let output = command
        .arg("-timeout")
        .arg(format!("{timeout}s"))
        .arg("-visualize")
        .arg(&view)
        .arg(&history)
        .output()
        .expect("run the linearizability checker");
    let report = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => Verdict::Linearizable,
        Some(1) => Verdict::NotLinearizable(view),
        _ => panic!(
            "the checker could not decide on {} ({}): {report}",
            history.display(),
            output.status
        ),
    }
}

/// Fails the test unless `operations` are linearizable (see [`check`]).
///
/// # Panics
/// If they are not, naming the history and its HTML view.
#[track_caller]
pub fn assert_linearizable(name: &str, operations: &[Operation], mode: Mode) {
    if let Verdict::NotLinearizable(view) = check(name, operations, mode) {
        panic!(
            "the history of {} operations is not linearizable; Porcupine's view of it: {}",
            operations.len(),
            view.display()
        );
    }
}

/// The checker binary, built once per process from `reliability/checker`.
fn checker() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../reliability/checker");
        let cache = std::env::var_os("CQRS_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/cqrs-rs")))
            .unwrap_or_else(|| std::env::temp_dir().join("cqrs-rs-cache"));
        let binary = cache.join("bin/cqrs-linearizability-checker");
        // Built beside it, then renamed over it: test processes build at once.
        let building = binary.with_extension(std::process::id().to_string());
        let status = Command::new("go")
            .current_dir(&source)
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=readonly")
            .env("GOMODCACHE", cache.join("go/mod"))
            .env("GOCACHE", cache.join("go/build"))
            .args(["build", "-o"])
            .arg(&building)
            .arg(".")
            .status()
            .unwrap_or_else(|e| {
                panic!("the linearizability checker needs Go 1.26 or newer on PATH ({e}); see the README's set-up")
            });
        assert!(
            status.success(),
            "building reliability/checker failed ({status}); run `go build` there to see why"
        );
        std::fs::rename(&building, &binary).expect("put the checker in place");
        binary
    })
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_usize(n: &usize) -> bool {
    *n == 0
}
