//! ETSI EN 300 659-1/-3 caller ID: the MDMF call set-up message over V.23 FSK.
//!
//! On-hook (type 1) transmission: channel seizure (300 bits of 0101...), mark signal
//! (180 bits of 1), then the message bytes as UART frames. Off-hook (type 2, after the
//! CAS tone) skips the seizure and sends 80 bits of mark ([`Preamble::OffHook`]).
//!
//! Message layout: type `0x80` (call set-up), length of the parameters, the parameters as
//! `type, length, value`, then a checksum byte that makes the sum of all bytes 0 mod 256.
//! Parameters written here, in this order: `0x01` date and time (`MMDDHHMM`), `0x02`
//! calling line identity or `0x04` reason for its absence, `0x07` calling party name or
//! `0x08` reason for its absence. The parser skips parameter types it does not know.
//!
//! Text is sent byte per character; only printable ASCII is accepted for sending, and
//! received bytes are read as Latin-1 so nothing is lost.

use super::fsk::{FskDemodulator, FskError, FskModulator, FskParams};

/// Message type: call set-up.
pub const MSG_CALL_SETUP: u8 = 0x80;
/// Parameter: date and time, `MMDDHHMM`.
pub const PARAM_DATETIME: u8 = 0x01;
/// Parameter: calling line identity (the number).
pub const PARAM_NUMBER: u8 = 0x02;
/// Parameter: reason for absence of the number.
pub const PARAM_NUMBER_ABSENT: u8 = 0x04;
/// Parameter: calling party name.
pub const PARAM_NAME: u8 = 0x07;
/// Parameter: reason for absence of the name.
pub const PARAM_NAME_ABSENT: u8 = 0x08;
/// Longest number we send (EN 300 659-3 allows 20 characters).
pub const MAX_NUMBER_LEN: usize = 20;
/// Longest name we send (EN 300 659-3 allows 50 characters).
pub const MAX_NAME_LEN: usize = 50;

/// Why a number or name is not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absence {
    /// Withheld by the caller (`'P'`).
    Private,
    /// Not available, e.g. from abroad (`'O'`).
    Unavailable,
}

impl Absence {
    fn code(self) -> u8 {
        match self {
            Absence::Private => b'P',
            Absence::Unavailable => b'O',
        }
    }
}

/// Local date and time of the call as sent in the message (no year).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidDateTime {
    /// 1..=12
    pub month: u8,
    /// 1..=31
    pub day: u8,
    /// 0..=23
    pub hour: u8,
    /// 0..=59
    pub minute: u8,
}

impl CidDateTime {
    fn valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour <= 23
            && self.minute <= 59
    }
}

/// How the FSK burst begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preamble {
    /// Type 1 (on-hook): 300 bits channel seizure, 180 bits mark.
    OnHook,
    /// Type 2 (off-hook, after CAS): 80 bits mark.
    OffHook,
}

/// The content of a call set-up message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerId {
    /// Date and time of the call.
    pub datetime: Option<CidDateTime>,
    /// Calling number.
    pub number: Option<String>,
    /// Why there is no number (sent only when `number` is `None`).
    pub number_absent: Option<Absence>,
    /// Calling party name.
    pub name: Option<String>,
    /// Why there is no name (sent only when `name` is `None`).
    pub name_absent: Option<Absence>,
}

