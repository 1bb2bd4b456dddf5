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
        use HeaderName as H;
        let b = s.as_bytes();
        if b.len() == 1 {
            return match b[0].to_ascii_lowercase() {
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
                _ => H::Other(s.to_owned()),
            };
        }
        // lowercase into a stack buffer, then one `match` on the bytes
        let mut low = [0u8; 20];
        let Some(dst) = low.get_mut(..b.len()) else {
            return H::Other(s.to_owned());
        };
        for (d, c) in dst.iter_mut().zip(b) {
            *d = c.to_ascii_lowercase();
        }
        match &*dst {
            b"via" => H::Via,
            b"from" => H::From,
            b"to" => H::To,
            b"call-id" => H::CallId,
            b"cseq" => H::CSeq,
            b"contact" => H::Contact,
            b"max-forwards" => H::MaxForwards,
            b"expires" => H::Expires,
            b"min-expires" => H::MinExpires,
            b"content-length" => H::ContentLength,
            b"content-type" => H::ContentType,
            b"authorization" => H::Authorization,
            b"www-authenticate" => H::WwwAuthenticate,
            b"proxy-authorization" => H::ProxyAuthorization,
            b"proxy-authenticate" => H::ProxyAuthenticate,
            b"authentication-info" => H::AuthenticationInfo,
            b"allow" => H::Allow,
            b"accept" => H::Accept,
            b"supported" => H::Supported,
            b"require" => H::Require,
            b"proxy-require" => H::ProxyRequire,
            b"unsupported" => H::Unsupported,
            b"user-agent" => H::UserAgent,
            b"server" => H::Server,
            b"route" => H::Route,
            b"record-route" => H::RecordRoute,
            b"date" => H::Date,
            _ => H::Other(s.to_owned()),
        }
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

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (HeaderName::Other(_), _) | (_, HeaderName::Other(_)) => false,
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
