//! The parser: start line, header section (folding, compact names), body framing.

use super::error::{ParseError, ParseErrorKind as K};
use super::header::HeaderName;
use super::method::{is_token_byte, Method};
use super::msg::{Entry, Message, StartLine, Version};
use super::uri::Uri;

/// Limits applied while parsing untrusted input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted message (start line, headers and body), bytes. Default 64 KiB.
    pub max_message_size: usize,
    /// Most headers accepted (header lines, not comma-list elements). Default 128.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 64 * 1024,
            max_headers: 128,
        }
    }
}

/// Parses one datagram with default [`Limits`].
pub fn parse(buf: &[u8]) -> Result<Message, ParseError> {
    parse_with(buf, &Limits::default())
}

/// Parses one datagram. Content-Length frames the body: a shorter body is an error,
/// extra bytes are dropped (RFC 3261 18.3); without Content-Length the body is the
/// rest of the datagram.
pub fn parse_with(buf: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    if buf.len() > limits.max_message_size {
        let mut e = ParseError::new(K::TooLarge {
            limit: limits.max_message_size,
        });
        if looks_like_request(buf) {
            e = ParseError::in_request(K::TooLarge {
                limit: limits.max_message_size,
            });
        }
        return Err(e);
    }
    let (mut msg, body_at, cl) = parse_head(buf, limits)?;
    let rest = &buf[body_at..];
    match cl {
        Err(kind) => Err(ParseError::new(kind).with_partial(msg)),
        Ok(None) => {
            msg.body = rest.to_vec();
            Ok(msg)
        }
        Ok(Some(n)) if n <= rest.len() => {
            msg.body = rest[..n].to_vec();
            Ok(msg)
        }
        Ok(Some(n)) => Err(ParseError::new(K::BodyTooShort {
            declared: n,
            actual: rest.len(),
        })
        .with_partial(msg)),
    }
}

fn looks_like_request(buf: &[u8]) -> bool {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let b = &buf[start..];
    !(b.len() >= 4 && b[..4].eq_ignore_ascii_case(b"SIP/"))
        && b.first().is_some_and(|&c| is_token_byte(c))
}

/// The Content-Length value: `Ok(None)` if absent; several headers (even equal)
/// or a non-number are errors.
pub(crate) fn content_length(msg: &Message) -> Result<Option<usize>, K> {
    let mut it = msg.header_all(&HeaderName::ContentLength);
    let Some(v) = it.next() else {
        return Ok(None);
    };
    if it.next().is_some() {
        return Err(K::MultipleContentLength);
    }
    content_length_value(v.as_bytes()).map(Some)
}

/// A Content-Length value: 1 to 10 decimal digits (no sign, no spaces).
fn content_length_value(v: &[u8]) -> Result<usize, K> {
    if v.is_empty() || v.len() > 10 {
        return Err(K::BadContentLength);
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return Err(K::BadContentLength);
        }
        n = n * 10 + u64::from(b - b'0');
    }
    usize::try_from(n).map_err(|_| K::BadContentLength)
}

/// Finds the end of the line starting at `from`: (end of content, start of next line).
#[inline]
fn line_at(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let nl = from + find_byte(&buf[from..], b'\n')?;
    let end = if nl > from && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    Some((end, nl + 1))
}

/// Position of `needle` in `hay`, eight bytes at a time (SWAR, no `unsafe`).
#[inline]
pub(crate) fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(needle);
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ pattern;
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|i| base + i)
}

