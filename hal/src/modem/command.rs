//! Typed AT commands. Every argument that can come from a user (number, PIN, PUK) is a
//! checked newtype, so a malformed value is refused before anything reaches the modem.

use std::time::Duration;

use super::pdu::SubmitPdu;

/// A value refused before it reached the modem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidArgument {
    /// A dial string must be 1..=40 characters of `0-9 + * #`.
    #[error("invalid number: only 0-9, +, * and # allowed, 1 to 40 characters")]
    Number,
    /// A PIN is 4 to 8 digits.
    #[error("invalid PIN: must be 4 to 8 digits")]
    Pin,
    /// A PUK is 8 digits.
    #[error("invalid PUK: must be 8 digits")]
    Puk,
}

/// A dial string: 1..=40 of `0-9 + * #`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialNumber(String);

impl DialNumber {
    /// Check and wrap a number.
    pub fn new(s: &str) -> Result<Self, InvalidArgument> {
        let ok = (1..=40).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'*' | b'#'));
        ok.then(|| DialNumber(s.to_owned()))
            .ok_or(InvalidArgument::Number)
    }
    /// The number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A SIM PIN: 4..=8 digits. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Pin(String);

impl Pin {
    /// Check and wrap a PIN.
    pub fn new(s: &str) -> Result<Self, InvalidArgument> {
        ((4..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Pin(s.to_owned()))
            .ok_or(InvalidArgument::Pin)
    }
    pub(crate) fn digits(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(****)")
    }
}

/// A SIM PUK: 8 digits. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Puk(String);

impl Puk {
    /// Check and wrap a PUK.
    pub fn new(s: &str) -> Result<Self, InvalidArgument> {
        (s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Puk(s.to_owned()))
            .ok_or(InvalidArgument::Puk)
    }
    pub(crate) fn digits(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Puk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Puk(********)")
    }
}

/// The commands the session can send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `AT`: is the modem alive.
    At,
    /// `ATE0`: echo off.
    EchoOff,
    /// `ATZ`: reset to the stored profile.
    Reset,
    /// `AT+CMEE=1`: numeric `+CME ERROR: <n>` instead of a bare `ERROR`, so a wrong PIN
    /// reads as code 16.
    EnableNumericErrors,
    /// `AT+CPIN?`: SIM state.
    QuerySimState,
    /// `AT+CPIN="<pin>"`.
    EnterPin(Pin),
    /// `AT+CPIN="<puk>","<new pin>"`.
    EnterPuk {
        /// The PUK.
        puk: Puk,
        /// The PIN to set.
        new_pin: Pin,
    },
    /// `AT+QPINC="SC"`: PIN/PUK attempts left (Quectel).
    QueryPinCounters,
    /// `AT+CREG?`: circuit-switched registration.
    QueryRegistration,
    /// `AT+CEREG?`: EPS (LTE) registration.
    QueryEpsRegistration,
    /// `AT+COPS?`: current operator.
    QueryOperator,
    /// `AT+CSQ`: signal quality.
    QuerySignal,
    /// `ATD<number>;`: voice call.
    Dial(DialNumber),
    /// `ATA`: answer.
    Answer,
    /// `ATH`: hang up.
    HangUp,
    /// `AT+CHUP`: hang up all voice calls.
    HangUpAll,
    /// `AT+CLCC`: list current calls.
    ListCalls,
    /// `AT+CLIP=1`: caller ID on incoming calls.
    EnableCallerId,
    /// `AT+CEER`: reason the last call ended.
    QueryCallEndReason,
    /// `AT+CMGF=0`: SMS in PDU mode.
    SetPduMode,
    /// `AT+CMGS=<len>`, then the PDU and Ctrl-Z after the `> ` prompt.
    SendSms(SubmitPdu),
    /// `AT+CMGR=<index>`.
    ReadSms(u16),
    /// `AT+CMGD=<index>`.
    DeleteSms(u16),
    /// `AT+CREG=1` (`eps` false) or `AT+CEREG=1`: registration changes reported as URCs.
    EnableRegistrationUrcs {
        /// `+CEREG` (LTE) rather than `+CREG`.
        eps: bool,
    },
    /// `AT+CNMI=2,1,0,0,0`: a stored SMS is announced with `+CMTI` (TS 27.005 §3.4.1).
    EnableSmsIndications,
    /// `AT+CMGL=4` (PDU mode): every message stored on the SIM, read or not.
    ListSms,
    /// `AT+QDAI=1,1,0,1,0,0,1,1` (Quectel): voice over the PCM interface, module as
    /// PCM master, 8 kHz 16-bit linear short frames, as the board's codec path expects.
    SetPcmInterface,
}

/// The command without its arguments: for the time-out table and response parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // one per `Command` variant, same names
#[non_exhaustive]
pub enum CommandKind {
    At,
    EchoOff,
    Reset,
    EnableNumericErrors,
    QuerySimState,
    EnterPin,
    EnterPuk,
    QueryPinCounters,
    QueryRegistration,
    QueryEpsRegistration,
    QueryOperator,
    QuerySignal,
    Dial,
    Answer,
    HangUp,
    HangUpAll,
    ListCalls,
    EnableCallerId,
    QueryCallEndReason,
    SetPduMode,
    SendSms,
    ReadSms,
    DeleteSms,
    EnableRegistrationUrcs,
    EnableSmsIndications,
    SetPcmInterface,
    ListSms,
}

