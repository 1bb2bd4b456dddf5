//! `pbxctl gsm ...` and `pbxctl sms ...`: they edit the store; the running pbxd's modem
//! task picks changes up within a second (a new PIN, a queued SMS).

use std::io::{BufRead, Write};
use std::path::Path;

use clap::{Subcommand, ValueEnum};
use pbx_hal::modem::command::{Pin, Puk};

use super::mobile::mobile_ranges;
use super::task::{PIN_PURPOSE, PUK_PURPOSE};
use crate::secret::DeviceKey;
use crate::store::{OutboundPolicy, SmsDirection, Store, StoreError};

/// The notice shown when the module is used as a gateway.
pub const GATEWAY_NOTICE: &str = "\
NOTICE: using a SIM in a GSM gateway that connects a business phone system to the mobile
network is forbidden by some providers' SIM terms (the model provider's own SIM terms
forbid it). Confirm only if this SIM's terms allow gateway use. Until confirmed, ordinary
calls are not sent over GSM; emergency calls (110/112) always are.";

/// `pbxctl gsm ...`.
#[derive(Debug, Subcommand)]
pub enum GsmCmd {
    /// The module's status: SIM, registration, operator, signal, last error, settings.
    Status,
    /// Store the SIM PIN (sealed); it is used once when the SIM asks for it. A PIN the
    /// SIM rejected is never sent again.
    Pin {
        /// 4 to 8 digits, or `-` to read it from stdin.
        #[arg(allow_hyphen_values = true)]
        pin: String,
        /// Allow it to use the SIM's last PIN attempt (a wrong one then needs the PUK).
        #[arg(long)]
        last_attempt: bool,
    },
    /// Store the PUK and the new PIN to set with it (for a SIM blocked by wrong PINs).
    Puk {
        /// 8 digits, or `-` to read PUK and new PIN from stdin (two lines).
        #[arg(allow_hyphen_values = true)]
        puk: String,
        /// The new PIN, 4 to 8 digits (omit with `-`).
        new_pin: Option<String>,
    },
    /// Confirm that this SIM's terms allow use in a gateway (shows the notice).
    ConfirmGatewayUse,
    /// Call routing over the module.
    Route {
        /// Internal number inbound GSM calls ring (extension, ring group, analog port),
        /// or `none`.
        #[arg(long)]
        inbound: Option<String>,
        /// Outside-line prefix that sends a call over GSM (e.g. 88), or `none`.
        #[arg(long)]
        prefix: Option<String>,
        /// When calls go out over GSM.
        #[arg(long, value_enum)]
        policy: Option<PolicyArg>,
        /// Mobile numbers of the site's country go out over GSM while the module can call
        /// (ranges known for DE, AT, CH, GB, FR, NL; refused where unknown or, as in the
        /// US, not distinguishable).
        #[arg(long, value_enum)]
        mobile: Option<OnOff>,
    },
}

/// `--mobile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// On.
    On,
    /// Off.
    Off,
}

/// `--policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// Never (emergency calls still may).
    Off,
    /// Numbers dialled with the GSM prefix.
    Prefix,
    /// Prefix, and every external call while the cloud trunk is down.
    Fallback,
    /// Every external call.
    All,
}

