//! Where the modem task's power switch comes from: the emulator's virtual pin under
//! `--hardware sim`, the board file's `modem-power` line under `--hardware board`, none
//! otherwise (recovery then stops at `ATZ`). A factory, because the supervisor restarts
//! the task and each run owns its switch.

use std::path::Path;
use std::sync::Arc;

use pbx_hal::fxs::board_devices::BoardDevices;
use pbx_hal::modem::emulator::PtyModem;
use pbx_hal::modem::power::{GpioPower, PowerSwitch};
use tracing::warn;

/// Makes a power switch for one run of the modem task.
pub type PowerFactory = Arc<dyn Fn() -> Option<Box<dyn PowerSwitch>> + Send + Sync>;

/// The emulated module's virtual power pin.
pub fn emulator(m: &PtyModem) -> PowerFactory {
    let pin = m.power_pin();
    Arc::new(move || Some(Box::new(GpioPower::new(pin.clone(), false)) as Box<dyn PowerSwitch>))
}

/// The board file's `modem-power` line, if it has one; a malformed line or a line that
/// does not open is an error naming the file and line.
pub fn board(path: &Path) -> anyhow::Result<Option<PowerFactory>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let devices =
        BoardDevices::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    devices
        .check_modem_power()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let Some((line, power)) = devices.modem_power else {
        return Ok(None);
    };
    open_line(path, line, &power)?;
    let path = path.to_owned();
    Ok(Some(Arc::new(move || {
        match open_line(&path, line, &power) {
            Ok(p) => Some(p),
            Err(e) => {
                warn!("{e}");
                None
            }
        }
    })))
}

fn open_line(
    path: &Path,
    line: usize,
    p: &pbx_hal::fxs::board_devices::ModemPowerLine,
) -> anyhow::Result<Box<dyn PowerSwitch>> {
    pbx_hal::fxs::linux::open_modem_power(p)
        .map(|s| Box::new(s) as Box<dyn PowerSwitch>)
        .map_err(|e| anyhow::anyhow!("{}: board file line {line}: {e}", path.display()))
}
