//! `pbxctl`: the installer's command-line tool. It edits the same SQLite file as a running
//! `pbxd` (WAL mode): the daemon reads extensions per request, so changes apply at once.

use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use pbxd::store::{
    self, AuditCtx, CallSettings, CdrQuery, ForwardTarget, OutboundClass, RingGroup, RingStrategy,
    SiteSettings, Store, StoreError,
};

const AFTER_HELP: &str = "\
Passwords: give `-` instead of a password to read it from standard input (one line),
which keeps it out of the shell history and the process list, e.g.
    read -rs PW; printf '%s\\n' \"$PW\" | pbxctl extension add 101 --password -

Extension numbers: 2 to 6 digits, not starting with 0, and not overlapping an emergency
number (110, 112, 124124) in either direction (so not 11, 12, 124, 1100, ...).
SIP passwords: at least 8 characters, not equal to the number. Only digest hashes (HA1)
are stored, never the password.

Forward and no-answer targets: an internal number (2 to 6 digits, an extension or ring
group) or an external number: `+` and 3 to 20 digits, or digits starting with 0, or more
than 6 digits (written without the outside-line prefix). External targets cost money and
are refused unless `pbxctl site set --allow-external-forwarding on`.

Times (cdr list --since/--until): RFC 3339 (2026-11-21T09:00:00+01:00), a date
(2026-11-21, local midnight) or Unix seconds. Tables show local time (TZ), CSV shows UTC.

Exit status: 0 ok, 1 other error, 2 bad arguments or values, 3 no such extension, ring
group or block, 4 extension or ring group already exists (or the number is taken by the
other kind), 5 data directory or database unusable (missing, unreadable, corrupt, or from
a newer firmware), 6 update refused (calls up, outside the maintenance window, emergency
call).";

#[derive(Debug, Parser)]
#[command(
    name = "pbxctl",
    version,
    about = "Manage the PBX's extensions, ring groups, site settings, registrations, blocks \
             and call records (works while pbxd runs)",
    after_help = AFTER_HELP
)]
struct Cli {
    /// Data directory holding pbx.db (the same as pbxd's).
    #[arg(long, global = true, value_name = "DIR", default_value = "./data")]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add, list, show, remove extensions; set their passwords and call settings.
    #[command(subcommand)]
    Extension(ExtensionCmd),
    /// Show the current registrations: AOR, contact, source, seconds until expiry.
    Registrations,
    /// List or lift authentication blocks (addresses locked out after failed logins).
    #[command(subcommand)]
    Blocks(BlocksCmd),
    /// Call detail records.
    #[command(subcommand)]
    Cdr(CdrCmd),
    /// Ring groups: one number ringing several extensions.
    #[command(subcommand, name = "ringgroup")]
    RingGroup(RingGroupCmd),
    /// Site-wide call settings: numbering plan, billing tick, external forwarding.
    #[command(subcommand)]
    Site(SiteCmd),
    /// Web UI accounts: list them, reset a forgotten password, re-enable an account.
    #[command(subcommand, name = "web-user")]
    WebUser(WebUserCmd),
    /// Firmware updates: install a signed bundle, show the slots.
    #[command(subcommand)]
    Update(pbxd::update::cli::UpdateCmd),
    /// Show open alerts (most severe first); --all adds the recent history.
    Alerts {
        /// Also cleared alerts (the latest 200).
        #[arg(long)]
        all: bool,
    },
    /// Configuration backup: create an archive, restore one.
    #[command(subcommand)]
    Backup(pbxd::cli_admin::BackupCmd),
    /// The GSM/LTE module: status, SIM PIN/PUK, gateway-use confirmation, call routing.
    #[command(subcommand)]
    Gsm(pbxd::gsm::cli::GsmCmd),
    /// SMS over the GSM module: send (rate-limited), list, read.
    #[command(subcommand)]
    Sms(pbxd::gsm::cli::SmsCmd),
    /// The trunk account's numbers (DIDs), call limits and toll-fraud protection.
    #[command(subcommand)]
    Numbers(NumbersCmd),
    /// Cloud trunks: provider accounts (add, set, remove, list, show) and their
    /// registration status.
    #[command(subcommand)]
    Trunk(pbxd::trunk::cli::TrunkCmd),
    /// Analog port settings: number, name, country, caller-ID mode, call waiting.
    #[command(subcommand)]
    Port(PortCmd),
    /// Analog ports: settings and live state (hook, linefeed, call; faulty ports).
    Ports,
}

/// `pbxctl port ...`.
#[derive(Debug, Subcommand)]
enum PortCmd {
    /// Change a port's settings (only the options given).
    Set(pbxd::line::cli::PortSetArgs),
}

