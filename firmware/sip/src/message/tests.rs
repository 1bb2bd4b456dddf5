//! Unit tests of the message layer's smaller pieces; RFC 4475 and property tests
//! live in `tests/`.

use super::*;

const REQ: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport, SIP/2.0/TCP proxy.example.com;branch=z9hG4bK0\r\n\
Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKx;received=192.0.2.10;rport=5070\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: c1@192.0.2.1\r\n\
CSeq: 7 INVITE\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:alice@192.0.2.1>;expires=60, \"B\" <sip:b@192.0.2.2>;q=0.5\r\n\
Expires: 120\r\n\
Content-Type: text/plain\r\n\
Content-Length: 5\r\n\
\r\n\
hello";

#[test]
fn typed_accessors() {
    let m = parse(REQ).unwrap();
    validate_request(&m).unwrap();
    let vias = m.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].rport(), Some(None));
    assert_eq!(vias[0].port, Some(5060));
    assert_eq!(vias[1].transport, "TCP");
    assert_eq!(vias[2].rport(), Some(Some(5070)));
    assert_eq!(vias[2].received(), Some("192.0.2.10"));
    assert_eq!(m.top_via().unwrap(), vias[0]);
    assert_eq!(
        m.from_header().unwrap().display_name.as_deref(),
        Some("Alice")
    );
    assert_eq!(m.to_header().unwrap().tag(), None);
    assert_eq!(
        m.cseq().unwrap(),
        CSeq {
            seq: 7,
            method: Method::Invite
        }
    );
    let Contacts::List(c) = m.contacts().unwrap() else {
        panic!("list")
    };
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].param("expires"), Some(Some("60")));
    assert_eq!(c[1].display_name.as_deref(), Some("B"));
    assert_eq!(m.expires().unwrap(), Some(120));
    assert_eq!(m.max_forwards().unwrap(), Some(70));
    assert_eq!(m.body(), b"hello");
}

