//! Digest arithmetic (RFC 7616 sec. 3.4.1) and the server and client operations on it.

use sha2::Digest as _;

use super::{Algorithm, AuthError, Challenge, Credentials};

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// `H(data)` as lower-case hex.
fn h(alg: Algorithm, parts: &[&str]) -> String {
    fn feed<D: sha2::Digest>(mut d: D, parts: &[&str]) -> Vec<u8> {
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                d.update(b":");
            }
            d.update(p.as_bytes());
        }
        d.finalize().to_vec()
    }
    match alg {
        Algorithm::Md5 => hex(&feed(md5::Md5::new(), parts)),
        Algorithm::Sha256 => hex(&feed(sha2::Sha256::new(), parts)),
    }
}

/// `HA1 = H(username ":" realm ":" password)`, lower-case hex. This is what the
/// registrar stores per user, realm and algorithm instead of the password.
pub fn ha1(alg: Algorithm, user: &str, realm: &str, password: &str) -> String {
    h(alg, &[user, realm, password])
}

/// The request-digest for `qop=auth` (RFC 7616 sec. 3.4.1):
/// `H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" H(method ":" digest-uri))`,
/// with `nc` rendered as 8 hex digits.
#[allow(clippy::too_many_arguments)] // the RFC's own inputs, in the RFC's order
pub fn response(
    alg: Algorithm,
    ha1_hex: &str,
    nonce: &str,
    nc: u32,
    cnonce: &str,
    qop: &str,
    method: &str,
    digest_uri: &str,
) -> String {
    let ha2 = h(alg, &[method, digest_uri]);
    let nc = format!("{nc:08x}");
    h(alg, &[ha1_hex, nonce, &nc, cnonce, qop, &ha2])
}

/// The RFC 2069 request-digest (no `qop`): `H(HA1 ":" nonce ":" H(method ":" digest-uri))`.
pub fn response_rfc2069(
    alg: Algorithm,
    ha1_hex: &str,
    nonce: &str,
    method: &str,
    digest_uri: &str,
) -> String {
    let ha2 = h(alg, &[method, digest_uri]);
    h(alg, &[ha1_hex, nonce, &ha2])
}

/// A server challenge header value offering `qop="auth"`; send one per algorithm,
/// SHA-256 first (RFC 8760).
pub fn challenge(
    realm: &str,
    alg: Algorithm,
    nonce: &str,
    opaque: Option<&str>,
    stale: bool,
) -> String {
    Challenge {
        realm: realm.to_owned(),
        domain: None,
        nonce: nonce.to_owned(),
        opaque: opaque.map(str::to_owned),
        stale,
        algorithm: alg,
        qop: vec!["auth".to_owned()],
        userhash: false,
        other: Vec::new(),
    }
    .to_string()
}

/// Whether `credentials` answer with the right response for `method` given the stored
/// `ha1_hex` (for the credentials' user, realm and algorithm). Constant-time in the
/// response comparison.
///
/// The caller checks the rest: the nonce with [`super::NonceManager::check`], that
/// `realm` is ours, and that `uri` matches the Request-URI. `qop=auth-int` and
/// `userhash` credentials are refused (false).
pub fn verify(credentials: &Credentials, method: &str, ha1_hex: &str) -> bool {
    if credentials.userhash {
        return false;
    }
    let c = credentials;
    let expected = match (c.qop.as_deref(), &c.cnonce, c.nc) {
        (None, _, _) => response_rfc2069(c.algorithm, ha1_hex, &c.nonce, method, &c.uri),
        (Some("auth"), Some(cnonce), Some(nc)) => response(
            c.algorithm,
            ha1_hex,
            &c.nonce,
            nc,
            cnonce,
            "auth",
            method,
            &c.uri,
        ),
        _ => return false,
    };
    ct_eq_hex(expected.as_bytes(), c.response.as_bytes())
}

/// Compares hex digests without an early exit (case-insensitive, as some clients send
/// upper-case hex); lengths are public.
fn ct_eq_hex(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| {
        acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
    });
    std::hint::black_box(diff) == 0
}

/// Picks the challenge to answer from the `WWW-Authenticate` (or `Proxy-Authenticate`)
/// values in header order: the topmost one we support (RFC 8760), skipping unknown
/// algorithms and `auth-int`-only challenges.
pub fn select_challenge<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
    values
        .into_iter()
        .filter_map(|v| Challenge::parse(v).ok())
        .find(|c| c.qop.is_empty() || c.offers_auth())
}

