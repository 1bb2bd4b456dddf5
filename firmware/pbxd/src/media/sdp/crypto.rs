//! SDES: the `a=crypto` attribute (RFC 4568 sec. 9.1) and the SRTP policy of a leg.
//!
//! ```text
//! a=crypto:<tag> <crypto-suite> inline:<base64 key||salt>[|<lifetime>][|<MKI>:<length>] [<session-params>]
//! ```
//! We take the two AES-CM-128 suites of [`Suite`], one key per line, an optional lifetime
//! (`2^31` or a number: calls never get near it), and the session parameter `WSH=`
//! (a replay window hint we may ignore). MKI, several keys per line, key derivation rates
//! (`KDR=`) and the `UNENCRYPTED_*`/`UNAUTHENTICATED_*` parameters are refused with a
//! [`CryptoError`] that says which: pbxd does not implement them, and guessing would give
//! a call with no audio.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::reason_safe;
use crate::media::srtp::{MasterKey, Suite, KEY_SALT_LEN};

/// Which SRTP the box offers on a leg: the global `--srtp` setting today, a trunk's own
/// setting later (the same value goes into [`LocalSrtp::mode`]).
///
/// Answers follow the peer: an offer with `RTP/SAVP` (or `RTP/AVP` with `a=crypto`, best
/// effort) and a supported suite gets SRTP whatever the mode; only `Mandatory` also
/// refuses a plain offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SrtpMode {
    /// Plain RTP offers (`RTP/AVP`, no `a=crypto`).
    #[default]
    Off,
    /// Best effort: `RTP/AVP` with `a=crypto`. A peer that answers with a crypto line
    /// gets SRTP, one that ignores it gets plain RTP.
    Optional,
    /// `RTP/SAVP` with `a=crypto`; a plain answer, or a plain offer, is refused (488).
    Mandatory,
}

impl SrtpMode {
    /// The configuration word (`off`, `optional`, `mandatory`).
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpMode::Off => "off",
            SrtpMode::Optional => "optional",
            SrtpMode::Mandatory => "mandatory",
        }
    }
}

impl fmt::Display for SrtpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SrtpMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [SrtpMode::Off, SrtpMode::Optional, SrtpMode::Mandatory]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("SRTP mode must be off, optional or mandatory, not {s:?}"))
    }
}

/// Our SRTP side of one leg: the policy and our master key, used in every offer and
/// answer on the leg (so re-INVITEs keep the key and the relay its counters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSrtp {
    /// What we offer.
    pub mode: SrtpMode,
    /// The key we send with (it goes into our `a=crypto`).
    pub key: MasterKey,
}

impl LocalSrtp {
    /// `mode` with a fresh key from the CSPRNG.
    pub fn new(mode: SrtpMode) -> LocalSrtp {
        LocalSrtp {
            mode,
            key: MasterKey::random(),
        }
    }
}

impl Default for LocalSrtp {
    /// Mode off (a fresh key all the same: a peer offering SRTP still gets it).
    fn default() -> Self {
        LocalSrtp::new(SrtpMode::Off)
    }
}

/// The SRTP keys a leg negotiated, for the relay: the suite, the key we protect with and
/// the peer's key we unprotect with. `Debug` shows no key bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The suite both sides use.
    pub suite: Suite,
    /// Our key (what we send).
    pub send: MasterKey,
    /// The peer's key (what we receive).
    pub recv: MasterKey,
}

/// One valid `a=crypto` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoAttr {
    /// The tag an answer must echo.
    pub tag: u32,
    /// The suite.
    pub suite: Suite,
    /// Master key and salt.
    pub key: MasterKey,
}

impl CryptoAttr {
    /// Parses the value of an `a=crypto` attribute (after `crypto:`).
    pub fn parse(value: &str) -> Result<CryptoAttr, CryptoError> {
        let mut fields = value.split_ascii_whitespace();
        let (Some(tag), Some(suite), Some(key_params)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(CryptoError::Syntax);
        };
        if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CryptoError::Syntax);
        }
        let tag: u32 = tag.parse().map_err(|_| CryptoError::Syntax)?;
        let suite =
            Suite::from_name(suite).ok_or_else(|| CryptoError::UnknownSuite(reason_safe(suite)))?;
        for p in fields {
            let name = p.split('=').next().unwrap_or(p);
            if !name.eq_ignore_ascii_case("WSH") {
                return Err(CryptoError::SessionParam(reason_safe(name)));
            }
        }
        if key_params.contains(';') {
            return Err(CryptoError::SeveralKeys);
        }
        let Some(info) = key_params
            .split_once(':')
            .filter(|(m, _)| m.eq_ignore_ascii_case("inline"))
            .map(|(_, info)| info)
        else {
            return Err(CryptoError::KeyMethod);
        };
        let mut parts = info.split('|');
        let b64 = parts.next().unwrap_or_default();
        for extra in parts {
            if extra.contains(':') {
                return Err(CryptoError::Mki);
            }
            let digits = extra.strip_prefix("2^").unwrap_or(extra);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(CryptoError::Syntax);
            }
        }
        let bytes = STANDARD.decode(b64).map_err(|_| CryptoError::Base64)?;
        if bytes.len() != KEY_SALT_LEN {
            return Err(CryptoError::KeyLength(bytes.len()));
        }
        let key = MasterKey::from_bytes(&bytes).map_err(|_| CryptoError::KeyLength(bytes.len()))?;
        Ok(CryptoAttr { tag, suite, key })
    }

    /// The attribute value we write: `<tag> <suite> inline:<base64>`.
    pub fn to_value(&self) -> String {
        format!(
            "{} {} inline:{}",
            self.tag,
            self.suite,
            STANDARD.encode(self.key.as_bytes())
        )
    }
}

