//! Histories recorded while a network fault comes and goes (see [`crate::toxiproxy`]
//! and [`crate::linearizability`]): what every event store's fault tests run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cqrs_core::{AppendRequest, ExpectedVersion};
use serde_json::json;

use crate::event_stores::{SlowAppender, raw};
use crate::history::{Mode, assert_linearizable};
use crate::linearizability::{Size, Store, record_history};
use crate::toxiproxy::{Fault, Proxy};

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
) where
    S: Store + Clone + 'static,
    A: SlowAppender,
{
    let stop = Arc::new(AtomicBool::new(false));
    let toggler = {
        let (proxy, stop) = (proxy.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            let mut rounds = 0;
            while !stop.load(Ordering::Relaxed) {
                proxy.add(fault);
                std::thread::sleep(on);
                proxy.lift();
                std::thread::sleep(Duration::from_millis(200));
                rounds += 1;
            }
            rounds
        })
    };
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
}
