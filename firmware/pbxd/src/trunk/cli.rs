//! `pbxctl trunk ...`: add, change, remove and show provider accounts, and show their
//! registration status. The password comes from stdin (`--password-stdin`), never argv,
//! and is sealed with the device key before it reaches the store.

use std::io::{BufRead, Write};
use std::path::Path;

use crate::secret::DeviceKey;
use crate::store::{
    AuditCtx, SrtpMode, Store, StoreError, StoredTrunk, TrunkAccount, TrunkTransport,
    DEFAULT_MAX_CALLS, DEFAULT_REGISTER_SECS,
};

/// The `trunk` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TrunkCmd {
    /// Add a provider account. The password is read from stdin (one line).
    Add {
        /// Short name (a-z, 0-9, _ and -), e.g. `main`.
        name: String,
        #[command(flatten)]
        opts: TrunkOpts,
    },
    /// Change an account: only the options given change.
    Set {
        /// The trunk's name.
        name: String,
        #[command(flatten)]
        opts: TrunkOpts,
        /// Register and route over it (`on`) or not (`off`).
        #[arg(long, value_name = "on|off")]
        enabled: Option<String>,
    },
    /// Remove an account.
    Remove {
        /// The trunk's name.
        name: String,
    },
    /// List the accounts (never their passwords).
    List,
    /// Show one account's settings (never its password).
    Show {
        /// The trunk's name.
        name: String,
    },
    /// Registration status as pbxd last wrote it: registered (until when), auth failed,
    /// forbidden, unreachable (why).
    Status {
        /// Only this trunk.
        name: Option<String>,
    },
    /// Show, or set, how long any trunk may stay unregistered before the "trunk down"
    /// alert is raised (seconds, 30 to 3600; default 120). pbxd applies it within seconds.
    DownAlert {
        /// The new threshold in seconds; without it, the current one is shown.
        #[arg(value_name = "SECS")]
        secs: Option<u32>,
    },
}

/// Account options shared by `add` and `set`.
#[derive(Debug, clap::Args)]
pub struct TrunkOpts {
    /// Registrar: DNS name (NAPTR/SRV/A lookups), IP address, or either with `:port`.
    #[arg(long, value_name = "HOST[:PORT]")]
    registrar: Option<String>,
    /// SIP domain for the address of record (default: the registrar's host).
    #[arg(long, value_name = "DOMAIN")]
    domain: Option<String>,
    /// Outbound proxy (`none` to remove).
    #[arg(long, value_name = "HOST[:PORT]")]
    proxy: Option<String>,
    /// SIP-ID (user part of the address of record).
    #[arg(long, value_name = "SIPID")]
    user: Option<String>,
    /// Authentication user (default: the SIP-ID).
    #[arg(long, value_name = "USER")]
    auth_user: Option<String>,
    /// udp, tcp or tls (default udp).
    #[arg(long, value_name = "udp|tcp|tls")]
    transport: Option<String>,
    /// SRTP: off, optional or mandatory (default off).
    #[arg(long, value_name = "MODE")]
    srtp: Option<String>,
    /// Registration interval asked for, seconds (60 to 86400, default 600).
    #[arg(long, value_name = "SECS")]
    interval: Option<u32>,
    /// Most simultaneous calls over this trunk (default 2).
    #[arg(long, value_name = "N")]
    max_calls: Option<u32>,
    /// Read the password from standard input (one line).
    #[arg(long)]
    password_stdin: bool,
}

/// A failed command: exit status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkCliError {
    /// Exit status (pbxctl's table: 2 usage, 3 not found, 4 exists, 5 data).
    pub code: u8,
    /// What went wrong.
    pub message: String,
}

impl TrunkCliError {
    fn usage(message: impl Into<String>) -> Self {
        TrunkCliError {
            code: 2,
            message: message.into(),
        }
    }

    fn other(message: impl Into<String>) -> Self {
        TrunkCliError {
            code: 1,
            message: message.into(),
        }
    }
}

impl From<StoreError> for TrunkCliError {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::InvalidValue { .. } => 2,
            StoreError::UnknownTrunk(_) => 3,
            StoreError::DuplicateTrunk(_) => 4,
            StoreError::DataDir { .. }
            | StoreError::Corrupt { .. }
            | StoreError::SchemaTooNew { .. } => 5,
            _ => 1,
        };
        TrunkCliError {
            code,
            message: e.to_string(),
        }
    }
}

/// The purpose a trunk's password is sealed for.
pub fn password_purpose(name: &str) -> String {
    format!("trunk:{name}")
}

