//! Connecting: a pool that reports a refused connection at once, with the URL's
//! password hidden.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::error::PgError;

/// How long the first connection may take before [`connect_pool`] gives up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Parses `url` into connection options.
pub(crate) fn options(url: &str) -> Result<PgConnectOptions, PgError> {
    PgConnectOptions::from_str(url).map_err(|source| PgError::Connect {
        url: cqrs_core::redact_url(url),
        source,
    })
}

/// A pool of up to `max_connections` connections to the server `options` name.
///
/// It opens one connection first, so that an unreachable server is reported at once
/// with the driver's reason (`connection refused`, a failed authentication), not as
/// a pool timeout after ten seconds; at most [`CONNECT_TIMEOUT`].
///
/// # Errors
/// [`PgError::Connect`], naming the server without its password.
pub async fn connect_pool(
    options: PgConnectOptions,
    max_connections: u32,
) -> Result<PgPool, PgError> {
    let url = redacted(&options);
    let fail = |source| PgError::Connect {
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
    // The probe only checks that the server answers; the pool opens its own.
    let _ = probe.close().await;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(fail)
}

/// `user@host:port/database` of `options`: what a message may show.
fn redacted(options: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    )
}
