//! Checks every event store must pass, written once and run by each adapter's tests
//! against its real server (PostgreSQL, MySQL): appends and reads, conflicts,
//! concurrent writers, racing command ids, snapshots, upcasting, and no skipped
//! event under random commit order.
//!
//! Each takes a store on an empty database (a schema or database of the test's own).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{
    Aggregate, AppendRequest, Command, Error, Event, EventBatchStream, EventStore, EventSubscriber,
    ExpectedVersion, Metadata, NewEvent, Position, RawEvent, RecordedEvent, Repository,
    SnapshotPolicy, StreamId, Version,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::Lcg;

/// A raw event of `event_type` with `payload`, by user `ada`.
pub fn raw(event_type: &str, payload: serde_json::Value) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event: RawEvent {
            event_type: event_type.into(),
            schema_version: 1,
            payload,
        },
        metadata: Metadata::new().with_user("ada").with("source", "test"),
    }
}

/// Appends to two streams and reads them back, by stream and through the log:
/// versions, positions that grow, payloads (objects, `null`, strings) and metadata
/// as written, and the head.
///
/// # Panics
/// If anything read differs from what was written.
pub async fn appends_and_reads_back<S: EventStore>(store: S) {
    let first = store
        .append(AppendRequest::new(
            "s-1",
            ExpectedVersion::NoStream,
            vec![
                raw("A", json!({"n": 1, "nested": {"x": [1, 2]}})),
                raw("B", json!(null)),
            ],
        ))
        .await
        .expect("append");
    assert_eq!(
        (first.previous_version, first.version),
        (Version(0), Version(2))
    );
    let second = store
        .append(AppendRequest::new(
            "s-2",
            ExpectedVersion::Any,
            vec![raw("A", json!("text"))],
        ))
        .await
        .expect("append");
    assert!(
        second.position > first.position,
        "a later append has a later position"
    );
    let s1 = store
        .read_stream(&StreamId::new("s-1"), Version::INITIAL, usize::MAX)
        .await
        .expect("read");
    assert_eq!(s1.len(), 2);
    assert_eq!(
        s1[0].event.payload,
        json!({"n": 1, "nested": {"x": [1, 2]}})
    );
    assert_eq!(s1[1].event.payload, json!(null));
    assert_eq!(s1[1].version, Version(2));
    assert_eq!(s1[0].metadata.user_id.as_deref(), Some("ada"));
    let tail = store
        .read_stream(&StreamId::new("s-1"), Version(1), usize::MAX)
        .await
        .expect("read");
    assert_eq!(tail.len(), 1, "after a version");
    // A store may hold the log back while other transactions are open (PostgreSQL's
    // safe position): wait until all three are readable.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let log = loop {
        let log = store.read_all(Position::START, 100).await.expect("log");
        if log.len() == 3 {
            break log;
        }
        assert!(log.len() < 3, "more events than written: {}", log.len());
        assert!(
            tokio::time::Instant::now() < deadline,
            "the log never showed all three"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        log.windows(2).all(|w| w[0].position < w[1].position),
        "in order"
    );
    assert_eq!(log[2].event.payload, json!("text"));
    assert_eq!(
        store.read_all(Position::START, 2).await.expect("log").len(),
        2,
        "limit"
    );
    assert_eq!(store.head().await.expect("head"), log[2].position);
}

/// A wrong expected version is [`Error::Conflict`] with the actual version, and
/// writes nothing.
///
/// # Panics
/// If not.
pub async fn conflicts_write_nothing<S: EventStore>(store: S) {
    store
        .append(AppendRequest::new(
            "s",
            ExpectedVersion::Any,
            vec![raw("A", json!({}))],
        ))
        .await
        .expect("append");
    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(Version(5)),
    ] {
        let error = store
            .append(AppendRequest::new("s", expected, vec![raw("B", json!({}))]))
            .await
            .expect_err("conflict");
        assert!(
            matches!(
                error,
                Error::Conflict {
                    actual: Version(1),
                    ..
                }
            ),
            "{error}"
        );
    }
    let stream = store
        .read_stream(&StreamId::new("s"), Version::INITIAL, usize::MAX)
        .await
        .expect("read");
    assert_eq!(stream.len(), 1, "nothing written");
}

