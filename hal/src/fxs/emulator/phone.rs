//! A phone on the virtual line: hook switch and rotary dial, and what it sees of the line.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::chip::Chip;
use super::device::VirtualSlic;
use crate::fxs::slic::regs::LinefeedCode;

/// Rotary dial: loop open per pulse.
pub const PULSE_BREAK: Duration = Duration::from_millis(60);
/// Rotary dial: loop closed between pulses.
pub const PULSE_MAKE: Duration = Duration::from_millis(40);

/// The phone attached to a [`VirtualSlic`]. Hook changes are scheduled on the chip and
/// happen as its simulated time reaches them; each method first advances the chip to `now`.
pub struct VirtualPhone {
    state: Rc<RefCell<Chip>>,
}

impl VirtualSlic {
    /// The phone on this chip's line (starts on-hook).
    pub fn phone(&self) -> VirtualPhone {
        VirtualPhone {
            state: Rc::clone(&self.state),
        }
    }
}

impl VirtualPhone {
    fn at(&self, now: Instant, changes: &[(Duration, bool)]) {
        let mut chip = self.state.borrow_mut();
        for &(offset, off_hook) in changes {
            chip.schedule_hook(now + offset, off_hook);
        }
        chip.advance(now);
    }

    /// Lift the handset at `now`.
    pub fn off_hook(&self, now: Instant) {
        self.at(now, &[(Duration::ZERO, true)]);
    }

    /// Hang up at `now`.
    pub fn on_hook(&self, now: Instant) {
        self.at(now, &[(Duration::ZERO, false)]);
    }

    /// Hook flash: on-hook at `now`, off-hook again after `duration`. Returns when the
    /// loop closes again.
    pub fn flash(&self, now: Instant, duration: Duration) -> Instant {
        self.at(now, &[(Duration::ZERO, false), (duration, true)]);
        now + duration
    }

    /// Dial `digit` (0..=9) on a rotary dial starting at `now`: `digit` pulses (10 for 0)
    /// of [`PULSE_BREAK`] open then [`PULSE_MAKE`] closed. Returns when the last pulse
    /// ends (the loop closes for the last time, `PULSE_BREAK` after the last break).
    ///
    /// # Panics
    /// If `digit > 9` (a bug in the test).
    pub fn dial_pulses(&self, now: Instant, digit: u8) -> Instant {
        assert!(digit <= 9, "a rotary dial has digits 0..=9, not {digit}");
        let pulses = if digit == 0 { 10 } else { u32::from(digit) };
        let period = PULSE_BREAK + PULSE_MAKE;
        let changes: Vec<(Duration, bool)> = (0..pulses)
            .flat_map(|i| [(period * i, false), (period * i + PULSE_BREAK, true)])
            .collect();
        self.at(now, &changes);
        now + period * (pulses - 1) + PULSE_BREAK
    }

    /// Whether the bell is ringing at `now` (a ring burst, not a pause).
    pub fn is_ringing(&self, now: Instant) -> bool {
        let mut chip = self.state.borrow_mut();
        chip.advance(now);
        chip.actual() == LinefeedCode::Ringing
    }

    /// The line state the phone sees now (chip time).
    pub fn linefeed(&self) -> LinefeedCode {
        self.state.borrow().actual()
    }

    /// Whether the line polarity is reversed now.
    pub fn polarity_reversed(&self) -> bool {
        self.state.borrow().actual().is_reverse()
    }

    /// Whether the handset is off the hook (as of the chip's time).
    pub fn is_off_hook(&self) -> bool {
        self.state.borrow().phone_off_hook()
    }

    /// Time of the next scheduled hook change (pulses, flash), if any.
    pub fn next_change(&self) -> Option<Instant> {
        self.state.borrow().next_change()
    }
}
