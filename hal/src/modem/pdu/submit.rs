//! SMS-SUBMIT encoding (TS 23.040 §9.2.2.2) and splitting into concatenated parts.

use super::{gsm7, userdata, Address, Alphabet, Body, Concat, PduError, MAX_PARTS};

/// Septets in a single GSM 7-bit message, and per part of a concatenated one.
const GSM7_SINGLE: usize = 160;
const GSM7_PART: usize = 153;
/// UTF-16 code units in a single UCS-2 message, and per part.
const UCS2_SINGLE: usize = 70;
const UCS2_PART: usize = 67;

/// Options for [`encode_submit`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubmitOptions {
    /// Relative validity period octet (TP-VP, e.g. 0xAD = 7 days); `None` = SMSC default.
    pub validity: Option<u8>,
    /// Ask for a status report (TP-SRR).
    pub status_report: bool,
    /// Concatenation reference for multi-part messages; the caller varies it per message.
    pub concat_ref: u8,
}

/// One part of a split text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextPart {
    /// The coding used for every part of the message.
    pub alphabet: Alphabet,
    /// The characters in this part.
    pub text: String,
    /// Length in septets (GSM 7-bit) or UTF-16 code units (UCS-2).
    pub units: usize,
}

/// A ready SMS-SUBMIT PDU, preceded by `00` (use the SIM's SMSC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitPdu {
    bytes: Vec<u8>,
}

impl SubmitPdu {
    /// The octets including the leading SMSC length `00`.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// The length for `AT+CMGS=<length>`: the TPDU without the SMSC field.
    pub fn tpdu_len(&self) -> usize {
        self.bytes.len() - 1
    }
    /// Upper-case hex, sent after the `> ` prompt.
    pub fn to_hex(&self) -> String {
        super::to_hex(&self.bytes)
    }
    /// Wrap octets that already hold a PDU (leading SMSC field `00`).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<SubmitPdu, PduError> {
        if bytes.len() < 2 || bytes[0] != 0 {
            return Err(PduError::Truncated("SMS-SUBMIT"));
        }
        Ok(SubmitPdu { bytes })
    }
}

/// Split `text` into parts: GSM 7-bit if every character is in the default alphabet or the
/// extension table, else UCS-2. 160 septets (70 UCS-2 units) fit one message; longer texts
/// use 153 (67) per part. A two-septet extension character or a surrogate pair is never
/// split across parts.
pub fn split_text(text: &str) -> Result<Vec<TextPart>, PduError> {
    let gsm: Option<Vec<usize>> = text
        .chars()
        .map(|c| gsm7::encode_char(c).map(|s| s.len()))
        .collect();
    let (alphabet, widths, single, per_part) = match gsm {
        Some(w) => (Alphabet::Gsm7, w, GSM7_SINGLE, GSM7_PART),
        None => (
            Alphabet::Ucs2,
            text.chars().map(char::len_utf16).collect(),
            UCS2_SINGLE,
            UCS2_PART,
        ),
    };
    let total: usize = widths.iter().sum();
    if total <= single {
        return Ok(vec![TextPart {
            alphabet,
            text: text.to_owned(),
            units: total,
        }]);
    }
    let mut parts = Vec::new();
    let mut cur = TextPart {
        alphabet,
        text: String::new(),
        units: 0,
    };
    for (c, w) in text.chars().zip(widths) {
        if cur.units + w > per_part {
            let next = TextPart {
                alphabet,
                text: String::new(),
                units: 0,
            };
            parts.push(std::mem::replace(&mut cur, next));
        }
        cur.text.push(c);
        cur.units += w;
    }
    parts.push(cur);
    if parts.len() > MAX_PARTS {
        return Err(PduError::TooManyParts { parts: parts.len() });
    }
    Ok(parts)
}