/// `writers` tasks released at once race to append two events each to one stream,
/// each from the version it last saw: all but one lose the first race, and in the
/// end every event is there once, versions without a hole, positions following
/// versions, each append's two events together.
///
/// # Panics
/// If an event is lost or doubled.
pub async fn racing_writers_lose_nothing<S>(store: S, writers: usize)
where
    S: EventStore + Clone + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(writers));
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let mut expected = Version::INITIAL;
                let mut conflicts = 0;
                barrier.wait().await;
                loop {
                    let request = AppendRequest::new(
                        "shared",
                        ExpectedVersion::Exact(expected),
                        vec![
                            raw("W", json!({"writer": writer, "i": 0})),
                            raw("W", json!({"writer": writer, "i": 1})),
                        ],
                    );
                    match store.append(request).await {
                        Ok(_) => return conflicts,
                        Err(Error::Conflict { actual, .. }) => {
                            conflicts += 1;
                            expected = actual;
                        }
                        Err(other) => panic!("{other}"),
                    }
                }
            })
        })
        .collect();
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.expect("writer");
    }
    assert!(
        conflicts >= writers - 1,
        "all but one lost the first race ({conflicts} conflicts)"
    );
    let events = store
        .read_stream(&StreamId::new("shared"), Version::INITIAL, usize::MAX)
        .await
        .expect("read");
    assert_eq!(events.len(), writers * 2, "no event lost");
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(i, e)| e.version.0 == i as u64 + 1),
        "versions without a hole"
    );
    assert!(
        events.windows(2).all(|w| w[0].position < w[1].position),
        "positions follow versions"
    );
    for pair in events.chunks(2) {
        assert_eq!(
            (
                &pair[0].event.payload["writer"],
                &pair[0].event.payload["i"],
                &pair[1].event.payload["i"]
            ),
            (&pair[1].event.payload["writer"], &json!(0), &json!(1)),
            "an append stays together, in order"
        );
    }
    let distinct: HashSet<_> = events
        .iter()
        .map(|e| e.event.payload["writer"].clone())
        .collect();
    assert_eq!(distinct.len(), writers, "every writer's append is there");
}

/// `copies` copies of one command (one command id) race: one appends, the others
/// are told it was handled, with its result; the command log remembers it.
///
/// # Panics
/// If the command is appended twice or a copy gets another result.
pub async fn racing_command_ids_append_once<S>(store: S, copies: usize)
where
    S: EventStore + Clone + 'static,
{
    let command = Uuid::now_v7();
    let tasks: Vec<_> = (0..copies)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let request =
                    AppendRequest::new("s", ExpectedVersion::Any, vec![raw("A", json!({}))])
                        .with_command_id(command);
                store.append(request).await.expect("append")
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("copy"));
    }
    assert_eq!(
        results.iter().filter(|r| !r.already_handled).count(),
        1,
        "appended once"
    );
    assert!(
        results
            .iter()
            .all(|r| r.version == Version(1) && r.position == results[0].position),
        "every copy gets the one result"
    );
    let stream = store
        .read_stream(&StreamId::new("s"), Version::INITIAL, usize::MAX)
        .await
        .expect("read");
    assert_eq!(stream.len(), 1);
    let recorded = store
        .handled_command(command)
        .await
        .expect("log")
        .expect("recorded");
    assert_eq!(
        (recorded.previous_version, recorded.version),
        (Version(0), Version(1))
    );
    assert!(
        store
            .handled_command(Uuid::now_v7())
            .await
            .expect("log")
            .is_none()
    );
}

/// A counter, to load through snapshots.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Counter {
    total: u64,
    adds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(namespace = "counter")]
enum CounterEvent {
    Added { n: u64 },
}

struct Add {
    id: String,
    n: u64,
}

impl Command for Add {
    fn aggregate_id(&self) -> String {
        self.id.clone()
    }
}

impl Aggregate for Counter {
    const TYPE: &'static str = "counter";
    type Command = Add;
    type Event = CounterEvent;
    type Error = std::convert::Infallible;

    fn handle(&self, command: &Add) -> Result<Vec<CounterEvent>, Self::Error> {
        Ok(vec![CounterEvent::Added { n: command.n }])
    }

    fn apply(&mut self, event: &CounterEvent) {
        let CounterEvent::Added { n } = event;
        self.total += n;
        self.adds += 1;
    }
}

