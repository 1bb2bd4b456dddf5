//! The GSM/LTE module (3GPP TS 27.007 / 27.005 subset) as sans-IO cores.
//!
//! - [`lines`]: splits the modem's byte stream into lines, the SMS prompt and echo.
//! - [`response`]: classifies lines (final result, information, URC) and parses them typed.
//! - [`command`]: the typed, validated AT commands and their time-out table.
//! - [`session`]: one command in flight, URCs demultiplexed, time-outs, recovery hint.
//! - [`pin`]: [`pin::PinGuard`], which never lets a rejected PIN reach the SIM again.
//! - [`pdu`]: SMS PDU encoding and decoding.
//! - [`power`]: the module's supply switch (a GPIO [`embedded_hal::digital::OutputPin`]).
//! - [`emulator`]: a Quectel EC25-class modem emulator (sans-IO core and a pty shell).
//!
//! The shell owns the serial port and the clock; it drives [`session::Session`] like this:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use pbx_hal::modem::command::Command;
//! use pbx_hal::modem::session::{ModemEvent, Session, SessionConfig};
//!
//! let mut now = Instant::now();
//! let mut modem = Session::new(SessionConfig::default());
//! modem.send(now, Command::QuerySignal).unwrap();
//! assert_eq!(modem.poll_transmit().as_deref(), Some(&b"AT+CSQ\r"[..]));
//! // ... bytes written to the port; bytes read back:
//! now += Duration::from_millis(20);
//! modem.handle_input(now, b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n");
//! while let Some(ev) = modem.poll_event() {
//!     assert!(matches!(ev, ModemEvent::CommandCompleted { .. }));
//! }
//! // then sleep until `modem.poll_timeout()` and call `handle_timeout`.
//! ```

pub mod command;
pub mod emulator;
pub mod lines;
pub mod pdu;
pub mod pin;
pub mod power;
pub mod response;
pub mod session;
