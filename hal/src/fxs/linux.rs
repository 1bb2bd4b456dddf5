//! The SLIC on Linux: its spidev node and GPIO character-device lines through
//! `linux-embedded-hal` (feature `linux`, on by default), opened from a board file's
//! `port` line ([`crate::fxs::board_devices`]).
//!
//! The bus runs in SPI mode 3 (CPOL = CPHA = 1, as ProSLIC-class chips sample) at
//! [`SPI_HZ`]; the kernel's spidev drives chip select per transaction. The IRQ line is
//! requested as a plain input (the driver reads the active-low level itself), the reset
//! line as an output that starts high (chip running until `Slic::init` pulses it).

use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
use linux_embedded_hal::{CdevPin, SpidevDevice};

use crate::fxs::board_devices::{GpioLine, ModemPowerLine, PortDevices};
use crate::fxs::{BoardFileError, Slic};
use crate::modem::power::GpioPower;

/// SPI clock: well inside the chips' limit, and fast enough for 1 ms IRQ polling.
pub const SPI_HZ: u32 = 4_000_000;
/// The consumer name the GPIO lines are requested under (shown by `gpioinfo`).
pub const GPIO_CONSUMER: &str = "pbxd";

/// The driver on real devices.
pub type LinuxSlic = Slic<SpidevDevice, CdevPin, CdevPin>;

/// Opens the port's spidev node and GPIO lines and returns its driver (not yet
/// initialised), set to the port's channel. An error names the board-file line and the
/// device, e.g. a path that exists but is no spidev.
pub fn open_port(port: &PortDevices) -> Result<LinuxSlic, BoardFileError> {
    let err = |msg: String| BoardFileError {
        line: port.line,
        msg,
    };
    let spi_path = port.spi.display();
    let mut spi = SpidevDevice::open(&port.spi)
        .map_err(|e| err(format!("spi device {spi_path}: {}", e.inner())))?;
    let options = SpidevOptions::new()
        .bits_per_word(8)
        .max_speed_hz(SPI_HZ)
        .mode(SpiModeFlags::SPI_MODE_3)
        .build();
    spi.0
        .configure(&options)
        .map_err(|e| err(format!("spi device {spi_path} is not a usable spidev: {e}")))?;
    let irq = gpio(&port.irq, LineRequestFlags::INPUT, 0)
        .map_err(|e| err(format!("irq line {}: {e}", describe(&port.irq))))?;
    let reset = gpio(&port.reset, LineRequestFlags::OUTPUT, 1)
        .map_err(|e| err(format!("reset line {}: {e}", describe(&port.reset))))?;
    Ok(Slic::new(spi, reset, irq).with_channel(port.channel))
}

/// Opens the GSM module's power line (`modem-power` in the board file) as an output that
/// starts with the module on.
pub fn open_modem_power(p: &ModemPowerLine) -> Result<GpioPower<CdevPin>, String> {
    let on = u8::from(!p.active_low);
    let pin = gpio(&p.gpio, LineRequestFlags::OUTPUT, on)
        .map_err(|e| format!("modem-power line {}: {e}", describe(&p.gpio)))?;
    Ok(GpioPower::new(pin, p.active_low))
}

fn describe(line: &GpioLine) -> String {
    format!("{}:{}", line.chip.display(), line.offset)
}

fn gpio(
    line: &GpioLine,
    flags: LineRequestFlags,
    default: u8,
) -> Result<CdevPin, linux_embedded_hal::gpio_cdev::Error> {
    let mut chip = Chip::new(&line.chip)?;
    let handle = chip
        .get_line(line.offset)?
        .request(flags, default, GPIO_CONSUMER)?;
    CdevPin::new(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(spi: &str, irq: &str) -> PortDevices {
        PortDevices {
            line: 7,
            spi: spi.into(),
            channel: 0,
            irq: GpioLine {
                chip: irq.into(),
                offset: 3,
            },
            reset: GpioLine {
                chip: irq.into(),
                offset: 4,
            },
        }
    }

    #[test]
    fn a_node_that_is_no_spidev_is_an_error_naming_the_line() {
        let e = open_port(&port("/dev/null", "/dev/null")).err().unwrap();
        assert_eq!(e.line, 7);
        assert!(
            e.msg
                .starts_with("spi device /dev/null is not a usable spidev: "),
            "{e}"
        );
    }

    #[test]
    fn a_node_that_is_no_gpio_chip_is_an_error() {
        let line = GpioLine {
            chip: "/dev/null".into(),
            offset: 3,
        };
        let e = gpio(&line, LineRequestFlags::INPUT, 0).err().unwrap();
        assert!(!e.to_string().is_empty());
    }

    #[test]
    fn a_missing_spi_node_is_an_error_naming_the_line() {
        let e = open_port(&port("/dev/spidev9.9", "/dev/null"))
            .err()
            .unwrap();
        assert_eq!(e.line, 7);
        assert!(
            e.msg.starts_with("spi device /dev/spidev9.9: No such file"),
            "{e}"
        );
    }
}
