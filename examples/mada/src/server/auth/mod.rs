//! Who is asking: bearer JWTs, checked against an HS256 secret, an RS256 public
//! key, or the signing keys an OpenID Connect issuer publishes at its JWKS URL.
//!
//! Only the algorithm the configured key is for is accepted (a token cannot choose
//! to be checked as HS256 with an RSA public key as the secret), `alg: none` never
//! is, the expiry is always checked, and the issuer and audience when configured
//! (they should be, with JWKS: any project of the same identity provider signs with
//! the same keys). The user is the token's `sub`.
//!
//! With Firebase Authentication, for example: JWKS URL
//! `https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com`,
//! issuer `https://securetoken.google.com/PROJECT`, audience `PROJECT`.

mod jwks;

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub use jwks::Jwks;

/// The longest user id (`sub`) accepted.
pub const MAX_USER_CHARS: usize = 128;

/// Why a request is not authenticated. The messages are safe to show the client:
/// they never echo the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization: Bearer` header (or WebSocket init payload).
    #[error("sign in: send `Authorization: Bearer <token>`")]
    Missing,
    /// The token has expired.
    #[error("the token has expired; sign in again")]
    Expired,
    /// The token is malformed, badly signed, for another issuer or audience, or
    /// signed with an algorithm or key this server does not accept.
    #[error("the token is not valid: {0}")]
    Invalid(&'static str),
    /// The signing keys could not be fetched from the issuer.
    #[error("the identity provider's keys cannot be fetched; try again")]
    KeysUnavailable,
}

/// The claims MADA reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user (missing is refused as a missing required claim, not as malformed).
    #[serde(default)]
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issued at, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// The key tokens are checked against.
#[derive(Clone)]
pub enum Keys {
    /// A shared secret (HS256): for demos and tests, and services that mint their
    /// own tokens.
    Hs256(Vec<u8>),
    /// An RSA public key (RS256), PEM.
    Rs256(DecodingKey),
    /// The RS256 keys an issuer publishes at a JWKS URL.
    Jwks(Jwks),
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hs256(_) => f.write_str("Hs256(<secret>)"),
            Self::Rs256(_) => f.write_str("Rs256(<public key>)"),
            Self::Jwks(jwks) => f.debug_tuple("Jwks").field(jwks).finish(),
        }
    }
}

/// Checks bearer tokens and says whose they are.
#[derive(Debug, Clone)]
pub struct Authenticator {
    keys: Keys,
    /// The one algorithm the keys are for.
    algorithm: Algorithm,
    validation: Validation,
}

impl Authenticator {
    /// Checks tokens against `keys`; `issuer` and `audience`, when given, must match
    /// the `iss` and `aud` claims.
    pub fn new(keys: Keys, issuer: Option<&str>, audience: Option<&str>) -> Self {
        let algorithm = match keys {
            Keys::Hs256(_) => Algorithm::HS256,
            Keys::Rs256(_) | Keys::Jwks(_) => Algorithm::RS256,
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".into());
        }
        match audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        Self {
            keys,
            algorithm,
            validation,
        }
    }

    /// An HS256 authenticator with `secret`.
    pub fn hs256(secret: &[u8]) -> Self {
        Self::new(Keys::Hs256(secret.to_vec()), None, None)
    }

    /// An RS256 authenticator with the PEM public key `pem`.
    ///
    /// # Errors
    /// The key is not an RSA public key in PEM.
    pub fn rs256(pem: &[u8], issuer: Option<&str>, audience: Option<&str>) -> Result<Self, String> {
        let key = DecodingKey::from_rsa_pem(pem).map_err(|e| format!("RS256 public key: {e}"))?;
        Ok(Self::new(Keys::Rs256(key), issuer, audience))
    }

    /// The user `token` (without `Bearer `) was issued to.
    ///
    /// # Errors
    /// See [`AuthError`].
    pub async fn user(&self, token: &str) -> Result<String, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid("not a signed JWT"))?;
        if header.alg != self.algorithm {
            return Err(AuthError::Invalid(
                "signed with an algorithm this server does not accept",
            ));
        }
        let claims = match &self.keys {
            Keys::Hs256(secret) => self.decode(token, &DecodingKey::from_secret(secret))?,
            Keys::Rs256(key) => self.decode(token, key)?,
            Keys::Jwks(jwks) => {
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or(AuthError::Invalid("no key id (kid)"))?;
                let key = jwks.key(kid).await?;
                self.decode(token, &key)?
            }
        };
        let user = claims.sub;
        if user.is_empty()
            || user.chars().count() > MAX_USER_CHARS
            || user.chars().any(char::is_control)
        {
            return Err(AuthError::Invalid("the subject is not a user id"));
        }
        Ok(user)
    }

    fn decode(&self, token: &str, key: &DecodingKey) -> Result<Claims, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => Err(match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature => AuthError::Invalid("bad signature"),
                ErrorKind::InvalidIssuer => AuthError::Invalid("another issuer"),
                ErrorKind::InvalidAudience => AuthError::Invalid("another audience"),
                ErrorKind::MissingRequiredClaim(_) => {
                    AuthError::Invalid("a required claim is missing")
                }
                ErrorKind::ImmatureSignature => AuthError::Invalid("not valid yet"),
                ErrorKind::InvalidAlgorithm => {
                    AuthError::Invalid("signed with an algorithm this server does not accept")
                }
                _ => AuthError::Invalid("malformed"),
            }),
        }
    }
}

/// An HS256 token for `user`, valid for `ttl`: what `mada token` prints.
///
/// # Errors
/// Signing failed (it does not with a non-empty secret).
pub fn hs256_token(secret: &[u8], user: &str, ttl: Duration) -> Result<String, String> {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: user.to_owned(),
        exp: now + ttl.as_secs(),
        iat: Some(now),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| format!("signing the token: {e}"))
}
