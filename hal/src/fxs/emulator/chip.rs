//! The virtual chip's state: registers, line state machine, ring timers, indirect RAM,
//! and the byte-level framing of the register protocol.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use embedded_hal::spi::{self, ErrorKind};

use crate::fxs::slic::regs::*;

/// One write the chip saw, for asserts on bring-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChipWrite {
    /// A direct register write (indirect-RAM access registers are logged as [`ChipWrite::Ram`]).
    Reg {
        /// Register address.
        addr: u8,
        /// Value written.
        value: u8,
    },
    /// A completed indirect RAM write.
    Ram {
        /// RAM address.
        addr: u16,
        /// Value written.
        value: u32,
    },
    /// The reset pin was released after being held low.
    HardReset,
}

/// Bus error injected with [`VirtualSlic::fail_next_transaction`](super::VirtualSlic::fail_next_transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualSpiError(pub ErrorKind);

impl spi::Error for VirtualSpiError {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

/// Bytes of the current chip-select frame.
#[derive(Default)]
pub(super) struct Frame {
    pos: usize,
    ctl: u8,
    addr: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RamBusy {
    Idle,
    Polls(u32),
    Stuck,
}

pub(super) struct Chip {
    now: Instant,
    pub(super) channel: u8,
    pub(super) id: u8,
    regs: [u8; 256],
    in_reset: bool,
    pub(super) ram: BTreeMap<u16, u32>,
    ram_write_armed: bool,
    pub(super) ram_busy_polls: Option<u32>,
    ram_busy: RamBusy,
    phone_off_hook: bool,
    lcr: bool,
    rtp: bool,
    irq1: u8,
    ring_started: Option<Instant>,
    ring_transitions: u64,
    schedule: VecDeque<(Instant, bool)>,
    pub(super) log: Vec<ChipWrite>,
    pub(super) fail_next: Option<ErrorKind>,
    pub(super) protocol_errors: u32,
}

impl Chip {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            now,
            channel: 0,
            id: CHIP_ID,
            regs: [0; 256],
            in_reset: false,
            ram: BTreeMap::new(),
            ram_write_armed: false,
            ram_busy_polls: Some(2),
            ram_busy: RamBusy::Idle,
            phone_off_hook: false,
            lcr: false,
            rtp: false,
            irq1: 0,
            ring_started: None,
            ring_transitions: 0,
            schedule: VecDeque::new(),
            log: Vec::new(),
            fail_next: None,
            protocol_errors: 0,
        }
    }

    /// Power-on state of everything but the phone and the log.
    fn reset_registers(&mut self) {
        self.regs = [0; 256];
        self.ram.clear();
        self.ram_write_armed = false;
        self.ram_busy = RamBusy::Idle;
        self.lcr = false;
        self.rtp = false;
        self.irq1 = 0;
        self.ring_started = None;
        self.ring_transitions = 0;
    }

    pub(crate) fn set_reset_pin(&mut self, high: bool) {
        if !high {
            self.in_reset = true;
        } else if self.in_reset {
            self.in_reset = false;
            self.reset_registers();
            self.log.push(ChipWrite::HardReset);
        }
    }

    pub(crate) fn irq_asserted(&self) -> bool {
        !self.in_reset && self.irq1 & self.regs[Register::IrqEn1.addr() as usize] != 0
    }

    fn requested(&self) -> LinefeedCode {
        LinefeedCode::from_bits(self.regs[Register::Linefeed.addr() as usize])
    }

    fn reg16(&self, lo: Register) -> u64 {
        let lo = lo.addr() as usize;
        u64::from(u16::from_le_bytes([self.regs[lo], self.regs[lo + 1]]))
    }

    /// Ring burst and pause lengths when the cadence timers run, else `None` (continuous).
    fn cadence(&self) -> Option<(Duration, Duration)> {
        let con = self.regs[Register::RingCon.addr() as usize];
        let tick = |t: u64| Duration::from_micros(t * 1_000_000 / u64::from(RING_TICKS_PER_SEC));
        let (ta, ti) = (
            self.reg16(Register::RingTaLo),
            self.reg16(Register::RingTiLo),
        );
        let enabled = con & (RINGCON_TA_EN | RINGCON_TI_EN) == RINGCON_TA_EN | RINGCON_TI_EN;
        (enabled && ta > 0 && ti > 0).then(|| (tick(ta), tick(ti)))
    }

