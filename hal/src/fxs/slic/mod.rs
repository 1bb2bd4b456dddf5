//! Driver for a ProSLIC-class SLIC speaking the [`regs`] protocol, generic over
//! embedded-hal 1.0 (`SpiDevice`, reset `OutputPin`, IRQ `InputPin`), so the same code
//! runs on Linux (`linux-embedded-hal`) and against the [emulator](crate::fxs::emulator).
//!
//! The run loop, here against the emulator (on the board: linux-embedded-hal's
//! `SpidevDevice` and `CdevPin`):
//! ```
//! use std::time::{Duration, Instant};
//! use pbx_hal::fxs::emulator::VirtualSlic;
//! use pbx_hal::fxs::{BoardFile, FxsEvent, FxsPort, Slic};
//! # struct NoDelay;
//! # impl embedded_hal::delay::DelayNs for NoDelay { fn delay_ns(&mut self, _: u32) {} }
//! # #[allow(clippy::disallowed_methods)]
//! let t0 = Instant::now(); // shells pass tokio's clock in; the driver never reads it
//! let chip = VirtualSlic::new(t0);
//! let phone = chip.phone();
//! let mut slic = Slic::new(chip.clone(), chip.reset_pin(), chip.irq_pin());
//! // A wrong ID register gives `Error::WrongChipId`: mark the port faulty.
//! slic.init(&mut NoDelay, &BoardFile::parse("ram 0x0600 0x1\n")?)?;
//!
//! phone.off_hook(t0 + Duration::from_millis(20));
//! let now = t0 + Duration::from_millis(21); // the IRQ handler runs
//! while let Some(event) = slic.poll_event(now)? {
//!     assert_eq!(event, FxsEvent::HookChanged { off_hook: true, at: now });
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
pub mod regs;

use std::collections::VecDeque;
use std::time::Instant;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::{Operation, SpiDevice};

pub use self::error::Error;
use self::regs::*;
use crate::fxs::board_file::{BoardCommand, BoardFile, BoardFileError};
use crate::fxs::port::{FxsEvent, FxsPort, HookState, Linefeed, PcmCodec, PcmConfig, RingCadence};

/// How long reset is held low, ms.
pub const RESET_HOLD_MS: u32 = 1;
/// How long to wait after releasing reset before the first access, ms.
pub const RESET_SETTLE_MS: u32 = 10;
/// Interrupts the driver enables after bring-up.
pub const IRQ1_ENABLED: u8 = IRQ1_HOOK | IRQ1_RING_TRIP;

/// Copies of the control registers, so they are never read back
/// (as in lsm303agr's `device_impl.rs`).
#[derive(Debug, Clone, Copy)]
struct Shadow {
    linefeed: Linefeed,
    /// Linefeed to return to when ringing stops.
    before_ringing: Linefeed,
    irq_enable: u8,
    polrev: u8,
    hook: HookState,
}

/// A SLIC channel.
#[derive(Debug)]
pub struct Slic<SPI, RST, INT> {
    spi: SPI,
    reset: RST,
    irq: INT,
    channel: u8,
    shadow: Shadow,
    pending: VecDeque<FxsEvent>,
}

type Result<T, SPI, PinE> =
    core::result::Result<T, Error<<SPI as embedded_hal::spi::ErrorType>::Error, PinE>>;