/// Runs one `trunk` command against `store` (the device key lives in `data_dir`).
/// `password` supplies the stdin line when `--password-stdin` is given.
pub fn run(
    cmd: TrunkCmd,
    data_dir: &Path,
    store: &mut Store,
    by: &AuditCtx<'_>,
    password: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), TrunkCliError> {
    let text = match cmd {
        TrunkCmd::Add { name, opts } => {
            let Some(registrar) = opts.registrar.clone() else {
                return Err(TrunkCliError::usage("--registrar is required"));
            };
            let Some(user) = opts.user.clone() else {
                return Err(TrunkCliError::usage("--user (the SIP-ID) is required"));
            };
            if !opts.password_stdin {
                return Err(TrunkCliError::usage(
                    "give the password on stdin with --password-stdin",
                ));
            }
            let mut t = TrunkAccount {
                name: name.clone(),
                enabled: true,
                domain: default_domain(&registrar)?,
                registrar,
                proxy: None,
                auth_user: user.clone(),
                user,
                transport: TrunkTransport::Udp,
                srtp: SrtpMode::Off,
                register_secs: DEFAULT_REGISTER_SECS,
                max_calls: DEFAULT_MAX_CALLS,
            };
            apply(&mut t, &opts)?;
            crate::store::validate_trunk(&t)?;
            let sealed = seal(data_dir, &name, password)?;
            store.add_trunk(by, &t, &sealed)?;
            format!("trunk {name} added\n")
        }
        TrunkCmd::Set {
            name,
            opts,
            enabled,
        } => {
            let mut t = store
                .get_trunk(&name)?
                .ok_or_else(|| StoreError::UnknownTrunk(name.clone()))?
                .account;
            apply(&mut t, &opts)?;
            if let Some(e) = enabled {
                t.enabled = match e.as_str() {
                    "on" => true,
                    "off" => false,
                    other => {
                        return Err(TrunkCliError::usage(format!(
                            "--enabled {other:?}: give on or off"
                        )))
                    }
                };
            }
            crate::store::validate_trunk(&t)?;
            let sealed = if opts.password_stdin {
                Some(seal(data_dir, &name, password)?)
            } else {
                None
            };
            store.update_trunk(by, &t, sealed.as_deref())?;
            format!("trunk {name} changed\n")
        }
        TrunkCmd::DownAlert { secs: Some(secs) } => {
            store.set_trunk_down_alert_after(by, secs)?;
            format!("trunk down alert after {secs} s unregistered\n")
        }
        TrunkCmd::DownAlert { secs: None } => format!(
            "trunk down alert after {} s unregistered\n",
            store.trunk_down_alert_after()?.as_secs()
        ),
        TrunkCmd::Remove { name } => {
            store.remove_trunk(by, &name)?;
            format!("trunk {name} removed\n")
        }
        TrunkCmd::List => {
            let statuses = store.trunk_statuses()?;
            let mut rows = vec![[
                "NAME".to_owned(),
                "ENABLED".to_owned(),
                "REGISTRAR".to_owned(),
                "USER".to_owned(),
                "TRANSPORT".to_owned(),
                "STATE".to_owned(),
            ]];
            for s in store.list_trunks()? {
                let t = s.account;
                let state = statuses
                    .iter()
                    .find(|r| r.name == t.name)
                    .map_or("-".to_owned(), |r| r.state.clone());
                rows.push([
                    t.name,
                    if t.enabled { "yes" } else { "no" }.to_owned(),
                    t.registrar,
                    t.user,
                    t.transport.as_str().to_owned(),
                    state,
                ]);
            }
            table(&rows)
        }
        TrunkCmd::Show { name } => {
            let s = store
                .get_trunk(&name)?
                .ok_or_else(|| StoreError::UnknownTrunk(name.clone()))?;
            show(&s)
        }
        TrunkCmd::Status { name } => {
            let trunks = store.list_trunks()?;
            if let Some(n) = &name {
                if !trunks.iter().any(|t| &t.account.name == n) {
                    return Err(StoreError::UnknownTrunk(n.clone()).into());
                }
            }
            let statuses = store.trunk_statuses()?;
            let mut text = String::new();
            for t in trunks
                .iter()
                .filter(|t| name.as_ref().is_none_or(|n| &t.account.name == n))
            {
                let n = &t.account.name;
                let line = match statuses.iter().find(|r| &r.name == n) {
                    _ if !t.account.enabled => "disabled".to_owned(),
                    None => "unknown (pbxd has not reported; is it running?)".to_owned(),
                    Some(r) => {
                        let mut l = r.state.clone();
                        if let Some(until) = r.registered_until {
                            l.push_str(&format!(
                                " until {} (in {} s)",
                                crate::store::format_utc_ms(until.saturating_mul(1000)),
                                until.saturating_sub(by.now_unix).max(0)
                            ));
                        }
                        if !r.reason.is_empty() {
                            l.push_str(&format!(": {}", r.reason));
                        }
                        if let Some(p) = &r.public_addr {
                            l.push_str(&format!("; public address {p}"));
                        }
                        l.push_str(&format!(
                            "; since {}",
                            crate::store::format_utc_ms(r.since.saturating_mul(1000))
                        ));
                        l
                    }
                };
                text.push_str(&format!("{n}: {line}\n"));
            }
            if trunks.is_empty() {
                text.push_str("no trunks configured (pbxctl trunk add)\n");
            }
            text
        }
    };
    out.write_all(text.as_bytes())
        .map_err(|e| TrunkCliError::other(format!("cannot write output: {e}")))
}

