//! TP-UDL and TP-UD (TS 23.040 §9.2.3.16, §9.2.3.24), shared by SUBMIT and DELIVER.

use super::{gsm7, parse_udh, Alphabet, Body, Concat, PduError, TextPart};

/// Append UDL and UD for `part`, with an optional user-data header (without its length).
pub(crate) fn encode(part: &TextPart, udh: Option<&[u8]>, out: &mut Vec<u8>) {
    // UDHL octet plus the elements.
    let udh_octets = udh.map_or(0, |h| 1 + h.len());
    match part.alphabet {
        Alphabet::Gsm7 => {
            let mut septets = Vec::with_capacity(part.units);
            for c in part.text.chars() {
                // `split_text` chose GSM 7-bit only if every character encodes.
                if let Some(s) = gsm7::encode_char(c) {
                    s.push_to(&mut septets);
                }
            }
            let header_septets = (udh_octets * 8).div_ceil(7);
            let fill = header_septets * 7 - udh_octets * 8;
            // At most 160 septets in all (153 + 7 header septets): fits a u8.
            out.push((header_septets + septets.len()) as u8);
            push_udh(udh, out);
            out.extend(gsm7::pack(&septets, fill));
        }
        Alphabet::Ucs2 | Alphabet::EightBit => {
            let data: Vec<u8> = part
                .text
                .encode_utf16()
                .flat_map(u16::to_be_bytes)
                .collect();
            // At most 140 octets.
            out.push((udh_octets + data.len()) as u8);
            push_udh(udh, out);
            out.extend(data);
        }
    }
}

fn push_udh(udh: Option<&[u8]>, out: &mut Vec<u8>) {
    if let Some(h) = udh {
        // Concatenation headers are 5 or 6 octets.
        out.push(h.len() as u8);
        out.extend(h);
    }
}

/// Read UDL and UD (`data` starts at the UDL octet).
pub(crate) fn decode(
    udhi: bool,
    dcs: u8,
    data: &[u8],
) -> Result<(Alphabet, Option<Concat>, Body), PduError> {
    let (&udl, ud) = data
        .split_first()
        .ok_or(PduError::Truncated("user data length"))?;
    let udl = usize::from(udl);
    let alphabet = Alphabet::from_dcs(dcs)?;
    let (udh_octets, concat) = if udhi {
        let hl = usize::from(*ud.first().ok_or(PduError::Truncated("user data header"))?);
        let h = ud
            .get(1..1 + hl)
            .ok_or(PduError::Truncated("user data header"))?;
        (1 + hl, parse_udh(h)?)
    } else {
        (0, None)
    };
    let body = match alphabet {
        Alphabet::Gsm7 => {
            let header_septets = (udh_octets * 8).div_ceil(7);
            let fill = header_septets * 7 - udh_octets * 8;
            let count = udl
                .checked_sub(header_septets)
                .ok_or(PduError::Truncated("user data"))?;
            let septets = gsm7::unpack(ud.get(udh_octets..).unwrap_or_default(), fill, count)
                .ok_or(PduError::Truncated("user data"))?;
            Body::Text(gsm7::decode(&septets))
        }
        Alphabet::EightBit => Body::Binary(
            ud.get(udh_octets..udl)
                .ok_or(PduError::Truncated("user data"))?
                .to_vec(),
        ),
        Alphabet::Ucs2 => {
            let data = ud
                .get(udh_octets..udl)
                .ok_or(PduError::Truncated("user data"))?;
            // A trailing odd octet is dropped; lone surrogates show as U+FFFD.
            let units = data
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]));
            Body::Text(
                char::decode_utf16(units)
                    .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect(),
            )
        }
    };
    Ok((alphabet, concat, body))
}
