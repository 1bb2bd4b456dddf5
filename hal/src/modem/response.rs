//! Classification and typed parsing of modem lines (TS 27.007, TS 27.005, Quectel).
//!
//! Whether a line answers our command or is unsolicited sometimes depends on the command in
//! flight: `+CREG: 1,5` answers `AT+CREG?` (`n,stat`) but the unsolicited form is
//! `+CREG: stat[,lac,ci[,act]]`; `NO CARRIER` ends `ATD` but is a hang-up at any other time.

use super::command::CommandKind;

/// A line the parsers could not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what} line: {line:?}")]
pub struct ParseError {
    /// Which response was expected.
    pub what: &'static str,
    /// The line as received.
    pub line: String,
}

fn err(what: &'static str, line: &str) -> ParseError {
    ParseError {
        what,
        line: line.to_owned(),
    }
}

/// `+CME ERROR:` (numeric or verbose form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmeError {
    /// `+CME ERROR: <n>` (AT+CMEE=1).
    Code(u16),
    /// `+CME ERROR: <text>` (AT+CMEE=2).
    Text(String),
}

impl CmeError {
    /// TS 27.007 §9.2.1 code 16, "incorrect password": the SIM rejected a PIN or PUK.
    pub fn is_incorrect_password(&self) -> bool {
        match self {
            CmeError::Code(c) => *c == 16,
            CmeError::Text(t) => t.eq_ignore_ascii_case("incorrect password"),
        }
    }
    /// Code 12, "SIM PUK required" (what some modules answer to the last wrong PIN).
    pub fn is_puk_required(&self) -> bool {
        match self {
            CmeError::Code(c) => *c == 12,
            CmeError::Text(t) => t.eq_ignore_ascii_case("SIM PUK required"),
        }
    }
}

impl std::fmt::Display for CmeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CmeError::Code(c) => write!(f, "+CME ERROR: {c}"),
            CmeError::Text(t) => write!(f, "+CME ERROR: {t}"),
        }
    }
}

/// A final result code: it ends the command in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalResult {
    /// `OK`.
    Ok,
    /// `CONNECT [<text>]`.
    Connect(Option<String>),
    /// `ERROR`.
    Error,
    /// `+CME ERROR: ..`.
    Cme(CmeError),
    /// `+CMS ERROR: <n>` (TS 27.005 §3.2.5).
    Cms(u16),
    /// `NO CARRIER`.
    NoCarrier,
    /// `BUSY`.
    Busy,
    /// `NO ANSWER`.
    NoAnswer,
    /// `NO DIALTONE`.
    NoDialtone,
}

/// SIM state from `+CPIN:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimState {
    /// No PIN needed.
    Ready,
    /// Waiting for the PIN.
    PinRequired,
    /// PIN blocked; waiting for the PUK.
    PukRequired,
    /// Waiting for PIN2.
    Pin2Required,
    /// Waiting for PUK2.
    Puk2Required,
    /// Phone-to-SIM lock.
    PhoneSimPin,
    /// No SIM (Quectel URC `+CPIN: NOT INSERTED`).
    NotInserted,
    /// SIM not ready yet.
    NotReady,
    /// Anything else, verbatim.
    Other(String),
}

/// Attempts left, from `+QPINC: "SC",<pin>,<puk>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinCounters {
    /// PIN attempts left.
    pub pin_left: u8,
    /// PUK attempts left.
    pub puk_left: u8,
}

/// Registration status `<stat>` (TS 27.007 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegStatus {
    /// 0: not registered, not searching.
    NotRegistered,
    /// 1: registered, home network.
    Home,
    /// 2: searching.
    Searching,
    /// 3: registration denied.
    Denied,
    /// 4: unknown.
    Unknown,
    /// 5: registered, roaming.
    Roaming,
    /// Other values (SMS-only, emergency-only, ...).
    Other(u8),
}

impl RegStatus {
    fn from_code(c: u8) -> Self {
        match c {
            0 => RegStatus::NotRegistered,
            1 => RegStatus::Home,
            2 => RegStatus::Searching,
            3 => RegStatus::Denied,
            4 => RegStatus::Unknown,
            5 => RegStatus::Roaming,
            n => RegStatus::Other(n),
        }
    }
    /// Registered at home or roaming.
    pub fn is_registered(self) -> bool {
        matches!(self, RegStatus::Home | RegStatus::Roaming)
    }
}

