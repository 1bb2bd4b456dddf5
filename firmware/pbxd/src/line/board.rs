//! `--hardware board`: the board file's bring-up and device lines, checked at start so
//! that a malformed file or a missing device stops pbxd with the file and line.
//!
//! Not yet here: driving the devices (spidev and GPIO lines through
//! `linux-embedded-hal`, the PCM highway through `pbx_hal::audio::alsa`). The port shell
//! of `--hardware sim` ([`super::sim`]) runs the real driver against the emulated chip;
//! the board's shell is the same with these devices in place of the emulator.

use std::path::{Path, PathBuf};

use pbx_hal::fxs::board_devices::BoardDevices;
use pbx_hal::fxs::{BoardFile, BoardFileError};

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
