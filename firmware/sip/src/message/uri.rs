//! SIP, SIPS and tel URIs (RFC 3261 19.1, RFC 3966).

use super::error::UriError;
use super::lex::{find, has, split1};
use super::params::Params;
use std::borrow::Cow;
use std::fmt;

/// URI scheme.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:` (RFC 3966)
    Tel,
    /// Any other scheme, lowercased; the URI is kept opaque.
    Other(String),
}

impl Scheme {
    /// The scheme's text without the colon.
    pub fn as_str(&self) -> &str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
            Scheme::Other(s) => s,
        }
    }
}

/// A parsed URI that keeps its raw text. [`fmt::Display`] writes the raw text, so a
/// URI is forwarded exactly as received; the components are %-unescaped for use and
/// comparison ([`Uri::equivalent`]). Setters re-render the raw text.
///
/// For `tel:` URIs the number is in [`Uri::user`] and the host is empty. For other
/// schemes only the raw text and scheme are set.
///
/// Components are spans into the raw text unless they had to be unescaped, so a
/// parse costs one allocation (plus two when there are parameters).
#[derive(Debug, Clone)]
pub struct Uri {
    raw: String,
    scheme: Scheme,
    user: Part,
    password: Part,
    host: Part,
    port: Option<u16>,
    params: Params,
    headers: Vec<(String, String)>,
}

/// A component: absent, a span of the raw text, or an unescaped copy.
#[derive(Debug, Clone)]
enum Part {
    None,
    Raw(u32, u32),
    /// Boxed twice so that `Part` stays two words (URIs are moved around a lot).
    #[allow(clippy::box_collection)]
    Owned(Box<String>),
}

impl Part {
    fn get<'a>(&'a self, raw: &'a str) -> Option<&'a str> {
        match self {
            Part::None => None,
            Part::Raw(a, b) => raw.get(*a as usize..*b as usize),
            Part::Owned(s) => Some(s),
        }
    }

    /// `sub` is a subslice of `base`; keeps a span unless unescaping changes it.
    fn of(base: &str, sub: &str, escaped: bool) -> Part {
        if escaped && has(sub, b'%') {
            Part::Owned(Box::new(unescape(sub).into_owned()))
        } else {
            let (a, b) = span(base, sub);
            Part::Raw(a, b)
        }
    }

    fn owned(&self, raw: &str) -> Part {
        match self.get(raw) {
            None => Part::None,
            Some(s) => Part::Owned(Box::new(s.to_owned())),
        }
    }
}

/// Offsets of `sub` within `base` (`sub` must be a subslice of `base`).
fn span(base: &str, sub: &str) -> (u32, u32) {
    let start = (sub.as_ptr() as usize).saturating_sub(base.as_ptr() as usize);
    (start as u32, (start + sub.len()) as u32)
}

impl PartialEq for Uri {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
            && self.scheme == other.scheme
            && self.user() == other.user()
            && self.password() == other.password()
            && self.host() == other.host()
            && self.port == other.port
            && self.params == other.params
            && self.headers == other.headers
    }
}

impl Eq for Uri {}

