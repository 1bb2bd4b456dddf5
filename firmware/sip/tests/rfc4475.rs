//! RFC 4475 torture messages: one test per message, asserting what sec. 3 of the RFC
//! says about it, plus a table-driven summary over all 49 and a few extra cases
//! (compact forms, folding, tel: URIs).
//!
//! The messages are read at run time from `shared/testdata/rfc4475`, beside the
//! repository.

use pbx_sip::message::{
    parse, validate_request, Contacts, HeaderName, Message, Method, ParseErrorKind, Scheme, Uri,
};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata/rfc4475"
    ))
}

fn load(name: &str) -> Vec<u8> {
    let path = dir().join(format!("{name}.dat"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "RFC 4475 test message {} not readable ({e}); shared/ must sit beside the repository",
            path.display()
        )
    })
}

/// Parses a message that must be well-formed.
fn ok(name: &str) -> Message {
    match parse(&load(name)) {
        Ok(m) => m,
        Err(e) => panic!("{name}: {e}"),
    }
}

/// A valid request: parses and passes validation.
fn valid_request(name: &str) -> Message {
    let m = ok(name);
    assert!(m.is_request(), "{name} is a request");
    if let Err(r) = validate_request(&m) {
        panic!("{name} rejected: {r}");
    }
    m
}

/// The status a request gets: from the parse error's rejection or from validation;
/// `None` when it is accepted.
fn rejection_status(name: &str) -> Option<u16> {
    match parse(&load(name)) {
        Err(e) => Some(
            e.rejection()
                .unwrap_or_else(|| panic!("{name}: no rejection for {e}"))
                .status,
        ),
        Ok(m) => validate_request(&m).err().map(|r| r.status),
    }
}

fn rejected(name: &str, status: u16) -> String {
    match parse(&load(name)) {
        Err(e) => {
            let r = e
                .rejection()
                .unwrap_or_else(|| panic!("{name}: no rejection for {e}"));
            assert_eq!(r.status, status, "{name}: {r}");
            r.reason
        }
        Ok(m) => {
            let r = validate_request(&m).expect_err(name);
            assert_eq!(r.status, status, "{name}: {r}");
            r.reason
        }
    }
}

// ---- 3.1.1 valid messages -------------------------------------------------------

#[test]
fn wsinv_short_tortuous_invite() {
    let m = valid_request("wsinv");
    assert_eq!(m.method(), Some(&Method::Invite));
    let ruri = m.request_uri().unwrap();
    assert_eq!(ruri.user(), Some("vivekg"));
    assert_eq!(ruri.host(), "chair-dnrc.example.com");
    assert_eq!(ruri.params().get("unknownparam"), Some(None));
    // folded To with whitespace around '=' in the tag
    let to = m.to_header().unwrap();
    assert_eq!(to.uri.as_str(), "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(to.tag(), Some("1918181833n"));
    // quoted display name with escaped quote and backslash, tag on a folded line
    let from = m.from_header().unwrap();
    assert_eq!(from.display_name.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(m.max_forwards().unwrap(), Some(68));
    assert_eq!(m.call_id().unwrap(), "wsinv.ndaksdj@192.0.2.1");
    let cseq = m.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, Method::Invite));
    // three Via values: folded across lines, whitespace around '/', comma list
    let vias = m.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[0].transport.as_str(), vias[0].host.as_str()),
        ("UDP", "192.0.2.2")
    );
    assert_eq!(vias[0].branch(), Some("390skdjuw"));
    assert_eq!(
        (vias[1].transport.as_str(), vias[1].host.as_str()),
        ("TCP", "spindle.example.com")
    );
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(
        (vias[2].transport.as_str(), vias[2].host.as_str()),
        ("UDP", "192.168.255.111")
    );
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    // the compact `s` (Subject) header is empty; the unknown header is unfolded
    assert_eq!(m.header(&HeaderName::parse("Subject")), Some(""));
    assert_eq!(
        m.header(&HeaderName::parse("NewFangledHeader")),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(
        m.header(&HeaderName::parse("UnknownHeaderWithUnusualValue")),
        Some(";;,,;;,;")
    );
    let Contacts::List(c) = m.contacts().unwrap() else {
        panic!("contact list")
    };
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].display_name.as_deref(), Some("Quoted string \"\""));
    assert_eq!(c[0].param("newparam"), Some(Some("newvalue")));
    assert_eq!(c[0].param("secondparam"), Some(None));
    assert_eq!(c[0].param("q"), Some(Some("0.33")));
    assert_eq!(
        m.header(&HeaderName::Route),
        Some("<sip:services.example.com;lr;unknownwith=value;unknown-no-value>")
    );
    assert_eq!(m.body().len(), 150);
    assert!(m.body().starts_with(b"v=0\r\n"));
}

