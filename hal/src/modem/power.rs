//! The GSM module's supply switch: a GPIO output (embedded-hal [`OutputPin`]: a
//! linux-embedded-hal `CdevPin` on the board, the emulator's virtual pin in sim) behind
//! an object-safe [`PowerSwitch`], so the modem task holds one without knowing which.
//!
//! The recovery's last resort: when the module still does not answer after `ATZ`, the
//! shell switches it off for [`OFF_TIME`], on again, and starts over (the PIN policy is
//! the gateway's: a rejected PIN is still never sent again).

use std::time::Duration;

use embedded_hal::digital::OutputPin;

/// How long the supply stays off: long enough for the module's capacitors to drain
/// (Quectel asks for at least 500 ms between power off and on).
pub const OFF_TIME: Duration = Duration::from_secs(1);

/// Switching the module's supply failed (the GPIO driver's error, as text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("modem power switch: {0}")]
pub struct PowerError(pub String);

/// Switches the module's supply.
pub trait PowerSwitch: Send {
    /// `true`: supply on.
    fn set_power(&mut self, on: bool) -> Result<(), PowerError>;
}

/// A GPIO output that switches the supply; `active_low`: low means on.
#[derive(Debug)]
pub struct GpioPower<P> {
    pin: P,
    active_low: bool,
}

impl<P: OutputPin> GpioPower<P> {
    /// Wraps `pin`.
    pub fn new(pin: P, active_low: bool) -> Self {
        GpioPower { pin, active_low }
    }
}

impl<P: OutputPin + Send> PowerSwitch for GpioPower<P> {
    fn set_power(&mut self, on: bool) -> Result<(), PowerError> {
        let r = if on != self.active_low {
            self.pin.set_high()
        } else {
            self.pin.set_low()
        };
        r.map_err(|e| PowerError(format!("{e:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction};

    #[test]
    fn active_high_and_active_low_drive_the_line_accordingly() {
        let t = [Transaction::set(State::Low), Transaction::set(State::High)];
        let mut pin = Mock::new(&t);
        let mut p = GpioPower::new(pin.clone(), false);
        p.set_power(false).unwrap();
        p.set_power(true).unwrap();
        pin.done();

        let t = [Transaction::set(State::High), Transaction::set(State::Low)];
        let mut pin = Mock::new(&t);
        let mut p = GpioPower::new(pin.clone(), true);
        p.set_power(false).unwrap();
        p.set_power(true).unwrap();
        pin.done();
    }
}
