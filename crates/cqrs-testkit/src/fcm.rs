//! A local server that speaks Firebase Cloud Messaging's HTTP v1 API and Google's
//! OAuth2 token endpoint, on loopback, for tests and benches of a notifier.
//!
//! It checks what the real services check: the token exchange's JWT assertion
//! (RS256, signed with the service account's private key, verified against its
//! public key; issuer, audience, scope, expiry), the bearer token of every send,
//! and the message's schema (a `message` with a `token`, string values in `data`,
//! no unknown fields). Faults can be injected: 401, 404 `UNREGISTERED`, 429 with
//! `Retry-After`, 500, slow replies. Every accepted message is recorded; duplicates
//! are counted as a device would see them (by collapse key).

use std::collections::{HashMap, HashSet, VecDeque};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use serde_json::{Value, json};

/// A fault the next send (or every send to a device) gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 401: the access token is refused (and forgotten: a fresh one works).
    Unauthorized,
    /// 404 with `UNREGISTERED`.
    Unregistered,
    /// 429 with `Retry-After: seconds`.
    TooMany(u64),
    /// 500.
    ServerError,
    /// 400: the message is refused.
    BadRequest,
    /// The reply comes after this long (then succeeds).
    Slow(Duration),
}

/// A generated service account: its key file's JSON and its public key.
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    /// The key as Google's JSON key file has it (`private_key`, `client_email`,
    /// `token_uri`, `project_id`, ...). Generated for this run; never commit one.
    pub key_json: String,
    /// The public key, PEM.
    pub public_pem: Vec<u8>,
    /// The account's e-mail.
    pub client_email: String,
}

fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("the `openssl` command is needed ({e})"));
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input).expect("openssl stdin");
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().expect("openssl");
    assert!(output.status.success(), "openssl {args:?} failed");
    output.stdout
}

impl ServiceAccount {
    /// A new RSA service account (made with the `openssl` command) whose tokens are
    /// exchanged at `token_uri`, for `project`.
    pub fn generate(token_uri: &str, project: &str) -> Self {
        let private_pem = openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            None,
        );
        let public_pem = openssl(&["pkey", "-pubout"], Some(&private_pem));
        let client_email = format!("notifier@{project}.iam.gserviceaccount.com");
        let key_json = json!({
            "type": "service_account",
            "project_id": project,
            "private_key_id": "test-key",
            "private_key": String::from_utf8(private_pem).expect("PEM"),
            "client_email": client_email,
            "client_id": "1",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
        })
        .to_string();
        Self {
            key_json,
            public_pem,
            client_email,
        }
    }
}

#[derive(Default)]
struct Inner {
    faults: VecDeque<Fault>,
    unregistered: HashSet<String>,
    tokens: HashSet<String>,
    exchanges: usize,
    requests: usize,
    delivered: Vec<Value>,
    refused: Vec<(u16, Value)>,
}

struct Shared {
    inner: Mutex<Inner>,
    public_pem: Mutex<Option<(Vec<u8>, String)>>,
    project: String,
    token_uri: String,
}

/// The server. Dropping it stops it.
pub struct FakeFcm {
    /// The base URL (`http://127.0.0.1:PORT`): FCM's endpoint.
    pub url: String,
    /// The OAuth2 token endpoint (`{url}/token`), the key's `token_uri`.
    pub token_uri: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeFcm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeFcm {
    /// Starts a server for `project` on a free loopback port. Call
    /// [`trust`](Self::trust) with the service account before the notifier starts.
    pub async fn start(project: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let token_uri = format!("{url}/token");
        let shared = Arc::new(Shared {
            inner: Mutex::default(),
            public_pem: Mutex::new(None),
            project: project.to_owned(),
            token_uri: token_uri.clone(),
        });
        let router = Router::new()
            .route("/token", post(exchange))
            .route("/v1/projects/{project}/messages:send", post(send))
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            url,
            token_uri,
            shared,
            task,
        }
    }