#[derive(Debug, Subcommand)]
enum WebUserCmd {
    /// List the accounts (never their password hashes).
    List,
    /// Set an account's password (e.g. an administrator who forgot theirs). Sessions
    /// already open in a running pbxd stay until they expire or pbxd restarts.
    SetPassword {
        /// The account's user name.
        username: String,
        /// The new password (10 to 128 characters), or `-` to read it from stdin.
        #[arg(value_name = "PW", allow_hyphen_values = true)]
        password: String,
    },
    /// Re-enable a disabled account.
    Enable {
        /// The account's user name.
        username: String,
    },
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

impl OnOff {
    fn is_on(self) -> bool {
        self == OnOff::On
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ClassArg {
    Internal,
    Local,
    National,
    International,
}

impl From<ClassArg> for OutboundClass {
    fn from(c: ClassArg) -> Self {
        match c {
            ClassArg::Internal => OutboundClass::InternalOnly,
            ClassArg::Local => OutboundClass::Local,
            ClassArg::National => OutboundClass::National,
            ClassArg::International => OutboundClass::International,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StrategyArg {
    Simultaneous,
    Ordered,
}

impl From<StrategyArg> for RingStrategy {
    fn from(s: StrategyArg) -> Self {
        match s {
            StrategyArg::Simultaneous => RingStrategy::Simultaneous,
            StrategyArg::Ordered => RingStrategy::Ordered,
        }
    }
}

#[derive(Debug, Subcommand)]
enum CdrCmd {
    /// List call records, newest first: a table, or CSV with every column.
    List {
        /// Only calls that started at or after this time.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only calls that started before this time.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Only calls from or to this extension (or ring group).
        #[arg(long, value_name = "N")]
        extension: Option<String>,
        /// At most this many records.
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: u32,
        /// Skip this many records first (paging).
        #[arg(long, value_name = "N", default_value_t = 0)]
        offset: u32,
        /// CSV (RFC 4180, UTC times, formula-guarded) instead of a table.
        #[arg(long)]
        csv: bool,
    },
}

#[derive(Debug, Subcommand)]
enum RingGroupCmd {
    /// Add a ring group.
    Add {
        /// Group number (extension numbering rule; not an extension's number).
        number: String,
        /// Display name (at most 64 characters).
        #[arg(long)]
        name: Option<String>,
        /// Ring all members at once, or one after the other.
        #[arg(long, value_enum, default_value = "simultaneous")]
        strategy: StrategyArg,
        /// Member extensions, comma-separated, in ringing order.
        #[arg(long, value_name = "N,N,...", required = true)]
        members: String,
        /// Seconds of ringing: per member (ordered) or in total (simultaneous), 5 to 300.
        #[arg(long, value_name = "SECS", default_value_t = store::DEFAULT_RING_SECS)]
        ring_secs: u32,
        /// Where an unanswered call goes (`off`: hang up with 480).
        #[arg(long, value_name = "TARGET|off")]
        noanswer: Option<String>,
    },
    /// List ring groups.
    List,
    /// Show one ring group.
    Show {
        /// Group number.
        number: String,
    },
    /// Remove a ring group.
    Remove {
        /// Group number.
        number: String,
    },
    /// Change a ring group; options not given keep their value.
    Set {
        /// Group number.
        number: String,
        /// Display name (`--name ''` removes it).
        #[arg(long)]
        name: Option<String>,
        /// Ring all members at once, or one after the other.
        #[arg(long, value_enum)]
        strategy: Option<StrategyArg>,
        /// Member extensions, comma-separated, in ringing order (replaces the list).
        #[arg(long, value_name = "N,N,...")]
        members: Option<String>,
        /// Seconds of ringing, 5 to 300.
        #[arg(long, value_name = "SECS")]
        ring_secs: Option<u32>,
        /// Where an unanswered call goes (`off`: hang up with 480).
        #[arg(long, value_name = "TARGET|off")]
        noanswer: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum SiteCmd {
    /// Show the site settings.
    Show,
    /// Change site settings; options not given keep their value.
    Set {
        /// Country calling code without + or 00 (1 to 3 digits), e.g. 49.
        #[arg(long, value_name = "CC")]
        country_code: Option<String>,
        /// Area code without the leading 0 (e.g. 211), or `none`.
        #[arg(long, value_name = "CODE|none")]
        area_code: Option<String>,
        /// Digit to dial before external numbers: `0` or `none`.
        #[arg(long, value_name = "0|none")]
        outside_prefix: Option<String>,
        /// Billing tick in seconds (1 to 3600): billed time is rounded up to it.
        #[arg(long, value_name = "SECS")]
        billing_tick: Option<u32>,
        /// Allow forwarding (and ring-group no-answer targets) to external numbers.
        #[arg(long, value_enum)]
        allow_external_forwarding: Option<OnOff>,
    },
    /// Show or set the emergency caller ID (E.164, one of the account's numbers) and
    /// the site's postal address; without options, show them.
    Emergency {
        /// E.164 number sent on 110/112, e.g. +4921112340, or `none`.
        #[arg(long, value_name = "E164|none")]
        caller_id: Option<String>,
        /// Postal address as registered with the provider, or `none`.
        #[arg(long, value_name = "TEXT|none")]
        address: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ExtensionCmd {
    /// Add an extension (creates the database if the data directory has none).
    Add {
        /// Extension number, also the SIP user name.
        number: String,
        /// SIP password, or `-` to read it from standard input.
        #[arg(long, value_name = "PW", allow_hyphen_values = true)]
        password: String,
        /// Display name (at most 64 characters).
        #[arg(long)]
        name: Option<String>,
    },
    /// List extensions (number, name, status); never prints password hashes.
    List,
    /// Remove an extension.
    Remove {
        /// Extension number.
        number: String,
    },
    /// Change an extension's call settings; options not given keep their value.
    Set {
        /// Extension number.
        number: String,
        /// Which external numbers it may dial (emergency numbers always work).
        #[arg(long, value_enum)]
        class: Option<ClassArg>,
        /// Suppress the caller ID on every call.
        #[arg(long, value_enum)]
        clir: Option<OnOff>,
        /// Do not disturb.
        #[arg(long, value_enum)]
        dnd: Option<OnOff>,
        /// Forward every call to TARGET.
        #[arg(long, value_name = "TARGET|off")]
        forward_always: Option<String>,
        /// Forward to TARGET when busy.
        #[arg(long, value_name = "TARGET|off")]
        forward_busy: Option<String>,
        /// Forward to TARGET when not answered in time.
        #[arg(long, value_name = "TARGET|off")]
        forward_noanswer: Option<String>,
        /// Seconds of ringing before the no-answer forward (5 to 120).
        #[arg(long, value_name = "SECS")]
        noanswer_secs: Option<u32>,
        /// Call pickup group, 1 to 99.
        #[arg(long, value_name = "N|off")]
        pickup_group: Option<String>,
    },
    /// Show an extension with its call settings and ring groups.
    Show {
        /// Extension number.
        number: String,
    },
    /// Set an extension's SIP password.
    SetPassword {
        /// Extension number.
        number: String,
        /// New SIP password, or `-` to read it from standard input.
        #[arg(value_name = "PW", allow_hyphen_values = true)]
        password: String,
    },
}

#[derive(Debug, Subcommand)]
enum BlocksCmd {
    /// List the blocks in force.
    List,
    /// Lift the block on an address.
    Unblock {
        /// The blocked IPv4 or IPv6 address.
        ip: IpAddr,
    },
}

/// A failure: the message for stderr and the exit status (documented in AFTER_HELP).
struct Failure {
    code: u8,
    message: String,
}

const EXIT_OTHER: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_NOT_FOUND: u8 = 3;
const EXIT_EXISTS: u8 = 4;
const EXIT_DATA: u8 = 5;

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::InvalidNumber { .. }
            | StoreError::InvalidName(_)
            | StoreError::InvalidPassword(_)
            | StoreError::InvalidValue { .. }
            | StoreError::InvalidCallRecord(_) => EXIT_USAGE,
            StoreError::ExternalForwardingDisabled(_) => {
                return Failure::new(
                    EXIT_USAGE,
                    format!("{e}; allow it with `pbxctl site set --allow-external-forwarding on`"),
                );
            }
            StoreError::UnknownExtension(_)
            | StoreError::UnknownRingGroup(_)
            | StoreError::UnknownUser(_) => EXIT_NOT_FOUND,
            StoreError::DuplicateExtension(_)
            | StoreError::DuplicateRingGroup(_)
            | StoreError::NumberInUse { .. } => EXIT_EXISTS,
            StoreError::DataDir { .. }
            | StoreError::Corrupt { .. }
            | StoreError::SchemaTooNew { .. } => EXIT_DATA,
            _ => EXIT_OTHER,
        };
        Failure::new(code, e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("pbxctl: error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// The one place pbxctl reads the wall clock (the store takes time as an argument).
#[allow(clippy::disallowed_methods)]
fn now_unix() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
}

fn run(cli: Cli) -> Result<(), Failure> {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_default();
    let source = if user.is_empty() {
        "cli".to_owned()
    } else {
        format!("cli:{user}")
    };
    let by = AuditCtx {
        actor: "pbxctl",
        source: &source,
        now_unix: now_unix(),
    };
    let dir = cli.data_dir.as_path();
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Extension(ExtensionCmd::Add {
            number,
            password,
            name,
        }) => {
            // Check everything before touching the data directory.
            store::validate_number(&number)?;
            if let Some(name) = &name {
                store::validate_name(name)?;
            }
            let password = password_arg(password)?;
            store::validate_password(&number, &password)?;
            let existed = Store::db_path(dir).exists();
            let mut db = Store::open(dir)?;
            if !existed {
                eprintln!("pbxctl: created new database {}", db.path().display());
            }
            db.add_extension(&by, &number, name.as_deref(), &password)?;
            print(&mut out, format_args!("added extension {number}\n"))
        }
        Command::Extension(ExtensionCmd::List) => {
            let db = open_existing(dir)?;
            let rows: Vec<[String; 3]> = db
                .list_extensions()?
                .into_iter()
                .map(|e| {
                    let status = if e.enabled { "enabled" } else { "disabled" };
                    [e.number, e.name.unwrap_or_default(), status.to_owned()]
                })
                .collect();
            print_table(&mut out, ["NUMBER", "NAME", "STATUS"], &rows)
        }
        Command::Extension(ExtensionCmd::Remove { number }) => {
            store::validate_number(&number)?;
            open_existing(dir)?.remove_extension(&by, &number)?;
            print(&mut out, format_args!("removed extension {number}\n"))
        }
        Command::Extension(ExtensionCmd::SetPassword { number, password }) => {
            store::validate_number(&number)?;
            let password = password_arg(password)?;
            store::validate_password(&number, &password)?;
            open_existing(dir)?.set_password(&by, &number, &password)?;
            print(
                &mut out,
                format_args!("password of extension {number} changed\n"),
            )
        }
        Command::Extension(ExtensionCmd::Set {
            number,
            class,
            clir,
            dnd,
            forward_always,
            forward_busy,
            forward_noanswer,
            noanswer_secs,
            pickup_group,
        }) => {
            store::validate_number(&number)?;
            let nothing = class.is_none()
                && clir.is_none()
                && dnd.is_none()
                && forward_always.is_none()
                && forward_busy.is_none()
                && forward_noanswer.is_none()
                && noanswer_secs.is_none()
                && pickup_group.is_none();
            if nothing {
                return Err(Failure::new(
                    EXIT_USAGE,
                    "nothing to change: give at least one option (see --help)",
                ));
            }
            // Parse everything before opening the database.
            let forward_always = forward_always.as_deref().map(target_arg).transpose()?;
            let forward_busy = forward_busy.as_deref().map(target_arg).transpose()?;
            let forward_noanswer = forward_noanswer.as_deref().map(target_arg).transpose()?;
            let pickup_group = pickup_group.as_deref().map(pickup_arg).transpose()?;
            let mut db = open_existing(dir)?;
            let mut s = db.call_settings(&number)?;
            if let Some(c) = class {
                s.outbound_class = c.into();
            }
            if let Some(v) = clir {
                s.clir = v.is_on();
            }
            if let Some(v) = dnd {
                s.dnd = v.is_on();
            }
            if let Some(t) = forward_always {
                s.forward_always = t;
            }
            if let Some(t) = forward_busy {
                s.forward_busy = t;
            }
            if let Some(t) = forward_noanswer {
                s.forward_noanswer = t;
            }
            if let Some(secs) = noanswer_secs {
                s.forward_noanswer_secs = secs;
            }
            if let Some(g) = pickup_group {
                s.pickup_group = g;
            }
            db.set_call_settings(&by, &number, &s)?;
            print(
                &mut out,
                format_args!("call settings of extension {number} changed\n"),
            )
        }
        Command::Extension(ExtensionCmd::Show { number }) => {
            store::validate_number(&number)?;
            let db = open_existing(dir)?;
            let ext = db
                .get_extension(&number)?
                .ok_or_else(|| StoreError::UnknownExtension(number.clone()))?;
            let s = db.call_settings(&number)?;
            let groups = db.ring_groups_of(&number)?;
            print_fields(&mut out, &extension_fields(&ext, &s, &groups))
        }
        Command::Cdr(CdrCmd::List {
            since,
            until,
            extension,
            limit,
            offset,
            csv,
        }) => {
            let q = CdrQuery {
                since_ms: since.as_deref().map(time_arg).transpose()?,
                until_ms: until.as_deref().map(time_arg).transpose()?,
                extension,
                limit,
                offset,
            };
            let db = open_existing(dir)?;
            let records = db.call_records(&q)?;
            if csv {
                let tick = db.site_settings()?.billing_tick_secs;
                let mut text = String::with_capacity(256 * (records.len() + 1));
                text.push_str(store::cdr_csv_header());
                text.push_str("\r\n");
                for r in &records {
                    text.push_str(&store::to_csv_row(r, tick));
                    text.push_str("\r\n");
                }
                print(&mut out, format_args!("{text}"))
            } else {
                let rows: Vec<[String; 7]> = records
                    .iter()
                    .map(|s| {
                        let r = &s.record;
                        [
                            local_time(r.start_ms),
                            r.caller.clone(),
                            r.dialled.clone(),
                            match &r.forwarded_by {
                                Some(by) => format!(
                                    "{} (forwarded by {by})",
                                    r.normalised.as_deref().unwrap_or("?")
                                ),
                                None => r.destination.clone().unwrap_or_default(),
                            },
                            r.disposition.to_string(),
                            clock_secs(r.billable_secs()),
                            r.reason.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                print_table(
                    &mut out,
                    [
                        "TIME",
                        "CALLER",
                        "DIALLED",
                        "DESTINATION",
                        "RESULT",
                        "BILLABLE",
                        "REASON",
                    ],
                    &rows,
                )
            }
        }
        Command::RingGroup(RingGroupCmd::Add {
            number,
            name,
            strategy,
            members,
            ring_secs,
            noanswer,
        }) => {
            let members = members_arg(&members);
            if members.is_empty() {
                return Err(Failure::new(
                    EXIT_USAGE,
                    "a ring group needs at least one member (--members 101,102)",
                ));
            }
            let g = RingGroup {
                number: number.clone(),
                name,
                strategy: strategy.into(),
                ring_secs,
                noanswer_target: noanswer.as_deref().map(target_arg).transpose()?.flatten(),
                members,
            };
            store::validate_ring_group(&g)?;
            open_existing(dir)?.add_ring_group(&by, &g)?;
            print(&mut out, format_args!("added ring group {number}\n"))
        }
        Command::RingGroup(RingGroupCmd::List) => {
            let rows: Vec<[String; 6]> = open_existing(dir)?
                .list_ring_groups()?
                .into_iter()
                .map(|g| {
                    [
                        g.number,
                        g.name.unwrap_or_default(),
                        g.strategy.to_string(),
                        format!("{}s", g.ring_secs),
                        g.noanswer_target
                            .map_or_else(|| "-".to_owned(), |t| t.to_string()),
                        g.members.join(","),
                    ]
                })
                .collect();
            print_table(
                &mut out,
                ["NUMBER", "NAME", "STRATEGY", "RING", "NOANSWER", "MEMBERS"],
                &rows,
            )
        }
        Command::RingGroup(RingGroupCmd::Show { number }) => {
            store::validate_number(&number)?;
            let g = open_existing(dir)?
                .ring_group(&number)?
                .ok_or(StoreError::UnknownRingGroup(number))?;
            print_fields(&mut out, &ring_group_fields(&g))
        }
        Command::RingGroup(RingGroupCmd::Remove { number }) => {
            store::validate_number(&number)?;
            open_existing(dir)?.remove_ring_group(&by, &number)?;
            print(&mut out, format_args!("removed ring group {number}\n"))
        }
        Command::RingGroup(RingGroupCmd::Set {
            number,
            name,
            strategy,
            members,
            ring_secs,
            noanswer,
        }) => {
            store::validate_number(&number)?;
            if name.is_none()
                && strategy.is_none()
                && members.is_none()
                && ring_secs.is_none()
                && noanswer.is_none()
            {
                return Err(Failure::new(
                    EXIT_USAGE,
                    "nothing to change: give at least one option (see --help)",
                ));
            }
            let noanswer = noanswer.as_deref().map(target_arg).transpose()?;
            let mut db = open_existing(dir)?;
            let mut g = db
                .ring_group(&number)?
                .ok_or_else(|| StoreError::UnknownRingGroup(number.clone()))?;
            if let Some(name) = name {
                g.name = (!name.is_empty()).then_some(name);
            }
            if let Some(s) = strategy {
                g.strategy = s.into();
            }
            if let Some(m) = members {
                g.members = members_arg(&m);
            }
            if let Some(secs) = ring_secs {
                g.ring_secs = secs;
            }
            if let Some(t) = noanswer {
                g.noanswer_target = t;
            }
            db.update_ring_group(&by, &g)?;
            print(&mut out, format_args!("ring group {number} changed\n"))
        }
        Command::Site(SiteCmd::Emergency { caller_id, address }) => {
            run_emergency(dir, &by, &mut out, caller_id, address)
        }
        Command::Numbers(cmd) => run_numbers(dir, &by, &mut out, cmd),
        Command::Site(SiteCmd::Show) => {
            let s = open_existing(dir)?.site_settings()?;
            print_fields(&mut out, &site_fields(&s))
        }
        Command::Site(SiteCmd::Set {
            country_code,
            area_code,
            outside_prefix,
            billing_tick,
            allow_external_forwarding,
        }) => {
            if country_code.is_none()
                && area_code.is_none()
                && outside_prefix.is_none()
                && billing_tick.is_none()
                && allow_external_forwarding.is_none()
            {
                return Err(Failure::new(
                    EXIT_USAGE,
                    "nothing to change: give at least one option (see --help)",
                ));
            }
            let mut db = open_existing(dir)?;
            let mut s = db.site_settings()?;
            if let Some(cc) = country_code {
                s.country_code = cc;
            }
            if let Some(ac) = area_code {
                s.area_code = if ac == "none" { String::new() } else { ac };
            }
            if let Some(p) = outside_prefix {
                s.outside_prefix = (p != "none").then_some(p);
            }
            if let Some(t) = billing_tick {
                s.billing_tick_secs = t;
            }
            if let Some(v) = allow_external_forwarding {
                s.allow_external_forwarding = v.is_on();
            }
            db.set_site_settings(&by, &s)?;
            print(&mut out, format_args!("site settings changed\n"))
        }
        Command::Gsm(cmd) => {
            let mut db = open_existing(dir)?;
            pbxd::gsm::cli::run_gsm(cmd, &mut db, dir, &mut out, by.now_unix).map_err(gsm_failure)
        }
        Command::Sms(cmd) => {
            let mut db = open_existing(dir)?;
            pbxd::gsm::cli::run_sms(cmd, &mut db, &source, &mut out, by.now_unix)
                .map_err(gsm_failure)
        }
        Command::Port(PortCmd::Set(args)) => {
            let mut db = Store::open(dir)?;
            pbxd::line::cli::run_set(args, &mut db, &by, &mut out).map_err(port_failure)
        }
        Command::Ports => {
            let db = open_existing(dir)?;
            pbxd::line::cli::run_list(&db, &mut out).map_err(port_failure)
        }
        Command::Trunk(cmd) => {
            let mut db = match &cmd {
                pbxd::trunk::cli::TrunkCmd::Add { .. } => Store::open(dir)?,
                _ => open_existing(dir)?,
            };
            let mut stdin = std::io::stdin().lock();
            pbxd::trunk::cli::run(cmd, dir, &mut db, &by, &mut stdin, &mut out)
                .map_err(|f| Failure::new(f.code, f.message))
        }
        Command::Update(cmd) => {
            // Read before any thread starts: the local offset is only sound single-threaded.
            let local = time::OffsetDateTime::now_local()
                .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
                .time();
            pbxd::update::cli::run(cmd, &mut out, local)
                .map_err(|f| Failure::new(f.code, f.message))
        }
        Command::Alerts { all } => pbxd::cli_admin::run_alerts(&open_existing(dir)?, all, &mut out)
            .map_err(|f| Failure::new(f.code, f.message)),
        Command::Backup(cmd) => {
            let mut db = match cmd {
                pbxd::cli_admin::BackupCmd::Create { .. } => open_existing(dir)?,
                pbxd::cli_admin::BackupCmd::Restore { .. } => Store::open(dir)?,
            };
            pbxd::cli_admin::run_backup(cmd, dir, &mut db, &by, &mut out)
                .map_err(|f| Failure::new(f.code, f.message))
        }
        Command::WebUser(WebUserCmd::List) => {
            let rows: Vec<[String; 4]> = open_existing(dir)?
                .list_web_users()?
                .into_iter()
                .map(|u| {
                    [
                        u.username,
                        u.role.as_str().to_owned(),
                        u.extension.unwrap_or_else(|| "-".to_owned()),
                        if u.disabled { "disabled" } else { "enabled" }.to_owned(),
                    ]
                })
                .collect();
            print_table(&mut out, ["USER", "ROLE", "EXTENSION", "STATE"], &rows)
        }
        Command::WebUser(WebUserCmd::SetPassword { username, password }) => {
            let password = password_arg(password)?;
            store::validate_web_password(&username, &password)?;
            let mut db = open_existing(dir)?;
            if db.get_web_user(&username)?.is_none() {
                return Err(StoreError::UnknownUser(username).into());
            }
            let hash = pbxd::web::auth::hash_password(&password)
                .map_err(|e| Failure::new(EXIT_OTHER, format!("cannot hash the password: {e}")))?;
            db.set_web_user_password_hash(&by, &username, &hash)?;
            print(
                &mut out,
                format_args!("password of web user {username} changed\n"),
            )
        }
        Command::WebUser(WebUserCmd::Enable { username }) => {
            open_existing(dir)?.set_web_user_disabled(&by, &username, false)?;
            print(&mut out, format_args!("web user {username} enabled\n"))
        }
        Command::Registrations => {
            let now = by.now_unix;
            let rows: Vec<[String; 4]> = open_existing(dir)?
                .load_bindings(now)?
                .into_iter()
                .map(|b| {
                    [
                        b.aor,
                        b.contact,
                        format!("{}:{}", b.transport, b.source),
                        format!("{}s", b.expires_at.saturating_sub(now)),
                    ]
                })
                .collect();
            print_table(&mut out, ["AOR", "CONTACT", "SOURCE", "EXPIRES"], &rows)
        }
        Command::Blocks(BlocksCmd::List) => {
            let now = by.now_unix;
            let rows: Vec<[String; 3]> = open_existing(dir)?
                .active_blocks(now)?
                .into_iter()
                .map(|b| {
                    [
                        b.ip.to_string(),
                        format!("{}s", b.until.saturating_sub(now)),
                        b.reason,
                    ]
                })
                .collect();
            print_table(&mut out, ["IP", "REMAINING", "REASON"], &rows)
        }
        Command::Blocks(BlocksCmd::Unblock { ip }) => {
            if open_existing(dir)?.remove_block(&by, ip)? {
                print(&mut out, format_args!("unblocked {ip}\n"))
            } else {
                Err(Failure::new(EXIT_NOT_FOUND, format!("{ip} is not blocked")))
            }
        }
    }
}

/// Opens the database for commands that need existing data: a wrong `--data-dir` must not
/// silently create an empty database.
fn gsm_failure(e: pbxd::gsm::cli::CliError) -> Failure {
    use pbxd::gsm::cli::CliError;
    match e {
        CliError::Usage(m) => Failure::new(EXIT_USAGE, m),
        CliError::NotFound(m) => Failure::new(EXIT_NOT_FOUND, m),
        CliError::Store(e) => e.into(),
        CliError::Other(m) => Failure::new(EXIT_OTHER, m),
    }
}

fn port_failure(e: pbxd::line::cli::PortCliError) -> Failure {
    use pbxd::line::cli::PortCliError;
    match e {
        PortCliError::Usage(m) => Failure::new(EXIT_USAGE, m),
        PortCliError::Store(e) => e.into(),
        PortCliError::Output(e) => Failure::new(EXIT_OTHER, format!("cannot write output: {e}")),
    }
}

fn open_existing(dir: &Path) -> Result<Store, Failure> {
    let path = Store::db_path(dir);
    match path.try_exists() {
        Ok(true) => Ok(Store::open(dir)?),
        Ok(false) => Err(Failure::new(
            EXIT_DATA,
            format!(
                "no database at {} (check --data-dir; `pbxctl extension add` or pbxd creates it)",
                path.display()
            ),
        )),
        Err(e) => Err(Failure::new(
            EXIT_DATA,
            format!("data directory {}: cannot read: {e}", dir.display()),
        )),
    }
}

/// `off` → `Some(None)`, a target → `Some(Some(target))` (for `Option::map`).
fn target_arg(arg: &str) -> Result<Option<ForwardTarget>, Failure> {
    if arg == "off" {
        return Ok(None);
    }
    Ok(Some(ForwardTarget::parse(arg)?))
}

fn pickup_arg(arg: &str) -> Result<Option<u8>, Failure> {
    if arg == "off" {
        return Ok(None);
    }
    match arg.parse::<u8>() {
        Ok(g) if store::PICKUP_GROUP_RANGE.contains(&g) => Ok(Some(g)),
        _ => Err(Failure::new(
            EXIT_USAGE,
            format!("invalid pickup group {arg:?}: must be 1 to 99 or off"),
        )),
    }
}

/// Splits `101,102, 103` into numbers; empty items are dropped.
fn members_arg(arg: &str) -> Vec<String> {
    arg.split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses a `--since`/`--until` value into Unix milliseconds: RFC 3339, a date
/// (`YYYY-MM-DD`, local midnight) or Unix seconds.
fn time_arg(arg: &str) -> Result<i64, Failure> {
    let bad = || {
        Failure::new(
            EXIT_USAGE,
            format!(
                "invalid time {arg:?}: give RFC 3339 (2026-11-21T09:00:00+01:00), \
                 a date (2026-11-21) or Unix seconds"
            ),
        )
    };
    if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = arg.parse().map_err(|_| bad())?;
        return secs.checked_mul(1000).ok_or_else(bad);
    }
    let t = if let Some(date) = parse_date(arg) {
        let midnight = date.midnight();
        let offset =
            time::UtcOffset::local_offset_at(midnight.assume_utc()).unwrap_or(time::UtcOffset::UTC);
        midnight.assume_offset(offset)
    } else {
        time::OffsetDateTime::parse(arg, &time::format_description::well_known::Rfc3339)
            .map_err(|_| bad())?
    };
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| bad())
}

/// `YYYY-MM-DD` as a calendar date.
fn parse_date(s: &str) -> Option<time::Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u16> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let month = time::Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?;
    let day = u8::try_from(num(8..10)?).ok()?;
    time::Date::from_calendar_date(i32::from(num(0..4)?), month, day).ok()
}

/// Unix milliseconds as local time (TZ), whole seconds, e.g. `2026-11-21T10:14:54+01:00`.
fn local_time(ms: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) else {
        return ms.to_string();
    };
    let offset = time::UtcOffset::local_offset_at(t).unwrap_or(time::UtcOffset::UTC);
    t.to_offset(offset)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| ms.to_string())
}

/// Seconds as `m:ss`, or `h:mm:ss` from one hour.
fn clock_secs(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

fn on_off(b: bool) -> String {
    if b { "on" } else { "off" }.to_owned()
}

fn target_text(t: Option<&ForwardTarget>) -> String {
    t.map_or_else(|| "off".to_owned(), ToString::to_string)
}

fn extension_fields(
    ext: &store::Extension,
    s: &CallSettings,
    groups: &[String],
) -> Vec<(&'static str, String)> {
    vec![
        ("number", ext.number.clone()),
        ("name", ext.name.clone().unwrap_or_default()),
        (
            "status",
            if ext.enabled { "enabled" } else { "disabled" }.to_owned(),
        ),
        ("outbound class", s.outbound_class.to_string()),
        ("clir", on_off(s.clir)),
        ("dnd", on_off(s.dnd)),
        ("forward always", target_text(s.forward_always.as_ref())),
        ("forward busy", target_text(s.forward_busy.as_ref())),
        (
            "forward no answer",
            match &s.forward_noanswer {
                Some(t) => format!("{t} after {}s", s.forward_noanswer_secs),
                None => format!("off ({}s)", s.forward_noanswer_secs),
            },
        ),
        (
            "pickup group",
            s.pickup_group
                .map_or_else(|| "off".to_owned(), |g| g.to_string()),
        ),
        ("ring groups", groups.join(",")),
    ]
}

fn ring_group_fields(g: &RingGroup) -> Vec<(&'static str, String)> {
    vec![
        ("number", g.number.clone()),
        ("name", g.name.clone().unwrap_or_default()),
        ("strategy", g.strategy.to_string()),
        ("ring time", format!("{}s", g.ring_secs)),
        ("no answer", target_text(g.noanswer_target.as_ref())),
        ("members", g.members.join(",")),
    ]
}

fn site_fields(s: &SiteSettings) -> Vec<(&'static str, String)> {
    let none = |v: &str| if v.is_empty() { "none" } else { v }.to_owned();
    vec![
        ("country code", s.country_code.clone()),
        ("area code", none(&s.area_code)),
        (
            "outside-line prefix",
            none(s.outside_prefix.as_deref().unwrap_or("")),
        ),
        ("billing tick", format!("{}s", s.billing_tick_secs)),
        (
            "allow external forwarding",
            on_off(s.allow_external_forwarding),
        ),
    ]
}

/// Prints `key: value` lines with the values aligned.
fn print_fields(out: &mut impl Write, fields: &[(&str, String)]) -> Result<(), Failure> {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut text = String::new();
    for (k, v) in fields {
        let key = format!("{k}:");
        text.push_str(format!("{key:<width$} {v}").trim_end());
        text.push('\n');
    }
    print(out, format_args!("{text}"))
}

/// Returns the password, reading one line from stdin if it is `-`.
fn password_arg(arg: String) -> Result<String, Failure> {
    if arg != "-" {
        return Ok(arg);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        Failure::new(
            EXIT_USAGE,
            format!("cannot read the password from stdin: {e}"),
        )
    })?;
    let trimmed = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    if trimmed.is_empty() {
        return Err(Failure::new(EXIT_USAGE, "no password on stdin"));
    }
    Ok(trimmed.to_owned())
}

fn print(out: &mut impl Write, args: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    out.write_fmt(args)
        .map_err(|e| Failure::new(EXIT_OTHER, format!("cannot write output: {e}")))
}

/// Prints left-aligned columns separated by two spaces; the last column is not padded.
fn print_table<const N: usize>(
    out: &mut impl Write,
    header: [&str; N],
    rows: &[[String; N]],
) -> Result<(), Failure> {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let mut push_row = |cells: [&str; N]| {
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                text.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', pad + 2));
            }
        }
        text.push('\n');
    };
    push_row(header);
    for row in rows {
        push_row(row.each_ref().map(String::as_str));
    }
    print(out, format_args!("{text}"))
}

/// `pbxctl numbers ...`
#[derive(Debug, Subcommand)]
enum NumbersCmd {
    /// Add one of the account's numbers (or change it).
    Add {
        /// E.164 with +, e.g. +4921112345.
        number: String,
        /// The trunk (provider account) that owns it.
        #[arg(long)]
        trunk: String,
        /// What a call to it rings: an extension, ring group or analog port number.
        #[arg(long, value_name = "NUMBER")]
        to: Option<String>,
        /// Extensions that may send it as caller ID: a comma list, or `all`.
        #[arg(long, value_name = "EXT,EXT|all", default_value = "")]
        callers: String,
        /// The trunk's caller ID for extensions without a number of their own.
        #[arg(long)]
        default: bool,
    },
    /// Remove one of the account's numbers.
    Remove {
        /// E.164 with +.
        number: String,
    },
    /// List the account's numbers.
    List {
        /// Only this trunk's.
        #[arg(long)]
        trunk: Option<String>,
    },
    /// Set a trunk's concurrent-call limit (both directions; the same value as
    /// `trunk set --max-calls`).
    Limit {
        /// The trunk.
        trunk: String,
        /// Most concurrent calls (1 to 1000).
        #[arg(long, value_name = "N|none")]
        max: String,
    },
    /// Show or set toll-fraud protection; without options, show it.
    Fraud {
        /// Whether the limits apply (on by default).
        #[arg(long, value_enum)]
        enabled: Option<OnOff>,
        /// External calls an extension may start per minute before it is locked.
        #[arg(long, value_name = "N")]
        calls_per_minute: Option<u32>,
        /// Concurrent external calls per extension (unless set per extension).
        #[arg(long, value_name = "N")]
        user_concurrent: Option<u32>,
    },
    /// Show or set one extension's external-call policy; without options, show it.
    External {
        /// The extension.
        extension: String,
        /// Concurrent external calls, or `default` for the site's.
        #[arg(long, value_name = "N|default")]
        max_concurrent: Option<String>,
        /// Allow forwarding its calls to external numbers.
        #[arg(long, value_enum)]
        allow_forwarding: Option<OnOff>,
    },
    /// Lift an extension's toll-fraud lock.
    Unlock {
        /// The extension.
        extension: String,
    },
}

fn none_or<T>(
    v: &str,
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
) -> Result<Option<T>, Failure> {
    if v == "none" || v == "default" {
        return Ok(None);
    }
    parse(v)
        .map(Some)
        .ok_or_else(|| Failure::new(EXIT_USAGE, format!("invalid {what}: {v:?}")))
}

fn run_emergency(
    dir: &Path,
    by: &AuditCtx<'_>,
    out: &mut impl Write,
    caller_id: Option<String>,
    address: Option<String>,
) -> Result<(), Failure> {
    let mut db = open_existing(dir)?;
    let mut e = db.emergency_settings()?;
    if caller_id.is_some() || address.is_some() {
        if let Some(c) = caller_id {
            e.caller_id = (c != "none").then_some(c);
        }
        if let Some(a) = address {
            e.address = (a != "none").then_some(a);
        }
        db.set_emergency_settings(by, &e)?;
    }
    print_fields(
        out,
        &[
            (
                "emergency_caller_id",
                e.caller_id.unwrap_or_else(|| "none".into()),
            ),
            (
                "emergency_address",
                e.address.unwrap_or_else(|| "none".into()),
            ),
        ],
    )
}

fn run_numbers(
    dir: &Path,
    by: &AuditCtx<'_>,
    out: &mut impl Write,
    cmd: NumbersCmd,
) -> Result<(), Failure> {
    match cmd {
        NumbersCmd::Add {
            number,
            trunk,
            to,
            callers,
            default,
        } => {
            let callers: Vec<String> = match callers.as_str() {
                "all" => vec!["*".to_owned()],
                c => c
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
            };
            let n = store::TrunkNumber {
                trunk,
                number: number.clone(),
                destination: to,
                callers,
                is_default: default,
            };
            open_existing(dir)?.add_trunk_number(by, &n)?;
            print(out, format_args!("added number {number}\n"))
        }
        NumbersCmd::Remove { number } => {
            if open_existing(dir)?.remove_trunk_number(by, &number)? {
                print(out, format_args!("removed number {number}\n"))
            } else {
                Err(Failure::new(
                    EXIT_NOT_FOUND,
                    format!("{number} is not one of the account's numbers"),
                ))
            }
        }
        NumbersCmd::List { trunk } => {
            let rows: Vec<[String; 5]> = open_existing(dir)?
                .trunk_numbers(trunk.as_deref())?
                .into_iter()
                .map(|n| {
                    [
                        n.number,
                        n.trunk,
                        n.destination.unwrap_or_else(|| "-".into()),
                        n.callers.join(",").replace('*', "all"),
                        if n.is_default { "yes" } else { "" }.to_owned(),
                    ]
                })
                .collect();
            print_table(
                out,
                ["NUMBER", "TRUNK", "RINGS", "CALLER ID FOR", "DEFAULT"],
                &rows,
            )
        }
        NumbersCmd::Limit { trunk, max } => {
            let max = none_or(&max, |v| v.parse().ok(), "limit")?;
            open_existing(dir)?.set_trunk_call_limit(by, &trunk, max)?;
            let shown = max.map_or_else(|| "none".to_owned(), |m| m.to_string());
            print(
                out,
                format_args!("trunk {trunk}: at most {shown} concurrent calls\n"),
            )
        }
        NumbersCmd::Fraud {
            enabled,
            calls_per_minute,
            user_concurrent,
        } => {
            let mut db = open_existing(dir)?;
            let mut f = db.toll_fraud()?;
            if enabled.is_some() || calls_per_minute.is_some() || user_concurrent.is_some() {
                if let Some(e) = enabled {
                    f.enabled = matches!(e, OnOff::On);
                }
                if let Some(c) = calls_per_minute {
                    f.calls_per_minute = c;
                }
                if let Some(u) = user_concurrent {
                    f.user_concurrent = u;
                }
                db.set_toll_fraud(by, &f)?;
            }
            print_fields(
                out,
                &[
                    ("enabled", if f.enabled { "on" } else { "off" }.to_owned()),
                    ("calls_per_minute", f.calls_per_minute.to_string()),
                    ("user_concurrent", f.user_concurrent.to_string()),
                ],
            )
        }
        NumbersCmd::External {
            extension,
            max_concurrent,
            allow_forwarding,
        } => {
            store::validate_number(&extension)?;
            let mut db = open_existing(dir)?;
            let mut p = db.external_policy(&extension)?;
            if max_concurrent.is_some() || allow_forwarding.is_some() {
                if let Some(m) = max_concurrent {
                    p.max_concurrent = none_or(&m, |v| v.parse().ok(), "limit")?;
                }
                if let Some(a) = allow_forwarding {
                    p.allow_forwarding = matches!(a, OnOff::On);
                }
                db.set_external_policy(by, &extension, p.max_concurrent, p.allow_forwarding)?;
            }
            let locked = match &p.locked {
                Some((_, why)) => format!("yes: {why}"),
                None => "no".to_owned(),
            };
            print_fields(
                out,
                &[
                    (
                        "max_concurrent",
                        p.max_concurrent
                            .map_or_else(|| "default".to_owned(), |m| m.to_string()),
                    ),
                    (
                        "allow_forwarding",
                        if p.allow_forwarding { "on" } else { "off" }.to_owned(),
                    ),
                    ("locked", locked),
                ],
            )
        }
        NumbersCmd::Unlock { extension } => {
            if open_existing(dir)?.unlock_external(by, &extension)? {
                print(
                    out,
                    format_args!("extension {extension} may call external numbers again\n"),
                )
            } else {
                Err(Failure::new(
                    EXIT_NOT_FOUND,
                    format!("extension {extension} is not locked"),
                ))
            }
        }
    }
}
