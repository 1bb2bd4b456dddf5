//! `pbxctl update install FILE | status`: the installer's side of updates, beside a
//! running pbxd (or without one).
//!
//! The install policy needs the calls in progress: they come from pbxd's
//! `GET /api/v1/health` on its plain HTTP port. No pbxd listening there means no calls.
//! An emergency-call flag does not exist yet (call control exports none), so only the
//! call count and the maintenance window are checked here.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use time::Time;

use super::rauc::{Bus, RaucInstaller};
use super::{
    InstallContext, InstallPolicy, Installer, MaintenanceWindow, UpdateError, UpdateStatus,
};

/// `pbxctl update ...`
#[derive(Debug, clap::Subcommand)]
pub enum UpdateCmd {
    /// Install a signed update bundle into the inactive slot; the box boots it at the next
    /// restart. RAUC checks the signature and the compatible string before writing.
    Install {
        /// The bundle (.raucb).
        bundle: PathBuf,
        /// Install even while calls are up or outside the maintenance window (never
        /// during an emergency call).
        #[arg(long)]
        force: bool,
        /// Only install (unforced) inside this daily window, local time, e.g. 01:00-05:00.
        #[arg(long, value_name = "HH:MM-HH:MM")]
        maintenance_window: Option<MaintenanceWindow>,
        /// pbxd's plain HTTP address, asked for the calls in progress.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        pbxd_http: SocketAddr,
        /// D-Bus address of RAUC's bus (default: the system bus).
        #[arg(long, value_name = "ADDRESS")]
        rauc_dbus_address: Option<String>,
    },
    /// Show the slots, which one is booted and which boots next, and the last install.
    Status {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
        /// D-Bus address of RAUC's bus (default: the system bus).
        #[arg(long, value_name = "ADDRESS")]
        rauc_dbus_address: Option<String>,
    },
}

/// Exit status when an install is refused by the policy (calls, window, emergency).
pub const EXIT_REFUSED: u8 = 6;
/// Exit status when RAUC refused or failed the install, or is unreachable.
pub const EXIT_FAILED: u8 = 1;

/// A failed `pbxctl update` command: exit status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliFailure {
    /// Exit status.
    pub code: u8,
    /// Message for stderr.
    pub message: String,
}

impl From<UpdateError> for CliFailure {
    fn from(e: UpdateError) -> Self {
        let code = match e {
            UpdateError::Refused(_) => EXIT_REFUSED,
            _ => EXIT_FAILED,
        };
        CliFailure {
            code,
            message: e.to_string(),
        }
    }
}

fn io_failure(e: std::io::Error) -> CliFailure {
    CliFailure {
        code: EXIT_FAILED,
        message: e.to_string(),
    }
}

fn bus(address: Option<String>) -> Bus {
    address.map_or(Bus::System, Bus::Address)
}

/// Runs `cmd`; `local_time` is the wall clock's local time of day (pbxctl reads it).
pub fn run(cmd: UpdateCmd, out: &mut impl Write, local_time: Time) -> Result<(), CliFailure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_failure)?;
    match cmd {
        UpdateCmd::Install {
            bundle,
            force,
            maintenance_window,
            pbxd_http,
            rauc_dbus_address,
        } => {
            let active_calls = calls_in_progress(pbxd_http).map_err(|reason| CliFailure {
                code: EXIT_REFUSED,
                message: format!(
                    "cannot tell whether calls are up ({reason}); use --force to install anyway"
                ),
            });
            let (active_calls, emergency_call) = match (active_calls, force) {
                (Ok(n), _) => n,
                (Err(_), true) => (0, false),
                (Err(e), false) => return Err(e),
            };
            let ctx = InstallContext {
                active_calls,
                emergency_call,
                local_time,
            };
            InstallPolicy {
                window: maintenance_window,
            }
            .check(&ctx, force)
            .map_err(UpdateError::from)?;
            rt.block_on(async {
                let installer = RaucInstaller::connect(&bus(rauc_dbus_address)).await?;
                let installed = installer
                    .install(&bundle, |p| {
                        // Progress goes straight to stdout, as it happens.
                        let _ = writeln!(std::io::stdout(), "{:3}% {}", p.percent, p.message);
                    })
                    .await?;
                let next = installed.primary.unwrap_or_else(|| "?".to_owned());
                writeln!(out, "installed; slot {next} boots at the next restart")
                    .map_err(io_failure)
            })
        }
        UpdateCmd::Status {
            json,
            rauc_dbus_address,
        } => rt.block_on(async {
            let installer = RaucInstaller::connect(&bus(rauc_dbus_address)).await?;
            let status = installer.status().await?;
            if json {
                let text = serde_json::to_string_pretty(&status).map_err(|e| CliFailure {
                    code: EXIT_FAILED,
                    message: e.to_string(),
                })?;
                writeln!(out, "{text}").map_err(io_failure)
            } else {
                write_status(out, &status).map_err(io_failure)
            }
        }),
    }
}