impl Uri {
    /// Parses a URI (no surrounding whitespace or angle brackets).
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        if s.is_empty() {
            return Err(UriError::Empty);
        }
        let b = s.as_bytes();
        // fast path for the common schemes, then the general scheme grammar
        let (scheme, colon) = if b.len() > 4 && b[..4].eq_ignore_ascii_case(b"sip:") {
            (Scheme::Sip, 3)
        } else if b.len() > 5 && b[..5].eq_ignore_ascii_case(b"sips:") {
            (Scheme::Sips, 4)
        } else {
            let colon = find(s, b':').ok_or(UriError::NoScheme)?;
            let sb = &b[..colon];
            if sb.is_empty()
                || !sb[0].is_ascii_alphabetic()
                || !sb
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
            {
                return Err(UriError::NoScheme);
            }
            let scheme = if sb.eq_ignore_ascii_case(b"sip") {
                Scheme::Sip
            } else if sb.eq_ignore_ascii_case(b"sips") {
                Scheme::Sips
            } else if sb.eq_ignore_ascii_case(b"tel") {
                Scheme::Tel
            } else {
                Scheme::Other(s[..colon].to_ascii_lowercase())
            };
            (scheme, colon)
        };
        let scan = scan(s)?;
        let rest = &s[colon + 1..];
        let mut uri = Uri {
            raw: String::new(),
            scheme,
            user: Part::None,
            password: Part::None,
            host: Part::Raw(0, 0),
            port: None,
            params: Params::new(),
            headers: Vec::new(),
        };
        match uri.scheme {
            Scheme::Sip | Scheme::Sips => uri.parse_sip(s, rest, &scan)?,
            Scheme::Tel => {
                let (num, params) = split1(rest, b';').unwrap_or((rest, ""));
                if num.is_empty() || !num.bytes().all(is_tel_char) {
                    return Err(UriError::BadTel);
                }
                uri.user = Part::of(s, num, scan.escaped);
                uri.params = uri_params(params, scan.escaped)?;
            }
            Scheme::Other(_) => {
                if rest.is_empty() {
                    return Err(UriError::Empty);
                }
            }
        }
        uri.raw = s.to_owned();
        Ok(uri)
    }

    fn parse_sip(&mut self, s: &str, rest: &str, scan: &Scan) -> Result<(), UriError> {
        // No '@' may appear unescaped after the userinfo (params and headers exclude
        // it), while the user part may hold ';', '?' and ',' (RFC 4475 intmeth).
        let hostpart = match scan.at {
            Some(at) => {
                let userinfo = s.get(s.len() - rest.len()..at).ok_or(UriError::BadChar)?;
                let (user, pass) = match split1(userinfo, b':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (userinfo, None),
                };
                if user.is_empty() {
                    return Err(UriError::BadChar);
                }
                self.user = Part::of(s, user, scan.escaped);
                if let Some(p) = pass {
                    self.password = Part::of(s, p, scan.escaped);
                }
                &s[at + 1..]
            }
            None => rest,
        };
        let (hostpart, hdrs) = split1(hostpart, b'?').unwrap_or((hostpart, ""));
        let (hostport, params) = split1(hostpart, b';').unwrap_or((hostpart, ""));
        let (host, port) = split_host_port(hostport)?;
        let (a, b) = span(s, host);
        self.host = Part::Raw(a, b);
        self.port = port;
        self.params = uri_params(params, scan.escaped)?;
        if !hdrs.is_empty() {
            for h in hdrs.split('&') {
                let (n, v) = split1(h, b'=').ok_or(UriError::BadParam)?;
                if n.is_empty() {
                    return Err(UriError::BadParam);
                }
                self.headers
                    .push((unescape(n).into_owned(), unescape(v).into_owned()));
            }
        }
        Ok(())
    }

    /// A `sip:` URI from parts (the user is escaped as needed; the host must be a
    /// valid host, else the URI renders but will not parse back).
    pub fn sip(user: Option<&str>, host: &str, port: Option<u16>) -> Uri {
        let mut uri = Uri {
            raw: String::new(),
            scheme: Scheme::Sip,
            user: user.map_or(Part::None, |u| Part::Owned(Box::new(u.to_owned()))),
            password: Part::None,
            host: Part::Owned(Box::new(host.to_owned())),
            port,
            params: Params::new(),
            headers: Vec::new(),
        };
        uri.render();
        uri
    }

    /// The raw text as received (or as last rendered by a setter).
    pub fn as_str(&self) -> &str {
        &self.raw
    }
    /// The scheme.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }
    /// User part, %-unescaped (for `tel:`, the number).
    pub fn user(&self) -> Option<&str> {
        self.user.get(&self.raw)
    }
    /// Password, %-unescaped.
    pub fn password(&self) -> Option<&str> {
        self.password.get(&self.raw)
    }
    /// Host as written (IPv6 with brackets); compare with [`Uri::equivalent`] or
    /// lowercase it.
    pub fn host(&self) -> &str {
        self.host.get(&self.raw).unwrap_or("")
    }
    /// Port, if written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// URI parameters, %-unescaped.
    pub fn params(&self) -> &Params {
        &self.params
    }
    /// URI headers (`?name=value&...`), %-unescaped.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
    /// The `transport` parameter, if any.
    pub fn transport(&self) -> Option<&str> {
        self.params.get("transport").flatten()
    }

    /// Sets or adds a URI parameter and re-renders the raw text.
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        self.params.set(name, value);
        self.render();
    }
    /// Removes a URI parameter and re-renders the raw text.
    pub fn remove_param(&mut self, name: &str) {
        if self.params.remove(name) {
            self.render();
        }
    }
    /// Sets the host and re-renders.
    pub fn set_host(&mut self, host: &str) {
        self.own_parts();
        self.host = Part::Owned(Box::new(host.to_owned()));
        self.render();
    }
    /// Sets the port and re-renders.
    pub fn set_port(&mut self, port: Option<u16>) {
        self.port = port;
        self.render();
    }
    /// Sets the user and re-renders.
    pub fn set_user(&mut self, user: Option<&str>) {
        self.own_parts();
        self.user = user.map_or(Part::None, |u| Part::Owned(Box::new(u.to_owned())));
        self.render();
    }
    /// Removes URI headers (`?...`), e.g. before using a URI as a Request-URI, and
    /// re-renders.
    pub fn clear_headers(&mut self) {
        if !self.headers.is_empty() {
            self.headers.clear();
            self.render();
        }
    }

    /// Turns spans into owned copies, before the raw text changes.
    fn own_parts(&mut self) {
        self.user = self.user.owned(&self.raw);
        self.password = self.password.owned(&self.raw);
        self.host = self.host.owned(&self.raw);
    }

    /// Rebuilds the raw text from the components, then re-parses it so that the
    /// components are spans again (if it does not parse, e.g. after `set_host` with
    /// an invalid host, the owned components are kept).
    fn render(&mut self) {
        if let Scheme::Other(_) = self.scheme {
            return; // opaque: nothing to render from
        }
        let mut s = String::with_capacity(self.raw.len() + 16);
        s.push_str(self.scheme.as_str());
        s.push(':');
        if let Scheme::Tel = self.scheme {
            s.push_str(self.user().unwrap_or(""));
        } else {
            if let Some(u) = self.user() {
                escape_into(&mut s, u, is_user_char);
                if let Some(p) = self.password() {
                    s.push(':');
                    escape_into(&mut s, p, is_user_char);
                }
                s.push('@');
            }
            s.push_str(self.host());
            if let Some(p) = self.port {
                s.push(':');
                s.push_str(&p.to_string());
            }
        }
        for (n, v) in self.params.iter() {
            s.push(';');
            escape_into(&mut s, n, is_param_char);
            if let Some(v) = v {
                s.push('=');
                escape_into(&mut s, v, is_param_char);
            }
        }
        for (i, (n, v)) in self.headers.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            escape_into(&mut s, n, is_hdr_char);
            s.push('=');
            escape_into(&mut s, v, is_hdr_char);
        }
        match Uri::parse(&s) {
            Ok(u) => *self = u,
            Err(_) => {
                self.own_parts();
                self.raw = s;
            }
        }
    }

    /// URI comparison per RFC 3261 19.1.4: user and password case-sensitive after
    /// unescaping; host, scheme and parameter names case-insensitive; `user`, `ttl`,
    /// `method`, `maddr` and `transport` must match when either side has them; other
    /// parameters only when both have them; all headers must match.
    /// `tel:` URIs compare numbers without visual separators (RFC 3966 4).
    pub fn equivalent(&self, other: &Uri) -> bool {
        if self.scheme != other.scheme {
            return false;
        }
        match self.scheme {
            Scheme::Other(_) => return self.raw == other.raw,
            Scheme::Tel => {
                return tel_digits(self.user()) == tel_digits(other.user())
                    && params_equivalent(&self.params, &other.params, true);
            }
            _ => {}
        }
        self.user() == other.user()
            && self.password() == other.password()
            && self.host().eq_ignore_ascii_case(other.host())
            && self.port == other.port
            && params_equivalent(&self.params, &other.params, false)
            && self.headers.len() == other.headers.len()
            && self.headers.iter().all(|(n, v)| {
                other
                    .headers
                    .iter()
                    .any(|(n2, v2)| n.eq_ignore_ascii_case(n2) && v == v2)
            })
    }

    /// `user@host` with the host lowercased (no port, no parameters), the key for
    /// registrar bindings (address of record). `tel:` gives the bare number.
    pub fn user_host(&self) -> String {
        match self.scheme {
            Scheme::Tel => tel_digits(self.user()),
            Scheme::Other(_) => self.raw.clone(),
            _ => match self.user() {
                Some(u) => format!("{u}@{}", self.host().to_ascii_lowercase()),
                None => self.host().to_ascii_lowercase(),
            },
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl std::str::FromStr for Uri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uri::parse(s)
    }
}