/// A repository snapshotting every 25 events loads a 60-event stream from its
/// snapshot and the tail, to the same state as a full replay; the store keeps the
/// newest snapshot when an older one comes late.
///
/// # Panics
/// If the state differs or an older snapshot replaces a newer one.
pub async fn snapshots_load_like_a_replay<S>(store: S)
where
    S: EventStore + Clone + 'static,
{
    let repo =
        Repository::<Counter, _>::new(store.clone()).with_snapshots(SnapshotPolicy::Every(25));
    for n in 1..=60 {
        repo.execute(
            &Add {
                id: "c-1".into(),
                n,
            },
            Metadata::new(),
        )
        .await
        .expect("execute");
    }
    let stream = StreamId::new("counter-c-1");
    let snapshot = store
        .load_snapshot(&stream)
        .await
        .expect("load")
        .expect("snapshot");
    assert_eq!(snapshot.version, Version(50));
    let loaded = repo.load("c-1").await.expect("load");
    assert_eq!(loaded.version, Version(60));
    assert_eq!(
        loaded.state,
        Counter {
            total: 1830,
            adds: 60
        }
    );
    let replayed = Repository::<Counter, _>::new(store.clone())
        .load("c-1")
        .await
        .expect("replay");
    assert_eq!(replayed, loaded, "snapshot + tail equals a full replay");
    let mut older = snapshot.clone();
    older.version = Version(25);
    older.state = json!({"total": 0, "adds": 0});
    store.save_snapshot(older).await.expect("save");
    assert_eq!(
        store
            .load_snapshot(&stream)
            .await
            .expect("load")
            .expect("snapshot")
            .version,
        Version(50),
        "an older snapshot does not replace a newer one"
    );
}

/// An event whose first schema stored minutes, the second seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(namespace = "timer", upcast = upcast_timer)]
enum TimerEvent {
    #[event(version = 2)]
    Set { seconds: u64 },
}

fn upcast_timer(mut raw: RawEvent) -> Result<RawEvent, Error> {
    if raw.schema_version == 1 {
        let minutes = raw.payload["minutes"]
            .as_u64()
            .ok_or_else(|| Error::codec("timer.Set", "v1 without minutes"))?;
        raw.payload = json!({ "seconds": minutes * 60 });
        raw.schema_version = 2;
    }
    Ok(raw)
}

/// An event stored under an old schema version is upcast when decoded; the stored
/// event is left as it was.
///
/// # Panics
/// If it is not upcast, or the stored one changed.
pub async fn old_schema_versions_are_upcast<S: EventStore>(store: S) {
    let old = raw("timer.Set", json!({ "minutes": 3 }));
    let new = NewEvent::encode(&TimerEvent::Set { seconds: 10 }, Metadata::new()).expect("encode");
    store
        .append(AppendRequest::new(
            "timer-1",
            ExpectedVersion::NoStream,
            vec![old, new],
        ))
        .await
        .expect("append");
    let stored = store
        .read_stream(&StreamId::new("timer-1"), Version::INITIAL, usize::MAX)
        .await
        .expect("read");
    assert_eq!(
        stored[0].event.schema_version, 1,
        "the stored event is left as it was"
    );
    let events: Vec<TimerEvent> = stored
        .into_iter()
        .map(|e| e.decode::<TimerEvent>().expect("decode").event)
        .collect();
    assert_eq!(
        events,
        vec![
            TimerEvent::Set { seconds: 180 },
            TimerEvent::Set { seconds: 10 }
        ]
    );
}

/// 64 tasks append at once to a store that groups concurrent appends: every eighth
/// sends the same command id to one stream, the others one event each to five
/// shared streams. The command is appended once (the copies are answered as
/// handled, with its position), every other append lands, each stream's versions
/// are in order without a hole, and positions increase along the log.
///
/// # Panics
/// If an append fails, the command is appended twice, or the log is not as above
/// within 30 s.
pub async fn grouped_appends_keep_their_own_outcomes<S>(store: S)
where
    S: EventStore + Clone + 'static,
{
    let command = Uuid::now_v7();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let event = raw("Written", json!({ "i": i }));
                let request = if i % 8 == 0 {
                    AppendRequest::new("paid", ExpectedVersion::Any, vec![event])
                        .with_command_id(command)
                } else {
                    AppendRequest::new(format!("s-{}", i % 5), ExpectedVersion::Any, vec![event])
                };
                store.append(request).await.expect("append")
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    let paid: Vec<_> = results
        .iter()
        .filter(|r| r.stream_id.as_str() == "paid")
        .collect();
    assert_eq!(
        paid.iter().filter(|r| !r.already_handled).count(),
        1,
        "the command was appended once"
    );
    assert!(
        paid.iter()
            .all(|r| r.position == paid[0].position && r.version == Version(1)),
        "every copy answered with the one append"
    );
    // The log as readers see it (a store may hold back positions until earlier
    // transactions elsewhere settle).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let log = loop {
        let log = store
            .read_all(Position::START, usize::MAX)
            .await
            .expect("read_all");
        if log.len() >= 57 || tokio::time::Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(log.len(), 57, "7 appends of the command collapsed into 1");
    assert!(log.windows(2).all(|w| w[0].position < w[1].position));
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for event in &log {
        let last = versions.entry(event.stream_id.as_str()).or_insert(0);
        assert_eq!(event.version.0, *last + 1, "{} in order", event.stream_id);
        *last = event.version.0;
    }
}

