//! Authentication and authorization: who may call, and that a user reaches only
//! their own data, whatever ids they send.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mada::server::ServerConfig;
use mada::server::auth::{Authenticator, Jwks, Keys, hs256_token};
use serde_json::{Value, json};

use crate::harness::{Client, Said, Socket, TestServer};
use crate::keys::{JwksServer, RsaKey, claims};

const DAY: &str = "2026-11-25";

/// What the server said to `query` from `client`, as (status, code or "OK").
async fn outcome(client: &Client, query: &str, variables: Value) -> (u16, String, String) {
    let reply = client.gql(query, variables).await;
    match reply.body.get("errors") {
        None => (reply.status, "OK".into(), String::new()),
        Some(_) => (
            reply.status,
            reply.code().to_owned(),
            reply.message().to_owned(),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_can_never_read_change_or_subscribe_to_another_users_data() {
    let server = TestServer::start().await;
    let (ann, bob) = (server.client("ann"), server.client("bob"));
    let bob_category = bob.category("Bob's").await;
    let (bob_goal, token) = bob.goal("Bob's goal", &bob_category, DAY).await;
    bob.today(DAY, Some(&token)).await;
    let ann_category = ann.category("Ann's").await;
    // An id that exists for nobody: Ann must not be able to tell it from Bob's.
    let nobody = uuid::Uuid::now_v7().to_string();

    // (query, whether $id names a goal rather than a category)
    let edit = format!(
        "mutation($id: ID!) {{ editGoal(id: $id, title: \"mine\", categoryId: \"{ann_category}\") {{ token }} }}"
    );
    let attempts = [
        ("query($id: ID!) { goal(id: $id) { title } }", true),
        (
            "mutation($id: ID!) { renameCategory(id: $id, name: \"mine\") { token } }",
            false,
        ),
        (
            "mutation($id: ID!) { recolourCategory(id: $id, colour: \"#000000\") { token } }",
            false,
        ),
        (
            "mutation($id: ID!) { deleteCategory(id: $id) { token } }",
            false,
        ),
        (
            "mutation($id: ID!) { createGoal(goal: { title: \"x\", categoryId: $id, schedule: { start: \"2026-11-25\" } }) { token } }",
            false,
        ),
        (edit.as_str(), true),
        (
            "mutation($id: ID!) { rescheduleGoal(id: $id, schedule: { start: \"2026-11-25\" }) { token } }",
            true,
        ),
        (
            "mutation($id: ID!) { completeGoal(id: $id, date: \"2026-11-25\") { token } }",
            true,
        ),
        (
            "mutation($id: ID!) { uncompleteGoal(id: $id, date: \"2026-11-25\") { token } }",
            true,
        ),
        ("mutation($id: ID!) { deleteGoal(id: $id) { token } }", true),
    ];
    for (query, on_goal) in attempts {
        let target = if on_goal { &bob_goal } else { &bob_category };
        let theirs = outcome(&ann, query, json!({ "id": target })).await;
        let none = outcome(&ann, query, json!({ "id": nobody })).await;
        assert_eq!(theirs.1, "NOT_FOUND", "{query} on Bob's id: {theirs:?}");
        // Messages may name the id sent; compare them with the ids swapped out.
        let hide = |o: (u16, String, String)| {
            (
                o.0,
                o.1,
                o.2.replace(target.as_str(), "ID").replace(&nobody, "ID"),
            )
        };
        assert_eq!(
            hide(theirs),
            hide(none),
            "{query}: Bob's id and an unknown one must look the same"
        );
    }

    // Ann's own reads show nothing of Bob's.
    let mine = ann
        .gql(
            "{ today(date: \"2026-11-25\") { total } categories { id } calendar(month: \"2026-11\") { days { date } } }",
            json!({}),
        )
        .await;
    let data = mine.data();
    assert_eq!(data["today"]["total"], 0);
    assert_eq!(data["categories"], json!([{ "id": ann_category }]));
    assert_eq!(data["calendar"]["days"], json!([]));

    // Bob's data is untouched by all of the above.
    let bobs = bob
        .gql(
            "{ today(date: \"2026-11-25\") { items { title done } } categories { name } }",
            json!({}),
        )
        .await;
    assert_eq!(
        bobs.data(),
        &json!({ "today": { "items": [{ "title": "Bob's goal", "done": false }] }, "categories": [{ "name": "Bob's" }] })
    );

    // Ann's subscription carries her list only: Bob's changes push nothing to her.
    let mut socket = Socket::signed_in(&server.url, &server.token("ann")).await;
    socket.subscribe_today("1", DAY).await;
    let first = socket.next_today(Duration::from_secs(5)).await.unwrap();
    assert_eq!(first["total"], 0);
    bob.gql(
        "mutation($g: ID!) { completeGoal(id: $g, date: \"2026-11-25\") { token } }",
        json!({ "g": bob_goal }),
    )
    .await
    .data();
    bob.goal("Another of Bob's", &bob_category, DAY).await;
    assert!(
        socket.next(Duration::from_millis(700)).await.is_none(),
        "Bob's changes reached Ann"
    );
}

fn forge(header: &Value, claims: &Value, signature: &str) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{signature}", part(header), part(claims))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_expired_forged_and_unsigned_tokens_are_unauthenticated() {
    let server = TestServer::start().await;
    let now = jsonwebtoken::get_current_timestamp();
    let secret = crate::harness::SECRET;
    let expired = {
        let claims = json!({ "sub": "ann", "exp": now - 120 });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    let other_secret = hs256_token(
        b"another secret, also thirty-two bytes",
        "ann",
        Duration::from_secs(60),
    )
    .unwrap();
    let good = server.token("ann");
    let tampered = {
        let parts: Vec<&str> = good.split('.').collect();
        let claims = json!({ "sub": "bob", "exp": now + 60 });
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            parts[2]
        )
    };
    let unsigned = forge(
        &json!({ "alg": "none", "typ": "JWT" }),
        &json!({ "sub": "ann", "exp": now + 60 }),
        "",
    );
    let no_sub = {
        let claims = json!({ "exp": now + 60 });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    let cases: [(Option<String>, &str); 7] = [
        (None, "sign in"),
        (Some(expired), "expired"),
        (Some(other_secret), "bad signature"),
        (Some(tampered), "bad signature"),
        (Some(unsigned.clone()), "not a signed JWT"),
        (Some("garbage".into()), "not a signed JWT"),
        (Some(no_sub), "required claim"),
    ];
    for (token, says) in cases {
        let client = Client::new(&server.url, token.clone());
        let reply = client.gql("{ me }", json!({})).await;
        assert_eq!(reply.status, 401, "{token:?}: {}", reply.body);
        assert_eq!(reply.code(), "UNAUTHENTICATED");
        assert!(
            reply.message().contains(says),
            "{token:?}: {}",
            reply.message()
        );
        assert!(reply.body["data"].is_null());
    }
    // The WebSocket is refused the same way, and closed.
    for payload in [
        json!({}),
        json!({ "authorization": format!("Bearer {unsigned}") }),
    ] {
        let mut socket = Socket::connect(&server.url, payload).await;
        match socket.next(Duration::from_secs(5)).await {
            Some(Said::Closed(reason)) => assert!(reason.contains("UNAUTHENTICATED"), "{reason}"),
            other => panic!("the socket stayed open: {other:?}"),
        }
    }
    // And the good token works.
    let reply = Client::new(&server.url, Some(good))
        .gql("{ me }", json!({}))
        .await;
    assert_eq!(reply.data()["me"], "ann");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_tokens_are_checked_against_the_public_key_issuer_and_audience() {
    let key = RsaKey::generate("k1");
    let stranger = RsaKey::generate("k1");
    let auth =
        Authenticator::rs256(&key.public_pem, Some("https://issuer.test"), Some("mada")).unwrap();
    let server = TestServer::start_with(auth, ServerConfig::default()).await;
    let ask = |token: String| {
        let client = Client::new(&server.url, Some(token));
        async move { client.gql("{ me }", json!({})).await }
    };
    let ok = ask(key.sign(&claims("ann", 60, "https://issuer.test", "mada"))).await;
    assert_eq!(ok.data()["me"], "ann");
    for (token, says) in [
        (
            stranger.sign(&claims("ann", 60, "https://issuer.test", "mada")),
            "bad signature",
        ),
        (
            key.sign(&claims("ann", 60, "https://elsewhere.test", "mada")),
            "another issuer",
        ),
        (
            key.sign(&claims("ann", 60, "https://issuer.test", "other-app")),
            "another audience",
        ),
        (
            key.sign(&claims("ann", -120, "https://issuer.test", "mada")),
            "expired",
        ),
        // An HS256 token "signed" with the public key as the secret: the classic
        // algorithm confusion, refused because only RS256 is accepted here.
        (
            jsonwebtoken::encode(
                &jsonwebtoken::Header::default(),
                &claims("ann", 60, "https://issuer.test", "mada"),
                &jsonwebtoken::EncodingKey::from_secret(&key.public_pem),
            )
            .unwrap(),
            "algorithm",
        ),
    ] {
        let reply = ask(token).await;
        assert_eq!(reply.code(), "UNAUTHENTICATED", "{says}: {}", reply.body);
        assert!(
            reply.message().contains(says),
            "{says}: {}",
            reply.message()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_keys_are_fetched_cached_and_refetched_for_an_unknown_key_id() {
    let (old, new) = (RsaKey::generate("old"), RsaKey::generate("new"));
    let jwks = JwksServer::start(&[&old]).await;
    let keys = Keys::Jwks(Jwks::new(&jwks.url).unwrap());
    let auth = Authenticator::new(keys, Some("https://issuer.test"), Some("mada"));
    let server = TestServer::start_with(auth, ServerConfig::default()).await;
    let ask = |token: String| {
        let client = Client::new(&server.url, Some(token));
        async move { client.gql("{ me }", json!({})).await }
    };
    let claims = claims("ann", 60, "https://issuer.test", "mada");
    assert_eq!(jwks.fetches(), 0, "fetched when first needed");
    for _ in 0..3 {
        assert_eq!(ask(old.sign(&claims)).await.data()["me"], "ann");
    }
    assert_eq!(jwks.fetches(), 1, "cached");

    // The issuer rotates its keys: a token naming the new key id makes the server
    // fetch the set again (after the one-second floor between fetches).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    jwks.publish(&[&new]);
    assert_eq!(ask(new.sign(&claims)).await.data()["me"], "ann");
    assert_eq!(jwks.fetches(), 2);
    // Made-up key ids do not make it hammer the issuer.
    let mut made_up = new.sign(&claims);
    for _ in 0..5 {
        let forged = RsaKey {
            kid: format!("kid-{}", uuid::Uuid::now_v7()),
            private_pem: new.private_pem.clone(),
            public_pem: new.public_pem.clone(),
            n: new.n.clone(),
        };
        made_up = forged.sign(&claims);
        assert_eq!(ask(made_up.clone()).await.code(), "UNAUTHENTICATED");
    }
    assert!(jwks.fetches() <= 3, "{} fetches", jwks.fetches());
    let reply = ask(made_up).await;
    assert!(
        reply.message().contains("unknown key id"),
        "{}",
        reply.message()
    );
}