/// `+CREG`/`+CEREG` contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Registration status.
    pub status: RegStatus,
    /// Location (or tracking) area code, hex as sent.
    pub area: Option<String>,
    /// Cell id, hex as sent.
    pub cell: Option<String>,
    /// Access technology (7 = E-UTRAN).
    pub act: Option<u8>,
}

/// `+COPS?` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// Selection mode (0 automatic, 1 manual, 2 deregistered, ...).
    pub mode: u8,
    /// Operator name or numeric id; `None` when not registered.
    pub name: Option<String>,
    /// Access technology.
    pub act: Option<u8>,
}

/// `+CSQ` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalQuality {
    /// Received signal strength in dBm; `None` when unknown (99). 31 means -51 or better.
    pub rssi_dbm: Option<i16>,
    /// Bit error rate class 0..=7; `None` when unknown (99).
    pub ber: Option<u8>,
}

/// Call direction in `+CLCC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallDirection {
    /// 0: we called.
    Outgoing,
    /// 1: we are called.
    Incoming,
}

/// Call state in `+CLCC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// 0.
    Active,
    /// 1.
    Held,
    /// 2.
    Dialing,
    /// 3.
    Alerting,
    /// 4.
    Incoming,
    /// 5.
    Waiting,
}

/// Call mode in `+CLCC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallMode {
    /// 0.
    Voice,
    /// 1.
    Data,
    /// 2.
    Fax,
    /// Other values.
    Other(u8),
}

/// One `+CLCC` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// Call index (used by AT+CHLD).
    pub id: u8,
    /// Direction.
    pub direction: CallDirection,
    /// State.
    pub state: CallState,
    /// Mode.
    pub mode: CallMode,
    /// Part of a multiparty call.
    pub multiparty: bool,
    /// Remote number, if known.
    pub number: Option<String>,
    /// Type of address (145 international, 129 other).
    pub number_type: Option<u8>,
}

/// `+CLIP` caller ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerId {
    /// The number; `None` when withheld or unavailable.
    pub number: Option<String>,
    /// Type of address.
    pub number_type: u8,
    /// CLI validity (0 valid, 1 withheld, 2 unavailable), when sent.
    pub validity: Option<u8>,
}

/// `+CMTI`: a new SMS was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsIndication {
    /// Storage (`"SM"`, `"ME"`).
    pub storage: String,
    /// Index to read with AT+CMGR.
    pub index: u16,
}

/// `+CMGR:` header line in PDU mode (the PDU follows on the next line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmgrHeader {
    /// 0 unread, 1 read, 2 unsent, 3 sent.
    pub stat: u8,
    /// Phone-book name, if any.
    pub alpha: Option<String>,
    /// TPDU length in octets.
    pub length: u16,
}

/// An unsolicited result code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Urc {
    /// `RING` or `+CRING: ..`.
    Ring,
    /// `+CLIP: ..`.
    CallerId(CallerId),
    /// `+CMTI: ..`.
    SmsReceived(SmsIndication),
    /// `+CREG: ..` (`eps` false) or `+CEREG: ..` (`eps` true).
    Registration {
        /// From `+CEREG`.
        eps: bool,
        /// The new state.
        registration: Registration,
    },
    /// `+CLCC: ..` reported unsolicited.
    CallStatus(CallInfo),
    /// `+CPIN: ..` reported unsolicited.
    SimState(SimState),
    /// `+QIND: ..` (Quectel), text after the colon.
    ModuleIndication(String),
    /// `NO CARRIER` outside call setup: the call ended.
    NoCarrier,
    /// `BUSY` outside call setup.
    Busy,
    /// `NO ANSWER` outside call setup.
    NoAnswer,
    /// `NO DIALTONE` outside call setup.
    NoDialtone,
    /// Any other line while no command is in flight (`RDY`, `+CFUN: 1`, ...).
    Other(String),
}

/// What a line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// Ends the command in flight.
    Final(FinalResult),
    /// Belongs to the command in flight.
    Info(String),
    /// Unsolicited.
    Urc(Urc),
    /// A URC we recognised but could not parse.
    Malformed(ParseError),
}

