//! `pbxctl port set ...` and `pbxctl ports`: settings go to the store, where the running
//! pbxd picks them up within seconds; the live state comes from the `port_status` rows
//! pbxd writes when a port changes.

use std::io::Write;

use clap::{Args, ValueEnum};

use super::ports_config::{CidMode, PortProfile};
use super::Country;
use crate::store::{AuditCtx, PortSettings, PortStatusRow, Store, StoreError};

/// `pbxctl port set N ...`: only the options given change.
#[derive(Debug, Args)]
pub struct PortSetArgs {
    /// The port, 1-based.
    pub port: u32,
    /// Its extension number (`default`: pbxd's --port-extensions). Takes effect when
    /// pbxd restarts.
    #[arg(long)]
    pub number: Option<String>,
    /// Display name, sent as caller-ID name when the port calls (`none` to remove).
    #[arg(long)]
    pub name: Option<String>,
    /// Tones and ring cadence: DE, AT, CH, GB, FR, NL, US (`default`: DE).
    #[arg(long)]
    pub country: Option<String>,
    /// Caller ID: off, bell202, v23, dtmf (`default`: the country's: bell202 for US,
    /// v23 elsewhere).
    #[arg(long)]
    pub cid: Option<String>,
    /// Call waiting.
    #[arg(long, value_enum)]
    pub call_waiting: Option<Switch>,
}

/// `on` / `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// Why a port command failed.
#[derive(Debug, thiserror::Error)]
pub enum PortCliError {
    /// A value was refused (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Output could not be written.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

fn is_default(v: &str) -> bool {
    v.eq_ignore_ascii_case("default")
}

/// A refused port-setting value: which option (the API's field name) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PortValueError {
    /// `number`, `name`, `country` or `cid`.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

/// `s` with the options of `a` applied (only those given change): `pbxctl port set`'s
/// and the web page's one reading of the values. The store checks the rest (port range,
/// number and name syntax, number in use) when the result is saved.
pub fn apply_set(mut s: PortSettings, a: &PortSetArgs) -> Result<PortSettings, PortValueError> {
    s.port = a.port;
    if let Some(n) = &a.number {
        s.number = (!is_default(n)).then(|| n.clone());
    }
    if let Some(n) = &a.name {
        s.name = (n != "none").then(|| n.clone());
    }
    if let Some(c) = &a.country {
        s.country = if is_default(c) {
            None
        } else {
            Some(c.parse::<Country>().map_err(|e| PortValueError {
                field: "country",
                message: e.to_string(),
            })?)
        };
    }
    if let Some(c) = &a.cid {
        s.cid = if is_default(c) {
            None
        } else {
            Some(c.parse::<CidMode>().map_err(|e| PortValueError {
                field: "cid",
                message: e.to_string(),
            })?)
        };
    }
    if let Some(w) = a.call_waiting {
        s.call_waiting = w == Switch::On;
    }
    Ok(s)
}

/// `pbxctl port set`.
pub fn run_set(
    a: PortSetArgs,
    db: &mut Store,
    by: &AuditCtx<'_>,
    out: &mut impl Write,
) -> Result<(), PortCliError> {
    let s = apply_set(db.port_setting(a.port)?, &a).map_err(|e| PortCliError::Usage(e.message))?;
    db.set_port_settings(by, &s)?;
    writeln!(out, "port {} changed", s.port)?;
    Ok(())
}

/// The ports `pbxctl ports` and the web page list: those with settings or live state,
/// in order.
#[must_use]
pub fn listed_ports(settings: &[PortSettings], status: &[PortStatusRow]) -> Vec<u32> {
    let mut ports: Vec<u32> = settings
        .iter()
        .map(|s| s.port)
        .chain(status.iter().map(|s| s.port))
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// `pbxctl ports`: settings and live state, one line per port.
pub fn run_list(db: &Store, out: &mut impl Write) -> Result<(), PortCliError> {
    let settings = db.port_settings()?;
    let status = db.port_statuses()?;
    let ports = listed_ports(&settings, &status);
    if ports.is_empty() {
        writeln!(
            out,
            "no ports yet (pbxd not running with analog ports, nothing set)"
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "PORT NUMBER   NAME             COUNTRY CID     CW  HOOK LINEFEED   CALL"
    )?;
    for port in ports {
        let set = settings
            .iter()
            .find(|s| s.port == port)
            .cloned()
            .unwrap_or_else(|| PortSettings::new(port));
        let st = status.iter().find(|s| s.port == port);
        let profile = PortProfile::from_settings(Some(&set));
        let number = st
            .map(|s| s.number.clone())
            .or_else(|| set.number.clone())
            .unwrap_or_else(|| "-".into());
        let (hook, linefeed, call) = match st {
            None => ("-".into(), "-".into(), "(pbxd not running)".to_owned()),
            Some(s) => match &s.faulty {
                Some(why) => ("-".into(), "-".into(), format!("FAULTY: {why}")),
                None => (s.hook.clone(), s.linefeed.clone(), s.call.clone()),
            },
        };
        writeln!(
            out,
            "{:<4} {:<8} {:<16} {:<7} {:<7} {:<3} {:<4} {:<10} {}",
            port,
            number,
            set.name.as_deref().unwrap_or("-"),
            profile.country,
            profile.cid,
            if profile.call_waiting { "on" } else { "off" },
            hook,
            linefeed,
            call
        )?;
    }
    Ok(())
}