#[test]
fn intmeth_wide_range_of_valid_characters() {
    let m = valid_request("intmeth");
    let method = Method::Extension("!interesting-Method0123456789_*+`.%indeed'~".into());
    assert_eq!(m.method(), Some(&method));
    assert!(!method.is_known());
    let ruri = m.request_uri().unwrap();
    assert_eq!(
        ruri.user(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        ruri.password(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(ruri.host(), "example.com");
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK-.!%66*_+`'~"));
    let to = m.to_header().unwrap();
    assert_eq!(
        to.display_name.as_deref(),
        Some("BEL:\u{7} NUL:\0 DEL:\u{7f}")
    );
    let from = m.from_header().unwrap();
    assert_eq!(
        from.display_name.as_deref(),
        Some("token1~` token2'+_ token3*%!.-")
    );
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(
        from.param("fromParam''~+*_!.-%"),
        Some(Some(
            "\"\u{440}\u{430}\u{431}\u{43e}\u{442}\u{430}\u{44e}\u{449}\u{438}\u{439}\""
        ))
    );
    assert_eq!(
        m.call_id().unwrap(),
        "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    );
    assert_eq!(m.cseq().unwrap().method, method);
    assert_eq!(m.max_forwards().unwrap(), Some(255));
    assert_eq!(
        m.header(&HeaderName::parse("extensionHeader-!.%*+_`'~")),
        Some("\u{feff}\u{5927}\u{505c}\u{96fb}")
    );
}

#[test]
fn esc01_valid_escaping() {
    let m = valid_request("esc01");
    assert_eq!(
        m.request_uri().unwrap().user(),
        Some("sips:user@example.com")
    );
    assert_eq!(m.request_uri().unwrap().host(), "example.net");
    assert_eq!(m.to_header().unwrap().uri.user(), Some("user"));
    assert_eq!(m.from_header().unwrap().uri.user(), Some("I have spaces"));
    let Contacts::List(c) = m.contacts().unwrap() else {
        panic!()
    };
    assert_eq!(c[0].uri.user(), Some("caller"));
    assert_eq!(c[0].uri.params().get("lr"), Some(None));
    assert_eq!(c[0].uri.params().get("name"), Some(Some("value%41")));
    // compact `c` is Content-Type, `i` Call-ID
    assert_eq!(m.header(&HeaderName::ContentType), Some("application/sdp"));
    assert_eq!(m.call_id().unwrap(), "esc01.239409asdfakjkn23onasd0-3234");
    // escaped and unescaped forms of the same URI are equivalent (RFC 3261 19.1.4)
    let a = Uri::parse("sip:%75se%72@example.com").unwrap();
    let b = Uri::parse("sip:user@EXAMPLE.com").unwrap();
    assert!(a.equivalent(&b));
    // ...and the raw text is forwarded untouched
    assert_eq!(a.to_string(), "sip:%75se%72@example.com");
}

#[test]
fn escnull_escaped_nulls() {
    let m = valid_request("escnull");
    assert_eq!(m.to_header().unwrap().uri.user(), Some("null-\0-null"));
    let Contacts::List(c) = m.contacts().unwrap() else {
        panic!()
    };
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].uri.user(), Some("\0"));
    assert_eq!(c[1].uri.user(), Some("\0\0"));
}

#[test]
fn esc02_percent_that_is_not_an_escape() {
    let m = valid_request("esc02");
    assert_eq!(m.method(), Some(&Method::Extension("RE%47IST%45R".into())));
    assert_eq!(
        m.to_header().unwrap().display_name.as_deref(),
        Some("%Z%45")
    );
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK209%fzsnel234"));
    // C%6Fntact is an extension header, not a Contact
    let Contacts::List(c) = m.contacts().unwrap() else {
        panic!()
    };
    assert_eq!(c.len(), 2);
    assert_eq!(
        m.header(&HeaderName::parse("C%6Fntact")),
        Some("<sip:alias2@host2.example.com>")
    );
}

#[test]
fn lwsdisp_no_space_before_laquot() {
    let m = valid_request("lwsdisp");
    let from = m.from_header().unwrap();
    assert_eq!(from.display_name.as_deref(), Some("caller"));
    assert_eq!(from.uri.as_str(), "sip:caller@example.com");
    assert_eq!(from.tag(), Some("323"));
}

#[test]
fn longreq_long_values() {
    let m = valid_request("longreq");
    assert_eq!(m.vias().unwrap().len(), 34);
    assert!(m.call_id().unwrap().len() > 100);
    let to = m.to_header().unwrap();
    assert!(to
        .display_name
        .as_deref()
        .unwrap()
        .contains("extremeextreme"));
    assert_eq!(to.uri.port(), Some(6000));
    assert!(m
        .from_header()
        .unwrap()
        .uri
        .user()
        .unwrap()
        .starts_with("amazinglylongcallername"));
    assert_eq!(m.body().len(), 150);
}

#[test]
fn dblreq_extra_octets_in_datagram() {
    // Content-Length: 0, the rest of the datagram (a second request) is ignored
    let m = valid_request("dblreq");
    assert_eq!(m.method(), Some(&Method::Register));
    assert!(m.body().is_empty());
    assert_eq!(
        m.call_id().unwrap(),
        "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    );
}

#[test]
fn semiuri_semicolon_in_user() {
    let m = valid_request("semiuri");
    let ruri = m.request_uri().unwrap();
    assert_eq!(ruri.user(), Some("user;par=u@example.net"));
    assert_eq!(ruri.host(), "example.com");
    assert!(ruri.params().is_empty());
    assert_eq!(m.header_all(&HeaderName::Accept).count(), 1);
    assert!(m
        .header(&HeaderName::Accept)
        .unwrap()
        .ends_with("message/sip, message/sipfrag"));
}

#[test]
fn transports_varied_and_unknown() {
    let m = valid_request("transports");
    let t: Vec<String> = m.vias().unwrap().into_iter().map(|v| v.transport).collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    assert_eq!(m.call_id().unwrap(), "transports.kijh4akdnaqjkwendsasfdj");
}

#[test]
fn mpart01_multipart_body() {
    let m = valid_request("mpart01");
    let ct = m.header(&HeaderName::ContentType).unwrap();
    assert!(ct.starts_with("multipart/mixed"), "{ct}");
    let declared: usize = m
        .header(&HeaderName::ContentLength)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(m.body().len(), declared);
}

#[test]
fn unreason_utf8_reason_phrase() {
    let m = ok("unreason");
    assert_eq!(m.status(), Some(200));
    let reason = m.reason().unwrap();
    assert!(reason.starts_with("= 2**3 * 5**2 "), "{reason}");
    assert!(reason.contains("\u{441}\u{442}\u{43e}"), "{reason}"); // "сто" in Cyrillic
    assert_eq!(m.body().len(), 154);
}

#[test]
fn noreason_empty_reason_phrase() {
    let m = ok("noreason");
    assert_eq!(m.status(), Some(100));
    assert_eq!(m.reason(), Some(""));
    assert_eq!(m.cseq().unwrap().method, Method::Invite);
}

// ---- 3.1.2 invalid messages -----------------------------------------------------

#[test]
fn badinv01_extraneous_separators() {
    let reason = rejected("badinv01", 400);
    assert!(reason.contains("Via"), "{reason}");
}

#[test]
fn clerr_content_length_larger_than_body() {
    let e = parse(&load("clerr")).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ParseErrorKind::BodyTooShort { declared: 9999, .. }
        ),
        "{e}"
    );
    assert_eq!(e.rejection().unwrap().status, 400);
    // the headers survive so that the 400 can be built
    assert_eq!(
        e.partial().unwrap().call_id().unwrap(),
        "clerr.0ha0isndaksdjweiafasdk3"
    );
}

