//! SDP bodies as real phones send them, offer/answer rules, and a parser fuzz.

use super::*;
use proptest::prelude::*;
use std::net::{Ipv6Addr, SocketAddr};

fn crlf(s: &str) -> Vec<u8> {
    s.lines()
        .map(|l| format!("{}\r\n", l.trim_start()))
        .collect::<String>()
        .into_bytes()
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn local() -> LocalMedia {
    LocalMedia {
        addr: ip("192.168.1.1"),
        port: 20000,
        codecs: vec![Codec::Pcma, Codec::Pcmu, Codec::G722],
        telephone_event: Some(101),
        ptime: 20,
        direction: Direction::SendRecv,
        srtp: LocalSrtp::default(),
    }
}

/// Lines of a body that start with `prefix`.
fn lines_with(body: &[u8], prefix: &str) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split("\r\n")
        .filter(|l| l.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

// --- Samples (written after traces of the devices' default configurations) ---------------

/// Yealink T4x, default codec list, DTMF RFC 2833 on 101.
fn yealink() -> Vec<u8> {
    crlf(
        "v=0
        o=- 20003 20003 IN IP4 192.168.1.50
        s=SDP data
        c=IN IP4 192.168.1.50
        t=0 0
        m=audio 11796 RTP/AVP 0 8 9 18 101
        a=rtpmap:0 PCMU/8000
        a=rtpmap:8 PCMA/8000
        a=rtpmap:9 G722/8000
        a=rtpmap:18 G729/8000
        a=fmtp:18 annexb=no
        a=ptime:20
        a=sendrecv
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-15",
    )
}

/// Snom D7xx: G.722 first, media-level c=, a=rtcp-xr and a=record (unknown attributes).
fn snom() -> Vec<u8> {
    crlf(
        "v=0
        o=root 1622577123 1622577123 IN IP4 10.0.0.23
        s=call
        t=0 0
        m=audio 57340 RTP/AVP 9 8 0 2 3 18 101
        c=IN IP4 10.0.0.23
        a=rtpmap:9 G722/8000
        a=rtpmap:8 PCMA/8000
        a=rtpmap:0 PCMU/8000
        a=rtpmap:2 G726-32/8000
        a=rtpmap:3 GSM/8000
        a=rtpmap:18 G729/8000
        a=fmtp:18 annexb=no
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-15
        a=ptime:20
        a=rtcp-xr:rcvr-rtt=all voip-metrics
        a=record:off
        a=sendrecv",
    )
}

/// Grandstream GXP: static types without rtpmap for 0 and 8, odd session name.
fn grandstream() -> Vec<u8> {
    crlf(
        "v=0
        o=1005 8000 8000 IN IP4 192.168.1.77
        s=SIP Call
        c=IN IP4 192.168.1.77
        t=0 0
        m=audio 5004 RTP/AVP 8 0 4 18 101
        a=sendrecv
        a=rtpmap:4 G723/8000
        a=rtpmap:18 G729/8000
        a=fmtp:18 annexb=no
        a=ptime:20
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-15",
    )
}

/// baresip with its default modules: Opus first, dynamic PTs, rtcp-mux offered, LF ends.
fn baresip() -> Vec<u8> {
    b"v=0\n\
o=- 3711489210 1234 IN IP4 172.16.0.5\n\
s=-\n\
c=IN IP4 172.16.0.5\n\
t=0 0\n\
m=audio 31542 RTP/AVP 96 9 0 8 101\n\
b=AS:106\n\
a=rtpmap:96 opus/48000/2\n\
a=fmtp:96 stereo=1;sprop-stereo=1\n\
a=rtpmap:9 G722/8000\n\
a=rtpmap:0 PCMU/8000\n\
a=rtpmap:8 PCMA/8000\n\
a=rtpmap:101 telephone-event/8000\n\
a=fmtp:101 0-15\n\
a=rtcp-mux\n\
a=sendrecv\n\
a=label:1\n\
a=ssrc:1934520912 cname:2b1f3c6e-5a1a\n"
        .to_vec()
}

/// linphone: session-level c=, speex and opus, telephone-event at 48000 and 8000, rtcp-fb.
fn linphone() -> Vec<u8> {
    crlf(
        "v=0
        o=alice 3135 1846 IN IP4 192.168.0.12
        s=Talk
        c=IN IP4 192.168.0.12
        t=0 0
        a=ice-pwd:8b1b6c0d9a4e3f2b
        a=ice-ufrag:5d6a
        a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
        a=record:off
        m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100
        a=rtpmap:96 opus/48000/2
        a=fmtp:96 useinbandfec=1
        a=rtpmap:97 speex/16000
        a=fmtp:97 vbr=on
        a=rtpmap:98 speex/8000
        a=fmtp:98 vbr=on
        a=fmtp:18 annexb=yes
        a=rtpmap:101 telephone-event/48000
        a=rtpmap:99 telephone-event/16000
        a=rtpmap:100 telephone-event/8000
        a=rtcp:7079
        a=rtcp-fb:* trr-int 5000
        a=rtcp-fb:* ccm tmmbr
        a=candidate:1 1 UDP 2130706431 192.168.0.12 7078 typ host",
    )
}

/// sipp's built-in uac scenario body after [media_ip] substitution.
fn sipp() -> Vec<u8> {
    crlf(
        "v=0
        o=user1 53655765 2353687637 IN IP4 127.0.0.1
        s=-
        c=IN IP4 127.0.0.1
        t=0 0
        m=audio 6000 RTP/AVP 0
        a=rtpmap:0 PCMU/8000",
    )
}

/// A WebRTC-style gateway offer: audio plus video, bundle, mid, ice; plain RTP/AVPF audio.
fn audio_video() -> Vec<u8> {
    crlf("v=0
        o=- 4611731400430051336 2 IN IP4 127.0.0.1
        s=-
        t=0 0
        a=group:BUNDLE 0 1
        a=msid-semantic: WMS stream
        m=audio 50000 RTP/AVPF 111 9 0 8 110 126
        c=IN IP4 203.0.113.9
        a=rtcp:9 IN IP4 0.0.0.0
        a=candidate:842163049 1 udp 1677729535 203.0.113.9 50000 typ srflx raddr 10.1.1.1 rport 50000 generation 0
        a=ice-ufrag:EsAw
        a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y
        a=mid:0
        a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
        a=sendrecv
        a=msid:stream track0
        a=rtcp-mux
        a=rtpmap:111 opus/48000/2
        a=rtcp-fb:111 transport-cc
        a=fmtp:111 minptime=10;useinbandfec=1
        a=rtpmap:9 G722/8000
        a=rtpmap:0 PCMU/8000
        a=rtpmap:8 PCMA/8000
        a=rtpmap:110 telephone-event/48000
        a=rtpmap:126 telephone-event/8000
        m=video 50002 RTP/AVPF 96 97
        c=IN IP4 203.0.113.9
        a=mid:1
        a=rtpmap:96 VP8/90000
        a=rtcp-fb:96 nack pli
        a=rtpmap:97 rtx/90000
        a=fmtp:97 apt=96
        a=sendrecv")
}

/// The cloud trunk: telephone-event on 113, PCMA only.
fn provider_113() -> Vec<u8> {
    crlf(
        "v=0
        o=sbc 1700000000 1700000001 IN IP4 212.0.0.10
        s=sbc
        c=IN IP4 212.0.0.10
        t=0 0
        m=audio 36000 RTP/AVP 8 113
        a=rtpmap:8 PCMA/8000
        a=rtpmap:113 telephone-event/8000
        a=fmtp:113 0-16
        a=ptime:20
        a=maxptime:40",
    )
}

// --- Parsing --------------------------------------------------------------------------------

struct Case {
    name: &'static str,
    body: Vec<u8>,
    addr: &'static str,
    port: u16,
    codecs: Vec<(u8, Codec)>,
    te: Option<u8>,
    ptime: Option<u32>,
    direction: Direction,
    rtcp_mux: bool,
    media_count: usize,
}

#[test]
fn phones_parse_to_the_expected_audio_stream() {
    use Codec::*;
    let cases = [
        Case {
            name: "yealink",
            body: yealink(),
            addr: "192.168.1.50",
            port: 11796,
            codecs: vec![(0, Pcmu), (8, Pcma), (9, G722)],
            te: Some(101),
            ptime: Some(20),
            direction: Direction::SendRecv,
            rtcp_mux: false,
            media_count: 1,
        },
        Case {
            name: "snom",
            body: snom(),
            addr: "10.0.0.23",
            port: 57340,
            codecs: vec![(9, G722), (8, Pcma), (0, Pcmu)],
            te: Some(101),
            ptime: Some(20),
            direction: Direction::SendRecv,
            rtcp_mux: false,
            media_count: 1,
        },
        Case {
            name: "grandstream",
            body: grandstream(),
            addr: "192.168.1.77",
            port: 5004,
            codecs: vec![(8, Pcma), (0, Pcmu)],
            te: Some(101),
            ptime: Some(20),
            direction: Direction::SendRecv,
            rtcp_mux: false,
            media_count: 1,
        },
        Case {
            name: "baresip",
            body: baresip(),
            addr: "172.16.0.5",
            port: 31542,
            codecs: vec![(9, G722), (0, Pcmu), (8, Pcma)],
            te: Some(101),
            ptime: None,
            direction: Direction::SendRecv,
            rtcp_mux: true,
            media_count: 1,
        },
        Case {
            name: "linphone",
            body: linphone(),
            addr: "192.168.0.12",
            port: 7078,
            codecs: vec![(0, Pcmu), (8, Pcma)],
            te: Some(100), // the 8000 Hz one, not 101 at 48000
            ptime: None,
            direction: Direction::SendRecv,
            rtcp_mux: false,
            media_count: 1,
        },
        Case {
            name: "sipp",
            body: sipp(),
            addr: "127.0.0.1",
            port: 6000,
            codecs: vec![(0, Pcmu)],
            te: None,
            ptime: None,
            direction: Direction::SendRecv,
            rtcp_mux: false,
            media_count: 1,
        },
        Case {
            name: "audio+video",
            body: audio_video(),
            addr: "203.0.113.9",
            port: 50000,
            codecs: vec![(9, G722), (0, Pcmu), (8, Pcma)],
            te: Some(126),
            ptime: None,
            direction: Direction::SendRecv,
            rtcp_mux: true,
            media_count: 2,
        },
        Case {
            name: "provider 113",
            body: provider_113(),
            addr: "212.0.0.10",
            port: 36000,
            codecs: vec![(8, Pcma)],
            te: Some(113),
            ptime: Some(20),
            direction: Direction::SendRecv,
            rtcp_mux: false,
            media_count: 1,
        },
    ];
    for c in cases {
        let sdp = Sdp::parse(&c.body).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let a = sdp
            .audio()
            .unwrap_or_else(|| panic!("{}: no audio", c.name));
        let want = AudioStream {
            addr: ip(c.addr),
            port: c.port,
            codecs: c.codecs,
            telephone_event: c.te,
            ptime: c.ptime,
            direction: c.direction,
            rtcp_mux: c.rtcp_mux,
            secure: false,
            crypto: Vec::new(),
        };
        assert_eq!(a, &want, "{}", c.name);
        assert_eq!(sdp.media_count(), c.media_count, "{}", c.name);
    }
}

#[test]
fn origin_session_is_read() {
    assert_eq!(
        Sdp::parse(&yealink()).unwrap().origin_session(),
        (20003, 20003)
    );
    assert_eq!(
        Sdp::parse(&sipp()).unwrap().origin_session(),
        (53655765, 2353687637)
    );
    // A non-numeric id (RFC 8866 says numeric) is hashed: stable, not an error.
    let odd = crlf(
        "v=0
        o=- abc-def 7 IN IP4 10.0.0.1
        s=-
        c=IN IP4 10.0.0.1
        t=0 0
        m=audio 4000 RTP/AVP 0",
    );
    let a = Sdp::parse(&odd).unwrap().origin_session();
    assert_eq!(a, Sdp::parse(&odd).unwrap().origin_session());
    assert_eq!(a.1, 7);
}

#[test]
fn sendonly_hold() {
    let body = crlf(
        "v=0
        o=- 20003 20004 IN IP4 192.168.1.50
        s=SDP data
        c=IN IP4 192.168.1.50
        t=0 0
        m=audio 11796 RTP/AVP 8 101
        a=rtpmap:8 PCMA/8000
        a=rtpmap:101 telephone-event/8000
        a=sendonly",
    );
    let sdp = Sdp::parse(&body).unwrap();
    let a = sdp.audio().unwrap();
    assert_eq!(a.direction, Direction::SendOnly);
    assert!(a.is_hold());
    let (ans, neg) = answer(&sdp, &local(), &Origin::new(1)).unwrap();
    assert_eq!(neg.direction, Direction::RecvOnly);
    assert_eq!(lines_with(&ans, "a=recvonly").len(), 1);
    assert!(lines_with(&ans, "a=sendrecv").is_empty());
}

#[test]
fn session_level_direction_applies_to_media() {
    let body = crlf(
        "v=0
        o=- 1 2 IN IP4 10.0.0.1
        s=-
        c=IN IP4 10.0.0.1
        t=0 0
        a=inactive
        m=audio 4000 RTP/AVP 0",
    );
    assert_eq!(
        Sdp::parse(&body).unwrap().audio().unwrap().direction,
        Direction::Inactive
    );
}

#[test]
fn zero_address_hold_rfc2543() {
    let body = crlf(
        "v=0
        o=- 1 2 IN IP4 10.0.0.1
        s=-
        c=IN IP4 0.0.0.0
        t=0 0
        m=audio 4000 RTP/AVP 0
        a=sendrecv",
    );
    let sdp = Sdp::parse(&body).unwrap();
    let a = sdp.audio().unwrap();
    assert_eq!(a.addr, ip("0.0.0.0"));
    assert_eq!(a.direction, Direction::SendOnly); // it may send, wants nothing back
    assert!(a.is_hold());
    let (_, neg) = answer(&sdp, &local(), &Origin::new(1)).unwrap();
    assert_eq!(neg.direction, Direction::RecvOnly);
    assert!(neg.remote.ip().is_unspecified());

    let recvonly = crlf(
        "v=0
        o=- 1 2 IN IP4 10.0.0.1
        s=-
        c=IN IP4 0.0.0.0
        t=0 0
        m=audio 4000 RTP/AVP 0
        a=recvonly",
    );
    assert_eq!(
        Sdp::parse(&recvonly).unwrap().audio().unwrap().direction,
        Direction::Inactive
    );
}

#[test]
fn media_level_c_overrides_session_level() {
    let body = crlf(
        "v=0
        o=- 1 2 IN IP4 10.0.0.1
        s=-
        c=IN IP4 10.0.0.1
        t=0 0
        m=audio 4000 RTP/AVP 0
        c=IN IP4 10.0.0.99",
    );
    assert_eq!(
        Sdp::parse(&body).unwrap().audio().unwrap().addr,
        ip("10.0.0.99")
    );
}

#[test]
fn ipv6_connection() {
    let body = crlf(
        "v=0
        o=- 1 2 IN IP6 2001:db8::5
        s=-
        c=IN IP6 2001:db8::5
        t=0 0
        m=audio 4000 RTP/AVP 8",
    );
    let sdp = Sdp::parse(&body).unwrap();
    assert_eq!(
        sdp.audio().unwrap().addr,
        IpAddr::V6("2001:db8::5".parse::<Ipv6Addr>().unwrap())
    );
    let mut l = local();
    l.addr = ip("2001:db8::1");
    let (ans, neg) = answer(&sdp, &l, &Origin::new(9)).unwrap();
    assert_eq!(
        neg.remote,
        "[2001:db8::5]:4000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(lines_with(&ans, "c="), vec!["c=IN IP6 2001:db8::1"]);
    assert_eq!(lines_with(&ans, "o="), vec!["o=- 9 1 IN IP6 2001:db8::1"]);
}

#[test]
fn g722_only() {
    let body = crlf(
        "v=0
        o=- 1 2 IN IP4 10.0.0.1
        s=-
        c=IN IP4 10.0.0.1
        t=0 0
        m=audio 4000 RTP/AVP 9
        a=rtpmap:9 G722/8000",
    );
    let sdp = Sdp::parse(&body).unwrap();
    assert_eq!(sdp.audio().unwrap().codecs, vec![(9, Codec::G722)]);
    let (_, neg) = answer(&sdp, &local(), &Origin::new(1)).unwrap();
    assert_eq!((neg.codec, neg.pt), (Codec::G722, 9));
    // A G.722 at 16000 Hz RTP clock (a common mistake) is not our G.722.
    let wrong_clock = crlf(
        "v=0
        o=- 1 2 IN IP4 10.0.0.1
        s=-
        c=IN IP4 10.0.0.1
        t=0 0
        m=audio 4000 RTP/AVP 9
        a=rtpmap:9 G722/16000",
    );
    assert!(Sdp::parse(&wrong_clock)
        .unwrap()
        .audio()
        .unwrap()
        .codecs
        .is_empty());
}

#[test]
fn missing_connection_is_an_error() {
    let body = crlf(
        "v=0
        o=- 1 2 IN IP4 10.0.0.1
        s=-
        t=0 0
        m=audio 4000 RTP/AVP 0",
    );
    let err = Sdp::parse(&body).unwrap_err();
    assert_eq!(err, SdpError::MissingConnection);
    assert_eq!(err.to_string(), "SDP: missing c= line");
}

#[test]
fn bad_input_is_an_error() {
    let cases: [(&str, &[u8]); 8] = [
        ("empty", b""),
        ("blank", b"\r\n\r\n"),
        ("garbage", b"hello world, this is not SDP"),
        ("binary", &[0xff, 0x00, 0x13, 0x37, b'=', b'v']),
        ("no v=", b"o=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n"),
        (
            "bad port",
            b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 99999 RTP/AVP 0\r\n",
        ),
        (
            "fqdn c=",
            b"v=0\r\nc=IN IP4 pbx.example.com\r\nm=audio 4000 RTP/AVP 0\r\n",
        ),
        (
            "v6 in IP4",
            b"v=0\r\nc=IN IP4 ::1\r\nm=audio 4000 RTP/AVP 0\r\n",
        ),
    ];
    for (name, body) in cases {
        let err = Sdp::parse(body).expect_err(name);
        let text = err.to_string();
        assert!(text.starts_with("SDP: "), "{name}: {text}");
        assert!(reason_phrase_safe(&text), "{name}: {text}");
    }
    assert_eq!(Sdp::parse(b"").unwrap_err(), SdpError::Empty);
    assert_eq!(
        Sdp::parse(b"v=0\r\nc=IN IP4 pbx.example.com\r\nm=audio 4000 RTP/AVP 0\r\n").unwrap_err(),
        SdpError::BadConnection("pbx.example.com".into())
    );
    assert_eq!(
        Sdp::parse(b"v=0\r\nc=IN IP4 224.2.1.1/127\r\nm=audio 4000 RTP/AVP 0\r\n").unwrap_err(),
        SdpError::Multicast(ip("224.2.1.1"))
    );
    let big = vec![b'a'; MAX_SDP_LEN + 1];
    assert_eq!(
        Sdp::parse(&big).unwrap_err(),
        SdpError::TooLarge(MAX_SDP_LEN + 1)
    );
}

/// RFC 3261 sec. 25.1 reason-phrase characters (ASCII part).
fn reason_phrase_safe(text: &str) -> bool {
    text.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || "-_.!~*'();/?:@&=+$, ".contains(c)
            || (!c.is_ascii() && !c.is_control())
    })
}

#[test]
fn peer_text_in_errors_is_reason_phrase_safe() {
    let body = b"v=0\r\nc=IN IP4 <evil\"host>\r\nm=audio 4000 RTP/AVP 0\r\n";
    let err = Sdp::parse(body).unwrap_err();
    assert_eq!(err, SdpError::BadConnection("?evil'host?".into()));
    assert!(reason_phrase_safe(&err.to_string()));
}

#[test]
fn latin1_session_name_is_tolerated() {
    let mut body = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=Gespr".to_vec();
    body.push(0xe4); // ä in Latin-1
    body.extend_from_slice(b"ch\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n");
    assert_eq!(
        Sdp::parse(&body).unwrap().audio().unwrap().codecs,
        vec![(8, Codec::Pcma)]
    );
}

#[test]
fn no_audio_parses_but_does_not_negotiate() {
    let t38 = crlf(
        "v=0
        o=- 1 3 IN IP4 10.0.0.1
        s=-
        c=IN IP4 10.0.0.1
        t=0 0
        m=image 4002 udptl t38
        a=T38FaxVersion:0
        a=T38FaxRateManagement:transferredTCF",
    );
    let sdp = Sdp::parse(&t38).unwrap();
    assert!(sdp.audio().is_none());
    assert_eq!(sdp.media_count(), 1);
    let err = answer(&sdp, &local(), &Origin::new(1)).unwrap_err();
    assert_eq!(err, NegotiationError::NoAudio);
    assert_eq!(err.sip_status(), 488);
    assert_eq!(
        warning_header(&err, "pbx.local"),
        "304 pbx.local \"Media type not available\""
    );
}

// SRTP offers and answers: see srtp_tests.rs.

// --- Answer rules ------------------------------------------------------------------------

#[test]
fn answer_takes_the_peers_first_supported_codec_only() {
    // Snom prefers G.722; we support it, so G.722 it is, although we list PCMA first.
    let offer = Sdp::parse(&snom()).unwrap();
    let (ans, neg) = answer(&offer, &local(), &Origin::new(7)).unwrap();
    assert_eq!((neg.codec, neg.pt), (Codec::G722, 9));
    assert_eq!(lines_with(&ans, "m="), vec!["m=audio 20000 RTP/AVP 9 101"]);
    assert_eq!(
        lines_with(&ans, "a=rtpmap:"),
        vec!["a=rtpmap:9 G722/8000", "a=rtpmap:101 telephone-event/8000"]
    );
    assert_eq!(neg.remote, "10.0.0.23:57340".parse::<SocketAddr>().unwrap());
    assert_eq!(neg.ptime, 20);
    assert_eq!(neg.direction, Direction::SendRecv);

    // Without G.722 on our side, the next of the peer's list (PCMA) is taken.
    let mut l = local();
    l.codecs = vec![Codec::Pcmu, Codec::Pcma];
    let (_, neg) = answer(&offer, &l, &Origin::new(7)).unwrap();
    assert_eq!(neg.codec, Codec::Pcma);
}

#[test]
fn answer_echoes_the_peers_telephone_event_pt() {
    for (body, pt) in [(provider_113(), 113), (yealink(), 101), (linphone(), 100)] {
        let offer = Sdp::parse(&body).unwrap();
        let (ans, neg) = answer(&offer, &local(), &Origin::new(1)).unwrap();
        assert_eq!(neg.telephone_event, Some(pt));
        assert_eq!(
            lines_with(&ans, &format!("a=rtpmap:{pt} ")),
            vec![format!("a=rtpmap:{pt} telephone-event/8000")]
        );
        assert_eq!(
            lines_with(&ans, "a=fmtp:"),
            vec![format!("a=fmtp:{pt} 0-16")]
        );
    }
    // We answer without telephone-event when we do not do RFC 4733 on this leg...
    let mut l = local();
    l.telephone_event = None;
    let (ans, neg) = answer(&Sdp::parse(&provider_113()).unwrap(), &l, &Origin::new(1)).unwrap();
    assert_eq!(neg.telephone_event, None);
    assert!(lines_with(&ans, "a=rtpmap:113").is_empty());
    // ...and when the peer did not offer it.
    let (ans, neg) = answer(&Sdp::parse(&sipp()).unwrap(), &local(), &Origin::new(1)).unwrap();
    assert_eq!(neg.telephone_event, None);
    assert_eq!(lines_with(&ans, "m="), vec!["m=audio 20000 RTP/AVP 0"]);
}

#[test]
fn answer_rejects_other_m_lines_in_order() {
    let offer = Sdp::parse(&audio_video()).unwrap();
    let (ans, neg) = answer(&offer, &local(), &Origin::new(1)).unwrap();
    let parsed = Sdp::parse(&ans).unwrap();
    assert_eq!(parsed.media_count(), offer.media_count());
    assert_eq!(
        lines_with(&ans, "m="),
        vec!["m=audio 20000 RTP/AVPF 9 126", "m=video 0 RTP/AVPF 96 97"]
    );
    assert_eq!((neg.codec, neg.telephone_event), (Codec::G722, Some(126)));
    // No ICE, bundle or mid copied: we are a plain RTP endpoint.
    assert!(lines_with(&ans, "a=mid").is_empty());
    assert!(lines_with(&ans, "a=group").is_empty());
    assert!(lines_with(&ans, "a=rtcp-mux").is_empty());
}

#[test]
fn answer_direction_is_reverse_intersected_with_ours() {
    let cases = [
        (
            Direction::SendRecv,
            Direction::SendRecv,
            Direction::SendRecv,
        ),
        (
            Direction::SendOnly,
            Direction::SendRecv,
            Direction::RecvOnly,
        ),
        (
            Direction::RecvOnly,
            Direction::SendRecv,
            Direction::SendOnly,
        ),
        (
            Direction::Inactive,
            Direction::SendRecv,
            Direction::Inactive,
        ),
        (
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::SendOnly,
        ),
        (
            Direction::SendOnly,
            Direction::SendOnly,
            Direction::Inactive,
        ),
        (
            Direction::RecvOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ),
        (
            Direction::SendRecv,
            Direction::Inactive,
            Direction::Inactive,
        ),
    ];
    for (theirs, ours, want) in cases {
        let body = crlf(&format!(
            "v=0
            o=- 1 2 IN IP4 10.0.0.1
            s=-
            c=IN IP4 10.0.0.1
            t=0 0
            m=audio 4000 RTP/AVP 8
            a={theirs}"
        ));
        let mut l = local();
        l.direction = ours;
        let (ans, neg) = answer(&Sdp::parse(&body).unwrap(), &l, &Origin::new(1)).unwrap();
        assert_eq!(neg.direction, want, "offer {theirs}, local {ours}");
        assert_eq!(lines_with(&ans, &format!("a={want}")).len(), 1);
    }
}

#[test]
fn no_common_codec() {
    let body = crlf(
        "v=0
        o=- 1 2 IN IP4 10.0.0.1
        s=-
        c=IN IP4 10.0.0.1
        t=0 0
        m=audio 4000 RTP/AVP 18 3 96 101
        a=rtpmap:96 opus/48000/2
        a=rtpmap:101 telephone-event/8000",
    );
    let err = answer(&Sdp::parse(&body).unwrap(), &local(), &Origin::new(1)).unwrap_err();
    assert_eq!(
        err,
        NegotiationError::NoCommonCodec {
            offered: vec![
                "G729/8000".into(),
                "GSM/8000".into(),
                "opus/48000".into(),
                "telephone-event/8000".into()
            ]
        }
    );
    assert_eq!(
        err.to_string(),
        "no common codec (offered: G729/8000 GSM/8000 opus/48000 telephone-event/8000)"
    );
    assert_eq!(
        warning_header(&err, "192.168.1.1"),
        "305 192.168.1.1 \"Incompatible media format\""
    );
    // A subset of what we support that misses what the peer has is the same error.
    let mut l = local();
    l.codecs = vec![Codec::G722];
    assert!(matches!(
        answer(&Sdp::parse(&sipp()).unwrap(), &l, &Origin::new(1)),
        Err(NegotiationError::NoCommonCodec { .. })
    ));
}

#[test]
fn hostile_codec_names_are_safe_in_a_warning() {
    let body = crlf(
        "v=0
        o=- 1 2 IN IP4 10.0.0.1
        s=-
        c=IN IP4 10.0.0.1
        t=0 0
        m=audio 4000 RTP/AVP 96
        a=rtpmap:96 a\"b\\cAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/8000",
    );
    let err = answer(&Sdp::parse(&body).unwrap(), &local(), &Origin::new(1)).unwrap_err();
    let text = err.to_string();
    assert!(!text.contains('"') && !text.contains('\\'), "{text}");
    let NegotiationError::NoCommonCodec { offered } = err else {
        panic!()
    };
    assert_eq!(offered[0].len(), 32);
}

#[test]
fn offer_with_port_zero_audio_is_rejected() {
    let body = crlf(
        "v=0
        o=- 1 2 IN IP4 10.0.0.1
        s=-
        c=IN IP4 10.0.0.1
        t=0 0
        m=audio 0 RTP/AVP 0",
    );
    let sdp = Sdp::parse(&body).unwrap();
    assert_eq!(sdp.audio().unwrap().port, 0);
    assert_eq!(
        answer(&sdp, &local(), &Origin::new(1)).unwrap_err(),
        NegotiationError::Rejected
    );
}

#[test]
fn ptime_follows_the_peer_when_sensible() {
    let with = |p: &str| {
        crlf(&format!(
            "v=0
            o=- 1 2 IN IP4 10.0.0.1
            s=-
            c=IN IP4 10.0.0.1
            t=0 0
            m=audio 4000 RTP/AVP 8
            a=ptime:{p}"
        ))
    };
    for (p, want) in [("30", 30), ("20.0", 20), ("0", 20), ("5000", 20), ("x", 20)] {
        let (ans, neg) = answer(&Sdp::parse(&with(p)).unwrap(), &local(), &Origin::new(1)).unwrap();
        assert_eq!(neg.ptime, want, "a=ptime:{p}");
        // We still ask for our own packetisation.
        assert_eq!(lines_with(&ans, "a=ptime:"), vec!["a=ptime:20"]);
    }
}

// --- Offers, round trips, accepting answers ----------------------------------------------

#[test]
fn offer_round_trips_to_the_same_audio_stream() {
    let l = local();
    let body = offer(&l, &Origin::new(5));
    let sdp = Sdp::parse(&body).unwrap();
    assert_eq!(
        sdp.audio().unwrap(),
        &AudioStream {
            addr: l.addr,
            port: l.port,
            codecs: vec![(8, Codec::Pcma), (0, Codec::Pcmu), (9, Codec::G722)],
            telephone_event: Some(101),
            ptime: Some(20),
            direction: Direction::SendRecv,
            rtcp_mux: false,
            secure: false,
            crypto: Vec::new(),
        }
    );
    assert_eq!(sdp.origin_session(), (5, 1));
    assert_eq!(sdp.media_count(), 1);
    // The re-serialised session parses to the same stream again.
    let again = Sdp::parse(&sdp.to_bytes()).unwrap();
    assert_eq!(again.audio(), sdp.audio());

    let text = String::from_utf8(body).unwrap();
    assert!(
        text.starts_with(
            "v=0\r\no=- 5 1 IN IP4 192.168.1.1\r\ns=pbxd\r\nc=IN IP4 192.168.1.1\r\nt=0 0\r\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("m=audio 20000 RTP/AVP 8 0 9 101\r\n"),
        "{text}"
    );
}

#[test]
fn phone_samples_round_trip_through_to_bytes() {
    for body in [
        yealink(),
        snom(),
        grandstream(),
        baresip(),
        linphone(),
        sipp(),
        audio_video(),
        provider_113(),
    ] {
        let sdp = Sdp::parse(&body).unwrap();
        let again = Sdp::parse(&sdp.to_bytes()).unwrap();
        assert_eq!(again.audio(), sdp.audio());
        assert_eq!(again.media_count(), sdp.media_count());
        assert_eq!(again.origin_session(), sdp.origin_session());
    }
}

#[test]
fn hold_offer_and_dedup() {
    let mut l = local();
    l.direction = Direction::SendOnly;
    l.codecs = vec![Codec::Pcmu, Codec::Pcmu];
    l.telephone_event = None;
    let sdp = Sdp::parse(&offer(&l, &Origin::new(5))).unwrap();
    let a = sdp.audio().unwrap();
    assert_eq!(a.direction, Direction::SendOnly);
    assert_eq!(a.codecs, vec![(0, Codec::Pcmu)]);
    assert_eq!(a.telephone_event, None);
    // No codecs at all still gives a valid offer (PCMU).
    l.codecs.clear();
    let sdp = Sdp::parse(&offer(&l, &Origin::new(5))).unwrap();
    assert_eq!(sdp.audio().unwrap().codecs, vec![(0, Codec::Pcmu)]);
}

#[test]
fn origin_version_bumps_and_id_stays() {
    let mut o = Origin::new(u64::MAX);
    assert_eq!(o.id(), i64::MAX as u64); // fits a signed 64-bit sess-id
    let first = Sdp::parse(&offer(&local(), &o)).unwrap().origin_session();
    o.bump();
    let second = Sdp::parse(&offer(&local(), &o)).unwrap().origin_session();
    assert_eq!(first.0, second.0);
    assert_eq!(second.1, first.1 + 1);
    // Answers carry the same origin.
    let (ans, _) = answer(&Sdp::parse(&sipp()).unwrap(), &local(), &o).unwrap();
    assert_eq!(Sdp::parse(&ans).unwrap().origin_session(), second);
}

#[test]
fn our_offer_answered_by_us_is_accepted_consistently() {
    // Leg A offers (our LocalMedia), leg B (another pbxd answerer) answers: both must agree.
    let a = local();
    let mut b = local();
    b.addr = ip("10.9.9.9");
    b.port = 30000;
    b.codecs = vec![Codec::Pcmu];
    b.telephone_event = Some(96);
    let offered = Sdp::parse(&offer(&a, &Origin::new(1))).unwrap();
    let (ans, neg_b) = answer(&offered, &b, &Origin::new(2)).unwrap();
    let neg_a = accept_answer(&a, &Sdp::parse(&ans).unwrap()).unwrap();
    assert_eq!((neg_a.codec, neg_a.pt), (Codec::Pcmu, 0));
    assert_eq!((neg_b.codec, neg_b.pt), (Codec::Pcmu, 0));
    // The answerer echoes the offer's 101, whatever it would offer itself.
    assert_eq!(neg_a.telephone_event, Some(101));
    assert_eq!(neg_b.telephone_event, Some(101));
    assert_eq!(
        neg_a.remote,
        "10.9.9.9:30000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        neg_b.remote,
        "192.168.1.1:20000".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn accept_answer_cases() {
    let ours = local();
    let ans = |m: &str, extra: &str| {
        crlf(&format!(
            "v=0
            o=- 9 9 IN IP4 10.0.0.2
            s=-
            c=IN IP4 10.0.0.2
            t=0 0
            m={m}
            {extra}"
        ))
    };
    // Hold answer: the peer is recvonly, so we only send.
    let neg = accept_answer(
        &ours,
        &Sdp::parse(&ans(
            "audio 5000 RTP/AVP 0 101",
            "a=rtpmap:101 telephone-event/8000\na=recvonly",
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(neg.direction, Direction::SendOnly);
    assert_eq!((neg.codec, neg.telephone_event), (Codec::Pcmu, Some(101)));
    assert_eq!(neg.ptime, 20);

    assert_eq!(
        accept_answer(&ours, &Sdp::parse(&ans("audio 0 RTP/AVP 0", "")).unwrap()),
        Err(NegotiationError::Rejected)
    );
    assert_eq!(
        accept_answer(
            &ours,
            &Sdp::parse(&ans("video 5000 RTP/AVP 96", "")).unwrap()
        ),
        Err(NegotiationError::NoAudio)
    );
    assert_eq!(
        accept_answer(
            &ours,
            &Sdp::parse(&ans("audio 5000 RTP/AVP 18", "")).unwrap()
        ),
        Err(NegotiationError::NoCommonCodec {
            offered: vec!["G729/8000".into()]
        })
    );
}

// --- Fuzz ------------------------------------------------------------------------------------

fn samples() -> Vec<Vec<u8>> {
    vec![
        yealink(),
        snom(),
        grandstream(),
        baresip(),
        linphone(),
        sipp(),
        audio_video(),
        provider_113(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = Sdp::parse(&body) {
            let text = e.to_string();
            prop_assert!(reason_phrase_safe(&text), "{}", text);
        }
    }

    #[test]
    fn parse_and_negotiate_never_panic_on_mutated_sdp(
        which in 0usize..8,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut body = samples()[which].clone();
        for (at, byte, op) in edits {
            let i = at.index(body.len() + 1);
            match op {
                0 if i < body.len() => body[i] = byte,
                1 => body.insert(i, byte),
                _ if i < body.len() => { body.remove(i); }
                _ => {}
            }
        }
        let parsed = Sdp::parse(&body);
        if let Err(e) = &parsed {
            let text = e.to_string();
            prop_assert!(reason_phrase_safe(&text), "{}", text);
        }
        if let Ok(sdp) = parsed {
            // Whatever parses must negotiate without panicking and serialise to valid SDP.
            let _ = Sdp::parse(&sdp.to_bytes());
            if let Ok((ans, _)) = answer(&sdp, &local(), &Origin::new(3)) {
                let again = Sdp::parse(&ans).expect("our own answer parses");
                prop_assert_eq!(again.media_count(), sdp.media_count());
            }
            let _ = accept_answer(&local(), &sdp);
        }
    }
}
