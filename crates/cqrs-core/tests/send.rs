//! Every public future of the crate is `Send`, so users can `tokio::spawn` it. This
//! file only has to compile.
#![allow(dead_code, clippy::unwrap_used, clippy::too_many_arguments)]

mod common;

use common::{Account, Balances, deposit};
use cqrs_core::{
    Aliased, CommandOutcome, CutOverOptions, MemoryEventBus, MemoryEventStore,
    MemoryReadModelStore, Metadata, Position, ProjectionHandle, ProjectionRunner, ReadModel,
    Repository, cut_over, relay,
};

fn assert_send<T: Send>(_: T) {}

fn public_futures_are_send(
    repository: Repository<Account, MemoryEventStore>,
    runner: ProjectionRunner<Balances, MemoryEventStore, MemoryReadModelStore>,
    handle: ProjectionHandle,
    reader: ReadModel<Balances, MemoryReadModelStore>,
    outcome: CommandOutcome<common::AccountEvent>,
    aliased: Aliased<MemoryReadModelStore>,
    events: MemoryEventStore,
    bus: MemoryEventBus,
    store: MemoryReadModelStore,
) {
    assert_send(repository.load("a"));
    assert_send(repository.execute(&deposit("a", 1), Metadata::new()));
    assert_send(runner.reset());
    assert_send(runner.apply(Position::START, &[]));
    assert_send(reader.get("a"));
    assert_send(reader.get_many(&[]));
    assert_send(reader.wait_for(Position(1)));
    assert_send(reader.wait_for_outcome(&outcome));
    assert_send(handle.wait_for(Position(1)));
    assert_send(handle.halt());
    assert_send(aliased.resolve("a"));
    assert_send(cut_over(
        &store,
        "a",
        &handle,
        &handle,
        Position(1),
        CutOverOptions::default(),
    ));
    assert_send(relay(&events, &bus, Position::START, 10));
    assert_send(handle.stop());
    assert_send(runner.rebuild());
}

#[test]
fn compiles() {
    // The check is that `public_futures_are_send` compiles.
    let _ = public_futures_are_send;
}
