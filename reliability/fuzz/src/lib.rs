//! The fuzz targets of the reliability suite: every place where bytes from outside
//! the process are decoded, each behind a function that takes arbitrary bytes.
//!
//! A target must not panic, hang or allocate without bound on any input; where the
//! code under test has two paths that must agree (an event decoded by copy and in
//! place), the target asserts that they do. Each target's input is a small, mostly
//! textual format (see its module) so that the seed corpus in `corpus/<target>/` can
//! be read and written by hand.
//!
//! They run two ways:
//! * `cargo test -p cqrs-fuzz` (in the test command): every file of the corpus and of
//!   `regressions/`, then a fixed number of deterministic mutations of each
//!   ([`mutate`]);
//! * `scripts/fuzz.sh` (in `scripts/soak.sh`): libFuzzer, coverage-guided, through
//!   the cargo-fuzz package in `libfuzzer/`.
//!
//! An input that broke a target is minimized and committed to
//! `regressions/<target>/`, where the first way replays it forever.

pub mod mutate;
pub mod targets;

/// A fuzz target: a name (its corpus folder and its libFuzzer binary) and the
/// function that takes one input.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The name of its corpus folder and libFuzzer binary.
    pub name: &'static str,
    /// Runs one input; panics only on a bug.
    pub run: fn(&[u8]),
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "envelope",
        run: targets::envelope::run,
    },
    Target {
        name: "pgoutput",
        run: targets::pgoutput::run,
    },
    Target {
        name: "binlog",
        run: targets::binlog::run,
    },
    Target {
        name: "binlog_row",
        run: targets::binlog_row::run,
    },
    Target {
        name: "kafka_record",
        run: targets::kafka::record,
    },
    Target {
        name: "debezium",
        run: targets::kafka::debezium,
    },
    Target {
        name: "graphql",
        run: targets::graphql::run,
    },
    Target {
        name: "fcm_reply",
        run: targets::fcm_reply::run,
    },
];
