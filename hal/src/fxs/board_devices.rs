//! The device lines of a board file: which Linux devices each FXS port's SLIC sits on.
//! They share the file with the bring-up commands ([`crate::fxs::board_file`]), which
//! skips them.
//!
//! # Format
//! ```text
//! port N spi=/dev/spidevB.C irq=/dev/gpiochipK:LINE reset=/dev/gpiochipK:LINE [channel=CH]
//! pcm DEVICE        # the ALSA PCM of the SLICs' PCM highway (TDM), e.g. hw:0,0;
//!                   # `{port}` in it stands for the port number (one PCM per port)
//! modem-power /dev/gpiochipK:LINE [active-low]
//!                   # the GSM module's supply switch (high = on unless active-low);
//!                   # the modem recovery power-cycles the module through it
//! ```
//! `N` counts from 1, in order, without gaps; `channel` is the SLIC channel on a shared
//! chip select (default 0). `irq` is the SLIC's interrupt output (active low), `reset` its
//! reset input, as GPIO character-device lines. [`BoardDevices::check`] finds each
//! device before anything is driven, so a wrong path is reported with its line.

use std::path::{Path, PathBuf};

use crate::fxs::BoardFileError;

/// A GPIO character-device line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpioLine {
    /// The chip, e.g. `/dev/gpiochip0`.
    pub chip: PathBuf,
    /// The line offset on that chip.
    pub offset: u32,
}

/// One port's devices and the board-file line that named them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortDevices {
    /// 1-based line number in the board file.
    pub line: usize,
    /// spidev node.
    pub spi: PathBuf,
    /// SLIC channel on that chip select.
    pub channel: u8,
    /// Interrupt line.
    pub irq: GpioLine,
    /// Reset line.
    pub reset: GpioLine,
}

/// The device lines of a board file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardDevices {
    /// Ports in order (index 0 is port 1).
    pub ports: Vec<PortDevices>,
    /// The ALSA PCM name and its line.
    pub pcm: Option<(usize, String)>,
    /// The GSM module's power switch and its line.
    pub modem_power: Option<(usize, ModemPowerLine)>,
}

/// The GPIO line that switches the GSM module's supply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModemPowerLine {
    /// The line.
    pub gpio: GpioLine,
    /// Low switches the module on.
    pub active_low: bool,
}

fn modem_power_line(args: &[&str]) -> Result<ModemPowerLine, String> {
    let (gpio_arg, active_low) = match args {
        [g] => (g, false),
        [g, "active-low"] => (g, true),
        [_, other] => {
            return Err(format!(
                "expected `active-low` after the line, found `{other}`"
            ))
        }
        _ => {
            return Err(
                "`modem-power` takes CHIP:LINE and optionally `active-low`, e.g. \
                 modem-power /dev/gpiochip0:22"
                    .into(),
            )
        }
    };
    Ok(ModemPowerLine {
        gpio: gpio(gpio_arg, "modem-power")?,
        active_low,
    })
}

/// Whether `cmd` is a device line's keyword (the bring-up parser skips these).
#[must_use]
pub fn is_device_keyword(cmd: &str) -> bool {
    matches!(cmd, "port" | "pcm" | "modem-power")
}

fn gpio(value: &str, key: &str) -> Result<GpioLine, String> {
    let (chip, offset) = value.rsplit_once(':').ok_or_else(|| {
        format!("`{key}` must be CHIP:LINE, e.g. /dev/gpiochip0:17, got `{value}`")
    })?;
    let offset = offset
        .parse()
        .map_err(|_| format!("`{key}` line offset `{offset}` is not a number"))?;
    if chip.is_empty() {
        return Err(format!("`{key}` names no GPIO chip"));
    }
    Ok(GpioLine {
        chip: chip.into(),
        offset,
    })
}

fn port_line(n_expected: usize, args: &[&str], line: usize) -> Result<PortDevices, String> {
    let Some((n, rest)) = args.split_first() else {
        return Err("`port` needs a port number".into());
    };
    match n.parse::<usize>() {
        Ok(n) if n == n_expected => {}
        _ => return Err(format!("expected port {n_expected} here, found `{n}`")),
    }
    let (mut spi, mut irq, mut reset, mut channel) = (None, None, None, 0u8);
    for kv in rest {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("expected KEY=VALUE, found `{kv}`"))?;
        match k {
            "spi" => spi = Some(PathBuf::from(v)),
            "irq" => irq = Some(gpio(v, k)?),
            "reset" => reset = Some(gpio(v, k)?),
            "channel" => {
                channel = v
                    .parse()
                    .map_err(|_| format!("`channel` must be 0 to 255, got `{v}`"))?;
            }
            other => {
                return Err(format!(
                    "unknown key `{other}` (expected spi, irq, reset or channel)"
                ))
            }
        }
    }
    let need = |what: &str| format!("`port {n_expected}` needs {what}=");
    Ok(PortDevices {
        line,
        spi: spi.ok_or_else(|| need("spi"))?,
        channel,
        irq: irq.ok_or_else(|| need("irq"))?,
        reset: reset.ok_or_else(|| need("reset"))?,
    })
}

