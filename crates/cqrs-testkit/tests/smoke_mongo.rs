//! The MongoDB-protocol server answers over a real connection.

use std::time::Duration;

use cqrs_testkit::{OrUnreachable, mongodb_url, unique_name};
use mongodb::bson::{Document, doc};
use mongodb::options::ClientOptions;

#[tokio::test]
async fn mongo_inserts_and_finds_a_document() {
    let url = mongodb_url();
    let mut options = ClientOptions::parse(&url)
        .await
        .or_unreachable("MongoDB", &url);
    options.server_selection_timeout = Some(Duration::from_secs(5));
    options.connect_timeout = Some(Duration::from_secs(5));
    let client = mongodb::Client::with_options(options).or_unreachable("MongoDB", &url);
    let db = client.database(&unique_name("smoke"));
    db.run_command(doc! { "ping": 1 })
        .await
        .or_unreachable("MongoDB", &url);

    let today = db.collection::<Document>("today");
    today
        .insert_one(doc! { "_id": "ada/2026-11-25", "items": ["Run", "Read"], "position": 7_i64 })
        .await
        .expect("insert");
    let found = today
        .find_one(doc! { "_id": "ada/2026-11-25" })
        .await
        .expect("find")
        .expect("the document");
    assert_eq!(found.get_i64("position").expect("position"), 7);
    assert_eq!(found.get_array("items").expect("items").len(), 2);
    db.drop().await.expect("drop");
}
