//! The projection runner: read-your-writes, resume, crash between documents and
//! checkpoint, rebuild, and failure reporting.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Account, BalanceDoc, Balances, FaultyStore, deposit, open};
use cqrs_core::{
    AppendRequest, DocumentChange, Error, EventAppender, EventBatchStream, EventSubscriber,
    ExpectedVersion, MemoryEventBus, MemoryEventStore, MemoryReadModelStore, Metadata, NewEvent,
    Position, ProjectionRunner, RawEvent, ReadModelReader, ReadModelWriter, Repository, relay,
};
use serde_json::json;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);

async fn doc(store: &impl ReadModelReader, id: &str) -> BalanceDoc {
    let stored = store
        .get("balances", id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no document {id}"));
    serde_json::from_value(stored.value).unwrap()
}

async fn fill(
    repo: &Repository<Account, MemoryEventStore>,
    accounts: usize,
    deposits: u64,
) -> Position {
    let mut last = Position::START;
    for a in 0..accounts {
        let id = format!("acc{a}");
        last = repo
            .execute(&open(&id), Metadata::new())
            .await
            .unwrap()
            .position
            .unwrap();
        for d in 1..=deposits {
            last = repo
                .execute(&deposit(&id, d), Metadata::new())
                .await
                .unwrap()
                .position
                .unwrap();
        }
    }
    last
}

/// Records where each subscription started.
#[derive(Clone)]
struct RecordingSource {
    inner: MemoryEventStore,
    starts: Arc<Mutex<Vec<Position>>>,
}

impl EventSubscriber for RecordingSource {
    fn subscribe(&self, after: Position, batch_size: usize) -> EventBatchStream {
        self.starts.lock().unwrap().push(after);
        self.inner.subscribe(after, batch_size)
    }
}

#[tokio::test]
async fn a_caller_can_wait_to_read_its_own_write() {
    let events = MemoryEventStore::new();
    let read = MemoryReadModelStore::new();
    let repo = Repository::<Account, _>::new(events.clone());
    let handle = ProjectionRunner::new(Balances, events.clone(), read.clone())
        .with_batch_size(7)
        .spawn();

    let last = fill(&repo, 3, 10).await;
    handle.wait_for_timeout(last, WAIT).await.unwrap();
    assert_eq!(handle.position(), last);
    assert_eq!(
        doc(&read, "account-acc1").await,
        BalanceDoc {
            balance: 55,
            events: 11
        }
    );
    assert_eq!(
        doc(&read, "totals").await,
        BalanceDoc {
            balance: 165,
            events: 33
        }
    );
    assert_eq!(read.checkpoint("balances").await.unwrap(), last);
    handle.stop().await.unwrap();
}

#[tokio::test]
async fn a_restarted_runner_resumes_from_its_checkpoint() {
    let events = MemoryEventStore::new();
    let read = MemoryReadModelStore::new();
    let repo = Repository::<Account, _>::new(events.clone());
    let source = RecordingSource {
        inner: events.clone(),
        starts: Arc::default(),
    };

    let first = ProjectionRunner::new(Balances, source.clone(), read.clone()).spawn();
    let middle = fill(&repo, 2, 5).await;
    first.wait_for_timeout(middle, WAIT).await.unwrap();
    first.stop().await.unwrap();

    // Events appended while no runner runs.
    let mut last = middle;
    for _ in 0..4 {
        last = repo
            .execute(&deposit("acc0", 100), Metadata::new())
            .await
            .unwrap()
            .position
            .unwrap();
    }
    let second = ProjectionRunner::new(Balances, source.clone(), read.clone()).spawn();
    second.wait_for_timeout(last, WAIT).await.unwrap();
    second.stop().await.unwrap();

    assert_eq!(
        *source.starts.lock().unwrap(),
        vec![Position::START, middle]
    );
    assert_eq!(
        doc(&read, "totals").await,
        BalanceDoc {
            balance: 430,
            events: 16
        }
    );
}

#[tokio::test]
async fn a_crash_between_documents_and_checkpoint_replays_harmlessly() {
    let events = MemoryEventStore::new();
    let repo = Repository::<Account, _>::new(events.clone());
    let last = fill(&repo, 4, 6).await;

    let store = FaultyStore::default();
    store.crash_before_checkpoint.store(true, Ordering::SeqCst);
    let handle = ProjectionRunner::new(Balances, events.clone(), store.clone())
        .with_batch_size(10)
        .with_max_backoff(Duration::from_millis(20))
        .spawn();
    handle.wait_for_timeout(last, WAIT).await.unwrap();
    handle.stop().await.unwrap();
    assert!(
        !store.crash_before_checkpoint.load(Ordering::SeqCst),
        "the crash happened"
    );

    // The first batch's documents were written, the checkpoint was not, and the batch
    // was applied again: the counters must still count every event once.
    let fresh = MemoryReadModelStore::new();
    let rebuild = ProjectionRunner::new(Balances, events.clone(), fresh.clone()).spawn();
    rebuild.wait_for_timeout(last, WAIT).await.unwrap();
    rebuild.stop().await.unwrap();
    assert_eq!(
        doc(&store.inner, "totals").await,
        BalanceDoc {
            balance: 84,
            events: 28
        }
    );
    let docs = |s: &MemoryReadModelStore| {
        s.documents("balances")
            .into_iter()
            .map(|(id, d)| (id, d.value))
            .collect::<Vec<_>>()
    };
    assert_eq!(docs(&store.inner), docs(&fresh), "equal to a fresh rebuild");
}

#[tokio::test]
async fn a_rebuild_starts_from_the_first_event() {
    let events = MemoryEventStore::new();
    let read = MemoryReadModelStore::new();
    let repo = Repository::<Account, _>::new(events.clone());
    let last = fill(&repo, 2, 3).await;
    let handle = ProjectionRunner::new(Balances, events.clone(), read.clone()).spawn();
    handle.wait_for_timeout(last, WAIT).await.unwrap();
    handle.stop().await.unwrap();
    let before = read.documents("balances");

    // Damage the read model, as a bug in an older projection would have.
    read.commit(
        "balances",
        vec![DocumentChange::Put {
            id: "totals".into(),
            value: json!({"balance": 1, "events": 1}),
            position: last,
        }],
        last,
    )
    .await
    .unwrap();
    assert_ne!(read.documents("balances"), before);

    let handle = ProjectionRunner::new(Balances, events.clone(), read.clone())
        .rebuild()
        .await
        .unwrap();
    handle.wait_for_timeout(last, WAIT).await.unwrap();
    handle.stop().await.unwrap();
    let after: Vec<_> = read
        .documents("balances")
        .into_iter()
        .map(|(id, d)| (id, d.value))
        .collect();
    let before: Vec<_> = before.into_iter().map(|(id, d)| (id, d.value)).collect();
    assert_eq!(after, before);
}

#[tokio::test]
async fn a_new_version_builds_beside_the_live_one() {
    let events = MemoryEventStore::new();
    let read = MemoryReadModelStore::new();
    let repo = Repository::<Account, _>::new(events.clone());
    let last = fill(&repo, 1, 2).await;
    let live = ProjectionRunner::new(Balances, events.clone(), read.clone()).spawn();
    let next = ProjectionRunner::new(Balances, events.clone(), read.clone())
        .with_name("balances.v2")
        .spawn();
    live.wait_for_timeout(last, WAIT).await.unwrap();
    next.wait_for_timeout(last, WAIT).await.unwrap();
    assert_eq!(
        read.get("balances.v2", "totals")
            .await
            .unwrap()
            .unwrap()
            .value,
        json!({"balance": 3, "events": 3})
    );
    assert_eq!(read.checkpoint("balances.v2").await.unwrap(), last);
    live.stop().await.unwrap();
    next.stop().await.unwrap();
}

#[tokio::test]
async fn waiting_for_a_position_not_reached_times_out() {
    let events = MemoryEventStore::new();
    let handle =
        ProjectionRunner::new(Balances, events.clone(), MemoryReadModelStore::new()).spawn();
    let err = handle
        .wait_for_timeout(Position(1), Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                wanted: Position(1),
                reached: Position::START,
                ..
            }
        ),
        "{err}"
    );
    handle.stop().await.unwrap();
}

