//! SMS PDU codec (3GPP TS 23.040, TS 23.038): SMS-SUBMIT encoding with automatic GSM 7-bit
//! or UCS-2 coding and concatenation, SMS-DELIVER decoding, and reassembly of parts.
//!
//! ```
//! use pbx_hal::modem::pdu::{encode_submit, SubmitOptions};
//! let opts = SubmitOptions { validity: Some(0xAA), ..SubmitOptions::default() };
//! let parts = encode_submit("+46708251358", "hellohello", &opts).unwrap();
//! assert_eq!(parts.len(), 1);
//! // `AT+CMGS=<tpdu_len>`, then the hex and Ctrl-Z after the `> ` prompt.
//! assert_eq!(parts[0].tpdu_len(), 23);
//! assert_eq!(parts[0].to_hex(), "0011000B916407281553F80000AA0AE8329BFD4697D9EC37");
//! ```

mod address;
mod concat;
mod deliver;
pub(crate) mod gsm7;
mod submit;
mod userdata;

pub use address::{Address, Timestamp};
pub use concat::{Reassembler, SmsMessage};
pub use deliver::{decode_deliver, encode_deliver, Body, Deliver};
pub use submit::{
    decode_submit, encode_submit, split_text, Submit, SubmitOptions, SubmitPdu, TextPart,
};

/// Most parts a concatenated message can have (the 8-bit part count).
pub const MAX_PARTS: usize = 255;

/// Why a PDU could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PduError {
    /// The text needs more than 255 parts.
    #[error("message too long: needs {parts} parts, at most 255 allowed")]
    TooManyParts {
        /// Parts the text would need.
        parts: usize,
    },
    /// Not a usable phone number / sender.
    #[error("invalid address {0:?}")]
    InvalidAddress(String),
    /// The PDU ends before the named field.
    #[error("PDU truncated in {0}")]
    Truncated(&'static str),
    /// Not hex, or an odd number of hex digits.
    #[error("PDU is not valid hex")]
    InvalidHex,
    /// The time stamp holds non-decimal digits.
    #[error("invalid time stamp")]
    InvalidTimestamp,
    /// The message type is not SMS-SUBMIT.
    #[error("not an SMS-SUBMIT (message type indicator {0})")]
    NotSubmit(u8),
    /// The message type is not SMS-DELIVER.
    #[error("not an SMS-DELIVER (message type indicator {0})")]
    NotDeliver(u8),
    /// A user-data header element is malformed.
    #[error("malformed user-data header")]
    InvalidHeader,
    /// The data coding scheme asks for something we cannot decode (compression).
    #[error("unsupported data coding scheme {0:#04x}")]
    UnsupportedDcs(u8),
}

/// The character set of the user data (TS 23.038 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alphabet {
    /// GSM 7-bit default alphabet with the extension table.
    Gsm7,
    /// 8-bit data.
    EightBit,
    /// UCS-2 (we read UTF-16BE, so surrogate pairs decode too).
    Ucs2,
}

impl Alphabet {
    /// The TP-DCS octet we send for this alphabet (general group, no class).
    pub(crate) fn dcs(self) -> u8 {
        match self {
            Alphabet::Gsm7 => 0x00,
            Alphabet::EightBit => 0x04,
            Alphabet::Ucs2 => 0x08,
        }
    }

    /// Read a TP-DCS octet.
    pub(crate) fn from_dcs(dcs: u8) -> Result<Alphabet, PduError> {
        let by_bits = |b: u8| match b & 0x0C {
            0x04 => Alphabet::EightBit,
            0x08 => Alphabet::Ucs2,
            _ => Alphabet::Gsm7,
        };
        Ok(match dcs >> 4 {
            // General data coding, optionally "marked for automatic deletion".
            0x0..=0x7 => {
                if dcs & 0x20 != 0 {
                    return Err(PduError::UnsupportedDcs(dcs));
                }
                by_bits(dcs)
            }
            0xC | 0xD => Alphabet::Gsm7,
            0xE => Alphabet::Ucs2,
            0xF => {
                if dcs & 0x04 != 0 {
                    Alphabet::EightBit
                } else {
                    Alphabet::Gsm7
                }
            }
            // Reserved groups: read as GSM 7-bit (TS 23.038 §4).
            _ => Alphabet::Gsm7,
        })
    }
}

