//! RedisReadModelStore against a real Redis.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cqrs_core::{
    DocumentChange, Error, MemoryEventStore, Position, ProjectionRunner, ReadModelReader,
    ReadModelWriter,
};
use cqrs_redis::RedisLease;
use cqrs_redis::redis;
use cqrs_testkit::scenarios::{self, WAIT, tally_documents};
use cqrs_testkit::tally::{TallyProjection, append_tally, reference_tally, tally_log};
use serde_json::json;

#[tokio::test]
async fn replaying_batches_changes_nothing() {
    let store = common::store().await;
    scenarios::replay_changes_nothing(store.clone(), "tally").await;
    common::drop_keys(&mut store.connection(), store.prefix()).await;
}

#[tokio::test]
async fn a_batch_that_cannot_be_applied_writes_nothing() {
    let store = common::store().await;
    let put = |id: &str, p: u64| DocumentChange::Put {
        id: id.into(),
        value: json!({ "id": id }),
        position: Position(p),
    };
    store
        .commit("m", vec![put("a", 1), put("b", 1)], Position(1))
        .await
        .unwrap();
    // Another client breaks the checkpoint key: the next batch is refused whole,
    // although its documents come first in the script.
    let mut conn = store.connection();
    let checkpoint_key = format!("{}:{{m}}:checkpoint", store.prefix());
    let _: i64 = redis::cmd("DEL")
        .arg(&checkpoint_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: i64 = redis::cmd("LPUSH")
        .arg(&checkpoint_key)
        .arg("x")
        .query_async(&mut conn)
        .await
        .unwrap();
    let error = store
        .commit("m", vec![put("a", 2), put("c", 2)], Position(2))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Backend { .. }), "{error}");
    assert!(error.to_string().contains("commit batch"), "{error}");
    assert_eq!(
        store.get("m", "a").await.unwrap().unwrap().position,
        Position(1)
    );
    assert_eq!(store.get("m", "c").await.unwrap(), None);
    let _: i64 = redis::cmd("DEL")
        .arg(&checkpoint_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    // Repaired, the same batch goes through, whole.
    store
        .commit("m", vec![put("a", 2), put("c", 2)], Position(2))
        .await
        .unwrap();
    assert_eq!(
        store.get("m", "c").await.unwrap().unwrap().position,
        Position(2)
    );
    assert_eq!(store.checkpoint("m").await.unwrap(), Position(2));
    // Older changes and deletes: guarded, tombstoned.
    let delete = DocumentChange::Delete {
        id: "b".into(),
        position: Position(3),
    };
    store
        .commit("m", vec![put("a", 1), delete, put("b", 2)], Position(3))
        .await
        .unwrap();
    assert_eq!(
        store.get("m", "a").await.unwrap().unwrap().position,
        Position(2)
    );
    assert_eq!(store.get("m", "b").await.unwrap(), None);
    let many = store.get_many("m", &["b".into()]).await.unwrap();
    assert!(many["b"].value.is_null());
    assert_eq!(many["b"].position, Position(3));
    common::drop_keys(&mut conn, store.prefix()).await;
}

