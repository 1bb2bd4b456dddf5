//! SIM safety: three wrong PINs lock the SIM (ten wrong PUKs destroy it), so the firmware
//! never sends a PIN or PUK the SIM has rejected, and never spends the last attempt, or
//! an attempt it cannot count, without an explicit confirmation from the admin.
//!
//! Use: `check_pin` (or `check_puk`) returns the command to send; pass the command's result
//! to `record_result`; feed `+QPINC` counters and `+CPIN` states as they arrive.

use super::command::{Command, Pin, Puk};
use super::response::{PinCounters, SimState};
use super::session::{CommandError, Response};

/// Why a PIN or PUK was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// The SIM rejected this PIN before; it is never sent again.
    #[error("PIN rejected by the SIM before, not sent again ({} attempts left)", left(*.attempts_left))]
    Rejected {
        /// PIN attempts left, if known.
        attempts_left: Option<u8>,
    },
    /// The SIM rejected this PUK before; it is never sent again.
    #[error("PUK rejected by the SIM before, not sent again ({} attempts left)", left(*.attempts_left))]
    PukRejected {
        /// PUK attempts left, if known.
        attempts_left: Option<u8>,
    },
    /// Only one attempt is left: sending needs `confirmed = true`.
    #[error("only {attempts_left} attempt left: confirm to use it")]
    LastAttempt {
        /// Attempts left (1).
        attempts_left: u8,
    },
    /// Attempts left are not known (query `AT+QPINC` first) and not confirmed.
    #[error("attempts left unknown: query them first or confirm")]
    AttemptsUnknown,
    /// No attempts left for this code.
    #[error("no attempts left")]
    Blocked,
    /// The SIM wants the PUK, not the PIN.
    #[error("the SIM is blocked and needs the PUK")]
    PukRequired,
    /// The SIM needs no PIN.
    #[error("the SIM needs no PIN")]
    NotRequired,
    /// A PIN or PUK is already on its way; wait for its result.
    #[error("a PIN/PUK attempt is already pending")]
    AttemptPending,
}

fn left(n: Option<u8>) -> String {
    n.map_or_else(|| "unknown".into(), |n| n.to_string())
}

/// What an attempt's result meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinOutcome {
    /// The SIM took it.
    Accepted,
    /// The SIM rejected it; it is remembered and refused from now on.
    Rejected {
        /// Attempts left for that code, if known.
        attempts_left: Option<u8>,
    },
    /// No verdict (time-out, other error): counters are now unknown until queried again.
    Unknown,
    /// No attempt was pending.
    NotPending,
}

#[derive(Debug, Clone)]
enum Attempt {
    Pin(Pin),
    Puk { puk: Puk, new_pin: Pin },
}

/// Remembers rejected PINs and PUKs and the attempt counters.
#[derive(Debug, Default)]
pub struct PinGuard {
    rejected_pins: Vec<Pin>,
    rejected_puks: Vec<Puk>,
    counters: Option<PinCounters>,
    sim: Option<SimState>,
    pending: Option<Attempt>,
}

impl PinGuard {
    /// A guard that knows nothing yet.
    pub fn new() -> Self {
        PinGuard::default()
    }

    /// Attempts left, as last queried (or counted since).
    pub fn counters(&self) -> Option<PinCounters> {
        self.counters
    }

    /// Record `+QPINC` counters.
    pub fn record_counters(&mut self, c: PinCounters) {
        self.counters = Some(c);
    }

    /// Record a `+CPIN` state.
    pub fn record_sim_state(&mut self, s: SimState) {
        self.sim = Some(s);
    }

    /// Whether the SIM rejected this PIN before.
    pub fn is_rejected(&self, pin: &Pin) -> bool {
        self.rejected_pins.contains(pin)
    }

