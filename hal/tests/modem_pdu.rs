//! SMS PDU codec: known PDUs, splitting boundaries, reassembly, round trips.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use pbx_hal::modem::pdu::{
    decode_deliver, decode_submit, encode_deliver, encode_submit, from_hex, split_text, to_hex,
    Address, Alphabet, Body, Concat, PduError, Reassembler, SubmitOptions, Timestamp,
};

fn ts() -> Timestamp {
    Timestamp {
        year: 2025,
        month: 11,
        day: 21,
        hour: 10,
        minute: 3,
        second: 0,
        tz_quarter_hours: 4,
    }
}

fn text_of(body: &Body) -> &str {
    match body {
        Body::Text(t) => t,
        Body::Binary(b) => panic!("binary body {b:02X?}"),
    }
}

#[test]
fn classic_hellohello_submit_encodes_and_decodes() {
    let opts = SubmitOptions {
        validity: Some(0xAA),
        ..SubmitOptions::default()
    };
    let pdus = encode_submit("+46708251358", "hellohello", &opts).unwrap();
    assert_eq!(pdus.len(), 1);
    assert_eq!(
        pdus[0].to_hex(),
        "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
    );
    // AT+CMGS=<length> counts the TPDU without the (empty) SMSC field.
    assert_eq!(pdus[0].tpdu_len(), 23);

    let s = decode_submit(&from_hex("0011000B916407281553F80000AA0AE8329BFD4697D9EC37").unwrap())
        .unwrap();
    assert_eq!(s.destination, Address::International("+46708251358".into()));
    assert_eq!(s.validity, Some(0xAA));
    assert_eq!(s.alphabet, Alphabet::Gsm7);
    assert_eq!(text_of(&s.body), "hellohello");
}

#[test]
fn deliver_with_alphanumeric_sender_ucs2_and_16_bit_concat_built_by_hand() {
    let hex = concat!(
        "00",       // no SMSC
        "44",       // SMS-DELIVER, UDHI, no more messages
        "04D04121", // alphanumeric "AB": 4 semi-octets, TOA D0, 0x41|0x42<<7
        "00",
        "08",                   // PID, DCS UCS-2
        "52111201300040",       // 2025-11-21 10:03:00 UTC+1
        "11",                   // UDL 17 = 7 header + 10 text octets
        "06080412340201",       // IE 08: 16-bit ref 0x1234, 2 parts, part 1
        "0047007200FC00DF0065"  // "Grüße"
    );
    let d = decode_deliver(&from_hex(hex).unwrap()).unwrap();
    assert_eq!(d.smsc, None);
    assert_eq!(d.sender, Address::Alphanumeric("AB".into()));
    assert_eq!(d.timestamp, ts());
    assert_eq!(d.alphabet, Alphabet::Ucs2);
    assert_eq!(
        d.concat,
        Some(Concat {
            reference: 0x1234,
            wide: true,
            total: 2,
            seq: 1
        })
    );
    assert_eq!(text_of(&d.body), "Grüße");
}

#[test]
fn gsm7_deliver_with_8_bit_concat_and_fill_bit_built_by_hand() {
    let hex = concat!(
        "00",
        "44",
        "04D04121",
        "00",
        "00",
        "52111201300040",
        "09",           // UDL: 7 header septets + 2
        "0500032A0201", // IE 00: ref 0x2A, 2 parts, part 1
        "8242"          // 1 fill bit, then 'A' (bits 1-7), 'B' (bits 8-14)
    );
    let d = decode_deliver(&from_hex(hex).unwrap()).unwrap();
    assert_eq!(
        d.concat,
        Some(Concat {
            reference: 0x2A,
            wide: false,
            total: 2,
            seq: 1
        })
    );
    assert_eq!(text_of(&d.body), "AB");
    let ours = encode_deliver(
        &Address::Alphanumeric("AB".into()),
        ts(),
        &"AB".repeat(90),
        0x2A,
    )
    .unwrap();
    assert!(to_hex(&ours[0]).starts_with("004404D04121000052111201300040A00500032A0201"));
}

