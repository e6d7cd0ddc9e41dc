//! The repository: decisions, conflicts and retries, idempotent commands, snapshots,
//! upcasting on load.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{Account, AccountCommand, AccountError, AccountEvent, deposit, open};
use cqrs_core::{
    AppendRequest, AppendResult, CommandError, CommandLog, Error, EventAppender, ExpectedVersion,
    LogReader, MemoryEventStore, Metadata, NewEvent, Position, RawEvent, RecordedEvent, Repository,
    Snapshot, SnapshotPolicy, SnapshotStore, StreamId, StreamReader, Version,
};
use serde_json::json;
use uuid::Uuid;

/// Forwards to a memory store; can make another writer win the race before the next
/// appends, and records the versions streams are read from.
#[derive(Clone, Default)]
struct Spy {
    inner: MemoryEventStore,
    conflicts_to_inject: Arc<AtomicU32>,
    reads_after: Arc<Mutex<Vec<Version>>>,
    limits: Arc<Mutex<Vec<usize>>>,
    streams_read: Arc<Mutex<Vec<StreamId>>>,
}

impl EventAppender for Spy {
    async fn append(&self, request: AppendRequest) -> Result<AppendResult, Error> {
        if self
            .conflicts_to_inject
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            let rival = NewEvent::encode(
                &AccountEvent::Deposited {
                    amount: 1,
                    currency: "EUR".into(),
                },
                Metadata::new().with_user("rival"),
            )?;
            self.inner
                .append(AppendRequest::new(
                    request.stream_id.clone(),
                    ExpectedVersion::Any,
                    vec![rival],
                ))
                .await?;
        }
        self.inner.append(request).await
    }
}
impl StreamReader for Spy {
    async fn read_stream(
        &self,
        stream_id: &StreamId,
        after: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        self.reads_after.lock().unwrap().push(after);
        self.limits.lock().unwrap().push(limit);
        self.streams_read.lock().unwrap().push(stream_id.clone());
        self.inner.read_stream(stream_id, after, limit).await
    }
}
impl LogReader for Spy {
    async fn read_all(&self, after: Position, limit: usize) -> Result<Vec<RecordedEvent>, Error> {
        self.inner.read_all(after, limit).await
    }
    async fn head(&self) -> Result<Position, Error> {
        self.inner.head().await
    }
}
impl CommandLog for Spy {
    async fn handled_command(&self, id: Uuid) -> Result<Option<AppendResult>, Error> {
        self.inner.handled_command(id).await
    }
}
impl SnapshotStore for Spy {
    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>, Error> {
        self.inner.load_snapshot(stream_id).await
    }
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), Error> {
        self.inner.save_snapshot(snapshot).await
    }
}

#[tokio::test]
async fn executes_and_loads() {
    let repo = Repository::<Account, _>::new(MemoryEventStore::new());
    repo.execute(&open("a"), Metadata::new()).await.unwrap();
    let outcome = repo
        .execute(&deposit("a", 30), Metadata::new().with_user("ada"))
        .await
        .unwrap();
    assert_eq!(outcome.version, Version(2));
    assert_eq!(outcome.position, Some(Position(2)));
    assert_eq!(
        outcome.events,
        vec![AccountEvent::Deposited {
            amount: 30,
            currency: "EUR".into()
        }]
    );

    let loaded = repo.load("a").await.unwrap();
    assert_eq!(loaded.version, Version(2));
    assert_eq!(loaded.state.balance, 30);

    let stored = repo
        .store()
        .read_stream(&StreamId::new("account-a"), Version::INITIAL, usize::MAX)
        .await
        .unwrap();
    assert_eq!(stored[1].metadata.user_id.as_deref(), Some("ada"));
    assert_eq!(stored[1].event.schema_version, 2);
    assert_eq!(
        stored[1].event_id.get_version_num(),
        7,
        "event ids are UUID v7"
    );
}