/// Classify `line`, given the command in flight.
pub fn classify(line: &str, in_flight: Option<CommandKind>) -> Classified {
    use CommandKind as K;
    let call_setup = in_flight.is_some_and(CommandKind::is_call_setup);
    let simple = match line {
        "OK" => Some(FinalResult::Ok),
        "ERROR" => Some(FinalResult::Error),
        "NO CARRIER" if call_setup => Some(FinalResult::NoCarrier),
        "BUSY" if call_setup => Some(FinalResult::Busy),
        "NO ANSWER" if call_setup => Some(FinalResult::NoAnswer),
        "NO DIALTONE" if call_setup => Some(FinalResult::NoDialtone),
        // Quectel answers `ATD..;` with OK at once; call progress then comes unsolicited.
        "NO CARRIER" => return Classified::Urc(Urc::NoCarrier),
        "BUSY" => return Classified::Urc(Urc::Busy),
        "NO ANSWER" => return Classified::Urc(Urc::NoAnswer),
        "NO DIALTONE" => return Classified::Urc(Urc::NoDialtone),
        "RING" => return Classified::Urc(Urc::Ring),
        // A module that restarts announces it whatever is in flight; swallowed as the
        // command's information, the reset would go unnoticed.
        "RDY" | "POWERED DOWN" | "NORMAL POWER DOWN" => {
            return Classified::Urc(Urc::Other(line.to_owned()))
        }
        _ => None,
    };
    if let Some(f) = simple {
        return Classified::Final(f);
    }
    if line == "CONNECT" || line.starts_with("CONNECT ") {
        let text = line["CONNECT".len()..].trim();
        return Classified::Final(FinalResult::Connect(
            (!text.is_empty()).then(|| text.to_owned()),
        ));
    }
    if let Some(rest) = line.strip_prefix("+CME ERROR:") {
        let rest = rest.trim();
        return Classified::Final(FinalResult::Cme(match rest.parse() {
            Ok(n) => CmeError::Code(n),
            Err(_) => CmeError::Text(rest.to_owned()),
        }));
    }
    if let Some(rest) = line.strip_prefix("+CMS ERROR:") {
        return match rest.trim().parse() {
            Ok(n) => Classified::Final(FinalResult::Cms(n)),
            // Verbose CMS errors have no fixed table; keep the text as a CME-like error.
            Err(_) => Classified::Final(FinalResult::Cme(CmeError::Text(rest.trim().to_owned()))),
        };
    }
    let urc = |r: Result<Urc, ParseError>| match r {
        Ok(u) => Classified::Urc(u),
        Err(e) => Classified::Malformed(e),
    };
    let prefix = line.split_once(':').map_or(line, |(p, _)| p);
    match (prefix, in_flight) {
        ("+CRING", _) => Classified::Urc(Urc::Ring),
        // Boot reports; we never query CFUN or QUSIM, so these are always unsolicited.
        ("+CFUN" | "+QUSIM", _) => Classified::Urc(Urc::Other(line.to_owned())),
        ("+CLIP", _) => urc(parse_caller_id(line).map(Urc::CallerId)),
        ("+CMTI", _) => urc(parse_sms_indication(line).map(Urc::SmsReceived)),
        ("+QIND", _) => Classified::Urc(Urc::ModuleIndication(after_colon(line).to_owned())),
        ("+CREG", Some(K::QueryRegistration)) | ("+CEREG", Some(K::QueryEpsRegistration)) => {
            Classified::Info(line.to_owned())
        }
        ("+CREG" | "+CEREG", _) => {
            urc(
                parse_registration_urc(line).map(|registration| Urc::Registration {
                    eps: prefix == "+CEREG",
                    registration,
                }),
            )
        }
        ("+CLCC", Some(K::ListCalls)) => Classified::Info(line.to_owned()),
        ("+CLCC", _) => urc(parse_call(line).map(Urc::CallStatus)),
        ("+CPIN", Some(K::QuerySimState)) => Classified::Info(line.to_owned()),
        ("+CPIN", _) => urc(parse_sim_state(line).map(Urc::SimState)),
        (_, Some(_)) => Classified::Info(line.to_owned()),
        (_, None) => Classified::Urc(Urc::Other(line.to_owned())),
    }
}

fn after_colon(line: &str) -> &str {
    line.split_once(':').map_or("", |(_, r)| r.trim())
}