/// Encode `text` to `destination` as one or more SMS-SUBMIT PDUs (with a concatenation
/// header, 8-bit reference `opts.concat_ref`, when more than one).
pub fn encode_submit(
    destination: &str,
    text: &str,
    opts: &SubmitOptions,
) -> Result<Vec<SubmitPdu>, PduError> {
    let dest = Address::parse_destination(destination)?;
    let parts = split_text(text)?;
    let total = parts.len();
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            // `split_text` caps the count at 255, so both fit a u8.
            let udh =
                (total > 1).then(|| [0x00, 0x03, opts.concat_ref, total as u8, (i + 1) as u8]);
            encode_one(&dest, part, udh.as_ref().map(|h| &h[..]), opts)
        })
        .collect()
}

fn encode_one(
    dest: &Address,
    part: &TextPart,
    udh: Option<&[u8]>,
    opts: &SubmitOptions,
) -> Result<SubmitPdu, PduError> {
    let mut b = vec![0x00]; // no SMSC address: the modem uses the SIM's
    let mut first = 0x01; // TP-MTI = SMS-SUBMIT
    if opts.validity.is_some() {
        first |= 0x10; // TP-VPF = relative
    }
    if opts.status_report {
        first |= 0x20;
    }
    if udh.is_some() {
        first |= 0x40;
    }
    b.extend([first, 0x00]); // TP-MR 0: the modem assigns it
    dest.encode(&mut b)?;
    b.extend([0x00, part.alphabet.dcs()]);
    if let Some(vp) = opts.validity {
        b.push(vp);
    }
    userdata::encode(part, udh, &mut b);
    Ok(SubmitPdu { bytes: b })
}

/// A decoded SMS-SUBMIT (what the modem was asked to send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    /// TP-DA.
    pub destination: Address,
    /// TP-MR.
    pub reference: u8,
    /// Relative TP-VP, if present.
    pub validity: Option<u8>,
    /// TP-SRR.
    pub status_report: bool,
    /// TP-DCS.
    pub dcs: u8,
    /// Alphabet from the DCS.
    pub alphabet: Alphabet,
    /// Concatenation element.
    pub concat: Option<Concat>,
    /// Text or data.
    pub body: Body,
}

/// Decode an SMS-SUBMIT that starts with the SMSC field (`00` or an address).
pub fn decode_submit(pdu: &[u8]) -> Result<Submit, PduError> {
    let (_, used) = super::address::decode_smsc(pdu)?;
    let t = &pdu[used..];
    let [first, reference, ..] = *t else {
        return Err(PduError::Truncated("first octet"));
    };
    if first & 0x03 != 0x01 {
        return Err(PduError::NotSubmit(first & 0x03));
    }
    let (destination, used) = Address::decode(&t[2..])?;
    let rest = &t[2 + used..];
    let [_pid, dcs, ..] = *rest else {
        return Err(PduError::Truncated("PID/DCS"));
    };
    let vp_len = match (first >> 3) & 0x03 {
        0 => 0,
        2 => 1,
        _ => 7, // enhanced or absolute: skipped
    };
    let validity = match vp_len {
        1 => Some(*rest.get(2).ok_or(PduError::Truncated("validity"))?),
        _ => None,
    };
    let ud = rest
        .get(2 + vp_len..)
        .ok_or(PduError::Truncated("validity"))?;
    let (alphabet, concat, body) = userdata::decode(first & 0x40 != 0, dcs, ud)?;
    Ok(Submit {
        destination,
        reference,
        validity,
        status_report: first & 0x20 != 0,
        dcs,
        alphabet,
        concat,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_validity_the_vpf_bits_are_clear() {
        let pdus = encode_submit("+46708251358", "hellohello", &SubmitOptions::default()).unwrap();
        assert_eq!(
            pdus[0].to_hex(),
            "0001000B916407281553F800000AE8329BFD4697D9EC37"
        );
    }

    #[test]
    fn ucs2_emoji_is_a_surrogate_pair() {
        let pdus = encode_submit("0301234", "Hi😀", &SubmitOptions::default()).unwrap();
        let hex = pdus[0].to_hex();
        // DCS 08, UDL 8 octets: 'H' 'i' and D83D DE00.
        assert!(hex.ends_with("00080800480069D83DDE00"), "{hex}");
    }
}