#[tokio::test]
async fn a_rejected_command_appends_nothing() {
    let store = MemoryEventStore::new();
    let repo = Repository::<Account, _>::new(store.clone());
    let err = repo
        .execute(&deposit("nobody", 5), Metadata::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, CommandError::Rejected(AccountError::NotOpen)),
        "{err:?}"
    );
    repo.execute(&open("a"), Metadata::new()).await.unwrap();
    let err = repo
        .execute(
            &AccountCommand::Withdraw {
                id: "a".into(),
                amount: 1,
            },
            Metadata::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.rejection(),
        Some(&AccountError::InsufficientFunds {
            balance: 0,
            asked: 1
        })
    );
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn a_conflict_is_decided_again_against_the_new_state() {
    let spy = Spy::default();
    let repo = Repository::<Account, _>::new(spy.clone());
    repo.execute(&open("a"), Metadata::new()).await.unwrap();

    repo.execute(&deposit("a", 5), Metadata::new())
        .await
        .unwrap();

    // A rival deposits 1 between our load (version 2) and our append: the append
    // conflicts, and the withdrawal is decided again on the rival's state.
    spy.conflicts_to_inject.store(1, Ordering::SeqCst);
    let outcome = repo
        .execute(
            &AccountCommand::Withdraw {
                id: "a".into(),
                amount: 5,
            },
            Metadata::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        outcome.version,
        Version(4),
        "appended after the rival's event"
    );
    let loaded = repo.load("a").await.unwrap();
    assert_eq!(loaded.state.balance, 1);
    assert_eq!(loaded.state.events_applied, 4);
}