#[test]
fn missing_and_malformed_headers_name_the_header() {
    let m =
        parse(b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: x OPTIONS\r\nMax-Forwards: 256\r\n\r\n").unwrap();
    assert_eq!(m.top_via(), Err(HeaderError::Missing(HeaderName::Via)));
    assert_eq!(m.call_id().unwrap_err().header(), &HeaderName::CallId);
    assert!(matches!(
        m.cseq(),
        Err(HeaderError::Malformed {
            header: HeaderName::CSeq,
            ..
        })
    ));
    assert!(m.max_forwards().is_err());
    assert_eq!(m.contacts().unwrap(), Contacts::List(vec![]));
    assert_eq!(m.expires().unwrap(), None);
    let star = parse(b"REGISTER sip:b SIP/2.0\r\nContact: *\r\nExpires: 0\r\n\r\n").unwrap();
    assert_eq!(star.contacts().unwrap(), Contacts::Star);
    let mixed = parse(b"REGISTER sip:b SIP/2.0\r\nContact: *, <sip:a@b>\r\n\r\n").unwrap();
    assert!(mixed.contacts().is_err());
}

#[test]
fn validate_maps_errors_to_statuses() {
    let base = "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                From: <sip:a@h>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n";
    let check = |extra: &str, body: &str| {
        let raw = format!("{base}{extra}\r\n{body}");
        let m = parse(raw.as_bytes()).unwrap();
        validate_request(&m).map_err(|r| (r.status, r.reason))
    };
    assert_eq!(check("", ""), Ok(()));
    assert_eq!(
        check("Max-Forwards: 0\r\n", ""),
        Ok(()),
        "483 is the application's call"
    );
    assert_eq!(check("Max-Forwards: 256\r\n", "").unwrap_err().0, 400);
    assert_eq!(
        check("Max-Forwards: abc\r\n", "").unwrap_err().1,
        "Bad Request: malformed Max-Forwards"
    );
    assert_eq!(
        check("Max-Forwards: 1\r\nMax-Forwards: 2\r\n", "")
            .unwrap_err()
            .1,
        "Bad Request: duplicate Max-Forwards"
    );
    assert_eq!(
        check("Call-ID: d\r\n", "").unwrap_err().1,
        "Bad Request: duplicate Call-ID"
    );
    assert_eq!(
        check("Via: garbage\r\n", "").unwrap_err().1,
        "Bad Request: malformed Via"
    );
    assert_eq!(
        check("Expires: soon\r\n", "").unwrap_err().1,
        "Bad Request: malformed Expires"
    );
    assert_eq!(
        check("Contact: <sip:x@y\r\n", "").unwrap_err().1,
        "Bad Request: malformed Contact"
    );
    // a datagram longer than Content-Length is cut, so validation sees a match
    assert_eq!(check("Content-Length: 2\r\n", "abcd"), Ok(()));
    let m = parse(format!("{base}Content-Length: 2\r\n\r\nabcd").as_bytes()).unwrap();
    assert_eq!(m.body(), b"ab");
    // a message built by hand with a wrong Content-Length header
    let mut m = parse(format!("{base}Content-Length: 2\r\n\r\nab").as_bytes()).unwrap();
    m.set_body(b"abc".to_vec());
    assert_eq!(
        validate_request(&m).unwrap_err().reason,
        "Bad Request: Content-Length mismatch"
    );
    // ...but serialisation writes the right one
    assert!(String::from_utf8(m.to_bytes())
        .unwrap()
        .contains("Content-Length: 3\r\n"));
    let raw = base.replace("CSeq: 1 INVITE", "CSeq: 1 BYE") + "\r\n";
    let m = parse(raw.as_bytes()).unwrap();
    assert_eq!(
        validate_request(&m).unwrap_err().reason,
        "Bad Request: CSeq method does not match"
    );
    let raw = base.replace("sip:bob@example.com SIP", "mailto:bob@example.com SIP") + "\r\n";
    assert_eq!(
        validate_request(&parse(raw.as_bytes()).unwrap())
            .unwrap_err()
            .status,
        416
    );
    let raw = base.replace("SIP/2.0\r\n", "SIP/3.0\r\n") + "\r\n";
    assert_eq!(
        validate_request(&parse(raw.as_bytes()).unwrap())
            .unwrap_err()
            .status,
        505
    );
}

#[test]
fn parse_errors_and_limits() {
    let e = parse(b"").unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::Empty);
    assert!(e.rejection().is_none());
    let e = parse(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x").unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::Incomplete);
    // a datagram may end right after its last header line (RFC 4475 baddn)
    assert_eq!(
        parse(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n")
            .unwrap()
            .header(&HeaderName::Via),
        Some("x")
    );
    let e = parse(b"OPTIONS sip:a@b SIP/2.0\r\nno colon here\r\n\r\n").unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::BadHeaderLine { line: 2 });
    assert_eq!(e.rejection().unwrap().status, 400);
    let e = parse(b"OPTIONS sip:a@b SIP/2.0\r\n folded first\r\n\r\n").unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::BadHeaderLine { line: 2 });
    let e = parse(b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nabc").unwrap_err();
    assert!(e.rejection().is_none(), "responses are never answered");
    let limits = Limits {
        max_message_size: 64,
        max_headers: 2,
    };
    let e = parse_with(&[b'A'; 65], &limits).unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::TooLarge { limit: 64 });
    assert_eq!(e.rejection().unwrap().status, 513);
    let e = parse_with(
        b"OPTIONS sip:a SIP/2.0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
        &limits,
    )
    .unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::TooManyHeaders { limit: 2 });
    assert_eq!(
        Limits::default(),
        Limits {
            max_message_size: 65536,
            max_headers: 128
        }
    );
    // leading CRLFs are skipped, LF-only line ends accepted
    let m = parse(b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\nCall-ID: x\n\n").unwrap();
    assert_eq!(m.call_id().unwrap(), "x");
}

#[test]
fn client_stream_decoder_reports_pongs() {
    let mut d = StreamDecoder::client(Limits::default());
    // a pong split across reads: nothing until the LF is there
    d.push(b"\r");
    assert_eq!(d.next(), None);
    d.push(b"\n");
    assert_eq!(d.next(), Some(Ok(Frame::Pong)));
    assert_eq!(d.next(), None);
    // a pong right before a message, and one right after it
    d.push(b"\r\n");
    d.push(REQ);
    d.push(b"\r\n");
    assert_eq!(d.next(), Some(Ok(Frame::Pong)));
    assert!(matches!(d.next(), Some(Ok(Frame::Message(_)))));
    assert_eq!(d.next(), Some(Ok(Frame::Pong)));
    assert_eq!(d.next(), None);
    // two pongs arriving together are two answers, not a ping
    d.push(b"\r\n\r\n");
    assert_eq!(d.next(), Some(Ok(Frame::Pong)));
    assert_eq!(d.next(), Some(Ok(Frame::Pong)));
    assert_eq!(d.next(), None);
    assert_eq!(d.buffered(), 0);
    // a server-side decoder never reports a pong: a lone CRLF before a message is skipped
    let mut d = StreamDecoder::new(Limits::default());
    d.push(b"\r\n");
    d.push(REQ);
    assert!(matches!(d.next(), Some(Ok(Frame::Message(_)))));
    assert_eq!(d.next(), None);
}

