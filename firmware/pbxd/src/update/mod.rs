//! Firmware updates: install a signed bundle into the inactive slot, gate the new slot on
//! health after boot, and fall back when it is not healthy.
//!
//! - [`Installer`]: the install/status/mark operations, with the RAUC backend in
//!   [`rauc`] (D-Bus, `de.pengutronix.rauc.Installer`).
//! - [`policy`]: whether an install may start now (calls, emergency, maintenance window).
//! - [`health`]: the sans-IO health gate after boot; [`task`] drives it.
//! - [`hawkbit`]: the hawkBit DDI API, sans-IO; [`hawkbit_client`] its HTTP shell and
//!   poll cycle; [`task::run_hawkbit`] the daemon's poll loop.
//! - [`cli`]: `pbxctl update install FILE | status`.
//!
//! RAUC verifies the signature and the compatible string before it writes anything;
//! pbxd does not parse bundles itself, it surfaces RAUC's verdict.

use std::future::Future;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub mod cli;
pub mod hawkbit;
pub mod hawkbit_client;
pub mod health;
pub mod policy;
pub mod rauc;
pub mod switch;
pub mod task;
pub mod trunk_check;

pub use policy::{InstallContext, InstallPolicy, MaintenanceWindow, Refusal};

/// The SIP task's live call counts, as the update tasks read them.
#[derive(Debug, Clone, Default)]
pub struct CallsUp {
    /// Calls in progress.
    pub all: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Emergency calls among them.
    pub emergency: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CallsUp {
    /// Calls in progress now.
    pub fn count(&self) -> usize {
        self.all.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether an emergency call is up now.
    pub fn emergency(&self) -> bool {
        self.emergency.load(std::sync::atomic::Ordering::Relaxed) > 0
    }
}

/// Progress of an install as RAUC reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// 0 to 100.
    pub percent: u8,
    /// What RAUC is doing, e.g. "Copying image to rootfs.1".
    pub message: String,
    /// Nesting depth of the step (1 is the whole install).
    pub depth: u32,
}

/// A successful install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The slot the bootloader will boot next (RAUC `GetPrimary`), if RAUC told.
    pub primary: Option<String>,
}

/// A slot's boot status as the bootloader keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BootStatus {
    /// Bootable.
    Good,
    /// Not bootable (marked bad, or out of boot attempts).
    Bad,
}

/// One slot as RAUC sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotStatus {
    /// Slot name, e.g. `rootfs.1`.
    pub name: String,
    /// Slot class, e.g. `rootfs`.
    pub class: String,
    /// Device (or file) path.
    pub device: String,
    /// The bootloader's name for it (`A`, `B`).
    pub bootname: Option<String>,
    /// `booted`, `active` or `inactive`.
    pub state: String,
    /// Boot status, for bootable slots.
    pub boot_status: Option<BootStatus>,
    /// Version of the bundle last installed into it.
    pub bundle_version: Option<String>,
    /// When that bundle was installed (RFC 3339).
    pub installed_at: Option<String>,
    /// SHA-256 of the image written.
    pub sha256: Option<String>,
}

/// The installer's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateStatus {
    /// `idle` or `installing`.
    pub operation: String,
    /// Progress of the current or last install.
    pub progress: Progress,
    /// Why the last install failed, if it did.
    pub last_error: Option<String>,
    /// The system's compatible string (bundles must match it).
    pub compatible: String,
    /// The bootname of the slot we booted from.
    pub boot_slot: String,
    /// The slot the bootloader boots next (none if every slot is bad).
    pub primary: Option<String>,
    /// Every slot.
    pub slots: Vec<SlotStatus>,
}

/// The state to mark a slot with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkState {
    /// Bootable; resets its boot attempts.
    Good,
    /// Not bootable: the bootloader falls back to the other slot.
    Bad,
    /// Make it the primary (boot it next).
    Active,
}

impl MarkState {
    fn as_rauc(self) -> &'static str {
        match self {
            MarkState::Good => "good",
            MarkState::Bad => "bad",
            MarkState::Active => "active",
        }
    }
}

