//! Typed `Digest` challenges and credentials.

use std::fmt;

use super::params::{self, Param};
use super::{Algorithm, AuthError};

/// A `WWW-Authenticate` or `Proxy-Authenticate` header value with the `Digest` scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Protection space, shown to users and part of HA1.
    pub realm: String,
    /// Optional `domain` URI list, kept verbatim.
    pub domain: Option<String>,
    /// Server nonce.
    pub nonce: String,
    /// Opaque value the client must echo.
    pub opaque: Option<String>,
    /// `stale=true`: the nonce expired but the credentials were right; retry silently.
    pub stale: bool,
    /// Hash algorithm (`MD5` when absent).
    pub algorithm: Algorithm,
    /// Offered qop values, lower-cased (`auth`, `auth-int`); empty for an RFC 2069 challenge.
    pub qop: Vec<String>,
    /// RFC 7616 `userhash=true`.
    pub userhash: bool,
    /// Parameters we do not interpret (`charset`, extensions), in order, names lower-cased.
    pub other: Vec<(String, String)>,
}

impl Challenge {
    /// Parses a header value such as `Digest realm="pbx", nonce="..", qop="auth"`.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let (_, list) = params::parse(value)?;
        let mut c = Challenge {
            realm: String::new(),
            domain: None,
            nonce: String::new(),
            opaque: None,
            stale: false,
            algorithm: Algorithm::Md5,
            qop: Vec::new(),
            userhash: false,
            other: Vec::new(),
        };
        let (mut realm, mut nonce) = (None, None);
        for (name, value) in list {
            match name.as_str() {
                "realm" => realm = Some(value),
                "domain" => c.domain = Some(value),
                "nonce" => nonce = Some(value),
                "opaque" => c.opaque = Some(value),
                "stale" => c.stale = value.eq_ignore_ascii_case("true"),
                "algorithm" => c.algorithm = Algorithm::from_token(&value)?,
                "qop" => {
                    c.qop = value
                        .split(',')
                        .map(|q| q.trim().to_ascii_lowercase())
                        .filter(|q| !q.is_empty())
                        .collect()
                }
                "userhash" => c.userhash = value.eq_ignore_ascii_case("true"),
                _ => c.other.push((name, value)),
            }
        }
        c.realm = realm.ok_or(AuthError::MissingParam("realm"))?;
        c.nonce = nonce.ok_or(AuthError::MissingParam("nonce"))?;
        Ok(c)
    }

    /// Whether `qop=auth` is offered.
    pub fn offers_auth(&self) -> bool {
        self.qop.iter().any(|q| q == "auth")
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::from("Digest");
        params::push_quoted(&mut s, "realm", &self.realm);
        if let Some(d) = &self.domain {
            params::push_quoted(&mut s, "domain", d);
        }
        params::push_quoted(&mut s, "nonce", &self.nonce);
        if let Some(o) = &self.opaque {
            params::push_quoted(&mut s, "opaque", o);
        }
        if self.stale {
            params::push_token(&mut s, "stale", "true");
        }
        params::push_token(&mut s, "algorithm", self.algorithm.as_str());
        if !self.qop.is_empty() {
            params::push_quoted(&mut s, "qop", &self.qop.join(","));
        }
        if self.userhash {
            params::push_token(&mut s, "userhash", "true");
        }
        push_other(&mut s, &self.other);
        f.write_str(&s)
    }
}

/// An `Authorization` or `Proxy-Authorization` header value with the `Digest` scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name (or its hash when `userhash` is set).
    pub username: String,
    /// Realm the client answers.
    pub realm: String,
    /// Server nonce being answered.
    pub nonce: String,
    /// The `uri` (digest-uri) the hash covers; the Request-URI as the client sent it.
    pub uri: String,
    /// The request-digest, hex.
    pub response: String,
    /// Hash algorithm (`MD5` when absent).
    pub algorithm: Algorithm,
    /// Client nonce (required with `qop`).
    pub cnonce: Option<String>,
    /// Echoed opaque.
    pub opaque: Option<String>,
    /// Selected qop, lower-cased; `None` for RFC 2069 credentials.
    pub qop: Option<String>,
    /// Nonce count (required with `qop`).
    pub nc: Option<u32>,
    /// RFC 7616 `userhash=true`.
    pub userhash: bool,
    /// Parameters we do not interpret, in order, names lower-cased.
    pub other: Vec<(String, String)>,
}

