//! Errors of the SLIC driver.

use crate::fxs::board_file::BoardFileError;

/// SLIC driver error. Keeps the bus and pin errors as they came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error<SpiE, PinE> {
    /// The SPI device failed.
    #[error("SPI error: {0:?}")]
    Spi(SpiE),
    /// The reset or IRQ pin failed.
    #[error("GPIO error: {0:?}")]
    Pin(PinE),
    /// The ID register did not read [`CHIP_ID`](super::regs::CHIP_ID): no chip, a
    /// different chip, or a dead bus (0x00/0xFF). Mark the port faulty.
    #[error("wrong chip ID {found:#04x} (expected {:#04x})", super::regs::CHIP_ID)]
    WrongChipId {
        /// What the ID register read.
        found: u8,
    },
    /// The indirect RAM stayed busy for [`RAM_POLL_LIMIT`](super::regs::RAM_POLL_LIMIT) polls.
    #[error("indirect RAM access to {addr:#06x} timed out")]
    RamTimeout {
        /// RAM address being accessed.
        addr: u16,
    },
    /// The board file asks for something this chip must not do.
    #[error(transparent)]
    BoardFile(BoardFileError),
    /// The ring cadence does not fit the chip's 16-bit 8 kHz timers, or has no burst.
    #[error("ring cadence {on_ms} ms on / {off_ms} ms off not supported (1..=8191 ms on, 0..=8191 ms off)")]
    InvalidCadence {
        /// Requested burst, ms.
        on_ms: u128,
        /// Requested pause, ms.
        off_ms: u128,
    },
    /// A PCM timeslot beyond the chip's 10-bit bit offset.
    #[error("PCM timeslot {timeslot} out of range (max {})", super::regs::PCM_MAX_OFFSET / 8)]
    InvalidTimeslot {
        /// Requested timeslot.
        timeslot: u16,
    },
}
