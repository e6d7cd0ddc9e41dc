//! A Redis out of memory refuses a whole commit before its first write: the batch and
//! the checkpoint stay as they were. The only test of this binary, because it lowers
//! the memory limit of the server every test here uses (and puts it back).
#![allow(clippy::unwrap_used)]

mod common;

use cqrs_core::{DocumentChange, Error, Position, ReadModelReader, ReadModelWriter};
use cqrs_redis::redis;
use cqrs_testkit::redis_url;
use serde_json::json;

/// Puts the server's memory limit back when the test ends, even if it fails.
struct Limit(redis::Client);

impl Limit {
    fn set(&self, bytes: &str) {
        let mut conn = self.0.get_connection().unwrap();
        let () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg(bytes)
            .query(&mut conn)
            .unwrap();
    }
}

impl Drop for Limit {
    fn drop(&mut self) {
        self.set("0");
    }
}

#[tokio::test]
async fn a_server_out_of_memory_refuses_the_whole_batch() {
    let store = common::store().await;
    let put = |id: &str, p: u64| DocumentChange::Put {
        id: id.into(),
        value: json!({ "id": id }),
        position: Position(p),
    };
    store
        .commit("m", vec![put("a", 1)], Position(1))
        .await
        .unwrap();

    let limit = Limit(redis::Client::open(redis_url().as_str()).unwrap());
    limit.set("1"); // far below what the server already uses: every write is refused
    let batch = (0..50).map(|i| put(&format!("n{i}"), 2)).collect();
    let error = store.commit("m", batch, Position(2)).await.unwrap_err();
    assert!(matches!(error, Error::Backend { .. }), "{error}");
    assert!(
        error.to_string().to_lowercase().contains("memory") || format!("{error:?}").contains("OOM"),
        "{error:?}"
    );
    drop(limit);

    assert_eq!(store.checkpoint("m").await.unwrap(), Position(1));
    let written = store
        .get_many("m", &["n0".into(), "n49".into()])
        .await
        .unwrap();
    assert!(
        written.is_empty(),
        "nothing of the refused batch was written"
    );
    assert_eq!(store.documents("m").await.unwrap().len(), 1);
    common::drop_keys(&mut store.connection(), store.prefix()).await;
}
