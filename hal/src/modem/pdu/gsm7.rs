//! GSM 7-bit default alphabet and extension table (3GPP TS 23.038 §6.2.1) and septet
//! packing (TS 23.038 §6.1.2.1.1).

/// The escape septet that selects the extension table.
const ESC: u8 = 0x1B;

/// Default alphabet, indexed by septet. 0x1B is the escape (shown as NBSP if decoded alone).
const DEFAULT: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{a0}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// Extension table: (septet after ESC, character).
const EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{0c}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// The septets for one character: one from the default table, or ESC plus one from the
/// extension table. `None` if the character cannot be sent in GSM 7-bit.
pub(crate) fn encode_char(c: char) -> Option<Septets> {
    if c == '\u{a0}' {
        // NBSP is only the display form of a lone ESC; it cannot be sent.
        return None;
    }
    if let Some(i) = DEFAULT.iter().position(|&d| d == c) {
        // `position` over a 128-entry table always fits a u8.
        return Some(Septets::One(i as u8));
    }
    EXTENSION
        .iter()
        .find(|&&(_, e)| e == c)
        .map(|&(s, _)| Septets::Two(ESC, s))
}

/// One character as one or two septets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Septets {
    One(u8),
    Two(u8, u8),
}

impl Septets {
    pub(crate) fn len(self) -> usize {
        match self {
            Septets::One(_) => 1,
            Septets::Two(..) => 2,
        }
    }
    pub(crate) fn push_to(self, out: &mut Vec<u8>) {
        match self {
            Septets::One(a) => out.push(a),
            Septets::Two(a, b) => out.extend([a, b]),
        }
    }
}

/// Decode septets to text. An unknown escape sequence shows the default-table character
/// (TS 23.038 §6.2.1.1, note 1).
pub(crate) fn decode(septets: &[u8]) -> String {
    let mut out = String::with_capacity(septets.len());
    let mut iter = septets.iter().map(|s| s & 0x7F);
    while let Some(s) = iter.next() {
        if s == ESC {
            match iter.next() {
                Some(e) => match EXTENSION.iter().find(|&&(k, _)| k == e) {
                    Some(&(_, c)) => out.push(c),
                    None => out.push(DEFAULT[usize::from(e)]),
                },
                None => out.push(DEFAULT[usize::from(ESC)]),
            }
        } else {
            out.push(DEFAULT[usize::from(s)]);
        }
    }
    out
}

/// Pack septets LSB first, after `fill_bits` zero bits (used to align after a UDH).
pub(crate) fn pack(septets: &[u8], fill_bits: usize) -> Vec<u8> {
    let total_bits = fill_bits + septets.len() * 7;
    let mut out = vec![0u8; total_bits.div_ceil(8)];
    let mut bit = fill_bits;
    for &s in septets {
        let v = u16::from(s & 0x7F) << (bit % 8);
        out[bit / 8] |= (v & 0xFF) as u8;
        if v > 0xFF {
            // Only reached when the septet straddles a byte, so index `bit/8 + 1` < len.
            out[bit / 8 + 1] |= (v >> 8) as u8;
        }
        bit += 7;
    }
    out
}

/// Unpack `count` septets that start after `fill_bits` bits. Returns `None` if `data` is too
/// short for them.
pub(crate) fn unpack(data: &[u8], fill_bits: usize, count: usize) -> Option<Vec<u8>> {
    if (fill_bits + count * 7).div_ceil(8) > data.len() {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    let mut bit = fill_bits;
    for _ in 0..count {
        let lo = u16::from(data[bit / 8]);
        let hi = data.get(bit / 8 + 1).map_or(0, |&b| u16::from(b));
        out.push((((hi << 8 | lo) >> (bit % 8)) & 0x7F) as u8);
        bit += 7;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hellohello_packs_to_the_known_octets() {
        let septets: Vec<u8> = "hellohello"
            .chars()
            .map(|c| match encode_char(c) {
                Some(Septets::One(s)) => s,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            pack(&septets, 0),
            [0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37]
        );
        assert_eq!(
            decode(&unpack(&pack(&septets, 0), 0, 10).unwrap()),
            "hellohello"
        );
    }

    #[test]
    fn extension_chars_take_two_septets() {
        assert_eq!(encode_char('€'), Some(Septets::Two(0x1B, 0x65)));
        assert_eq!(encode_char('['), Some(Septets::Two(0x1B, 0x3C)));
        assert_eq!(encode_char('ä'), Some(Septets::One(0x7B)));
        assert_eq!(encode_char('ç'), None);
        assert_eq!(encode_char('😀'), None);
        assert_eq!(decode(&[0x1B, 0x65, 0x41]), "€A");
        // Unknown escape: the default-table character.
        assert_eq!(decode(&[0x1B, 0x41]), "A");
    }

    #[test]
    fn fill_bits_shift_the_septets() {
        let packed = pack(&[0x41, 0x42], 1);
        assert_eq!(unpack(&packed, 1, 2).unwrap(), [0x41, 0x42]);
        assert_eq!(unpack(&packed, 1, 3), None);
    }
}