#[tokio::test]
async fn an_undecodable_event_stops_the_runner_with_a_typed_error() {
    let events = MemoryEventStore::new();
    let read = MemoryReadModelStore::new();
    let repo = Repository::<Account, _>::new(events.clone());
    let good = fill(&repo, 1, 1).await;
    let poison = NewEvent {
        event_id: Uuid::now_v7(),
        event: RawEvent {
            event_type: "account.Deposited".into(),
            schema_version: 2,
            payload: json!({"amount": "lots"}),
        },
        metadata: Metadata::new(),
    };
    let bad = events
        .append(AppendRequest::new(
            "account-acc0",
            ExpectedVersion::Any,
            vec![poison],
        ))
        .await
        .unwrap()
        .position
        .unwrap();

    let handle = ProjectionRunner::new(Balances, events.clone(), read.clone())
        .with_batch_size(1)
        .spawn();
    let err = handle.wait_for_timeout(bad, WAIT).await.unwrap_err();
    assert!(
        matches!(err, Error::Closed(ref why) if why.contains("account.Deposited")),
        "{err}"
    );
    // The operator can find the row: stream, version, position and projection.
    let message = err.to_string();
    for part in [
        "stream `account-acc0`".to_owned(),
        "version 3".to_owned(),
        format!("position {bad}"),
        "projection `balances`".to_owned(),
    ] {
        assert!(message.contains(&part), "`{part}` missing from: {message}");
    }
    assert_eq!(
        handle.position(),
        good,
        "everything before the poison event is applied"
    );
    assert!(matches!(handle.join().await, Err(Error::Codec { .. })));
    assert_eq!(read.checkpoint("balances").await.unwrap(), good);
}

