//! Client transactions (RFC 3261 sec. 17.1, RFC 6026 sec. 8.4).

use std::time::{Duration, Instant};

use super::{
    status_of, Common, Reliability, State, Timer, TimerConfig, TransactionError, TransactionEvent,
    TransactionInput, TransactionOutput,
};
use crate::message::{HeaderName, Message, MessageBuilder, Method};

/// Checks that `request` may start a client transaction of the given kind.
fn check_request(request: &Message, invite: bool) -> Result<(), TransactionError> {
    let method = request.method().ok_or(TransactionError::WrongKind {
        expected: "request",
    })?;
    match method {
        Method::Ack => return Err(TransactionError::AckStartsNothing),
        Method::Invite if !invite => return Err(TransactionError::WrongMethod(Method::Invite)),
        m if invite && *m != Method::Invite => {
            return Err(TransactionError::WrongMethod(m.clone()))
        }
        _ => {}
    }
    let via = request.top_via()?;
    if !via
        .branch()
        .is_some_and(|b| b.starts_with(super::key::MAGIC_COOKIE))
    {
        return Err(TransactionError::NoBranch);
    }
    request.cseq()?;
    Ok(())
}

/// The ACK for a non-2xx final response (sec. 17.1.1.3): same Request-URI, Call-ID,
/// From, CSeq number and top Via (so the same branch) as the INVITE, To from the
/// response, and the INVITE's Route headers.
fn ack_for(invite: &Message, response: &Message) -> Option<Message> {
    let uri = invite.request_uri()?.clone();
    let via = invite.top_via().ok()?;
    let seq = invite.cseq().ok()?.seq;
    let mut b = MessageBuilder::request(Method::Ack, uri)
        .header(HeaderName::Via, via.to_string())
        .header(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        let src = if name == HeaderName::To {
            response
        } else {
            invite
        };
        if let Some(v) = src.header(&name) {
            b = b.header(name, v);
        }
    }
    b = b.header(HeaderName::CSeq, format!("{seq} ACK"));
    for route in invite.header_all(&HeaderName::Route) {
        b = b.header(HeaderName::Route, route);
    }
    Some(b.build())
}

/// The INVITE client transaction (sec. 17.1.1, figure 5 as amended by RFC 6026).
///
/// It transmits the INVITE on creation, retransmits it on Timer A over UDP, gives up on
/// Timer B, ACKs non-2xx final responses itself, and passes 2xx responses (also
/// retransmitted ones, in `Accepted` until Timer M) to the TU, which ACKs them.
#[derive(Debug, Clone)]
pub struct ClientInvite {
    common: Common,
    request: Message,
    state: State,
    timer_a: Duration,
    ack: Option<Message>,
}

impl ClientInvite {
    /// Starts the transaction: queues the INVITE and arms Timers A and B.
    pub fn new(
        request: Message,
        cfg: TimerConfig,
        reliability: Reliability,
        now: Instant,
    ) -> Result<Self, TransactionError> {
        check_request(&request, true)?;
        let mut common = Common::new(cfg, reliability);
        common.push(TransactionOutput::Transmit(request.clone()));
        common.arm_retransmit(Timer::A, now, cfg.t1);
        common.timers.set(Timer::B, now + cfg.t1x64());
        Ok(ClientInvite {
            common,
            request,
            state: State::Calling,
            timer_a: cfg.t1,
            ack: None,
        })
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, input: TransactionInput) {
        if self.state == State::Terminated {
            return;
        }
        match input {
            TransactionInput::Received(msg) => self.on_response(now, msg),
            TransactionInput::Send(_) => {}
            TransactionInput::Timeout => {
                for t in self.common.timers.take_due(now) {
                    self.on_timer(now, t);
                }
            }
            TransactionInput::TransportError => {
                // In Accepted the TU sends the ACKs; a failure there is its problem.
                if self.state != State::Accepted {
                    self.common.event(TransactionEvent::TransportFailed);
                    self.end();
                }
            }
        }
    }

