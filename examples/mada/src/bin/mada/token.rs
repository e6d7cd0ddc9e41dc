//! `mada token`: an HS256 token for `--user`, for demos and scripts.

use std::time::Duration;

use crate::Cli;

/// Prints a token for `--user` signed with `--jwt-secret`, valid `--token-ttl`.
pub(crate) fn print(cli: &Cli) -> Result<String, String> {
    let secret = cli
        .jwt_secret
        .as_deref()
        .ok_or("set --jwt-secret (MADA_JWT_SECRET), the secret the server checks tokens with")?;
    let token = mada::server::auth::hs256_token(
        secret.as_bytes(),
        &cli.user,
        Duration::from_secs(cli.token_ttl),
    )?;
    Ok(format!("{token}\n"))
}
