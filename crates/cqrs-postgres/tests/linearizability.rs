//! Histories of concurrent appends and reads on PostgreSQL, checked for
//! linearizability by an independent checker (Porcupine, `reliability/checker`);
//! and two deliberately broken stores whose histories the checker must reject, so
//! that a pass means something.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use common::{Slow, TestDb};
use cqrs_core::{
    AppendRequest, AppendResult, Error, EventAppender, ExpectedVersion, LogReader, Position,
    RecordedEvent, StreamId, StreamReader, Version,
};
use cqrs_postgres::PgEventStore;
use cqrs_testkit::history::{Mode, Verdict, assert_linearizable, check};
use cqrs_testkit::linearizability::{Size, read_beside_an_open_append, record_history, scale};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_and_reads_are_linearizable() {
    let db = TestDb::new(16).await;
    let operations = record_history(db.store(), Slow(db.pool.clone()), Size::default(), "lin")
        .await
        .operations;
    assert!(operations.len() > 200, "{} operations", operations.len());
    assert_linearizable("postgres-concurrent", &operations, Mode::Whole);
    db.drop().await;
}

/// Enough clients at once that appends queue for groups (more than 8 in flight).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grouped_appends_and_reads_are_linearizable() {
    let db = TestDb::new(40).await;
    let store = db.store();
    let size = Size {
        clients: 32,
        operations: 10 * scale(),
        streams: 4,
        ..Size::default()
    };
    let operations = record_history(store.clone(), Slow(db.pool.clone()), size, "grp")
        .await
        .operations;
    let stats = store.group_commit_stats();
    assert!(stats.groups > 0, "appends were grouped: {stats:?}");
    // 32 clients at once: too many commuting operations for the whole search.
    assert_linearizable("postgres-grouped", &operations, Mode::Split);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_log_read_beside_an_open_append_is_linearizable() {
    let db = TestDb::new(8).await;
    let operations = read_beside_an_open_append(db.store(), Slow(db.pool.clone()), "open").await;
    assert_linearizable("postgres-open-append", &operations, Mode::Whole);
    db.drop().await;
}

/// The same history on a store whose safe-position bound is removed (in this test's
/// schema only): its log read goes past the open append, which commits later at a
/// lower position — the skip the bound exists to prevent. The checker must say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_checker_rejects_a_store_whose_log_reads_skip() {
    let db = TestDb::new(8).await;
    sqlx::query(
        "CREATE OR REPLACE FUNCTION cqrs_safe_position() RETURNS BIGINT
         LANGUAGE sql STABLE AS $$ SELECT 9223372036854775807::bigint $$",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let operations = read_beside_an_open_append(db.store(), Slow(db.pool.clone()), "skip").await;
    let read = operations
        .iter()
        .find(|o| o.input.op == "read_all")
        .unwrap();
    assert_eq!(
        read.output.log.len(),
        1,
        "the read went past the open append"
    );
    for mode in [Mode::Whole, Mode::Split] {
        assert!(
            matches!(
                check("postgres-broken-bound", &operations, mode),
                Verdict::NotLinearizable(_)
            ),
            "the checker ({mode:?}) accepted a skipped position"
        );
    }
    db.drop().await;
}

/// A store that ignores expected versions: every append goes through as if any
/// version were fine.
#[derive(Clone)]
struct SkipsVersionCheck(PgEventStore);

impl EventAppender for SkipsVersionCheck {
    async fn append(&self, mut request: AppendRequest) -> Result<AppendResult, Error> {
        request.expected = ExpectedVersion::Any;
        self.0.append(request).await
    }
}

impl StreamReader for SkipsVersionCheck {
    async fn read_stream(
        &self,
        stream_id: &StreamId,
        after: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        self.0.read_stream(stream_id, after, limit).await
    }
}

impl LogReader for SkipsVersionCheck {
    async fn read_all(&self, after: Position, limit: usize) -> Result<Vec<RecordedEvent>, Error> {
        self.0.read_all(after, limit).await
    }

    async fn head(&self) -> Result<Position, Error> {
        self.0.head().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_checker_rejects_a_store_that_skips_the_version_check() {
    let db = TestDb::new(16).await;
    let operations = record_history(
        SkipsVersionCheck(db.store()),
        Slow(db.pool.clone()),
        Size::default(),
        "noversion",
    )
    .await
    .operations;
    for mode in [Mode::Whole, Mode::Split] {
        assert!(
            matches!(
                check("postgres-no-version-check", &operations, mode),
                Verdict::NotLinearizable(_)
            ),
            "the checker ({mode:?}) accepted appends that ignored their expected version"
        );
    }
    db.drop().await;
}

/// While clients append and read, their sessions are terminated on the server
/// (`pg_terminate_backend`) every 15 ms, and clients give up on one append in three
/// after 0–3 ms: appends cut off mid-call have an outcome their client cannot know,
/// resolved from the final log (some took effect, some did not). Whatever was cut,
/// the history stays linearizable: nothing acknowledged is lost, nothing
/// half-written shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_stay_linearizable_while_sessions_are_killed() {
    let db = std::sync::Arc::new(TestDb::new(16).await);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = {
        let (db, stop) = (db.clone(), stop.clone());
        tokio::spawn(async move {
            let mut killed = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                killed += db.kill_busy_sessions().await;
                tokio::time::sleep(std::time::Duration::from_millis(15)).await;
            }
            killed
        })
    };
    let size = Size {
        clients: 6,
        operations: 60 * scale(),
        slow_appends: false,
        give_up: true,
        ..Size::default()
    };
    let recorded = record_history(db.store(), Slow(db.pool.clone()), size, "killed").await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let killed = killer.await.unwrap();
    assert!(killed > 0, "no session was killed");
    assert!(
        recorded.unknown > recorded.unknown_applied && recorded.unknown_applied > 0,
        "appends cut off both before and after they took effect: {} cut off, {} took effect",
        recorded.unknown,
        recorded.unknown_applied
    );
    assert_linearizable("postgres-killed", &recorded.operations, Mode::Whole);
    eprintln!(
        "{killed} sessions killed; {} appends cut off, {} of them took effect",
        recorded.unknown, recorded.unknown_applied
    );
    std::sync::Arc::try_unwrap(db).ok().unwrap().drop().await;
}
