//! `POST /graphql`: authenticate, parse, execute within the time limit.

use std::sync::Arc;

use async_graphql::ServerError;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;
use uuid::Uuid;

use super::AppState;
use super::auth::AuthError;
use super::graphql::{Caller, Code};

/// The header naming the device a request comes from.
pub(super) const DEVICE: &str = "x-mada-device";

/// The header carrying the correlation id.
pub(super) const REQUEST_ID: &str = "x-request-id";

/// The request's correlation id: the client's if it is a UUID, a new one otherwise.
pub(super) fn correlation_id(headers: &HeaderMap) -> Uuid {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(Uuid::now_v7)
}

/// The bearer token of `Authorization`.
pub(super) fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A GraphQL-shaped error reply.
pub(super) fn error_reply(status: StatusCode, code: Code, message: impl Into<String>) -> Response {
    let body = serde_json::json!({
        "data": null,
        "errors": [{ "message": message.into(), "extensions": { "code": code.as_str() } }],
    });
    let mut response = (status, axum::Json(body)).into_response();
    if code == Code::Unauthenticated {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The reply for an authentication failure.
pub(super) fn auth_reply(error: &AuthError) -> Response {
    match error {
        AuthError::KeysUnavailable => error_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::Unavailable,
            error.to_string(),
        ),
        _ => error_reply(
            StatusCode::UNAUTHORIZED,
            Code::Unauthenticated,
            error.to_string(),
        ),
    }
}

/// Whether `request` runs a mutation (a query that does not parse is not: the
/// schema reports it).
fn is_mutation(request: &async_graphql::Request) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    let is = |ty: OperationType| ty == OperationType::Mutation;
    match (&document.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => is(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => {
            ops.get(name).is_some_and(|op| is(op.node.ty))
        }
        (DocumentOperations::Multiple(_), None) => false,
    }
}

/// The read role's way to the write role.
///
/// Each forwarded mutation opens a connection of its own (no keep-alive): a write
/// replica that is stopping closes its idle connections, and a mutation sent on one
/// at that moment would fail with no way to tell whether it ran. A new connection
/// goes to a replica the Service still lists, so a rolling restart of the write
/// role fails no mutation (the failover drill shows it). The cost is one TCP
/// connect per mutation, inside the cluster. A connection that cannot be made is
/// tried once more (nothing was sent).
pub(super) struct Forward {
    http: reqwest::Client,
    url: String,
}

impl Forward {
    pub(super) fn new(base: &str, timeout: std::time::Duration) -> Result<Self, String> {
        Ok(Self {
            http: crate::http_client::builder(timeout)?
                .pool_max_idle_per_host(0)
                .build()
                .map_err(|e| format!("HTTP client: {e}"))?,
            url: format!("{}/graphql", base.trim_end_matches('/')),
        })
    }

    /// Posts the request as it came (its token, device and correlation id) and
    /// returns the write role's answer as it is.
    async fn send(
        &self,
        body: axum::body::Bytes,
        headers: &HeaderMap,
        correlation: Uuid,
    ) -> Response {
        let request = || {
            let mut request = self
                .http
                .post(&self.url)
                .header(header::CONTENT_TYPE, "application/json")
                .header(REQUEST_ID, correlation.to_string())
                .body(body.clone());
            for name in [header::AUTHORIZATION.as_str(), DEVICE] {
                if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
                    request = request.header(name, value);
                }
            }
            request
        };
        let sent = match request().send().await {
            Err(error) if error.is_connect() => {
                tracing::warn!(%correlation, %error, "the write service refused; trying once more");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                request().send().await
            }
            sent => sent,
        };
        let reply = match sent {
            Ok(reply) => reply,
            Err(error) => {
                tracing::error!(%correlation, %error, "the write service cannot be reached");
                let message =
                    format!("the service is unavailable; try again (correlation id {correlation})");
                return error_reply(StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable, message);
            }
        };
        let status =
            StatusCode::from_u16(reply.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let bytes = reply.bytes().await.unwrap_or_default();
        let mut response = (status, bytes).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// Gives every error the schema's own validation raised a code.
fn code_errors(errors: &mut [ServerError]) {
    for error in errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            let code = match error.message.as_str() {
                "Query is too complex." | "Query is nested too deep." => Code::Limit,
                _ => Code::BadRequest,
            };
            extensions.set("code", code.as_str());
        }
    }
}

pub(super) async fn graphql(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let correlation = correlation_id(&headers);
    let span = tracing::info_span!("request", %correlation, user = tracing::field::Empty);
    let mut response = handle(&state, &headers, body, correlation)
        .instrument(span)
        .await;
    if let Ok(value) = HeaderValue::from_str(&correlation.to_string()) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

async fn handle(state: &AppState, headers: &HeaderMap, body: Body, correlation: Uuid) -> Response {
    let limit = state.config.body_limit;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(error) => {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return if too_large {
                let message = format!("the request body is larger than {limit} bytes");
                error_reply(StatusCode::PAYLOAD_TOO_LARGE, Code::Limit, message)
            } else {
                error_reply(
                    StatusCode::BAD_REQUEST,
                    Code::BadRequest,
                    "the request body could not be read",
                )
            };
        }
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    let user = match token {
        None => return auth_reply(&AuthError::Missing),
        Some(token) => match state.auth.user(token).await {
            Ok(user) => user,
            Err(error) => {
                tracing::info!(%error, "unauthenticated request");
                return auth_reply(&error);
            }
        },
    };
    tracing::Span::current().record("user", user.as_str());
    let request: async_graphql::Request = match serde_json::from_slice(&bytes) {
        Ok(request) => request,
        Err(error) => {
            let message = format!("the body is not a GraphQL request in JSON: {error}");
            return error_reply(StatusCode::BAD_REQUEST, Code::BadRequest, message);
        }
    };
    let device = headers
        .get(DEVICE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|d| !d.is_empty() && d.len() <= crate::domain::MAX_TOKEN_CHARS)
        .map(str::to_owned);
    if let Some(forward) = &state.forward
        && is_mutation(&request)
    {
        return forward.send(bytes, headers, correlation).await;
    }
    let request = request.data(Caller {
        user,
        correlation,
        device,
    });
    let timeout = state.config.request_timeout;
    let mut response = match tokio::time::timeout(timeout, state.schema.execute(request)).await {
        Ok(response) => response,
        Err(_) => {
            let message = format!("the request took longer than {} s", timeout.as_secs_f32());
            return error_reply(StatusCode::SERVICE_UNAVAILABLE, Code::Timeout, message);
        }
    };
    code_errors(&mut response.errors);
    tracing::debug!(errors = response.errors.len(), "request answered");
    axum::Json(response).into_response()
}
