//! The in-memory store under concurrent use, its subscriptions, and the event bus.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::AccountEvent;
use cqrs_core::{
    AppendRequest, Error, Event, EventAppender, EventPublisher, EventSubscriber, ExpectedVersion,
    LogReader, MemoryEventBus, MemoryEventStore, Metadata, NewEvent, Position, StreamId,
    StreamReader, Version, relay,
};
use futures::StreamExt;
use tokio::sync::Barrier;

fn deposited(amount: u64) -> NewEvent {
    NewEvent::encode(
        &AccountEvent::Deposited {
            amount,
            currency: "EUR".into(),
        },
        Metadata::new(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_to_one_stream_conflict_and_lose_nothing() {
    const WRITERS: usize = 32;
    let store = MemoryEventStore::new();
    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = store.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let stream = StreamId::new("account-shared");
                let mut conflicts = 0u32;
                let mut expected = Version::INITIAL;
                // Everyone first tries to create the stream at once.
                barrier.wait().await;
                loop {
                    let request = AppendRequest::new(
                        stream.clone(),
                        ExpectedVersion::Exact(expected),
                        vec![deposited(writer as u64), deposited(writer as u64)],
                    );
                    match store.append(request).await {
                        Ok(result) => return (conflicts, result),
                        Err(Error::Conflict {
                            actual,
                            expected: e,
                            ..
                        }) => {
                            assert_eq!(e, ExpectedVersion::Exact(expected));
                            assert!(actual > expected, "a conflict reports the newer version");
                            conflicts += 1;
                            expected = actual;
                        }
                        Err(other) => panic!("{other}"),
                    }
                }
            })
        })
        .collect();
    let mut total_conflicts = 0;
    for task in tasks {
        let (conflicts, result) = task.await.unwrap();
        total_conflicts += conflicts;
        assert_eq!(result.version.0 - result.previous_version.0, 2);
    }
    assert!(
        total_conflicts >= (WRITERS - 1) as u32,
        "all but one lost the first race"
    );

    let events = store
        .read_stream(
            &StreamId::new("account-shared"),
            Version::INITIAL,
            usize::MAX,
        )
        .await
        .unwrap();
    assert_eq!(events.len(), WRITERS * 2, "no event lost");
    let versions: Vec<u64> = events.iter().map(|e| e.version.0).collect();
    assert_eq!(
        versions,
        (1..=(WRITERS as u64 * 2)).collect::<Vec<_>>(),
        "versions are contiguous"
    );
    // The two events of one append stay together.
    for pair in events.chunks(2) {
        assert_eq!(pair[0].event, pair[1].event);
    }
    let ids: HashSet<_> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), WRITERS * 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn positions_are_unique_and_contiguous_across_streams() {
    let store = MemoryEventStore::new();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    store
                        .append(AppendRequest::new(
                            format!("account-{i}"),
                            ExpectedVersion::Any,
                            vec![deposited(1)],
                        ))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let all = store.read_all(Position::START, 10_000).await.unwrap();
    let positions: Vec<u64> = all.iter().map(|e| e.position.0).collect();
    assert_eq!(positions, (1..=800).collect::<Vec<_>>());
    assert_eq!(store.head().await.unwrap(), Position(800));
    // Per stream, versions follow positions.
    for i in 0..16 {
        let stream = store
            .read_stream(
                &StreamId::new(format!("account-{i}")),
                Version::INITIAL,
                usize::MAX,
            )
            .await
            .unwrap();
        assert!(
            stream
                .windows(2)
                .all(|w| w[0].position < w[1].position && w[0].version.0 + 1 == w[1].version.0)
        );
    }
}

#[tokio::test]
async fn expected_versions_are_checked() {
    let store = MemoryEventStore::new();
    let append = |expected| store.append(AppendRequest::new("s-1", expected, vec![deposited(1)]));
    append(ExpectedVersion::NoStream).await.unwrap();
    let err = append(ExpectedVersion::NoStream).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                actual: Version(1),
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("expected no stream, actual version is 1"),
        "{err}"
    );
    append(ExpectedVersion::Exact(Version(1))).await.unwrap();
    append(ExpectedVersion::Any).await.unwrap();
    let err = append(ExpectedVersion::Exact(Version(1)))
        .await
        .unwrap_err();
    assert!(err.is_conflict());
    assert_eq!(store.len(), 3);
}

#[tokio::test]
async fn a_subscription_catches_up_then_follows_live_appends() {
    let store = MemoryEventStore::new();
    for amount in 1..=5 {
        store
            .append(AppendRequest::new(
                "account-x",
                ExpectedVersion::Any,
                vec![deposited(amount)],
            ))
            .await
            .unwrap();
    }
    let mut subscription = store.subscribe(Position(2), 2);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let batch = subscription.next().await.unwrap().unwrap();
        assert!(batch.len() <= 2, "batches respect the batch size");
        seen.extend(batch.into_iter().map(|e| e.position.0));
    }
    assert_eq!(seen, vec![3, 4, 5]);

    let writer = store.clone();
    tokio::spawn(async move {
        for amount in 6..=10 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            writer
                .append(AppendRequest::new(
                    "account-y",
                    ExpectedVersion::Any,
                    vec![deposited(amount)],
                ))
                .await
                .unwrap();
        }
    });
    while seen.len() < 8 {
        let batch = tokio::time::timeout(Duration::from_secs(5), subscription.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.extend(batch.into_iter().map(|e| e.position.0));
    }
    assert_eq!(seen, (3..=10).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_bus_relays_in_order_and_drops_republished_events() {
    let store = MemoryEventStore::new();
    for amount in 1..=10 {
        store
            .append(AppendRequest::new(
                format!("account-{}", amount % 3),
                ExpectedVersion::Any,
                vec![deposited(amount)],
            ))
            .await
            .unwrap();
    }
    let bus = MemoryEventBus::new();
    let mut consumer = bus.subscribe(Position::START, 100);

    // The relay publishes everything after the bus's head; the store's subscription
    // never ends, so stop the relay once it has caught up.
    let relayed = tokio::time::timeout(
        Duration::from_millis(200),
        relay(&store, &bus, bus.last_published(), 4),
    )
    .await;
    assert!(relayed.is_err(), "a relay follows its source until stopped");
    assert_eq!(bus.last_published(), Position(10));

    // A relay restarted from an older position re-sends; the bus keeps one copy.
    let again = store.read_all(Position(5), 100).await.unwrap();
    bus.publish(&again).await.unwrap();

    let mut received = Vec::new();
    while received.len() < 10 {
        let batch = consumer.next().await.unwrap().unwrap();
        received.extend(batch);
    }
    let positions: Vec<u64> = received.iter().map(|e| e.position.0).collect();
    assert_eq!(positions, (1..=10).collect::<Vec<_>>());
    assert_eq!(bus.read_all(Position::START, 100).await.unwrap().len(), 10);
    let decoded = received[0].clone().decode::<AccountEvent>().unwrap();
    assert_eq!(decoded.event.event_type(), "account.Deposited");
}