/// Why an `a=crypto` line is not usable. The text fits a SIP reason phrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Not `<tag> <suite> <key-params>`.
    #[error("SRTP: malformed a=crypto")]
    Syntax,
    /// A suite we do not implement.
    #[error("SRTP: crypto suite {0} not supported")]
    UnknownSuite(String),
    /// A key method other than `inline`.
    #[error("SRTP: key method not inline")]
    KeyMethod,
    /// The key is not base64.
    #[error("SRTP: key not base64")]
    Base64,
    /// The key and salt are not 30 bytes.
    #[error("SRTP: key and salt of {0} bytes, need 30")]
    KeyLength(usize),
    /// A master key identifier.
    #[error("SRTP: MKI not supported")]
    Mki,
    /// More than one key in a line (only useful with MKI).
    #[error("SRTP: several keys per crypto line not supported")]
    SeveralKeys,
    /// A session parameter we do not implement.
    #[error("SRTP: session parameter {0} not supported")]
    SessionParam(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4568 sec. 9.1's key, here without its MKI.
    const RFC_KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

    #[test]
    fn parses_rfc4568_lines_and_writes_them_back() {
        let line = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|2^20");
        let c = CryptoAttr::parse(&line).unwrap();
        assert_eq!((c.tag, c.suite), (1, Suite::AesCm128HmacSha1_80));
        assert_eq!(
            c.to_value(),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}")
        );
        let c = CryptoAttr::parse(&format!(
            "2 AES_CM_128_HMAC_SHA1_32 inline:{RFC_KEY} WSH=128"
        ))
        .unwrap();
        assert_eq!((c.tag, c.suite), (2, Suite::AesCm128HmacSha1_32));
        assert_eq!(CryptoAttr::parse(&c.to_value()).unwrap(), c);
    }

    #[test]
    fn refuses_what_we_do_not_implement_with_a_reason() {
        struct Case {
            line: String,
            err: CryptoError,
        }
        let cases = [
            Case {
                // RFC 4568 sec. 9.1's own example carries an MKI.
                line: format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|2^20|1:4"),
                err: CryptoError::Mki,
            },
            Case {
                line: format!("1 AES_256_CM_HMAC_SHA1_80 inline:{RFC_KEY}"),
                err: CryptoError::UnknownSuite("AES_256_CM_HMAC_SHA1_80".into()),
            },
            Case {
                line: "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA".into(),
                err: CryptoError::KeyLength(3),
            },
            Case {
                line: "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64".into(),
                err: CryptoError::Base64,
            },
            Case {
                line: format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY} UNENCRYPTED_SRTP"),
                err: CryptoError::SessionParam("UNENCRYPTED_SRTP".into()),
            },
            Case {
                line: format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY} KDR=1"),
                err: CryptoError::SessionParam("KDR".into()),
            },
            Case {
                line: format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY};inline:{RFC_KEY}"),
                err: CryptoError::SeveralKeys,
            },
            Case {
                line: format!("1 AES_CM_128_HMAC_SHA1_80 uri:{RFC_KEY}"),
                err: CryptoError::KeyMethod,
            },
            Case {
                line: "x AES_CM_128_HMAC_SHA1_80".into(),
                err: CryptoError::Syntax,
            },
            Case {
                line: format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|2^x"),
                err: CryptoError::Syntax,
            },
        ];
        for c in cases {
            assert_eq!(CryptoAttr::parse(&c.line), Err(c.err), "{}", c.line);
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(line in "[ -~]{0,120}") {
            let _ = CryptoAttr::parse(&line);
        }
    }

    #[test]
    fn modes_parse_from_the_config_word() {
        assert_eq!("Optional".parse::<SrtpMode>(), Ok(SrtpMode::Optional));
        assert_eq!("mandatory".parse::<SrtpMode>(), Ok(SrtpMode::Mandatory));
        assert!("on".parse::<SrtpMode>().is_err());
        assert_eq!(SrtpMode::default(), SrtpMode::Off);
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        let c = CryptoAttr::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}")).unwrap();
        let text = format!("{c:?} {:?}", LocalSrtp::new(SrtpMode::Optional));
        assert!(
            !text.contains(RFC_KEY) && text.contains("MasterKey(..)"),
            "{text}"
        );
    }
}
