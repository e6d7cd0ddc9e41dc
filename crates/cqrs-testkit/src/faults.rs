//! Histories recorded while a network fault comes and goes (see [`crate::toxiproxy`]
//! and [`crate::linearizability`]): what every event store's fault tests run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cqrs_core::{
    AppendRequest, ExpectedVersion, MemoryEventStore, Position, ProjectionRunner, ReadModelStore,
};
use serde_json::json;

use crate::event_stores::{SlowAppender, raw};
use crate::history::{Mode, assert_linearizable};
use crate::linearizability::{Size, Store, record_history};
use crate::scenarios::tally_documents;
use crate::tally::{TallyProjection, append_tally, reference_tally, tally_log};
use crate::toxiproxy::{Fault, Proxy};

/// Turns `fault` off for 200 ms, then on for `on`, until `stop`; returns how many
/// times.
fn toggle(
    proxy: Arc<Proxy>,
    fault: Fault,
    on: Duration,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u32> {
    tokio::task::spawn_blocking(move || {
        // Off first, so that the fault comes while connections are in use.
        let mut rounds = 0;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            proxy.add(fault);
            std::thread::sleep(on);
            proxy.lift();
            rounds += 1;
        }
        rounds
    })
}

/// What a run under a fault saw, for the test to check what that fault must do.
#[derive(Debug, Clone, Copy)]
pub struct FaultReport {
    /// How many times the fault came and went while the clients or the runner ran.
    pub rounds: u32,
    /// The longest any client call took (0 for a runner).
    pub longest: Duration,
    /// Appends whose client got an error other than a conflict (0 for a runner).
    pub cut_off: usize,
    /// Those of them that took effect all the same.
    pub cut_off_applied: usize,
    /// How many times the runner retried after an error (0 for clients).
    pub retries: u64,
}

