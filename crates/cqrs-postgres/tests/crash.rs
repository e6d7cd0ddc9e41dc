//! PostgreSQL itself killed (SIGKILL to the postmaster) under load, and started
//! again: appends meanwhile fail with a typed backend error or wait for the pool to
//! reconnect; after recovery every
//! acknowledged append is there, once; a subscriber that subscribes again from the
//! last event it got (as a runner does) resumes without skipping or repeating.
//! Alone in its test binary: it kills the server the other tests use. FerretDB,
//! which keeps its data in this server, is started again afterwards so that later
//! tests find it fresh.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::TestDb;
use cqrs_core::{
    AppendRequest, Error, EventAppender, EventSubscriber, ExpectedVersion, LogReader, Position,
    RecordedEvent,
};
use cqrs_testkit::event_stores::raw;
use futures::StreamExt;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_server_killed_under_load_loses_nothing_acknowledged_and_subscribers_resume() {
    let db = TestDb::new(16).await;
    let store = db.store().with_deadline(Duration::from_secs(5));
    let started_before = server_started(&db).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (store, stop) = (store.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let (mut acked, mut failed) = (Vec::new(), 0_u32);
                while !stop.load(Ordering::Relaxed) {
                    let event = raw("Written", serde_json::json!({ "writer": w }));
                    let id = event.event_id;
                    let request = AppendRequest::new(
                        format!("writer-{w}"),
                        ExpectedVersion::Any,
                        vec![event],
                    );
                    match store.append(request).await {
                        Ok(_) => acked.push(id),
                        Err(Error::Backend { .. }) => {
                            failed += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(other) => panic!("not a backend error: {other}"),
                    }
                }
                (acked, failed)
            })
        })
        .collect();
    // The subscriber: on an error it subscribes again after the last event it got.
    let subscriber = {
        let (store, stop) = (store.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut delivered: Vec<RecordedEvent> = Vec::new();
            let mut resubscribed = 0;
            let mut quiet_since: Option<tokio::time::Instant> = None;
            'outer: loop {
                let after = delivered.last().map_or(Position::START, |e| e.position);
                let mut stream = store.subscribe(after, 50);
                loop {
                    match tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
                        Ok(Some(Ok(batch))) => {
                            delivered.extend(batch);
                            quiet_since = None;
                        }
                        Ok(Some(Err(_)) | None) => {
                            resubscribed += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue 'outer;
                        }
                        Err(_) if stop.load(Ordering::Relaxed) => {
                            let since = *quiet_since.get_or_insert_with(tokio::time::Instant::now);
                            if since.elapsed() > Duration::from_secs(2) {
                                break 'outer;
                            }
                        }
                        Err(_) => {}
                    }
                }
            }
            (delivered, resubscribed)
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    cqrs_testkit::services("crash", "postgres");
    tokio::time::sleep(Duration::from_millis(500)).await;
    cqrs_testkit::services("start", "postgres");
    // Appends go through again once the pool has new connections.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut acked, mut failed) = (Vec::new(), 0);
    for w in writers {
        let (a, f) = w.await.unwrap();
        acked.extend(a);
        failed += f;
    }
    let (delivered, resubscribed) = subscriber.await.unwrap();
    cqrs_testkit::services("restart", "mongo");

    // Appends in flight when it died fail; those that came while it was down may
    // just wait for a connection (the pool reconnects) and go through.
    assert_ne!(
        server_started(&db).await,
        started_before,
        "the server was killed and started again"
    );
    let mut log = Vec::new();
    let mut after = Position::START;
    loop {
        let page = store.read_all(after, 1_000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        log.extend(page);
    }
    let stored: HashSet<Uuid> = log.iter().map(|e| e.event_id).collect();
    let missing = acked.iter().filter(|id| !stored.contains(id)).count();
    assert_eq!(missing, 0, "acknowledged appends lost in the crash");
    let acked_after: usize = log.len();
    assert!(acked.len() <= acked_after);
    let ids: Vec<Uuid> = delivered.iter().map(|e| e.event_id).collect();
    let unique: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no event delivered twice");
    assert_eq!(
        unique, stored,
        "the subscriber got every stored event, none skipped"
    );
    assert!(
        delivered.windows(2).all(|w| w[0].position < w[1].position),
        "in position order"
    );
    // The subscription may not fail at all: a read during the outage waits for a
    // connection (the pool reconnects) and goes on. Either way nothing was skipped.
    eprintln!(
        "{} acknowledged, {failed} failed while down, {} stored, subscriber resubscribed {resubscribed} times",
        acked.len(),
        log.len()
    );
    db.drop().await;
}

/// When the server (its postmaster) started.
async fn server_started(db: &TestDb) -> chrono::DateTime<chrono::Utc> {
    sqlx::query_scalar("SELECT pg_postmaster_start_time()")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}