#[tokio::test]
async fn a_projection_can_follow_the_bus_instead_of_the_store() {
    let events = MemoryEventStore::new();
    let bus = MemoryEventBus::new();
    let read = MemoryReadModelStore::new();
    let repo = Repository::<Account, _>::new(events.clone());
    let relay_task = {
        let (events, bus) = (events.clone(), bus.clone());
        tokio::spawn(async move { relay(&events, &bus, Position::START, 50).await })
    };
    let handle = ProjectionRunner::new(Balances, bus.clone(), read.clone()).spawn();
    let last = fill(&repo, 2, 4).await;
    handle.wait_for_timeout(last, WAIT).await.unwrap();
    assert_eq!(
        doc(&read, "totals").await,
        BalanceDoc {
            balance: 20,
            events: 10
        }
    );
    handle.stop().await.unwrap();
    relay_task.abort();
}

#[tokio::test]
async fn a_runner_over_an_empty_store_says_it_has_caught_up() {
    let store = MemoryEventStore::new();
    let runner = ProjectionRunner::new(Balances, store.clone(), MemoryReadModelStore::new());
    let handle = runner.spawn();
    assert!(!handle.stats().caught_up, "not before it has looked");
    let mut progress = handle.progress();
    // (The guard `wait_for` returns holds the stats' lock: drop it at once.)
    let caught_up = tokio::time::timeout(WAIT, async {
        progress.wait_for(|p| p.caught_up).await.map(|_| ())
    })
    .await;
    assert!(
        caught_up.is_ok(),
        "no batch ever came, yet it never said it was caught up"
    );
    handle.stop().await.unwrap();
}