#[test]
fn stream_decoder_frames_and_keepalives() {
    let mut d = StreamDecoder::new(Limits::default());
    d.push(b"\r\n\r\n");
    assert_eq!(d.next(), Some(Ok(Frame::KeepAlive)));
    assert_eq!(d.next(), None);
    d.push(b"\r\n");
    assert_eq!(d.next(), None, "a lone CRLF may be the start of a ping");
    d.push(REQ);
    let Some(Ok(Frame::Message(m))) = d.next() else {
        panic!("message")
    };
    assert_eq!(m.body(), b"hello");
    assert_eq!(d.next(), None);
    assert_eq!(d.buffered(), 0);
    // body arrives later
    d.push(&REQ[..REQ.len() - 2]);
    assert_eq!(d.next(), None);
    d.push(&REQ[REQ.len() - 2..]);
    assert!(matches!(d.next(), Some(Ok(Frame::Message(_)))));
    // no Content-Length on a stream is a framing error, after which nothing comes
    d.push(b"OPTIONS sip:a SIP/2.0\r\nCall-ID: x\r\n\r\n");
    let e = d.next().unwrap().unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::MissingContentLength);
    assert_eq!(e.rejection().unwrap().status, 400);
    assert!(d.has_failed());
    d.push(REQ);
    assert_eq!(d.next(), None);
    // an endless header section hits the size limit
    let mut d = StreamDecoder::new(Limits {
        max_message_size: 100,
        max_headers: 128,
    });
    d.push(&[b'X'; 101]);
    assert!(matches!(d.next(), Some(Err(_))));
}

#[test]
fn builder_response_to_copies_dialog_headers() {
    let req = parse(REQ).unwrap();
    let resp = MessageBuilder::response_to(&req, 180, "Ringing")
        .set_to_tag("b7")
        .header(HeaderName::Contact, "<sip:bob@192.0.2.5>")
        .build();
    assert_eq!(resp.status(), Some(180));
    assert_eq!(resp.reason(), Some("Ringing"));
    assert_eq!(resp.vias().unwrap(), req.vias().unwrap());
    assert_eq!(resp.header_count(&HeaderName::Via), 2);
    assert_eq!(resp.from_header().unwrap(), req.from_header().unwrap());
    assert_eq!(resp.to_header().unwrap().tag(), Some("b7"));
    assert_eq!(resp.call_id().unwrap(), "c1@192.0.2.1");
    assert_eq!(resp.cseq().unwrap(), req.cseq().unwrap());
    assert!(resp.header(&HeaderName::Expires).is_none());
    // a To that already has a tag keeps it
    let again = MessageBuilder::response_to(&resp, 200, "OK")
        .set_to_tag("zz")
        .build();
    assert_eq!(again.to_header().unwrap().tag(), Some("b7"));
    let bytes = resp.to_bytes();
    assert!(bytes.starts_with(
        b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport, "
    ));
    assert!(bytes.ends_with(b"Content-Length: 0\r\n\r\n"));
}

#[test]
fn set_top_via_keeps_the_rest() {
    let mut req = parse(REQ).unwrap();
    let mut top = req.top_via().unwrap();
    top.params.set("received", Some("203.0.113.7"));
    top.params.set("rport", Some("40000"));
    req.set_top_via(&top);
    let vias = req.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].received(), Some("203.0.113.7"));
    assert_eq!(vias[0].rport(), Some(Some(40000)));
    assert_eq!(vias[1].host, "proxy.example.com");
    assert_eq!(
        req.header(&HeaderName::Via),
        Some("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport=40000;received=203.0.113.7, SIP/2.0/TCP proxy.example.com;branch=z9hG4bK0")
    );
    let resp = MessageBuilder::response(200, "OK")
        .set_top_via(&top)
        .build();
    assert_eq!(resp.top_via().unwrap(), top);
}

#[test]
fn header_edits() {
    let mut m = MessageBuilder::request(Method::Options, Uri::parse("sip:a@b").unwrap())
        .header(HeaderName::Via, "SIP/2.0/UDP x;branch=z9hG4bK2")
        .header(HeaderName::parse("X-A"), "1")
        .build();
    m.prepend_header(HeaderName::Via, "SIP/2.0/UDP y;branch=z9hG4bK3");
    assert_eq!(m.top_via().unwrap().host, "y");
    m.set_header(HeaderName::parse("x-a"), "2");
    assert_eq!(m.header(&HeaderName::parse("X-A")), Some("2"));
    assert_eq!(m.remove_header(&HeaderName::Via), 2);
    assert_eq!(m.headers().count(), 1);
}