impl Credentials {
    /// Parses a header value such as `Digest username="201", realm="pbx", ...`.
    ///
    /// With `qop`, `cnonce` and `nc` are required (RFC 2617 sec. 3.2.2).
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let (_, list) = params::parse(value)?;
        let mut f: [Option<String>; 5] = Default::default();
        let mut c = Credentials {
            username: String::new(),
            realm: String::new(),
            nonce: String::new(),
            uri: String::new(),
            response: String::new(),
            algorithm: Algorithm::Md5,
            cnonce: None,
            opaque: None,
            qop: None,
            nc: None,
            userhash: false,
            other: Vec::new(),
        };
        for (name, value) in list {
            match name.as_str() {
                "username" => f[0] = Some(value),
                "realm" => f[1] = Some(value),
                "nonce" => f[2] = Some(value),
                "uri" => f[3] = Some(value),
                "response" => f[4] = Some(value),
                "algorithm" => c.algorithm = Algorithm::from_token(&value)?,
                "cnonce" => c.cnonce = Some(value),
                "opaque" => c.opaque = Some(value),
                "qop" => c.qop = Some(value.trim().to_ascii_lowercase()),
                "nc" => c.nc = Some(parse_nc(&value)?),
                "userhash" => c.userhash = value.eq_ignore_ascii_case("true"),
                _ => c.other.push((name, value)),
            }
        }
        let [username, realm, nonce, uri, response] = f;
        c.username = username.ok_or(AuthError::MissingParam("username"))?;
        c.realm = realm.ok_or(AuthError::MissingParam("realm"))?;
        c.nonce = nonce.ok_or(AuthError::MissingParam("nonce"))?;
        c.uri = uri.ok_or(AuthError::MissingParam("uri"))?;
        c.response = response.ok_or(AuthError::MissingParam("response"))?;
        if c.qop.is_some() {
            if c.cnonce.is_none() {
                return Err(AuthError::MissingParam("cnonce"));
            }
            if c.nc.is_none() {
                return Err(AuthError::MissingParam("nc"));
            }
        }
        Ok(c)
    }
}

/// `nc` is 8LHEX; shorter forms are accepted from lenient clients.
fn parse_nc(value: &str) -> Result<u32, AuthError> {
    let ok = !value.is_empty() && value.len() <= 8 && value.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| u32::from_str_radix(value, 16).ok())
        .flatten()
        .ok_or_else(|| AuthError::InvalidParam {
            name: "nc",
            value: value.to_owned(),
        })
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::from("Digest");
        params::push_quoted(&mut s, "username", &self.username);
        params::push_quoted(&mut s, "realm", &self.realm);
        params::push_quoted(&mut s, "nonce", &self.nonce);
        params::push_quoted(&mut s, "uri", &self.uri);
        params::push_quoted(&mut s, "response", &self.response);
        params::push_token(&mut s, "algorithm", self.algorithm.as_str());
        if let Some(c) = &self.cnonce {
            params::push_quoted(&mut s, "cnonce", c);
        }
        if let Some(o) = &self.opaque {
            params::push_quoted(&mut s, "opaque", o);
        }
        if let Some(q) = &self.qop {
            params::push_token(&mut s, "qop", q);
        }
        if let Some(nc) = self.nc {
            params::push_token(&mut s, "nc", &format!("{nc:08x}"));
        }
        if self.userhash {
            params::push_token(&mut s, "userhash", "true");
        }
        push_other(&mut s, &self.other);
        f.write_str(&s)
    }
}

