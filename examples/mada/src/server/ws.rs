//! `GET /graphql/ws`: subscriptions over WebSocket, signed in by the
//! `connection_init` payload, at most [`ServerConfig::sockets_per_user`] live
//! connections per user.
//!
//! [`ServerConfig::sockets_per_user`]: super::ServerConfig::sockets_per_user

use std::sync::Arc;

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::response::Response;
use uuid::Uuid;

use super::AppState;
use super::auth::AuthError;
use super::graphql::{Caller, Code, coded};
use super::http::bearer;

/// A user's slot among their live connections, given back when the connection ends.
struct Slot {
    state: Arc<AppState>,
    user: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut sockets = self.state.sockets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = sockets.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                sockets.remove(&self.user);
            }
        }
    }
}

pub(super) async fn upgrade(
    State(state): State<Arc<AppState>>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let schema = state.schema.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| connect(state, payload))
                .serve()
        })
}

async fn connect(state: Arc<AppState>, payload: serde_json::Value) -> async_graphql::Result<Data> {
    let token = payload
        .get("authorization")
        .or_else(|| payload.get("Authorization"))
        .and_then(|v| v.as_str())
        .and_then(bearer)
        .or_else(|| payload.get("token").and_then(|v| v.as_str()));
    let refused = |error: AuthError| {
        let code = match error {
            AuthError::KeysUnavailable => Code::Unavailable,
            _ => Code::Unauthenticated,
        };
        coded(code, format!("{}: {error}", code.as_str()))
    };
    let user = state
        .auth
        .user(token.ok_or(AuthError::Missing).map_err(refused)?)
        .await
        .map_err(refused)?;
    {
        let limit = state.config.sockets_per_user;
        let mut sockets = state.sockets.lock().unwrap_or_else(|e| e.into_inner());
        let live = sockets.entry(user.clone()).or_insert(0);
        if *live >= limit {
            let message = format!("LIMIT: at most {limit} live connections per user");
            return Err(coded(Code::Limit, message));
        }
        *live += 1;
    }
    let mut data = Data::default();
    data.insert(Slot {
        state: Arc::clone(&state),
        user: user.clone(),
    });
    data.insert(Caller {
        user,
        correlation: Uuid::now_v7(),
        device: None,
    });
    Ok(data)
}
