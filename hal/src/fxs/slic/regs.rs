//! The "Si3217x-like" SPI register protocol spoken by [`Slic`](super::Slic) and by the
//! emulator ([`VirtualSlic`](crate::fxs::emulator::VirtualSlic)).
//!
//! # Framing
//! Every register access is one chip-select frame (one `SpiDevice` transaction):
//!
//! ```text
//! write:  MOSI  [control] [address] [data]
//! read:   MOSI  [control] [address] [  xx ]
//!         MISO  [  xx   ] [  xx   ] [data ]
//! ```
//! The control byte: bit 7 = read (1) / write (0), bit 6 = broadcast (write to every
//! channel; reads must not set it), bits 5..4 = 0, bits 3..0 = channel (0..=15). There is
//! no auto-increment: one register per frame; extra bytes are ignored by the chip.
//! The driver issues a write as `[Write([ctl, addr, data])]` and a read as
//! `[Write([ctl, addr]), Read([data])]`.
//!
//! # Registers
//! See [`Register`] for addresses. Notable rules:
//! - [`Register::Id`] reads [`CHIP_ID`] after reset.
//! - [`Register::Linefeed`]: bits 2..0 = requested state, bits 6..4 = actual state (read
//!   only), coded as [`LinefeedCode`]. While ringing with the cadence timers enabled,
//!   the actual state alternates between `Ringing` and `ForwardOht`. The actual state
//!   applies [`Register::PolRev`]: a requested forward state reads back as its reverse.
//! - [`Register::Irq1`]: interrupt status, **cleared on read** (one read both fetches and
//!   acknowledges). Status bits latch whether or not they are enabled; the IRQ pin
//!   (active low) is asserted while `IRQ1 & IRQEN1 != 0`. Bits: [`IRQ1_HOOK`] (loop
//!   closure changed), [`IRQ1_RING_TRIP`], [`IRQ1_RING_TA`] (a ring burst ended),
//!   [`IRQ1_RING_TI`] (a ring pause ended).
//! - [`Register::Lcrrtp`]: real-time status: [`LCRRTP_LCR`] loop closed (off-hook, only
//!   detected when the feed is not `Open`), [`LCRRTP_RTP`] ring trip seen since the last
//!   LINEFEED write. A ring trip makes the chip switch the requested linefeed to
//!   `ForwardActive` by itself and raises [`IRQ1_RING_TRIP`] (not [`IRQ1_HOOK`]).
//! - Ring cadence: [`Register::RingTaLo`]/[`Register::RingTaHi`] (burst) and
//!   [`Register::RingTiLo`]/[`Register::RingTiHi`] (pause) in 8 kHz ticks (125 µs),
//!   little-endian 16-bit; [`Register::RingCon`] enables them ([`RINGCON_TA_EN`],
//!   [`RINGCON_TI_EN`]); with both off, `Ringing` rings continuously.
//! - PCM: [`Register::PcmMode`] = [`PCMMODE_EN`] | format ([`PCM_FMT_ALAW`],
//!   [`PCM_FMT_ULAW`], [`PCM_FMT_LINEAR16`]); `PCMTX`/`PCMRX` LO/HI hold the 10-bit
//!   offset in PCLK bits from frame sync (timeslot × 8).
//! - Indirect RAM (32-bit words, 16-bit addresses): a write is `RAMADDRHI`, `RAMDATA0..3`
//!   (little-endian), then `RAMADDRLO`; writing any data byte arms a write, and the write
//!   to `RAMADDRLO` starts the access (a write if armed, else a read that loads
//!   `RAMDATA0..3`). [`RAMSTAT_BUSY`] in [`Register::RamStat`] is set until the access
//!   completes; the driver polls it at most [`RAM_POLL_LIMIT`] times.
//! - [`Register::Reset`]: writing [`RESET_SOFT`] resets the channel's registers.

/// Value of [`Register::Id`] for the chip this driver supports.
pub const CHIP_ID: u8 = 0xC3;

/// Control byte bit: this frame is a read.
pub const CTL_READ: u8 = 0x80;
/// Control byte bit: write to all channels.
pub const CTL_BROADCAST: u8 = 0x40;
/// Control byte: channel mask.
pub const CTL_CHANNEL_MASK: u8 = 0x0F;

/// Typed register addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Register {
    /// Chip identification (read only).
    Id = 0x00,
    /// Soft reset.
    Reset = 0x01,
    /// Indirect RAM status.
    RamStat = 0x04,
    /// Indirect RAM address, bits 15..8.
    RamAddrHi = 0x05,
    /// Indirect RAM data, bits 7..0.
    RamData0 = 0x06,
    /// Indirect RAM data, bits 15..8.
    RamData1 = 0x07,
    /// Indirect RAM data, bits 23..16.
    RamData2 = 0x08,
    /// Indirect RAM data, bits 31..24.
    RamData3 = 0x09,
    /// Indirect RAM address, bits 7..0; writing it starts the access.
    RamAddrLo = 0x0A,
    /// PCM enable and format.
    PcmMode = 0x0B,
    /// Transmit offset, bits 7..0.
    PcmTxLo = 0x0C,
    /// Transmit offset, bits 9..8.
    PcmTxHi = 0x0D,
    /// Receive offset, bits 7..0.
    PcmRxLo = 0x0E,
    /// Receive offset, bits 9..8.
    PcmRxHi = 0x0F,
    /// Interrupt status 1 (clear on read).
    Irq1 = 0x12,
    /// Interrupt enable 1.
    IrqEn1 = 0x16,
    /// Ring cadence timer enables.
    RingCon = 0x17,
    /// Polarity reversal.
    PolRev = 0x1D,
    /// Linefeed: requested (2..0) and actual (6..4) state.
    Linefeed = 0x1E,
    /// Real-time loop-closure / ring-trip status.
    Lcrrtp = 0x22,
    /// Ring burst length, low byte (8 kHz ticks).
    RingTaLo = 0x30,
    /// Ring burst length, high byte.
    RingTaHi = 0x31,
    /// Ring pause length, low byte (8 kHz ticks).
    RingTiLo = 0x32,
    /// Ring pause length, high byte.
    RingTiHi = 0x33,
}

