//! SIP transactions (RFC 3261 sec. 17, with the RFC 6026 `Accepted` state), sans-IO.
//!
//! Four state machines, [`ClientInvite`], [`ClientNonInvite`], [`ServerInvite`] and
//! [`ServerNonInvite`], share one shape (and one wrapper, [`Transaction`]):
//! `handle(now, input)`, then drain `poll_output()` to `None`, then sleep until
//! `poll_timeout()` and feed [`TransactionInput::Timeout`]. A spurious timeout is a
//! no-op. [`Transactions`] keeps many of them keyed by [`TransactionKey`] and does the
//! RFC 3261 sec. 17.1.3 and 17.2.3 matching; the daemon runs one per transport.
//!
//! Transport addresses are the shell's business: a [`TransactionOutput::Transmit`] of a
//! request goes where the TU sent the request, of a response where sec. 18.2.2 says.
//!
//! ```
//! use pbx_sip::message::{parse, MessageBuilder};
//! use pbx_sip::transaction::*;
//! use std::time::{Duration, Instant};
//!
//! let req = parse(b"OPTIONS sip:100@pbx SIP/2.0\r\n\
//!     Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKab1\r\n\
//!     From: <sip:201@pbx>;tag=f1\r\nTo: <sip:100@pbx>\r\n\
//!     Call-ID: c1\r\nCSeq: 7 OPTIONS\r\nMax-Forwards: 70\r\n\r\n").unwrap();
//! let mut table = Transactions::new(TimerConfig::default(), Reliability::Unreliable);
//! let start = Instant::now(); // in a shell: tokio::time::Instant::now().into_std()
//!
//! // The shell's run loop, one step: feed an input, drain outputs, re-arm the timer.
//! let key = table.send_request(start, req)?;
//! while let Some((_key, out)) = table.poll_output() {
//!     match out {
//!         TransactionOutput::Transmit(_msg) => { /* write _msg.to_bytes() to the socket */ }
//!         TransactionOutput::ToTu(_msg) => { /* hand to the transaction user */ }
//!         TransactionOutput::Event(_ev) => { /* timeout, transport error, terminated */ }
//!     }
//! }
//! let wake = table.poll_timeout().expect("Timer E and F are armed");
//! assert_eq!(wake, start + Duration::from_millis(500)); // Timer E = T1
//! table.handle_timeout(wake); // after sleeping until `wake`
//! assert!(matches!(table.poll_output(), Some((_, TransactionOutput::Transmit(_)))));
//! # Ok::<(), TransactionError>(())
//! ```

mod client;
mod key;
mod server;
mod table;
mod timers;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::{Duration, Instant};

use crate::message::{HeaderError, Message, Method};

pub use client::{ClientInvite, ClientNonInvite};
pub use key::TransactionKey;
pub use server::{ServerInvite, ServerNonInvite};
pub use table::{Dispatch, Transactions};

/// The RFC 3261 timer values (sec. 17.1.1.1, table 4). All must be non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, default 500 ms.
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Longest time a message stays in the network, 5 s.
    pub t4: Duration,
    /// Timer D over unreliable transports: "at least 32 seconds".
    pub timer_d: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
        }
    }
}

impl TimerConfig {
    /// `64*T1`: Timers B, F, H, J (unreliable), L and M.
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }
}

/// Whether the transport retransmits by itself (TCP, TLS, SCTP, WS) or not (UDP).
/// Over reliable transports Timers A, E and G never start and D, I, J and K are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reliability {
    /// UDP.
    Unreliable,
    /// TCP, TLS, SCTP, WebSocket.
    Reliable,
}

/// The transaction timers by their RFC 3261 (A–K) and RFC 6026 (L, M) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// INVITE client: request retransmission (T1, doubling).
    A,
    /// INVITE client: transaction timeout (64*T1).
    B,
    /// INVITE client: wait for response retransmissions in Completed.
    D,
    /// Non-INVITE client: request retransmission (T1, doubling to T2).
    E,
    /// Non-INVITE client: transaction timeout (64*T1).
    F,
    /// INVITE server: final response retransmission (T1, doubling to T2).
    G,
    /// INVITE server: wait for ACK (64*T1).
    H,
    /// INVITE server: wait for ACK retransmissions in Confirmed (T4).
    I,
    /// Non-INVITE server: wait for request retransmissions in Completed (64*T1).
    J,
    /// Non-INVITE client: wait for response retransmissions in Completed (T4).
    K,
    /// INVITE server (RFC 6026): linger in Accepted for INVITE retransmissions (64*T1).
    L,
    /// INVITE client (RFC 6026): linger in Accepted for 2xx retransmissions (64*T1).
    M,
}

impl Timer {
    /// Every timer, in table order.
    pub const ALL: [Timer; 12] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
    ];
}

impl fmt::Display for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timer {self:?}")
    }
}

/// The state of a transaction (the union of the four machines' states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// INVITE client, request sent, nothing heard.
    Calling,
    /// Non-INVITE client or server, before any provisional response.
    Trying,
    /// A provisional response was received (client) or sent (server).
    Proceeding,
    /// A final response (non-2xx for INVITE) was received or sent.
    Completed,
    /// INVITE server: the ACK for a non-2xx arrived.
    Confirmed,
    /// RFC 6026: a 2xx to an INVITE was received or sent.
    Accepted,
    /// Finished; the transaction can be dropped.
    Terminated,
}

