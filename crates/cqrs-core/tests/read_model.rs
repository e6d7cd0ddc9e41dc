//! The typed reader: documents as the projection's type, waits with deadlines, and
//! read-your-writes across processes (a reader with no runner polls the checkpoint).

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use std::time::Duration;

use common::{Account, BalanceDoc, Balances, deposit, open};
use cqrs_core::{
    Error, MemoryEventStore, MemoryReadModelStore, Metadata, Position, ProjectionRunner, ReadModel,
    Repository,
};

#[tokio::test]
async fn a_reader_without_a_runner_waits_on_the_stored_checkpoint() {
    let events = MemoryEventStore::new();
    let read = MemoryReadModelStore::new();
    let repo = Repository::<Account, _>::new(events.clone());
    // The runner runs "in another process": this side only has the store.
    let _runner = ProjectionRunner::new(Balances, events.clone(), read.clone()).spawn();
    let reader = ReadModel::<Balances, _>::new(read.clone());

    repo.execute(&open("a"), Metadata::new()).await.unwrap();
    let outcome = repo
        .execute(&deposit("a", 7), Metadata::new())
        .await
        .unwrap();
    reader.wait_for_outcome(&outcome).await.unwrap();
    let doc: BalanceDoc = reader.get("account-a").await.unwrap().unwrap();
    assert_eq!(doc.balance, 7);
    let many = reader
        .get_many(&["account-a".to_owned(), "account-none".to_owned()])
        .await
        .unwrap();
    assert_eq!(many.len(), 1);
}

#[tokio::test]
async fn a_command_that_appended_nothing_needs_no_wait() {
    let events = MemoryEventStore::new();
    let read = MemoryReadModelStore::new();
    let repo = Repository::<Account, _>::new(events.clone());
    repo.execute(&open("a"), Metadata::new()).await.unwrap();
    let mut outcome = repo
        .execute(&deposit("a", 1), Metadata::new())
        .await
        .unwrap();
    outcome.position = None; // as for a command that decided on no event
    // No runner at all: a wait would time out; there is nothing to wait for.
    let reader = ReadModel::<Balances, _>::new(read).with_wait_timeout(Duration::from_millis(1));
    reader.wait_for_outcome(&outcome).await.unwrap();
}

#[tokio::test]
async fn a_wait_that_cannot_be_met_ends_at_its_deadline() {
    let read = MemoryReadModelStore::new();
    let reader = ReadModel::<Balances, _>::new(read).with_wait_timeout(Duration::from_millis(50));
    let error = reader.wait_for(Position(10)).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Timeout {
                wanted: Position(10),
                reached: Position(0),
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_stored_document_of_another_shape_is_a_codec_error_naming_it() {
    use cqrs_core::{DocumentChange, ReadModelWriter};
    let read = MemoryReadModelStore::new();
    let change = DocumentChange::Put {
        id: "account-a".into(),
        value: serde_json::json!({ "balance": "lots" }),
        position: Position(1),
    };
    read.commit("balances", vec![change], Position(1))
        .await
        .unwrap();
    let error = ReadModel::<Balances, _>::new(read)
        .get("account-a")
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("projection `balances`") && message.contains("document `account-a`"),
        "{message}"
    );
}