fn push_other(s: &mut String, other: &[Param]) {
    for (n, v) in other {
        params::push_quoted(s, n, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parse_and_display_round_trip() {
        let v = "Digest realm = \"http-auth@example.org\",qop=\"auth, auth-int\",\r\n \
                 algorithm=sha-256, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
                 opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\", STALE=TRUE, charset=UTF-8";
        let c = Challenge::parse(v).expect("valid");
        assert_eq!(c.realm, "http-auth@example.org");
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.qop, ["auth", "auth-int"]);
        assert!(c.stale && c.offers_auth());
        assert_eq!(c.other, [("charset".to_owned(), "UTF-8".to_owned())]);
        assert_eq!(
            c.to_string(),
            "Digest realm=\"http-auth@example.org\", \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\", stale=true, \
             algorithm=SHA-256, qop=\"auth,auth-int\", charset=\"UTF-8\""
        );
        assert_eq!(Challenge::parse(&c.to_string()), Ok(c));
    }

    #[test]
    fn challenge_errors() {
        let cases: &[(&str, AuthError)] = &[
            ("Digest nonce=\"n\"", AuthError::MissingParam("realm")),
            ("Digest realm=\"r\"", AuthError::MissingParam("nonce")),
            (
                "Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess",
                AuthError::UnsupportedAlgorithm("MD5-sess".into()),
            ),
            (
                "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256",
                AuthError::UnsupportedAlgorithm("SHA-512-256".into()),
            ),
        ];
        for (input, err) in cases {
            assert_eq!(
                Challenge::parse(input).as_ref().err(),
                Some(err),
                "{input:?}"
            );
        }
    }

    #[test]
    fn rfc2069_challenge_has_no_qop() {
        let c = Challenge::parse("Digest realm=\"r\", nonce=\"n\"").expect("valid");
        assert!(c.qop.is_empty() && !c.offers_auth());
        assert_eq!(c.algorithm, Algorithm::Md5);
    }

    #[test]
    fn credentials_parse_lenient_forms() {
        // Quoted qop and nc, odd case and spacing, as some phones send them.
        let v = "digest USERNAME=\"Mufasa\" ,realm=\"testrealm@host.com\",nonce=\"n\", \
                 uri=\"/dir/index.html\",qop=\"AUTH\",nc=\"1\",cnonce=\"c\",response=\"abc\",x-ext=tok";
        let c = Credentials::parse(v).expect("valid");
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.nc, Some(1));
        assert_eq!(c.other, [("x-ext".to_owned(), "tok".to_owned())]);
        assert_eq!(Credentials::parse(&c.to_string()), Ok(c));
    }

    #[test]
    fn credentials_errors() {
        let base = "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"0\"";
        let cases: Vec<(String, AuthError)> = vec![
            (
                "Digest realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\"".into(),
                AuthError::MissingParam("username"),
            ),
            (
                "Digest username=\"u\", realm=\"r\", nonce=\"n\", response=\"0\"".into(),
                AuthError::MissingParam("uri"),
            ),
            (
                format!("{base}, qop=auth, nc=00000001"),
                AuthError::MissingParam("cnonce"),
            ),
            (
                format!("{base}, qop=auth, cnonce=\"c\""),
                AuthError::MissingParam("nc"),
            ),
            (
                format!("{base}, qop=auth, cnonce=\"c\", nc=0000000g"),
                AuthError::InvalidParam {
                    name: "nc",
                    value: "0000000g".into(),
                },
            ),
            (
                format!("{base}, nc=100000000"),
                AuthError::InvalidParam {
                    name: "nc",
                    value: "100000000".into(),
                },
            ),
        ];
        for (input, err) in &cases {
            assert_eq!(
                Credentials::parse(input).as_ref().err(),
                Some(err),
                "{input:?}"
            );
        }
        assert!(Credentials::parse(base).is_ok());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary input never panics the parsers.
        #[test]
        fn parsers_do_not_panic(s in "(Digest )?[ -~\t\r\n]{0,120}") {
            let _ = Challenge::parse(&s);
            let _ = Credentials::parse(&s);
        }

        /// Whatever we print, we read back unchanged (quotes, backslashes, commas, UTF-8).
        #[test]
        fn credentials_round_trip(
            user in "\\PC{0,16}", realm in "\\PC{0,16}", uri in "[ -~]{0,24}",
            nc in any::<u32>(), ext in "[a-z]{1,6}", ext_val in "\\PC{0,8}",
        ) {
            prop_assume!(!["username", "realm", "nonce", "uri", "response", "algorithm",
                "cnonce", "opaque", "qop", "nc", "userhash"].contains(&ext.as_str()));
            let c = Credentials {
                username: user, realm, nonce: "n\"\\,".into(), uri,
                response: "ab".into(), algorithm: Algorithm::Sha256,
                cnonce: Some("c, d".into()), opaque: None, qop: Some("auth".into()),
                nc: Some(nc), userhash: false, other: vec![(ext, ext_val)],
            };
            prop_assert_eq!(Credentials::parse(&c.to_string()), Ok(c));
        }
    }
}