impl<SPI, RST, INT, PinE> Slic<SPI, RST, INT>
where
    SPI: SpiDevice,
    RST: OutputPin<Error = PinE>,
    INT: InputPin<Error = PinE>,
{
    /// A driver for channel 0 on `spi`. Touches no hardware until [`init`](Self::init).
    pub fn new(spi: SPI, reset: RST, irq: INT) -> Self {
        Self {
            spi,
            reset,
            irq,
            channel: 0,
            shadow: Self::new_shadow(),
            pending: VecDeque::new(),
        }
    }

    /// Use channel `channel` (0..=15) of a multi-channel chip.
    pub fn with_channel(mut self, channel: u8) -> Self {
        self.channel = channel & CTL_CHANNEL_MASK;
        self
    }

    /// Hand back the bus and pins.
    pub fn destroy(self) -> (SPI, RST, INT) {
        (self.spi, self.reset, self.irq)
    }

    /// Bring the chip up: pulse reset, check the ID, run the board file, enable the hook
    /// and ring-trip interrupts and switch to [`Linefeed::ForwardActive`].
    pub fn init(&mut self, delay: &mut impl DelayNs, board: &BoardFile) -> Result<(), SPI, PinE> {
        self.reset.set_low().map_err(Error::Pin)?;
        delay.delay_ms(RESET_HOLD_MS);
        self.reset.set_high().map_err(Error::Pin)?;
        delay.delay_ms(RESET_SETTLE_MS);
        self.shadow = Self::new_shadow();
        self.pending.clear();

        self.check_id()?;
        for entry in board.entries() {
            match entry.command {
                BoardCommand::Reg { addr, .. } if Register::is_driver_owned(addr) => {
                    return Err(Error::BoardFile(BoardFileError {
                        line: entry.line,
                        msg: format!("register {addr:#04x} is controlled by the driver"),
                    }));
                }
                BoardCommand::Reg { addr, value } => self.write_raw(addr, value)?,
                BoardCommand::Ram { addr, value } => self.write_ram(addr, value)?,
                BoardCommand::Delay { ms } => delay.delay_ms(ms),
            }
        }
        // Acknowledge anything latched during bring-up (IRQ1 clears on read).
        self.read_register(Register::Irq1)?;
        self.write_register(Register::IrqEn1, IRQ1_ENABLED)?;
        self.shadow.irq_enable = IRQ1_ENABLED;
        self.set_linefeed(Linefeed::ForwardActive)
    }

    fn new_shadow() -> Shadow {
        Shadow {
            linefeed: Linefeed::Open,
            before_ringing: Linefeed::ForwardActive,
            irq_enable: 0,
            polrev: 0,
            hook: HookState::OnHook,
        }
    }

    /// Read the ID register; [`Error::WrongChipId`] unless it is [`CHIP_ID`].
    pub fn check_id(&mut self) -> Result<(), SPI, PinE> {
        match self.read_register(Register::Id)? {
            CHIP_ID => Ok(()),
            found => Err(Error::WrongChipId { found }),
        }
    }

    /// Read a register (one frame: control, address, then one byte in).
    pub fn read_register(&mut self, reg: Register) -> Result<u8, SPI, PinE> {
        let mut buf = [0u8];
        self.spi
            .transaction(&mut [
                Operation::Write(&[CTL_READ | self.channel, reg.addr()]),
                Operation::Read(&mut buf),
            ])
            .map_err(Error::Spi)?;
        Ok(buf[0])
    }

    /// Write a register (one frame: control, address, data).
    pub fn write_register(&mut self, reg: Register, value: u8) -> Result<(), SPI, PinE> {
        self.write_raw(reg.addr(), value)
    }

    fn write_raw(&mut self, addr: u8, value: u8) -> Result<(), SPI, PinE> {
        self.spi
            .transaction(&mut [Operation::Write(&[self.channel, addr, value])])
            .map_err(Error::Spi)
    }

    /// Write an indirect RAM word and wait until the chip has stored it.
    pub fn write_ram(&mut self, addr: u16, value: u32) -> Result<(), SPI, PinE> {
        let [lo, hi] = addr.to_le_bytes();
        let [b0, b1, b2, b3] = value.to_le_bytes();
        self.write_register(Register::RamAddrHi, hi)?;
        self.write_register(Register::RamData0, b0)?;
        self.write_register(Register::RamData1, b1)?;
        self.write_register(Register::RamData2, b2)?;
        self.write_register(Register::RamData3, b3)?;
        self.write_register(Register::RamAddrLo, lo)?;
        self.wait_ram(addr)
    }

    /// Read an indirect RAM word.
    pub fn read_ram(&mut self, addr: u16) -> Result<u32, SPI, PinE> {
        let [lo, hi] = addr.to_le_bytes();
        self.write_register(Register::RamAddrHi, hi)?;
        self.write_register(Register::RamAddrLo, lo)?;
        self.wait_ram(addr)?;
        let mut bytes = [0u8; 4];
        for (byte, reg) in bytes.iter_mut().zip([
            Register::RamData0,
            Register::RamData1,
            Register::RamData2,
            Register::RamData3,
        ]) {
            *byte = self.read_register(reg)?;
        }
        Ok(u32::from_le_bytes(bytes))
    }

    fn wait_ram(&mut self, addr: u16) -> Result<(), SPI, PinE> {
        for _ in 0..RAM_POLL_LIMIT {
            if self.read_register(Register::RamStat)? & RAMSTAT_BUSY == 0 {
                return Ok(());
            }
        }
        Err(Error::RamTimeout { addr })
    }

    /// The actual line state the chip reports (LINEFEED bits 6..4), e.g. to see the
    /// ring cadence or a ring-trip transition.
    pub fn actual_linefeed(&mut self) -> Result<LinefeedCode, SPI, PinE> {
        Ok(LinefeedCode::from_bits(
            self.read_register(Register::Linefeed)? >> 4,
        ))
    }

    /// The linefeed last requested (shadow; no bus access).
    pub fn linefeed(&self) -> Linefeed {
        self.shadow.linefeed
    }

    /// Whether polarity reversal is on (shadow; no bus access).
    pub fn polarity_reversed(&self) -> bool {
        self.shadow.polrev & POLREV_REV != 0
    }

    /// The interrupt enables last written (shadow; no bus access).
    pub fn irq_enable(&self) -> u8 {
        self.shadow.irq_enable
    }

    /// Read and acknowledge IRQ1 and queue the events it reports, stamped `now`.
    fn service_irq(&mut self, now: Instant) -> Result<(), SPI, PinE> {
        let status = self.read_register(Register::Irq1)?;
        if status & IRQ1_RING_TRIP != 0 {
            // The chip has already dropped to forward active on its own.
            self.shadow.linefeed = Linefeed::ForwardActive;
            self.shadow.hook = HookState::OffHook;
            self.pending.push_back(FxsEvent::RingTripped { at: now });
        }
        if status & IRQ1_HOOK != 0 {
            let off_hook = self.read_register(Register::Lcrrtp)? & LCRRTP_LCR != 0;
            let was_off = self.shadow.hook == HookState::OffHook;
            if off_hook == was_off {
                // Two transitions latched before we got here (a short break or a
                // glitch): report both rather than lose a pulse.
                self.pending.push_back(FxsEvent::HookChanged {
                    off_hook: !off_hook,
                    at: now,
                });
            }
            self.pending
                .push_back(FxsEvent::HookChanged { off_hook, at: now });
            self.shadow.hook = if off_hook {
                HookState::OffHook
            } else {
                HookState::OnHook
            };
        }
        Ok(())
    }

    fn ring_ticks(cadence: RingCadence) -> Option<(u16, u16)> {
        let to_ticks = |d: std::time::Duration| {
            u16::try_from(d.as_micros() * u128::from(RING_TICKS_PER_SEC) / 1_000_000).ok()
        };
        let on = to_ticks(cadence.on).filter(|&t| t > 0)?;
        Some((on, to_ticks(cadence.off)?))
    }

    fn pcm_offset(timeslot: u16) -> Option<u16> {
        timeslot.checked_mul(8).filter(|&o| o <= PCM_MAX_OFFSET)
    }
}

