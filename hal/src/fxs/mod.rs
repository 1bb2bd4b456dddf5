//! Analog phone ports (FXS).
//!
//! - [`port`]: the [`FxsPort`] trait the line logic uses: timestamped hook and ring-trip
//!   events, linefeed states, ring cadence, polarity, PCM set-up.
//! - [`slic`]: the driver for a ProSLIC-class SLIC ([`Slic`]), generic over embedded-hal;
//!   its register protocol is documented in [`slic::regs`].
//! - [`board_file`]: the vendor bring-up sequence as a text file.
//! - `linux` (feature `linux`): the driver on spidev and GPIO character-device lines.
//! - [`emulator`]: a virtual chip speaking the same SPI protocol, with a virtual phone, so
//!   the real driver runs in tests.

pub mod board_devices;
pub mod board_file;
pub mod emulator;
#[cfg(feature = "linux")]
pub mod linux;
pub mod port;
pub mod slic;

pub use board_file::{BoardFile, BoardFileError};
pub use port::{FxsEvent, FxsPort, HookState, Linefeed, PcmCodec, PcmConfig, RingCadence};
pub use slic::Slic;
