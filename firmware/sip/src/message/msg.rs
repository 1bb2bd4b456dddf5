//! The owned [`Message`] and its accessors.

use super::error::HeaderError;
use super::header::{Header, HeaderName};
use super::lex::{split_list, trim_ws};
use super::method::Method;
use super::name_addr::{CSeq, Contacts, NameAddr};
use super::uri::Uri;
use super::via::Via;

/// The SIP version of a start line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// `SIP/2.0`
    Sip20,
    /// Any other `SIP/x.y`, as written; requests get 505.
    Other(String),
}

impl Version {
    /// The version's text.
    pub fn as_str(&self) -> &str {
        match self {
            Version::Sip20 => "SIP/2.0",
            Version::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one per message; boxing the URI would cost an allocation
pub(crate) enum StartLine {
    Request {
        method: Method,
        uri: Uri,
        version: Version,
    },
    Response {
        version: Version,
        status: u16,
        reason: String,
    },
}

/// One stored header: its value is `text[start..end]`.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) name: HeaderName,
    pub(crate) start: u32,
    pub(crate) end: u32,
    /// The received bytes when they were not UTF-8 (the text holds a lossy copy).
    pub(crate) raw: Option<Box<[u8]>>,
}

/// A SIP request or response, owned. Header values live in one string buffer;
/// typed headers are parsed on access.
///
/// Equality is semantic: same start line, same header names and values in order
/// (Content-Length headers ignored, since serialisation recomputes them), same body.
#[derive(Debug, Clone)]
pub struct Message {
    pub(crate) start: StartLine,
    pub(crate) text: String,
    pub(crate) headers: Vec<Entry>,
    pub(crate) body: Vec<u8>,
}

impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        let real = |h: &Header<'_>| *h.name() != HeaderName::ContentLength;
        self.start == other.start
            && self.body == other.body
            && self.headers().filter(real).eq(other.headers().filter(real))
    }
}

