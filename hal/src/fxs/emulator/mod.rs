//! An emulated SLIC: a virtual chip that speaks the [`regs`](crate::fxs::slic::regs) SPI
//! protocol as an embedded-hal [`SpiDevice`](embedded_hal::spi::SpiDevice), its IRQ and
//! reset pins, and a virtual phone on its line. The real [`Slic`](crate::fxs::Slic)
//! driver runs against it in tests: hardware in the loop without hardware.
//!
//! Modelled: register file and ID; LINEFEED requested vs actual state (polarity reversal,
//! ring cadence); loop-closure detection (only with a feed on) and IRQ1 bits (clear on
//! read) driving the IRQ pin; ring timers following simulated time; ring trip (off-hook
//! while ringing drops the line to forward active); indirect RAM with a busy bit that
//! clears after a configurable number of polls (or never); hard reset through the pin;
//! injected bus errors; a log of writes.
//!
//! ```
//! # use std::time::{Duration, Instant};
//! # use pbx_hal::fxs::emulator::VirtualSlic;
//! # #[allow(clippy::disallowed_methods)] let t0 = Instant::now();
//! let chip = VirtualSlic::new(t0);
//! let (irq, reset, phone) = (chip.irq_pin(), chip.reset_pin(), chip.phone());
//! let slic = pbx_hal::fxs::Slic::new(chip.clone(), reset, irq);
//! phone.off_hook(t0 + Duration::from_millis(5));
//! # drop(slic);
//! ```

mod chip;
mod device;
mod phone;
mod pins;

pub use chip::{ChipWrite, VirtualSpiError};
pub use device::VirtualSlic;
pub use phone::{VirtualPhone, PULSE_BREAK, PULSE_MAKE};
pub use pins::{VirtualIrqPin, VirtualResetPin};