/// What a transaction is fed.
#[derive(Debug, Clone)]
pub enum TransactionInput {
    /// A message from the transport that matched this transaction.
    Received(Message),
    /// A response from the TU (server transactions only; ignored by clients).
    Send(Message),
    /// The time from `poll_timeout` has come (early or repeated calls are harmless).
    Timeout,
    /// The transport failed to send this transaction's message (sec. 17.1.4, 17.2.4).
    TransportError,
}

/// What a transaction asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum TransactionOutput {
    /// Send this message on the transport.
    Transmit(Message),
    /// Hand this message to the transaction user (TU).
    ToTu(Message),
    /// Tell the TU something happened.
    Event(TransactionEvent),
}

/// Transaction events for the TU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionEvent {
    /// No final response (Timer B or F) or no ACK (Timer H) in time.
    TimedOut(Timer),
    /// The transport reported a failure.
    TransportFailed,
    /// The transaction ended; it can be dropped and ignores further input.
    Terminated,
}

/// Why a message cannot start or be matched to a transaction.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// A response was given where a request is needed, or the reverse.
    #[error("expected a {expected}")]
    WrongKind {
        /// `"request"` or `"response"`.
        expected: &'static str,
    },
    /// The request's method does not fit the machine (e.g. BYE to `ClientInvite`).
    #[error("method {0} does not fit this transaction type")]
    WrongMethod(Method),
    /// ACK never starts a transaction (sec. 17.1: it is part of the INVITE's).
    #[error("ACK does not start a transaction")]
    AckStartsNothing,
    /// Our own request lacks an RFC 3261 branch (`z9hG4bK...`), which we always send.
    #[error("request has no RFC 3261 branch")]
    NoBranch,
    /// A header needed for matching is missing or malformed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// A client transaction with this key is already running.
    #[error("a transaction with this key exists")]
    Duplicate,
    /// No live transaction has this key (it may have terminated).
    #[error("no such transaction")]
    NoSuchTransaction,
}

/// Any of the four transaction machines (boxed: they differ in size).
#[derive(Debug, Clone)]
pub enum Transaction {
    /// INVITE client transaction.
    ClientInvite(Box<ClientInvite>),
    /// Non-INVITE client transaction.
    ClientNonInvite(Box<ClientNonInvite>),
    /// INVITE server transaction.
    ServerInvite(Box<ServerInvite>),
    /// Non-INVITE server transaction.
    ServerNonInvite(Box<ServerNonInvite>),
}

macro_rules! each {
    ($self:expr, $t:ident => $e:expr) => {
        match $self {
            Transaction::ClientInvite($t) => $e,
            Transaction::ClientNonInvite($t) => $e,
            Transaction::ServerInvite($t) => $e,
            Transaction::ServerNonInvite($t) => $e,
        }
    };
}

impl Transaction {
    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, input: TransactionInput) {
        each!(self, t => t.handle(now, input))
    }
    /// The next output, if any.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<TransactionOutput> {
        each!(self, t => t.poll_output())
    }
    /// The earliest armed timer.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        each!(self, t => t.poll_timeout())
    }
    /// The current state.
    pub fn state(&self) -> State {
        each!(self, t => t.state())
    }
}

/// Shared plumbing of the four machines: configuration, timers and the output queue.
#[derive(Debug, Clone)]
struct Common {
    cfg: TimerConfig,
    reliable: bool,
    timers: timers::Timers,
    out: std::collections::VecDeque<TransactionOutput>,
}

impl Common {
    fn new(cfg: TimerConfig, reliability: Reliability) -> Self {
        Common {
            cfg,
            reliable: reliability == Reliability::Reliable,
            timers: timers::Timers::default(),
            out: Default::default(),
        }
    }

    fn push(&mut self, out: TransactionOutput) {
        self.out.push_back(out);
    }

    /// The next output. A drained queue gives its buffer back: a finished transaction
    /// lingers for Timer J/K/D (up to 32 s over UDP) and needs none.
    fn pop(&mut self) -> Option<TransactionOutput> {
        let out = self.out.pop_front();
        if self.out.is_empty() && self.out.capacity() > 0 {
            self.out = std::collections::VecDeque::new();
        }
        out
    }

    fn event(&mut self, ev: TransactionEvent) {
        self.out.push_back(TransactionOutput::Event(ev));
    }

    /// Arms a retransmission timer, which does not exist on reliable transports.
    fn arm_retransmit(&mut self, timer: Timer, now: Instant, after: Duration) {
        if !self.reliable {
            self.timers.set(timer, now + after);
        }
    }

    /// The wait of a Completed/Confirmed state: `unreliable` over UDP, zero otherwise.
    fn linger(&self, unreliable: Duration) -> Duration {
        if self.reliable {
            Duration::ZERO
        } else {
            unreliable
        }
    }

    fn terminate(&mut self) {
        self.timers.stop_all();
        self.event(TransactionEvent::Terminated);
    }
}

/// Response class helpers.
fn status_of(msg: &Message) -> Option<u16> {
    msg.status().filter(|s| (100..=699).contains(s))
}
