//! Connecting: a pool that reports an unreachable server at once, by its URL with
//! the password hidden.

use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{ConnectOptions, Connection, MySqlPool};

use crate::error::MySqlError;

/// The longest wait for the first connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool of up to `max_connections` connections to the server `options` name.
///
/// It opens one connection first, so that an unreachable server is reported at once
/// with the driver's reason (`connection refused`, a failed authentication), not as
/// a pool timeout; at most [`CONNECT_TIMEOUT`].
///
/// # Errors
/// [`MySqlError::Connect`], naming the server without its password.
pub async fn connect_pool(
    options: MySqlConnectOptions,
    max_connections: u32,
) -> Result<MySqlPool, MySqlError> {
    let url = cqrs_core::redact_url(options.to_url_lossy().as_str());
    let fail = |source| MySqlError::Connect {
        url: url.clone(),
        source,
    };
    let probe = tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
        .await
        .map_err(|_| {
            fail(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {CONNECT_TIMEOUT:?}"),
            )))
        })?
        .map_err(fail)?;
    let _ = probe.close().await;
    MySqlPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(fail)
}
