//! name-addr / addr-spec values (From, To, Contact, Route...), CSeq and Contact lists.

use super::error::{HeaderError, UriError};
use super::header::HeaderName;
use super::lex::{
    find, header_params, is_token, quoted_string, split_list, trim_start_ws, trim_ws, write_quoted,
};
use super::method::Method;
use super::params::Params;
use super::uri::Uri;
use std::fmt;

/// `[display-name] <URI> *(;param)` or `addr-spec *(;param)`. For an addr-spec
/// (no angle brackets) every `;param` belongs to the header, not the URI
/// (RFC 3261 20.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted and unescaped.
    pub display_name: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters (`tag`, `expires`, `q`, ...).
    pub params: Params,
}

/// Why a name-addr did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameAddrError {
    /// The URI is malformed.
    #[error("malformed URI: {0}")]
    Uri(#[from] UriError),
    /// Anything else; says what.
    #[error("{0}")]
    Syntax(&'static str),
}

impl NameAddr {
    /// A name-addr without display name or parameters.
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display_name: None,
            uri,
            params: Params::new(),
        }
    }

    /// Parses one value (not a comma list).
    pub fn parse(s: &str) -> Result<NameAddr, NameAddrError> {
        use NameAddrError::Syntax;
        let s = trim_ws(s);
        let (display_name, rest) = if s.starts_with('"') {
            let (d, rest) = quoted_string(s).ok_or(Syntax("unterminated quoted display name"))?;
            let rest = trim_start_ws(rest);
            if !rest.starts_with('<') {
                return Err(Syntax("quoted display name without <URI>"));
            }
            (Some(d), rest)
        } else if let Some(lt) = find(s, b'<') {
            let d = trim_ws(&s[..lt]);
            if d.is_empty() {
                (None, &s[lt..])
            } else {
                if !d.split([' ', '\t']).filter(|w| !w.is_empty()).all(is_token) {
                    return Err(Syntax("display name must be tokens or quoted"));
                }
                (Some(d.to_owned()), &s[lt..])
            }
        } else {
            (None, s)
        };
        if let Some(inner) = rest.strip_prefix('<') {
            let gt = find(inner, b'>').ok_or(Syntax("missing >"))?;
            let uri = Uri::parse(&inner[..gt])?;
            let params = header_params(&inner[gt + 1..]).map_err(Syntax)?;
            Ok(NameAddr {
                display_name,
                uri,
                params,
            })
        } else {
            let end = rest
                .bytes()
                .position(|b| matches!(b, b';' | b' ' | b'\t'))
                .unwrap_or(rest.len());
            if rest[..end].bytes().any(|b| b == b'?' || b == b',') {
                // RFC 3261 20: such URIs must be enclosed in <> (RFC 4475 regbadct)
                return Err(Syntax("URI with ? or , outside <>"));
            }
            let uri = Uri::parse(&rest[..end])?;
            let params = header_params(&rest[end..]).map_err(Syntax)?;
            Ok(NameAddr {
                display_name,
                uri,
                params,
            })
        }
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }

    /// A header parameter: `None` absent, `Some(None)` present without value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params.get(name)
    }
}

/// Always writes the `"name" <uri>;params` form.
impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display_name {
            let mut q = String::with_capacity(d.len() + 2);
            write_quoted(&mut q, d);
            write!(f, "{q} ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// The CSeq header: sequence number and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (< 2^31, RFC 3261 8.1.1.5).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(s: &str) -> Result<CSeq, &'static str> {
        let s = trim_ws(s);
        let end = s
            .bytes()
            .position(|b| b == b' ' || b == b'\t')
            .ok_or("missing method")?;
        let num = &s[..end];
        if num.is_empty() || num.len() > 10 || !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err("sequence number is not a number");
        }
        let seq: u64 = num.parse().map_err(|_| "sequence number is not a number")?;
        if seq >= 1 << 31 {
            return Err("sequence number too large");
        }
        let method = Method::parse(trim_ws(&s[end..])).map_err(|_| "invalid method")?;
        Ok(CSeq {
            seq: seq as u32,
            method,
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Contact header(s): `*` (REGISTER removing all bindings) or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// `Contact: *`
    Star,
    /// The contacts in order (empty when there is no Contact header).
    List(Vec<NameAddr>),
}

impl Contacts {
    /// Parses the values of all Contact headers.
    pub(crate) fn parse<'a>(
        values: impl Iterator<Item = Result<&'a str, HeaderError>>,
    ) -> Result<Contacts, HeaderError> {
        let bad = |why| HeaderError::malformed(HeaderName::Contact, why);
        let mut list = Vec::with_capacity(1);
        let mut star = false;
        for v in values {
            for item in split_list(v?) {
                if item == "*" {
                    star = true;
                } else {
                    match NameAddr::parse(item) {
                        Ok(n) => list.push(n),
                        Err(NameAddrError::Uri(_)) => return Err(bad("malformed URI")),
                        Err(NameAddrError::Syntax(s)) => return Err(bad(s)),
                    }
                }
            }
        }
        match (star, list.is_empty()) {
            (true, true) => Ok(Contacts::Star),
            (true, false) => Err(bad("* mixed with other contacts")),
            (false, _) => Ok(Contacts::List(list)),
        }
    }
}