#[inline]
fn trim_bytes(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// The message without its body, the body's offset, and its Content-Length.
pub(crate) type Head = (Message, usize, Result<Option<usize>, K>);

/// Parses the start line and header section; returns the message (without body),
/// the offset of the body and the Content-Length as [`content_length`] would (found
/// while reading the headers, so without a second pass). Used by datagram parsing
/// and the stream decoder.
pub(crate) fn parse_head(buf: &[u8], limits: &Limits) -> Result<Head, ParseError> {
    // RFC 3261 7.5: ignore CRLFs before the start line.
    let mut pos = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(ParseError::new(K::Empty))?;
    let (end, next) = line_at(buf, pos).ok_or(ParseError::new(K::Incomplete))?;
    let start = parse_start_line(&buf[pos..end])?;
    let is_request = matches!(start, StartLine::Request { .. });
    let fail = |k: K| {
        if is_request {
            ParseError::in_request(k)
        } else {
            ParseError::new(k)
        }
    };
    pos = next;
    let mut msg = Message::new(start);
    msg.headers.reserve(16);
    // Values are spans into one copy of the header section; only folded values are
    // rebuilt (unfolded) in `extra`, which is appended to that copy at the end.
    let head_start = pos;
    let mut extra: Vec<u8> = Vec::new();
    let mut folded: Vec<usize> = Vec::new();
    let mut line_no = 1;
    let mut cl: Result<Option<&[u8]>, K> = Ok(None);
    let (head_end, body_at);
    loop {
        let Some((end, next)) = line_at(buf, pos) else {
            if pos == buf.len() && !msg.headers.is_empty() {
                // a datagram that ends right after a header line: its end ends
                // the header section (RFC 4475 baddn has no empty line)
                (head_end, body_at) = (pos, pos);
                break;
            }
            return Err(fail(K::Incomplete));
        };
        line_no += 1;
        let line = &buf[pos..end];
        let line_at_head = pos - head_start;
        pos = next;
        if line.is_empty() {
            (head_end, body_at) = (end, pos);
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // a fold: continues the previous header's value with one space
            let idx = msg.headers.len();
            let Some(last) = msg.headers.last_mut() else {
                return Err(fail(K::BadHeaderLine { line: line_no }));
            };
            let cont = trim_bytes(line);
            if !cont.is_empty() {
                if folded.last() != Some(&(idx - 1)) {
                    // move the value so far into `extra`
                    let (a, b) = (
                        head_start + last.start as usize,
                        head_start + last.end as usize,
                    );
                    let start = extra.len();
                    extra.extend_from_slice(&buf[a..b]);
                    last.start = start as u32;
                    last.end = extra.len() as u32;
                    folded.push(idx - 1);
                }
                if last.end > last.start {
                    extra.push(b' ');
                }
                extra.extend_from_slice(cont);
                last.end = extra.len() as u32;
            }
            continue;
        }
        // name [ws] ':' value
        let Some(colon) = find_byte(line, b':') else {
            return Err(fail(K::BadHeaderLine { line: line_no }));
        };
        let Some(name) = HeaderName::from_token(trim_bytes(&line[..colon])) else {
            return Err(fail(K::BadHeaderLine { line: line_no }));
        };
        if msg.headers.len() >= limits.max_headers {
            return Err(fail(K::TooManyHeaders {
                limit: limits.max_headers,
            }));
        }
        let rest = &line[colon + 1..];
        let value = trim_bytes(rest);
        if name == HeaderName::ContentLength {
            cl = match cl {
                Ok(None) => Ok(Some(value)),
                _ => Err(K::MultipleContentLength),
            };
        }
        // offset of `value` within the line, then within the header section
        let lead = rest.len() - trim_start_len(rest);
        let start = line_at_head + colon + 1 + lead;
        msg.headers.push(Entry {
            name,
            start: start as u32,
            end: (start + value.len()) as u32,
            raw: None,
        });
    }
    let head_len = head_end - head_start;
    let mut text = Vec::with_capacity(head_len + extra.len());
    text.extend_from_slice(&buf[head_start..head_end]);
    text.extend_from_slice(&extra);
    for &i in &folded {
        if let Some(e) = msg.headers.get_mut(i) {
            e.start += head_len as u32;
            e.end += head_len as u32;
        }
    }
    msg.text = match String::from_utf8(text) {
        Ok(t) => t,
        Err(e) => repair_utf8(&mut msg.headers, e.into_bytes()),
    };
    let cl = cl.and_then(|v| v.map(content_length_value).transpose());
    Ok((msg, body_at, cl))
}

/// Length of `b` after dropping leading spaces and tabs.
#[inline]
fn trim_start_len(b: &[u8]) -> usize {
    b.len() - b.iter().take_while(|&&c| c == b' ' || c == b'\t').count()
}

/// Slow path for header sections with non-UTF-8 bytes: each bad header keeps its
/// raw bytes and gets a lossy text value; the others are untouched.
fn repair_utf8(headers: &mut [Entry], bytes: Vec<u8>) -> String {
    let mut text = String::with_capacity(bytes.len() + 16);
    for e in headers.iter_mut() {
        let v = &bytes[e.start as usize..e.end as usize];
        let start = text.len() as u32;
        match std::str::from_utf8(v) {
            Ok(s) => text.push_str(s),
            Err(_) => {
                text.push_str(&String::from_utf8_lossy(v));
                e.raw = Some(v.into());
            }
        }
        e.start = start;
        e.end = text.len() as u32;
    }
    text
}

fn parse_start_line(line: &[u8]) -> Result<StartLine, ParseError> {
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        return parse_status_line(line).ok_or(ParseError::new(K::BadStatusLine));
    }
    let bad = |why| ParseError::in_request(K::BadRequestLine(why));
    let sp1 = line
        .iter()
        .position(|&b| b == b' ')
        .ok_or(ParseError::new(K::BadStartLine))?;
    let method = std::str::from_utf8(&line[..sp1])
        .ok()
        .and_then(|m| Method::parse(m).ok())
        .ok_or(ParseError::new(K::BadStartLine))?;
    let rest = &line[sp1 + 1..];
    let sp2 = rest
        .iter()
        .position(|&b| b == b' ')
        .ok_or(bad("missing SIP version"))?;
    let uri = &rest[..sp2];
    let version = &rest[sp2 + 1..];
    if uri.is_empty() {
        return Err(bad("extra whitespace"));
    }
    if version.iter().any(|&b| b == b' ' || b == b'\t') {
        return Err(bad("whitespace in Request-URI or after version"));
    }
    let version = parse_version(version).ok_or(bad("malformed SIP version"))?;
    let uri = std::str::from_utf8(uri).map_err(|_| bad("Request-URI is not UTF-8"))?;
    let uri = Uri::parse(uri).map_err(|e| ParseError::in_request(K::BadRequestUri(e)))?;
    Ok(StartLine::Request {
        method,
        uri,
        version,
    })
}

