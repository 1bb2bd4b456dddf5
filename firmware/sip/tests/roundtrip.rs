//! Property tests: `parse(serialize(m)) == m` for generated requests and responses,
//! and typed headers survive the trip; the stream decoder reassembles any split.

use pbx_sip::message::{
    parse, Frame, HeaderName, Limits, Message, MessageBuilder, Method, NameAddr, StreamDecoder,
    Uri, Via,
};
use proptest::prelude::*;

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,11}"
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Invite),
        Just(Method::Ack),
        Just(Method::Bye),
        Just(Method::Cancel),
        Just(Method::Register),
        Just(Method::Options),
        Just(Method::Info),
        Just(Method::Update),
        Just(Method::Prack),
        Just(Method::Subscribe),
        Just(Method::Notify),
        Just(Method::Refer),
        Just(Method::Message),
        Just(Method::Publish),
        "[A-Z][A-Z0-9_-]{0,10}".prop_map(|s| Method::parse(&s).expect("a token")),
    ]
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9]{0,5}){0,3}",
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        Just("[2001:db8::1]".to_string()),
    ]
}

fn uri() -> impl Strategy<Value = Uri> {
    (
        proptest::option::of("[ -~\u{e4}\u{20ac}]{1,12}"),
        host(),
        proptest::option::of(any::<u16>()),
        proptest::collection::vec(
            (token(), proptest::option::of("[a-zA-Z0-9 %;=]{1,8}")),
            0..3,
        ),
    )
        .prop_map(|(user, host, port, params)| {
            let mut u = Uri::sip(user.as_deref(), &host, port);
            for (n, v) in &params {
                u.set_param(n, v.as_deref());
            }
            u
        })
}

fn name_addr() -> impl Strategy<Value = NameAddr> {
    (
        proptest::option::of("[ -~\u{e4}\u{20ac}]{0,16}"),
        uri(),
        proptest::collection::vec((token(), proptest::option::of(token())), 0..3),
    )
        .prop_map(|(display_name, uri, params)| {
            let mut na = NameAddr::new(uri);
            na.display_name = display_name;
            for (n, v) in params {
                na.params.push(&n, v.as_deref());
            }
            na
        })
}

fn via() -> impl Strategy<Value = Via> {
    (
        prop_oneof![Just("UDP"), Just("TCP"), Just("TLS"), Just("WS")],
        host(),
        proptest::option::of(1u16..),
        token(),
        any::<bool>(),
    )
        .prop_map(|(t, h, p, branch, rport)| {
            let mut v = Via::new(t, &h, p, &format!("z9hG4bK{branch}"));
            if rport {
                v.params.push("rport", None);
            }
            v
        })
}

/// Extension header value: printable text without leading/trailing whitespace.
fn ext_value() -> impl Strategy<Value = String> {
    "([!-~\u{e9}\u{4e2d}]([ -~\u{e9}\t]{0,30}[!-~])?)?"
}

#[derive(Debug, Clone)]
struct Parts {
    request: Option<(Method, Uri)>,
    status: u16,
    reason: String,
    vias: Vec<Via>,
    from: NameAddr,
    to: NameAddr,
    call_id: String,
    seq: u32,
    contacts: Vec<NameAddr>,
    ext: Vec<(String, String)>,
    body: Vec<u8>,
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        proptest::option::of((method(), uri())),
        100u16..700,
        "([!-~\u{fc}]([ -~\u{fc}]{0,20}[!-~])?)?",
        proptest::collection::vec(via(), 1..4),
        name_addr(),
        name_addr(),
        "[a-zA-Z0-9.!%*_+`'~()<>:\\\\\"/\\[\\]?{}-]{1,20}(@[a-z0-9.]{1,10})?",
        0u32..(1 << 31),
        proptest::collection::vec(name_addr(), 0..3),
        proptest::collection::vec(("X-[A-Za-z0-9-]{1,10}", ext_value()), 0..4),
        proptest::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(
            |(request, status, reason, vias, from, to, call_id, seq, contacts, ext, body)| Parts {
                request,
                status,
                reason,
                vias,
                from,
                to,
                call_id,
                seq,
                contacts,
                ext,
                body,
            },
        )
}