impl BoardDevices {
    /// The device lines of board file `text` (other lines are not looked at).
    pub fn parse(text: &str) -> Result<Self, BoardFileError> {
        let mut me = BoardDevices::default();
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let content = raw.split('#').next().unwrap_or_default();
            let words: Vec<&str> = content.split_whitespace().collect();
            let err = |msg: String| BoardFileError { line, msg };
            match words.split_first() {
                Some((&"port", args)) => me
                    .ports
                    .push(port_line(me.ports.len() + 1, args, line).map_err(err)?),
                Some((&"pcm", args)) => match args {
                    [dev] if me.pcm.is_none() => me.pcm = Some((line, (*dev).to_owned())),
                    [_] => return Err(err("a second `pcm` line".into())),
                    _ => return Err(err("`pcm` takes 1 argument (the ALSA PCM name)".into())),
                },
                Some((&"modem-power", args)) => {
                    if me.modem_power.is_some() {
                        return Err(err("a second `modem-power` line".into()));
                    }
                    me.modem_power = Some((line, modem_power_line(args).map_err(err)?));
                }
                _ => {}
            }
        }
        Ok(me)
    }

    /// Finds every device node the ports name; the first missing one is an error naming
    /// its line. The ALSA name is checked when the PCM opens.
    pub fn check(&self) -> Result<(), BoardFileError> {
        if self.ports.is_empty() {
            return Err(BoardFileError {
                line: 0,
                msg: "no `port` lines: the board file names no SLIC devices".into(),
            });
        }
        for p in &self.ports {
            for (what, path) in [
                ("spi", &p.spi),
                ("irq", &p.irq.chip),
                ("reset", &p.reset.chip),
            ] {
                present(path).map_err(|e| BoardFileError {
                    line: p.line,
                    msg: format!("{what} device {}: {e}", path.display()),
                })?;
            }
        }
        self.check_modem_power()
    }

    /// Finds the modem power line's GPIO chip (boards with a module but no ports use
    /// this alone).
    pub fn check_modem_power(&self) -> Result<(), BoardFileError> {
        if let Some((line, m)) = &self.modem_power {
            present(&m.gpio.chip).map_err(|e| BoardFileError {
                line: *line,
                msg: format!("modem-power device {}: {e}", m.gpio.chip.display()),
            })?;
        }
        Ok(())
    }
}

/// Opens the node read-write (as the driver will) and closes it again.
fn present(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
# two ports on one SPI bus
reg 0x0B 0x00
port 1 spi=/dev/spidev0.0 irq=/dev/gpiochip0:17 reset=/dev/gpiochip0:27
port 2 spi=/dev/spidev0.1 irq=/dev/gpiochip0:18 reset=/dev/gpiochip0:27 channel=1
pcm hw:0,0
modem-power /dev/gpiochip1:22 active-low
";

    #[test]
    fn device_lines_parse_and_bring_up_lines_are_left_alone() {
        let d = BoardDevices::parse(GOOD).unwrap();
        assert_eq!(d.ports.len(), 2);
        assert_eq!(d.ports[1].line, 4);
        assert_eq!(d.ports[1].spi, PathBuf::from("/dev/spidev0.1"));
        assert_eq!(d.ports[1].channel, 1);
        assert_eq!(
            d.ports[0].irq,
            GpioLine {
                chip: "/dev/gpiochip0".into(),
                offset: 17
            }
        );
        assert_eq!(d.pcm, Some((5, "hw:0,0".into())));
        assert_eq!(
            d.modem_power,
            Some((
                6,
                ModemPowerLine {
                    gpio: GpioLine {
                        chip: "/dev/gpiochip1".into(),
                        offset: 22
                    },
                    active_low: true
                }
            ))
        );
        let plain = BoardDevices::parse("modem-power /dev/gpiochip0:5").unwrap();
        assert_eq!(plain.modem_power.map(|(_, m)| m.active_low), Some(false));
        // The bring-up parser skips the device lines.
        let b = crate::fxs::BoardFile::parse(GOOD).unwrap();
        assert_eq!(b.entries().len(), 1);
    }

    #[test]
    fn bad_device_lines_name_their_line() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "port 2 spi=/dev/x irq=/dev/g:1 reset=/dev/g:2",
                1,
                "expected port 1 here, found `2`",
            ),
            (
                "port 1 spi=/dev/x irq=/dev/g reset=/dev/g:2",
                1,
                "`irq` must be CHIP:LINE",
            ),
            (
                "\nport 1 spi=/dev/x irq=/dev/g:1",
                2,
                "`port 1` needs reset=",
            ),
            (
                "port 1 spi=/dev/x irq=/dev/g:1 reset=/dev/g:2 cs=3",
                1,
                "unknown key `cs`",
            ),
            ("pcm", 1, "`pcm` takes 1 argument"),
            ("pcm a\npcm b", 2, "a second `pcm` line"),
            ("modem-power", 1, "`modem-power` takes CHIP:LINE"),
            ("modem-power /dev/g", 1, "`modem-power` must be CHIP:LINE"),
            (
                "modem-power /dev/g:1 active-high",
                1,
                "expected `active-low`",
            ),
            (
                "modem-power /dev/g:1\nmodem-power /dev/g:2",
                2,
                "a second `modem-power` line",
            ),
        ];
        for (text, line, msg) in cases {
            let e = BoardDevices::parse(text).unwrap_err();
            assert_eq!(e.line, *line, "{text}: {e}");
            assert!(e.msg.contains(msg), "{text}: {e}");
        }
    }

    #[test]
    fn a_missing_device_is_reported_with_its_line() {
        let text = "port 1 spi=/dev/null irq=/dev/null:1 reset=/dev/null:2\n\
                    port 2 spi=/dev/spidev9.9 irq=/dev/null:1 reset=/dev/null:2\n";
        let e = BoardDevices::parse(text).unwrap().check().unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.to_string()
                .starts_with("board file line 2: spi device /dev/spidev9.9: No such file"),
            "{e}"
        );
        assert!(BoardDevices::parse("reg 1 2").unwrap().check().is_err());
        let text = "port 1 spi=/dev/null irq=/dev/null:1 reset=/dev/null:2\n\
                    modem-power /dev/gpiochip99:3\n";
        let e = BoardDevices::parse(text).unwrap().check().unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(
            e.msg.starts_with("modem-power device /dev/gpiochip99"),
            "{e}"
        );
    }
}