/// Which slot to mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotRef {
    /// The slot we booted from.
    Booted,
    /// The other slot of the booted one's class.
    Other,
    /// A slot by name (`rootfs.1`).
    Named(String),
}

impl SlotRef {
    fn as_rauc(&self) -> &str {
        match self {
            SlotRef::Booted => "booted",
            SlotRef::Other => "other",
            SlotRef::Named(n) => n,
        }
    }
}

/// The answer to a mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked {
    /// The slot that was marked.
    pub slot: String,
    /// RAUC's message, e.g. "marked slot rootfs.1 as good".
    pub message: String,
}

/// Why an update operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// Refused before the installer was asked.
    #[error("update refused: {0}")]
    Refused(#[from] Refusal),
    /// The bundle file cannot be used (missing, unreadable, odd path).
    #[error("bundle {path}: {reason}")]
    Bundle {
        /// The path given.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// RAUC ran the install and refused or failed it: bad signature, wrong compatible,
    /// damaged bundle, write error. `message` is RAUC's `LastError`.
    #[error("installation failed: {message}")]
    InstallFailed {
        /// RAUC's result code (non-zero).
        code: i32,
        /// RAUC's explanation.
        message: String,
    },
    /// The RAUC service left the bus during an install.
    #[error("the update service stopped during the installation")]
    ServiceGone,
    /// A D-Bus call failed (bus unreachable, RAUC not running or busy).
    #[error("update service: {call}: {message}")]
    Bus {
        /// The call or step, e.g. "InstallBundle".
        call: &'static str,
        /// The bus's or service's error text.
        message: String,
    },
    /// Updates are switched off (`--update-backend none`).
    #[error("updates are disabled on this system")]
    Disabled,
}

/// Installs bundles into the inactive slot and marks slots; one backend per update system.
pub trait Installer: Send + Sync {
    /// Installs `bundle`, calling `on_progress` as the installer reports progress, and
    /// returns when the install has completed or failed.
    fn install(
        &self,
        bundle: &Path,
        on_progress: impl FnMut(&Progress) + Send,
    ) -> impl Future<Output = Result<Installed, UpdateError>> + Send;

    /// The installer's and the slots' state.
    fn status(&self) -> impl Future<Output = Result<UpdateStatus, UpdateError>> + Send;

    /// Marks `slot` with `state`.
    fn mark(
        &self,
        state: MarkState,
        slot: SlotRef,
    ) -> impl Future<Output = Result<Marked, UpdateError>> + Send;
}

/// Which update system the daemon talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum UpdateBackend {
    /// No update system (development hosts, test rigs): no health gate, installs refused.
    #[default]
    None,
    /// RAUC over D-Bus (the firmware image).
    Rauc,
}

/// The daemon's update settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateConfig {
    /// The update system.
    pub backend: UpdateBackend,
    /// Where RAUC's D-Bus service is.
    pub bus: rauc::Bus,
    /// When unforced installs may start.
    pub policy: InstallPolicy,
    /// The health gate's time limit after start.
    pub health_limit: std::time::Duration,
    /// Where the gate writes its verdict for `boot-complete.target` (e.g. /run/pbxd/health).
    pub verdict_file: Option<PathBuf>,
    /// The command that reboots after a bad verdict, program first.
    pub reboot_command: Vec<String>,
    /// The hawkBit server to poll, if any.
    pub hawkbit: Option<hawkbit::DdiConfig>,
    /// When to reboot into an installed update by ourselves (`None`: at the next restart).
    pub switch: Option<switch::SwitchConfig>,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            backend: UpdateBackend::None,
            bus: rauc::Bus::System,
            policy: InstallPolicy::default(),
            health_limit: std::time::Duration::from_secs(120),
            verdict_file: None,
            reboot_command: vec!["systemctl".to_owned(), "reboot".to_owned()],
            hawkbit: None,
            switch: Some(switch::SwitchConfig::default()),
        }
    }
}