/// The client's `Authorization` (or `Proxy-Authorization`) header value answering
/// `challenge`: `qop=auth` when offered, else the RFC 2069 form. `cnonce` comes from the
/// caller's RNG; `nc` counts requests made with this nonce, from 1.
pub fn authorize(
    challenge: &Challenge,
    method: &str,
    digest_uri: &str,
    user: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Result<String, AuthError> {
    let alg = challenge.algorithm;
    let ha1 = ha1(alg, user, &challenge.realm, password);
    let (resp, qop, cnonce, nc) = if challenge.offers_auth() {
        let r = response(
            alg,
            &ha1,
            &challenge.nonce,
            nc,
            cnonce,
            "auth",
            method,
            digest_uri,
        );
        (
            r,
            Some("auth".to_owned()),
            Some(cnonce.to_owned()),
            Some(nc),
        )
    } else if challenge.qop.is_empty() {
        let r = response_rfc2069(alg, &ha1, &challenge.nonce, method, digest_uri);
        (r, None, None, None)
    } else {
        return Err(AuthError::UnsupportedQop(challenge.qop.join(",")));
    };
    Ok(Credentials {
        username: user.to_owned(),
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: digest_uri.to_owned(),
        response: resp,
        algorithm: alg,
        cnonce,
        opaque: challenge.opaque.clone(),
        qop,
        nc,
        userhash: false,
        other: Vec::new(),
    }
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const REALM: &str = "http-auth@example.org";

    /// RFC 7616 sec. 3.9.1.
    #[test]
    fn rfc7616_vectors() {
        let cases = [
            (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
            (
                Algorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ];
        for (alg, want) in cases {
            let ha1 = ha1(alg, "Mufasa", REALM, "Circle of Life");
            let got = response(
                alg,
                &ha1,
                NONCE,
                1,
                CNONCE,
                "auth",
                "GET",
                "/dir/index.html",
            );
            assert_eq!(got, want, "{alg}");
        }
    }

    /// The RFC 7616 sec. 3.9.1 client header, parsed and verified against the stored HA1.
    #[test]
    fn verify_rfc7616_authorization() {
        let header = format!(
            "Digest username=\"Mufasa\", realm=\"{REALM}\", uri=\"/dir/index.html\", \
             algorithm=SHA-256, nonce=\"{NONCE}\", nc=00000001, cnonce=\"{CNONCE}\", qop=auth, \
             response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        );
        let creds = Credentials::parse(&header).expect("valid");
        let stored = ha1(Algorithm::Sha256, "Mufasa", REALM, "Circle of Life");
        assert!(verify(&creds, "GET", &stored));
        assert!(!verify(&creds, "POST", &stored));
        let wrong = ha1(Algorithm::Sha256, "Mufasa", REALM, "Circle of Death");
        assert!(!verify(&creds, "GET", &wrong));
        let md5 = ha1(Algorithm::Md5, "Mufasa", REALM, "Circle of Life");
        assert!(!verify(&creds, "GET", &md5));
        let mut upper = creds.clone();
        upper.response.make_ascii_uppercase();
        assert!(verify(&upper, "GET", &stored));
        let mut short = creds.clone();
        short.response.pop();
        assert!(!verify(&short, "GET", &stored));
        let mut auth_int = creds;
        auth_int.qop = Some("auth-int".into());
        assert!(!verify(&auth_int, "GET", &stored));
    }

    /// RFC 2617 sec. 3.5.
    #[test]
    fn rfc2617_vector() {
        let ha1 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        let got = response(
            Algorithm::Md5,
            &ha1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            1,
            "0a4f113b",
            "auth",
            "GET",
            "/dir/index.html",
        );
        assert_eq!(got, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc2069_round_trip() {
        let chal = Challenge::parse("Digest realm=\"pbx\", nonce=\"abc\"").expect("valid");
        let header = authorize(&chal, "INVITE", "sip:100@pbx", "201", "pw", "ignored", 1)
            .expect("supported");
        let creds = Credentials::parse(&header).expect("valid");
        assert_eq!((creds.qop, creds.cnonce, creds.nc), (None, None, None));
        let ha1 = ha1(Algorithm::Md5, "201", "pbx", "pw");
        let creds = Credentials::parse(&header).expect("valid");
        assert_eq!(
            creds.response,
            response_rfc2069(Algorithm::Md5, &ha1, "abc", "INVITE", "sip:100@pbx")
        );
        assert!(verify(&creds, "INVITE", &ha1));
        assert!(!verify(&creds, "BYE", &ha1));
    }

    #[test]
    fn authorize_echoes_challenge() {
        let chal_value = challenge("pbx \"lab\"", Algorithm::Sha256, "n1", Some("op"), false);
        assert_eq!(
            chal_value,
            "Digest realm=\"pbx \\\"lab\\\"\", nonce=\"n1\", opaque=\"op\", algorithm=SHA-256, qop=\"auth\""
        );
        let chal = Challenge::parse(&chal_value).expect("valid");
        let header = authorize(&chal, "REGISTER", "sip:pbx", "201", "pw", "cn", 0x2a).expect("ok");
        let creds = Credentials::parse(&header).expect("valid");
        assert_eq!(creds.realm, "pbx \"lab\"");
        assert_eq!(creds.opaque.as_deref(), Some("op"));
        assert_eq!(creds.algorithm, Algorithm::Sha256);
        assert_eq!(creds.nc, Some(42));
        assert!(header.contains("nc=0000002a"), "{header}");
        assert!(header.contains("qop=auth,"), "{header}");
        let ha1 = ha1(Algorithm::Sha256, "201", "pbx \"lab\"", "pw");
        assert!(verify(&creds, "REGISTER", &ha1));
    }

    #[test]
    fn stale_challenge() {
        let v = challenge("pbx", Algorithm::Md5, "n", None, true);
        assert_eq!(
            v,
            "Digest realm=\"pbx\", nonce=\"n\", stale=true, algorithm=MD5, qop=\"auth\""
        );
    }

    #[test]
    fn auth_int_only_is_refused() {
        let chal =
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"").expect("ok");
        assert_eq!(
            authorize(&chal, "INVITE", "sip:x", "u", "p", "c", 1),
            Err(AuthError::UnsupportedQop("auth-int".into()))
        );
    }

    #[test]
    fn select_takes_topmost_supported() {
        let values = [
            "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256, qop=\"auth\"",
            "Basic realm=\"r\"",
            "Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"",
            "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256, qop=\"auth\"",
            "Digest realm=\"r\", nonce=\"n\", algorithm=MD5, qop=\"auth\"",
        ];
        let got = select_challenge(values).expect("one is supported");
        assert_eq!(got.algorithm, Algorithm::Sha256);
        assert_eq!(select_challenge(values[..3].iter().copied()), None);
    }
}
