//! Server transactions (RFC 3261 sec. 17.2, RFC 6026 sec. 8.5-8.7).

use std::time::{Duration, Instant};

use super::{
    status_of, Common, Reliability, State, Timer, TimerConfig, TransactionError, TransactionEvent,
    TransactionInput, TransactionOutput,
};
use crate::message::{Message, Method};

fn check_request(request: &Message, invite: bool) -> Result<(), TransactionError> {
    let method = request.method().ok_or(TransactionError::WrongKind {
        expected: "request",
    })?;
    match method {
        Method::Ack => Err(TransactionError::AckStartsNothing),
        Method::Invite if !invite => Err(TransactionError::WrongMethod(Method::Invite)),
        m if invite && *m != Method::Invite => Err(TransactionError::WrongMethod(m.clone())),
        _ => Ok(()),
    }
}

/// The INVITE server transaction (sec. 17.2.1, figure 7 as amended by RFC 6026).
///
/// Created from a received INVITE, which it passes to the TU. Sending `100 Trying` is
/// left to the TU. A non-2xx final response is retransmitted on Timer G over UDP until
/// the ACK comes (or Timer H gives up); after a 2xx the transaction waits in
/// `Accepted` for Timer L, absorbing INVITE retransmissions and transmitting the 2xx
/// retransmissions the TU sends, and passes ACKs that match it to the TU.
#[derive(Debug, Clone)]
pub struct ServerInvite {
    common: Common,
    state: State,
    last_response: Option<Message>,
    timer_g: Duration,
}

impl ServerInvite {
    /// Starts the transaction from a received INVITE; the INVITE is the first output
    /// (`ToTu`).
    pub fn new(
        request: Message,
        cfg: TimerConfig,
        reliability: Reliability,
        _now: Instant,
    ) -> Result<Self, TransactionError> {
        check_request(&request, true)?;
        let mut common = Common::new(cfg, reliability);
        common.push(TransactionOutput::ToTu(request));
        Ok(ServerInvite {
            common,
            state: State::Proceeding,
            last_response: None,
            timer_g: cfg.t1,
        })
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, input: TransactionInput) {
        if self.state == State::Terminated {
            return;
        }
        match input {
            TransactionInput::Received(msg) => self.on_request(now, msg),
            TransactionInput::Send(msg) => self.on_send(now, msg),
            TransactionInput::Timeout => {
                for t in self.common.timers.take_due(now) {
                    self.on_timer(now, t);
                }
            }
            TransactionInput::TransportError => {
                self.common.event(TransactionEvent::TransportFailed);
                // In Accepted the TU owns the 2xx retransmissions; keep absorbing until Timer L.
                if self.state != State::Accepted {
                    self.end();
                }
            }
        }
    }

    fn on_request(&mut self, now: Instant, msg: Message) {
        match (self.state, msg.method()) {
            (State::Proceeding | State::Completed, Some(Method::Invite)) => {
                if let Some(resp) = &self.last_response {
                    self.common.push(TransactionOutput::Transmit(resp.clone()));
                }
            }
            (State::Completed, Some(Method::Ack)) => {
                self.common.timers.stop(Timer::G);
                self.common.timers.stop(Timer::H);
                self.state = State::Confirmed;
                let i = self.common.linger(self.common.cfg.t4);
                if i.is_zero() {
                    self.end();
                } else {
                    self.common.timers.set(Timer::I, now + i);
                }
            }
            (State::Accepted, Some(Method::Ack)) => {
                self.common.push(TransactionOutput::ToTu(msg));
            }
            // Accepted absorbs INVITE retransmissions (the TU retransmits the 2xx);
            // Confirmed absorbs ACK retransmissions.
            _ => {}
        }
    }

