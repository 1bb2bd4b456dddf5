//! Header names (with compact forms) and header views.

use std::fmt;
use std::hash::{Hash, Hasher};

/// A header name. Parsing is case-insensitive and maps compact forms (RFC 3261 7.3.3
/// and extensions) to the long name; [`HeaderName::as_str`] gives the canonical
/// spelling used when serialising. `Other` names compare case-insensitively.
#[derive(Debug, Clone, Eq)]
#[allow(missing_docs)] // the variants are the header names themselves
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    MaxForwards,
    Expires,
    MinExpires,
    ContentLength,
    ContentType,
    Authorization,
    WwwAuthenticate,
    ProxyAuthorization,
    ProxyAuthenticate,
    AuthenticationInfo,
    Allow,
    Accept,
    Supported,
    Require,
    ProxyRequire,
    Unsupported,
    UserAgent,
    Server,
    Route,
    RecordRoute,
    Date,
    /// Any other header, spelled as received (or as the long form of a compact
    /// name this enum has no variant for, e.g. `o` => `Event`).
    Other(String),
}

impl HeaderName {
    /// Parses a header name: case-insensitive, compact forms accepted. Does not check
    /// that `s` is a token (the parser does).
    pub fn parse(s: &str) -> HeaderName {
        HeaderName::known(s.as_bytes()).unwrap_or_else(|| HeaderName::Other(s.to_owned()))
    }

    /// Parses a header name from the wire: `None` unless it is a token.
    #[inline]
    pub(crate) fn from_token(b: &[u8]) -> Option<HeaderName> {
        if let Some(h) = HeaderName::known(b) {
            return Some(h); // equal to a known token, so a token itself
        }
        if b.is_empty() || !b.iter().all(|&c| super::method::is_token_byte(c)) {
            return None;
        }
        // a token is ASCII
        std::str::from_utf8(b)
            .ok()
            .map(|s| HeaderName::Other(s.to_owned()))
    }

    /// The known names (and compact forms of extension names) for `b`, if any.
    #[inline]
    fn known(b: &[u8]) -> Option<HeaderName> {
        use HeaderName as H;
        if b.len() == 1 {
            return Some(match b[0].to_ascii_lowercase() {
                b'v' => H::Via,
                b'f' => H::From,
                b't' => H::To,
                b'i' => H::CallId,
                b'm' => H::Contact,
                b'l' => H::ContentLength,
                b'c' => H::ContentType,
                b'k' => H::Supported,
                b'e' => H::Other("Content-Encoding".into()),
                b's' => H::Other("Subject".into()),
                b'o' => H::Other("Event".into()),
                b'u' => H::Other("Allow-Events".into()),
                b'r' => H::Other("Refer-To".into()),
                b'b' => H::Other("Referred-By".into()),
                b'x' => H::Other("Session-Expires".into()),
                b'a' => H::Other("Accept-Contact".into()),
                b'j' => H::Other("Reject-Contact".into()),
                b'd' => H::Other("Request-Disposition".into()),
                b'y' => H::Other("Identity".into()),
                b'n' => H::Other("Identity-Info".into()),
                _ => return None,
            });
        }
        // (length, first, last) picks the only candidate; one comparison confirms it
        let (&first, &last) = (b.first()?, b.last()?);
        let cand = match (b.len(), first | 0x20, last | 0x20) {
            (3, b'v', b'a') => H::Via,
            (4, b'f', b'm') => H::From,
            (2, b't', b'o') => H::To,
            (7, b'c', b'd') => H::CallId,
            (4, b'c', b'q') => H::CSeq,
            (7, b'c', b't') => H::Contact,
            (12, b'm', b's') => H::MaxForwards,
            (7, b'e', b's') => H::Expires,
            (11, b'm', b's') => H::MinExpires,
            (14, b'c', b'h') => H::ContentLength,
            (12, b'c', b'e') => H::ContentType,
            (13, b'a', b'n') => H::Authorization,
            (16, b'w', b'e') => H::WwwAuthenticate,
            (19, b'p', b'n') => H::ProxyAuthorization,
            (18, b'p', b'e') => H::ProxyAuthenticate,
            (19, b'a', b'o') => H::AuthenticationInfo,
            (5, b'a', b'w') => H::Allow,
            (6, b'a', b't') => H::Accept,
            (9, b's', b'd') => H::Supported,
            (7, b'r', b'e') => H::Require,
            (13, b'p', b'e') => H::ProxyRequire,
            (11, b'u', b'd') => H::Unsupported,
            (10, b'u', b't') => H::UserAgent,
            (6, b's', b'r') => H::Server,
            (5, b'r', b'e') => H::Route,
            (12, b'r', b'e') => H::RecordRoute,
            (4, b'd', b'e') => H::Date,
            _ => return None,
        };
        let canon = cand.as_str().as_bytes();
        // lengths are equal (matched above); compare case-folded through a table
        let same = canon
            .iter()
            .zip(b)
            .all(|(&c, &x)| LOWER[c as usize] == LOWER[x as usize]);
        same.then_some(cand)
    }

