//! `pbxctl alerts` and `pbxctl backup`: the same store code the web API uses.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::secret::DeviceKey;
use crate::store::{AuditCtx, BackupError, RestoreOptions, Store, StoreError};

/// `pbxctl backup ...`
#[derive(Debug, clap::Subcommand)]
pub enum BackupCmd {
    /// Write the configuration (extensions with their digest hashes, ring groups, site
    /// and call settings, web accounts with their password hashes, blocks) to FILE. Not
    /// call records, not registrations. Keep it private: it holds password hashes.
    Create {
        /// Where to write the archive (`-` for standard output).
        file: PathBuf,
    },
    /// Check FILE and replace the whole configuration with it in one transaction.
    /// Refused if damaged, from a newer firmware, or from another box (unless
    /// --allow-foreign: secrets sealed by the other box are then dropped and listed).
    Restore {
        /// The archive made by `backup create` or the web UI.
        file: PathBuf,
        /// Accept a backup made on another box.
        #[arg(long)]
        allow_foreign: bool,
    },
}

/// A failed command: exit status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliFailure {
    /// Exit status.
    pub code: u8,
    /// What went wrong.
    pub message: String,
}

/// Exit status when a backup is refused (damaged, foreign, too new, ...).
pub const EXIT_REFUSED: u8 = 2;
/// Exit status for other failures.
pub const EXIT_OTHER: u8 = 1;

fn other(message: impl Into<String>) -> CliFailure {
    CliFailure {
        code: EXIT_OTHER,
        message: message.into(),
    }
}

fn from_store(e: StoreError) -> CliFailure {
    let code = match e {
        StoreError::DataDir { .. }
        | StoreError::Corrupt { .. }
        | StoreError::SchemaTooNew { .. } => 5,
        _ => EXIT_OTHER,
    };
    CliFailure {
        code,
        message: e.to_string(),
    }
}

fn from_backup(e: BackupError) -> CliFailure {
    match e {
        BackupError::Store(e) => from_store(e),
        BackupError::Foreign { .. } => CliFailure {
            code: EXIT_REFUSED,
            message: format!("{e} (pbxctl backup restore --allow-foreign)"),
        },
        other => CliFailure {
            code: EXIT_REFUSED,
            message: other.to_string(),
        },
    }
}

/// Runs `pbxctl backup`. `open` opens the store (pbxctl's checks for an existing one).
pub fn run_backup(
    cmd: BackupCmd,
    data_dir: &Path,
    store: &mut Store,
    by: &AuditCtx<'_>,
    out: &mut impl Write,
) -> Result<(), CliFailure> {
    let key = DeviceKey::load_or_create(data_dir).map_err(|e| other(e.to_string()))?;
    match cmd {
        BackupCmd::Create { file } => {
            let archive = store.create_backup(by, &key).map_err(from_backup)?;
            if file.as_os_str() == "-" {
                out.write_all(&archive).map_err(|e| other(e.to_string()))?;
                return Ok(());
            }
            write_private(&file, &archive)
                .map_err(|e| other(format!("cannot write {}: {e}", file.display())))?;
            writeln!(
                out,
                "backup written to {} ({} bytes)",
                file.display(),
                archive.len()
            )
            .map_err(|e| other(e.to_string()))
        }
        BackupCmd::Restore {
            file,
            allow_foreign,
        } => {
            let archive = std::fs::read(&file)
                .map_err(|e| other(format!("cannot read {}: {e}", file.display())))?;
            let r = store
                .restore_backup(
                    by,
                    &key,
                    &archive,
                    RestoreOptions {
                        allow_foreign,
                        require_accounts: false,
                    },
                )
                .map_err(from_backup)?;
            let tables: Vec<String> = r.tables.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let w = |out: &mut dyn Write, s: String| {
                writeln!(out, "{s}").map_err(|e| other(e.to_string()))
            };
            w(out, format!("configuration restored: {}", tables.join(" ")))?;
            if r.foreign {
                w(
                    out,
                    format!("the backup came from another box ({})", r.device_id),
                )?;
            }
            if r.tables.get("web_users") == Some(&0) {
                w(
                    out,
                    "no web accounts: pbxd offers first-boot set-up (new token) at its next start"
                        .into(),
                )?;
            }
            for s in &r.dropped_secrets {
                w(out, format!("must be entered again: {s}"))?;
            }
            w(
                out,
                "restart pbxd so that running tasks pick up the restored configuration".into(),
            )
        }
    }
}

/// The archive holds password hashes: owner-only, like the database.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Runs `pbxctl alerts [--all]`: open alerts, most severe first; with `all`, the recent
/// history too.
pub fn run_alerts(store: &Store, all: bool, out: &mut impl Write) -> Result<(), CliFailure> {
    let alerts = if all {
        store.recent_alerts(200)
    } else {
        store.open_alerts()
    }
    .map_err(from_store)?;
    let io = |e: std::io::Error| other(e.to_string());
    if alerts.is_empty() {
        let what = if all { "no alerts" } else { "no open alerts" };
        return writeln!(out, "{what}").map_err(io);
    }
    writeln!(
        out,
        "{:<9} {:<20} {:<10} {:<28} MESSAGE",
        "SEVERITY", "SINCE (UTC)", "STATE", "KEY"
    )
    .map_err(io)?;
    for a in alerts {
        let state = a
            .cleared_at
            .map_or_else(|| "open".to_owned(), |_| "cleared".to_owned());
        let since = time::OffsetDateTime::from_unix_timestamp(a.raised_at)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| a.raised_at.to_string());
        writeln!(
            out,
            "{:<9} {:<20} {:<10} {:<28} {}",
            a.severity.as_str(),
            since,
            state,
            a.key,
            a.message
        )
        .map_err(io)?;
    }
    Ok(())
}