/// Reads the checkpoint and every document position of `projection` at one instant
/// (a MULTI/EXEC transaction).
async fn snapshot(
    conn: &mut redis::aio::ConnectionManager,
    prefix: &str,
    projection: &str,
) -> (u64, u64) {
    let (checkpoint, positions): (Option<String>, Vec<String>) = redis::pipe()
        .atomic()
        .get(format!("{prefix}:{{{projection}}}:checkpoint"))
        .hvals(format!("{prefix}:{{{projection}}}:pos"))
        .query_async(conn)
        .await
        .unwrap();
    let checkpoint = checkpoint.map_or(0, |c| c.parse().unwrap());
    let newest = positions
        .iter()
        .map(|p| p.parse::<u64>().unwrap())
        .max()
        .unwrap_or(0);
    (checkpoint, newest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_and_checkpoint_move_together_even_when_runners_are_killed() {
    let store = common::store().await;
    let events = MemoryEventStore::new();
    let head = append_tally(&events, &tally_log(5_000, 13)).await;

    // An observer checks, all along, that no document is ever ahead of the
    // checkpoint: a batch is never seen half-applied.
    let stop = Arc::new(AtomicBool::new(false));
    let observer = {
        let (mut conn, prefix, stop) =
            (store.connection(), store.prefix().to_owned(), stop.clone());
        tokio::spawn(async move {
            let mut looks = 0_u64;
            while !stop.load(Ordering::SeqCst) {
                let (checkpoint, newest) = snapshot(&mut conn, &prefix, "tally").await;
                assert!(
                    newest <= checkpoint,
                    "a document at {newest} is ahead of the checkpoint {checkpoint}"
                );
                looks += 1;
            }
            looks
        })
    };

    // Runners killed (aborted at an arbitrary await, mid-commit included) again and
    // again, each resuming from the checkpoint the last one left.
    let mut kills = 0;
    for round in 0..12_u64 {
        let handle = ProjectionRunner::new(TallyProjection, events.clone(), store.clone())
            .with_batch_size(20)
            .spawn();
        tokio::time::sleep(Duration::from_millis(20 + (round * 37) % 90)).await;
        if handle.position() >= head {
            handle.stop().await.unwrap();
            break;
        }
        handle.abort();
        kills += 1;
    }
    assert!(kills >= 3, "only {kills} kills");
    let handle = ProjectionRunner::new(TallyProjection, events.clone(), store.clone()).spawn();
    handle.wait_for_timeout(head, WAIT).await.unwrap();
    handle.stop().await.unwrap();
    stop.store(true, Ordering::SeqCst);
    let looks = observer.await.unwrap();
    assert!(looks > 10, "the observer looked {looks} times");
    assert_eq!(
        tally_documents(&store, "tally").await,
        reference_tally(&events).await,
        "after {kills} kills the read model differs from a fresh rebuild"
    );
    assert_eq!(
        store.documents("tally").await.unwrap(),
        reference_tally(&events).await
    );
    common::drop_keys(&mut store.connection(), store.prefix()).await;
}

#[tokio::test]
async fn one_runner_at_a_time_with_a_lease_key() {
    let store = common::store().await;
    let lease = RedisLease::new(store.connection()).with_prefix(store.prefix());
    scenarios::one_runner_at_a_time(store.clone(), lease, "tally").await;
    common::drop_keys(&mut store.connection(), store.prefix()).await;
}

#[tokio::test]
async fn a_lease_is_exclusive_until_released_or_expired() {
    let store = common::store().await;
    let lease = RedisLease::new(store.connection()).with_prefix(store.prefix());
    scenarios::lease_is_exclusive_until_released_or_expired(lease).await;
    common::drop_keys(&mut store.connection(), store.prefix()).await;
}

#[tokio::test]
async fn a_silent_holder_loses_the_lease() {
    let store = common::store().await;
    let lease = || RedisLease::new(store.connection()).with_prefix(store.prefix());
    let bound = cqrs_testkit::leases::TTL;
    cqrs_testkit::leases::a_silent_holder_loses_the_lease(lease(), lease(), bound, "silent").await;
    common::drop_keys(&mut store.connection(), store.prefix()).await;
}

#[tokio::test]
async fn runners_follow_a_cut_over_from_another_process() {
    let store = common::store().await;
    let lease = RedisLease::new(store.connection()).with_prefix(store.prefix());
    scenarios::runners_follow_a_cut_over_from_elsewhere(store.clone(), lease).await;
    common::drop_keys(&mut store.connection(), store.prefix()).await;
}

#[tokio::test]
async fn a_rebuild_is_cut_over_without_downtime() {
    let store = common::store().await;
    scenarios::cut_over_without_downtime(store.clone()).await;
    common::drop_keys(&mut store.connection(), store.prefix()).await;
}

#[tokio::test]
async fn large_batches_and_repeated_ids_are_applied_whole() {
    let store = common::store().await;
    // 2,500 documents in one batch (more than a Lua `unpack` takes at once), and one
    // document changed three times, out of order: the newest change wins.
    let mut changes: Vec<DocumentChange> = (0..2_500)
        .map(|i| DocumentChange::Put {
            id: format!("d{i}"),
            value: json!({ "i": i }),
            position: Position(10),
        })
        .collect();
    for (n, p) in [(1, 11), (3, 13), (2, 12)] {
        changes.push(DocumentChange::Put {
            id: "twice".into(),
            value: json!({ "n": n }),
            position: Position(p),
        });
    }
    store.commit("big", changes, Position(13)).await.unwrap();
    let all = store.documents("big").await.unwrap();
    assert_eq!(all.len(), 2_501);
    let twice = store.get("big", "twice").await.unwrap().unwrap();
    assert_eq!(
        (twice.value, twice.position),
        (json!({ "n": 3 }), Position(13))
    );
    assert_eq!(
        store.get("big", "d2499").await.unwrap().unwrap().value,
        json!({ "i": 2499 })
    );
    // Deleting them all in one batch leaves 2,500 tombstones.
    let deletes = (0..2_500)
        .map(|i| DocumentChange::Delete {
            id: format!("d{i}"),
            position: Position(20),
        })
        .collect();
    store.commit("big", deletes, Position(20)).await.unwrap();
    assert_eq!(store.documents("big").await.unwrap().len(), 1);
    let ids: Vec<String> = (0..2_500).map(|i| format!("d{i}")).collect();
    let tombstones = store.get_many("big", &ids).await.unwrap();
    assert!(
        tombstones
            .values()
            .all(|d| d.value.is_null() && d.position == Position(20))
    );
    assert_eq!(tombstones.len(), 2_500);
    common::drop_keys(&mut store.connection(), store.prefix()).await;
}

#[tokio::test]
async fn an_unreadable_stored_position_is_a_codec_error_not_a_zero() {
    // A silent 0 would let the runner apply again events the document includes.
    let store = common::store().await;
    let put = DocumentChange::Put {
        id: "a".into(),
        value: json!({ "n": 1 }),
        position: Position(7),
    };
    store.commit("m", vec![put], Position(7)).await.unwrap();
    let positions = format!("{}:{{m}}:pos", store.prefix());
    let _: i64 = redis::cmd("HSET")
        .arg(&positions)
        .arg("a")
        .arg("-3")
        .query_async(&mut store.connection())
        .await
        .unwrap();
    for error in [
        store.get("m", "a").await.unwrap_err(),
        store.get_many("m", &["a".to_owned()]).await.unwrap_err(),
    ] {
        assert!(matches!(error, Error::Codec { .. }), "{error}");
        let message = error.to_string();
        assert!(
            message.contains("projection `m`") && message.contains("document `a`"),
            "{message}"
        );
    }
    common::drop_keys(&mut store.connection(), store.prefix()).await;
}

#[tokio::test]
async fn delete_all_removes_every_key_of_its_prefix_and_nothing_else() {
    let store = common::store().await;
    let other = common::store().await;
    // Two read models (SCAN walks the whole keyspace of the server, other tests'
    // keys included, so it pages through more than these).
    for (name, count) in [("a", 20_u64), ("b", 10)] {
        let changes = (0..count)
            .map(|i| DocumentChange::Put {
                id: format!("{name}-{i}"),
                value: json!({ "i": i }),
                position: Position(i + 1),
            })
            .collect();
        store.commit(name, changes, Position(count)).await.unwrap();
    }
    let kept = DocumentChange::Put {
        id: "x".into(),
        value: json!(1),
        position: Position(1),
    };
    other.commit("a", vec![kept], Position(1)).await.unwrap();

    // Per read model a documents hash, a positions hash and a checkpoint.
    assert_eq!(store.delete_all().await.unwrap(), 6);
    assert!(store.get("a", "a-7").await.unwrap().is_none());
    assert_eq!(store.checkpoint("b").await.unwrap(), Position::START);
    assert!(
        other.get("a", "x").await.unwrap().is_some(),
        "another prefix is untouched"
    );
    common::drop_keys(&mut other.connection(), other.prefix()).await;
}