    /// Canonical spelling (long form).
    pub fn as_str(&self) -> &str {
        use HeaderName as H;
        match self {
            H::Via => "Via",
            H::From => "From",
            H::To => "To",
            H::CallId => "Call-ID",
            H::CSeq => "CSeq",
            H::Contact => "Contact",
            H::MaxForwards => "Max-Forwards",
            H::Expires => "Expires",
            H::MinExpires => "Min-Expires",
            H::ContentLength => "Content-Length",
            H::ContentType => "Content-Type",
            H::Authorization => "Authorization",
            H::WwwAuthenticate => "WWW-Authenticate",
            H::ProxyAuthorization => "Proxy-Authorization",
            H::ProxyAuthenticate => "Proxy-Authenticate",
            H::AuthenticationInfo => "Authentication-Info",
            H::Allow => "Allow",
            H::Accept => "Accept",
            H::Supported => "Supported",
            H::Require => "Require",
            H::ProxyRequire => "Proxy-Require",
            H::Unsupported => "Unsupported",
            H::UserAgent => "User-Agent",
            H::Server => "Server",
            H::Route => "Route",
            H::RecordRoute => "Record-Route",
            H::Date => "Date",
            H::Other(s) => s,
        }
    }

    /// Same header as `other` (cheaper than `==` for the known names).
    #[inline]
    pub(crate) fn matches(&self, other: &HeaderName) -> bool {
        match self {
            HeaderName::Other(_) => self == other,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }

    /// Headers that may appear only once in a request (RFC 3261 20, table 2);
    /// a second one is a 400.
    pub fn is_single_valued(&self) -> bool {
        use HeaderName as H;
        matches!(
            self,
            H::From | H::To | H::CallId | H::CSeq | H::MaxForwards | H::ContentLength
        )
    }
}

/// ASCII lowercase of every byte (others unchanged).
static LOWER: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).to_ascii_lowercase();
        i += 1;
    }
    t
};

impl PartialEq for HeaderName {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl Hash for HeaderName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        if let HeaderName::Other(s) = self {
            for b in s.bytes() {
                state.write_u8(b.to_ascii_lowercase());
            }
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for HeaderName {
    fn from(s: &str) -> Self {
        HeaderName::parse(s)
    }
}

/// One header of a [`super::Message`], borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header<'a> {
    pub(crate) name: &'a HeaderName,
    pub(crate) value: &'a str,
    pub(crate) raw: Option<&'a [u8]>,
}

impl<'a> Header<'a> {
    /// The header's name.
    pub fn name(&self) -> &'a HeaderName {
        self.name
    }

    /// The value, unfolded (each line fold becomes one space) and trimmed. For a
    /// header whose bytes are not UTF-8 this is a lossy rendering; see [`Header::is_utf8`].
    pub fn value(&self) -> &'a str {
        self.value
    }

    /// False when the received bytes were not UTF-8 (e.g. a Latin-1 display name).
    pub fn is_utf8(&self) -> bool {
        self.raw.is_none()
    }

    /// The value's bytes as received (after unfolding).
    pub fn raw_value(&self) -> &'a [u8] {
        self.raw.unwrap_or(self.value.as_bytes())
    }
}