/// Comma-separated fields after `prefix`; quotes removed; empty fields kept as "".
fn fields<'a>(line: &'a str, prefix: &str, what: &'static str) -> Result<Vec<&'a str>, ParseError> {
    let rest = line
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix(':'))
        .ok_or_else(|| err(what, line))?
        .trim();
    let mut out = Vec::new();
    let mut rest = rest;
    loop {
        rest = rest.trim_start();
        if let Some(q) = rest.strip_prefix('"') {
            let end = q.find('"').ok_or_else(|| err(what, line))?;
            out.push(&q[..end]);
            rest = q[end + 1..].trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            out.push(rest[..end].trim());
            rest = &rest[end..];
        }
        match rest.strip_prefix(',') {
            Some(r) => rest = r,
            None if rest.is_empty() => return Ok(out),
            None => return Err(err(what, line)),
        }
    }
}

fn num<T: std::str::FromStr>(
    f: Option<&&str>,
    what: &'static str,
    line: &str,
) -> Result<T, ParseError> {
    f.and_then(|s| s.parse().ok())
        .ok_or_else(|| err(what, line))
}

fn opt_num<T: std::str::FromStr>(f: Option<&&str>) -> Option<T> {
    f.and_then(|s| s.parse().ok())
}

fn opt_str(f: Option<&&str>) -> Option<String> {
    f.filter(|s| !s.is_empty()).map(|s| (*s).to_owned())
}

/// `+CPIN: <code>`.
pub fn parse_sim_state(line: &str) -> Result<SimState, ParseError> {
    let code = line
        .strip_prefix("+CPIN:")
        .ok_or_else(|| err("+CPIN", line))?
        .trim();
    Ok(match code {
        "READY" => SimState::Ready,
        "SIM PIN" => SimState::PinRequired,
        "SIM PUK" => SimState::PukRequired,
        "SIM PIN2" => SimState::Pin2Required,
        "SIM PUK2" => SimState::Puk2Required,
        "PH-SIM PIN" => SimState::PhoneSimPin,
        "NOT INSERTED" => SimState::NotInserted,
        "NOT READY" => SimState::NotReady,
        "" => return Err(err("+CPIN", line)),
        other => SimState::Other(other.to_owned()),
    })
}

/// `+QPINC: "SC",<pin_left>,<puk_left>`.
pub fn parse_pin_counters(line: &str) -> Result<PinCounters, ParseError> {
    const W: &str = "+QPINC";
    let f = fields(line, W, W)?;
    if f.first() != Some(&"SC") {
        return Err(err(W, line));
    }
    Ok(PinCounters {
        pin_left: num(f.get(1), W, line)?,
        puk_left: num(f.get(2), W, line)?,
    })
}

fn registration(f: &[&str], what: &'static str, line: &str) -> Result<Registration, ParseError> {
    Ok(Registration {
        status: RegStatus::from_code(num(f.first(), what, line)?),
        area: opt_str(f.get(1)),
        cell: opt_str(f.get(2)),
        act: opt_num(f.get(3)),
    })
}

fn reg_prefix(line: &str) -> &'static str {
    if line.starts_with("+CEREG") {
        "+CEREG"
    } else {
        "+CREG"
    }
}

/// Answer to `AT+CREG?` / `AT+CEREG?`: `<n>,<stat>[,<lac>,<ci>[,<act>]]`.
pub fn parse_registration_query(line: &str) -> Result<Registration, ParseError> {
    let p = reg_prefix(line);
    let f = fields(line, p, p)?;
    if f.len() < 2 {
        return Err(err(p, line));
    }
    registration(&f[1..], p, line)
}

/// Unsolicited `+CREG: <stat>[,<lac>,<ci>[,<act>]]` (likewise `+CEREG`).
pub fn parse_registration_urc(line: &str) -> Result<Registration, ParseError> {
    let p = reg_prefix(line);
    registration(&fields(line, p, p)?, p, line)
}

/// `+COPS: <mode>[,<format>,<oper>[,<act>]]`.
pub fn parse_operator(line: &str) -> Result<Operator, ParseError> {
    const W: &str = "+COPS";
    let f = fields(line, W, W)?;
    Ok(Operator {
        mode: num(f.first(), W, line)?,
        name: opt_str(f.get(2)),
        act: opt_num(f.get(3)),
    })
}