#[test]
fn ncl_negative_content_length() {
    let e = parse(&load("ncl")).unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::BadContentLength);
    assert_eq!(e.rejection().unwrap().status, 400);
}

#[test]
fn scalar02_overlarge_request_values() {
    let m = ok("scalar02");
    assert!(m.cseq().is_err());
    assert!(m.max_forwards().is_err());
    // an overlarge delta-seconds reads as 2^32-1 (RFC 3261 20.19)
    assert_eq!(m.expires().unwrap(), Some(u32::MAX));
    let reason = rejected("scalar02", 400);
    assert!(reason.contains("CSeq"), "{reason}");
}

#[test]
fn scalarlg_overlarge_response_values() {
    // a response: parses, but its CSeq is unusable, so it cannot match a transaction
    let m = ok("scalarlg");
    assert_eq!(m.status(), Some(503));
    assert!(m.cseq().is_err());
    assert!(
        validate_request(&m).is_ok(),
        "responses are not validated as requests"
    );
}

#[test]
fn quotbal_unterminated_quote() {
    let reason = rejected("quotbal", 400);
    assert!(reason.contains("To"), "{reason}");
}

#[test]
fn ltgtruri_angle_brackets_around_request_uri() {
    let e = parse(&load("ltgtruri")).unwrap_err();
    assert!(matches!(e.kind(), ParseErrorKind::BadRequestUri(_)), "{e}");
    assert_eq!(e.rejection().unwrap().status, 400);
}

