//! MongoReadModelStore against a real MongoDB-protocol server (FerretDB in CI).
#![allow(clippy::unwrap_used)]

mod common;

use cqrs_core::{
    DocumentChange, LogReader, MemoryEventStore, Position, ProjectionRunner, ReadModelReader,
    ReadModelWriter,
};
use cqrs_mongo::{MongoLease, Query};
use cqrs_testkit::scenarios::{self, WAIT, tally_documents};
use cqrs_testkit::tally::{TallyProjection, append_tally, reference_tally, tally_log};
use futures::TryStreamExt;
use mongodb::bson::doc;
use serde_json::json;

#[tokio::test]
async fn replaying_batches_changes_nothing() {
    let store = common::store().await;
    scenarios::replay_changes_nothing(store.clone(), "tally").await;
    common::drop_store(store).await;
}

#[tokio::test]
async fn a_document_never_goes_back_and_deletes_leave_tombstones() {
    let store = common::store().await;
    let put = |value: i64, p: u64| DocumentChange::Put {
        id: "a".into(),
        value: json!({ "n": value }),
        position: Position(p),
    };
    store
        .commit("m", vec![put(1, 10)], Position(10))
        .await
        .unwrap();
    // An older change and a same-position change are both ignored.
    store
        .commit("m", vec![put(0, 5), put(9, 10)], Position(10))
        .await
        .unwrap();
    let doc = store.get("m", "a").await.unwrap().unwrap();
    assert_eq!((doc.value, doc.position), (json!({ "n": 1 }), Position(10)));
    // A newer one is applied; the checkpoint never goes back.
    store
        .commit("m", vec![put(2, 20)], Position(20))
        .await
        .unwrap();
    store.commit("m", vec![], Position(15)).await.unwrap();
    assert_eq!(store.checkpoint("m").await.unwrap(), Position(20));
    // A delete leaves a tombstone that get hides, get_many shows, and that an older
    // replayed put does not bring back.
    let delete = DocumentChange::Delete {
        id: "a".into(),
        position: Position(30),
    };
    store.commit("m", vec![delete], Position(30)).await.unwrap();
    store
        .commit("m", vec![put(3, 25)], Position(30))
        .await
        .unwrap();
    assert_eq!(store.get("m", "a").await.unwrap(), None);
    let many = store
        .get_many("m", &["a".into(), "b".into()])
        .await
        .unwrap();
    assert_eq!(many.len(), 1);
    assert!(many["a"].value.is_null());
    assert_eq!(many["a"].position, Position(30));
    // A position MongoDB cannot hold is refused with a typed error, nothing written.
    let huge = DocumentChange::Put {
        id: "b".into(),
        value: json!(1),
        position: Position(u64::MAX),
    };
    let error = store
        .commit("m", vec![huge], Position(u64::MAX))
        .await
        .unwrap_err();
    assert!(
        matches!(error, cqrs_core::Error::InvalidInput(_)),
        "{error}"
    );
    assert_eq!(store.get("m", "b").await.unwrap(), None);
    common::drop_store(store).await;
}

#[tokio::test]
async fn a_crash_between_documents_and_checkpoint_is_replayed_harmlessly() {
    let store = common::store().await;
    let events = MemoryEventStore::new();
    let head = append_tally(&events, &tally_log(2_000, 3)).await;
    let log = events.read_all(Position::START, usize::MAX).await.unwrap();
    let runner = ProjectionRunner::new(TallyProjection, events.clone(), store.clone());

    // Every batch writes its documents; one in three "crashes" before its checkpoint
    // (exactly the first half of a commit, through the same code).
    let mut crashed = 0;
    let batches = log.chunks(90).count();
    for (i, batch) in log.chunks(90).enumerate() {
        let checkpoint = store.checkpoint("tally").await.unwrap();
        let fresh: Vec<_> = batch
            .iter()
            .filter(|e| e.position > checkpoint)
            .cloned()
            .collect();
        let plan = cqrs_core::ProjectionBatch::plan(&TallyProjection, &fresh).unwrap();
        let stored = store.get_many("tally", plan.document_ids()).await.unwrap();
        let changes = plan
            .apply(
                &TallyProjection,
                "tally",
                stored,
                cqrs_core::Guard::SkipApplied,
            )
            .unwrap();
        store.write_documents("tally", &changes).await.unwrap();
        if i % 3 == 1 || i + 1 == batches {
            crashed += 1;
            continue;
        }
        store
            .write_checkpoint("tally", batch.last().unwrap().position)
            .await
            .unwrap();
    }
    assert!(crashed > 5);
    // Some documents are ahead of the checkpoint: they would be counted twice by a
    // store that replays without the per-document guard.
    let checkpoint = store.checkpoint("tally").await.unwrap();
    let ahead = tally_documents(&store, "tally")
        .await
        .into_iter()
        .filter(|(_, d)| d.position > checkpoint)
        .count();
    assert!(
        ahead > 0,
        "the last batches left documents ahead of the checkpoint"
    );
    // A runner resumes from the checkpoint and replays what was not checkpointed.
    let handle = runner.spawn();
    handle.wait_for_timeout(head, WAIT).await.unwrap();
    handle.stop().await.unwrap();
    assert_eq!(
        tally_documents(&store, "tally").await,
        reference_tally(&events).await,
        "the read model differs from a fresh rebuild"
    );
    common::drop_store(store).await;
}

