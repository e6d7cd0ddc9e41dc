//! Group commit (on by default): concurrent appends in one transaction, each with
//! its own outcome; positions stay dense and in commit order, so a subscriber skips
//! nothing. And the same scenarios with it turned off.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::collections::HashSet;

use common::TestDb;
use cqrs_core::{
    AppendRequest, Error, EventAppender, EventSubscriber, ExpectedVersion, LogReader, NewEvent,
    Position, StreamId, StreamReader, Version,
};
use cqrs_testkit::event_stores::{self, raw};
use serde_json::json;
use uuid::Uuid;

fn event(i: usize) -> NewEvent {
    raw("Written", json!({ "i": i }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_shared_scenarios_pass_with_group_commit() {
    let db = TestDb::new(40).await;
    let store = db.store().with_group_commit(2);
    event_stores::appends_and_reads_back(store.clone()).await;
    db.drop().await;
    let db = TestDb::new(40).await;
    event_stores::conflicts_write_nothing(db.store().with_group_commit(2)).await;
    db.drop().await;
    let db = TestDb::new(40).await;
    event_stores::racing_writers_lose_nothing(db.store().with_group_commit(2), 32).await;
    db.drop().await;
    let db = TestDb::new(40).await;
    event_stores::racing_command_ids_append_once(db.store().with_group_commit(2), 16).await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_shared_scenarios_pass_without_group_commit() {
    let db = TestDb::new(40).await;
    event_stores::appends_and_reads_back(db.store().with_group_commit(0)).await;
    db.drop().await;
    let db = TestDb::new(40).await;
    event_stores::conflicts_write_nothing(db.store().with_group_commit(0)).await;
    db.drop().await;
    let db = TestDb::new(40).await;
    let store = db.store().with_group_commit(0);
    event_stores::racing_writers_lose_nothing(store.clone(), 32).await;
    assert_eq!(
        store.group_commit_stats(),
        cqrs_core::GroupCommitStats::default(),
        "off"
    );
    db.drop().await;
    let db = TestDb::new(40).await;
    event_stores::racing_command_ids_append_once(db.store().with_group_commit(0), 16).await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_streams_and_duplicate_command_ids_in_the_same_groups() {
    let db = TestDb::new(16).await;
    let store = db.store().with_group_commit(2);
    event_stores::grouped_appends_keep_their_own_outcomes(store.clone()).await;
    let log = store.read_all(Position::START, usize::MAX).await.unwrap();
    assert!(
        log.windows(2)
            .all(|w| w[1].position.0 == w[0].position.0 + 1),
        "dense"
    );
    db.drop().await;
}

/// A member the server refuses (an event id stored before, a stream id too long)
/// fails alone: the others of its group are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_member_fails_alone() {
    let db = TestDb::new(16).await;
    let store = db.store().with_group_commit(1);
    let stored = event(0);
    let reused = stored.event_id;
    store
        .append(AppendRequest::new(
            "first",
            ExpectedVersion::Any,
            vec![stored],
        ))
        .await
        .unwrap();
    for round in 0..5 {
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut e = event(i);
                    // A stream id too long in the first round (its group goes one
                    // by one), an event id stored before in the others.
                    let stream = match i {
                        7 if round == 0 => "x".repeat(300),
                        _ => format!("s-{round}-{i}"),
                    };
                    if i == 11 && round > 0 {
                        e.event_id = reused;
                    }
                    store
                        .append(AppendRequest::new(stream, ExpectedVersion::Any, vec![e]))
                        .await
                })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            let result = task.await.unwrap();
            match (round, i) {
                (0, 7) | (1.., 11) => assert!(
                    matches!(result, Err(Error::Backend { .. })),
                    "{i}: {result:?}"
                ),
                _ => assert!(result.is_ok(), "{i}: {result:?}"),
            }
        }
    }
    let stats = store.group_commit_stats();
    assert!(
        stats.groups >= 4 && stats.grouped_appends > 40,
        "the appends went in groups: {stats:?}"
    );
    let log = store.read_all(Position::START, usize::MAX).await.unwrap();
    assert_eq!(log.len(), 1 + 5 * 23);
    assert!(
        log.windows(2)
            .all(|w| w[1].position.0 == w[0].position.0 + 1),
        "dense"
    );
    let s = store
        .read_stream(&StreamId::new("s-4-23"), Version::INITIAL, 10)
        .await
        .unwrap();
    assert_eq!(s.len(), 1);
    db.drop().await;
}

/// Writers appending through groups while a subscriber tails the log: exactly the
/// acknowledged events, once, in position order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tailing_subscriber_gets_every_grouped_append_once_in_order() {
    let db = TestDb::new(24).await;
    let store = db.store().with_group_commit(2);
    let mut subscription = store.subscribe(Position::START, 50);
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut committed = Vec::new();
                for t in 0..40 {
                    let events = vec![event(t), event(t + 1000)];
                    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
                    let stream = format!("w-{}", (w + t) % 7);
                    store
                        .append(AppendRequest::new(stream, ExpectedVersion::Any, events))
                        .await
                        .unwrap();
                    committed.extend(ids);
                }
                committed
            })
        })
        .collect();
    let (committed, delivered) = event_stores::tail_while_writing(&mut subscription, writers).await;
    let ids: Vec<Uuid> = delivered.iter().map(|e| e.event_id).collect();
    let unique: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "none twice");
    assert_eq!(unique, committed, "every acknowledged event");
    assert!(
        delivered
            .windows(2)
            .all(|w| w[1].position.0 == w[0].position.0 + 1),
        "in position order, dense"
    );
    db.drop().await;
}

/// Groups and single appends from another store value (another process, as far as
/// the server knows) on the same streams: a group takes its streams' locks before
/// the tail, like a single append, so none deadlocks with the other and every
/// append lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn groups_and_single_appends_elsewhere_do_not_deadlock() {
    let db = TestDb::new(48).await;
    let grouped = db.store().with_group_commit(2);
    let single = db.store().with_group_commit(0);
    let writers: Vec<_> = (0..32)
        .map(|w| {
            let store = if w % 2 == 0 {
                grouped.clone()
            } else {
                single.clone()
            };
            tokio::spawn(async move {
                for t in 0..25 {
                    // Streams in opposite orders from one writer to the next.
                    let stream = if w % 4 < 2 { t % 6 } else { 5 - t % 6 };
                    let request = AppendRequest::new(
                        format!("hot-{stream}"),
                        ExpectedVersion::Any,
                        vec![event(t)],
                    );
                    store
                        .append(request)
                        .await
                        .expect("no deadlock, no failure");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let log = grouped.read_all(Position::START, usize::MAX).await.unwrap();
    assert_eq!(log.len(), 32 * 25);
    assert!(
        log.windows(2)
            .all(|w| w[1].position.0 == w[0].position.0 + 1),
        "dense"
    );
    assert!(grouped.group_commit_stats().groups > 0, "groups formed");
    db.drop().await;
}