#[test]
fn gsm7_part_after_a_header_starts_after_one_fill_bit() {
    let text = "A".repeat(161);
    let pdus = encode_submit(
        "+4915112345678",
        &text,
        &SubmitOptions {
            concat_ref: 0x2A,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(pdus.len(), 2);
    let hex = pdus[0].to_hex();
    // ..., DCS 00, UDL 0xA0 = 7 header septets + 153, UDH, then 'A' (0x41) shifted by one bit.
    assert!(hex.contains("0000A00500032A020182"), "{hex}");
    let s = decode_submit(pdus[1].bytes()).unwrap();
    assert_eq!(
        s.concat,
        Some(Concat {
            reference: 0x2A,
            wide: false,
            total: 2,
            seq: 2
        })
    );
    assert_eq!(text_of(&s.body), "AAAAAAAA");
}

struct Split {
    text: String,
    parts: Vec<usize>, // units per part
    alphabet: Alphabet,
    msg: &'static str,
}

#[test]
fn splitting_boundaries() {
    let a = |n| "a".repeat(n);
    let c = |n| "ç".repeat(n); // not in GSM 7-bit: forces UCS-2
    let cases = [
        Split {
            text: a(160),
            parts: vec![160],
            alphabet: Alphabet::Gsm7,
            msg: "160 fit one",
        },
        Split {
            text: a(161),
            parts: vec![153, 8],
            alphabet: Alphabet::Gsm7,
            msg: "161 need two",
        },
        Split {
            text: a(306),
            parts: vec![153, 153],
            alphabet: Alphabet::Gsm7,
            msg: "2 x 153",
        },
        Split {
            text: a(307),
            parts: vec![153, 153, 1],
            alphabet: Alphabet::Gsm7,
            msg: "one more",
        },
        Split {
            text: a(158) + "€",
            parts: vec![160],
            alphabet: Alphabet::Gsm7,
            msg: "€ is 2 septets, fits",
        },
        Split {
            text: a(159) + "€",
            parts: vec![153, 8],
            alphabet: Alphabet::Gsm7,
            msg: "€ makes 161",
        },
        Split {
            text: a(152) + "€" + &a(10),
            parts: vec![152, 12],
            alphabet: Alphabet::Gsm7,
            msg: "escape never split from its character",
        },
        Split {
            text: c(70),
            parts: vec![70],
            alphabet: Alphabet::Ucs2,
            msg: "70 UCS-2 fit one",
        },
        Split {
            text: c(71),
            parts: vec![67, 4],
            alphabet: Alphabet::Ucs2,
            msg: "71 need two",
        },
        Split {
            text: c(66) + "😀" + &c(10),
            parts: vec![66, 12],
            alphabet: Alphabet::Ucs2,
            msg: "surrogate pair never split",
        },
        Split {
            text: String::new(),
            parts: vec![0],
            alphabet: Alphabet::Gsm7,
            msg: "empty",
        },
    ];
    for case in cases {
        let parts = split_text(&case.text).unwrap();
        let units: Vec<usize> = parts.iter().map(|p| p.units).collect();
        assert_eq!(units, case.parts, "{}", case.msg);
        assert!(
            parts.iter().all(|p| p.alphabet == case.alphabet),
            "{}",
            case.msg
        );
        assert_eq!(
            parts.iter().map(|p| p.text.as_str()).collect::<String>(),
            case.text,
            "{}",
            case.msg
        );
    }
}

#[test]
fn at_most_255_parts() {
    assert_eq!(split_text(&"a".repeat(153 * 255)).unwrap().len(), 255);
    assert_eq!(
        encode_submit(
            "+491511",
            &"a".repeat(153 * 255 + 1),
            &SubmitOptions::default()
        ),
        Err(PduError::TooManyParts { parts: 256 })
    );
    assert_eq!(
        split_text(&"ç".repeat(67 * 255 + 1)),
        Err(PduError::TooManyParts { parts: 256 })
    );
}

#[test]
fn bad_destinations_are_refused() {
    for bad in ["", "+", "0151 123", "0151-123", "abc"] {
        assert_eq!(
            encode_submit(bad, "x", &SubmitOptions::default()),
            Err(PduError::InvalidAddress(bad.into())),
            "{bad:?}"
        );
    }
}

#[test]
fn parts_reassemble_in_any_order_and_senders_are_kept_apart() {
    let alice = Address::International("+4915111111111".into());
    let bob = Address::International("+4915122222222".into());
    let text_a = "x".repeat(400);
    let text_b = "ü€".repeat(100);
    // Same reference from both senders.
    let parts_a = encode_deliver(&alice, ts(), &text_a, 7).unwrap();
    let parts_b = encode_deliver(&bob, ts(), &text_b, 7).unwrap();
    assert_eq!((parts_a.len(), parts_b.len()), (3, 2));

    let mut r = Reassembler::default();
    assert_eq!(r.push(decode_deliver(&parts_a[2]).unwrap()), None);
    assert_eq!(r.push(decode_deliver(&parts_b[1]).unwrap()), None);
    assert_eq!(r.push(decode_deliver(&parts_a[0]).unwrap()), None);
    let b = r.push(decode_deliver(&parts_b[0]).unwrap()).unwrap();
    assert_eq!(
        (b.sender, text_of(&b.body), b.parts),
        (bob, text_b.as_str(), 2)
    );
    // A duplicate part does not complete anything.
    assert_eq!(r.push(decode_deliver(&parts_a[2]).unwrap()), None);
    let a = r.push(decode_deliver(&parts_a[1]).unwrap()).unwrap();
    assert_eq!(
        (a.sender, text_of(&a.body), a.parts),
        (alice, text_a.as_str(), 3)
    );
    assert_eq!(r.pending(), 0);
}

#[test]
fn reassembler_is_bounded() {
    let mut r = Reassembler::new(2);
    for reference in 0..5u8 {
        let sender = Address::International("+491".into());
        let parts = encode_deliver(&sender, ts(), &"y".repeat(200), reference).unwrap();
        assert_eq!(r.push(decode_deliver(&parts[0]).unwrap()), None);
    }
    assert_eq!(r.pending(), 2);
}

#[test]
fn hex_output_is_what_the_modem_gets() {
    let pdus = encode_submit("+491701234567", "Hi", &SubmitOptions::default()).unwrap();
    assert_eq!(to_hex(pdus[0].bytes()), pdus[0].to_hex());
    assert_eq!(pdus[0].tpdu_len(), pdus[0].bytes().len() - 1);
}

const TEXT: &str = "[a-zA-Z0-9 .,!?@£$_\\n€\\[\\]{}~^|\\\\äöüÄÖÜßçéÅ😀🎉€中]{0,500}";

proptest::proptest! {
    #[test]
    fn submit_round_trips(text in TEXT, reference in proptest::num::u8::ANY) {
        let opts = SubmitOptions { concat_ref: reference, ..SubmitOptions::default() };
        let pdus = encode_submit("+4930123456", &text, &opts).unwrap();
        let mut joined = String::new();
        for (i, p) in pdus.iter().enumerate() {
            let s = decode_submit(p.bytes()).unwrap();
            proptest::prop_assert_eq!(&s.destination, &Address::International("+4930123456".into()));
            if pdus.len() > 1 {
                let c = s.concat.unwrap();
                proptest::prop_assert_eq!((c.reference, c.total as usize, c.seq as usize), (u16::from(reference), pdus.len(), i + 1));
            }
            // TPDU at most 140 octets of user data + headers: the modem's limit of 176.
            proptest::prop_assert!(p.tpdu_len() <= 164);
            joined.push_str(text_of(&s.body));
        }
        proptest::prop_assert_eq!(joined, text);
    }

    #[test]
    fn deliver_round_trips_through_reassembly_in_reverse(text in TEXT) {
        let sender = Address::Alphanumeric("Info".into());
        let parts = encode_deliver(&sender, ts(), &text, 3).unwrap();
        let mut r = Reassembler::default();
        let mut done = None;
        for p in parts.iter().rev() {
            done = r.push(decode_deliver(p).unwrap());
        }
        let m = done.unwrap();
        proptest::prop_assert_eq!(m.sender, sender);
        proptest::prop_assert_eq!(text_of(&m.body), text.as_str());
    }

    /// Decoders take modem output: arbitrary bytes are errors, never panics.
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
        let _ = decode_deliver(&bytes);
        let _ = decode_submit(&bytes);
    }
}
