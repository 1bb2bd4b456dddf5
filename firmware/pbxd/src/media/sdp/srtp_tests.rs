//! SDES (RFC 4568) offer/answer: what phones and providers send, what we answer, what we
//! refuse and why.

use super::*;
use crate::media::srtp::{MasterKey, Suite};

/// RFC 4568 sec. 9.1's key (without its MKI), and another peer key.
const PEER_KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
const OTHER_KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

fn crlf(s: &str) -> Vec<u8> {
    s.lines()
        .map(|l| format!("{}\r\n", l.trim_start()))
        .collect::<String>()
        .into_bytes()
}

fn lines_with(body: &[u8], prefix: &str) -> Vec<String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

fn our_key() -> MasterKey {
    MasterKey::from_bytes(&[0x42; 30]).unwrap()
}

fn local(mode: SrtpMode) -> LocalMedia {
    LocalMedia {
        addr: "192.168.1.1".parse().unwrap(),
        port: 20000,
        codecs: vec![Codec::Pcma, Codec::Pcmu],
        telephone_event: Some(101),
        ptime: 20,
        direction: Direction::SendRecv,
        srtp: LocalSrtp {
            mode,
            key: our_key(),
        },
    }
}

fn key(b64: &str) -> MasterKey {
    CryptoAttr::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{b64}"))
        .unwrap()
        .key
}

/// An offer with one audio m-line of `proto` and the given attribute lines.
fn offer_with(proto: &str, attrs: &[String]) -> Sdp {
    let mut s = format!(
        "v=0\no=- 1 1 IN IP4 10.0.0.5\ns=-\nc=IN IP4 10.0.0.5\nt=0 0\nm=audio 4000 {proto} 8 101\n\
         a=rtpmap:101 telephone-event/8000\n"
    );
    for a in attrs {
        s.push_str(a);
        s.push('\n');
    }
    Sdp::parse(&crlf(&s)).unwrap()
}

#[test]
fn savp_offer_is_answered_with_our_key_and_the_same_tag() {
    // As baresip with mediaenc=srtp-mand offers (several suites, one key each).
    let offer = offer_with(
        "RTP/SAVP",
        &[
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{PEER_KEY}"),
            format!("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{OTHER_KEY}"),
        ],
    );
    for mode in [SrtpMode::Off, SrtpMode::Optional, SrtpMode::Mandatory] {
        let (body, neg) = answer(&offer, &local(mode), &Origin::new(1)).unwrap();
        assert_eq!(
            lines_with(&body, "m="),
            vec!["m=audio 20000 RTP/SAVP 8 101"]
        );
        let ours = lines_with(&body, "a=crypto:");
        assert_eq!(ours.len(), 1, "{mode}");
        let c = CryptoAttr::parse(ours[0].trim_start_matches("a=crypto:")).unwrap();
        // The first line we support is the first offered: tag 1, the 32-bit suite.
        assert_eq!(
            (c.tag, c.suite, &c.key),
            (1, Suite::AesCm128HmacSha1_32, &our_key())
        );
        assert_eq!(
            neg.srtp,
            Some(SrtpKeys {
                suite: Suite::AesCm128HmacSha1_32,
                send: our_key(),
                recv: key(PEER_KEY),
            })
        );
    }
}

#[test]
fn unsupported_lines_are_skipped_for_a_later_supported_one() {
    let offer = offer_with(
        "RTP/SAVP",
        &[
            format!("a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{PEER_KEY}{PEER_KEY}"),
            format!("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}|2^20|1:4"),
            format!("a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{OTHER_KEY}|2^31"),
        ],
    );
    let (body, neg) = answer(&offer, &local(SrtpMode::Off), &Origin::new(1)).unwrap();
    let ours = lines_with(&body, "a=crypto:");
    assert!(
        ours[0].starts_with("a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{ours:?}"
    );
    assert_eq!(neg.srtp.unwrap().recv, key(OTHER_KEY));
}

#[test]
fn savp_without_a_usable_suite_is_refused_with_the_reason() {
    struct Case {
        attrs: Vec<String>,
        err: NegotiationError,
        warning: &'static str,
    }
    let cases = [
        Case {
            attrs: vec![format!(
                "a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{PEER_KEY}"
            )],
            err: NegotiationError::Crypto(CryptoError::UnknownSuite(
                "AES_256_CM_HMAC_SHA1_80".into(),
            )),
            warning: "399 pbx \"SRTP: crypto suite AES_256_CM_HMAC_SHA1_80 not supported\"",
        },
        Case {
            attrs: vec![format!(
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}|2^20|1:4"
            )],
            err: NegotiationError::Crypto(CryptoError::Mki),
            warning: "399 pbx \"SRTP: MKI not supported\"",
        },
        Case {
            attrs: vec!["a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJD".into()],
            err: NegotiationError::Crypto(CryptoError::KeyLength(3)),
            warning: "399 pbx \"SRTP: key and salt of 3 bytes, need 30\"",
        },
        Case {
            attrs: vec![],
            err: NegotiationError::NoCrypto,
            warning: "399 pbx \"SRTP: no a=crypto in RTP/SAVP stream\"",
        },
    ];
    for c in cases {
        let offer = offer_with("RTP/SAVP", &c.attrs);
        let err = answer(&offer, &local(SrtpMode::Optional), &Origin::new(1)).unwrap_err();
        assert_eq!(err, c.err, "{:?}", c.attrs);
        assert_eq!(err.sip_status(), 488);
        assert_eq!(warning_header(&err, "pbx"), c.warning);
    }
}