#[tokio::test]
async fn conflicts_beyond_the_limit_give_up_and_append_nothing_of_ours() {
    let spy = Spy::default();
    let repo = Repository::<Account, _>::new(spy.clone()).with_max_attempts(3);
    repo.execute(&open("a"), Metadata::new()).await.unwrap();
    spy.conflicts_to_inject.store(3, Ordering::SeqCst);
    let err = repo
        .execute(&deposit("a", 100), Metadata::new())
        .await
        .unwrap_err();
    match err {
        CommandError::TooManyConflicts {
            attempts,
            last: Error::Conflict {
                expected, actual, ..
            },
        } => {
            assert_eq!(attempts, 3);
            assert_eq!(expected, ExpectedVersion::Exact(Version(3)));
            assert_eq!(actual, Version(4));
        }
        other => panic!("expected TooManyConflicts, got {other:?}"),
    }
    // Only the three rival deposits of 1 landed.
    assert_eq!(repo.load("a").await.unwrap().state.balance, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_on_one_aggregate_lose_no_update() {
    let store = MemoryEventStore::new();
    let repo = Repository::<Account, _>::new(store.clone()).with_max_attempts(1000);
    repo.execute(&open("a"), Metadata::new()).await.unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let repo = repo.clone();
            tokio::spawn(async move { repo.execute(&deposit("a", 1), Metadata::new()).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let loaded = repo.load("a").await.unwrap();
    assert_eq!(loaded.state.balance, 64);
    assert_eq!(loaded.version, Version(65));
}

#[tokio::test]
async fn a_command_id_is_handled_once() {
    let store = MemoryEventStore::new();
    let repo = Repository::<Account, _>::new(store.clone());
    repo.execute(&open("a"), Metadata::new()).await.unwrap();
    let id = Uuid::now_v7();
    let command = AccountCommand::Deposit {
        id: "a".into(),
        amount: 10,
        command_id: Some(id),
    };

    let first = repo.execute(&command, Metadata::new()).await.unwrap();
    let second = repo.execute(&command, Metadata::new()).await.unwrap();
    assert!(!first.already_handled);
    assert!(second.already_handled);
    assert_eq!(second.events, first.events);
    assert_eq!(second.version, first.version);
    assert_eq!(second.position, first.position);
    assert_eq!(repo.load("a").await.unwrap().state.balance, 10);

    let stored = store
        .read_stream(&StreamId::new("account-a"), Version(1), usize::MAX)
        .await
        .unwrap();
    assert_eq!(
        stored[0].metadata.causation_id,
        Some(id),
        "the command id is the causation id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_copies_of_one_command_append_once() {
    let store = MemoryEventStore::new();
    let repo = Repository::<Account, _>::new(store.clone()).with_max_attempts(100);
    repo.execute(&open("a"), Metadata::new()).await.unwrap();
    let id = Uuid::now_v7();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let repo = repo.clone();
            tokio::spawn(async move {
                let command = AccountCommand::Deposit {
                    id: "a".into(),
                    amount: 7,
                    command_id: Some(id),
                };
                repo.execute(&command, Metadata::new()).await
            })
        })
        .collect();
    let mut fresh = 0;
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        assert_eq!(outcome.version, Version(2));
        fresh += usize::from(!outcome.already_handled);
    }
    assert_eq!(fresh, 1, "exactly one copy appended");
    assert_eq!(repo.load("a").await.unwrap().state.balance, 7);
}

#[tokio::test]
async fn snapshots_skip_the_replay_of_older_events() {
    let spy = Spy::default();
    let repo = Repository::<Account, _>::new(spy.clone()).with_snapshots(SnapshotPolicy::Every(10));
    repo.execute(&open("a"), Metadata::new()).await.unwrap();
    for _ in 0..24 {
        repo.execute(&deposit("a", 2), Metadata::new())
            .await
            .unwrap();
    }
    let snapshot = spy
        .load_snapshot(&StreamId::new("account-a"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snapshot.version, Version(20));

    spy.reads_after.lock().unwrap().clear();
    let loaded = repo.load("a").await.unwrap();
    assert_eq!(
        *spy.reads_after.lock().unwrap(),
        vec![Version(20)],
        "read only after the snapshot"
    );
    assert_eq!(loaded.version, Version(25));
    assert_eq!(loaded.state.balance, 48);
    // 20 events came from the snapshot's state, 5 were applied on load.
    assert_eq!(loaded.state.events_applied, 25);
    let replayed = Repository::<Account, _>::new(spy.inner.clone())
        .load("a")
        .await
        .unwrap();
    assert_eq!(
        replayed, loaded,
        "the snapshot path and a full replay agree"
    );
}

#[tokio::test]
async fn a_snapshot_of_another_schema_is_ignored() {
    let spy = Spy::default();
    let repo = Repository::<Account, _>::new(spy.clone()).with_snapshots(SnapshotPolicy::Every(1));
    repo.execute(&open("a"), Metadata::new()).await.unwrap();
    repo.execute(&deposit("a", 5), Metadata::new())
        .await
        .unwrap();
    spy.inner
        .save_snapshot(Snapshot {
            stream_id: StreamId::new("account-a"),
            version: Version(99),
            schema: 42,
            state: json!({ "garbage": true }),
            taken_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    spy.reads_after.lock().unwrap().clear();
    let loaded = repo.load("a").await.unwrap();
    assert_eq!(*spy.reads_after.lock().unwrap(), vec![Version::INITIAL]);
    assert_eq!(loaded.state.balance, 5);
}

#[tokio::test]
async fn old_event_versions_are_upcast_on_load() {
    let store = MemoryEventStore::new();
    let repo = Repository::<Account, _>::new(store.clone());
    repo.execute(&open("a"), Metadata::new()).await.unwrap();
    // An event written by an older release: schema 1, amount in `cents`.
    let v1 = NewEvent {
        event_id: Uuid::now_v7(),
        event: RawEvent {
            event_type: "account.Deposited".into(),
            schema_version: 1,
            payload: json!({ "cents": 250 }),
        },
        metadata: Metadata::new(),
    };
    store
        .append(AppendRequest::new(
            "account-a",
            ExpectedVersion::Exact(Version(1)),
            vec![v1],
        ))
        .await
        .unwrap();

    let loaded = repo.load("a").await.unwrap();
    assert_eq!(loaded.state.balance, 250);
    let stored = store
        .read_stream(&StreamId::new("account-a"), Version(1), usize::MAX)
        .await
        .unwrap();
    let decoded = stored[0].clone().decode::<AccountEvent>().unwrap();
    assert_eq!(
        decoded.event,
        AccountEvent::Deposited {
            amount: 250,
            currency: "EUR".into()
        }
    );

    // A corrupt old payload is a typed error, and the data stays as it was.
    let bad = NewEvent {
        event_id: Uuid::now_v7(),
        event: RawEvent {
            event_type: "account.Deposited".into(),
            schema_version: 1,
            payload: json!({ "euros": 1 }),
        },
        metadata: Metadata::new(),
    };
    store
        .append(AppendRequest::new(
            "account-a",
            ExpectedVersion::Any,
            vec![bad],
        ))
        .await
        .unwrap();
    let err = repo.load("a").await.unwrap_err();
    assert!(
        matches!(err, Error::Codec { ref what, .. } if what == "account.Deposited"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("stream `account-a`") && message.contains("version 3"),
        "the error names the stream and version: {message}"
    );
    assert!(
        message.contains("position 3"),
        "and the position: {message}"
    );
    assert_eq!(store.len(), 3);
}

#[tokio::test]
async fn a_cached_aggregate_is_not_loaded_again() {
    let spy = Spy::default();
    let repo = Repository::<Account, _>::new(spy.clone()).with_cache(16);
    repo.execute(&open("a"), Metadata::new()).await.unwrap();
    spy.reads_after.lock().unwrap().clear();
    for _ in 0..5 {
        repo.execute(&deposit("a", 1), Metadata::new())
            .await
            .unwrap();
    }
    assert!(
        spy.reads_after.lock().unwrap().is_empty(),
        "decided on the cached state"
    );
    assert_eq!(repo.load("a").await.unwrap().state.balance, 5);
}

#[tokio::test]
async fn a_stale_cache_costs_a_retry_never_a_wrong_decision() {
    let store = MemoryEventStore::new();
    let cached = Repository::<Account, _>::new(store.clone()).with_cache(16);
    let other = Repository::<Account, _>::new(store.clone());
    cached.execute(&open("a"), Metadata::new()).await.unwrap();
    cached
        .execute(&deposit("a", 5), Metadata::new())
        .await
        .unwrap();
    // Another writer empties the account behind the cache's back.
    other
        .execute(
            &AccountCommand::Withdraw {
                id: "a".into(),
                amount: 5,
            },
            Metadata::new(),
        )
        .await
        .unwrap();
    // The cache says balance 5; the truth is 0. The withdrawal must be refused.
    let err = cached
        .execute(
            &AccountCommand::Withdraw {
                id: "a".into(),
                amount: 5,
            },
            Metadata::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.rejection(),
        Some(&AccountError::InsufficientFunds {
            balance: 0,
            asked: 5
        })
    );
    assert_eq!(store.len(), 3);
}

#[tokio::test]
async fn a_bounded_cache_evicts_and_still_decides_correctly() {
    let repo = Repository::<Account, _>::new(MemoryEventStore::new()).with_cache(2);
    for id in ["a", "b", "c", "d"] {
        repo.execute(&open(id), Metadata::new()).await.unwrap();
        repo.execute(&deposit(id, 3), Metadata::new())
            .await
            .unwrap();
    }
    for id in ["a", "b", "c", "d"] {
        repo.execute(&deposit(id, 1), Metadata::new())
            .await
            .unwrap();
        assert_eq!(repo.load(id).await.unwrap().state.balance, 4);
    }
}

#[tokio::test]
async fn a_hot_aggregate_stays_cached_while_many_cold_ones_pass_through() {
    let spy = Spy::default();
    let repo = Repository::<Account, _>::new(spy.clone()).with_cache(64);
    repo.execute(&open("hot"), Metadata::new()).await.unwrap();
    let hot = StreamId::new("account-hot");
    // Warm up: the hot account is used, then a burst of one-off accounts passes
    // through the cache, with the hot one used between them.
    for i in 0..1_000 {
        if i == 100 {
            spy.streams_read.lock().unwrap().clear();
        }
        repo.execute(&open(&format!("cold-{i}")), Metadata::new())
            .await
            .unwrap();
        repo.execute(&deposit("hot", 1), Metadata::new())
            .await
            .unwrap();
    }
    let hot_loads = spy
        .streams_read
        .lock()
        .unwrap()
        .iter()
        .filter(|s| **s == hot)
        .count();
    // An arbitrary eviction (the first key of a hash map) throws the hot entry out
    // again and again, and every time the next command has to load it.
    assert!(
        hot_loads <= 5,
        "the hot aggregate's stream was read {hot_loads} times in 900 commands: evicted by one-off aggregates"
    );
    assert_eq!(repo.load("hot").await.unwrap().state.balance, 1_000);
}

#[tokio::test]
async fn loads_read_a_long_stream_in_bounded_chunks() {
    let spy = Spy::default();
    let repo = Repository::<Account, _>::new(spy.clone());
    repo.execute(&open("a"), Metadata::new()).await.unwrap();
    let deposits: Vec<NewEvent> = (0..1_199)
        .map(|_| {
            NewEvent::encode(
                &AccountEvent::Deposited {
                    amount: 1,
                    currency: "EUR".into(),
                },
                Metadata::new(),
            )
            .unwrap()
        })
        .collect();
    spy.inner
        .append(AppendRequest::new(
            "account-a",
            ExpectedVersion::Any,
            deposits,
        ))
        .await
        .unwrap();
    spy.limits.lock().unwrap().clear();
    let loaded = repo.load("a").await.unwrap();
    assert_eq!(loaded.version, Version(1_200));
    assert_eq!(loaded.state.balance, 1_199);
    let limits = spy.limits.lock().unwrap().clone();
    assert_eq!(limits.len(), 3, "1,200 events in chunks of 512: {limits:?}");
    assert!(
        limits
            .iter()
            .all(|l| *l == Repository::<Account, Spy>::STREAM_CHUNK)
    );

    // A repeated command reads back only its own events, not the stream's tail.
    let command = AccountCommand::Deposit {
        id: "a".into(),
        amount: 2,
        command_id: Some(Uuid::now_v7()),
    };
    repo.execute(&command, Metadata::new()).await.unwrap();
    repo.execute(&deposit("a", 1), Metadata::new())
        .await
        .unwrap();
    spy.limits.lock().unwrap().clear();
    let again = repo.execute(&command, Metadata::new()).await.unwrap();
    assert!(again.already_handled);
    assert_eq!(again.events.len(), 1);
    assert_eq!(*spy.limits.lock().unwrap(), vec![1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_tasks_on_one_account_all_succeed_at_defaults() {
    let store = MemoryEventStore::new();
    let repo = Repository::<Account, _>::new(store.clone());
    repo.execute(&open("a"), Metadata::new()).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let repo = repo.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    repo.execute(&deposit("a", 1), Metadata::new()).await?;
                }
                Ok::<_, CommandError<AccountError>>(())
            })
        })
        .collect();
    let mut failures = Vec::new();
    for task in tasks {
        if let Err(error) = task.await.unwrap() {
            failures.push(error.to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{} tasks failed: {failures:?}",
        failures.len()
    );
    assert_eq!(repo.load("a").await.unwrap().state.balance, 800);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_that_share_no_queue_retry_conflicts_with_backoff() {
    // Two repositories over one store: like two processes.
    let store = MemoryEventStore::new();
    let first = Repository::<Account, _>::new(store.clone());
    let second = Repository::<Account, _>::new(store.clone());
    first.execute(&open("a"), Metadata::new()).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let repo = if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            tokio::spawn(async move {
                for _ in 0..25 {
                    repo.execute(&deposit("a", 1), Metadata::new()).await?;
                }
                Ok::<_, CommandError<AccountError>>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(first.load("a").await.unwrap().state.balance, 200);
}