/// Errors encoding or decoding caller ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallerIdError {
    /// The FSK layer failed.
    #[error("FSK: {0}")]
    Fsk(#[from] FskError),
    /// Fewer bytes than the length field promises.
    #[error("message truncated: need {needed} bytes, got {got}")]
    Truncated {
        /// Bytes the header asks for (with checksum).
        needed: usize,
        /// Bytes received.
        got: usize,
    },
    /// The bytes including the checksum do not sum to 0 mod 256.
    #[error("checksum mismatch (sum {sum:#04x})")]
    BadChecksum {
        /// The sum of all bytes including the checksum, mod 256.
        sum: u8,
    },
    /// Not a call set-up message.
    #[error("unknown message type {0:#04x}")]
    UnknownMessageType(u8),
    /// A parameter's value is malformed.
    #[error("bad parameter {kind:#04x}: {reason}")]
    BadParameter {
        /// Parameter type.
        kind: u8,
        /// What is wrong.
        reason: &'static str,
    },
    /// A field is too long to send.
    #[error("{field} is {len} characters, at most {max} allowed")]
    FieldTooLong {
        /// `"number"` or `"name"`.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A field holds a character we cannot send.
    #[error("{field} contains {ch:?}, only printable ASCII can be sent")]
    InvalidCharacter {
        /// `"number"` or `"name"`.
        field: &'static str,
        /// The character.
        ch: char,
    },
}

fn text_param(
    out: &mut Vec<u8>,
    kind: u8,
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), CallerIdError> {
    if let Some(ch) = value.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(CallerIdError::InvalidCharacter { field, ch });
    }
    if value.len() > max {
        return Err(CallerIdError::FieldTooLong {
            field,
            len: value.len(),
            max,
        });
    }
    out.push(kind);
    out.push(value.len() as u8); // <= 50, checked above
    out.extend_from_slice(value.as_bytes());
    Ok(())
}

impl CallerId {
    /// The MDMF call set-up message, checksum included.
    pub fn encode_mdmf(&self) -> Result<Vec<u8>, CallerIdError> {
        let mut p = Vec::with_capacity(96);
        if let Some(dt) = self.datetime {
            if !dt.valid() {
                return Err(CallerIdError::BadParameter {
                    kind: PARAM_DATETIME,
                    reason: "date or time out of range",
                });
            }
            p.extend_from_slice(&[PARAM_DATETIME, 8]);
            let text = format!("{:02}{:02}{:02}{:02}", dt.month, dt.day, dt.hour, dt.minute);
            p.extend_from_slice(text.as_bytes());
        }
        match (&self.number, self.number_absent) {
            (Some(n), _) => text_param(&mut p, PARAM_NUMBER, "number", n, MAX_NUMBER_LEN)?,
            (None, Some(a)) => p.extend_from_slice(&[PARAM_NUMBER_ABSENT, 1, a.code()]),
            (None, None) => {}
        }
        match (&self.name, self.name_absent) {
            (Some(n), _) => text_param(&mut p, PARAM_NAME, "name", n, MAX_NAME_LEN)?,
            (None, Some(a)) => p.extend_from_slice(&[PARAM_NAME_ABSENT, 1, a.code()]),
            (None, None) => {}
        }
        // At most 10 + 22 + 52 bytes of parameters: the length fits in a byte.
        let mut msg = vec![MSG_CALL_SETUP, p.len() as u8];
        msg.extend_from_slice(&p);
        let sum = msg.iter().fold(0u8, |s, &b| s.wrapping_add(b));
        msg.push(sum.wrapping_neg());
        Ok(msg)
    }

    /// On-hook (type 1) FSK burst at the V.23 defaults.
    pub fn modulate(&self) -> Result<Vec<i16>, CallerIdError> {
        self.modulate_with(FskParams::V23, Preamble::OnHook)
    }

    /// FSK burst with the given parameters and preamble. Ends with 2 mark bits so the
    /// last stop bit is not cut by the line switching.
    pub fn modulate_with(
        &self,
        params: FskParams,
        preamble: Preamble,
    ) -> Result<Vec<i16>, CallerIdError> {
        let msg = self.encode_mdmf()?;
        Ok(modulate_bytes(&msg, params, preamble))
    }

