//! [`VirtualSlic`]: the virtual chip as an embedded-hal `SpiDevice`, plus its test API.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use embedded_hal::spi::{self, ErrorKind, Operation, SpiDevice};

use super::chip::{Chip, ChipWrite, Frame, VirtualSpiError};
use crate::fxs::slic::regs::{LinefeedCode, Register, CTL_CHANNEL_MASK};

/// The virtual chip, as an [`SpiDevice`]. Clones are handles to the same chip; the pins
/// and the phone come from [`irq_pin`](Self::irq_pin), [`reset_pin`](Self::reset_pin) and
/// [`phone`](Self::phone). Single-threaded (`Rc<RefCell<..>>`).
///
/// Simulated time: the chip's clock moves only through [`advance`](Self::advance) (or the
/// phone's methods); bus accesses happen at the chip's current time.
#[derive(Clone)]
pub struct VirtualSlic {
    pub(super) state: Rc<RefCell<Chip>>,
}

impl VirtualSlic {
    /// A chip on channel 0 answering [`CHIP_ID`](crate::fxs::slic::regs::CHIP_ID), its
    /// clock starting at `now`, powered up (registers at reset values, linefeed open).
    pub fn new(now: Instant) -> Self {
        Self {
            state: Rc::new(RefCell::new(Chip::new(now))),
        }
    }

    /// Make the ID register read `id` (to emulate a wrong or missing chip).
    pub fn set_chip_id(&self, id: u8) {
        self.state.borrow_mut().id = id;
    }

    /// Answer on `channel` (0..=15) instead of 0.
    pub fn set_channel(&self, channel: u8) {
        self.state.borrow_mut().channel = channel & CTL_CHANNEL_MASK;
    }

    /// How many RAMSTAT reads show busy after each RAM access; `None`: busy forever.
    pub fn set_ram_busy_polls(&self, polls: Option<u32>) {
        self.state.borrow_mut().ram_busy_polls = polls;
    }

    /// Fail the next SPI transaction with `kind` (it has no effect on the chip).
    pub fn fail_next_transaction(&self, kind: ErrorKind) {
        self.state.borrow_mut().fail_next = Some(kind);
    }

    /// Move simulated time to `now`: run scheduled hook changes and ring timers.
    /// Earlier times are ignored (time never goes back).
    pub fn advance(&self, now: Instant) {
        self.state.borrow_mut().advance(now);
    }

    /// The chip's simulated time.
    pub fn now(&self) -> Instant {
        self.state.borrow().now()
    }

    /// A register as the driver would read it, without side effects (IRQ1 is not cleared).
    pub fn register(&self, reg: Register) -> u8 {
        self.state.borrow().peek(reg.addr())
    }

    /// An indirect RAM word, if written since reset.
    pub fn ram(&self, addr: u16) -> Option<u32> {
        self.state.borrow().ram.get(&addr).copied()
    }

    /// Every register write, RAM write and hard reset so far, in order.
    pub fn writes(&self) -> Vec<ChipWrite> {
        self.state.borrow().log.clone()
    }

    /// Malformed frames seen (too short, too long, broadcast read).
    pub fn protocol_errors(&self) -> u32 {
        self.state.borrow().protocol_errors
    }

    /// The actual line state.
    pub fn linefeed(&self) -> LinefeedCode {
        self.state.borrow().actual()
    }
}

impl spi::ErrorType for VirtualSlic {
    type Error = VirtualSpiError;
}

impl SpiDevice for VirtualSlic {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), Self::Error> {
        let mut chip = self.state.borrow_mut();
        if let Some(kind) = chip.fail_next.take() {
            return Err(VirtualSpiError(kind));
        }
        let mut frame = Frame::default();
        for op in operations.iter_mut() {
            match op {
                Operation::Write(bytes) => {
                    for &b in bytes.iter() {
                        chip.exchange(&mut frame, b);
                    }
                }
                Operation::Read(buf) => {
                    for b in buf.iter_mut() {
                        *b = chip.exchange(&mut frame, 0x00);
                    }
                }
                Operation::Transfer(read, write) => {
                    for i in 0..read.len().max(write.len()) {
                        let miso = chip.exchange(&mut frame, write.get(i).copied().unwrap_or(0));
                        if let Some(r) = read.get_mut(i) {
                            *r = miso;
                        }
                    }
                }
                Operation::TransferInPlace(buf) => {
                    for b in buf.iter_mut() {
                        *b = chip.exchange(&mut frame, *b);
                    }
                }
                Operation::DelayNs(_) => {}
            }
        }
        chip.end_frame(&frame);
        Ok(())
    }
}