fn params_equivalent(a: &Params, b: &Params, all: bool) -> bool {
    const MUST: [&str; 5] = ["user", "ttl", "method", "maddr", "transport"];
    let val_eq = |x: Option<&str>, y: Option<&str>| match (x, y) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        (None, None) => true,
        _ => false,
    };
    // the first occurrence of a name counts, on both sides (a repeated parameter
    // is not meaningful, and this keeps equivalence reflexive)
    for (n, _) in a.iter() {
        let v = a.get(n).flatten();
        match b.get(n) {
            Some(v2) if !val_eq(v, v2) => return false,
            Some(_) => {}
            None if all || MUST.iter().any(|m| m.eq_ignore_ascii_case(n)) => return false,
            None => {}
        }
    }
    for (n, _) in b.iter() {
        if a.get(n).is_none() && (all || MUST.iter().any(|m| m.eq_ignore_ascii_case(n))) {
            return false;
        }
    }
    true
}

fn tel_digits(n: Option<&str>) -> String {
    n.unwrap_or("")
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | '(' | ')'))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn is_tel_char(b: u8) -> bool {
    b.is_ascii_hexdigit() || matches!(b, b'+' | b'-' | b'.' | b'(' | b')' | b'*' | b'#' | b'%')
}

/// What one pass over a URI learned.
struct Scan {
    /// Position of the first `@`.
    at: Option<usize>,
    /// Whether any `%` escape occurs (else nothing needs unescaping).
    escaped: bool,
}

