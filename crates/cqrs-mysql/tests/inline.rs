//! Inline read models on MariaDB: written in the append's transaction, current when
//! the append returns, equal to a rebuild under concurrent appends, and untouched by
//! an append that fails.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use common::TestDb;
use cqrs_core::{
    AppendRequest, Error, EventAppender, ExpectedVersion, LogReader, MemoryReadModelStore,
    Metadata, NewEvent, Position, Projection, ProjectionRunner, StoredDocument,
};
use cqrs_testkit::scenarios::tally_documents;
use cqrs_testkit::tally::{TallyEvent, TallyProjection, tally_log};

/// The tally read model rebuilt in memory from the store's log.
async fn rebuilt(db: &TestDb) -> Vec<(String, StoredDocument)> {
    let store = db.store();
    let events = store.read_all(Position::START, usize::MAX).await.unwrap();
    let memory = MemoryReadModelStore::new();
    ProjectionRunner::new(TallyProjection, store, memory.clone())
        .apply(Position::START, &events)
        .await
        .unwrap();
    tally_documents(&memory, TallyProjection::NAME).await
}

fn request(event: &TallyEvent, expected: ExpectedVersion) -> AppendRequest {
    let (TallyEvent::Added { key, .. } | TallyEvent::Cleared { key }) = event;
    let new = NewEvent::encode(event, Metadata::new()).unwrap();
    AppendRequest::new(format!("tally-{key}"), expected, vec![new])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inline_documents_commit_with_the_events_and_equal_a_rebuild() {
    let db = TestDb::new(12).await;
    let store = db.store().with_inline_projection(TallyProjection);
    let read = db.read_models();
    // Read your write at once: no runner, no wait.
    let first = TallyEvent::Added {
        key: "k1".into(),
        amount: 5,
    };
    store
        .append(request(&first, ExpectedVersion::Any))
        .await
        .unwrap();
    let docs = tally_documents(&read, TallyProjection::NAME).await;
    assert!(
        docs.iter()
            .any(|(id, d)| id == "k1" && d.value["total"] == 5),
        "{docs:?}"
    );

    // Eight writers at once: every append changes the shared document `all`.
    let log = tally_log(320, 41);
    let tasks: Vec<_> = log
        .chunks(40)
        .map(|chunk| {
            let (store, chunk) = (store.clone(), chunk.to_vec());
            tokio::spawn(async move {
                for event in &chunk {
                    store
                        .append(request(event, ExpectedVersion::Any))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let live = tally_documents(&read, TallyProjection::NAME).await;
    assert_eq!(
        live,
        rebuilt(&db).await,
        "the inline read model equals a rebuild"
    );

    // A refused append (a conflict) changes no document.
    let refused = store
        .append(request(
            &TallyEvent::Added {
                key: "k1".into(),
                amount: 100,
            },
            ExpectedVersion::NoStream,
        ))
        .await;
    assert!(
        matches!(refused, Err(Error::Conflict { .. })),
        "{refused:?}"
    );
    assert_eq!(
        tally_documents(&read, TallyProjection::NAME).await,
        live,
        "nothing changed"
    );
    db.drop().await;
}
