//! The virtual chip's IRQ and reset pins.

use std::cell::RefCell;
use std::convert::Infallible;
use std::rc::Rc;

use embedded_hal::digital::{ErrorType, InputPin, OutputPin};

use super::chip::Chip;
use super::device::VirtualSlic;

/// The chip's interrupt output: low while an enabled interrupt is pending.
pub struct VirtualIrqPin {
    state: Rc<RefCell<Chip>>,
}

/// The chip's reset input (active low): releasing it resets the chip.
pub struct VirtualResetPin {
    state: Rc<RefCell<Chip>>,
}

impl VirtualSlic {
    /// The chip's IRQ pin.
    pub fn irq_pin(&self) -> VirtualIrqPin {
        VirtualIrqPin {
            state: Rc::clone(&self.state),
        }
    }

    /// The chip's reset pin.
    pub fn reset_pin(&self) -> VirtualResetPin {
        VirtualResetPin {
            state: Rc::clone(&self.state),
        }
    }
}

impl ErrorType for VirtualIrqPin {
    type Error = Infallible;
}

impl InputPin for VirtualIrqPin {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        Ok(!self.state.borrow().irq_asserted())
    }

    fn is_low(&mut self) -> Result<bool, Self::Error> {
        Ok(self.state.borrow().irq_asserted())
    }
}

impl ErrorType for VirtualResetPin {
    type Error = Infallible;
}

impl OutputPin for VirtualResetPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.state.borrow_mut().set_reset_pin(false);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.state.borrow_mut().set_reset_pin(true);
        Ok(())
    }
}
