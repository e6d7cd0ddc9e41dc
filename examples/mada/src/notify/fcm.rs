//! Firebase Cloud Messaging, HTTP v1: `POST {endpoint}/v1/projects/{project}/messages:send`
//! with an OAuth2 access token obtained for a service account (yup-oauth2: the signed
//! JWT assertion exchanged at the key's `token_uri`, the token cached and renewed
//! before it expires).
//!
//! Replies are sorted into what the notifier does next ([`Sent`]): sent; the token
//! is unregistered (drop the device); the message is bad (a dead letter, never
//! retried); or retry later (429, 5xx, network), honouring `Retry-After`. A 401
//! fetches a fresh access token and tries once more.

use std::time::Duration;

use serde_json::Value;
use yup_oauth2::ServiceAccountKey;
use yup_oauth2::authenticator::Authenticator;

/// The scope FCM needs.
pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// Google's endpoint.
pub const GOOGLE: &str = "https://fcm.googleapis.com";

/// The connector yup-oauth2 builds by default (rustls on `ring`, the system's
/// roots, HTTP or HTTPS).
type Connector =
    <yup_oauth2::DefaultHyperClientBuilder as yup_oauth2::HyperClientBuilder>::Connector;

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// FCM accepted it (its message name).
    Delivered(String),
    /// The device token is no longer valid (404 / `UNREGISTERED`): drop the device.
    Unregistered,
    /// FCM refused the message itself (400): record it, do not retry.
    Rejected(String),
    /// Try again later: 429, 5xx, a network failure, or no access token; after at
    /// least `after` if FCM said so.
    Retry {
        /// `Retry-After`, if given.
        after: Option<Duration>,
        /// What happened, for the log.
        reason: String,
    },
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FcmError {
    /// The service-account key is unusable.
    #[error("service account: {0}")]
    Credentials(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

/// A client of FCM for one Firebase project.
#[derive(Clone)]
pub struct Fcm {
    http: reqwest::Client,
    auth: Authenticator<Connector>,
    send_url: String,
}

impl std::fmt::Debug for Fcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fcm")
            .field("send_url", &self.send_url)
            .finish_non_exhaustive()
    }
}

impl Fcm {
    /// A client sending as the service account `key` to `endpoint` (`GOOGLE` in
    /// production), for `project` (the key's `project_id` if `None`).
    ///
    /// # Errors
    /// [`FcmError`] if the key has no project or the clients cannot be built.
    pub async fn new(
        key: ServiceAccountKey,
        endpoint: &str,
        project: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, FcmError> {
        let project = project
            .map(str::to_owned)
            .or_else(|| key.project_id.clone())
            .ok_or_else(|| FcmError::Credentials("no project_id: name the project".into()))?;
        let auth = yup_oauth2::ServiceAccountAuthenticator::builder(key)
            .build()
            .await
            .map_err(|e| FcmError::Credentials(e.to_string()))?;
        let http = crate::http_client::client(timeout).map_err(FcmError::Client)?;
        let send_url = format!(
            "{}/v1/projects/{project}/messages:send",
            endpoint.trim_end_matches('/')
        );
        Ok(Self {
            http,
            auth,
            send_url,
        })
    }

    async fn token(&self, fresh: bool) -> Result<String, String> {
        let token = if fresh {
            self.auth.force_refreshed_token(&[SCOPE]).await
        } else {
            self.auth.token(&[SCOPE]).await
        };
        let token = token.map_err(|e| format!("no access token: {e}"))?;
        token
            .token()
            .map(str::to_owned)
            .ok_or_else(|| "no access token in the reply".to_owned())
    }

    /// Sends `message` (the `message` object of the v1 API).
    pub async fn send(&self, message: &Value) -> Sent {
        let body = serde_json::json!({ "message": message });
        for fresh in [false, true] {
            let token = match self.token(fresh).await {
                Ok(token) => token,
                Err(reason) => {
                    return Sent::Retry {
                        after: None,
                        reason,
                    };
                }
            };
            let reply = self
                .http
                .post(&self.send_url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await;
            let reply = match reply {
                Ok(reply) => reply,
                Err(error) => {
                    let reason = format!("FCM unreachable: {error}");
                    return Sent::Retry {
                        after: None,
                        reason,
                    };
                }
            };
            let status = reply.status().as_u16();
            let retry_after = reply
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let text = reply.text().await.unwrap_or_default();
            match classify(status, retry_after.as_deref(), &text) {
                Reply::Done(sent) => return sent,
                Reply::RefreshToken if !fresh => {
                    tracing::info!("FCM refused the access token; fetching a fresh one");
                }
                Reply::RefreshToken => break,
            }
        }
        Sent::Retry {
            after: None,
            reason: "FCM refused a fresh access token too (401)".into(),
        }
    }
}

/// What a reply of FCM's `messages:send` means, before a refused access token is
/// dealt with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// What became of the message.
    Done(Sent),
    /// FCM refused the access token (401): fetch a fresh one and send again.
    RefreshToken,
}

/// Sorts a reply of FCM's `messages:send`: its HTTP `status`, its `Retry-After`
/// header (if any) and its body. A body FCM would never send (not JSON, cut short)
/// is sorted by the status alone; nothing here panics or keeps more than 300
/// characters of the body.
pub fn classify(status: u16, retry_after: Option<&str>, body: &str) -> Reply {
    let sent = match status {
        200..=299 => {
            let name = serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|v| v["name"].as_str().map(str::to_owned))
                .unwrap_or_default();
            Sent::Delivered(name)
        }
        401 => return Reply::RefreshToken,
        404 => Sent::Unregistered,
        400 if error_code(body).as_deref() == Some("UNREGISTERED") => Sent::Unregistered,
        400 => Sent::Rejected(short(body)),
        _ => Sent::Retry {
            after: retry_after.and_then(seconds),
            reason: format!("FCM answered {status}: {}", short(body)),
        },
    };
    Reply::Done(sent)
}

/// The FCM error code in an error reply's details, if any.
fn error_code(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    value["error"]["details"]
        .as_array()?
        .iter()
        .find_map(|d| d["errorCode"].as_str().map(str::to_owned))
}

fn short(text: &str) -> String {
    text.chars().take(300).collect()
}

/// `Retry-After` in seconds (the form FCM uses); an HTTP date is ignored.
fn seconds(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}