#[test]
fn lwsruri_whitespace_in_request_uri() {
    let e = parse(&load("lwsruri")).unwrap_err();
    assert!(matches!(e.kind(), ParseErrorKind::BadRequestLine(_)), "{e}");
    assert_eq!(e.rejection().unwrap().status, 400);
}

#[test]
fn lwsstart_multiple_spaces_in_request_line() {
    let e = parse(&load("lwsstart")).unwrap_err();
    assert!(matches!(e.kind(), ParseErrorKind::BadRequestLine(_)), "{e}");
    assert_eq!(e.rejection().unwrap().status, 400);
}

#[test]
fn trws_trailing_whitespace_in_request_line() {
    let e = parse(&load("trws")).unwrap_err();
    assert!(matches!(e.kind(), ParseErrorKind::BadRequestLine(_)), "{e}");
    assert_eq!(e.rejection().unwrap().status, 400);
}

#[test]
fn escruri_headers_in_request_uri() {
    let m = ok("escruri");
    assert_eq!(
        m.request_uri().unwrap().headers(),
        [("Route".to_string(), "<sip:example.com>".to_string())]
    );
    let reason = rejected("escruri", 400);
    assert!(reason.contains("Request-URI"), "{reason}");
}

#[test]
fn baddate_non_gmt_date() {
    let m = ok("baddate");
    assert!(m.header(&HeaderName::Date).unwrap().ends_with("EST"));
    let reason = rejected("baddate", 400);
    assert!(reason.contains("Date"), "{reason}");
}

#[test]
fn regbadct_contact_uri_with_query_outside_brackets() {
    let m = ok("regbadct");
    assert!(m.contacts().is_err());
    let reason = rejected("regbadct", 400);
    assert!(reason.contains("Contact"), "{reason}");
}

#[test]
fn badaspec_spaces_inside_angle_brackets() {
    let m = ok("badaspec");
    // From has a quoted display name with a comma: fine
    assert_eq!(
        m.from_header().unwrap().display_name.as_deref(),
        Some("Bell, Alexander")
    );
    assert!(m.to_header().is_err());
    let reason = rejected("badaspec", 400);
    assert!(reason.contains("To"), "{reason}");
}

#[test]
fn baddn_unquoted_display_name_with_comma() {
    let m = ok("baddn");
    assert!(m.from_header().is_err());
    rejected("baddn", 400);
}

#[test]
fn badvers_unknown_protocol_version() {
    let m = ok("badvers");
    assert_eq!(m.version().as_str(), "SIP/7.0");
    rejected("badvers", 505);
}

#[test]
fn mismatch01_cseq_method_mismatch() {
    let reason = rejected("mismatch01", 400);
    assert!(reason.contains("CSeq"), "{reason}");
}

#[test]
fn mismatch02_unknown_method_and_cseq_mismatch() {
    // RFC 4475 3.1.2.18 accepts 501 or 400; the mismatch is decided here (400),
    // before the application would see the unknown method.
    let m = ok("mismatch02");
    assert!(!m.method().unwrap().is_known());
    rejected("mismatch02", 400);
}

#[test]
fn bigcode_overlarge_status_code() {
    let e = parse(&load("bigcode")).unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::BadStatusLine);
    assert!(
        e.rejection().is_none(),
        "responses are dropped, never answered"
    );
}

