//! The signing keys an OpenID Connect issuer publishes (a JWKS document), fetched
//! when first needed, kept for an hour, and fetched again at once when a token names
//! a key id not seen yet (the issuer rotated its keys) — at most once a second, so
//! tokens with made-up key ids cannot make the server hammer the issuer.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};

use super::AuthError;

/// How long fetched keys are used before they are fetched again.
const MAX_AGE: Duration = Duration::from_secs(3600);
/// The least time between two fetches.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Cache {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

/// An issuer's RS256 keys, by key id. Cheap to clone (clones share the cache).
#[derive(Clone)]
pub struct Jwks {
    url: String,
    client: reqwest::Client,
    cache: Arc<RwLock<Cache>>,
    fetching: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Jwks {
    /// The keys published at `url`.
    ///
    /// # Errors
    /// The HTTP client could not be built.
    pub fn new(url: &str) -> Result<Self, String> {
        Ok(Self {
            url: url.to_owned(),
            client: crate::http_client::client(Duration::from_secs(5))?,
            cache: Arc::default(),
            fetching: Arc::default(),
        })
    }

    fn cached(&self, kid: &str) -> (Option<DecodingKey>, bool) {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        let fresh = cache.fetched.is_some_and(|at| at.elapsed() < MAX_AGE);
        (cache.keys.get(kid).cloned(), fresh)
    }

    /// The key `kid`, fetching the set again if it is unknown or old.
    pub(super) async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        if let (Some(key), true) = self.cached(kid) {
            return Ok(key);
        }
        let _fetching = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        let (known, fresh) = self.cached(kid);
        if let (Some(key), true) = (&known, fresh) {
            return Ok(key.clone());
        }
        let last = self.cache.read().unwrap_or_else(|e| e.into_inner()).fetched;
        if fresh && last.is_some_and(|at| at.elapsed() < MIN_INTERVAL) {
            return Err(AuthError::Invalid("unknown key id"));
        }
        match self.fetch().await {
            Ok(keys) => {
                let key = keys.get(kid).cloned();
                *self.cache.write().unwrap_or_else(|e| e.into_inner()) = Cache {
                    keys,
                    fetched: Some(Instant::now()),
                };
                key.ok_or(AuthError::Invalid("unknown key id"))
            }
            Err(error) => {
                tracing::warn!(url = %self.url, %error, "cannot fetch the identity provider's keys");
                // Keys past their age still sign valid tokens until the issuer
                // rotates them: better than refusing everyone while it is away.
                known.ok_or(AuthError::KeysUnavailable)
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, String> {
        let reply = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let reply = reply.error_for_status().map_err(|e| e.to_string())?;
        let set: JwkSet = reply
            .json()
            .await
            .map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let common = &jwk.common;
            let rs256 = matches!(common.key_algorithm, None | Some(KeyAlgorithm::RS256));
            let signing = !matches!(common.public_key_use, Some(PublicKeyUse::Encryption));
            let rsa = matches!(jwk.algorithm, AlgorithmParameters::RSA(_));
            if let (Some(kid), true) = (&common.key_id, rs256 && signing && rsa) {
                match DecodingKey::from_jwk(jwk) {
                    Ok(key) => {
                        keys.insert(kid.clone(), key);
                    }
                    Err(error) => tracing::warn!(kid, %error, "skipping a JWKS key"),
                }
            }
        }
        tracing::debug!(url = %self.url, keys = keys.len(), "fetched the identity provider's keys");
        Ok(keys)
    }
}