    /// Check a PIN; on success the attempt is pending and the command is returned to send.
    pub fn check_pin(&mut self, pin: &Pin, confirmed: bool) -> Result<Command, PinError> {
        if self.pending.is_some() {
            return Err(PinError::AttemptPending);
        }
        if self.is_rejected(pin) {
            return Err(PinError::Rejected {
                attempts_left: self.counters.map(|c| c.pin_left),
            });
        }
        match self.sim {
            Some(SimState::PukRequired) => return Err(PinError::PukRequired),
            Some(SimState::Ready) => return Err(PinError::NotRequired),
            _ => {}
        }
        check_left(self.counters.map(|c| c.pin_left), confirmed)?;
        self.pending = Some(Attempt::Pin(pin.clone()));
        Ok(Command::EnterPin(pin.clone()))
    }

    /// Check a PUK and the new PIN; on success the attempt is pending.
    pub fn check_puk(
        &mut self,
        puk: &Puk,
        new_pin: &Pin,
        confirmed: bool,
    ) -> Result<Command, PinError> {
        if self.pending.is_some() {
            return Err(PinError::AttemptPending);
        }
        if self.rejected_puks.contains(puk) {
            return Err(PinError::PukRejected {
                attempts_left: self.counters.map(|c| c.puk_left),
            });
        }
        if self.sim == Some(SimState::Ready) {
            return Err(PinError::NotRequired);
        }
        check_left(self.counters.map(|c| c.puk_left), confirmed)?;
        self.pending = Some(Attempt::Puk {
            puk: puk.clone(),
            new_pin: new_pin.clone(),
        });
        Ok(Command::EnterPuk {
            puk: puk.clone(),
            new_pin: new_pin.clone(),
        })
    }

    /// Record the result of the pending `AT+CPIN=` command.
    ///
    /// `+CME ERROR: 16` (incorrect password), `+CME ERROR: 12` (PUK required) and a bare
    /// `ERROR` count as a rejection: we cannot tell a bare `ERROR` apart, and a wrong guess
    /// the safe way costs the admin one re-entry, not the SIM.
    pub fn record_result(&mut self, result: &Result<Response, CommandError>) -> PinOutcome {
        let Some(attempt) = self.pending.take() else {
            return PinOutcome::NotPending;
        };
        let rejected = match result {
            Ok(_) => {
                if let Attempt::Puk { new_pin, .. } = &attempt {
                    // The new PIN is now the SIM's PIN.
                    self.rejected_pins.retain(|p| p != new_pin);
                }
                self.counters = None;
                self.sim = None;
                return PinOutcome::Accepted;
            }
            Err(CommandError::Cme(e)) => e.is_incorrect_password() || e.is_puk_required(),
            Err(CommandError::Error) => true,
            Err(_) => false,
        };
        if !rejected {
            self.counters = None;
            return PinOutcome::Unknown;
        }
        let puk_required = matches!(result, Err(CommandError::Cme(e)) if e.is_puk_required());
        let attempts_left = match attempt {
            Attempt::Pin(pin) => {
                self.rejected_pins.push(pin);
                if let Some(c) = &mut self.counters {
                    c.pin_left = if puk_required {
                        0
                    } else {
                        c.pin_left.saturating_sub(1)
                    };
                }
                if puk_required {
                    self.sim = Some(SimState::PukRequired);
                }
                self.counters.map(|c| c.pin_left)
            }
            Attempt::Puk { puk, .. } => {
                self.rejected_puks.push(puk);
                if let Some(c) = &mut self.counters {
                    c.puk_left = c.puk_left.saturating_sub(1);
                }
                self.counters.map(|c| c.puk_left)
            }
        };
        PinOutcome::Rejected { attempts_left }
    }
}

fn check_left(left: Option<u8>, confirmed: bool) -> Result<(), PinError> {
    match left {
        Some(0) => Err(PinError::Blocked),
        Some(1) if !confirmed => Err(PinError::LastAttempt { attempts_left: 1 }),
        None if !confirmed => Err(PinError::AttemptsUnknown),
        _ => Ok(()),
    }
}
