//! ITU-T G.711 A-law and µ-law for the PCM highway, as in the ITU G.191 reference `g711.c`.
//!
//! A copy of the algorithms in pbxd's relay: `pbx-hal` depends on nothing else in the
//! workspace, and the SLIC codes its timeslots itself when set to A-law or µ-law.

/// Decodes one A-law byte to 16-bit linear PCM (the reference's 13-bit value shifted left 3).
#[must_use]
pub const fn alaw_to_linear(a: u8) -> i16 {
    let a = a ^ 0x55;
    let mut t = ((a & 0x0f) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    if a & 0x80 != 0 {
        t as i16
    } else {
        -t as i16
    }
}

/// Decodes one µ-law byte to 16-bit linear PCM (the reference's 14-bit value shifted left 2).
#[must_use]
pub const fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let mut t = (((u & 0x0f) as i32) << 3) + 0x84;
    t <<= ((u & 0x70) >> 4) as i32;
    if u & 0x80 != 0 {
        (0x84 - t) as i16
    } else {
        (t - 0x84) as i16
    }
}

/// Encodes one 16-bit linear sample to A-law.
#[must_use]
pub const fn linear_to_alaw(pcm: i16) -> u8 {
    const SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let mut v = (pcm as i32) >> 3;
    let mask: u8 = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let mut seg = 0;
    while seg < 8 && v > SEG_END[seg] {
        seg += 1;
    }
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let mant = if seg < 2 {
        (v >> 1) & 0xf
    } else {
        (v >> seg) & 0xf
    };
    (((seg as i32) << 4) | mant) as u8 ^ mask
}

/// Encodes one 16-bit linear sample to µ-law.
#[must_use]
pub const fn linear_to_ulaw(pcm: i16) -> u8 {
    const SEG_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
    const CLIP: i32 = 8159;
    let mut v = (pcm as i32) >> 2;
    let mask: u8 = if v < 0 {
        v = -v;
        0x7F
    } else {
        0xFF
    };
    if v > CLIP {
        v = CLIP;
    }
    v += 0x84 >> 2;
    let mut seg = 0;
    while seg < 8 && v > SEG_END[seg] {
        seg += 1;
    }
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let mant = (v >> (seg + 1)) & 0xf;
    (((seg as i32) << 4) | mant) as u8 ^ mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_and_extremes_match_the_reference() {
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for b in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(b)), b, "A-law {b:#04x}");
            // µ-law has two codes for zero (0x7F and 0xFF); both decode to 0.
            let u = linear_to_ulaw(ulaw_to_linear(b));
            assert!(
                u == b || (b == 0x7F && u == 0xFF),
                "µ-law {b:#04x} -> {u:#04x}"
            );
        }
    }
}
