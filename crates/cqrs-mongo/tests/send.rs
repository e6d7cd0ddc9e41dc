//! Every public future of the crate is `Send`, so users can `tokio::spawn` it. This
//! file only has to compile.
#![allow(dead_code, clippy::unwrap_used)]

use cqrs_core::{Position, ReadModel};
use cqrs_mongo::{MongoQuery, MongoReadModelStore, Query};
use cqrs_testkit::tally::TallyProjection;

fn assert_send<T: Send>(_: T) {}

fn public_futures_are_send(
    store: MongoReadModelStore,
    reader: ReadModel<TallyProjection, MongoReadModelStore>,
) {
    assert_send(MongoReadModelStore::connect("mongodb://", "db"));
    assert_send(store.find("p", &Query::new()));
    assert_send(store.write_documents("p", &[]));
    assert_send(store.write_checkpoint("p", Position(1)));
    assert_send(reader.find(&Query::new()));
}

#[test]
fn compiles() {
    // The check is that `public_futures_are_send` compiles.
    let _ = public_futures_are_send;
}
