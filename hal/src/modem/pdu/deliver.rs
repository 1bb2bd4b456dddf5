//! SMS-DELIVER decoding (TS 23.040 §9.2.2.1), as read with `AT+CMGR` in PDU mode.

use super::address::decode_smsc;
use super::{split_text, userdata, Address, Alphabet, Concat, PduError, Timestamp};

/// The user data of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// GSM 7-bit or UCS-2 text.
    Text(String),
    /// 8-bit data.
    Binary(Vec<u8>),
}

/// A decoded SMS-DELIVER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliver {
    /// The service centre that delivered it, if the PDU names one.
    pub smsc: Option<Address>,
    /// Originating address (number or alphanumeric sender).
    pub sender: Address,
    /// SMSC time stamp.
    pub timestamp: Timestamp,
    /// TP-PID.
    pub pid: u8,
    /// TP-DCS as received.
    pub dcs: u8,
    /// Alphabet derived from the DCS.
    pub alphabet: Alphabet,
    /// Concatenation element from the user-data header.
    pub concat: Option<Concat>,
    /// The text or data.
    pub body: Body,
}

/// Decode an SMS-DELIVER that starts with the SMSC field, as `+CMGR` returns it.
pub fn decode_deliver(pdu: &[u8]) -> Result<Deliver, PduError> {
    let (smsc, used) = decode_smsc(pdu)?;
    let t = &pdu[used..];
    let first = *t.first().ok_or(PduError::Truncated("first octet"))?;
    if first & 0x03 != 0x00 {
        return Err(PduError::NotDeliver(first & 0x03));
    }
    let udhi = first & 0x40 != 0;
    let (sender, used) = Address::decode(&t[1..])?;
    let rest = &t[1 + used..];
    let [pid, dcs, ..] = *rest else {
        return Err(PduError::Truncated("PID/DCS"));
    };
    let timestamp = Timestamp::decode(&rest[2..])?;
    let (alphabet, concat, body) = userdata::decode(udhi, dcs, &rest[9..])?;
    Ok(Deliver {
        smsc,
        sender,
        timestamp,
        pid,
        dcs,
        alphabet,
        concat,
        body,
    })
}

/// Encode `text` from `sender` as SMS-DELIVER PDUs (SMSC field `00`), split and
/// concatenated like [`super::encode_submit`]: what a modem emulator hands out with `+CMGR`.
pub fn encode_deliver(
    sender: &Address,
    timestamp: Timestamp,
    text: &str,
    concat_ref: u8,
) -> Result<Vec<Vec<u8>>, PduError> {
    let parts = split_text(text)?;
    let total = parts.len();
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            // `split_text` caps the count at 255.
            let udh = (total > 1).then(|| [0x00, 0x03, concat_ref, total as u8, (i + 1) as u8]);
            let mut b = vec![0x00, if udh.is_some() { 0x44 } else { 0x04 }];
            sender.encode(&mut b)?;
            b.extend([0x00, part.alphabet.dcs()]);
            b.extend(timestamp.encode());
            userdata::encode(part, udh.as_ref().map(|h| &h[..]), &mut b);
            Ok(b)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::from_hex;
    use super::*;

    #[test]
    fn gsm7_deliver_worked_by_hand() {
        // SMSC +31624000000, sender +31641600986, 2002-08-17 23:43:27 UTC+2 (8 quarters),
        // text "How are you?" (12 septets).
        let pdu = from_hex(
            "07911326040000F0040B911346610089F60000208071323472800CC8F71D14969741F977FD07",
        )
        .unwrap();
        let d = decode_deliver(&pdu).unwrap();
        assert_eq!(d.smsc, Some(Address::International("+31624000000".into())));
        assert_eq!(d.sender, Address::International("+31641600986".into()));
        assert_eq!(
            d.timestamp,
            Timestamp {
                year: 2002,
                month: 8,
                day: 17,
                hour: 23,
                minute: 43,
                second: 27,
                tz_quarter_hours: 8
            }
        );
        assert_eq!(d.body, Body::Text("How are you?".into()));
        assert_eq!(d.concat, None);
    }

    #[test]
    fn truncated_pdus_are_errors_not_panics() {
        let pdu = from_hex(
            "07911326040000F0040B911346610089F60000208071323472800CC8F71D14969741F977FD07",
        )
        .unwrap();
        for n in 0..pdu.len() {
            assert!(decode_deliver(&pdu[..n]).is_err(), "prefix of {n} octets");
        }
    }
}