impl Message {
    pub(crate) fn new(start: StartLine) -> Message {
        Message {
            start,
            text: String::new(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// True for requests.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }
    /// The request method (`None` for responses).
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }
    /// The Request-URI (`None` for responses).
    pub fn request_uri(&self) -> Option<&Uri> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }
    /// The status code (`None` for requests).
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }
    /// The reason phrase (`None` for requests; may be empty).
    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(reason),
            StartLine::Request { .. } => None,
        }
    }
    /// The SIP version of the start line.
    pub fn version(&self) -> &Version {
        match &self.start {
            StartLine::Request { version, .. } | StartLine::Response { version, .. } => version,
        }
    }

    fn view<'a>(&'a self, e: &'a Entry) -> Header<'a> {
        Header {
            name: &e.name,
            value: self
                .text
                .get(e.start as usize..e.end as usize)
                .unwrap_or(""),
            raw: e.raw.as_deref(),
        }
    }

    /// All headers in order.
    pub fn headers(&self) -> impl Iterator<Item = Header<'_>> + '_ {
        self.headers.iter().map(move |e| self.view(e))
    }

    /// The value of the first header with this name.
    pub fn header(&self, name: &HeaderName) -> Option<&str> {
        self.headers
            .iter()
            .find(|e| name.matches(&e.name))
            .map(|e| self.view(e).value)
    }

    /// The values of all headers with this name, in order (comma lists not split).
    pub fn header_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |e| name.matches(&e.name))
            .map(move |e| self.view(e).value)
    }

    /// Number of headers with this name.
    pub fn header_count(&self, name: &HeaderName) -> usize {
        self.headers
            .iter()
            .filter(|e| name.matches(&e.name))
            .count()
    }

    /// The body (already cut to Content-Length).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// First header value for a typed accessor: missing or non-UTF-8 is an error.
    fn typed(&self, name: HeaderName) -> Result<&str, HeaderError> {
        // typed headers are never `Other`, so the variant alone identifies them
        debug_assert!(!matches!(name, HeaderName::Other(_)));
        let d = std::mem::discriminant(&name);
        match self
            .headers
            .iter()
            .find(|e| std::mem::discriminant(&e.name) == d)
        {
            None => Err(HeaderError::Missing(name)),
            Some(e) if e.raw.is_some() => Err(HeaderError::NotUtf8(name)),
            Some(e) => Ok(self.view(e).value),
        }
    }

    /// Typed values of every header with this name.
    fn typed_all<'a>(
        &'a self,
        name: &'a HeaderName,
    ) -> impl Iterator<Item = Result<&'a str, HeaderError>> + 'a {
        self.headers
            .iter()
            .filter(move |e| name.matches(&e.name))
            .map(move |e| {
                if e.raw.is_some() {
                    Err(HeaderError::NotUtf8(name.clone()))
                } else {
                    Ok(self.view(e).value)
                }
            })
    }

    /// All Via values in order (comma lists split). Missing Via is an error.
    pub fn vias(&self) -> Result<Vec<Via>, HeaderError> {
        let mut out = Vec::with_capacity(2);
        for v in self.typed_all(&HeaderName::Via) {
            for item in split_list(v?) {
                out.push(
                    Via::parse(item).map_err(|why| HeaderError::malformed(HeaderName::Via, why))?,
                );
            }
        }
        if out.is_empty() {
            return Err(HeaderError::Missing(HeaderName::Via));
        }
        Ok(out)
    }

    /// The topmost Via value.
    pub fn top_via(&self) -> Result<Via, HeaderError> {
        let v = self.typed(HeaderName::Via)?;
        let first = split_list(v).next().unwrap_or("");
        Via::parse(first).map_err(|why| HeaderError::malformed(HeaderName::Via, why))
    }

    fn name_addr(&self, name: HeaderName) -> Result<NameAddr, HeaderError> {
        let v = self.typed(name.clone())?;
        NameAddr::parse(v).map_err(|e| {
            HeaderError::malformed(
                name,
                match e {
                    super::NameAddrError::Uri(_) => "malformed URI",
                    super::NameAddrError::Syntax(s) => s,
                },
            )
        })
    }

    /// The From header.
    pub fn from_header(&self) -> Result<NameAddr, HeaderError> {
        self.name_addr(HeaderName::From)
    }

    /// The To header.
    pub fn to_header(&self) -> Result<NameAddr, HeaderError> {
        self.name_addr(HeaderName::To)
    }

    /// The Call-ID (`word [@ word]`, no whitespace).
    pub fn call_id(&self) -> Result<&str, HeaderError> {
        let v = self.typed(HeaderName::CallId)?;
        if v.is_empty() || v.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(HeaderError::malformed(
                HeaderName::CallId,
                "empty or contains whitespace",
            ));
        }
        Ok(v)
    }

    /// The CSeq header.
    pub fn cseq(&self) -> Result<CSeq, HeaderError> {
        CSeq::parse(self.typed(HeaderName::CSeq)?)
            .map_err(|why| HeaderError::malformed(HeaderName::CSeq, why))
    }

    /// All Contact values (`*` or a list; no Contact header gives an empty list).
    pub fn contacts(&self) -> Result<Contacts, HeaderError> {
        Contacts::parse(self.typed_all(&HeaderName::Contact))
    }

    /// The Expires header as delta-seconds (values above 2^32-1 read as 2^32-1,
    /// RFC 3261 20.19); `None` if absent.
    pub fn expires(&self) -> Result<Option<u32>, HeaderError> {
        self.delta_seconds(HeaderName::Expires)
    }

    /// The Min-Expires header; `None` if absent.
    pub fn min_expires(&self) -> Result<Option<u32>, HeaderError> {
        self.delta_seconds(HeaderName::MinExpires)
    }

    fn delta_seconds(&self, name: HeaderName) -> Result<Option<u32>, HeaderError> {
        match self.typed(name.clone()) {
            Err(HeaderError::Missing(_)) => Ok(None),
            Err(e) => Err(e),
            Ok(v) => {
                let v = trim_ws(v);
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(HeaderError::malformed(name, "not a number of seconds"));
                }
                Ok(Some(v.parse::<u32>().unwrap_or(u32::MAX)))
            }
        }
    }

    /// Max-Forwards (0..=255); `None` if absent.
    pub fn max_forwards(&self) -> Result<Option<u32>, HeaderError> {
        match self.typed(HeaderName::MaxForwards) {
            Err(HeaderError::Missing(_)) => Ok(None),
            Err(e) => Err(e),
            Ok(v) => {
                if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(HeaderError::malformed(
                        HeaderName::MaxForwards,
                        "not a number",
                    ));
                }
                match v.parse::<u32>() {
                    Ok(n) if n <= 255 => Ok(Some(n)),
                    _ => Err(HeaderError::malformed(
                        HeaderName::MaxForwards,
                        "larger than 255",
                    )),
                }
            }
        }
    }

    /// Appends a header.
    pub fn push_header(&mut self, name: HeaderName, value: &str) {
        let start = self.text.len() as u32;
        self.text.push_str(value);
        self.headers.push(Entry {
            name,
            start,
            end: self.text.len() as u32,
            raw: None,
        });
    }

    /// Inserts a header before all others of the same name (or at the end if
    /// there is none), e.g. a new top Via.
    pub fn prepend_header(&mut self, name: HeaderName, value: &str) {
        let at = self
            .headers
            .iter()
            .position(|e| name.matches(&e.name))
            .unwrap_or(self.headers.len());
        let start = self.text.len() as u32;
        self.text.push_str(value);
        let e = Entry {
            name,
            start,
            end: self.text.len() as u32,
            raw: None,
        };
        self.headers.insert(at, e);
    }

    /// Replaces the value of the first header with this name, or appends one.
    pub fn set_header(&mut self, name: HeaderName, value: &str) {
        let start = self.text.len() as u32;
        self.text.push_str(value);
        let end = self.text.len() as u32;
        match self.headers.iter_mut().find(|e| name.matches(&e.name)) {
            Some(e) => {
                e.start = start;
                e.end = end;
                e.raw = None;
            }
            None => self.headers.push(Entry {
                name,
                start,
                end,
                raw: None,
            }),
        }
    }

    /// Removes every header with this name; returns how many were removed.
    pub fn remove_header(&mut self, name: &HeaderName) -> usize {
        let before = self.headers.len();
        self.headers.retain(|e| !name.matches(&e.name));
        before - self.headers.len()
    }

    /// Replaces the topmost Via value (the first element of the first Via header;
    /// the rest of a comma list is kept), e.g. to add `received`/`rport`.
    pub fn set_top_via(&mut self, via: &Via) {
        let rest = self.header(&HeaderName::Via).and_then(|v| {
            let mut it = split_list(v);
            it.next();
            let rest: Vec<&str> = it.collect();
            (!rest.is_empty()).then(|| rest.join(", "))
        });
        let value = match rest {
            Some(rest) => format!("{via}, {rest}"),
            None => via.to_string(),
        };
        self.set_header(HeaderName::Via, &value);
    }

    /// Replaces the body (serialisation writes the matching Content-Length).
    pub fn set_body(&mut self, body: Vec<u8>) {
        self.body = body;
    }
}
