//! `pbxctl`: the installer's command-line tool. It edits the same SQLite file as a running
//! `pbxd` (WAL mode): the daemon reads extensions per request, so changes apply at once.

use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pbxd::store::{self, AuditCtx, Store, StoreError};

const AFTER_HELP: &str = "\
Passwords: give `-` instead of a password to read it from standard input (one line),
which keeps it out of the shell history and the process list, e.g.
    read -rs PW; printf '%s\\n' \"$PW\" | pbxctl extension add 101 --password -

Extension numbers: 2 to 6 digits, not starting with 0, and not overlapping an emergency
number (110, 112, 124124) in either direction (so not 11, 12, 124, 1100, ...).
SIP passwords: at least 8 characters, not equal to the number. Only digest hashes (HA1)
are stored, never the password.

Exit status: 0 ok, 1 other error, 2 bad arguments or values, 3 no such extension or block,
4 extension already exists, 5 data directory or database unusable (missing, unreadable,
corrupt, or from a newer firmware).";

#[derive(Debug, Parser)]
#[command(
    name = "pbxctl",
    version,
    about = "Manage the PBX's extensions, registrations and blocks (works while pbxd runs)",
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
    /// Add, list, remove extensions or set their passwords.
    #[command(subcommand)]
    Extension(ExtensionCmd),
    /// Show the current registrations: AOR, contact, source, seconds until expiry.
    Registrations,
    /// List or lift authentication blocks (addresses locked out after failed logins).
    #[command(subcommand)]
    Blocks(BlocksCmd),
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
            | StoreError::InvalidPassword(_) => EXIT_USAGE,
            StoreError::UnknownExtension(_) => EXIT_NOT_FOUND,
            StoreError::DuplicateExtension(_) => EXIT_EXISTS,
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