// ---- 3.2 transaction layer ------------------------------------------------------

#[test]
fn badbranch_bare_magic_cookie() {
    let m = valid_request("badbranch");
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK"));
}

// ---- 3.3 application layer ------------------------------------------------------

#[test]
fn insuf_missing_required_headers() {
    let reason = rejected("insuf", 400);
    assert!(reason.contains("missing"), "{reason}");
}

#[test]
fn unkscm_unknown_request_uri_scheme() {
    let m = ok("unkscm");
    assert_eq!(
        m.request_uri().unwrap().scheme(),
        &Scheme::Other("nobodyknowsthisscheme".into())
    );
    rejected("unkscm", 416);
}

#[test]
fn novelsc_atypical_request_uri_scheme() {
    let m = ok("novelsc");
    assert_eq!(
        m.request_uri().unwrap().scheme(),
        &Scheme::Other("soap.beep".into())
    );
    rejected("novelsc", 416);
}

#[test]
fn unksm2_unknown_schemes_in_headers() {
    let m = valid_request("unksm2");
    assert_eq!(
        m.to_header().unwrap().uri.scheme(),
        &Scheme::Other("isbn".into())
    );
    assert_eq!(
        m.from_header().unwrap().uri.as_str(),
        "http://www.example.com"
    );
    let Contacts::List(c) = m.contacts().unwrap() else {
        panic!()
    };
    assert_eq!(c[0].uri.as_str(), "name:John_Smith");
}

#[test]
fn bext01_unknown_option_tags_are_for_the_application() {
    let m = valid_request("bext01");
    assert!(m.header(&HeaderName::Require).is_some());
    assert!(m.header(&HeaderName::ProxyRequire).is_some());
}

#[test]
fn invut_unknown_content_type_is_for_the_application() {
    let m = valid_request("invut");
    assert_eq!(
        m.header(&HeaderName::ContentType),
        Some("application/unknownformat")
    );
}

#[test]
fn regaut01_unknown_auth_scheme_is_for_the_application() {
    let m = valid_request("regaut01");
    assert!(m
        .header(&HeaderName::Authorization)
        .unwrap()
        .starts_with("NoOneKnowsThisScheme"));
}

#[test]
fn multi01_duplicate_single_value_headers() {
    let reason = rejected("multi01", 400);
    assert!(reason.contains("duplicate"), "{reason}");
}

#[test]
fn mcl01_multiple_content_length() {
    let e = parse(&load("mcl01")).unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::MultipleContentLength);
    assert_eq!(e.rejection().unwrap().status, 400);
}

#[test]
fn bcast_broadcast_via_in_response() {
    let m = ok("bcast");
    assert_eq!(m.status(), Some(200));
    assert_eq!(m.vias().unwrap()[1].host, "255.255.255.255");
}

#[test]
fn zeromf_max_forwards_zero_is_for_the_application() {
    let m = valid_request("zeromf");
    assert_eq!(m.max_forwards().unwrap(), Some(0));
}

#[test]
fn cparam01_addr_spec_params_belong_to_header() {
    let m = valid_request("cparam01");
    let Contacts::List(c) = m.contacts().unwrap() else {
        panic!()
    };
    assert_eq!(c[0].uri.as_str(), "sip:+19725552222@gw1.example.net");
    assert!(c[0].uri.params().is_empty());
    assert_eq!(c[0].param("unknownparam"), Some(None));
}

#[test]
fn cparam02_name_addr_params_belong_to_uri() {
    let m = valid_request("cparam02");
    let Contacts::List(c) = m.contacts().unwrap() else {
        panic!()
    };
    assert_eq!(c[0].uri.params().get("unknownparam"), Some(None));
    assert!(c[0].params.is_empty());
}

#[test]
fn regescrt_escaped_headers_in_contact() {
    let m = valid_request("regescrt");
    let Contacts::List(c) = m.contacts().unwrap() else {
        panic!()
    };
    assert_eq!(
        c[0].uri.headers(),
        [("Route".to_string(), "<sip:sip.example.com>".to_string())]
    );
}

#[test]
fn sdp01_unacceptable_accept_is_for_the_application() {
    let m = valid_request("sdp01");
    assert!(m
        .header(&HeaderName::Accept)
        .unwrap()
        .contains("text/nobodyKnowsThis"));
}

