//! RSA keys made with the `openssl` command for this run (none is committed), RS256
//! tokens signed with them, and a JWKS server on loopback that publishes them.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// An RSA key pair.
pub struct RsaKey {
    pub kid: String,
    pub private_pem: Vec<u8>,
    pub public_pem: Vec<u8>,
    /// The modulus, base64url.
    pub n: String,
}

fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the `openssl` command (Debian: apt-get install openssl)");
    if let Some(input) = input {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "openssl {args:?} failed");
    output.stdout
}

impl RsaKey {
    pub fn generate(kid: &str) -> Self {
        let private_pem = openssl(&["genrsa", "-traditional", "2048"], None);
        let public_pem = openssl(&["rsa", "-pubout"], Some(&private_pem));
        let modulus =
            String::from_utf8(openssl(&["rsa", "-noout", "-modulus"], Some(&private_pem))).unwrap();
        let hex = modulus.trim().trim_start_matches("Modulus=");
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        Self {
            kid: kid.to_owned(),
            private_pem,
            public_pem,
            n: URL_SAFE_NO_PAD.encode(bytes),
        }
    }

    /// This key as a JWK.
    pub fn jwk(&self) -> Value {
        json!({ "kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": self.n, "e": "AQAB" })
    }

    /// An RS256 token with `claims`, naming this key.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        let key = EncodingKey::from_rsa_pem(&self.private_pem).unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }
}

/// Claims for `user`, expiring in `ttl` seconds (negative: expired).
pub fn claims(user: &str, ttl: i64, issuer: &str, audience: &str) -> Value {
    let now = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap();
    json!({ "sub": user, "exp": now + ttl, "iat": now, "iss": issuer, "aud": audience })
}

/// A JWKS document served on loopback, which a test can change (key rotation).
pub struct JwksServer {
    pub url: String,
    keys: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JwksServer {
    pub async fn start(keys: &[&RsaKey]) -> Self {
        let document = Arc::new(Mutex::new(
            json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() }),
        ));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (Arc::clone(&document), Arc::clone(&fetches));
        let router = Router::new().route(
            "/jwks.json",
            get(move || {
                let (served, counted) = (Arc::clone(&served), Arc::clone(&counted));
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    axum::Json(served.lock().unwrap().clone())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            url,
            keys: document,
            fetches,
            task,
        }
    }

    /// Publishes `keys` instead.
    pub fn publish(&self, keys: &[&RsaKey]) {
        *self.keys.lock().unwrap() =
            json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() });
    }

    /// How many times the document was fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}