impl Register {
    /// The register's address byte.
    pub fn addr(self) -> u8 {
        self as u8
    }

    /// Whether the driver owns this register at run time, so a board file must not write it
    /// (the driver's shadow copy would go stale).
    pub fn is_driver_owned(addr: u8) -> bool {
        [
            Register::Id,
            Register::Reset,
            Register::Irq1,
            Register::IrqEn1,
            Register::PolRev,
            Register::Linefeed,
        ]
        .iter()
        .any(|r| r.addr() == addr)
    }
}

/// [`Register::Reset`]: soft reset.
pub const RESET_SOFT: u8 = 0x01;
/// [`Register::RamStat`]: an indirect RAM access is in progress.
pub const RAMSTAT_BUSY: u8 = 0x01;
/// How many times the driver reads [`Register::RamStat`] before giving up.
pub const RAM_POLL_LIMIT: u32 = 1000;

/// [`Register::Irq1`]: loop closure changed (hook switch).
pub const IRQ1_HOOK: u8 = 0x01;
/// [`Register::Irq1`]: ring trip (off-hook while ringing).
pub const IRQ1_RING_TRIP: u8 = 0x02;
/// [`Register::Irq1`]: ring burst timer expired.
pub const IRQ1_RING_TA: u8 = 0x04;
/// [`Register::Irq1`]: ring pause timer expired.
pub const IRQ1_RING_TI: u8 = 0x08;

/// [`Register::Lcrrtp`]: loop closed (off-hook).
pub const LCRRTP_LCR: u8 = 0x01;
/// [`Register::Lcrrtp`]: ring trip detected since the last LINEFEED write.
pub const LCRRTP_RTP: u8 = 0x02;

/// [`Register::PolRev`]: reverse the polarity of active and on-hook-transmission feeds.
pub const POLREV_REV: u8 = 0x01;

/// [`Register::RingCon`]: enable the ring burst timer.
pub const RINGCON_TA_EN: u8 = 0x01;
/// [`Register::RingCon`]: enable the ring pause timer.
pub const RINGCON_TI_EN: u8 = 0x02;

/// [`Register::PcmMode`]: enable the PCM interface.
pub const PCMMODE_EN: u8 = 0x10;
/// [`Register::PcmMode`] format: G.711 A-law.
pub const PCM_FMT_ALAW: u8 = 0x00;
/// [`Register::PcmMode`] format: G.711 µ-law.
pub const PCM_FMT_ULAW: u8 = 0x01;
/// [`Register::PcmMode`] format: 16-bit linear.
pub const PCM_FMT_LINEAR16: u8 = 0x03;
/// Largest PCM offset in PCLK bits (10 bits).
pub const PCM_MAX_OFFSET: u16 = 0x3FF;

/// Ticks of the ring timers per second (8 kHz).
pub const RING_TICKS_PER_SEC: u32 = 8000;

/// The eight linefeed codes of [`Register::Linefeed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LinefeedCode {
    /// 0: open.
    Open = 0,
    /// 1: forward active.
    ForwardActive = 1,
    /// 2: forward on-hook transmission.
    ForwardOht = 2,
    /// 3: tip open.
    TipOpen = 3,
    /// 4: ringing.
    Ringing = 4,
    /// 5: reverse active.
    ReverseActive = 5,
    /// 6: reverse on-hook transmission.
    ReverseOht = 6,
    /// 7: ring open.
    RingOpen = 7,
}

impl LinefeedCode {
    /// Decode the low three bits of `bits`.
    pub fn from_bits(bits: u8) -> Self {
        match bits & 0x07 {
            0 => Self::Open,
            1 => Self::ForwardActive,
            2 => Self::ForwardOht,
            3 => Self::TipOpen,
            4 => Self::Ringing,
            5 => Self::ReverseActive,
            6 => Self::ReverseOht,
            _ => Self::RingOpen,
        }
    }

    /// The same feed with the other polarity (states without polarity map to themselves).
    pub fn reversed(self) -> Self {
        match self {
            Self::ForwardActive => Self::ReverseActive,
            Self::ReverseActive => Self::ForwardActive,
            Self::ForwardOht => Self::ReverseOht,
            Self::ReverseOht => Self::ForwardOht,
            other => other,
        }
    }

    /// Whether this feed has reversed polarity.
    pub fn is_reverse(self) -> bool {
        matches!(self, Self::ReverseActive | Self::ReverseOht)
    }
}

impl From<crate::fxs::port::Linefeed> for LinefeedCode {
    fn from(lf: crate::fxs::port::Linefeed) -> Self {
        use crate::fxs::port::Linefeed;
        match lf {
            Linefeed::Open => Self::Open,
            Linefeed::ForwardActive => Self::ForwardActive,
            Linefeed::ReverseActive => Self::ReverseActive,
            Linefeed::OnHookTransmission => Self::ForwardOht,
            Linefeed::Ringing => Self::Ringing,
        }
    }
}
