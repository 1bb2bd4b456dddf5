//! `--hardware board`: the board file's bring-up and device lines, checked at start so
//! that a malformed file or a missing device stops pbxd with the file and line; then the
//! ports, driven through the same port thread as `--hardware sim` ([`super::sim`]) with
//! real devices ([`BoardIo`]) in place of the emulator.
//!
//! At start, for port N (one per extension number, as with the emulator), pbxd opens the
//! spidev node and GPIO lines of the board file's `port N` line
//! (`pbx_hal::fxs::linux`) and the PCM of its `pcm NAME` line (`pbx_hal::audio::alsa`,
//! playback and capture; `{port}` in NAME is replaced by N, so that each port gets its
//! own timeslot PCM). A device that does not open stops pbxd naming the line. On the
//! ports thread each SLIC is then brought up with the board file's bring-up; a chip that
//! does not answer with its ID makes that port faulty and the others keep working.

use std::path::{Path, PathBuf};
use std::time::Duration;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;
use pbx_hal::fxs::board_devices::BoardDevices;
use pbx_hal::fxs::{BoardFile, BoardFileError, Slic};

pub use super::port_io::BoardIo;

/// A board file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BoardError {
    /// The file cannot be read.
    #[error("board file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A line is wrong or names a device that is not there.
    #[error("board file {}, line {}: {}", path.display(), error.line, error.msg)]
    Line {
        /// The file.
        path: PathBuf,
        /// The line and what is wrong with it.
        error: BoardFileError,
    },
    /// This pbxd has no ALSA backend (built without the `alsa` feature).
    #[error("board file {}: this pbxd is built without ALSA (feature `alsa`), so the ports' PCM cannot be opened", path.display())]
    NoAlsa {
        /// The file.
        path: PathBuf,
    },
    /// The ports thread cannot start.
    #[error("analog ports: {0}")]
    Start(#[from] std::io::Error),
}

/// A board file that parsed and whose devices are present.
#[derive(Debug, Clone)]
pub struct Board {
    /// The chips' bring-up.
    pub bring_up: BoardFile,
    /// Each port's devices and the PCM.
    pub devices: BoardDevices,
}

/// Reads and checks the board file at `path`.
pub fn open(path: &Path) -> Result<Board, BoardError> {
    let text = std::fs::read_to_string(path).map_err(|error| BoardError::Read {
        path: path.to_owned(),
        error,
    })?;
    let line = |error: BoardFileError| BoardError::Line {
        path: path.to_owned(),
        error,
    };
    let bring_up = BoardFile::parse(&text).map_err(line)?;
    let devices = BoardDevices::parse(&text).map_err(line)?;
    devices.check().map_err(line)?;
    Ok(Board { bring_up, devices })
}

/// The PCM name of port `port` (1-based): `{port}` in the board file's name replaced.
#[must_use]
pub fn pcm_name(name: &str, port: usize) -> String {
    name.replace("{port}", &port.to_string())
}

/// A delay that sleeps: the ports thread waits out the chip's reset and settling times.
#[derive(Debug, Clone, Copy, Default)]
pub struct SleepDelay;

impl DelayNs for SleepDelay {
    fn delay_ns(&mut self, ns: u32) {
        std::thread::sleep(Duration::from_nanos(u64::from(ns)));
    }
}

/// Brings a port's SLIC up with the board file's bring-up; the error (for `pbxctl
/// ports` and the health gate) when it does not answer.
pub fn bring_up<SPI, RST, INT, PinE, A>(
    io: BoardIo<Slic<SPI, RST, INT>, A>,
    bring_up: &BoardFile,
    delay: &mut impl DelayNs,
) -> Result<BoardIo<Slic<SPI, RST, INT>, A>, String>
where
    SPI: SpiDevice,
    RST: OutputPin<Error = PinE>,
    INT: InputPin<Error = PinE>,
    PinE: std::fmt::Debug,
{
    let BoardIo { mut slic, audio } = io;
    slic.init(delay, bring_up)
        .map_err(|e| format!("SLIC does not come up: {e}"))?;
    Ok(BoardIo { slic, audio })
}

