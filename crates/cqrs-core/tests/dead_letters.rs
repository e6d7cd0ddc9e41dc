//! Dead letters: an event that cannot be decoded, or whose changes the store keeps
//! refusing while it answers, is set aside and the read model goes on; a store that
//! does not answer at all costs no event.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Balances, FaultyStore, deposit, open};
use cqrs_core::{
    AppendRequest, Error, EventAppender, ExpectedVersion, LogReader, MemoryDeadLetters,
    MemoryEventStore, Metadata, NewEvent, Projection, ProjectionRunner, RawEvent, ReadModelReader,
    Repository,
};

/// Appends a deposit whose payload no version of the code can read.
async fn garbled(events: &MemoryEventStore, account: &str) {
    let event = NewEvent {
        event_id: uuid::Uuid::now_v7(),
        event: RawEvent {
            event_type: "account.Deposited".into(),
            schema_version: 2,
            payload: serde_json::json!({ "amount": "lots" }),
        },
        metadata: Metadata::new(),
    };
    events
        .append(AppendRequest::new(
            format!("account-{account}"),
            ExpectedVersion::Any,
            vec![event],
        ))
        .await
        .unwrap();
}

async fn balance(store: &FaultyStore, account: &str) -> u64 {
    let document = store
        .get(Balances::NAME, &format!("account-{account}"))
        .await
        .unwrap()
        .unwrap();
    document.value["balance"].as_u64().unwrap()
}

#[tokio::test]
async fn an_undecodable_event_is_set_aside_and_the_runner_goes_on() {
    let events = MemoryEventStore::new();
    let repo = Repository::<common::Account, _>::new(events.clone());
    repo.execute(&open("a"), Metadata::new()).await.unwrap();
    garbled(&events, "b").await;
    repo.execute(&deposit("a", 7), Metadata::new())
        .await
        .unwrap();
    let head = events.head().await.unwrap();

    // Without dead letters, the runner stops on it, naming the event.
    let read = FaultyStore::default();
    let stopped = ProjectionRunner::new(Balances, events.clone(), read.clone()).spawn();
    let error = stopped.join().await.unwrap_err();
    assert!(matches!(error, Error::Codec { .. }), "{error}");
    assert!(error.to_string().contains("position 2"), "{error}");

    let dead = MemoryDeadLetters::new();
    let handle = ProjectionRunner::new(Balances, events.clone(), read.clone())
        .with_dead_letters(dead.clone(), 3)
        .spawn();
    handle.wait_for(head).await.unwrap();
    assert_eq!(balance(&read, "a").await, 7, "the events around it applied");
    let letters = dead.letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].event.position, cqrs_core::Position(2));
    assert_eq!(letters[0].projection, Balances::NAME);
    assert!(
        letters[0].error.contains("account.Deposited"),
        "{}",
        letters[0].error
    );
    assert_eq!(handle.stats().set_aside, 1);
    handle.stop().await.unwrap();
}

#[tokio::test]
async fn an_event_the_store_keeps_refusing_is_set_aside_after_the_attempts() {
    let events = MemoryEventStore::new();
    let repo = Repository::<common::Account, _>::new(events.clone());
    repo.execute(&open("a"), Metadata::new()).await.unwrap();
    repo.execute(&open("poison"), Metadata::new())
        .await
        .unwrap();
    repo.execute(&deposit("a", 5), Metadata::new())
        .await
        .unwrap();
    let head = events.head().await.unwrap();
    let read = FaultyStore::default();
    *read.refused_document.lock().unwrap() = Some("account-poison".into());
    let dead = MemoryDeadLetters::new();
    let handle = ProjectionRunner::new(Balances, events.clone(), read.clone())
        .with_max_backoff(Duration::from_millis(20))
        .with_dead_letters(dead.clone(), 3)
        .spawn();
    handle.wait_for(head).await.unwrap();
    assert_eq!(balance(&read, "a").await, 5);
    let letters = dead.letters();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].event.stream_id.as_str(), "account-poison");
    assert!(letters[0].error.contains("document too large"));
    let stats = handle.stats();
    assert_eq!(stats.set_aside, 1);
    assert!(stats.retries >= 3, "{stats:?}");
    handle.stop().await.unwrap();
}

#[tokio::test]
async fn a_store_that_does_not_answer_costs_no_event() {
    let events = MemoryEventStore::new();
    let repo = Repository::<common::Account, _>::new(events.clone());
    repo.execute(&open("a"), Metadata::new()).await.unwrap();
    let read = FaultyStore::default();
    read.down.store(true, Ordering::SeqCst);
    let dead = MemoryDeadLetters::new();
    let handle = ProjectionRunner::new(Balances, events.clone(), read.clone())
        .with_max_backoff(Duration::from_millis(10))
        .with_dead_letters(dead.clone(), 2)
        .spawn();
    repo.execute(&deposit("a", 3), Metadata::new())
        .await
        .unwrap();
    let head = events.head().await.unwrap();
    // Far past the attempts: still nothing set aside.
    let started = std::time::Instant::now();
    while handle.stats().retries < 20 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(handle.stats().retries >= 20, "{:?}", handle.stats());
    assert!(dead.letters().is_empty(), "{:?}", dead.letters());
    read.down.store(false, Ordering::SeqCst);
    handle.wait_for(head).await.unwrap();
    assert_eq!(balance(&read, "a").await, 3);
    assert_eq!(handle.stats().set_aside, 0);
    handle.stop().await.unwrap();
}