/// One pass over the URI: no whitespace, controls, `<`, `>` or `"`, every `%`
/// starts a valid escape; notes the first `@` and whether there are escapes.
fn scan(s: &str) -> Result<Scan, UriError> {
    let b = s.as_bytes();
    let mut out = Scan {
        at: None,
        escaped: false,
    };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match URI_CLASS[c as usize] {
            ORDINARY => i += 1,
            AT => {
                if out.at.is_none() {
                    out.at = Some(i);
                }
                i += 1;
            }
            PERCENT
                if i + 2 < b.len()
                    && b[i + 1].is_ascii_hexdigit()
                    && b[i + 2].is_ascii_hexdigit() =>
            {
                out.escaped = true;
                i += 3;
            }
            _ => return Err(UriError::BadChar),
        }
    }
    Ok(out)
}

const ORDINARY: u8 = 0;
const AT: u8 = 1;
const PERCENT: u8 = 2;
const BAD: u8 = 3;

/// How `scan` treats each byte: allowed unescaped anywhere in a URI we accept
/// (lenient: non-ASCII passes), `@`, `%`, or forbidden (controls, space, DEL,
/// `<`, `>`, `"`).
static URI_CLASS: [u8; 256] = {
    let mut t = [ORDINARY; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match i as u8 {
            0..=0x20 | 0x7f | b'<' | b'>' | b'"' => BAD,
            b'@' => AT,
            b'%' => PERCENT,
            _ => ORDINARY,
        };
        i += 1;
    }
    t
};

/// Hostname and IPv4 characters (`_` tolerated, as some devices use it).
static HOSTC: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
        i += 1;
    }
    t
};

/// Splits `host[:port]`, validating the host.
pub(crate) fn split_host_port(hp: &str) -> Result<(&str, Option<u16>), UriError> {
    let (host, port) = if hp.starts_with('[') {
        let end = find(hp, b']').ok_or(UriError::BadHost)?;
        let host = &hp[..=end];
        let inner = &host[1..end];
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(UriError::BadHost);
        }
        match &hp[end + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or(UriError::BadHost)?)),
        }
    } else {
        let bytes = hp.as_bytes();
        let end = bytes
            .iter()
            .position(|&b| !HOSTC[b as usize])
            .unwrap_or(bytes.len());
        if end == 0 {
            return Err(UriError::BadHost);
        }
        match bytes.get(end) {
            None => (hp, None),
            Some(b':') => (&hp[..end], Some(&hp[end + 1..])),
            Some(_) => return Err(UriError::BadHost),
        }
    };
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 5 {
                return Err(UriError::BadPort);
            }
            let mut n: u32 = 0;
            for b in p.bytes() {
                if !b.is_ascii_digit() {
                    return Err(UriError::BadPort);
                }
                n = n * 10 + u32::from(b - b'0');
            }
            Some(u16::try_from(n).map_err(|_| UriError::BadPort)?)
        }
    };
    Ok((host, port))
}

fn uri_params(s: &str, escaped: bool) -> Result<Params, UriError> {
    if s.is_empty() {
        return Ok(Params::new());
    }
    let mut params = Params::with_capacity(s.len());
    for p in s.split(';') {
        let (n, v) = match split1(p, b'=') {
            Some((n, v)) => (n, Some(v)),
            None => (p, None),
        };
        if n.is_empty() {
            return Err(UriError::BadParam);
        }
        if escaped {
            params.push(&unescape(n), v.map(unescape).as_deref());
        } else {
            params.push(n, v);
        }
    }
    Ok(params)
}

/// %-unescapes (escapes were validated by [`scan`]); invalid UTF-8 after
/// unescaping is replaced lossily.
pub(crate) fn unescape(s: &str) -> Cow<'_, str> {
    if !has(s, b'%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}
fn is_user_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}
fn is_param_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$')
}
fn is_hdr_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$')
}

fn escape_into(out: &mut String, s: &str, ok: fn(u8) -> bool) {
    for &b in s.as_bytes() {
        if ok(b) {
            out.push(b as char);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}
