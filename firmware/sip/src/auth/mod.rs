//! Digest authentication for SIP (RFC 3261 sec. 22, RFC 7616 with RFC 8760 algorithms,
//! RFC 2617 and RFC 2069 compatible): `qop=auth` with MD5 and SHA-256.
//!
//! - Header values: [`Challenge`] (`WWW-Authenticate`/`Proxy-Authenticate`) and
//!   [`Credentials`] (`Authorization`/`Proxy-Authorization`) parse from and display to
//!   the header *value* (`Digest realm="..", ...`).
//! - Arithmetic: [`ha1`], [`response`], [`response_rfc2069`].
//! - Server side: [`NonceManager`] issues HMAC-bound nonces and tracks nonce counts;
//!   [`challenge`] builds the header value; [`verify`] checks credentials against a
//!   stored HA1 (the registrar never holds clear passwords).
//! - Client side: [`select_challenge`] and [`authorize`].
//!
//! A server round, as the registrar runs it:
//! ```
//! use pbx_sip::auth::{self, Algorithm, Credentials, NonceCheck, NonceManager};
//! use std::time::Duration;
//!
//! let mut nonces = NonceManager::new([7; 32], Duration::from_secs(300));
//! let now = 1_700_000_000; // Unix seconds, passed in by the shell
//! let nonce = nonces.issue(now);
//! // 401 with SHA-256 first, then MD5 (RFC 8760: most preferred first).
//! let sha = auth::challenge("pbx", Algorithm::Sha256, &nonce, None, false);
//! let _md5 = auth::challenge("pbx", Algorithm::Md5, &nonce, None, false);
//!
//! // The phone answers (here: our own client side).
//! let chal = auth::select_challenge([sha.as_str()]).expect("supported");
//! let header = auth::authorize(&chal, "REGISTER", "sip:pbx", "201", "secret", "abc", 1)?;
//!
//! // The registrar checks the response against the stored HA1, then the nonce.
//! let creds = Credentials::parse(&header)?;
//! let stored_ha1 = auth::ha1(Algorithm::Sha256, "201", "pbx", "secret");
//! assert!(auth::verify(&creds, "REGISTER", &stored_ha1));
//! assert_eq!(nonces.check(&creds.nonce, creds.nc.unwrap_or(0), now + 1), NonceCheck::Valid);
//! // The same request again is a replay.
//! assert_eq!(nonces.check(&creds.nonce, creds.nc.unwrap_or(0), now + 2), NonceCheck::Replay);
//! # Ok::<(), pbx_sip::auth::AuthError>(())
//! ```

mod digest;
mod header;
mod nonce;
mod params;

pub use digest::{authorize, challenge, ha1, response, response_rfc2069, select_challenge, verify};
pub use header::{Challenge, Credentials};
pub use nonce::{NonceCheck, NonceManager, DEFAULT_MAX_TRACKED};

use std::fmt;

/// Why a digest header value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The value is empty: no auth scheme.
    #[error("missing auth scheme")]
    MissingScheme,
    /// A scheme other than `Digest` (e.g. `Basic`, which SIP forbids).
    #[error("unsupported auth scheme {0:?}")]
    UnsupportedScheme(String),
    /// Malformed auth-param list; the byte offset where parsing stopped.
    #[error("malformed auth-param list at byte {0}")]
    Syntax(usize),
    /// A quoted-string without its closing quote.
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    /// A parameter given twice.
    #[error("duplicate parameter {0:?}")]
    DuplicateParam(String),
    /// A parameter the header needs is missing.
    #[error("missing parameter {0:?}")]
    MissingParam(&'static str),
    /// A parameter value out of its grammar (e.g. `nc=xyz`).
    #[error("invalid value {value:?} for parameter {name:?}")]
    InvalidParam {
        /// The parameter name.
        name: &'static str,
        /// The offending value.
        value: String,
    },
    /// An algorithm we do not implement (`MD5-sess`, `SHA-512-256`, ...).
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The challenge offers only qop values we do not implement (`auth-int`).
    #[error("no supported qop in {0:?}")]
    UnsupportedQop(String),
}

/// Digest hash algorithm (RFC 7616 sec. 3.2; SIP: RFC 8760).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// `MD5`, the default when `algorithm` is absent.
    #[default]
    Md5,
    /// `SHA-256`.
    Sha256,
}

impl Algorithm {
    /// The token as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Parses the `algorithm` token, case-insensitively. `-sess` variants are rejected.
    pub fn from_token(token: &str) -> Result<Self, AuthError> {
        if token.eq_ignore_ascii_case("MD5") {
            Ok(Algorithm::Md5)
        } else if token.eq_ignore_ascii_case("SHA-256") {
            Ok(Algorithm::Sha256)
        } else {
            Err(AuthError::UnsupportedAlgorithm(token.to_owned()))
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
