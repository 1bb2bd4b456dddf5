//! Known-answer tests (RFC 3711 appendix B, libsrtp's reference packet, packets protected
//! by webrtc-rs's rtc-srtp 0.21.1 with the same keys), round trips, tampering and replay.

use super::*;

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
        .collect()
}

/// RFC 3711 appendix B.3's master key and salt (also libsrtp's test key).
fn rfc_key() -> MasterKey {
    let mut k = unhex("E1F97A0D3E018BE0D64FA32C06DE4139");
    k.extend(unhex("0EC675AD498AFEEBB6960B3AABE6"));
    MasterKey::from_bytes(&k).unwrap()
}

/// The plain RTP packet of libsrtp's srtp_driver: SSRC 0xdecafbad, 16 bytes of 0xab.
fn plain_rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x0f];
    p.extend(seq.to_be_bytes());
    p.extend([0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe]);
    p.extend([0xab; 16]);
    p
}

/// A receiver report from SSRC 0xcafebabe with one report block.
fn plain_rr() -> Vec<u8> {
    unhex("81c90007 cafebabe decafbad 00000001 00001234 00000010 00000000 00000000")
}

#[test]
fn key_derivation_matches_rfc3711_b3() {
    let master = rfc_key();
    let prf = Aes128::new(master.key().into());
    let mut enc = [0u8; 16];
    let mut salt = [0u8; 14];
    let mut auth = [0u8; 20];
    kdf(&prf, master.salt(), 0, &mut enc);
    kdf(&prf, master.salt(), 2, &mut salt);
    kdf(&prf, master.salt(), 1, &mut auth);
    assert_eq!(enc.to_vec(), unhex("C61E7A93744F39EE10734AFE3FF7A087"));
    assert_eq!(salt.to_vec(), unhex("30CBBC08863D8C85D49DB34A9AE1"));
    assert_eq!(
        auth.to_vec(),
        unhex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
    );
}

#[test]
fn aes_cm_keystream_matches_rfc3711_b2() {
    let keys = SessionKeys {
        cipher: Aes128::new(
            (&<[u8; 16]>::try_from(unhex("2B7E151628AED2A6ABF7158809CF4F3C")).unwrap()).into(),
        ),
        salt: <[u8; 14]>::try_from(unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD")).unwrap(),
        auth: <HmacSha1 as KeyInit>::new(&Default::default()),
    };
    let mut stream = vec![0u8; 48];
    keys.crypt(0, 0, &mut stream);
    assert_eq!(
        stream,
        unhex(
            "E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB
             41E95B3BB0A2E8DD477901E4FCA894C0"
        )
    );
}

#[test]
fn protects_like_libsrtp_and_webrtc_rs() {
    // 0x1234 is libsrtp's srtp_driver reference packet; 0xffff -> 0x0001 crosses a
    // rollover (ROC 1 in the IV and the tag).
    let want80 = [
        "800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb",
        "800fffffdecafbadcafebabef36e96fc87ac01758cea5f94ba171db81149c9c49efa93c1b483",
        "800f0001decafbadcafebabeb6f1f0a458a238ac3d2f55ac6566b25c051f89495037505c44c7",
    ];
    for (suite, tag) in [
        (Suite::AesCm128HmacSha1_80, 10),
        (Suite::AesCm128HmacSha1_32, 4),
    ] {
        let mut tx = SrtpContext::new(suite, &rfc_key());
        let mut rx = SrtpContext::new(suite, &rfc_key());
        for (seq, want) in [0x1234, 0xffff, 0x0001].into_iter().zip(want80) {
            if seq == 0xffff {
                // A receiver that saw 0x1234 would take 0xffff for an old packet: the
                // rollover is checked by one that joins at 0xffff.
                rx = SrtpContext::new(suite, &rfc_key());
            }
            let want = unhex(want);
            let want = &want[..want.len() - 10 + tag];
            let mut p = plain_rtp(seq);
            tx.protect_rtp(&mut p).unwrap();
            assert_eq!(p, want, "{suite} seq {seq:#x}");
            rx.unprotect_rtp(&mut p).unwrap();
            assert_eq!(p, plain_rtp(seq), "{suite} seq {seq:#x}");
        }
    }
}

#[test]
fn srtcp_like_webrtc_rs() {
    let want = [
        "81c90007cafebabe0449535d4f2c1217155329de52dc0e137e44132ac1142d27\
         8000000142ac7ad2f49fba18c1c0",
        "81c90007cafebabe177864ec34d32770793e0a3ab97317e494f096b7142e999b\
         80000002376719e794a375ac2d66",
    ];
    // SRTCP's tag is 80 bits for both suites.
    for suite in Suite::ALL {
        let mut tx = SrtpContext::new(suite, &rfc_key());
        let mut rx = SrtpContext::new(suite, &rfc_key());
        for w in want {
            let mut p = plain_rr();
            tx.protect_rtcp(&mut p).unwrap();
            assert_eq!(p, unhex(w), "{suite}");
            rx.unprotect_rtcp(&mut p).unwrap();
            assert_eq!(p, plain_rr());
        }
    }
}

#[test]
fn tampered_and_foreign_key_packets_fail_and_change_nothing() {
    let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &rfc_key());
    let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &rfc_key());
    let mut good = plain_rtp(7);
    tx.protect_rtp(&mut good).unwrap();
    for i in [1, 5, 12, 20, good.len() - 1] {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        let before = bad.clone();
        assert_eq!(
            rx.unprotect_rtp(&mut bad),
            Err(SrtpError::AuthFailed),
            "byte {i}"
        );
        assert_eq!(bad, before);
    }
    let mut other = SrtpContext::new(Suite::AesCm128HmacSha1_80, &MasterKey::random());
    let mut p = good.clone();
    assert_eq!(other.unprotect_rtp(&mut p), Err(SrtpError::AuthFailed));
    // The good packet still goes through: failures did not move the stream state.
    let mut p = good.clone();
    rx.unprotect_rtp(&mut p).unwrap();
    assert_eq!(p, plain_rtp(7));

    let mut rtcp = plain_rr();
    tx.protect_rtcp(&mut rtcp).unwrap();
    let mut bad = rtcp.clone();
    bad[9] ^= 0x80;
    assert_eq!(rx.unprotect_rtcp(&mut bad), Err(SrtpError::AuthFailed));
    // Short or not version 2: refused without a panic.
    for junk in [vec![], vec![0x80; 11], vec![0x80; 21], vec![0x00; 40]] {
        let mut j = junk.clone();
        assert!(rx.unprotect_rtp(&mut j).is_err());
        let mut j = junk.clone();
        assert!(rx.unprotect_rtcp(&mut j).is_err());
    }
}