/// The opened devices of a board's port, before bring-up.
#[cfg(feature = "alsa")]
pub type LinuxPortIo = BoardIo<pbx_hal::fxs::linux::LinuxSlic, pbx_hal::audio::alsa::AlsaAudio>;

/// Opens the SPI/GPIO devices and PCM of ports 1..=`n` (those the board file names);
/// an error names the board-file line.
#[cfg(feature = "alsa")]
pub fn open_devices(path: &Path, board: &Board, n: usize) -> Result<Vec<LinuxPortIo>, BoardError> {
    use pbx_hal::audio::alsa::AlsaAudio;
    use pbx_hal::audio::AudioConfig;

    let line = |error: BoardFileError| BoardError::Line {
        path: path.to_owned(),
        error,
    };
    let Some((pcm_line, pcm)) = &board.devices.pcm else {
        return Err(line(BoardFileError {
            line: 0,
            msg: "no `pcm` line: the board file names no PCM for the ports' audio".into(),
        }));
    };
    let mut out = Vec::new();
    for (i, dev) in board.devices.ports.iter().take(n).enumerate() {
        let slic = pbx_hal::fxs::linux::open_port(dev).map_err(line)?;
        let name = pcm_name(pcm, i + 1);
        let audio =
            AlsaAudio::open(Some(&name), Some(&name), AudioConfig::default()).map_err(|e| {
                line(BoardFileError {
                    line: *pcm_line,
                    msg: format!("port {}: {e}", i + 1),
                })
            })?;
        out.push(BoardIo { slic, audio });
    }
    Ok(out)
}

/// Starts the board's ports, one per extension number in `extensions`: opens their
/// devices here (an error stops pbxd naming the line), brings the SLICs up on the ports
/// thread and runs them there as [`super::sim`] runs the emulated ones.
pub fn spawn(
    path: &Path,
    board: &Board,
    extensions: &[String],
    relay_ip: std::net::IpAddr,
    sync: Option<super::ports_sync::PortsSync>,
) -> Result<super::sim::SimPorts, BoardError> {
    #[cfg(feature = "alsa")]
    {
        let opened = open_devices(path, board, extensions.len())?;
        let open = move |_now| opened.into_iter().map(Ok).collect();
        let ports = spawn_with(open, board.bring_up.clone(), extensions, relay_ip, sync)?;
        tracing::info!(ports = ports.specs.len(), board = %path.display(), "board analog ports started");
        Ok(ports)
    }
    #[cfg(not(feature = "alsa"))]
    {
        let _ = (board, extensions, relay_ip, sync);
        Err(BoardError::NoAlsa {
            path: path.to_owned(),
        })
    }
}

/// The ports thread of [`spawn`] with the devices `open` gives (it runs on that thread;
/// an `Err` is a faulty port): brings each SLIC up with `bring`, marks the ports without a
/// `port` line faulty, and runs them. Tests inject the emulated chip here.
pub fn spawn_with<SPI, RST, INT, PinE, A, F>(
    open: F,
    bring: BoardFile,
    extensions: &[String],
    relay_ip: std::net::IpAddr,
    sync: Option<super::ports_sync::PortsSync>,
) -> std::io::Result<super::sim::SimPorts>
where
    F: FnOnce(std::time::Instant) -> Vec<Result<BoardIo<Slic<SPI, RST, INT>, A>, String>>
        + Send
        + 'static,
    SPI: SpiDevice + 'static,
    RST: OutputPin<Error = PinE> + 'static,
    INT: InputPin<Error = PinE> + 'static,
    PinE: std::fmt::Debug + 'static,
    A: pbx_hal::audio::AudioPort + 'static,
    A::Error: std::fmt::Display,
{
    let n = extensions.len();
    let open = move |now| {
        let mut ports: Vec<Result<_, String>> = open(now)
            .into_iter()
            .map(|io| io.and_then(|io| bring_up(io, &bring, &mut SleepDelay)))
            .collect();
        for p in ports.len() + 1..=n {
            ports.push(Err(format!("the board file has no `port {p}` line")));
        }
        ports
    };
    super::sim::spawn_ports(extensions, relay_ip, sync, open, |_| {})
}