fn write_status(out: &mut impl Write, s: &UpdateStatus) -> std::io::Result<()> {
    writeln!(out, "operation:   {}", s.operation)?;
    writeln!(out, "booted:      {}", s.boot_slot)?;
    writeln!(
        out,
        "next boot:   {}",
        s.primary.as_deref().unwrap_or("none (no bootable slot)")
    )?;
    writeln!(out, "compatible:  {}", s.compatible)?;
    writeln!(
        out,
        "progress:    {}% {}",
        s.progress.percent, s.progress.message
    )?;
    writeln!(
        out,
        "last error:  {}",
        s.last_error.as_deref().unwrap_or("-")
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<10} {:<4} {:<9} {:<5} {:<10} INSTALLED",
        "SLOT", "BOOT", "STATE", "HEALTH", "VERSION"
    )?;
    let mut slots: Vec<_> = s.slots.iter().collect();
    slots.sort_by(|a, b| a.name.cmp(&b.name));
    for slot in slots {
        writeln!(
            out,
            "{:<10} {:<4} {:<9} {:<5} {:<10} {}",
            slot.name,
            slot.bootname.as_deref().unwrap_or("-"),
            slot.state,
            match slot.boot_status {
                Some(super::BootStatus::Good) => "good",
                Some(super::BootStatus::Bad) => "bad",
                None => "-",
            },
            slot.bundle_version.as_deref().unwrap_or("-"),
            slot.installed_at.as_deref().unwrap_or("-"),
        )?;
    }
    Ok(())
}

/// The calls in progress according to pbxd's health endpoint; 0 if nothing listens.
/// Calls in progress at pbxd on `addr`, and whether one is an emergency call.
fn calls_in_progress(addr: SocketAddr) -> Result<(usize, bool), String> {
    let mut stream = match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Ok(s) => s,
        // pbxd is not running: no calls.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok((0, false)),
        Err(e) => return Err(format!("pbxd at {addr}: {e}")),
    };
    let io = |e: std::io::Error| format!("pbxd at {addr}: {e}");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io)?;
    // One write: a peer that answers after its first read sees the whole request.
    let request =
        format!("GET /api/v1/health HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut reply = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut reply).map_err(io)?;
    parse_health_reply(&reply).ok_or_else(|| format!("pbxd at {addr}: unexpected health reply"))
}

fn parse_health_reply(reply: &[u8]) -> Option<(usize, bool)> {
    #[derive(serde::Deserialize)]
    struct Health {
        calls: usize,
        // Absent from a pbxd older than the field: no emergency call known.
        #[serde(default)]
        emergency_calls: usize,
    }
    let text = std::str::from_utf8(reply).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status_ok = head
        .lines()
        .next()
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("200"));
    if !status_ok {
        return None;
    }
    serde_json::from_str::<Health>(body)
        .ok()
        .map(|h| (h.calls, h.emergency_calls > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_replies() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"status\":\"ok\",\"calls\":3,\"registrations\":1}";
        assert_eq!(parse_health_reply(ok), Some((3, false)));
        let emergency = b"HTTP/1.1 200 OK\r\n\r\n{\"calls\":2,\"emergency_calls\":1}";
        assert_eq!(parse_health_reply(emergency), Some((2, true)));
        assert_eq!(
            parse_health_reply(b"HTTP/1.1 503 Busy\r\n\r\n{\"calls\":0}"),
            None
        );
        assert_eq!(
            parse_health_reply(b"HTTP/1.1 200 OK\r\n\r\n{\"calls\":-1}"),
            None
        );
        assert_eq!(parse_health_reply(b"HTTP/1.1 200 OK\r\n\r\nnot json"), None);
        assert_eq!(parse_health_reply(b"garbage"), None);
    }

    #[test]
    fn nothing_listening_means_no_calls() {
        // Bind then drop to get a port that refuses.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind");
        assert_eq!(calls_in_progress(addr), Ok((0, false)));
    }
}
