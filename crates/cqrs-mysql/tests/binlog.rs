//! Change-data-capture from the binlog: the committed events in position order,
//! none skipped under random commit order; a reader process killed mid-stream
//! resumes from its stored coordinate and leaves a read model equal to a rebuild; a
//! consumer behind the stored coordinate, an unreadable coordinate and a changed
//! table are handled; an idle stream stays open on heartbeats.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::TestDb;
use cqrs_core::{
    AppendRequest, Error, EventAppender, EventSubscriber, ExpectedVersion, LogReader, Metadata,
    NewEvent, Position, ProjectionRunner, ReadModelWriter, RecordedEvent,
};
use cqrs_mysql::{MySqlBinlogSource, MySqlError, MySqlEventStore};
use cqrs_testkit::event_stores::{self, raw};
use cqrs_testkit::mysql_url;
use cqrs_testkit::scenarios::{WAIT, tally_documents};
use cqrs_testkit::tally::{TallyEvent, TallyProjection, reference_tally_of, tally_log};
use futures::StreamExt;
use sqlx::MySqlPool;

fn source(pool: &MySqlPool, name: &str) -> MySqlBinlogSource {
    MySqlBinlogSource::new(pool.clone(), &mysql_url(), name)
        .unwrap()
        .with_heartbeat(Duration::from_millis(300))
}

async fn append(store: &MySqlEventStore, stream: &str, n: usize) {
    let events = (0..n)
        .map(|i| raw("Written", serde_json::json!({ "i": i })))
        .collect();
    store
        .append(AppendRequest::new(stream, ExpectedVersion::Any, events))
        .await
        .unwrap();
}

/// Takes batches until `count` events came; fails on an error or a long silence.
async fn take(subscription: &mut cqrs_core::EventBatchStream, count: usize) -> Vec<RecordedEvent> {
    let mut events = Vec::new();
    while events.len() < count {
        let batch = tokio::time::timeout(Duration::from_secs(20), subscription.next())
            .await
            .expect("a batch in time")
            .expect("the subscription goes on")
            .expect("a batch, not an error");
        events.extend(batch);
    }
    events
}