/// A projection runner keeps a tally read model in `store` (connected through
/// `proxy`) while events keep coming and `fault` comes and goes (on for `on`, off
/// for 200 ms). Once the fault is lifted for good the runner catches up, and the
/// read model equals a rebuild: no batch lost, none applied twice (the tally counts,
/// so either would show). `name` names the read model.
///
/// # Panics
/// If the runner does not catch up within a minute of the fault's end, or the read
/// model differs from the rebuild.
pub async fn runner_under_fault<S>(
    proxy: Arc<Proxy>,
    store: S,
    fault: Fault,
    on: Duration,
    name: &str,
) -> FaultReport
where
    S: ReadModelStore + Clone + 'static,
{
    let events = MemoryEventStore::new();
    let handle = ProjectionRunner::new(TallyProjection, events.clone(), store.clone())
        .with_name(name)
        .with_batch_size(25)
        .with_max_backoff(Duration::from_millis(500))
        .spawn();
    let stop = Arc::new(AtomicBool::new(false));
    let toggler = toggle(proxy.clone(), fault, on, stop.clone());
    let log = tally_log(400 * crate::linearizability::scale(), 11);
    let mut last = Position::START;
    for chunk in log.chunks(10) {
        last = append_tally(&events, chunk).await;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = toggler.await.expect("toggler");
    proxy.lift();
    handle
        .wait_for_timeout(last, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{name}: the runner did not catch up after the fault: {e}"));
    let stats = handle.stats();
    assert!(rounds > 0, "{name}: the fault did not come and go");
    assert_eq!(
        tally_documents(&store, name).await,
        reference_tally(&events).await,
        "{name}: the read model differs from a rebuild"
    );
    handle.stop().await.expect("stop");
    eprintln!(
        "{name}: {} events through {rounds} fault rounds, {} retries, equal to a rebuild",
        log.len(),
        stats.retries
    );
    FaultReport {
        rounds,
        longest: Duration::ZERO,
        cut_off: 0,
        cut_off_applied: 0,
        retries: stats.retries,
    }
}

/// Clients append and read through `store` (connected through `proxy`, with
/// `deadline` on every call) while `fault` is on for `on`, off for 200 ms, again and
/// again. Then: no call took longer than the deadline (and half a second), the
/// history is linearizable, and once the fault is lifted an append goes through.
///
/// # Panics
/// If any of that does not hold; `name` names the history's files.
pub async fn history_under_fault<S, A>(
    proxy: Arc<Proxy>,
    store: S,
    appender: A,
    fault: Fault,
    on: Duration,
    deadline: Duration,
    name: &str,
) -> FaultReport
where
    S: Store + Clone + 'static,
    A: SlowAppender,
{
    let stop = Arc::new(AtomicBool::new(false));
    let toggler = toggle(proxy.clone(), fault, on, stop.clone());
    let size = Size {
        clients: 4,
        operations: 60 * crate::linearizability::scale(),
        slow_appends: false,
        pause: Duration::from_millis(25),
        ..Size::default()
    };
    let recorded = record_history(store.clone(), appender, size, "fault").await;
    stop.store(true, Ordering::Relaxed);
    let rounds = toggler.await.expect("toggler");
    proxy.lift();
    assert!(
        rounds > 0,
        "{name}: the fault did not come and go while clients ran"
    );
    assert!(
        recorded.longest < deadline + Duration::from_millis(500),
        "{name}: a call took {:?}, past the deadline of {deadline:?}",
        recorded.longest
    );
    assert_linearizable(name, &recorded.operations, Mode::Whole);
    let recovered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let request =
                AppendRequest::new("after", ExpectedVersion::Any, vec![raw("A", json!({}))]);
            if store.append(request).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        recovered.is_ok(),
        "{name}: no append went through after the fault was lifted"
    );
    eprintln!(
        "{name}: {rounds} fault rounds, {} operations, {} appends cut off ({} took effect), longest call {:?}",
        recorded.operations.len(),
        recorded.unknown,
        recorded.unknown_applied,
        recorded.longest
    );
    FaultReport {
        rounds,
        longest: recorded.longest,
        cut_off: recorded.unknown,
        cut_off_applied: recorded.unknown_applied,
        retries: 0,
    }
}

/// Every call of a read-model store (connected through `proxy`, with `deadline` on
/// every call) meets a black hole: each must fail within the deadline (and half a
/// second) with an error for which [`is_timed_out`](cqrs_core::Error::is_timed_out)
/// is true, rather than wait for an answer that never comes. Once the hole is
/// lifted, the same calls succeed and the batch committed then is there.
///
/// # Panics
/// If a call outlives the deadline, succeeds inside the hole, fails with another
/// error, or the store does not recover within 10 s of the hole's end.
pub async fn read_model_calls_in_a_black_hole<S>(proxy: &Proxy, store: &S, deadline: Duration)
where
    S: ReadModelStore,
{
    use cqrs_core::{DocumentChange, ReadModelReader};

    let projection = "calls_in_a_black_hole";
    let ids = vec!["a".to_owned(), "b".to_owned()];
    let change = |position: u64| {
        vec![DocumentChange::Put {
            id: "a".to_owned(),
            value: json!({ "n": position }),
            position: Position(position),
        }]
    };
    // A first commit before the hole, so that connections are open and in use.
    store
        .commit(projection, change(1), Position(1))
        .await
        .expect("a commit before the hole");
    proxy.add(Fault::BlackHole);
    let mut outcomes = Vec::new();
    for call in ["checkpoint", "get", "get_many", "commit"] {
        let started = std::time::Instant::now();
        let outcome = match call {
            "checkpoint" => store.checkpoint(projection).await.map(drop),
            "get" => ReadModelReader::get(store, projection, "a").await.map(drop),
            "get_many" => ReadModelReader::get_many(store, projection, &ids)
                .await
                .map(drop),
            _ => store.commit(projection, change(2), Position(2)).await,
        };
        outcomes.push((call, started.elapsed(), outcome));
    }
    proxy.lift();
    for (call, took, outcome) in &outcomes {
        assert!(
            *took < deadline + Duration::from_millis(500),
            "{call} in a black hole took {took:?}, past the deadline of {deadline:?}"
        );
        match outcome {
            Err(error) => assert!(
                error.is_timed_out(),
                "{call} in a black hole failed, but not as timed out: {error}"
            ),
            Ok(()) => panic!("{call} succeeded in a black hole (through another route?)"),
        }
    }
    // The cut-off commit may or may not have taken effect: a third one settles it.
    let recovered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if store
                .commit(projection, change(3), Position(3))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        recovered.is_ok(),
        "no commit went through after the hole was lifted"
    );
    assert_eq!(
        store.checkpoint(projection).await.expect("checkpoint"),
        Position(3)
    );
    let document = ReadModelReader::get(store, projection, "a")
        .await
        .expect("get")
        .expect("the document");
    assert_eq!(document.value, json!({ "n": 3 }));
    eprintln!(
        "black hole: {}",
        outcomes
            .iter()
            .map(|(call, took, _)| format!("{call} cut off after {took:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// The fault tests every read-model store runs, on `store` (connected through
/// `proxy`, with `deadline` on every call): a projection runner into it through
/// connections reset mid-request, then through a black hole longer than the
/// deadline (each time it must meet the fault, retry, catch up and equal a rebuild:
/// [`runner_under_fault`]), then every call of the store into a black hole
/// ([`read_model_calls_in_a_black_hole`]).
///
/// # Panics
/// If any of them fails.
pub async fn read_model_store_through_faults<S>(proxy: Arc<Proxy>, store: S, deadline: Duration)
where
    S: ReadModelStore + Clone + 'static,
{
    let on = Duration::from_millis(400);
    let fault = Fault::Reset { after_ms: 30 };
    let report = runner_under_fault(proxy.clone(), store.clone(), fault, on, "runner_reset").await;
    assert!(
        report.retries > 0,
        "the runner never met the resets: {report:?}"
    );
    // Longer than the deadline: the runner's call is cut off and retried. Without a
    // deadline it would just wait (for ever, if the hole stayed).
    let on = deadline * 3 / 2;
    let report = runner_under_fault(
        proxy.clone(),
        store.clone(),
        Fault::BlackHole,
        on,
        "runner_hole",
    )
    .await;
    assert!(
        report.retries > 0,
        "the runner never met the black hole: {report:?}"
    );
    read_model_calls_in_a_black_hole(&proxy, &store, deadline).await;
}