    /// Cadence edges since ringing started at `at` (odd count = in a pause).
    fn transitions_at(&self, at: Instant) -> u64 {
        let (Some(start), Some((on, off))) = (self.ring_started, self.cadence()) else {
            return 0;
        };
        let elapsed = at.saturating_duration_since(start).as_micros();
        let period = (on + off).as_micros();
        let periods = (elapsed / period) as u64;
        periods * 2 + u64::from(elapsed % period >= on.as_micros())
    }

    /// The state the line is really in.
    pub(crate) fn actual(&self) -> LinefeedCode {
        match self.requested() {
            LinefeedCode::Ringing if self.transitions_at(self.now) % 2 == 1 => {
                LinefeedCode::ForwardOht
            }
            LinefeedCode::Ringing => LinefeedCode::Ringing,
            lf if self.regs[Register::PolRev.addr() as usize] & POLREV_REV != 0 => lf.reversed(),
            lf => lf,
        }
    }

    fn advance_ring_to(&mut self, at: Instant) {
        if at > self.now {
            self.now = at;
        }
        let transitions = self.transitions_at(self.now);
        for edge in self.ring_transitions + 1..=transitions {
            self.irq1 |= if edge % 2 == 1 {
                IRQ1_RING_TA
            } else {
                IRQ1_RING_TI
            };
        }
        self.ring_transitions = self.ring_transitions.max(transitions);
    }

    /// Run scheduled hook changes and the ring timers up to `now` (never backwards).
    pub(crate) fn advance(&mut self, now: Instant) {
        while let Some(&(at, off_hook)) = self.schedule.front() {
            if at > now {
                break;
            }
            self.schedule.pop_front();
            self.advance_ring_to(at);
            self.set_hook(off_hook);
        }
        self.advance_ring_to(now);
    }

    pub(crate) fn schedule_hook(&mut self, at: Instant, off_hook: bool) {
        let idx = self.schedule.partition_point(|&(t, _)| t <= at);
        self.schedule.insert(idx, (at, off_hook));
    }

    pub(crate) fn next_change(&self) -> Option<Instant> {
        self.schedule.front().map(|&(t, _)| t)
    }

    pub(crate) fn phone_off_hook(&self) -> bool {
        self.phone_off_hook
    }

    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    fn set_hook(&mut self, off_hook: bool) {
        self.phone_off_hook = off_hook;
        if self.in_reset {
            return;
        }
        if off_hook && self.requested() == LinefeedCode::Ringing {
            // Ring trip: the chip stops ringing and feeds the line by itself.
            self.regs[Register::Linefeed.addr() as usize] = LinefeedCode::ForwardActive as u8;
            self.ring_started = None;
            self.rtp = true;
            self.lcr = true;
            self.irq1 |= IRQ1_RING_TRIP;
            return;
        }
        self.update_loop();
    }

    /// Loop closure is only detected with a feed on and not while ringing.
    fn update_loop(&mut self) {
        let requested = self.requested();
        if requested == LinefeedCode::Ringing {
            return;
        }
        let detected = self.phone_off_hook && requested != LinefeedCode::Open;
        if detected != self.lcr {
            self.lcr = detected;
            self.irq1 |= IRQ1_HOOK;
        }
    }

    /// Register value as the driver would read it, without read side effects.
    pub(crate) fn peek(&self, addr: u8) -> u8 {
        match addr {
            a if a == Register::Id.addr() => self.id,
            a if a == Register::Irq1.addr() => self.irq1,
            a if a == Register::Lcrrtp.addr() => {
                (if self.lcr { LCRRTP_LCR } else { 0 }) | if self.rtp { LCRRTP_RTP } else { 0 }
            }
            a if a == Register::Linefeed.addr() => {
                self.requested() as u8 | (self.actual() as u8) << 4
            }
            a if a == Register::RamStat.addr() => {
                if self.ram_busy == RamBusy::Idle {
                    0
                } else {
                    RAMSTAT_BUSY
                }
            }
            a => self.regs[a as usize],
        }
    }