    /// Parses an MDMF call set-up message (trailing bytes after the checksum are ignored).
    pub fn parse_mdmf(bytes: &[u8]) -> Result<Self, CallerIdError> {
        let (&kind, rest) = bytes.split_first().ok_or(CallerIdError::Truncated {
            needed: 3,
            got: bytes.len(),
        })?;
        let Some(&len) = rest.first() else {
            return Err(CallerIdError::Truncated {
                needed: 3,
                got: bytes.len(),
            });
        };
        let needed = 2 + usize::from(len) + 1;
        let msg = bytes.get(..needed).ok_or(CallerIdError::Truncated {
            needed,
            got: bytes.len(),
        })?;
        let sum = msg.iter().fold(0u8, |s, &b| s.wrapping_add(b));
        if sum != 0 {
            return Err(CallerIdError::BadChecksum { sum });
        }
        if kind != MSG_CALL_SETUP {
            return Err(CallerIdError::UnknownMessageType(kind));
        }
        let mut params = &msg[2..needed - 1];
        let mut cid = CallerId::default();
        while let [kind, plen, tail @ ..] = params {
            let (kind, plen) = (*kind, usize::from(*plen));
            let value = tail.get(..plen).ok_or(CallerIdError::BadParameter {
                kind,
                reason: "length runs past the message",
            })?;
            params = &tail[plen..];
            let text = || value.iter().map(|&b| char::from(b)).collect::<String>();
            let absence = || match value {
                [b'P'] => Ok(Absence::Private),
                [b'O'] => Ok(Absence::Unavailable),
                _ => Err(CallerIdError::BadParameter {
                    kind,
                    reason: "reason is not 'P' or 'O'",
                }),
            };
            match kind {
                PARAM_DATETIME => cid.datetime = Some(parse_datetime(value)?),
                PARAM_NUMBER => cid.number = Some(text()),
                PARAM_NUMBER_ABSENT => cid.number_absent = Some(absence()?),
                PARAM_NAME => cid.name = Some(text()),
                PARAM_NAME_ABSENT => cid.name_absent = Some(absence()?),
                _ => {} // unknown parameters are skipped, as the standard asks
            }
        }
        if !params.is_empty() {
            return Err(CallerIdError::BadParameter {
                kind: params[0],
                reason: "parameter header cut off",
            });
        }
        Ok(cid)
    }

    /// Demodulates an FSK burst (on- or off-hook) and parses its message.
    pub fn demodulate(samples: &[i16]) -> Result<Self, CallerIdError> {
        let bytes = FskDemodulator::new(FskParams::V23, 40).demodulate(samples)?;
        Self::parse_mdmf(&bytes)
    }
}

/// FSK burst for arbitrary message bytes (also used to send corrupted messages in tests).
#[must_use]
pub fn modulate_bytes(msg: &[u8], params: FskParams, preamble: Preamble) -> Vec<i16> {
    let mut m = FskModulator::new(params);
    // 300 + 180 + 10 bits per byte + 2, at 6⅔ samples per bit.
    let mut out = Vec::with_capacity((492 + 10 * msg.len()) * 7);
    match preamble {
        Preamble::OnHook => {
            m.push_alternating(300, &mut out);
            m.push_mark(180, &mut out);
        }
        Preamble::OffHook => m.push_mark(80, &mut out),
    }
    for &b in msg {
        m.push_byte(b, &mut out);
    }
    m.push_mark(2, &mut out);
    out
}