fn parse_version(v: &[u8]) -> Option<Version> {
    if v == b"SIP/2.0" {
        return Some(Version::Sip20);
    }
    if v.len() < 7 || !v[..4].eq_ignore_ascii_case(b"SIP/") {
        return None;
    }
    let num = &v[4..];
    let dot = num.iter().position(|&b| b == b'.')?;
    let (maj, min) = (&num[..dot], &num[dot + 1..]);
    if maj.is_empty() || min.is_empty() || !maj.iter().chain(min).all(u8::is_ascii_digit) {
        return None;
    }
    if maj == b"2" && min == b"0" {
        Some(Version::Sip20)
    } else {
        // ASCII checked above
        Some(Version::Other(String::from_utf8_lossy(v).into_owned()))
    }
}

fn parse_status_line(line: &[u8]) -> Option<StartLine> {
    let sp = line.iter().position(|&b| b == b' ')?;
    let version = parse_version(&line[..sp])?;
    let rest = &line[sp + 1..];
    if rest.len() < 3 || !rest[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let status = u16::from(rest[0] - b'0') * 100
        + u16::from(rest[1] - b'0') * 10
        + u16::from(rest[2] - b'0');
    if !(100..=699).contains(&status) {
        return None;
    }
    let reason = match &rest[3..] {
        [] => "",
        [b' ', r @ ..] => {
            return Some(StartLine::Response {
                version,
                status,
                reason: String::from_utf8_lossy(r).into_owned(),
            })
        }
        _ => return None,
    };
    Some(StartLine::Response {
        version,
        status,
        reason: reason.to_owned(),
    })
}
