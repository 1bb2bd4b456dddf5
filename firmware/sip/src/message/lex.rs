//! Small lexing helpers shared by the typed-header parsers (RFC 3261 25.1).

use super::method::is_token_byte;
use super::params::Params;

#[inline]
pub(crate) fn trim_ws(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b.iter().take_while(|&&c| c == b' ' || c == b'\t').count();
    let end = b.len()
        - b[start..]
            .iter()
            .rev()
            .take_while(|&&c| c == b' ' || c == b'\t')
            .count();
    // both ends cut at ASCII bytes, so on char boundaries
    &s[start..end]
}

#[inline]
pub(crate) fn trim_start_ws(s: &str) -> &str {
    let start = s.bytes().take_while(|&c| c == b' ' || c == b'\t').count();
    &s[start..]
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Splits a header value on top-level commas, respecting quoted strings (with `\`
/// escapes) and `<...>`; yields each element trimmed.
pub(crate) fn split_list(s: &str) -> SplitList<'_> {
    SplitList { rest: Some(s) }
}

pub(crate) struct SplitList<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for SplitList<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        if !has(s, b',') {
            // the common case: a single element
            self.rest = None;
            return Some(trim_ws(s));
        }
        let b = s.as_bytes();
        let mut i = 0;
        let mut quoted = false;
        let mut angle = false;
        while i < b.len() {
            match b[i] {
                b'\\' if quoted => i += 1,
                b'"' if !angle => quoted = !quoted,
                b'<' if !quoted => angle = true,
                b'>' if !quoted => angle = false,
                b',' if !quoted && !angle => {
                    self.rest = Some(&s[i + 1..]);
                    return Some(trim_ws(&s[..i]));
                }
                _ => {}
            }
            i += 1;
        }
        self.rest = None;
        Some(trim_ws(s))
    }
}

/// Parses a quoted string at the start of `s` (which must begin with `"`); returns
/// the unescaped content and the rest after the closing quote.
pub(crate) fn quoted_string(s: &str) -> Option<(String, &str)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut out = String::new();
    let mut i = 1;
    let mut run = 1;
    while i < b.len() {
        match b[i] {
            b'"' => {
                out.push_str(&s[run..i]);
                return Some((out, &s[i + 1..]));
            }
            b'\\' => {
                out.push_str(&s[run..i]);
                // quoted-pair excludes CR/LF; the escaped char may be multi-byte UTF-8
                let c = s[i + 1..].chars().next()?;
                if c == '\r' || c == '\n' {
                    return None;
                }
                out.push(c);
                i += 1 + c.len_utf8();
                run = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Length of the quoted string at the start of `s` including both quotes.
pub(crate) fn quoted_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// Parses `*( LWS ";" LWS name [ LWS "=" LWS value ] )` header parameters, as used
/// by Via, From/To/Contact and others. `s` must be empty or start (after
/// whitespace) with `;`. Values are tokens, hosts (incl. `[v6]`) or quoted strings.
pub(crate) fn header_params(s: &str) -> Result<Params, &'static str> {
    let mut rest = trim_start_ws(s);
    if rest.is_empty() {
        return Ok(Params::new());
    }
    let mut params = Params::with_capacity(rest.len());
    while !rest.is_empty() {
        rest = rest.strip_prefix(';').ok_or("garbage before parameter")?;
        rest = trim_start_ws(rest);
        let name_end = rest
            .bytes()
            .position(|b| !is_token_byte(b))
            .unwrap_or(rest.len());
        if name_end == 0 {
            return Err("empty parameter name");
        }
        let name = &rest[..name_end];
        rest = trim_start_ws(&rest[name_end..]);
        let value = if let Some(r) = rest.strip_prefix('=') {
            let r = trim_start_ws(r);
            let len = if r.starts_with('"') {
                quoted_len(r).ok_or("unterminated quoted parameter")?
            } else {
                r.bytes()
                    .position(|b| !(is_token_byte(b) || matches!(b, b'[' | b']' | b':')))
                    .unwrap_or(r.len())
            };
            if len == 0 {
                return Err("empty parameter value");
            }
            rest = trim_start_ws(&r[len..]);
            Some(&r[..len])
        } else {
            None
        };
        params.push(name, value);
    }
    Ok(params)
}

/// Writes `s` as a quoted string, escaping `"` and `\`.
pub(crate) fn write_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Byte search for an ASCII delimiter: cheaper than `str::find(char)` on the short
/// strings of header values (the slices stay on char boundaries as `b` is ASCII).
#[inline]
pub(crate) fn find(s: &str, b: u8) -> Option<usize> {
    super::parse::find_byte(s.as_bytes(), b)
}

/// `str::split_once` for an ASCII delimiter.
#[inline]
pub(crate) fn split1(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = find(s, b)?;
    Some((&s[..i], &s[i + 1..]))
}

/// Whether `s` contains the ASCII byte `b`.
#[inline]
pub(crate) fn has(s: &str, b: u8) -> bool {
    find(s, b).is_some()
}