/// Concatenation information from the user-data header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Concat {
    /// Reference shared by all parts; 8-bit references are widened.
    pub reference: u16,
    /// Whether the reference came from IE 0x08 (16-bit).
    pub wide: bool,
    /// Number of parts, 1..=255.
    pub total: u8,
    /// This part's number, 1..=total.
    pub seq: u8,
}

/// Hex text to bytes.
pub fn from_hex(s: &str) -> Result<Vec<u8>, PduError> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return Err(PduError::InvalidHex);
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(PduError::InvalidHex)
        })
        .collect()
}

/// Bytes to upper-case hex, as the modem expects after the `> ` prompt.
pub fn to_hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        // Writing to a String cannot fail.
        let _ = write!(s, "{x:02X}");
    }
    s
}

/// Parse a user-data header (without its length octet); returns the concatenation IE if any.
pub(crate) fn parse_udh(h: &[u8]) -> Result<Option<Concat>, PduError> {
    let mut i = 0;
    let mut concat = None;
    while i < h.len() {
        let iei = h[i];
        let len = usize::from(*h.get(i + 1).ok_or(PduError::InvalidHeader)?);
        let data = h.get(i + 2..i + 2 + len).ok_or(PduError::InvalidHeader)?;
        match (iei, data) {
            (0x00, &[r, total, seq]) => {
                concat = Some(Concat {
                    reference: u16::from(r),
                    wide: false,
                    total,
                    seq,
                })
            }
            (0x08, &[r1, r2, total, seq]) => {
                concat = Some(Concat {
                    reference: u16::from_be_bytes([r1, r2]),
                    wide: true,
                    total,
                    seq,
                })
            }
            (0x00 | 0x08, _) => return Err(PduError::InvalidHeader),
            // Other elements (ports, national language shift, ...) are skipped.
            _ => {}
        }
        i += 2 + len;
    }
    if let Some(c) = concat {
        if c.total == 0 || c.seq == 0 || c.seq > c.total {
            return Err(PduError::InvalidHeader);
        }
    }
    Ok(concat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dcs_groups() {
        assert_eq!(Alphabet::from_dcs(0x00), Ok(Alphabet::Gsm7));
        assert_eq!(Alphabet::from_dcs(0x08), Ok(Alphabet::Ucs2));
        assert_eq!(Alphabet::from_dcs(0x04), Ok(Alphabet::EightBit));
        assert_eq!(Alphabet::from_dcs(0x18), Ok(Alphabet::Ucs2)); // class 0 flash, UCS-2
        assert_eq!(Alphabet::from_dcs(0xF0), Ok(Alphabet::Gsm7));
        assert_eq!(Alphabet::from_dcs(0xF4), Ok(Alphabet::EightBit));
        assert_eq!(
            Alphabet::from_dcs(0x20),
            Err(PduError::UnsupportedDcs(0x20))
        );
    }

    #[test]
    fn udh_concat_elements() {
        assert_eq!(
            parse_udh(&[0x00, 0x03, 0x2A, 0x03, 0x02]),
            Ok(Some(Concat {
                reference: 0x2A,
                wide: false,
                total: 3,
                seq: 2
            }))
        );
        // A port element before a 16-bit concat element.
        assert_eq!(
            parse_udh(&[0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01]),
            Ok(Some(Concat {
                reference: 0x1234,
                wide: true,
                total: 2,
                seq: 1
            }))
        );
        for bad in [
            &[0x00, 0x03, 0x01, 0x02][..],
            &[0x00, 0x03, 1, 2, 3],
            &[0x00, 0x03, 1, 0, 0],
            &[0x00],
        ] {
            assert_eq!(parse_udh(bad), Err(PduError::InvalidHeader), "{bad:02X?}");
        }
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(from_hex("00aF").unwrap(), [0x00, 0xAF]);
        assert_eq!(to_hex(&[0x00, 0xAF]), "00AF");
        assert_eq!(from_hex("0"), Err(PduError::InvalidHex));
        assert_eq!(from_hex("zz"), Err(PduError::InvalidHex));
    }
}