#[test]
fn uri_parts_escapes_and_equivalence() {
    let u =
        Uri::parse("sips:al%69ce:pw@[2001:db8::1]:5061;transport=tcp;lr?subject=hi%20there&x=1")
            .unwrap();
    assert_eq!(u.scheme(), &Scheme::Sips);
    assert_eq!(u.user(), Some("alice"));
    assert_eq!(u.password(), Some("pw"));
    assert_eq!(u.host(), "[2001:db8::1]");
    assert_eq!(u.port(), Some(5061));
    assert_eq!(u.transport(), Some("tcp"));
    assert_eq!(u.params().get("LR"), Some(None));
    assert_eq!(
        u.headers()[0],
        ("subject".to_string(), "hi there".to_string())
    );
    assert_eq!(u.user_host(), "alice@[2001:db8::1]");
    // RFC 3261 19.1.4 examples
    let eq = |a: &str, b: &str| Uri::parse(a).unwrap().equivalent(&Uri::parse(b).unwrap());
    assert!(eq(
        "sip:%61lice@atlanta.com;transport=TCP",
        "sip:alice@AtLanTa.CoM;Transport=tcp"
    ));
    assert!(eq(
        "sip:carol@chicago.com",
        "sip:carol@chicago.com;newparam=5"
    ));
    assert!(eq(
        "sip:carol@chicago.com;security=on",
        "sip:carol@chicago.com;newparam=5"
    ));
    assert!(eq(
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
    ));
    assert!(!eq(
        "SIP:ALICE@AtLanTa.CoM;Transport=udp",
        "sip:alice@AtLanTa.CoM;Transport=UDP"
    ));
    assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
    assert!(!eq(
        "sip:bob@biloxi.com",
        "sip:bob@biloxi.com;transport=udp"
    ));
    assert!(!eq(
        "sip:carol@chicago.com",
        "sip:carol@chicago.com?Subject=next%20meeting"
    ));
    assert!(!eq(
        "sip:carol@chicago.com;security=on",
        "sip:carol@chicago.com;security=off"
    ));
    // repeated parameters (found by fuzzing): equivalence stays reflexive
    let dup = Uri::parse("sip:h;par=1;par=2").unwrap();
    assert!(dup.equivalent(&dup));
    for bad in [
        "",
        "sip",
        "sip:",
        "sip:a@",
        "sip:host:99999",
        "sip:ho st",
        "sip:a@b;=x",
        "sip:%4",
        "<sip:a@b>",
    ] {
        assert!(Uri::parse(bad).is_err(), "{bad}");
    }
    // setters re-render the raw text and keep spans valid
    let mut u = Uri::parse("sip:bob@example.com").unwrap();
    u.set_param("transport", Some("tcp"));
    u.set_port(Some(5070));
    u.set_user(Some("b ob"));
    assert_eq!(u.to_string(), "sip:b%20ob@example.com:5070;transport=tcp");
    assert_eq!(u.user(), Some("b ob"));
    u.remove_param("transport");
    u.set_host("Example.NET");
    assert_eq!(u.as_str(), "sip:b%20ob@Example.NET:5070");
    assert_eq!(u.user_host(), "b ob@example.net");
    assert_eq!(Uri::sip(None, "10.0.0.1", None).as_str(), "sip:10.0.0.1");
}