#[test]
fn best_effort_two_m_lines_prefers_savp_and_falls_back_to_avp() {
    let two = |crypto: &str| {
        crlf(&format!(
            "v=0
            o=- 1 1 IN IP4 10.0.0.1
            s=-
            c=IN IP4 10.0.0.1
            t=0 0
            m=audio 4000 RTP/SAVP 8
            a=crypto:1 {crypto}
            m=audio 4002 RTP/AVP 8"
        ))
    };
    let good = Sdp::parse(&two(&format!("AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}"))).unwrap();
    let (ans, neg) = answer(&good, &local(SrtpMode::Off), &Origin::new(1)).unwrap();
    assert_eq!(
        lines_with(&ans, "m="),
        vec!["m=audio 20000 RTP/SAVP 8", "m=audio 0 RTP/AVP 8"]
    );
    assert_eq!(neg.remote.port(), 4000);
    assert!(neg.srtp.is_some());

    // A suite we cannot do: the plain line is taken instead.
    let bad = Sdp::parse(&two(&format!("F8_128_HMAC_SHA1_80 inline:{PEER_KEY}"))).unwrap();
    let (ans, neg) = answer(&bad, &local(SrtpMode::Off), &Origin::new(1)).unwrap();
    assert_eq!(
        lines_with(&ans, "m="),
        vec!["m=audio 0 RTP/SAVP 8", "m=audio 20000 RTP/AVP 8"]
    );
    assert_eq!((neg.remote.port(), neg.srtp), (4002, None));
    // ... unless we insist on SRTP.
    let err = answer(&bad, &local(SrtpMode::Mandatory), &Origin::new(1)).unwrap_err();
    assert_eq!(err, NegotiationError::SrtpRequired);
}

#[test]
fn avp_with_crypto_is_best_effort_srtp() {
    // What baresip with mediaenc=srtp, Snom or Yealink in "optional" mode send.
    let offer = offer_with(
        "RTP/AVP",
        &[format!(
            "a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}"
        )],
    );
    let (body, neg) = answer(&offer, &local(SrtpMode::Off), &Origin::new(1)).unwrap();
    assert_eq!(lines_with(&body, "m="), vec!["m=audio 20000 RTP/AVP 8 101"]);
    assert_eq!(lines_with(&body, "a=crypto:").len(), 1);
    assert!(lines_with(&body, "a=crypto:")[0].starts_with("a=crypto:7 AES_CM_128_HMAC_SHA1_80"));
    assert!(neg.srtp.is_some());

    // Best effort with crypto we cannot do: plain RTP, no crypto in the answer.
    let offer = offer_with(
        "RTP/AVP",
        &[format!(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}|2^20|1:4"
        )],
    );
    let (body, neg) = answer(&offer, &local(SrtpMode::Optional), &Origin::new(1)).unwrap();
    assert!(lines_with(&body, "a=crypto:").is_empty());
    assert_eq!(neg.srtp, None);
}

#[test]
fn mandatory_refuses_a_plain_offer() {
    let offer = offer_with("RTP/AVP", &[]);
    let err = answer(&offer, &local(SrtpMode::Mandatory), &Origin::new(1)).unwrap_err();
    assert_eq!(err, NegotiationError::SrtpRequired);
    assert_eq!(err.sip_status(), 488);
    assert_eq!(
        warning_header(&err, "pbx"),
        "399 pbx \"SRTP required, plain RTP refused\""
    );
    // Off and optional take it as it is.
    for mode in [SrtpMode::Off, SrtpMode::Optional] {
        let (body, neg) = answer(&offer, &local(mode), &Origin::new(1)).unwrap();
        assert!(lines_with(&body, "a=crypto").is_empty());
        assert_eq!(neg.srtp, None);
    }
}