fn assert_dense_from(events: &[RecordedEvent], first: u64) {
    let positions: Vec<u64> = events.iter().map(|e| e.position.0).collect();
    let expected: Vec<u64> = (first..first + events.len() as u64).collect();
    assert_eq!(positions, expected, "each position once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_binlog_source_never_skips_under_random_commit_order() {
    let db = TestDb::new(20).await;
    let source = source(&db.pool, "no-skip");
    event_stores::no_event_is_skipped_under_random_commit_order(
        source.clone(),
        common::Slow(db.pool.clone()),
        12,
    )
    .await;
    assert!(
        source.events_from_binlog() > 0,
        "the events came from the binlog"
    );
    db.drop().await;
}

/// Set in the child process: the database it reads.
const CHILD_DB: &str = "CQRS_MYSQL_BINLOG_CHILD_DB";
const KILL_TEST: &str = "a_killed_reader_process_resumes_from_its_stored_coordinate";

/// Appends `events` through 4 writers, each key's events in order by one writer;
/// returns the head.
async fn write_tally(store: MySqlEventStore, events: Vec<TallyEvent>) -> Position {
    let writers: Vec<_> = (0..4_usize)
        .map(|w| {
            let (store, events) = (store.clone(), events.clone());
            tokio::spawn(async move {
                for event in events {
                    let (TallyEvent::Added { key, .. } | TallyEvent::Cleared { key }) = &event;
                    if key.bytes().map(usize::from).sum::<usize>() % 4 != w {
                        continue;
                    }
                    let new = NewEvent::encode(&event, Metadata::new()).unwrap();
                    let request =
                        AppendRequest::new(format!("tally-{key}"), ExpectedVersion::Any, vec![new]);
                    store.append(request).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    store.head().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_reader_process_resumes_from_its_stored_coordinate() {
    if let Ok(database) = std::env::var(CHILD_DB) {
        // The child: a runner fed from the binlog, until killed.
        let pool = common::pool_in(&database, 4).await;
        let read_models = cqrs_mysql::MySqlReadModelStore::new(pool.clone());
        let _handle = ProjectionRunner::new(TallyProjection, source(&pool, "tally"), read_models)
            .with_batch_size(25)
            .spawn();
        tokio::time::sleep(Duration::from_secs(600)).await;
        return;
    }

    let db = TestDb::new(8).await;
    let store = db.store();
    let read_models = db.read_models();
    let writing = tokio::spawn(write_tally(store.clone(), tally_log(3_000, 17)));
    let mut killed_mid_stream = 0;
    for round in 0..12_u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", KILL_TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD_DB, &db.database)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(400 + (round * 173) % 500)).await;
        child.kill().unwrap(); // SIGKILL: mid-batch, nothing flushed.
        child.wait().unwrap();
        let checkpoint = read_models.checkpoint("tally").await.unwrap();
        let head = store.head().await.unwrap();
        eprintln!("round {round}: killed at checkpoint {checkpoint} of {head}");
        if checkpoint > Position::START && checkpoint < head {
            killed_mid_stream += 1;
        }
        if writing.is_finished() && killed_mid_stream >= 3 {
            break;
        }
    }
    let head = writing.await.unwrap();
    assert!(
        killed_mid_stream >= 3,
        "the reader was killed mid-stream only {killed_mid_stream} times"
    );
    let checkpoint = read_models.checkpoint("tally").await.unwrap();
    let source = source(&db.pool, "tally");
    let stored = source
        .stored()
        .await
        .unwrap()
        .expect("the killed readers stored a coordinate");
    assert!(
        stored.position <= checkpoint,
        "a coordinate is stored only once its events were handled ({} > {checkpoint})",
        stored.position
    );

    // A new reader resumes from the stored coordinate: from the binlog alone.
    let handle = ProjectionRunner::new(TallyProjection, source.clone(), read_models.clone())
        .with_batch_size(25)
        .spawn();
    handle.wait_for_timeout(head, WAIT).await.unwrap();
    handle.stop().await.unwrap();
    assert_eq!(
        source.events_from_table(),
        0,
        "resumed from the stored binlog coordinate, not from the table"
    );
    assert!(
        checkpoint == head || source.events_from_binlog() > 0,
        "the rest came from the binlog"
    );
    let log = store.read_all(Position::START, usize::MAX).await.unwrap();
    assert_eq!(log.len() as u64, head.0);
    assert_eq!(
        tally_documents(&read_models, "tally").await,
        reference_tally_of(&log).await,
        "after {killed_mid_stream} kills the read model differs from a rebuild"
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_behind_the_stored_coordinate_gets_the_rest_from_the_table() {
    let db = TestDb::new(8).await;
    let store = db.store();
    let first = source(&db.pool, "behind");
    append(&store, "a", 30).await;
    let mut subscription = first.subscribe(Position::START, 10);
    assert_dense_from(&take(&mut subscription, 30).await, 1);
    // Written while it reads the binlog: then asked for more, it stores where it is.
    append(&store, "b", 5).await;
    assert_dense_from(&take(&mut subscription, 5).await, 31);
    append(&store, "c", 1).await;
    assert_dense_from(&take(&mut subscription, 1).await, 36);
    drop(subscription);
    let stored = first.stored().await.unwrap().expect("stored");
    assert!(stored.position >= Position(31), "{stored:?}");

    // A rebuilt read model starts again from the beginning, with the same name.
    let again = source(&db.pool, "behind");
    let mut subscription = again.subscribe(Position::START, 8);
    let events = take(&mut subscription, 36).await;
    assert_dense_from(&events, 1);
    assert!(again.events_from_table() >= stored.position.0);
    // An idle stream stays open on heartbeats (3 missed would fail it), and then
    // delivers what comes.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    append(&store, "d", 2).await;
    assert_dense_from(&take(&mut subscription, 2).await, 37);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_stored_coordinate_falls_back_to_the_table_and_the_end() {
    let db = TestDb::new(8).await;
    let store = db.store();
    append(&store, "a", 12).await;
    // What a purged binlog looks like to the reader: a file the server lacks.
    sqlx::query(
        "INSERT INTO cqrs_binlog_readers (name, binlog_file, binlog_offset, position, updated_at)
         VALUES ('purged', 'binlog.999999', 4, 5, UTC_TIMESTAMP(6))",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let source = source(&db.pool, "purged");
    let mut subscription = source.subscribe(Position::START, 5);
    assert_dense_from(&take(&mut subscription, 12).await, 1);
    append(&store, "b", 3).await;
    assert_dense_from(&take(&mut subscription, 3).await, 13);
    let _ = tokio::time::timeout(Duration::from_millis(300), subscription.next()).await;
    let stored = source
        .stored()
        .await
        .unwrap()
        .expect("a real coordinate now");
    assert_ne!(stored.file, "binlog.999999");
    assert_eq!(stored.position, Position(15));
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_event_table_is_a_typed_error_saying_what_to_do() {
    let db = TestDb::new(4).await;
    sqlx::query("ALTER TABLE cqrs_events ADD COLUMN extra INT NULL")
        .execute(&db.pool)
        .await
        .unwrap();
    let mut subscription = source(&db.pool, "changed").subscribe(Position::START, 5);
    let error = subscription
        .next()
        .await
        .expect("an item")
        .expect_err("refused");
    let message = error.to_string();
    assert!(matches!(error, Error::Backend { .. }), "{message}");
    assert!(message.contains("migrate"), "{message}");
    db.drop().await;
}

#[tokio::test]
async fn bad_names_and_urls_are_typed_errors_without_the_password() {
    let pool = MySqlPool::connect_lazy(&mysql_url()).unwrap();
    let name = MySqlBinlogSource::new(pool.clone(), &mysql_url(), "no spaces").unwrap_err();
    assert!(matches!(name, MySqlError::InvalidName(_)), "{name}");
    let url =
        MySqlBinlogSource::new(pool.clone(), "mysql://u:s3cret@host:99999/db", "ok").unwrap_err();
    assert!(matches!(url, MySqlError::InvalidUrl { .. }), "{url}");
    assert!(!url.to_string().contains("s3cret"), "{url}");
    let ok = MySqlBinlogSource::new(pool, &mysql_url(), "reader-1").unwrap();
    assert!(
        !format!("{ok:?}").contains(":cqrs@"),
        "no password in Debug"
    );
    let ids: HashSet<u32> = ["a", "b", "reader-1"]
        .iter()
        .map(|n| {
            MySqlBinlogSource::new(
                MySqlPool::connect_lazy(&mysql_url()).unwrap(),
                &mysql_url(),
                n,
            )
            .unwrap()
            .server_id()
        })
        .collect();
    assert_eq!(ids.len(), 3);
}

/// The privileges the docs name are enough: a user with only those reads the
/// binlog (the tables through the pool of the usual user).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_with_only_the_documented_privileges_reads_the_binlog() {
    let db = TestDb::new(4).await;
    let user = format!("cdc_{}", &db.database[2..14]);
    // A password made up for this run, for a user dropped at the end.
    let password = uuid::Uuid::now_v7().simple().to_string();
    for statement in [
        format!("CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'"),
        format!("GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{user}'@'127.0.0.1'"),
        format!("GRANT SELECT ON {}.* TO '{user}'@'127.0.0.1'", db.database),
    ] {
        sqlx::query(&statement).execute(&db.pool).await.unwrap();
    }
    let url = mysql_url();
    let host = url.split('@').nth(1).unwrap().split('/').next().unwrap();
    let limited = format!("mysql://{user}:{password}@{host}");
    let source = MySqlBinlogSource::new(db.pool.clone(), &limited, "limited").unwrap();
    append(&db.store(), "a", 3).await;
    let mut subscription = source.subscribe(Position::START, 10);
    assert_dense_from(&take(&mut subscription, 3).await, 1);
    append(&db.store(), "b", 2).await;
    assert_dense_from(&take(&mut subscription, 2).await, 4);
    drop(subscription);
    sqlx::query(&format!("DROP USER '{user}'@'127.0.0.1'"))
        .execute(&db.pool)
        .await
        .unwrap();
    db.drop().await;
}