fn build(p: &Parts) -> Message {
    let mut b = match &p.request {
        Some((m, u)) => MessageBuilder::request(m.clone(), u.clone()),
        None => MessageBuilder::response(p.status, &p.reason),
    };
    for v in &p.vias {
        b = b.header(HeaderName::Via, v.to_string());
    }
    let method = p
        .request
        .as_ref()
        .map_or(Method::Invite, |(m, _)| m.clone());
    b = b
        .header(HeaderName::From, p.from.to_string())
        .header(HeaderName::To, p.to.to_string())
        .header(HeaderName::CallId, p.call_id.clone())
        .header(HeaderName::CSeq, format!("{} {method}", p.seq))
        .header(HeaderName::MaxForwards, "70");
    for c in &p.contacts {
        b = b.header(HeaderName::Contact, c.to_string());
    }
    for (n, v) in &p.ext {
        b = b.header(HeaderName::parse(n), v.clone());
    }
    if !p.body.is_empty() {
        b = b.body("application/octet-stream", p.body.clone());
    }
    b.build()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_serialize_roundtrip(p in parts()) {
        let m = build(&p);
        let bytes = m.to_bytes();
        let back = parse(&bytes).map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&bytes))))?;
        prop_assert_eq!(&back, &m);
        // typed headers come back as built
        prop_assert_eq!(back.vias().unwrap(), p.vias.clone());
        prop_assert_eq!(back.from_header().unwrap(), p.from.clone());
        prop_assert_eq!(back.to_header().unwrap(), p.to.clone());
        prop_assert_eq!(back.call_id().unwrap(), p.call_id.as_str());
        prop_assert_eq!(back.cseq().unwrap().seq, p.seq);
        match back.contacts().unwrap() {
            pbx_sip::message::Contacts::List(c) => prop_assert_eq!(c, p.contacts.clone()),
            pbx_sip::message::Contacts::Star => prop_assert!(false, "not a star"),
        }
        for (n, v) in &p.ext {
            prop_assert!(back.header_all(&HeaderName::parse(n)).any(|x| x == v));
        }
        prop_assert_eq!(back.body(), &p.body[..]);
        if let Some((method, uri)) = &p.request {
            prop_assert_eq!(back.method(), Some(method));
            prop_assert!(back.request_uri().unwrap().equivalent(uri));
            prop_assert_eq!(back.request_uri().unwrap().user(), uri.user());
            prop_assert!(pbx_sip::message::validate_request(&back).is_ok());
        } else {
            prop_assert_eq!(back.status(), Some(p.status));
            prop_assert_eq!(back.reason(), Some(p.reason.as_str()));
        }
        // serialising again gives the same bytes
        prop_assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn stream_decoder_reassembles_any_split(ps in proptest::collection::vec(parts(), 1..4), cuts in proptest::collection::vec(any::<usize>(), 0..8), pings in any::<bool>()) {
        let msgs: Vec<Message> = ps.iter().map(build).collect();
        let mut wire = Vec::new();
        for m in &msgs {
            if pings {
                wire.extend_from_slice(b"\r\n\r\n");
            }
            m.write_to(&mut wire);
        }
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (wire.len() + 1)).collect();
        cuts.sort_unstable();
        let mut dec = StreamDecoder::new(Limits::default());
        let mut got = Vec::new();
        let mut keepalives = 0;
        let mut last = 0;
        for c in cuts.into_iter().chain([wire.len()]) {
            dec.push(&wire[last..c]);
            last = c;
            while let Some(f) = dec.next() {
                match f.map_err(|e| TestCaseError::fail(e.to_string()))? {
                    Frame::Message(m) => got.push(m),
                    Frame::KeepAlive => keepalives += 1,
                    Frame::Pong => return Err(TestCaseError::fail("a server-side decoder saw a pong")),
                }
            }
        }
        prop_assert_eq!(got, msgs.clone());
        prop_assert_eq!(keepalives, if pings { msgs.len() } else { 0 });
        prop_assert_eq!(dec.buffered(), 0);
    }
}