// ---- 3.4 backward compatibility -------------------------------------------------

#[test]
fn inv2543_rfc2543_syntax() {
    let m = valid_request("inv2543");
    let via = m.top_via().unwrap();
    assert_eq!(via.branch(), None);
    assert_eq!(m.from_header().unwrap().tag(), None);
    assert_eq!(m.max_forwards().unwrap(), None);
    // addr-spec To: ;user=phone is a header parameter
    assert_eq!(m.to_header().unwrap().param("user"), Some(Some("phone")));
    // no Content-Length on UDP: the body is the rest of the datagram
    assert!(m.body().starts_with(b"v=0"));
}

// ---- summary --------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// A request that parses and validates.
    Accept,
    /// A request answered with this status.
    Reject(u16),
    /// A response that parses.
    Response,
    /// A response that does not parse (dropped silently).
    Drop,
}

#[test]
fn all_49_messages() {
    use Expect::*;
    const CASES: &[(&str, Expect)] = &[
        ("wsinv", Accept),
        ("intmeth", Accept),
        ("esc01", Accept),
        ("escnull", Accept),
        ("esc02", Accept),
        ("lwsdisp", Accept),
        ("longreq", Accept),
        ("dblreq", Accept),
        ("semiuri", Accept),
        ("transports", Accept),
        ("mpart01", Accept),
        ("unreason", Response),
        ("noreason", Response),
        ("badinv01", Reject(400)),
        ("clerr", Reject(400)),
        ("ncl", Reject(400)),
        ("scalar02", Reject(400)),
        ("scalarlg", Response),
        ("quotbal", Reject(400)),
        ("ltgtruri", Reject(400)),
        ("lwsruri", Reject(400)),
        ("lwsstart", Reject(400)),
        ("trws", Reject(400)),
        ("escruri", Reject(400)),
        ("baddate", Reject(400)),
        ("regbadct", Reject(400)),
        ("badaspec", Reject(400)),
        ("baddn", Reject(400)),
        ("badvers", Reject(505)),
        ("mismatch01", Reject(400)),
        ("mismatch02", Reject(400)),
        ("bigcode", Drop),
        ("badbranch", Accept),
        ("insuf", Reject(400)),
        ("unkscm", Reject(416)),
        ("novelsc", Reject(416)),
        ("unksm2", Accept),
        ("bext01", Accept),
        ("invut", Accept),
        ("regaut01", Accept),
        ("multi01", Reject(400)),
        ("mcl01", Reject(400)),
        ("bcast", Response),
        ("zeromf", Accept),
        ("cparam01", Accept),
        ("cparam02", Accept),
        ("regescrt", Accept),
        ("sdp01", Accept),
        ("inv2543", Accept),
    ];
    assert_eq!(CASES.len(), 49);
    let on_disk = std::fs::read_dir(dir())
        .expect("shared/testdata/rfc4475 must exist beside the repository")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "dat"))
        })
        .count();
    assert_eq!(on_disk, 49);
    for &(name, expect) in CASES {
        let got = match parse(&load(name)) {
            Ok(m) if !m.is_request() => Response,
            Err(e) if !e.is_request() => Drop,
            _ => match rejection_status(name) {
                None => Accept,
                Some(s) => Reject(s),
            },
        };
        assert_eq!(got, expect, "{name}");
        // everything that parses survives serialisation and re-parsing unchanged
        if let Ok(m) = parse(&load(name)) {
            let again = parse(&m.to_bytes()).unwrap_or_else(|e| panic!("{name} reparse: {e}"));
            assert_eq!(again, m, "{name} roundtrip");
        }
    }
}

// ---- extra: compact forms, folding, tel: URIs, non-UTF-8 -------------------------

const OPTIONS: &str = "OPTIONS sip:alice@example.com SIP/2.0\r\n";