impl<SPI, RST, INT, PinE> FxsPort for Slic<SPI, RST, INT>
where
    SPI: SpiDevice,
    RST: OutputPin<Error = PinE>,
    INT: InputPin<Error = PinE>,
{
    type Error = Error<SPI::Error, PinE>;

    fn poll_event(&mut self, now: Instant) -> core::result::Result<Option<FxsEvent>, Self::Error> {
        if self.pending.is_empty() && self.irq.is_low().map_err(Error::Pin)? {
            self.service_irq(now)?;
        }
        Ok(self.pending.pop_front())
    }

    fn set_linefeed(&mut self, linefeed: Linefeed) -> core::result::Result<(), Self::Error> {
        self.write_register(Register::Linefeed, LinefeedCode::from(linefeed) as u8)?;
        self.shadow.linefeed = linefeed;
        Ok(())
    }

    fn start_ringing(&mut self, cadence: RingCadence) -> core::result::Result<(), Self::Error> {
        let (on, off) = Self::ring_ticks(cadence).ok_or(Error::InvalidCadence {
            on_ms: cadence.on.as_millis(),
            off_ms: cadence.off.as_millis(),
        })?;
        let [on_lo, on_hi] = on.to_le_bytes();
        let [off_lo, off_hi] = off.to_le_bytes();
        self.write_register(Register::RingTaLo, on_lo)?;
        self.write_register(Register::RingTaHi, on_hi)?;
        self.write_register(Register::RingTiLo, off_lo)?;
        self.write_register(Register::RingTiHi, off_hi)?;
        let ringcon = if off == 0 {
            0
        } else {
            RINGCON_TA_EN | RINGCON_TI_EN
        };
        self.write_register(Register::RingCon, ringcon)?;
        if self.shadow.linefeed != Linefeed::Ringing {
            self.shadow.before_ringing = self.shadow.linefeed;
        }
        self.set_linefeed(Linefeed::Ringing)
    }

    fn stop_ringing(&mut self) -> core::result::Result<(), Self::Error> {
        self.set_linefeed(self.shadow.before_ringing)?;
        self.write_register(Register::RingCon, 0)
    }

    fn set_polarity(&mut self, reversed: bool) -> core::result::Result<(), Self::Error> {
        let polrev = if reversed { POLREV_REV } else { 0 };
        self.write_register(Register::PolRev, polrev)?;
        self.shadow.polrev = polrev;
        Ok(())
    }

    fn configure_pcm(&mut self, config: PcmConfig) -> core::result::Result<(), Self::Error> {
        let offset =
            |timeslot| Self::pcm_offset(timeslot).ok_or(Error::InvalidTimeslot { timeslot });
        let [tx_lo, tx_hi] = offset(config.timeslot_tx)?.to_le_bytes();
        let [rx_lo, rx_hi] = offset(config.timeslot_rx)?.to_le_bytes();
        let format = match config.codec {
            PcmCodec::ALaw => PCM_FMT_ALAW,
            PcmCodec::MuLaw => PCM_FMT_ULAW,
            PcmCodec::Linear16 => PCM_FMT_LINEAR16,
        };
        self.write_register(Register::PcmTxLo, tx_lo)?;
        self.write_register(Register::PcmTxHi, tx_hi)?;
        self.write_register(Register::PcmRxLo, rx_lo)?;
        self.write_register(Register::PcmRxHi, rx_hi)?;
        self.write_register(Register::PcmMode, PCMMODE_EN | format)
    }

    fn hook_state(&self) -> HookState {
        self.shadow.hook
    }
}