/// `+CSQ: <rssi>,<ber>`, rssi mapped to dBm per TS 27.007 §8.5 (TD-SCDMA 100..=191 per
/// Quectel: -116 dBm + (n-100)).
pub fn parse_signal(line: &str) -> Result<SignalQuality, ParseError> {
    const W: &str = "+CSQ";
    let f = fields(line, W, W)?;
    let rssi: i16 = num(f.first(), W, line)?;
    let ber: u8 = num(f.get(1), W, line)?;
    let rssi_dbm = match rssi {
        0..=31 => Some(-113 + 2 * rssi),
        99 | 199 => None,
        100..=191 => Some(-216 + rssi),
        _ => return Err(err(W, line)),
    };
    let ber = match ber {
        0..=7 => Some(ber),
        99 => None,
        _ => return Err(err(W, line)),
    };
    Ok(SignalQuality { rssi_dbm, ber })
}

/// `+CLCC: <id>,<dir>,<stat>,<mode>,<mpty>[,<number>,<type>[,..]]`.
pub fn parse_call(line: &str) -> Result<CallInfo, ParseError> {
    const W: &str = "+CLCC";
    let f = fields(line, W, W)?;
    let direction = match num::<u8>(f.get(1), W, line)? {
        0 => CallDirection::Outgoing,
        1 => CallDirection::Incoming,
        _ => return Err(err(W, line)),
    };
    let state = match num::<u8>(f.get(2), W, line)? {
        0 => CallState::Active,
        1 => CallState::Held,
        2 => CallState::Dialing,
        3 => CallState::Alerting,
        4 => CallState::Incoming,
        5 => CallState::Waiting,
        _ => return Err(err(W, line)),
    };
    let mode = match num::<u8>(f.get(3), W, line)? {
        0 => CallMode::Voice,
        1 => CallMode::Data,
        2 => CallMode::Fax,
        n => CallMode::Other(n),
    };
    Ok(CallInfo {
        id: num(f.first(), W, line)?,
        direction,
        state,
        mode,
        multiparty: num::<u8>(f.get(4), W, line)? == 1,
        number: opt_str(f.get(5)),
        number_type: opt_num(f.get(6)),
    })
}

/// `+CLIP: "<number>",<type>[,<subaddr>,<satype>,<alpha>,<CLI validity>]`.
pub fn parse_caller_id(line: &str) -> Result<CallerId, ParseError> {
    const W: &str = "+CLIP";
    let f = fields(line, W, W)?;
    Ok(CallerId {
        number: opt_str(f.first()),
        number_type: num(f.get(1), W, line)?,
        validity: opt_num(f.get(5)),
    })
}

/// `+CEER: <text>`: the text after the colon (quotes kept off if it is one quoted string).
pub fn parse_call_end_reason(line: &str) -> Result<String, ParseError> {
    let rest = line
        .strip_prefix("+CEER:")
        .ok_or_else(|| err("+CEER", line))?
        .trim();
    let unquoted = rest
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|r| !r.contains('"'));
    Ok(unquoted.unwrap_or(rest).to_owned())
}

/// `+CMGS: <mr>`: the message reference the network assigned.
pub fn parse_sms_sent(line: &str) -> Result<u8, ParseError> {
    const W: &str = "+CMGS";
    num(fields(line, W, W)?.first(), W, line)
}

/// `+CMGR: <stat>,[<alpha>],<length>`.
pub fn parse_cmgr_header(line: &str) -> Result<CmgrHeader, ParseError> {
    const W: &str = "+CMGR";
    let f = fields(line, W, W)?;
    if f.len() != 3 {
        return Err(err(W, line));
    }
    Ok(CmgrHeader {
        stat: num(f.first(), W, line)?,
        alpha: opt_str(f.get(1)),
        length: num(f.get(2), W, line)?,
    })
}

/// `+CMTI: "<mem>",<index>`.
pub fn parse_sms_indication(line: &str) -> Result<SmsIndication, ParseError> {
    const W: &str = "+CMTI";
    let f = fields(line, W, W)?;
    Ok(SmsIndication {
        storage: opt_str(f.first()).ok_or_else(|| err(W, line))?,
        index: num(f.get(1), W, line)?,
    })
}
