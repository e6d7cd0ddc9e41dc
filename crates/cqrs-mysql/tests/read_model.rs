//! Read models and leases on MariaDB: the scenarios every read-model store runs,
//! and a lease that ends with its holder's session.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::time::Duration;

use common::TestDb;
use cqrs_core::{DocumentChange, Lease, Position, ReadModelReader, ReadModelWriter};
use cqrs_mysql::MySqlLease;
use cqrs_testkit::{scenarios, unique_name};

#[tokio::test]
async fn a_replay_changes_nothing() {
    let db = TestDb::new(8).await;
    scenarios::replay_changes_nothing(db.read_models(), "tally").await;
    db.drop().await;
}

#[tokio::test]
async fn one_runner_at_a_time_with_a_named_lock() {
    let db = TestDb::new(8).await;
    let lease = MySqlLease::new(db.pool.clone());
    scenarios::one_runner_at_a_time(db.read_models(), lease, &unique_name("tally")).await;
    db.drop().await;
}

#[tokio::test]
async fn a_rebuild_is_cut_over_without_downtime() {
    let db = TestDb::new(8).await;
    scenarios::cut_over_without_downtime(db.read_models()).await;
    db.drop().await;
}

#[tokio::test]
async fn runners_follow_a_cut_over_from_another_process() {
    let db = TestDb::new(8).await;
    let lease = MySqlLease::new(db.pool.clone());
    scenarios::runners_follow_a_cut_over_from_elsewhere(db.read_models(), lease).await;
    db.drop().await;
}

#[tokio::test]
async fn a_lease_is_exclusive_until_released_or_expired() {
    let db = TestDb::new(4).await;
    scenarios::lease_is_exclusive_until_released_or_expired(MySqlLease::new(db.pool.clone())).await;
    db.drop().await;
}

#[tokio::test]
async fn a_lease_is_exclusive_until_its_holders_session_ends() {
    let db = TestDb::new(4).await;
    let (first, second) = (
        MySqlLease::new(db.pool.clone()),
        MySqlLease::new(db.pool.clone()),
    );
    let name = unique_name("lease");
    let ttl = Duration::from_millis(300);
    assert!(first.acquire(&name, "a", ttl).await.unwrap());
    assert!(!second.acquire(&name, "b", ttl).await.unwrap());
    // Renewed within its time to live, it stays held for another process (another
    // MySqlLease).
    for _ in 0..3 {
        tokio::time::sleep(ttl / 3).await;
        assert!(first.acquire(&name, "a", ttl).await.unwrap(), "renewal");
    }
    assert!(
        !second.acquire(&name, "b", ttl).await.unwrap(),
        "still held"
    );
    // The holder's process dies: its session ends, and the lock with it.
    drop(first);
    let mut taken = false;
    for _ in 0..100 {
        if second.acquire(&name, "b", ttl).await.unwrap() {
            taken = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(taken, "a dropped holder's lock is freed");
    db.drop().await;
}

/// The server closes a lease's session that goes silent for its time to live
/// (`wait_timeout`, whole seconds), so a frozen or cut-off holder does not keep the
/// lock for as long as its connection stays open.
#[tokio::test]
async fn a_silent_holder_loses_the_lease() {
    let db = TestDb::new(4).await;
    let lease = || MySqlLease::new(db.pool.clone());
    let name = unique_name("silent");
    // `wait_timeout`: three times the time to live, rounded up to a second.
    let bound = Duration::from_secs(2);
    cqrs_testkit::leases::a_silent_holder_loses_the_lease(lease(), lease(), bound, &name).await;
    db.drop().await;
}

#[tokio::test]
async fn documents_never_go_back_and_commit_with_their_checkpoint() {
    let db = TestDb::new(4).await;
    let store = db.read_models();
    let put = |id: &str, n: u64| DocumentChange::Put {
        id: id.into(),
        value: serde_json::json!({ "n": n }),
        position: Position(n),
    };
    store
        .commit("p", vec![put("a", 5), put("b", 5)], Position(5))
        .await
        .unwrap();
    // A replay of older changes (a crash before the checkpoint moved) leaves them.
    store
        .commit("p", vec![put("a", 3)], Position(3))
        .await
        .unwrap();
    assert_eq!(store.get("p", "a").await.unwrap().unwrap().value["n"], 5);
    assert_eq!(
        store.checkpoint("p").await.unwrap(),
        Position(5),
        "never back"
    );
    store
        .commit(
            "p",
            vec![
                DocumentChange::Delete {
                    id: "b".into(),
                    position: Position(6),
                },
                put("a", 7),
            ],
            Position(7),
        )
        .await
        .unwrap();
    assert!(store.get("p", "b").await.unwrap().is_none(), "deleted");
    let many = store
        .get_many("p", &["a".into(), "b".into(), "c".into()])
        .await
        .unwrap();
    assert_eq!(many.len(), 1);
    assert_eq!(many["a"].position, Position(7));
    store.set_alias("p", "p_v2").await.unwrap();
    assert_eq!(store.alias("p").await.unwrap().as_deref(), Some("p_v2"));
    store.reset("p").await.unwrap();
    assert_eq!(store.checkpoint("p").await.unwrap(), Position::START);
    assert!(store.get("p", "a").await.unwrap().is_none());
    db.drop().await;
}
