//! Every public future of the crate is `Send`, so users can `tokio::spawn` it. This
//! file only has to compile.
#![allow(dead_code, clippy::unwrap_used)]

use cqrs_core::{AppendRequest, ExpectedVersion};
use cqrs_postgres::{PgCdcSource, PgEventStore, connect_pool, migrate};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

fn assert_send<T: Send>(_: T) {}

fn public_futures_are_send(store: PgEventStore, pool: PgPool, cdc: PgCdcSource) {
    assert_send(PgEventStore::connect("postgres://"));
    assert_send(store.migrate());
    assert_send(store.append_many(vec![AppendRequest::new("s", ExpectedVersion::Any, vec![])]));
    assert_send(migrate(&pool));
    assert_send(connect_pool(PgConnectOptions::new(), 1));
    assert_send(PgCdcSource::create(pool.clone(), "slot"));
    assert_send(cdc.drop_slot());
    assert_send(cdc.retained_wal_bytes());
}

#[test]
fn compiles() {
    // The check is that `public_futures_are_send` compiles.
    let _ = public_futures_are_send;
}
