//! ITU-T G.711 A-law (PCMA) and µ-law (PCMU), as in the ITU's G.191 reference (`g711.c`).
//!
//! Expansion and the direct A-law <-> µ-law conversion are 256-entry tables built at compile
//! time from the reference algorithms, so transcoding PCMA <-> PCMU costs one table look-up per
//! byte. The direct tables are defined as "decode, then encode", which is what a transcoder
//! through linear PCM produces.

// The per-sample codings are the hal's (the SLIC's PCM highway codes the same way); the
// relay adds the look-up tables it needs per packet.
pub use pbx_hal::audio::g711::{alaw_to_linear, linear_to_alaw, linear_to_ulaw, ulaw_to_linear};

const fn build_alaw_to_linear() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_to_linear(i as u8);
        i += 1;
    }
    t
}

const fn build_ulaw_to_linear() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_to_linear(i as u8);
        i += 1;
    }
    t
}

const fn build_alaw_to_ulaw() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = linear_to_ulaw(alaw_to_linear(i as u8));
        i += 1;
    }
    t
}

const fn build_ulaw_to_alaw() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = linear_to_alaw(ulaw_to_linear(i as u8));
        i += 1;
    }
    t
}

/// A-law byte -> linear PCM.
pub static ALAW_TO_LINEAR: [i16; 256] = build_alaw_to_linear();
/// µ-law byte -> linear PCM.
pub static ULAW_TO_LINEAR: [i16; 256] = build_ulaw_to_linear();
/// A-law byte -> µ-law byte (decode then encode).
pub static ALAW_TO_ULAW: [u8; 256] = build_alaw_to_ulaw();
/// µ-law byte -> A-law byte (decode then encode).
pub static ULAW_TO_ALAW: [u8; 256] = build_ulaw_to_alaw();

#[cfg(test)]
mod tests {
    use super::*;

    /// Values of the ITU-T G.191 reference implementation (`alaw_expand`/`ulaw_expand` on the
    /// 13/14-bit scale, shifted to 16 bits) and the G.711 tables' end points.
    #[test]
    fn reference_values() {
        // (code, 16-bit value) pairs.
        let alaw = [
            (0xD5u8, 8i16),
            (0x55, -8),
            (0xAA, 32256),
            (0x2A, -32256),
            (0xD4, 24),
        ];
        let ulaw = [
            (0xFFu8, 0i16),
            (0x7F, 0),
            (0x80, 32124),
            (0x00, -32124),
            (0xFE, 8),
        ];
        for (code, v) in alaw {
            assert_eq!(ALAW_TO_LINEAR[code as usize], v, "alaw {code:#x}");
        }
        for (code, v) in ulaw {
            assert_eq!(ULAW_TO_LINEAR[code as usize], v, "ulaw {code:#x}");
        }
        // Encoding silence and full scale.
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        // A-law segment 1 starts at 13-bit value 32 -> 16-bit 256+8.
        assert_eq!(alaw_to_linear(0xD5 ^ 0x10), 264);
        // µ-law: first segment step is 2 (14-bit) -> 8 at 16-bit scale.
        assert_eq!(ulaw_to_linear(0xFE), 8);
    }

    /// Every code decodes to a value that encodes back to the same code (µ-law's -0, 0x7F,
    /// encodes as +0, 0xFF), and the decoded values are strictly monotone in the code order.
    #[test]
    fn encode_decode_round_trip_all_codes() {
        for c in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(c)), c, "alaw {c:#x}");
            let expect = if c == 0x7F { 0xFF } else { c };
            assert_eq!(linear_to_ulaw(ulaw_to_linear(c)), expect, "ulaw {c:#x}");
        }
        // Quantisation is monotone: larger input never gives a smaller decoded value.
        let mut prev_a = i16::MIN;
        let mut prev_u = i16::MIN;
        for x in (i16::MIN..=i16::MAX).step_by(7) {
            let a = alaw_to_linear(linear_to_alaw(x));
            let u = ulaw_to_linear(linear_to_ulaw(x));
            assert!(a >= prev_a && u >= prev_u, "x={x}");
            // The error stays within half of the largest step (2048 at 16 bits, both laws).
            assert!((i32::from(a) - i32::from(x)).abs() <= 1024, "alaw x={x}");
            assert!((i32::from(u) - i32::from(x)).abs() <= 1024, "ulaw x={x}");
            prev_a = a;
            prev_u = u;
        }
    }

    /// The direct tables equal decode-then-encode sample by sample, and A -> µ -> A is
    /// transparent for the codes G.711 maps one-to-one.
    #[test]
    fn direct_tables_match_decode_encode() {
        for c in 0..=255u8 {
            assert_eq!(ALAW_TO_ULAW[c as usize], linear_to_ulaw(alaw_to_linear(c)));
            assert_eq!(ULAW_TO_ALAW[c as usize], linear_to_alaw(ulaw_to_linear(c)));
        }
        let transparent = (0..=255u8)
            .filter(|&c| ULAW_TO_ALAW[ALAW_TO_ULAW[c as usize] as usize] == c)
            .count();
        // µ-law has finer steps near zero, A-law a larger range: most codes survive.
        assert!(
            transparent >= 200,
            "only {transparent} codes survive A->u->A"
        );
    }
}
