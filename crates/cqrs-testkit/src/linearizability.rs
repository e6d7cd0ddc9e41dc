//! Concurrent appends and reads on a real event store, recorded as a history and
//! checked for linearizability by Porcupine (see [`crate::history`]).
//!
//! Clients append with expected versions (right, stale, any, "no stream"), with new
//! and reused command ids, read streams, read the log from where they last were,
//! and hold transactions open before committing or rolling back, all at once on a
//! few shared streams. Every call is recorded with its invocation and completion
//! times. An append whose outcome the client could not know (an error other than a
//! conflict), or whose result the store's API does not return (a slow append), is
//! resolved from the final log: if its events are there it took effect at some
//! time after its call, else it never did.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{
    AppendRequest, Error, EventAppender, ExpectedVersion, LogReader, Position, RecordedEvent,
    StreamId, StreamReader, Version,
};
use serde_json::json;
use uuid::Uuid;

use crate::Lcg;
use crate::event_stores::{SlowAppender, raw};
use crate::history::{Entry, Input, Operation, Output, Recorder};

/// How big a history to record.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// Concurrent clients (tasks).
    pub clients: usize,
    /// Operations per client.
    pub operations: usize,
    /// Streams shared by every client.
    pub streams: usize,
    /// Whether clients also hold transactions open (through the [`SlowAppender`],
    /// which fails the test if its connection dies: leave them out when faults
    /// kill connections).
    pub slow_appends: bool,
    /// Whether clients give up on one append in three after a random 0–3 ms (the
    /// call is dropped; the store may still commit it).
    pub give_up: bool,
    /// How long each client waits between two operations.
    pub pause: Duration,
}