fn apply(t: &mut TrunkAccount, o: &TrunkOpts) -> Result<(), TrunkCliError> {
    if let Some(r) = &o.registrar {
        t.registrar = r.clone();
    }
    if let Some(d) = &o.domain {
        t.domain = d.clone();
    }
    if let Some(p) = &o.proxy {
        t.proxy = (p != "none").then(|| p.clone());
    }
    if let Some(u) = &o.user {
        if t.auth_user == t.user && o.auth_user.is_none() {
            t.auth_user = u.clone();
        }
        t.user = u.clone();
    }
    if let Some(a) = &o.auth_user {
        t.auth_user = a.clone();
    }
    if let Some(tr) = &o.transport {
        t.transport = TrunkTransport::parse(tr)?;
    }
    if let Some(s) = &o.srtp {
        t.srtp = crate::store::parse_srtp_mode(s)?;
    }
    if let Some(i) = o.interval {
        t.register_secs = i;
    }
    if let Some(m) = o.max_calls {
        t.max_calls = m;
    }
    Ok(())
}

fn seal(data_dir: &Path, name: &str, input: &mut dyn BufRead) -> Result<String, TrunkCliError> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(|e| TrunkCliError::usage(format!("cannot read the password from stdin: {e}")))?;
    let pw = line.trim_end_matches(['\n', '\r']);
    if pw.is_empty() {
        return Err(TrunkCliError::usage("no password on stdin"));
    }
    let key = DeviceKey::load_or_create(data_dir)
        .map_err(|e| TrunkCliError::other(format!("device key: {e}")))?;
    seal_password(&key, name, pw)
}

/// Checks a trunk password (1 to 256 characters, no line breaks) and seals it for trunk
/// `name`: the one path by which pbxctl and the web API store it.
pub fn seal_password(key: &DeviceKey, name: &str, pw: &str) -> Result<String, TrunkCliError> {
    if pw.is_empty() {
        return Err(TrunkCliError::usage("the password is empty"));
    }
    if pw.chars().count() > 256 {
        return Err(TrunkCliError::usage("password longer than 256 characters"));
    }
    if pw.contains(['\n', '\r']) {
        return Err(TrunkCliError::usage("the password contains a line break"));
    }
    key.seal(&password_purpose(name), pw)
        .map_err(|e| TrunkCliError::other(format!("cannot seal the password: {e}")))
}

/// The SIP domain a new trunk gets when none is given: the registrar's host.
pub fn default_domain(registrar: &str) -> Result<String, StoreError> {
    let (host, _) = crate::store::validate_host("registrar", registrar)?;
    Ok(host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned())
}

fn show(s: &StoredTrunk) -> String {
    let t = &s.account;
    let fields = [
        ("name", t.name.clone()),
        ("enabled", if t.enabled { "yes" } else { "no" }.to_owned()),
        ("registrar", t.registrar.clone()),
        ("domain", t.domain.clone()),
        (
            "outbound proxy",
            t.proxy.clone().unwrap_or_else(|| "-".into()),
        ),
        ("SIP-ID", t.user.clone()),
        ("auth user", t.auth_user.clone()),
        ("password", "set (stored encrypted)".to_owned()),
        ("transport", t.transport.as_str().to_owned()),
        ("srtp", t.srtp.as_str().to_owned()),
        ("interval", format!("{}s", t.register_secs)),
        ("max calls", t.max_calls.to_string()),
    ];
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    fields
        .iter()
        .map(|(k, v)| format!("{:<width$} {v}\n", format!("{k}:")))
        .collect()
}

fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}