/// Reads `subscription` while `writers` run, until they have all finished and it has
/// been quiet for half a second (at most 180 s in all); returns the ids the writers
/// say they committed and every event the subscription delivered, in order.
///
/// # Panics
/// If a writer panics, the subscription ends or fails, or the deadline passes.
pub async fn tail_while_writing(
    subscription: &mut EventBatchStream,
    mut writers: Vec<tokio::task::JoinHandle<Vec<Uuid>>>,
) -> (HashSet<Uuid>, Vec<RecordedEvent>) {
    let mut committed = HashSet::new();
    let mut delivered = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        if !writers.is_empty() && writers.iter().all(|w| w.is_finished()) {
            for w in writers.drain(..) {
                committed.extend(w.await.expect("writer"));
            }
        }
        let done = writers.is_empty();
        match tokio::time::timeout(Duration::from_millis(500), subscription.next()).await {
            Ok(Some(batch)) => delivered.extend(batch.expect("batch")),
            Ok(None) => panic!("the subscription ended"),
            // Quiet for half a second after the writers finished: all there is.
            Err(_) if done => break,
            Err(_) => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} events delivered in time",
            delivered.len()
        );
    }
    (committed, delivered)
}

/// Appends inside a transaction of the store's own that waits before it commits or
/// rolls back: what the no-skip scenario needs of a store's test.
pub trait SlowAppender: Clone + Send + Sync + 'static {
    /// Appends `events` to `stream` (any version) in a new transaction, waits
    /// `delay` holding it open, then commits (`commit`) or rolls back.
    fn append_slowly(
        &self,
        stream: &str,
        events: Vec<NewEvent>,
        delay: Duration,
        commit: bool,
    ) -> impl Future<Output = ()> + Send;
}

/// `writers` writers append 1 to 3 events per transaction through `appender`, 40
/// transactions each (times [`scale`](crate::linearizability::scale): the soak
/// runs it at 100,000 events and more; a third to shared streams), each
/// transaction held open a
/// random 0–25 ms and rolled back one time in eight, so transactions commit in an
/// order unrelated to the order they took their positions in; a subscriber tails
/// the log from the start. It gets exactly the committed events, once, in position
/// order, each stream's versions in order without a hole.
///
/// # Panics
/// If an event is skipped, doubled, out of order, or a rolled-back one shows.
pub async fn no_event_is_skipped_under_random_commit_order<S, A>(
    store: S,
    appender: A,
    writers: usize,
) where
    S: EventSubscriber,
    A: SlowAppender,
{
    let mut subscription = store.subscribe(Position::START, 7);
    let pending: Vec<_> = (0..writers)
        .map(|writer| {
            let appender = appender.clone();
            tokio::spawn(async move {
                let mut rng = Lcg(writer as u64 + 1);
                let mut committed = Vec::new();
                for t in 0..40 * crate::linearizability::scale() {
                    let stream = if rng.below(3) == 0 {
                        format!("shared-{}", rng.below(3))
                    } else {
                        format!("writer-{writer}")
                    };
                    let events: Vec<NewEvent> = (0..1 + rng.below(3))
                        .map(|_| raw("Written", json!({ "writer": writer, "t": t })))
                        .collect();
                    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
                    let delay = Duration::from_millis(rng.below(25));
                    let commit = rng.below(8) != 0;
                    appender.append_slowly(&stream, events, delay, commit).await;
                    if commit {
                        committed.extend(ids);
                    }
                }
                committed
            })
        })
        .collect();
    let (committed, delivered) = tail_while_writing(&mut subscription, pending).await;
    assert!(
        committed.len() > 20 * writers,
        "a meaningful number of events: {}",
        committed.len()
    );
    let ids: Vec<Uuid> = delivered.iter().map(|e| e.event_id).collect();
    let unique: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no event delivered twice");
    assert_eq!(
        unique, committed,
        "exactly the committed events: none skipped, none rolled back"
    );
    eprintln!(
        "no-skip: {} committed events delivered once each, in order",
        committed.len()
    );
    assert!(
        delivered.windows(2).all(|w| w[0].position < w[1].position),
        "in position order"
    );
    let mut versions: HashMap<String, u64> = HashMap::new();
    for event in &delivered {
        let last = versions.entry(event.stream_id.to_string()).or_insert(0);
        assert_eq!(
            event.version.0,
            *last + 1,
            "stream {} out of order",
            event.stream_id
        );
        *last = event.version.0;
    }
}
