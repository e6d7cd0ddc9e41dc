//! `mada rebuild` beside live workers, under load: the new versions are built from
//! the first event, made live, and the old ones dropped, while a user writes and
//! reads back every write and another screen reads the category list. No request
//! fails, no read comes back empty or wrong, the workers follow the new versions
//! (writes after the rebuild are read back), and the read models equal a rebuild.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::binary::serve;
use crate::failover::{Outcome, call, load};
use crate::rebuilt::{assert_read_models_equal_a_rebuild, schema_pool};
use crate::roles::{SECRET, migrate, worker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_beside_live_workers_switches_everyone_without_a_gap() {
    let schema = cqrs_testkit::unique_name("rebuild");
    let url = cqrs_testkit::postgres_url();
    let store = [
        "--store",
        "postgres",
        "--database-url",
        &url,
        "--pg-schema",
        &schema,
    ];
    migrate(&schema);
    let workers = [worker(&schema, &[]), worker(&schema, &[])];
    let api = serve(
        &[&["serve"][..], &store[..], &["--role", "write"]].concat(),
        &[("MADA_JWT_SECRET", SECRET)],
        false,
    );

    let (phase, stop) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let writer = tokio::spawn(load(
        api.url.clone(),
        "rb-0".into(),
        Arc::clone(&phase),
        Arc::clone(&stop),
    ));
    // Another screen: the category list, once it has one, never comes back empty.
    let lists = tokio::spawn({
        let (url, stop) = (api.url.clone(), Arc::clone(&stop));
        async move {
            let http = mada::http_client::client(Duration::from_secs(10)).unwrap();
            let (mut reads, mut seen) = (0_u32, false);
            while !stop.load(Ordering::Relaxed) {
                let Outcome::Ok(data) =
                    call(&http, &url, "rb-0", "{ categories { id } }", json!({})).await
                else {
                    panic!("a category list read failed");
                };
                let empty = data["categories"].as_array().unwrap().is_empty();
                assert!(!(seen && empty), "the category list came back empty");
                seen |= !empty;
                reads += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            reads
        }
    });
    // Some history first, so that the rebuild has work.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let rebuilt = tokio::task::spawn_blocking({
        let store: Vec<String> = store.iter().map(|s| (*s).to_owned()).collect();
        move || {
            Command::new(env!("CARGO_BIN_EXE_mada"))
                .arg("rebuild")
                .args(&store)
                .args(["--project-lease-ttl", "2"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let printed = String::from_utf8_lossy(&rebuilt.stdout);
    assert!(
        rebuilt.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    println!("{printed}");
    for name in ["plan", "categories"] {
        assert!(printed.contains(&format!("{name}: rebuilt ")), "{printed}");
    }
    // After the rebuild only the workers write: what comes now is read back too.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let log = writer.await.unwrap();
    let reads = lists.await.unwrap();
    assert!(log.wrong.is_empty(), "{:#?}", log.wrong);
    let answers = log.counts[0][0];
    assert!(
        answers > 20 && reads > 20,
        "load ran: {answers} answers, {reads} list reads"
    );
    println!("{answers} answers and {reads} category lists, none failed, empty or wrong");

    let pool = schema_pool(&schema).await;
    for name in ["plan", "categories"] {
        let (target,): (String,) =
            sqlx::query_as("SELECT target FROM cqrs_aliases WHERE alias = $1")
                .bind(name)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert!(
            target.starts_with(&format!("{name}_r")),
            "{name} -> {target}"
        );
        let (old,): (i64,) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM cqrs_documents WHERE projection = $1) \
             + (SELECT count(*) FROM cqrs_checkpoints WHERE projection = $1)",
        )
        .bind(name)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(old, 0, "the old version of {name} was dropped");
    }
    assert_read_models_equal_a_rebuild(&pool).await;
    drop((api, workers));
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}