/// How many times longer the reliability tests run: `CQRS_RELIABILITY_SCALE` (1
/// unless set; `scripts/soak.sh` sets it).
pub fn scale() -> usize {
    std::env::var("CQRS_RELIABILITY_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

impl Default for Size {
    /// The test command's size: 6 clients × 40 operations on 3 streams, the
    /// operations times [`scale`].
    fn default() -> Self {
        Self {
            clients: 6,
            operations: 40 * scale(),
            streams: 3,
            slow_appends: true,
            give_up: false,
            pause: Duration::ZERO,
        }
    }
}

/// What a history needs of a store: appends, stream reads and log reads.
pub trait Store: EventAppender + StreamReader + LogReader + Send + Sync {}

impl<T: EventAppender + StreamReader + LogReader + Send + Sync> Store for T {}

/// An operation whose output is known only from the final log.
struct Unresolved {
    operation: Operation,
    ids: Vec<String>,
    /// Whether it must be there (a committed slow append) or must not (a rolled-back
    /// one); `None` when the client could not know (an append that failed).
    committed: Option<bool>,
}

/// Records a history of `size` on `store` (a namespace of the test's own; `prefix`
/// names its streams) with slow appends through `appender`, and returns it, every
/// operation resolved. Check it with
/// [`assert_linearizable`](crate::history::assert_linearizable).
///
/// # Panics
/// If a committed slow append is missing from the final log, a rolled-back one is
/// there, or the store fails outside the recorded operations.
pub async fn record_history<S, A>(store: S, appender: A, size: Size, prefix: &str) -> Recorded
where
    S: Store + Clone + 'static,
    A: SlowAppender,
{
    let recorder = Arc::new(Recorder::new());
    let streams: Arc<Vec<String>> =
        Arc::new((0..size.streams).map(|i| format!("{prefix}-{i}")).collect());
    let clients: Vec<_> = (0..size.clients)
        .map(|client| {
            let (store, appender, recorder, streams) = (
                store.clone(),
                appender.clone(),
                recorder.clone(),
                streams.clone(),
            );
            tokio::spawn(async move {
                client_run(client, size, &store, &appender, &recorder, &streams).await
            })
        })
        .collect();
    let mut unresolved = Vec::new();
    for client in clients {
        unresolved.extend(client.await.expect("client"));
    }
    let end = recorder.now() + 1;
    let longest = recorder
        .operations()
        .iter()
        .chain(unresolved.iter().map(|u| &u.operation))
        .map(|o| o.returned - o.call)
        .max()
        .unwrap_or(0);
    let log = final_log(&store, &unresolved, &streams).await;
    let mut recorded = Recorded {
        operations: recorder.operations(),
        unknown: 0,
        unknown_applied: 0,
        longest: Duration::from_nanos(u64::try_from(longest).unwrap_or(0)),
    };
    for pending in unresolved {
        let unknown = pending.committed.is_none();
        recorded.unknown += usize::from(unknown);
        if let Some(operation) = resolve(pending, &log, end) {
            recorded.unknown_applied += usize::from(unknown);
            recorded.operations.push(operation);
        }
    }
    recorded
}

/// A recorded history.
#[derive(Debug)]
pub struct Recorded {
    /// Its operations, every outcome resolved.
    pub operations: Vec<Operation>,
    /// Appends whose client got an error other than a conflict, so could not know
    /// whether they took effect.
    pub unknown: usize,
    /// Those of them whose events are in the final log.
    pub unknown_applied: usize,
    /// The longest any call took to return (or fail).
    pub longest: Duration,
}

/// The history of a log read made while an append that took an earlier position is
/// still open: client 0 appends to `{prefix}-a` and holds its transaction open for
/// a second; meanwhile client 1 appends to `{prefix}-b` and client 2 reads the log
/// from the start. A store whose log reads never skip is linearizable here (the
/// read stops before the open append's position, or waits for it); one whose read
/// goes past it is not, whatever the order chosen.
///
/// # Panics
/// As [`record_history`].
pub async fn read_beside_an_open_append<S, A>(store: S, appender: A, prefix: &str) -> Vec<Operation>
where
    S: Store + Clone + 'static,
    A: SlowAppender,
{
    let recorder = Arc::new(Recorder::new());
    let slow_stream = format!("{prefix}-a");
    let events = vec![raw("Slow", json!({ "open": true }))];
    let ids = events.iter().map(|e| e.event_id.to_string()).collect();
    let slow = {
        let (appender, recorder, stream) =
            (appender.clone(), recorder.clone(), slow_stream.clone());
        tokio::spawn(async move {
            let call = recorder.now();
            appender
                .append_slowly(&stream, events, Duration::from_secs(1), true)
                .await;
            (call, recorder.now())
        })
    };
    // Let the slow append take its position first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut rng = Lcg(7);
    let fast_stream = format!("{prefix}-b");
    if let Appended::Unknown(_) = append(
        1,
        &store,
        &recorder,
        &fast_stream,
        None,
        None,
        None,
        &mut rng,
    )
    .await
    {
        panic!("the fast append failed");
    }
    let call = recorder.now();
    let read = store
        .read_all(Position::START, 100)
        .await
        .expect("read the log");
    recorder.record(log_read(2, call, recorder.now(), 0, 100, &read));
    let (call, returned) = slow.await.expect("slow append");
    let pending = Unresolved {
        operation: Operation {
            client: 0,
            call,
            returned,
            input: Input {
                op: "append",
                stream: slow_stream,
                ..Input::default()
            },
            output: Output::default(),
        },
        ids,
        committed: Some(true),
    };
    let end = recorder.now() + 1;
    let streams = [format!("{prefix}-a"), format!("{prefix}-b")];
    let log = final_log(&store, std::slice::from_ref(&pending), &streams).await;
    let mut operations = recorder.operations();
    operations.extend(resolve(pending, &log, end));
    operations
}

async fn client_run<S: Store, A: SlowAppender>(
    client: usize,
    size: Size,
    store: &S,
    appender: &A,
    recorder: &Recorder,
    streams: &[String],
) -> Vec<Unresolved> {
    let mut rng = Lcg(0x5eed + client as u64);
    let mut known: HashMap<String, u64> = HashMap::new();
    // Command ids handled, with their stream: a retried command goes to its stream.
    let mut commands: Vec<(Uuid, String)> = Vec::new();
    let mut tail = 0u64;
    let mut unresolved = Vec::new();
    let slow_appends = size.slow_appends;
    for _ in 0..size.operations {
        if !size.pause.is_zero() {
            tokio::time::sleep(size.pause).await;
        }
        let mut stream = streams[rng.below(streams.len() as u64) as usize].clone();
        match rng.below(20) {
            0..=8 => {
                let command = match rng.below(10) {
                    0..=1 => {
                        let id = Uuid::now_v7();
                        commands.push((id, stream.clone()));
                        Some(id)
                    }
                    2 if !commands.is_empty() => {
                        let (id, on) = commands[rng.below(commands.len() as u64) as usize].clone();
                        stream = on;
                        Some(id)
                    }
                    _ => None,
                };
                let expected = match rng.below(20) {
                    0..=11 => Some(known.get(&stream).copied().unwrap_or(0)),
                    12..=16 => None,
                    _ => Some(0),
                };
                let give_up = (size.give_up && rng.below(3) == 0)
                    .then(|| Duration::from_micros(rng.below(3_000)));
                let outcome = append(
                    client, store, recorder, &stream, expected, command, give_up, &mut rng,
                )
                .await;
                match outcome {
                    Appended::Known(version) => {
                        known.insert(stream, version);
                    }
                    Appended::Unknown(pending) => unresolved.push(*pending),
                }
            }
            9..=12 => {
                // From a few versions before the last one this client knows (the
                // whole stream while it is short): every event after that.
                let seen = known.get(&stream).copied().unwrap_or(0);
                let after = if seen < 50 {
                    0
                } else {
                    seen.saturating_sub(rng.below(4))
                };
                let call = recorder.now();
                if let Ok(events) = store
                    .read_stream(&StreamId::new(stream.clone()), Version(after), usize::MAX)
                    .await
                {
                    let returned = recorder.now();
                    known.insert(stream.clone(), after + events.len() as u64);
                    recorder.record(Operation {
                        client,
                        call,
                        returned,
                        input: Input {
                            op: "read_stream",
                            stream,
                            after,
                            ..Input::default()
                        },
                        output: Output {
                            events: events.iter().map(|e| e.event_id.to_string()).collect(),
                            ..Output::default()
                        },
                    });
                }
            }
            13..=16 => {
                let after = if rng.below(3) == 0 { 0 } else { tail };
                let limit = 20;
                let call = recorder.now();
                if let Ok(events) = store.read_all(Position(after), limit).await {
                    let returned = recorder.now();
                    if let Some(last) = events.last() {
                        tail = tail.max(last.position.0);
                    }
                    recorder.record(log_read(client, call, returned, after, limit, &events));
                }
            }
            _ if !slow_appends => {}
            _ => {
                let events: Vec<_> = (0..1 + rng.below(2))
                    .map(|n| raw("Slow", json!({ "client": client, "n": n })))
                    .collect();
                let ids = events.iter().map(|e| e.event_id.to_string()).collect();
                let delay = Duration::from_millis(rng.below(20));
                let commit = rng.below(8) != 0;
                let call = recorder.now();
                appender.append_slowly(&stream, events, delay, commit).await;
                let returned = recorder.now();
                unresolved.push(Unresolved {
                    operation: Operation {
                        client,
                        call,
                        returned,
                        input: Input {
                            op: "append",
                            stream,
                            ..Input::default()
                        },
                        output: Output::default(),
                    },
                    ids,
                    committed: Some(commit),
                });
            }
        }
    }
    unresolved
}

/// The operation of a log read from `after` that returned `events`.
fn log_read(
    client: usize,
    call: i64,
    returned: i64,
    after: u64,
    limit: usize,
    events: &[RecordedEvent],
) -> Operation {
    Operation {
        client,
        call,
        returned,
        input: Input {
            op: "read_all",
            after,
            limit,
            ..Input::default()
        },
        output: Output {
            log: events
                .iter()
                .map(|e| Entry {
                    position: e.position.0,
                    event: e.event_id.to_string(),
                })
                .collect(),
            ..Output::default()
        },
    }
}

enum Appended {
    /// The outcome is known; the stream's version the client now knows.
    Known(u64),
    Unknown(Box<Unresolved>),
}

#[allow(clippy::too_many_arguments)]
async fn append<S: Store>(
    client: usize,
    store: &S,
    recorder: &Recorder,
    stream: &str,
    expected: Option<u64>,
    command: Option<Uuid>,
    give_up: Option<Duration>,
    rng: &mut Lcg,
) -> Appended {
    let events: Vec<_> = (0..1 + rng.below(2))
        .map(|n| raw("Written", json!({ "client": client, "n": n })))
        .collect();
    let ids: Vec<String> = events.iter().map(|e| e.event_id.to_string()).collect();
    let mut request = AppendRequest::new(
        stream,
        match expected {
            Some(v) => ExpectedVersion::Exact(Version(v)),
            None => ExpectedVersion::Any,
        },
        events,
    );
    if let Some(command) = command {
        request = request.with_command_id(command);
    }
    let input = Input {
        op: "append",
        stream: stream.to_owned(),
        expected,
        events: ids.clone(),
        command: command.map(|c| c.to_string()).unwrap_or_default(),
        ..Input::default()
    };
    let call = recorder.now();
    let result = match give_up {
        Some(after) => tokio::time::timeout(after, store.append(request))
            .await
            .unwrap_or_else(|_| Err(Error::Closed("given up by the client".into()))),
        None => store.append(request).await,
    };
    let returned = recorder.now();
    let (output, version) = match result {
        Ok(result) => (
            Output {
                status: if result.already_handled {
                    "duplicate"
                } else {
                    "ok"
                },
                previous: result.previous_version.0,
                version: result.version.0,
                position: result.position.map_or(0, |p| p.0),
                ..Output::default()
            },
            result.version.0,
        ),
        Err(Error::Conflict { actual, .. }) => (
            Output {
                status: "conflict",
                version: actual.0,
                ..Output::default()
            },
            actual.0,
        ),
        Err(_) => {
            return Appended::Unknown(Box::new(Unresolved {
                operation: Operation {
                    client,
                    call,
                    returned,
                    input,
                    output: Output::default(),
                },
                ids,
                committed: None,
            }));
        }
    };
    recorder.record(Operation {
        client,
        call,
        returned,
        input,
        output,
    });
    Appended::Known(version)
}

/// Where each event of the final log is: its position, and its stream's version.
struct Placed {
    position: u64,
    version: u64,
}

/// The whole log once every committed event shows: each committed slow append, and
/// every event of the history's streams.
///
/// A log read stops at the first position a transaction still open anywhere on the
/// server could fill (PostgreSQL's safe position), while a stream read does not: the
/// log is final once it holds every event of every stream of the history.
async fn final_log<S: Store>(
    store: &S,
    unresolved: &[Unresolved],
    streams: &[String],
) -> HashMap<String, Placed> {
    let mut must: HashSet<String> = unresolved
        .iter()
        .filter(|u| u.committed == Some(true))
        .flat_map(|u| u.ids.iter().cloned())
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for stream in streams {
        let events = loop {
            match store
                .read_stream(&StreamId::new(stream.clone()), Version(0), usize::MAX)
                .await
            {
                Ok(events) => break events,
                Err(error) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "the final streams cannot be read: {error}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        must.extend(events.iter().map(|e| e.event_id.to_string()));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut log = Vec::new();
        let mut after = Position::START;
        loop {
            // A fault may still be on: read again until the store answers.
            let page = match store.read_all(after, 1_000).await {
                Ok(page) => page,
                Err(error) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "the final log cannot be read: {error}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(last) = page.last() else { break };
            after = last.position;
            log.extend(page);
        }
        let ids: HashSet<String> = log.iter().map(|e| e.event_id.to_string()).collect();
        if must.iter().all(|id| ids.contains(id)) {
            let mut versions: HashMap<String, u64> = HashMap::new();
            return log
                .into_iter()
                .map(|e| {
                    let version = versions.entry(e.stream_id.to_string()).or_insert(0);
                    *version += 1;
                    assert_eq!(
                        e.version.0, *version,
                        "versions dense per stream in the log"
                    );
                    (
                        e.event_id.to_string(),
                        Placed {
                            position: e.position.0,
                            version: e.version.0,
                        },
                    )
                })
                .collect();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a committed event is missing from the log after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn resolve(pending: Unresolved, log: &HashMap<String, Placed>, end: i64) -> Option<Operation> {
    let Unresolved {
        mut operation,
        ids,
        committed,
    } = pending;
    let placed: Vec<&Placed> = ids.iter().filter_map(|id| log.get(id)).collect();
    match committed {
        Some(false) => {
            assert!(
                placed.is_empty(),
                "a rolled-back append's events are in the log"
            );
            return None;
        }
        Some(true) => assert_eq!(placed.len(), ids.len(), "a committed append is whole"),
        None if placed.is_empty() => return None,
        None => {
            assert_eq!(placed.len(), ids.len(), "an append took effect in part");
            // It may have taken effect any time after its call.
            operation.returned = end;
        }
    }
    let (first, last) = (placed[0], placed[placed.len() - 1]);
    operation.input.events = ids;
    operation.output = Output {
        status: "ok",
        previous: first.version - 1,
        version: last.version,
        position: last.position,
        ..Output::default()
    };
    Some(operation)
}