/// `pbxctl sms ...`.
#[derive(Debug, Subcommand)]
pub enum SmsCmd {
    /// Queue an SMS (at most 255 parts; rate-limited, no bulk sending).
    Send {
        /// `+` and digits, or national digits.
        number: String,
        /// The text (GSM-7 or, with other characters, UCS-2).
        text: String,
    },
    /// In- and outbox, newest first.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one SMS in full and mark it read.
    Read {
        /// Its id from `sms list`.
        id: i64,
    },
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A value was refused (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Not found (exit 3).
    #[error("{0}")]
    NotFound(String),
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else (exit 1).
    #[error("{0}")]
    Other(String),
}

fn out_err(e: std::io::Error) -> CliError {
    CliError::Other(format!("cannot write output: {e}"))
}

fn read_line(what: &str) -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Other(format!("cannot read {what} from stdin: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

/// Checks a SIM PIN and stores it sealed (pbxctl and the web API): a PIN the SIM
/// rejected before is refused, never sent again.
pub fn store_pin(
    db: &mut Store,
    key: &DeviceKey,
    pin: &str,
    last_attempt: bool,
    now_unix: i64,
) -> Result<(), CliError> {
    // The form is checked before anything is stored or reaches the SIM.
    Pin::new(pin).map_err(usage)?;
    let s = db.gsm_settings()?;
    if s.pin_rejected {
        let old = s
            .pin_sealed
            .as_ref()
            .and_then(|x| key.open(PIN_PURPOSE, x).ok());
        if old.as_deref() == Some(pin) {
            return Err(CliError::Usage(
                "the SIM rejected this PIN before; it is not sent again. Enter the right PIN"
                    .into(),
            ));
        }
    }
    let sealed = key
        .seal(PIN_PURPOSE, pin)
        .map_err(|e| CliError::Other(e.to_string()))?;
    db.set_gsm_pin(&sealed, last_attempt, now_unix)?;
    Ok(())
}

/// Checks a PUK and the new PIN and stores both sealed (pbxctl and the web API): a PUK
/// the SIM rejected before is refused.
pub fn store_puk(
    db: &mut Store,
    key: &DeviceKey,
    puk: &str,
    new_pin: &str,
    now_unix: i64,
) -> Result<(), CliError> {
    Puk::new(puk).map_err(usage)?;
    Pin::new(new_pin).map_err(usage)?;
    let s = db.gsm_settings()?;
    if s.puk_rejected {
        let old = s
            .puk_sealed
            .as_ref()
            .and_then(|x| key.open(PUK_PURPOSE, x).ok());
        if old.as_deref() == Some(puk) {
            return Err(CliError::Usage(
                "the SIM rejected this PUK before; it is not sent again".into(),
            ));
        }
    }
    let seal = |p: &str, v: &str| key.seal(p, v).map_err(|e| CliError::Other(e.to_string()));
    db.set_gsm_puk(
        &seal(PUK_PURPOSE, puk)?,
        &seal(PIN_PURPOSE, new_pin)?,
        now_unix,
    )?;
    Ok(())
}

/// Checks and queues an SMS under the store's rate limits (pbxctl and the web API);
/// returns its id and parts.
pub fn send_sms(
    db: &mut Store,
    number: &str,
    text: &str,
    actor: &str,
    now_unix: i64,
) -> Result<(i64, u32), CliError> {
    let parts = super::sms::check(number, text).map_err(usage)?;
    let parts = u32::try_from(parts).unwrap_or(u32::MAX);
    let id = db.queue_sms(number, text, parts, actor, now_unix)?;
    Ok((id, parts))
}

/// Run a `gsm` command on the store in `data_dir`.
pub fn run_gsm(
    cmd: GsmCmd,
    db: &mut Store,
    data_dir: &Path,
    out: &mut impl Write,
    now_unix: i64,
) -> Result<(), CliError> {
    match cmd {
        GsmCmd::Status => {
            let s = db.gsm_settings()?;
            let st = db.gsm_status()?;
            let mut rows: Vec<(&str, String)> = Vec::new();
            match &st {
                None => rows.push((
                    "module",
                    "no status yet (pbxd not running, or no module)".into(),
                )),
                Some(st) => {
                    rows.push(("sim", st.sim.clone()));
                    rows.push(("registration", st.registration.clone()));
                    rows.push((
                        "operator",
                        st.operator.clone().unwrap_or_else(|| "-".into()),
                    ));
                    rows.push((
                        "signal",
                        st.signal_dbm
                            .map_or_else(|| "unknown".into(), |d| format!("{d} dBm")),
                    ));
                    let n = |v: Option<u8>| v.map_or_else(|| "unknown".into(), |v| v.to_string());
                    rows.push(("pin attempts left", n(st.pin_left)));
                    rows.push(("puk attempts left", n(st.puk_left)));
                    rows.push((
                        "last error",
                        st.last_error.clone().unwrap_or_else(|| "-".into()),
                    ));
                }
            }
            rows.push((
                "pin stored",
                match (&s.pin_sealed, s.pin_rejected) {
                    (None, _) => "no".into(),
                    (Some(_), true) => "yes, REJECTED by the SIM (enter the right PIN)".into(),
                    (Some(_), false) => "yes".into(),
                },
            ));
            rows.push((
                "gateway use",
                if s.gateway_confirmed_at.is_some() {
                    "confirmed by the installer".into()
                } else {
                    "NOT confirmed (pbxctl gsm confirm-gateway-use); ordinary calls stay off GSM"
                        .into()
                },
            ));
            rows.push((
                "inbound calls ring",
                s.inbound_destination.unwrap_or_else(|| "-".into()),
            ));
            rows.push(("outbound policy", s.outbound_policy.as_str().into()));
            rows.push((
                "mobile numbers",
                if s.outbound_mobile {
                    "over GSM".into()
                } else {
                    "by the policy".into()
                },
            ));
            rows.push((
                "outbound prefix",
                s.outbound_prefix.unwrap_or_else(|| "-".into()),
            ));
            rows.push((
                "sms",
                format!(
                    "kept {} days; at most {}/minute, {}/day",
                    s.sms_retention_days, s.sms_limits.per_minute, s.sms_limits.per_day
                ),
            ));
            for (k, v) in rows {
                writeln!(out, "{k:<20} {v}").map_err(out_err)?;
            }
            Ok(())
        }
        GsmCmd::Pin { pin, last_attempt } => {
            let pin = if pin == "-" {
                read_line("the PIN")?
            } else {
                pin
            };
            let key =
                DeviceKey::load_or_create(data_dir).map_err(|e| CliError::Other(e.to_string()))?;
            store_pin(db, &key, &pin, last_attempt, now_unix)?;
            writeln!(
                out,
                "PIN stored; pbxd uses it once when the SIM asks for it"
            )
            .map_err(out_err)
        }
        GsmCmd::Puk { puk, new_pin } => {
            let (puk, new_pin) = if puk == "-" {
                (read_line("the PUK")?, read_line("the new PIN")?)
            } else {
                let new_pin = new_pin
                    .ok_or_else(|| CliError::Usage("give the new PIN after the PUK".into()))?;
                (puk, new_pin)
            };
            let key =
                DeviceKey::load_or_create(data_dir).map_err(|e| CliError::Other(e.to_string()))?;
            store_puk(db, &key, &puk, &new_pin, now_unix)?;
            writeln!(
                out,
                "PUK stored; pbxd uses it once when the SIM asks for it"
            )
            .map_err(out_err)
        }
        GsmCmd::ConfirmGatewayUse => {
            writeln!(out, "{GATEWAY_NOTICE}").map_err(out_err)?;
            db.confirm_gsm_gateway_use(now_unix)?;
            writeln!(out, "gateway use confirmed").map_err(out_err)
        }
        GsmCmd::Route {
            inbound,
            prefix,
            policy,
            mobile,
        } => {
            if inbound.is_none() && prefix.is_none() && policy.is_none() && mobile.is_none() {
                return Err(CliError::Usage(
                    "nothing to change: give --inbound, --prefix, --policy or --mobile".into(),
                ));
            }
            if let Some(m) = mobile {
                if m == OnOff::On {
                    let cc = db.site_settings()?.country_code;
                    mobile_ranges(&cc).map_err(|e| CliError::Usage(e.to_string()))?;
                }
                db.set_gsm_mobile_route(m == OnOff::On, now_unix)?;
                if inbound.is_none() && prefix.is_none() && policy.is_none() {
                    return writeln!(out, "GSM routing changed").map_err(out_err);
                }
            }
            if prefix.is_none() && policy.is_none() {
                let inbound = inbound.filter(|i| i != "none");
                db.set_gsm_inbound(inbound.as_deref(), now_unix)?;
                return writeln!(out, "GSM routing changed").map_err(out_err);
            }
            let s = db.gsm_settings()?;
            let pick = |arg: Option<String>, old: Option<String>| match arg {
                Some(a) if a == "none" => None,
                Some(a) => Some(a),
                None => old,
            };
            let inbound = pick(inbound, s.inbound_destination);
            let prefix = pick(prefix, s.outbound_prefix);
            let policy = match policy {
                None => s.outbound_policy,
                Some(PolicyArg::Off) => OutboundPolicy::Off,
                Some(PolicyArg::Prefix) => OutboundPolicy::Prefix,
                Some(PolicyArg::Fallback) => OutboundPolicy::Fallback,
                Some(PolicyArg::All) => OutboundPolicy::All,
            };
            db.set_gsm_routing(inbound.as_deref(), prefix.as_deref(), policy, now_unix)?;
            writeln!(out, "GSM routing changed").map_err(out_err)
        }
    }
}

/// Run an `sms` command.
pub fn run_sms(
    cmd: SmsCmd,
    db: &mut Store,
    actor: &str,
    out: &mut impl Write,
    now_unix: i64,
) -> Result<(), CliError> {
    match cmd {
        SmsCmd::Send { number, text } => {
            let (id, parts) = send_sms(db, &number, &text, actor, now_unix)?;
            writeln!(
                out,
                "SMS {id} queued ({parts} part{}); `pbxctl sms list` shows when it is sent",
                if parts == 1 { "" } else { "s" }
            )
            .map_err(out_err)
        }
        SmsCmd::List { limit } => {
            writeln!(
                out,
                "{:<6} {:<4} {:<16} {:<12} {:<8} TEXT",
                "ID", "DIR", "PEER", "UNIX TIME", "STATUS"
            )
            .map_err(out_err)?;
            for s in db.list_sms(limit)? {
                let dir = match s.direction {
                    SmsDirection::In if !s.read => "in*",
                    SmsDirection::In => "in",
                    SmsDirection::Out => "out",
                };
                let mut text: String = s
                    .text
                    .chars()
                    .take(40)
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                if s.text.chars().count() > 40 {
                    text.push('…');
                }
                if let Some(e) = &s.error {
                    text = format!("{text} [{e}]");
                }
                writeln!(
                    out,
                    "{:<6} {:<4} {:<16} {:<12} {:<8} {text}",
                    s.id,
                    dir,
                    s.peer,
                    s.at,
                    s.status.as_str()
                )
                .map_err(out_err)?;
            }
            Ok(())
        }
        SmsCmd::Read { id } => {
            let s = db
                .get_sms(id)?
                .ok_or_else(|| CliError::NotFound(format!("no SMS {id}")))?;
            db.mark_sms_read(id)?;
            writeln!(
                out,
                "from/to: {}\ntime:    {}\nstatus:  {}{}\nparts:   {}\n\n{}",
                s.peer,
                s.at,
                s.status.as_str(),
                s.error.map(|e| format!(" ({e})")).unwrap_or_default(),
                s.parts,
                s.text
            )
            .map_err(out_err)
        }
    }
}
