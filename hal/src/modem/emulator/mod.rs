//! A Quectel EC25-class modem emulator, so the real AT session code runs in tests and under
//! `--hardware sim`.
//!
//! - [`core`]: the emulator as a sans-IO core ([`Ec25`]): AT commands in, answers and URCs
//!   out, SIM with attempt counters, calls, SMS in PDU mode, scriptable network side and
//!   faults.
//! - [`pty`]: [`PtyModem`] runs an [`Ec25`] behind a real pseudo-terminal, so the host side
//!   opens `/dev/pts/N` like a serial port.
//!
//! Driving the core directly:
//!
//! ```
//! use std::time::Instant;
//! use pbx_hal::modem::emulator::{Ec25, Ec25Config};
//!
//! let now = Instant::now();
//! let mut modem = Ec25::new(Ec25Config::default());
//! modem.handle_input(now, b"ATE0\rAT+CPIN?\r");
//! let out: Vec<u8> = std::iter::from_fn(|| modem.poll_output()).flatten().collect();
//! assert!(String::from_utf8_lossy(&out).ends_with("\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n"));
//! ```

pub mod core;
pub mod pty;

pub use self::core::{CallPhase, Ec25, Ec25Config, EmulatedCall, ScriptError, SentSms, PCM_FRAME};
pub use self::pty::{EmulatedPowerPin, PtyError, PtyModem};