    fn read(&mut self, addr: u8) -> u8 {
        let value = self.peek(addr);
        if addr == Register::Irq1.addr() {
            self.irq1 = 0;
        } else if addr == Register::RamStat.addr() {
            self.ram_busy = match self.ram_busy {
                RamBusy::Polls(n) if n > 1 => RamBusy::Polls(n - 1),
                RamBusy::Polls(_) => RamBusy::Idle,
                other => other,
            };
        }
        value
    }

    fn write(&mut self, addr: u8, value: u8) {
        use Register as R;
        let ram_regs = [
            R::RamAddrHi,
            R::RamData0,
            R::RamData1,
            R::RamData2,
            R::RamData3,
            R::RamAddrLo,
        ];
        if !ram_regs.iter().any(|r| r.addr() == addr) {
            self.log.push(ChipWrite::Reg { addr, value });
        }
        match addr {
            a if a == R::Id.addr() || a == R::Irq1.addr() || a == R::Lcrrtp.addr() => {}
            a if a == R::Reset.addr() => {
                if value & RESET_SOFT != 0 {
                    self.reset_registers();
                }
            }
            a if a == R::Linefeed.addr() => {
                self.regs[a as usize] = value & 0x07;
                self.rtp = false;
                self.ring_transitions = 0;
                self.ring_started = (self.requested() == LinefeedCode::Ringing).then_some(self.now);
                self.update_loop();
            }
            a if (R::RamData0.addr()..=R::RamData3.addr()).contains(&a) => {
                self.regs[a as usize] = value;
                self.ram_write_armed = true;
            }
            a if a == R::RamAddrLo.addr() => {
                self.regs[a as usize] = value;
                self.start_ram_access();
            }
            a => self.regs[a as usize] = value,
        }
    }

    fn start_ram_access(&mut self) {
        let ram_addr = u16::from_le_bytes([
            self.regs[Register::RamAddrLo.addr() as usize],
            self.regs[Register::RamAddrHi.addr() as usize],
        ]);
        let data = Register::RamData0.addr() as usize..=Register::RamData3.addr() as usize;
        if std::mem::take(&mut self.ram_write_armed) {
            let mut bytes = [0u8; 4];
            bytes.copy_from_slice(&self.regs[data]);
            let value = u32::from_le_bytes(bytes);
            self.ram.insert(ram_addr, value);
            self.log.push(ChipWrite::Ram {
                addr: ram_addr,
                value,
            });
        } else {
            let value = self.ram.get(&ram_addr).copied().unwrap_or(0);
            self.regs[data].copy_from_slice(&value.to_le_bytes());
        }
        self.ram_busy = match self.ram_busy_polls {
            Some(0) => RamBusy::Idle,
            Some(n) => RamBusy::Polls(n),
            None => RamBusy::Stuck,
        };
    }

    /// One byte on the bus: returns MISO for this byte.
    pub(super) fn exchange(&mut self, frame: &mut Frame, mosi: u8) -> u8 {
        let pos = frame.pos;
        frame.pos += 1;
        if self.in_reset {
            return 0xFF;
        }
        match pos {
            0 => frame.ctl = mosi,
            1 => frame.addr = mosi,
            2 => {
                let for_us = frame.ctl & CTL_CHANNEL_MASK == self.channel;
                let read = frame.ctl & CTL_READ != 0;
                let broadcast = frame.ctl & CTL_BROADCAST != 0;
                match (read, broadcast) {
                    (true, true) => self.protocol_errors += 1,
                    (true, false) if for_us => return self.read(frame.addr),
                    (false, _) if for_us || broadcast => self.write(frame.addr, mosi),
                    _ => {}
                }
            }
            _ => {}
        }
        0xFF
    }

    pub(super) fn end_frame(&mut self, frame: &Frame) {
        if frame.pos != 0 && frame.pos != 3 {
            self.protocol_errors += 1;
        }
    }
}