#[test]
fn compact_forms_map_to_long_names() {
    let raw = format!(
        "{OPTIONS}v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nf: <sip:bob@example.com>;tag=1\r\n\
         t: <sip:alice@example.com>\r\ni: cid\r\nCSeq: 1 OPTIONS\r\nm: <sip:bob@192.0.2.1>\r\nl: 0\r\nk: path\r\n\
         c: text/plain\r\ne: gzip\r\ns: hi\r\no: presence\r\nu: dialog\r\nr: <sip:x@y>\r\n\
         b: <sip:z@y>\r\nx: 1800\r\n\r\n"
    );
    let m = parse(raw.as_bytes()).unwrap();
    let names: Vec<&str> = m.headers().map(|h| h.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "Via",
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Contact",
            "Content-Length",
            "Supported",
            "Content-Type",
            "Content-Encoding",
            "Subject",
            "Event",
            "Allow-Events",
            "Refer-To",
            "Referred-By",
            "Session-Expires"
        ]
    );
    assert_eq!(m.call_id().unwrap(), "cid");
    assert_eq!(m.header(&HeaderName::parse("EVENT")), Some("presence"));
    assert_eq!(HeaderName::parse("call-id"), HeaderName::CallId);
    assert_eq!(HeaderName::parse("X-Foo"), HeaderName::parse("x-foo"));
    validate_request(&m).unwrap();
    // serialisation writes long names
    let out = String::from_utf8(m.to_bytes()).unwrap();
    assert!(out.contains("\r\nCall-ID: cid\r\n"), "{out}");
}

#[test]
fn folding_with_tabs_and_spaces() {
    let raw = format!(
        "{OPTIONS}Via: SIP/2.0/UDP 192.0.2.1\r\n\t;branch=z9hG4bK1\r\nFrom: <sip:bob@example.com>\r\n  \t;tag=1\r\n\
         To: <sip:alice@example.com>\r\nCall-ID: cid\r\nCSeq: 1\r\n OPTIONS\r\nSubject: a\r\n b\r\n\tc\r\n\r\n"
    );
    let m = parse(raw.as_bytes()).unwrap();
    assert_eq!(
        m.header(&HeaderName::Via),
        Some("SIP/2.0/UDP 192.0.2.1 ;branch=z9hG4bK1")
    );
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK1"));
    assert_eq!(m.from_header().unwrap().tag(), Some("1"));
    assert_eq!(m.cseq().unwrap().method, Method::Options);
    assert_eq!(m.header(&HeaderName::parse("subject")), Some("a b c"));
    validate_request(&m).unwrap();
}

#[test]
fn tel_uris() {
    let u = Uri::parse("tel:+49-30-1234567;phone-context=example.com").unwrap();
    assert_eq!(u.scheme(), &Scheme::Tel);
    assert_eq!(u.user(), Some("+49-30-1234567"));
    assert_eq!(u.params().get("phone-context"), Some(Some("example.com")));
    assert_eq!(u.user_host(), "+49301234567");
    assert!(u.equivalent(&Uri::parse("TEL:+49.30.123.4567;Phone-Context=EXAMPLE.com").unwrap()));
    assert!(!u.equivalent(&Uri::parse("tel:+49-30-1234568;phone-context=example.com").unwrap()));
    assert!(Uri::parse("tel:").is_err());
    assert!(Uri::parse("tel:abc-xyz").is_err());
    // a tel: Request-URI is accepted
    let raw = "INVITE tel:+4930123 SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n\
               To: <tel:+4930123>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let m = parse(raw.as_bytes()).unwrap();
    validate_request(&m).unwrap();
    assert_eq!(m.to_header().unwrap().uri.user(), Some("+4930123"));
}

#[test]
fn non_utf8_header_spoils_only_itself() {
    let mut raw =
        format!("{OPTIONS}Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: \"").into_bytes();
    raw.extend_from_slice(
        b"J\xfcrgen\" <sip:j@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\n",
    );
    raw.extend_from_slice(b"Call-ID: cid\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
    let m = parse(&raw).unwrap();
    assert_eq!(m.call_id().unwrap(), "cid");
    assert_eq!(m.to_header().unwrap().uri.user(), Some("alice"));
    assert!(m.from_header().is_err());
    let from = m.headers().find(|h| *h.name() == HeaderName::From).unwrap();
    assert!(!from.is_utf8());
    assert_eq!(from.raw_value(), b"\"J\xfcrgen\" <sip:j@example.com>;tag=1");
    // forwarded byte for byte
    assert!(m.to_bytes().windows(7).any(|w| w == b"J\xfcrgen\""));
    let r = validate_request(&m).unwrap_err();
    assert_eq!(
        (r.status, r.reason.as_str()),
        (400, "Bad Request: malformed From")
    );
}
