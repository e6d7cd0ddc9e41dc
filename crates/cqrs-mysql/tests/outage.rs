//! The server killed (SIGKILL) mid-append, under load, and started again: appends
//! meanwhile fail with a typed backend error, and every acknowledged event is there
//! after recovery, once, with dense positions. Alone in its test binary: it kills
//! the server the other tests use.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::TestDb;
use cqrs_core::{AppendRequest, Error, EventAppender, ExpectedVersion, LogReader, Position};
use cqrs_testkit::event_stores::raw;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_killed_mid_append_loses_nothing_acknowledged() {
    let db = TestDb::new(16).await;
    let store = db.store();
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
    tokio::time::sleep(Duration::from_millis(800)).await;
    cqrs_testkit::services("crash", "mysql");
    let killed = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    cqrs_testkit::services("start", "mysql");
    // Appends go through again once the pool has new connections.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut acked, mut failed) = (Vec::new(), 0);
    for w in writers {
        let (a, f) = w.await.unwrap();
        acked.extend(a);
        failed += f;
    }
    println!(
        "{} appends acknowledged, {failed} failed while the server was down",
        acked.len()
    );
    // The server restarted during the load. (Appends that were between calls wait
    // for a connection and go through after the restart: how many fail depends on
    // how many were in flight at the kill, from none to a handful.)
    let (uptime,): (String,) = sqlx::query_as(
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'UPTIME'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let uptime: u64 = uptime.parse().unwrap();
    assert!(
        uptime <= killed.elapsed().as_secs() + 1,
        "the server was not restarted during the load (up {uptime} s)"
    );
    let log = store.read_all(Position::START, usize::MAX).await.unwrap();
    let ids: Vec<Uuid> = log.iter().map(|e| e.event_id).collect();
    let stored: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(stored.len(), ids.len(), "no event twice");
    let missing = acked.iter().filter(|id| !stored.contains(id)).count();
    assert_eq!(missing, 0, "every acknowledged append survived the kill");
    assert!(
        log.iter()
            .enumerate()
            .all(|(i, e)| e.position.0 == i as u64 + 1),
        "positions dense after recovery"
    );
    // And the store works again (the pool replaced its dead connections).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let request = AppendRequest::new(
            "after",
            ExpectedVersion::Any,
            vec![raw("After", serde_json::json!({}))],
        );
        match store.append(request).await {
            Ok(result) => {
                assert_eq!(
                    result.position,
                    Some(Position(log.len() as u64 + 1)),
                    "right after the last"
                );
                break;
            }
            Err(error) => assert!(
                tokio::time::Instant::now() < deadline,
                "no append after recovery: {error}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    db.drop().await;
}
