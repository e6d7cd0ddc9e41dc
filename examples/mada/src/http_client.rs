//! The HTTP client MADA uses to reach other services (an identity provider's keys):
//! rustls on `ring` with the Mozilla root certificates compiled in, so it needs no
//! system certificate store and no C toolchain.

use std::sync::Arc;
use std::time::Duration;

/// A client with `timeout` for each whole request (and at most 5 s to connect).
///
/// # Errors
/// The TLS configuration could not be built (it can with the compiled-in roots).
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    builder(timeout)?
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// The builder of [`client`], for callers that change more (its connection pool,
/// for example).
///
/// # Errors
/// The TLS configuration could not be built (it can with the compiled-in roots).
pub fn builder(timeout: Duration) -> Result<reqwest::ClientBuilder, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        .user_agent(concat!("mada/", env!("CARGO_PKG_VERSION"))))
}