#[test]
fn our_offers_per_mode() {
    let b64 = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC"; // 30 x 0x42
    let off = offer(&local(SrtpMode::Off), &Origin::new(1));
    assert_eq!(
        lines_with(&off, "m="),
        vec!["m=audio 20000 RTP/AVP 8 0 101"]
    );
    assert!(lines_with(&off, "a=crypto").is_empty());
    let optional = offer(&local(SrtpMode::Optional), &Origin::new(1));
    assert_eq!(
        lines_with(&optional, "m="),
        vec!["m=audio 20000 RTP/AVP 8 0 101"]
    );
    assert_eq!(
        lines_with(&optional, "a=crypto"),
        vec![format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{b64}")]
    );
    let mandatory = offer(&local(SrtpMode::Mandatory), &Origin::new(1));
    assert_eq!(
        lines_with(&mandatory, "m="),
        vec!["m=audio 20000 RTP/SAVP 8 0 101"]
    );
    assert_eq!(
        lines_with(&mandatory, "a=crypto"),
        vec![format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{b64}")]
    );
    // Our own offer parses back as a usable SRTP stream.
    let sdp = Sdp::parse(&mandatory).unwrap();
    let audio = sdp.audio().unwrap();
    assert!(audio.secure);
    assert_eq!(audio.usable_crypto().unwrap().key, our_key());
}

#[test]
fn two_boxes_agree_on_crossed_keys() {
    for mode in [SrtpMode::Optional, SrtpMode::Mandatory] {
        let a = local(mode);
        let mut b = local(SrtpMode::Off);
        b.srtp.key = MasterKey::random();
        let o = Sdp::parse(&offer(&a, &Origin::new(1))).unwrap();
        let (ans, b_neg) = answer(&o, &b, &Origin::new(2)).unwrap();
        let a_neg = accept_answer(&a, &Sdp::parse(&ans).unwrap()).unwrap();
        let (a_keys, b_keys) = (a_neg.srtp.unwrap(), b_neg.srtp.unwrap());
        assert_eq!(a_keys.send, b_keys.recv, "{mode}");
        assert_eq!(a_keys.recv, b_keys.send, "{mode}");
        assert_ne!(a_keys.send, a_keys.recv);
        assert_eq!(a_keys.suite, Suite::AesCm128HmacSha1_80);
    }
}

#[test]
fn accepting_answers_to_our_srtp_offers() {
    let answer_with = |proto: &str, attrs: &[String]| offer_with(proto, attrs);
    let good = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}");
    struct Case {
        mode: SrtpMode,
        proto: &'static str,
        attrs: Vec<String>,
        want: Result<bool, NegotiationError>,
    }
    let cases = [
        Case {
            mode: SrtpMode::Mandatory,
            proto: "RTP/SAVP",
            attrs: vec![good.clone()],
            want: Ok(true),
        },
        Case {
            mode: SrtpMode::Optional,
            proto: "RTP/AVP",
            attrs: vec![good.clone()],
            want: Ok(true),
        },
        Case {
            mode: SrtpMode::Optional,
            proto: "RTP/AVP",
            attrs: vec![],
            want: Ok(false),
        },
        Case {
            mode: SrtpMode::Mandatory,
            proto: "RTP/AVP",
            attrs: vec![],
            want: Err(NegotiationError::SrtpRequired),
        },
        Case {
            mode: SrtpMode::Mandatory,
            proto: "RTP/SAVP",
            attrs: vec![format!(
                "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}"
            )],
            want: Err(NegotiationError::CryptoMismatch),
        },
        Case {
            mode: SrtpMode::Optional,
            proto: "RTP/AVP",
            attrs: vec![format!(
                "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{PEER_KEY}"
            )],
            want: Err(NegotiationError::CryptoMismatch),
        },
        Case {
            mode: SrtpMode::Optional,
            proto: "RTP/AVP",
            attrs: vec![format!(
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}|2^20|1:4"
            )],
            want: Err(NegotiationError::Crypto(CryptoError::Mki)),
        },
        // We offered none: crypto in the answer is ignored.
        Case {
            mode: SrtpMode::Off,
            proto: "RTP/AVP",
            attrs: vec![good.clone()],
            want: Ok(false),
        },
    ];
    for c in cases {
        let got = accept_answer(&local(c.mode), &answer_with(c.proto, &c.attrs));
        match (&got, &c.want) {
            (Ok(n), Ok(srtp)) => {
                assert_eq!(n.srtp.is_some(), *srtp, "{} {:?}", c.mode, c.attrs);
                if let Some(k) = &n.srtp {
                    assert_eq!((&k.send, &k.recv), (&our_key(), &key(PEER_KEY)));
                }
            }
            (Err(e), Err(w)) => assert_eq!(e, w, "{} {:?}", c.mode, c.attrs),
            _ => panic!("{} {:?}: got {got:?}, want {:?}", c.mode, c.attrs, c.want),
        }
    }
}

#[test]
fn every_leg_gets_a_fresh_key() {
    let keys: Vec<MasterKey> = (0..8)
        .map(|_| LocalSrtp::new(SrtpMode::Optional).key)
        .collect();
    for (i, k) in keys.iter().enumerate() {
        assert!(keys[i + 1..].iter().all(|o| o != k));
        assert_ne!(k.as_bytes(), &[0u8; 30]);
    }
}
