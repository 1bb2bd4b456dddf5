//! The `Digest` auth-param list shared by challenges and credentials
//! (RFC 3261 sec. 25.1 `challenge`/`credentials`, RFC 7235 sec. 2.1).

use super::AuthError;

/// One `name=value` pair; the name is lower-cased, the value unquoted and unescaped.
pub(crate) type Param = (String, String);

/// Linear white space as SIP sees it after unfolding; a stray CR/LF from a folded
/// line is tolerated too.
fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// RFC 3261 `token` characters.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn skip_lws(&mut self) {
        while self.pos < self.s.len() && is_lws(self.s[self.pos]) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn token(&mut self) -> &[u8] {
        let start = self.pos;
        while self.pos < self.s.len() && is_token(self.s[self.pos]) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// A quoted-string starting at the opening quote; `\` escapes the next byte.
    fn quoted(&mut self) -> Result<Vec<u8>, AuthError> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.pos += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => return Ok(out),
                b'\\' => {
                    let escaped = self.peek().ok_or(AuthError::UnterminatedQuote)?;
                    // RFC 3261 quoted-pair excludes CR and LF.
                    if escaped == b'\r' || escaped == b'\n' {
                        return Err(AuthError::UnterminatedQuote);
                    }
                    out.push(escaped);
                    self.pos += 1;
                }
                _ => out.push(b),
            }
        }
        Err(AuthError::UnterminatedQuote)
    }
}

/// Splits `Digest a=b, c="d"` into the scheme and its parameters.
///
/// Names are case-insensitive (returned lower-case); a parameter given twice is an error
/// (RFC 7235 sec. 2.1); empty list elements (`a=b,,c=d`) are allowed by the `#rule`.
pub(crate) fn parse(value: &str) -> Result<(String, Vec<Param>), AuthError> {
    let mut c = Cursor {
        s: value.as_bytes(),
        pos: 0,
    };
    c.skip_lws();
    let scheme = c.token();
    if scheme.is_empty() {
        return Err(AuthError::MissingScheme);
    }
    let scheme = String::from_utf8_lossy(scheme).into_owned();
    if !scheme.eq_ignore_ascii_case("digest") {
        return Err(AuthError::UnsupportedScheme(scheme));
    }
    let mut params: Vec<Param> = Vec::new();
    if c.peek().is_some_and(|b| !is_lws(b)) {
        return Err(AuthError::Syntax(c.pos));
    }
    loop {
        c.skip_lws();
        match c.peek() {
            None => break,
            Some(b',') => {
                c.pos += 1;
                continue;
            }
            Some(_) => {}
        }
        let name_at = c.pos;
        let name = c.token().to_ascii_lowercase();
        if name.is_empty() {
            return Err(AuthError::Syntax(name_at));
        }
        c.skip_lws();
        if c.peek() != Some(b'=') {
            return Err(AuthError::Syntax(c.pos));
        }
        c.pos += 1;
        c.skip_lws();
        let value = match c.peek() {
            Some(b'"') => c.quoted()?,
            _ => {
                let at = c.pos;
                let v = c.token().to_vec();
                if v.is_empty() {
                    return Err(AuthError::Syntax(at));
                }
                v
            }
        };
        // Header values are UTF-8 text; realm or username may carry non-ASCII.
        let name = String::from_utf8(name).map_err(|_| AuthError::Syntax(name_at))?;
        let value = String::from_utf8(value).map_err(|_| AuthError::Syntax(name_at))?;
        if params.iter().any(|(n, _)| *n == name) {
            return Err(AuthError::DuplicateParam(name));
        }
        params.push((name, value));
        c.skip_lws();
        match c.peek() {
            None => break,
            Some(b',') => c.pos += 1,
            Some(_) => return Err(AuthError::Syntax(c.pos)),
        }
    }
    Ok((scheme, params))
}

/// Appends `name="value"` with `"` and `\` escaped.
pub(crate) fn push_quoted(out: &mut String, name: &str, value: &str) {
    push_sep(out);
    out.push_str(name);
    out.push_str("=\"");
    for ch in value.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
}

/// Appends `name=token` unquoted.
pub(crate) fn push_token(out: &mut String, name: &str, value: &str) {
    push_sep(out);
    out.push_str(name);
    out.push('=');
    out.push_str(value);
}

fn push_sep(out: &mut String) {
    if out.ends_with("Digest") {
        out.push(' ');
    } else {
        out.push_str(", ");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &str) -> Vec<Param> {
        parse(v).expect("valid").1
    }

    #[test]
    fn whitespace_case_and_escapes() {
        let got = p("  digest  REALM = \"a \\\"b\\\\\" ,\tNonce=\"x\"\r\n , algorithm=MD5");
        assert_eq!(
            got,
            vec![
                ("realm".into(), "a \"b\\".into()),
                ("nonce".into(), "x".into()),
                ("algorithm".into(), "MD5".into()),
            ]
        );
    }

    #[test]
    fn empty_elements_and_trailing_comma() {
        assert_eq!(
            p("Digest ,a=1,,b=\"\", "),
            vec![("a".into(), "1".into()), ("b".into(), "".into())]
        );
    }

    #[test]
    fn errors() {
        let cases: &[(&str, AuthError)] = &[
            ("", AuthError::MissingScheme),
            ("Basic abc=", AuthError::UnsupportedScheme("Basic".into())),
            ("Digest realm=\"x", AuthError::UnterminatedQuote),
            ("Digest realm=\"x\\", AuthError::UnterminatedQuote),
            ("Digest realm", AuthError::Syntax(12)),
            ("Digest realm=", AuthError::Syntax(13)),
            ("Digest realm=\"a\" nonce=\"b\"", AuthError::Syntax(17)),
            (
                "Digestrealm=a",
                AuthError::UnsupportedScheme("Digestrealm".into()),
            ),
            ("Digest\"a\"", AuthError::Syntax(6)),
            ("Digest a=1, A=2", AuthError::DuplicateParam("a".into())),
        ];
        for (input, err) in cases {
            assert_eq!(parse(input).as_ref().err(), Some(err), "{input:?}");
        }
    }

    #[test]
    fn quoting_round_trip() {
        let mut s = String::from("Digest");
        push_quoted(&mut s, "realm", "we \"say\" \\hi");
        push_token(&mut s, "algorithm", "MD5");
        assert_eq!(s, r#"Digest realm="we \"say\" \\hi", algorithm=MD5"#);
        assert_eq!(p(&s)[0].1, "we \"say\" \\hi");
    }
}