impl CommandKind {
    /// Longest wait for the final result, from the Quectel EC2x AT manual's "maximum
    /// response time" (network-bound commands are long).
    pub fn timeout(self) -> Duration {
        use CommandKind::*;
        let ms = match self {
            At
            | EchoOff
            | Reset
            | EnableNumericErrors
            | QueryPinCounters
            | QueryRegistration
            | QueryEpsRegistration
            | QuerySignal
            | ListCalls
            | QueryCallEndReason
            | SetPduMode
            | ReadSms
            | DeleteSms
            | EnableRegistrationUrcs
            | EnableSmsIndications
            | SetPcmInterface => 300,
            QuerySimState | EnterPin | EnterPuk | ListSms => 5_000,
            EnableCallerId => 15_000,
            Answer | HangUp | HangUpAll => 90_000,
            SendSms => 120_000,
            QueryOperator | Dial => 180_000,
        };
        Duration::from_millis(ms)
    }

    /// Whether `NO CARRIER`, `BUSY`, `NO ANSWER`, `NO DIALTONE` can end this command
    /// (otherwise they are call events).
    pub(crate) fn is_call_setup(self) -> bool {
        matches!(self, CommandKind::Dial | CommandKind::Answer)
    }
}

impl Command {
    /// The argument-free kind.
    pub fn kind(&self) -> CommandKind {
        use CommandKind as K;
        match self {
            Command::At => K::At,
            Command::EchoOff => K::EchoOff,
            Command::Reset => K::Reset,
            Command::EnableNumericErrors => K::EnableNumericErrors,
            Command::QuerySimState => K::QuerySimState,
            Command::EnterPin(_) => K::EnterPin,
            Command::EnterPuk { .. } => K::EnterPuk,
            Command::QueryPinCounters => K::QueryPinCounters,
            Command::QueryRegistration => K::QueryRegistration,
            Command::QueryEpsRegistration => K::QueryEpsRegistration,
            Command::QueryOperator => K::QueryOperator,
            Command::QuerySignal => K::QuerySignal,
            Command::Dial(_) => K::Dial,
            Command::Answer => K::Answer,
            Command::HangUp => K::HangUp,
            Command::HangUpAll => K::HangUpAll,
            Command::ListCalls => K::ListCalls,
            Command::EnableCallerId => K::EnableCallerId,
            Command::QueryCallEndReason => K::QueryCallEndReason,
            Command::SetPduMode => K::SetPduMode,
            Command::SendSms(_) => K::SendSms,
            Command::ReadSms(_) => K::ReadSms,
            Command::DeleteSms(_) => K::DeleteSms,
            Command::EnableRegistrationUrcs { .. } => K::EnableRegistrationUrcs,
            Command::EnableSmsIndications => K::EnableSmsIndications,
            Command::SetPcmInterface => K::SetPcmInterface,
            Command::ListSms => K::ListSms,
        }
    }

    /// The command line without the final CR (what an echo looks like). For `EnterPin` and
    /// `EnterPuk` it holds the secret: log [`Command::kind`], never this.
    pub fn line(&self) -> String {
        match self {
            Command::At => "AT".into(),
            Command::EchoOff => "ATE0".into(),
            Command::Reset => "ATZ".into(),
            Command::EnableNumericErrors => "AT+CMEE=1".into(),
            Command::QuerySimState => "AT+CPIN?".into(),
            Command::EnterPin(p) => format!("AT+CPIN=\"{}\"", p.digits()),
            Command::EnterPuk { puk, new_pin } => {
                format!("AT+CPIN=\"{}\",\"{}\"", puk.digits(), new_pin.digits())
            }
            Command::QueryPinCounters => "AT+QPINC=\"SC\"".into(),
            Command::QueryRegistration => "AT+CREG?".into(),
            Command::QueryEpsRegistration => "AT+CEREG?".into(),
            Command::QueryOperator => "AT+COPS?".into(),
            Command::QuerySignal => "AT+CSQ".into(),
            Command::Dial(n) => format!("ATD{};", n.as_str()),
            Command::Answer => "ATA".into(),
            Command::HangUp => "ATH".into(),
            Command::HangUpAll => "AT+CHUP".into(),
            Command::ListCalls => "AT+CLCC".into(),
            Command::EnableCallerId => "AT+CLIP=1".into(),
            Command::QueryCallEndReason => "AT+CEER".into(),
            Command::SetPduMode => "AT+CMGF=0".into(),
            Command::SendSms(pdu) => format!("AT+CMGS={}", pdu.tpdu_len()),
            Command::ReadSms(i) => format!("AT+CMGR={i}"),
            Command::DeleteSms(i) => format!("AT+CMGD={i}"),
            Command::EnableRegistrationUrcs { eps: false } => "AT+CREG=1".into(),
            Command::EnableRegistrationUrcs { eps: true } => "AT+CEREG=1".into(),
            Command::EnableSmsIndications => "AT+CNMI=2,1,0,0,0".into(),
            Command::SetPcmInterface => "AT+QDAI=1,1,0,1,0,0,1,1".into(),
            Command::ListSms => "AT+CMGL=4".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_values_are_checked() {
        assert!(DialNumber::new("+49301234*31#").is_ok());
        for bad in [
            "",
            "0301;ATH",
            "030 123",
            "12345678901234567890123456789012345678901",
            "0301\r",
        ] {
            assert_eq!(
                DialNumber::new(bad),
                Err(InvalidArgument::Number),
                "{bad:?}"
            );
        }
        assert!(Pin::new("1234").is_ok() && Pin::new("12345678").is_ok());
        for bad in ["123", "123456789", "12a4", "1234\""] {
            assert_eq!(Pin::new(bad), Err(InvalidArgument::Pin), "{bad:?}");
        }
        assert!(Puk::new("12345678").is_ok());
        assert_eq!(Puk::new("1234567"), Err(InvalidArgument::Puk));
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let cmd = Command::EnterPin(Pin::new("4711").unwrap());
        assert!(!format!("{cmd:?}").contains("4711"));
        assert_eq!(cmd.line(), "AT+CPIN=\"4711\"");
    }
}
