//! Checks on an SMS a user wants to send, before it is queued: a number the network can
//! take and a text that encodes into at most 255 parts.

use pbx_hal::modem::pdu::{self, Address};

/// Why an SMS is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmsRefused {
    /// Not a phone number.
    #[error("invalid number {0:?}: use + and digits, or national digits (at most 20)")]
    Number(String),
    /// Nothing to send.
    #[error("the text is empty")]
    Empty,
    /// Cannot be encoded (too long, or characters an SMS cannot carry).
    #[error("cannot send this text: {0}")]
    Text(String),
}

/// Checks `number` and `text`; returns the number of parts the text needs.
pub fn check(number: &str, text: &str) -> Result<usize, SmsRefused> {
    Address::parse_destination(number).map_err(|_| SmsRefused::Number(number.to_owned()))?;
    if text.is_empty() {
        return Err(SmsRefused::Empty);
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r'))
    {
        return Err(SmsRefused::Text("control characters cannot be sent".into()));
    }
    pdu::split_text(text)
        .map(|p| p.len())
        .map_err(|e| SmsRefused::Text(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_refusals() {
        assert_eq!(check("+491701234567", "hello"), Ok(1));
        assert_eq!(check("+491701234567", &"a".repeat(161)), Ok(2));
        // Extension-table characters take two septets.
        assert_eq!(check("01701234567", &"€".repeat(80)), Ok(1));
        assert_eq!(check("01701234567", &"€".repeat(81)), Ok(2));
        // UCS-2: 70 per single part.
        assert_eq!(check("+4930", &"ä😀".repeat(23)), Ok(1));
        assert!(matches!(check("abc", "x"), Err(SmsRefused::Number(_))));
        assert_eq!(check("+4930", ""), Err(SmsRefused::Empty));
        assert!(matches!(
            check("+4930", "a\u{7}b"),
            Err(SmsRefused::Text(_))
        ));
        let e = check("+4930", &"x".repeat(153 * 255 + 1)).unwrap_err();
        assert!(e.to_string().contains("at most 255"), "{e}");
    }
}