#[test]
fn name_addr_forms() {
    let n = NameAddr::parse("  \"A \\\"q\\\" B\" <sip:a@b;lr>;tag=x;foo").unwrap();
    assert_eq!(n.display_name.as_deref(), Some("A \"q\" B"));
    assert_eq!(n.uri.params().get("lr"), Some(None));
    assert_eq!(n.tag(), Some("x"));
    assert_eq!(n.param("foo"), Some(None));
    assert_eq!(n.to_string(), "\"A \\\"q\\\" B\" <sip:a@b;lr>;tag=x;foo");
    let n = NameAddr::parse("sip:a@b;tag=1").unwrap();
    assert_eq!((n.uri.as_str(), n.tag()), ("sip:a@b", Some("1")));
    let n = NameAddr::parse("Two Words <sip:a@b>").unwrap();
    assert_eq!(n.display_name.as_deref(), Some("Two Words"));
    for bad in [
        "\"open <sip:a@b>",
        "<sip:a@b",
        "a,b <sip:a@b>",
        "sip:a@b?x=y",
        "<sip:a@b>;=1",
        "<sip:a@b> junk",
    ] {
        assert!(NameAddr::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn via_forms() {
    let v = Via::parse("SIP / 2.0 / udp [2001:db8::2] : 5062 ; branch = z9hG4bKa ; rport").unwrap();
    assert_eq!(
        (v.transport.as_str(), v.host.as_str(), v.port),
        ("UDP", "[2001:db8::2]", Some(5062))
    );
    assert_eq!(v.branch(), Some("z9hG4bKa"));
    assert_eq!(v.rport(), Some(None));
    assert_eq!(
        v.to_string(),
        "SIP/2.0/UDP [2001:db8::2]:5062;branch=z9hG4bKa;rport"
    );
    assert_eq!(v.port_or_default(), 5062);
    assert_eq!(
        Via::new("tls", "h", None, "z9hG4bKb").port_or_default(),
        5061
    );
    for bad in [
        "SIP/2.0 h",
        "SIP/3.0/UDP h",
        "SIP/2.0/UDP",
        "SIP/2.0/UDPh",
        "SIP/2.0/UDP h;;",
        "SIP/2.0/UDP h:x",
    ] {
        assert!(Via::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn params_and_methods() {
    let mut p = Params::new();
    p.push("A", Some("1"));
    p.push("b", None);
    assert_eq!(p.get("a"), Some(Some("1")));
    p.set("a", Some("2"));
    p.set("c", None);
    assert_eq!(
        p.iter().collect::<Vec<_>>(),
        [("A", Some("2")), ("b", None), ("c", None)]
    );
    assert!(p.remove("B"));
    assert!(!p.remove("b"));
    assert_eq!(p.to_string(), ";A=2;c");
    assert_eq!(p.len(), 2);
    // more than the inline capacity
    let mut p = Params::new();
    for i in 0..6 {
        p.push(&format!("p{i}"), Some(&i.to_string()));
    }
    assert_eq!(p.get("P5"), Some(Some("5")));
    p.set("p4", None);
    assert!(p.remove("p1"));
    assert_eq!(p.to_string(), ";p0=0;p2=2;p3=3;p4;p5=5");
    assert_eq!(
        p,
        Via::parse("SIP/2.0/UDP h;p0=0;p2=2;p3=3;p4;p5=5")
            .unwrap()
            .params
    );
    assert_eq!(Method::parse("INVITE"), Ok(Method::Invite));
    assert_eq!(
        Method::parse("invite"),
        Ok(Method::Extension("invite".into())),
        "methods are case-sensitive"
    );
    assert_eq!(Method::parse("BAD METHOD"), Err(InvalidMethod));
    assert!(Method::Publish.is_known());
    assert_eq!(
        HeaderName::parse("WWW-authenticate"),
        HeaderName::WwwAuthenticate
    );
    assert_eq!(
        HeaderName::parse("A-Very-Long-Header-Name-Indeed").as_str(),
        "A-Very-Long-Header-Name-Indeed"
    );
    assert!(HeaderName::CSeq.is_single_valued() && !HeaderName::Via.is_single_valued());
    use HeaderName as H;
    let known = [
        H::Via,
        H::From,
        H::To,
        H::CallId,
        H::CSeq,
        H::Contact,
        H::MaxForwards,
        H::Expires,
        H::MinExpires,
        H::ContentLength,
        H::ContentType,
        H::Authorization,
        H::WwwAuthenticate,
        H::ProxyAuthorization,
        H::ProxyAuthenticate,
        H::AuthenticationInfo,
        H::Allow,
        H::Accept,
        H::Supported,
        H::Require,
        H::ProxyRequire,
        H::Unsupported,
        H::UserAgent,
        H::Server,
        H::Route,
        H::RecordRoute,
        H::Date,
    ];
    for h in known {
        assert_eq!(HeaderName::parse(h.as_str()), h);
        assert_eq!(HeaderName::parse(&h.as_str().to_ascii_uppercase()), h);
        assert!(!matches!(HeaderName::parse(h.as_str()), H::Other(_)));
    }
    // same length and first/last letters as a known name, but not it
    assert_eq!(HeaderName::parse("Vxa"), H::Other("Vxa".into()));
    assert_eq!(HeaderName::parse(""), H::Other(String::new()));
}
