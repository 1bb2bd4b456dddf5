//! Addresses (TS 23.040 §9.1.2.5) and the service-centre time stamp (§9.2.3.11).

use super::{gsm7, PduError};

/// A phone number or an alphanumeric sender.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// International number; the string starts with `+`.
    International(String),
    /// Any other numeric form (national, unknown), digits and `*#` as received.
    Other {
        /// The digits.
        number: String,
        /// The type-of-address octet as received.
        type_of_address: u8,
    },
    /// An alphanumeric sender ("Telekom"), GSM 7-bit coded.
    Alphanumeric(String),
}

impl Address {
    /// Parse a destination typed by a user: optional leading `+`, then `0-9*#`, 1..=20 digits.
    pub fn parse_destination(s: &str) -> Result<Address, PduError> {
        let (international, digits) = match s.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if digits.is_empty()
            || digits.len() > 20
            || !digits
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
        {
            return Err(PduError::InvalidAddress(s.to_owned()));
        }
        Ok(if international {
            Address::International(s.to_owned())
        } else {
            Address::Other {
                number: digits.to_owned(),
                type_of_address: 0x81,
            }
        })
    }

    /// Encode as length, type of address, value (destination and originating address form).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), PduError> {
        match self {
            Address::International(n) => encode_numeric(&n[1..], 0x91, out),
            Address::Other {
                number,
                type_of_address,
            } => encode_numeric(number, *type_of_address, out),
            Address::Alphanumeric(text) => {
                let mut septets = Vec::new();
                for c in text.chars() {
                    gsm7::encode_char(c)
                        .ok_or_else(|| PduError::InvalidAddress(text.clone()))?
                        .push_to(&mut septets);
                }
                let packed = gsm7::pack(&septets, 0);
                let useful = (septets.len() * 7).div_ceil(4);
                if packed.len() > 10 {
                    return Err(PduError::InvalidAddress(text.clone()));
                }
                // At most 10 octets, so at most 20 semi-octets: fits a u8.
                out.extend([useful as u8, 0xD0]);
                out.extend(packed);
                Ok(())
            }
        }
    }

    /// Decode from `data`; returns the address and the octets used.
    pub(crate) fn decode(data: &[u8]) -> Result<(Address, usize), PduError> {
        let (&len, rest) = data.split_first().ok_or(PduError::Truncated("address"))?;
        let (&toa, rest) = rest.split_first().ok_or(PduError::Truncated("address"))?;
        let octets = usize::from(len).div_ceil(2);
        let value = rest.get(..octets).ok_or(PduError::Truncated("address"))?;
        let addr = if toa & 0x70 == 0x50 {
            let septets = gsm7::unpack(value, 0, usize::from(len) * 4 / 7)
                .ok_or(PduError::Truncated("address"))?;
            Address::Alphanumeric(gsm7::decode(&septets))
        } else {
            let digits = decode_semi_octets(value, usize::from(len))?;
            if toa & 0x70 == 0x10 {
                Address::International(format!("+{digits}"))
            } else {
                Address::Other {
                    number: digits,
                    type_of_address: toa,
                }
            }
        };
        Ok((addr, 2 + octets))
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::International(s) | Address::Alphanumeric(s) => f.write_str(s),
            Address::Other { number, .. } => f.write_str(number),
        }
    }
}

/// Decode the SMSC field that precedes a TPDU in `+CMGR` output: a length in octets
/// (0 = none), the type of address, then semi-octets padded with `F`.
pub(crate) fn decode_smsc(data: &[u8]) -> Result<(Option<Address>, usize), PduError> {
    let len = usize::from(*data.first().ok_or(PduError::Truncated("SMSC address"))?);
    if len == 0 {
        return Ok((None, 1));
    }
    let field = data
        .get(1..1 + len)
        .ok_or(PduError::Truncated("SMSC address"))?;
    let toa = field[0];
    let value = &field[1..];
    let mut digits = value.len() * 2;
    if value.last().is_some_and(|b| b >> 4 == 0xF) {
        digits -= 1;
    }
    let number = decode_semi_octets(value, digits)?;
    let addr = if toa & 0x70 == 0x10 {
        Address::International(format!("+{number}"))
    } else {
        Address::Other {
            number,
            type_of_address: toa,
        }
    };
    Ok((Some(addr), 1 + len))
}

fn encode_numeric(digits: &str, toa: u8, out: &mut Vec<u8>) -> Result<(), PduError> {
    let nibbles: Vec<u8> = digits
        .bytes()
        .map(|b| match b {
            b'0'..=b'9' => Ok(b - b'0'),
            b'*' => Ok(0xA),
            b'#' => Ok(0xB),
            _ => Err(PduError::InvalidAddress(digits.to_owned())),
        })
        .collect::<Result<_, _>>()?;
    if nibbles.is_empty() || nibbles.len() > 20 {
        return Err(PduError::InvalidAddress(digits.to_owned()));
    }
    // Checked above: at most 20 digits.
    out.extend([nibbles.len() as u8, toa]);
    for pair in nibbles.chunks(2) {
        let hi = pair.get(1).copied().unwrap_or(0xF);
        out.push(hi << 4 | pair[0]);
    }
    Ok(())
}