fn parse_datetime(v: &[u8]) -> Result<CidDateTime, CallerIdError> {
    let bad = |reason| CallerIdError::BadParameter {
        kind: PARAM_DATETIME,
        reason,
    };
    if v.len() != 8 || !v.iter().all(u8::is_ascii_digit) {
        return Err(bad("not 8 digits"));
    }
    let two = |i: usize| (v[i] - b'0') * 10 + (v[i + 1] - b'0');
    let dt = CidDateTime {
        month: two(0),
        day: two(2),
        hour: two(4),
        minute: two(6),
    };
    if dt.valid() {
        Ok(dt)
    } else {
        Err(bad("date or time out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dsp::testutil::{add_noise, pcm, Rng};

    const DT: CidDateTime = CidDateTime {
        month: 1,
        day: 2,
        hour: 13,
        minute: 4,
    };

    fn anna() -> CallerId {
        CallerId {
            datetime: Some(DT),
            number: Some("0301234567".into()),
            name: Some("Anna".into()),
            ..CallerId::default()
        }
    }

    fn private() -> CallerId {
        CallerId {
            datetime: Some(DT),
            number_absent: Some(Absence::Private),
            name_absent: Some(Absence::Private),
            ..CallerId::default()
        }
    }

    fn unavailable() -> CallerId {
        CallerId {
            datetime: Some(CidDateTime {
                month: 12,
                day: 31,
                hour: 23,
                minute: 59,
            }),
            number_absent: Some(Absence::Unavailable),
            name_absent: Some(Absence::Unavailable),
            ..CallerId::default()
        }
    }

    #[test]
    fn encodes_known_message_exactly() {
        #[rustfmt::skip]
        let want = vec![
            0x80, 0x1C,                                       // call set-up, 28 bytes
            0x01, 0x08, b'0', b'1', b'0', b'2', b'1', b'3', b'0', b'4', // 01-02 13:04
            0x02, 0x0A, b'0', b'3', b'0', b'1', b'2', b'3', b'4', b'5', b'6', b'7',
            0x07, 0x04, b'A', b'n', b'n', b'a',
            0x3C, // sum of the above is 0x4C4 (0xC4 mod 256); 0x100 - 0xC4 = 0x3C
        ];
        assert_eq!(anna().encode_mdmf().unwrap(), want);
    }

    #[test]
    fn encodes_absence_reasons_exactly() {
        #[rustfmt::skip]
        let want = vec![
            0x80, 0x10,
            0x01, 0x08, b'0', b'1', b'0', b'2', b'1', b'3', b'0', b'4',
            0x04, 0x01, b'P',
            0x08, 0x01, b'P',
            // 0x80+0x10+0x01+0x08+0x18B ("01021304")+0x04+0x01+0x50+0x08+0x01+0x50 = 0x2D2
            0x2E,
        ];
        assert_eq!(private().encode_mdmf().unwrap(), want);
    }

    #[test]
    fn checksum_makes_the_sum_zero() {
        for cid in [anna(), private(), unavailable(), CallerId::default()] {
            let msg = cid.encode_mdmf().unwrap();
            assert_eq!(msg.iter().fold(0u8, |s, &b| s.wrapping_add(b)), 0);
            assert_eq!(usize::from(msg[1]), msg.len() - 3);
            assert_eq!(CallerId::parse_mdmf(&msg), Ok(cid));
        }
    }

    #[test]
    fn round_trip_through_fsk_clean_noisy_and_offset() {
        let long = CallerId {
            number: Some("+4930123456789012345".into()),
            name: Some("Dr. Maximiliane Mustermann-Schneider, Abt. Einkauf".into()),
            ..anna()
        };
        let mut rng = Rng::new(11);
        for cid in [anna(), private(), unavailable(), long] {
            for offset in [0.99f32, 1.0, 1.01] {
                for preamble in [Preamble::OnHook, Preamble::OffHook] {
                    let tx = FskParams {
                        mark_hz: 1300.0 * offset,
                        space_hz: 2100.0 * offset,
                        ..FskParams::V23
                    };
                    let mut x = vec![0.0f64; 800];
                    let burst = cid.modulate_with(tx, preamble).unwrap();
                    x.extend(burst.iter().map(|&s| f64::from(s)));
                    x.extend(std::iter::repeat_n(0.0, 800));
                    let clean = pcm(&x);
                    assert_eq!(CallerId::demodulate(&clean), Ok(cid.clone()));
                    add_noise(&mut x, 25.0, &mut rng);
                    assert_eq!(
                        CallerId::demodulate(&pcm(&x)),
                        Ok(cid.clone()),
                        "offset {offset}, {preamble:?}, noise"
                    );
                }
            }
        }
    }

    #[test]
    fn corrupted_byte_is_caught_by_the_checksum() {
        let mut msg = anna().encode_mdmf().unwrap();
        msg[20] ^= 0x04; // one digit of the number: '4' becomes '0'
        let x = modulate_bytes(&msg, FskParams::V23, Preamble::OnHook);
        assert_eq!(
            CallerId::demodulate(&x),
            Err(CallerIdError::BadChecksum { sum: 0xFC })
        );
    }

    #[test]
    fn parse_errors() {
        let good = anna().encode_mdmf().unwrap();
        let with_sum = |mut m: Vec<u8>| {
            let s = m.iter().fold(0u8, |s, &b| s.wrapping_add(b));
            m.push(s.wrapping_neg());
            m
        };
        let cases: Vec<(Vec<u8>, CallerIdError)> = vec![
            (vec![], CallerIdError::Truncated { needed: 3, got: 0 }),
            (
                good[..10].to_vec(),
                CallerIdError::Truncated {
                    needed: 31,
                    got: 10,
                },
            ),
            (
                with_sum(vec![0x82, 0x00]),
                CallerIdError::UnknownMessageType(0x82),
            ),
            (
                with_sum(vec![0x80, 0x03, 0x01, 0x01, b'1']),
                CallerIdError::BadParameter {
                    kind: 0x01,
                    reason: "not 8 digits",
                },
            ),
            (
                with_sum([&[0x80, 0x0A, 0x01, 0x08][..], b"13021304"].concat()),
                CallerIdError::BadParameter {
                    kind: 0x01,
                    reason: "date or time out of range",
                },
            ),
            (
                with_sum(vec![0x80, 0x03, 0x04, 0x01, b'X']),
                CallerIdError::BadParameter {
                    kind: 0x04,
                    reason: "reason is not 'P' or 'O'",
                },
            ),
            (
                with_sum(vec![0x80, 0x03, 0x02, 0x05, b'1']),
                CallerIdError::BadParameter {
                    kind: 0x02,
                    reason: "length runs past the message",
                },
            ),
        ];
        for (bytes, err) in cases {
            assert_eq!(CallerId::parse_mdmf(&bytes), Err(err), "{bytes:02x?}");
        }
        // Unknown parameter types are skipped.
        let skip = with_sum(vec![0x80, 0x06, 0x99, 0x01, 0x00, 0x02, 0x01, b'5']);
        let cid = CallerId::parse_mdmf(&skip).unwrap();
        assert_eq!(cid.number.as_deref(), Some("5"));
    }

    #[test]
    fn encode_errors() {
        let cases = [
            (
                CallerId {
                    number: Some("1".repeat(21)),
                    ..CallerId::default()
                },
                CallerIdError::FieldTooLong {
                    field: "number",
                    len: 21,
                    max: 20,
                },
            ),
            (
                CallerId {
                    name: Some("Müller".into()),
                    ..CallerId::default()
                },
                CallerIdError::InvalidCharacter {
                    field: "name",
                    ch: 'ü',
                },
            ),
            (
                CallerId {
                    datetime: Some(CidDateTime {
                        month: 0,
                        day: 1,
                        hour: 0,
                        minute: 0,
                    }),
                    ..CallerId::default()
                },
                CallerIdError::BadParameter {
                    kind: 0x01,
                    reason: "date or time out of range",
                },
            ),
        ];
        for (cid, err) in cases {
            assert_eq!(cid.encode_mdmf(), Err(err));
        }
    }

    #[test]
    fn silence_is_a_clear_error() {
        assert_eq!(
            CallerId::demodulate(&[0; 8000]),
            Err(CallerIdError::Fsk(FskError::NoMarkSignal))
        );
    }
}