    fn on_response(&mut self, now: Instant, msg: Message) {
        let Some(status) = status_of(&msg) else {
            return;
        };
        match (self.state, status) {
            (State::Calling | State::Proceeding, 100..=199) => {
                self.common.timers.stop(Timer::A);
                self.common.timers.stop(Timer::B);
                self.state = State::Proceeding;
                self.common.push(TransactionOutput::ToTu(msg));
            }
            (State::Calling | State::Proceeding, 200..=299) => {
                self.common.timers.stop_all();
                self.state = State::Accepted;
                self.common
                    .timers
                    .set(Timer::M, now + self.common.cfg.t1x64());
                self.common.push(TransactionOutput::ToTu(msg));
            }
            (State::Calling | State::Proceeding, _) => {
                self.common.timers.stop_all();
                self.ack = ack_for(&self.request, &msg);
                if let Some(ack) = &self.ack {
                    self.common.push(TransactionOutput::Transmit(ack.clone()));
                }
                self.common.push(TransactionOutput::ToTu(msg));
                self.state = State::Completed;
                let d = self.common.linger(self.common.cfg.timer_d);
                if d.is_zero() {
                    self.end();
                } else {
                    self.common.timers.set(Timer::D, now + d);
                }
            }
            // A retransmitted final response: ACK again, the TU already knows.
            (State::Completed, 300..) => {
                if let Some(ack) = &self.ack {
                    self.common.push(TransactionOutput::Transmit(ack.clone()));
                }
            }
            // RFC 6026: every 2xx goes up, so the TU can ACK each (forked) answer.
            (State::Accepted, 200..=299) => self.common.push(TransactionOutput::ToTu(msg)),
            _ => {}
        }
    }

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match (self.state, timer) {
            (State::Calling, Timer::A) => {
                self.common
                    .push(TransactionOutput::Transmit(self.request.clone()));
                self.timer_a *= 2;
                self.common.arm_retransmit(Timer::A, now, self.timer_a);
            }
            (State::Calling, Timer::B) => {
                self.common.event(TransactionEvent::TimedOut(Timer::B));
                self.end();
            }
            (State::Completed, Timer::D) | (State::Accepted, Timer::M) => self.end(),
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

    /// The INVITE this transaction sends.
    pub fn request(&self) -> &Message {
        &self.request
    }
}

/// The non-INVITE client transaction (sec. 17.1.2, figure 6).
///
/// Transmits the request on creation, retransmits on Timer E (doubling up to T2; at
/// T2 once a provisional arrived) over UDP, and times out on Timer F.
#[derive(Debug, Clone)]
pub struct ClientNonInvite {
    common: Common,
    request: Message,
    state: State,
    timer_e: Duration,
}

impl ClientNonInvite {
    /// Starts the transaction: queues the request and arms Timers E and F.
    pub fn new(
        request: Message,
        cfg: TimerConfig,
        reliability: Reliability,
        now: Instant,
    ) -> Result<Self, TransactionError> {
        check_request(&request, false)?;
        let mut common = Common::new(cfg, reliability);
        common.push(TransactionOutput::Transmit(request.clone()));
        common.arm_retransmit(Timer::E, now, cfg.t1);
        common.timers.set(Timer::F, now + cfg.t1x64());
        Ok(ClientNonInvite {
            common,
            request,
            state: State::Trying,
            timer_e: cfg.t1,
        })
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, input: TransactionInput) {
        if self.state == State::Terminated {
            return;
        }
        match input {
            TransactionInput::Received(msg) => self.on_response(now, msg),
            TransactionInput::Send(_) => {}
            TransactionInput::Timeout => {
                for t in self.common.timers.take_due(now) {
                    self.on_timer(now, t);
                }
            }
            TransactionInput::TransportError => {
                self.common.event(TransactionEvent::TransportFailed);
                self.end();
            }
        }
    }

    fn on_response(&mut self, now: Instant, msg: Message) {
        let Some(status) = status_of(&msg) else {
            return;
        };
        match (self.state, status) {
            (State::Trying | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                self.common.push(TransactionOutput::ToTu(msg));
            }
            (State::Trying | State::Proceeding, _) => {
                self.common.timers.stop_all();
                self.common.push(TransactionOutput::ToTu(msg));
                self.state = State::Completed;
                let k = self.common.linger(self.common.cfg.t4);
                if k.is_zero() {
                    self.end();
                } else {
                    self.common.timers.set(Timer::K, now + k);
                }
            }
            // Completed absorbs retransmitted responses.
            _ => {}
        }
    }

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match (self.state, timer) {
            (State::Trying | State::Proceeding, Timer::E) => {
                self.common
                    .push(TransactionOutput::Transmit(self.request.clone()));
                self.timer_e = if self.state == State::Proceeding {
                    self.common.cfg.t2
                } else {
                    (self.timer_e * 2).min(self.common.cfg.t2)
                };
                self.common.arm_retransmit(Timer::E, now, self.timer_e);
            }
            (State::Trying | State::Proceeding, Timer::F) => {
                self.common.event(TransactionEvent::TimedOut(Timer::F));
                self.end();
            }
            (State::Completed, Timer::K) => self.end(),
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

    /// The request this transaction sends.
    pub fn request(&self) -> &Message {
        &self.request
    }
}