#[tokio::test]
async fn declared_indexes_are_created_and_queries_filter_sort_and_limit() {
    let store = common::store().await;
    let events = MemoryEventStore::new();
    let head = append_tally(&events, &tally_log(600, 5)).await;
    let handle = ProjectionRunner::new(TallyProjection, events.clone(), store.clone()).spawn();
    handle.wait_for_timeout(head, WAIT).await.unwrap();
    handle.stop().await.unwrap();

    let names: Vec<String> = store.collection("tally").list_index_names().await.unwrap();
    assert!(names.iter().any(|n| n == "by_total"), "{names:?}");

    let top = store
        .find(
            "tally",
            &Query::new()
                .filter(doc! { "total": { "$gt": 100 } })
                .sort_by("total", false)
                .limit(5),
        )
        .await
        .unwrap();
    let mut expected: Vec<_> = reference_tally(&events)
        .await
        .into_iter()
        .filter(|(_, d)| d.value["total"].as_i64().unwrap() > 100)
        .collect();
    expected.sort_by_key(|(_, d)| std::cmp::Reverse(d.value["total"].as_i64().unwrap()));
    expected.truncate(5);
    assert_eq!(top.len(), 5);
    let totals = |v: &[(String, cqrs_core::StoredDocument)]| -> Vec<i64> {
        v.iter()
            .map(|(_, d)| d.value["total"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(totals(&top), totals(&expected));
    // Tombstones never match a query.
    let all = store.find("tally", &Query::new()).await.unwrap();
    assert_eq!(all.len(), reference_tally(&events).await.len());
    let raw: Vec<_> = store
        .collection("tally")
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(
        raw.len() > all.len(),
        "the log clears keys: there are tombstones"
    );
    common::drop_store(store).await;
}

#[tokio::test]
async fn one_runner_at_a_time_with_a_lease_document() {
    let store = common::store().await;
    let lease = MongoLease::new(store.database());
    scenarios::one_runner_at_a_time(store.clone(), lease, "tally").await;
    common::drop_store(store).await;
}

#[tokio::test]
async fn a_lease_is_exclusive_until_released_or_expired() {
    let store = common::store().await;
    scenarios::lease_is_exclusive_until_released_or_expired(MongoLease::new(store.database()))
        .await;
    common::drop_store(store).await;
}

#[tokio::test]
async fn a_silent_holder_loses_the_lease() {
    let store = common::store().await;
    let lease = || MongoLease::new(store.database());
    let bound = cqrs_testkit::leases::TTL;
    cqrs_testkit::leases::a_silent_holder_loses_the_lease(lease(), lease(), bound, "silent").await;
    common::drop_store(store).await;
}

#[tokio::test]
async fn runners_follow_a_cut_over_from_another_process() {
    let store = common::store().await;
    let lease = MongoLease::new(store.database());
    scenarios::runners_follow_a_cut_over_from_elsewhere(store.clone(), lease).await;
    common::drop_store(store).await;
}

#[tokio::test]
async fn a_rebuild_is_cut_over_without_downtime() {
    let store = common::store().await;
    scenarios::cut_over_without_downtime(store.clone()).await;
    common::drop_store(store).await;
}

#[tokio::test]
async fn a_reset_that_fails_halfway_still_leaves_a_complete_read_model() {
    // A reset that stops after its first step (the server went away) must not leave
    // a checkpoint over missing documents: the runner would resume past them.
    let store = common::store().await;
    let events = MemoryEventStore::new();
    let log = tally_log(120, 9);
    let head = append_tally(&events, &log).await;
    let runner = ProjectionRunner::new(TallyProjection, events.clone(), store.clone()).spawn();
    runner.wait_for_timeout(head, WAIT).await.unwrap();
    runner.stop().await.unwrap();

    store.reset_checkpoint("tally").await.unwrap();
    // ... the documents were not dropped. A restarted runner replays from the start.
    assert_eq!(store.checkpoint("tally").await.unwrap(), Position::START);
    let more = tally_log(40, 10);
    let head = append_tally(&events, &more).await;
    let runner = ProjectionRunner::new(TallyProjection, events.clone(), store.clone()).spawn();
    runner.wait_for_timeout(head, WAIT).await.unwrap();
    runner.stop().await.unwrap();
    assert_eq!(
        tally_documents(&store, "tally").await,
        reference_tally(&events).await
    );
    common::drop_store(store).await;
}

#[tokio::test]
async fn a_negative_stored_position_is_a_codec_error_not_a_zero() {
    // A silent 0 would let the runner apply again events the document includes.
    let store = common::store().await;
    store
        .collection("m")
        .insert_one(doc! { "_id": "a", "value": { "n": 1 }, "position": -5_i64 })
        .await
        .unwrap();
    for error in [
        store.get("m", "a").await.unwrap_err(),
        store.get_many("m", &["a".to_owned()]).await.unwrap_err(),
    ] {
        assert!(matches!(error, cqrs_core::Error::Codec { .. }), "{error}");
        let message = error.to_string();
        assert!(message.contains("document `a`"), "{message}");
    }
    common::drop_store(store).await;
}