    /// Accepts assertions signed by `account`.
    pub fn trust(&self, account: &ServiceAccount) {
        *self.shared.public_pem.lock().expect("lock") =
            Some((account.public_pem.clone(), account.client_email.clone()));
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next sends get `faults`, in order (then success).
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.inner().faults.extend(faults);
    }

    /// Every send to `device` gets 404 `UNREGISTERED`.
    pub fn unregister(&self, device: &str) {
        self.inner().unregistered.insert(device.to_owned());
    }

    /// The messages accepted, in order.
    pub fn delivered(&self) -> Vec<Value> {
        self.inner().delivered.clone()
    }

    /// The messages refused, with the status given.
    pub fn refused(&self) -> Vec<(u16, Value)> {
        self.inner().refused.clone()
    }

    /// How many access tokens were issued.
    pub fn exchanges(&self) -> usize {
        self.inner().exchanges
    }

    /// How many send requests arrived (accepted or not).
    pub fn requests(&self) -> usize {
        self.inner().requests
    }

    /// How many times each collapse key was accepted: what a device would show more
    /// than once if it were above 1 and the device did not collapse.
    pub fn deliveries_by_key(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for message in self.inner().delivered.iter() {
            *counts.entry(collapse_key(message)).or_insert(0) += 1;
        }
        counts
    }
}

/// A message's collapse key: `android.collapse_key`, else its token and data.
pub fn collapse_key(message: &Value) -> String {
    message["android"]["collapse_key"]
        .as_str()
        .map_or_else(|| message.to_string(), str::to_owned)
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

async fn exchange(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "jwt-bearer only",
        );
    }
    let Some(assertion) = form.get("assertion") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "no assertion");
    };
    let Some((pem, email)) = shared.public_pem.lock().expect("lock").clone() else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "no service account trusted",
        );
    };
    let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(&pem) else {
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "bad public key",
        );
    };
    let claims = match verify_assertion(assertion, &key, &email, &shared.token_uri) {
        Ok(claims) => claims,
        Err(why) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &why),
    };
    let scopes = claims["scope"].as_str().unwrap_or_default();
    if !scopes
        .split(' ')
        .any(|s| s == "https://www.googleapis.com/auth/firebase.messaging")
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "firebase.messaging needed",
        );
    }
    let mut inner = shared
        .inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    inner.exchanges += 1;
    let token = format!(
        "ya29.test-{}-{}",
        inner.exchanges,
        uuid::Uuid::now_v7().simple()
    );
    inner.tokens.insert(token.clone());
    Json(json!({ "access_token": token, "expires_in": 3599, "token_type": "Bearer" }))
        .into_response()
}