#[test]
fn replays_are_refused_and_reordering_within_the_window_is_not() {
    let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &rfc_key());
    let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &rfc_key());
    let packets: Vec<Vec<u8>> = (100u16..200)
        .map(|seq| {
            let mut p = plain_rtp(seq);
            tx.protect_rtp(&mut p).unwrap();
            p
        })
        .collect();
    // 100..=149 in order, then 160, then 150..=159 late (reordered, inside the window).
    for p in packets[..50]
        .iter()
        .chain([&packets[60]])
        .chain(&packets[50..60])
    {
        rx.unprotect_rtp(&mut p.clone()).unwrap();
    }
    for i in [0, 49, 55, 60] {
        // 0 is older than the window; the others were seen.
        assert_eq!(
            rx.unprotect_rtp(&mut packets[i].clone()),
            Err(SrtpError::Replayed),
            "{i}"
        );
    }
    rx.unprotect_rtp(&mut packets[61].clone()).unwrap();

    let mut r = plain_rr();
    tx.protect_rtcp(&mut r).unwrap();
    rx.unprotect_rtcp(&mut r.clone()).unwrap();
    assert_eq!(rx.unprotect_rtcp(&mut r.clone()), Err(SrtpError::Replayed));
}

#[test]
fn rollover_is_followed_over_many_wraps_and_across_a_lost_wrap_point() {
    let key = MasterKey::random();
    let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_32, &key);
    let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_32, &key);
    let mut seq = 65000u16;
    for n in 0..3 * 65_536u32 / 97 {
        let mut p = plain_rtp(seq);
        tx.protect_rtp(&mut p).unwrap();
        // Only every 97th packet arrives, so the receiver sees no packet near 0.
        if n % 2 == 0 {
            rx.unprotect_rtp(&mut p).unwrap();
            assert_eq!(p, plain_rtp(seq));
        }
        for _ in 0..97 {
            seq = seq.wrapping_add(1);
            let mut skipped = plain_rtp(seq);
            tx.protect_rtp(&mut skipped).unwrap();
        }
    }
}

#[test]
fn a_second_ssrc_is_its_own_stream() {
    let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &rfc_key());
    let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &rfc_key());
    for ssrc in [1u32, 2, 1, 2] {
        let mut p = plain_rtp(500);
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        if ssrc == 2 && rx.rtp_streams.iter().any(|s| s.ssrc == 2) {
            // Same SSRC and index again: a replay.
            tx.rtp_streams.retain(|s| s.ssrc != 2);
        }
        let mut q = p.clone();
        tx.protect_rtp(&mut q).unwrap();
        let r = rx.unprotect_rtp(&mut q);
        if rx.rtp_streams.len() == 2 && q.len() > p.len() {
            assert_eq!(r, Err(SrtpError::Replayed));
        } else {
            r.unwrap();
            assert_eq!(q, p);
        }
    }
}

#[test]
fn key_lengths_are_checked() {
    assert_eq!(
        MasterKey::from_bytes(&[0; 29]),
        Err(SrtpError::KeyLength(29))
    );
    assert_eq!(
        MasterKey::from_bytes(&[0; 31]),
        Err(SrtpError::KeyLength(31))
    );
    assert_eq!(format!("{:?}", rfc_key()), "MasterKey(..)");
}

proptest::proptest! {
    /// Whatever arrives, unprotect refuses it cleanly (a random packet never authenticates).
    #[test]
    fn unprotect_never_panics_on_arbitrary_bytes(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &rfc_key());
        let mut p = data.clone();
        proptest::prop_assert!(rx.unprotect_rtp(&mut p).is_err());
        let mut p = data.clone();
        proptest::prop_assert!(rx.unprotect_rtcp(&mut p).is_err());
        let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_32, &rfc_key());
        let mut p = data.clone();
        let _ = tx.protect_rtp(&mut p);
        let mut p = data;
        let _ = tx.protect_rtcp(&mut p);
    }
}
