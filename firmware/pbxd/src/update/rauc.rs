//! The RAUC backend: `de.pengutronix.rauc.Installer` over D-Bus (zbus on tokio).
//!
//! RAUC itself verifies the bundle's signature against its keyring and its compatible
//! string against `system.conf` before it writes anything; this backend surfaces RAUC's
//! verdict (`LastError`) as [`UpdateError::InstallFailed`].

use std::collections::HashMap;
use std::path::Path;

use futures_util::StreamExt;
use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedValue, Value};

use super::{
    BootStatus, Installed, Installer, MarkState, Marked, Progress, SlotRef, SlotStatus,
    UpdateError, UpdateStatus,
};

const SERVICE: &str = "de.pengutronix.rauc";
const INTERFACE: &str = "de.pengutronix.rauc.Installer";

#[zbus::proxy(
    interface = "de.pengutronix.rauc.Installer",
    default_service = "de.pengutronix.rauc",
    default_path = "/",
    gen_blocking = false
)]
trait RaucInstaller {
    fn install_bundle(&self, source: &str, args: HashMap<&str, Value<'_>>) -> zbus::Result<()>;
    fn mark(&self, state: &str, slot_identifier: &str) -> zbus::Result<(String, String)>;
    fn get_slot_status(&self) -> zbus::Result<Vec<(String, HashMap<String, OwnedValue>)>>;
    fn get_primary(&self) -> zbus::Result<String>;
    #[zbus(signal)]
    fn completed(&self, result: i32) -> zbus::Result<()>;
    #[zbus(property)]
    fn operation(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn last_error(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn progress(&self) -> zbus::Result<(i32, String, i32)>;
    #[zbus(property)]
    fn compatible(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn boot_slot(&self) -> zbus::Result<String>;
}

/// Which bus the RAUC service is on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Bus {
    /// The system bus (honours `DBUS_SYSTEM_BUS_ADDRESS`), as on the box.
    #[default]
    System,
    /// A bus at this D-Bus address, e.g. `unix:path=/tmp/x/bus` (tests, development).
    Address(String),
}

/// [`Installer`] backed by the RAUC service.
#[derive(Debug, Clone)]
pub struct RaucInstaller {
    // Properties are read uncached: RAUC sets LastError just before it emits Completed,
    // and a cache fed by PropertiesChanged could still hold the old value then.
    proxy: RaucInstallerProxy<'static>,
    props: zbus::fdo::PropertiesProxy<'static>,
}

fn bus_err(call: &'static str) -> impl Fn(zbus::Error) -> UpdateError {
    move |e| UpdateError::Bus {
        call,
        message: match &e {
            zbus::Error::MethodError(name, Some(text), _) => format!("{}: {text}", name.as_str()),
            _ => e.to_string(),
        },
    }
}

impl RaucInstaller {
    /// Connects to the RAUC service on `bus`. Fails if the bus is unreachable; a RAUC
    /// service that is not (yet) running shows up on the first call.
    pub async fn connect(bus: &Bus) -> Result<Self, UpdateError> {
        let conn = match bus {
            Bus::System => zbus::Connection::system().await,
            Bus::Address(addr) => match zbus::connection::Builder::address(addr.as_str()) {
                Ok(b) => b.build().await,
                Err(e) => Err(e),
            },
        }
        .map_err(bus_err("connect"))?;
        let proxy = RaucInstallerProxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(bus_err("connect"))?;
        let props = zbus::fdo::PropertiesProxy::builder(&conn)
            .destination(SERVICE)
            .and_then(|b| b.path("/"))
            .map_err(bus_err("connect"))?
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(bus_err("connect"))?;
        Ok(RaucInstaller { proxy, props })
    }

    async fn read_progress(&self) -> Result<Progress, UpdateError> {
        let p = self.proxy.progress().await.map_err(bus_err("Progress"))?;
        Ok(Progress::from_rauc(p))
    }
}

impl Progress {
    fn from_rauc((percent, message, depth): (i32, String, i32)) -> Self {
        Progress {
            percent: u8::try_from(percent.clamp(0, 100)).unwrap_or(0),
            message,
            depth: u32::try_from(depth).unwrap_or(0),
        }
    }
}

fn string_of(map: &HashMap<String, OwnedValue>, key: &str) -> Option<String> {
    map.get(key).and_then(|v| match &**v {
        Value::Str(s) => Some(s.as_str().to_owned()),
        _ => None,
    })
}

fn slot_from_rauc(name: String, map: &HashMap<String, OwnedValue>) -> SlotStatus {
    SlotStatus {
        class: string_of(map, "class").unwrap_or_default(),
        device: string_of(map, "device").unwrap_or_default(),
        bootname: string_of(map, "bootname"),
        state: string_of(map, "state").unwrap_or_default(),
        boot_status: string_of(map, "boot-status").and_then(|s| match s.as_str() {
            "good" => Some(BootStatus::Good),
            "bad" => Some(BootStatus::Bad),
            _ => None,
        }),
        bundle_version: string_of(map, "bundle.version"),
        installed_at: string_of(map, "installed.timestamp"),
        sha256: string_of(map, "sha256"),
        name,
    }
}

impl Installer for RaucInstaller {
    async fn install(
        &self,
        bundle: &Path,
        mut on_progress: impl FnMut(&Progress) + Send,
    ) -> Result<Installed, UpdateError> {
        // The service resolves paths in its own working directory: hand it an absolute one.
        let abs = std::fs::canonicalize(bundle).map_err(|e| UpdateError::Bundle {
            path: bundle.to_path_buf(),
            reason: e.to_string(),
        })?;
        let source = abs.to_str().ok_or_else(|| UpdateError::Bundle {
            path: bundle.to_path_buf(),
            reason: "path is not UTF-8".to_owned(),
        })?;
        // Subscribe before starting so neither the end nor the service's exit is missed.
        let mut completed = self
            .proxy
            .receive_completed()
            .await
            .map_err(bus_err("subscribe Completed"))?;
        let mut changes = self
            .props
            .receive_properties_changed()
            .await
            .map_err(bus_err("subscribe PropertiesChanged"))?;
        let mut owner = self
            .proxy
            .inner()
            .receive_owner_changed()
            .await
            .map_err(bus_err("subscribe NameOwnerChanged"))?;
        self.proxy
            .install_bundle(source, HashMap::new())
            .await
            .map_err(bus_err("InstallBundle"))?;
        loop {
            tokio::select! {
                Some(signal) = completed.next() => {
                    let code = signal.args().map_err(bus_err("Completed"))?.result;
                    if code == 0 {
                        let primary = self.proxy.get_primary().await.ok();
                        return Ok(Installed { primary });
                    }
                    let message = self.proxy.last_error().await.map_err(bus_err("LastError"))?;
                    return Err(UpdateError::InstallFailed { code, message });
                }
                Some(change) = changes.next() => {
                    let Ok(args) = change.args() else { continue };
                    if args.interface_name.as_str() != INTERFACE {
                        continue;
                    }
                    if let Some(v) = args.changed_properties.get("Progress") {
                        if let Ok(p) = <(i32, String, i32)>::try_from(v.clone()) {
                            on_progress(&Progress::from_rauc(p));
                        }
                    }
                }
                Some(new_owner) = owner.next() => {
                    if new_owner.is_none() {
                        return Err(UpdateError::ServiceGone);
                    }
                }
                else => return Err(UpdateError::ServiceGone),
            }
        }
    }

    async fn status(&self) -> Result<UpdateStatus, UpdateError> {
        let slots = self
            .proxy
            .get_slot_status()
            .await
            .map_err(bus_err("GetSlotStatus"))?
            .into_iter()
            .map(|(name, map)| slot_from_rauc(name, &map))
            .collect();
        let last_error = self
            .proxy
            .last_error()
            .await
            .map_err(bus_err("LastError"))?;
        Ok(UpdateStatus {
            operation: self.proxy.operation().await.map_err(bus_err("Operation"))?,
            progress: self.read_progress().await?,
            last_error: (!last_error.is_empty()).then_some(last_error),
            compatible: self
                .proxy
                .compatible()
                .await
                .map_err(bus_err("Compatible"))?,
            boot_slot: self.proxy.boot_slot().await.map_err(bus_err("BootSlot"))?,
            // No primary is a state, not an error (every slot marked bad).
            primary: self.proxy.get_primary().await.ok(),
            slots,
        })
    }

    async fn mark(&self, state: MarkState, slot: SlotRef) -> Result<Marked, UpdateError> {
        let (slot, message) = self
            .proxy
            .mark(state.as_rauc(), slot.as_rauc())
            .await
            .map_err(bus_err("Mark"))?;
        Ok(Marked { slot, message })
    }
}