/// Checks a JWT assertion as Google's token endpoint does: RS256 over the header
/// and claims *as sent* (Google's own client libraries pad their base64; so may
/// others), by the service account, for this endpoint, not expired.
fn verify_assertion(
    assertion: &str,
    key: &jsonwebtoken::DecodingKey,
    issuer: &str,
    audience: &str,
) -> Result<Value, String> {
    use base64::Engine;
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let mut parts = assertion.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a JWT".into());
    };
    let decode = |part: &str| -> Result<Value, String> {
        let bytes = lenient
            .decode(part)
            .map_err(|e| format!("bad base64: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("bad JSON: {e}"))
    };
    if decode(header)?["alg"] != "RS256" {
        return Err("the assertion must be RS256".into());
    }
    let message = format!("{header}.{payload}");
    let signed = jsonwebtoken::crypto::verify(
        signature.trim_end_matches('='),
        message.as_bytes(),
        key,
        jsonwebtoken::Algorithm::RS256,
    )
    .map_err(|e| format!("bad signature: {e}"))?;
    if !signed {
        return Err("bad signature".into());
    }
    let claims = decode(payload)?;
    if claims["iss"] != issuer {
        return Err("another issuer".into());
    }
    if claims["aud"] != audience {
        return Err("another audience".into());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match claims["exp"].as_u64() {
        Some(exp) if exp + 30 >= now => Ok(claims),
        _ => Err("expired or no expiry".into()),
    }
}

fn fcm_error(status: StatusCode, state: &str, message: &str, code: Option<&str>) -> Response {
    let details: Vec<Value> = code
        .map(|c| json!({ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": c }))
        .into_iter()
        .collect();
    let body = json!({ "error": { "code": status.as_u16(), "message": message, "status": state, "details": details } });
    (status, Json(body)).into_response()
}

/// The message's schema: what FCM refuses with 400.
fn check_message(body: &Value) -> Result<&Value, String> {
    let object = body.as_object().ok_or("the body is not an object")?;
    if object
        .keys()
        .any(|k| k != "message" && k != "validate_only")
    {
        return Err("unknown field next to `message`".into());
    }
    let message = body.get("message").ok_or("no `message`")?;
    let fields = message.as_object().ok_or("`message` is not an object")?;
    let known = [
        "token",
        "notification",
        "data",
        "android",
        "apns",
        "webpush",
        "fcm_options",
        "name",
    ];
    if let Some(unknown) = fields.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("unknown field `{unknown}` in message"));
    }
    match message.get("token").and_then(Value::as_str) {
        Some(token) if !token.is_empty() => {}
        _ => return Err("`message.token` must be a non-empty string".into()),
    }
    if let Some(data) = message.get("data") {
        let data = data.as_object().ok_or("`data` is not an object")?;
        if data.values().any(|v| !v.is_string()) {
            return Err("every value of `data` must be a string".into());
        }
    }
    Ok(message)
}

async fn send(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let fault = {
        let mut inner = shared
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.requests += 1;
        if !inner.tokens.contains(&bearer) {
            return fcm_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "bad access token",
                None,
            );
        }
        inner.faults.pop_front()
    };
    if project != shared.project {
        return fcm_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such project", None);
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            return fcm_error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                &e.to_string(),
                None,
            );
        }
    };
    let message = match check_message(&body) {
        Ok(message) => message.clone(),
        Err(why) => {
            shared
                .inner
                .lock()
                .expect("lock")
                .refused
                .push((400, body.clone()));
            return fcm_error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                &why,
                Some("INVALID_ARGUMENT"),
            );
        }
    };
    let device = message["token"].as_str().unwrap_or_default().to_owned();
    let unregistered = || {
        fcm_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Requested entity was not found.",
            Some("UNREGISTERED"),
        )
    };
    let refused = match fault {
        Some(Fault::Unauthorized) => {
            shared.inner.lock().expect("lock").tokens.clear();
            Some(fcm_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "token expired",
                None,
            ))
        }
        Some(Fault::Unregistered) => Some(unregistered()),
        Some(Fault::TooMany(seconds)) => {
            let mut response = fcm_error(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                "quota",
                Some("QUOTA_EXCEEDED"),
            );
            if let Ok(value) = seconds.to_string().parse() {
                response.headers_mut().insert("retry-after", value);
            }
            Some(response)
        }
        Some(Fault::ServerError) => Some(fcm_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error",
            Some("INTERNAL"),
        )),
        Some(Fault::BadRequest) => Some(fcm_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "bad message",
            Some("INVALID_ARGUMENT"),
        )),
        Some(Fault::Slow(wait)) => {
            tokio::time::sleep(wait).await;
            None
        }
        None => None,
    };
    let refused = refused.or_else(|| {
        let gone = shared
            .inner
            .lock()
            .expect("lock")
            .unregistered
            .contains(&device);
        gone.then(unregistered)
    });
    if let Some(response) = refused {
        let status = response.status().as_u16();
        shared
            .inner
            .lock()
            .expect("lock")
            .refused
            .push((status, message));
        return response;
    }
    let mut inner = shared
        .inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    inner.delivered.push(message);
    let name = format!(
        "projects/{}/messages/{}",
        shared.project,
        inner.delivered.len()
    );
    Json(json!({ "name": name })).into_response()
}