fn decode_semi_octets(value: &[u8], count: usize) -> Result<String, PduError> {
    let mut s = String::with_capacity(count);
    for i in 0..count {
        let b = value[i / 2];
        let n = if i % 2 == 0 { b & 0xF } else { b >> 4 };
        s.push(match n {
            0..=9 => char::from(b'0' + n),
            0xA => '*',
            0xB => '#',
            0xC => 'a',
            0xD => 'b',
            0xE => 'c',
            _ => return Err(PduError::InvalidAddress(format!("nibble {n:X}"))),
        });
    }
    Ok(s)
}

/// The service-centre time stamp: local time of the SMSC plus its offset from UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    /// Full year (2000 + the two digits sent).
    pub year: u16,
    /// 1..=12.
    pub month: u8,
    /// 1..=31.
    pub day: u8,
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
    /// 0..=59.
    pub second: u8,
    /// Offset from UTC in quarter hours (+4 = UTC+1).
    pub tz_quarter_hours: i8,
}

impl Timestamp {
    pub(crate) fn decode(b: &[u8]) -> Result<Timestamp, PduError> {
        let b = b.get(..7).ok_or(PduError::Truncated("time stamp"))?;
        let swapped = |x: u8| -> Result<u8, PduError> {
            let (lo, hi) = (x & 0xF, x >> 4);
            if lo > 9 || hi > 9 {
                return Err(PduError::InvalidTimestamp);
            }
            Ok(lo * 10 + hi)
        };
        let tz_abs = (b[6] & 0x07) * 10 + (b[6] >> 4);
        if b[6] >> 4 > 9 {
            return Err(PduError::InvalidTimestamp);
        }
        // At most 79 quarter hours: fits an i8.
        let tz = tz_abs as i8;
        Ok(Timestamp {
            year: 2000 + u16::from(swapped(b[0])?),
            month: swapped(b[1])?,
            day: swapped(b[2])?,
            hour: swapped(b[3])?,
            minute: swapped(b[4])?,
            second: swapped(b[5])?,
            tz_quarter_hours: if b[6] & 0x08 != 0 { -tz } else { tz },
        })
    }

    /// The seven semi-octet-swapped octets (years 2000..=2099).
    pub fn encode(&self) -> [u8; 7] {
        let sw = |v: u8| (v % 10) << 4 | (v / 10);
        let tz = self.tz_quarter_hours.unsigned_abs();
        let mut t = sw(tz);
        if self.tz_quarter_hours < 0 {
            t |= 0x08;
        }
        [
            sw((self.year % 100) as u8),
            sw(self.month),
            sw(self.day),
            sw(self.hour),
            sw(self.minute),
            sw(self.second),
            t,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_addresses_round_trip_with_semi_octets() {
        let mut out = Vec::new();
        Address::parse_destination("+46708251358")
            .unwrap()
            .encode(&mut out)
            .unwrap();
        assert_eq!(out, [0x0B, 0x91, 0x64, 0x07, 0x28, 0x15, 0x53, 0xF8]);
        assert_eq!(
            Address::decode(&out).unwrap(),
            (Address::International("+46708251358".into()), 8)
        );
        out.clear();
        Address::parse_destination("*31#0301234")
            .unwrap()
            .encode(&mut out)
            .unwrap();
        assert_eq!(out[..2], [11, 0x81]);
        assert_eq!(Address::decode(&out).unwrap().0.to_string(), "*31#0301234");
    }

    #[test]
    fn destinations_are_checked() {
        for bad in ["", "+", "0301a", "+49 30", "123456789012345678901"] {
            assert!(Address::parse_destination(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn alphanumeric_sender_decodes() {
        let mut out = Vec::new();
        Address::Alphanumeric("InfoSMS".into())
            .encode(&mut out)
            .unwrap();
        assert_eq!(out[..2], [13, 0xD0]);
        assert_eq!(
            Address::decode(&out).unwrap().0,
            Address::Alphanumeric("InfoSMS".into())
        );
    }

    #[test]
    fn timestamp_with_negative_zone() {
        // 2024-03-09 14:05:59, UTC-5 (-20 quarters): tz octet 0x0A = sign + 2 tens, 0 units.
        let t = Timestamp::decode(&[0x42, 0x30, 0x90, 0x41, 0x50, 0x95, 0x0A]).unwrap();
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second),
            (2024, 3, 9, 14, 5, 59)
        );
        assert_eq!(t.tz_quarter_hours, -20);
        assert_eq!(Timestamp::decode(&t.encode()).unwrap(), t);
        assert_eq!(
            Timestamp::decode(&[0x4A, 0, 0, 0, 0, 0, 0]),
            Err(PduError::InvalidTimestamp)
        );
    }
}