    fn on_send(&mut self, now: Instant, msg: Message) {
        let Some(status) = status_of(&msg) else {
            return;
        };
        match (self.state, status) {
            (State::Proceeding, 100..=199) => {
                self.last_response = Some(msg.clone());
                self.common.push(TransactionOutput::Transmit(msg));
            }
            (State::Proceeding, 200..=299) => {
                self.last_response = Some(msg.clone());
                self.common.push(TransactionOutput::Transmit(msg));
                self.state = State::Accepted;
                self.common
                    .timers
                    .set(Timer::L, now + self.common.cfg.t1x64());
            }
            (State::Proceeding, _) => {
                self.last_response = Some(msg.clone());
                self.common.push(TransactionOutput::Transmit(msg));
                self.state = State::Completed;
                self.timer_g = self.common.cfg.t1;
                self.common.arm_retransmit(Timer::G, now, self.timer_g);
                self.common
                    .timers
                    .set(Timer::H, now + self.common.cfg.t1x64());
            }
            // RFC 6026: 2xx retransmissions from the TU go out.
            (State::Accepted, 200..=299) => self.common.push(TransactionOutput::Transmit(msg)),
            _ => {}
        }
    }

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match (self.state, timer) {
            (State::Completed, Timer::G) => {
                if let Some(resp) = &self.last_response {
                    self.common.push(TransactionOutput::Transmit(resp.clone()));
                }
                self.timer_g = (self.timer_g * 2).min(self.common.cfg.t2);
                self.common.arm_retransmit(Timer::G, now, self.timer_g);
            }
            (State::Completed, Timer::H) => {
                self.common.event(TransactionEvent::TimedOut(Timer::H));
                self.end();
            }
            (State::Confirmed, Timer::I) | (State::Accepted, Timer::L) => self.end(),
            _ => {}
        }
    }

    fn end(&mut self) {
        self.state = State::Terminated;
        self.common.terminate();
    }

    /// The next output, if any.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<TransactionOutput> {
        self.common.pop()
    }

    /// The earliest armed timer.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.common.timers.next()
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The last response sent (used for RFC 2543 ACK matching by To tag).
    pub fn last_response(&self) -> Option<&Message> {
        self.last_response.as_ref()
    }
}

/// The non-INVITE server transaction (sec. 17.2.2, figure 8).
///
/// Created from a received request, which it passes to the TU. Retransmitted requests
/// are answered with the last response sent (none in Trying); after the final response
/// it lingers for Timer J.
#[derive(Debug, Clone)]
pub struct ServerNonInvite {
    common: Common,
    state: State,
    last_response: Option<Message>,
}

impl ServerNonInvite {
    /// Starts the transaction from a received request; the request is the first output
    /// (`ToTu`).
    pub fn new(
        request: Message,
        cfg: TimerConfig,
        reliability: Reliability,
        _now: Instant,
    ) -> Result<Self, TransactionError> {
        check_request(&request, false)?;
        let mut common = Common::new(cfg, reliability);
        common.push(TransactionOutput::ToTu(request));
        Ok(ServerNonInvite {
            common,
            state: State::Trying,
            last_response: None,
        })
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, input: TransactionInput) {
        if self.state == State::Terminated {
            return;
        }
        match input {
            TransactionInput::Received(msg) => {
                // A retransmission: Trying has nothing to resend; later states resend.
                if msg.is_request() {
                    if let Some(resp) = &self.last_response {
                        self.common.push(TransactionOutput::Transmit(resp.clone()));
                    }
                }
            }
            TransactionInput::Send(msg) => self.on_send(now, msg),
            TransactionInput::Timeout => {
                for t in self.common.timers.take_due(now) {
                    if (self.state, t) == (State::Completed, Timer::J) {
                        self.end();
                    }
                }
            }
            TransactionInput::TransportError => {
                self.common.event(TransactionEvent::TransportFailed);
                self.end();
            }
        }
    }

    fn on_send(&mut self, now: Instant, msg: Message) {
        let Some(status) = status_of(&msg) else {
            return;
        };
        if !matches!(self.state, State::Trying | State::Proceeding) {
            return; // Completed: the final response is out; more are discarded.
        }
        self.last_response = Some(msg.clone());
        self.common.push(TransactionOutput::Transmit(msg));
        if status < 200 {
            self.state = State::Proceeding;
            return;
        }
        self.state = State::Completed;
        let j = self.common.linger(self.common.cfg.t1x64());
        if j.is_zero() {
            self.end();
        } else {
            self.common.timers.set(Timer::J, now + j);
        }
    }

    fn end(&mut self) {
        self.state = State::Terminated;
        self.common.terminate();
    }

    /// The next output, if any.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<TransactionOutput> {
        self.common.pop()
    }

    /// The earliest armed timer.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.common.timers.next()
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The last response sent.
    pub fn last_response(&self) -> Option<&Message> {
        self.last_response.as_ref()
    }
}
