//! Analog ports as legs of calls: each [`Line`] is an extension whose calls call control
//! ([`crate::call`]) sees as [`LegEvent`]s and drives through the same commands as any
//! other leg. A port dialling is an incoming leg (its extension calls the digits); a call
//! to the port's extension rings it and, on ring trip, answers.
//!
//! Sans-IO like the lines themselves: hook events, audio frames and `now` go in; leg
//! events for call control and [`LineOutput`]s for the port's shell (linefeed, tones,
//! caller ID) come out. Each port's audio reaches the call's relay as RTP from the
//! port's own media address (the shell's PCM↔RTP bridge), so the relay treats a port
//! like any phone.
//!
//! # Second calls: hook flash and call waiting
//! A port has at most two calls: the one the phone is on (`call`) and another that is
//! on hold or waiting. A flash during a connected call holds it (the port's leg
//! renegotiates to `recvonly`, so call control plays music on hold to the far party)
//! and gives the special dial tone for an enquiry; flashing again toggles between the
//! two parties, or returns to the held one while the enquiry is still dialling,
//! ringing or failed. Hanging up with the enquiry answered transfers: the held leg asks
//! call control to be replaced by the enquiry's far party ([`LegEvent::ReplaceRequested`],
//! the same attended transfer a SIP phone asks for with REFER/Replaces). Hanging up
//! while the enquiry still rings transfers too, blind: the ringing enquiry is
//! cancelled and the held leg asks to be replaced by the enquiry's number
//! ([`LegEvent::TransferRequested`]), so the target keeps ringing, now for the held
//! party, who hears music until it answers; if it does not answer within call
//! control's ring timeout (or cannot be reached) the held call rings the phone again
//! (recall, [`PortLegs::transfer_status`]). Hanging up
//! with only the held call left (or after taking a waiting call) rings the phone again
//! (recall); lifting the handset resumes the held call.
//!
//! A call to a port that is connected, with call waiting on and no second call, waits:
//! the caller hears ringback, the phone the call-waiting tone and the type-2 caller ID
//! ([`super::waiting`]). A flash takes the waiting call and holds the first; hanging up
//! lets the waiting call ring the phone.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::{CallEvent, CallFailure, CallerId, HookEvent, Line, LineOutput};
use crate::call::{
    Cause, CauseKind, Gone, LegEvent, LegId, MediaPort, Party, RingTarget, TransferStatus,
};
use crate::media::sdp::{Codec, Direction, Negotiated};

/// What a port's shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortOutput {
    /// The line's instruction (linefeed, tone, caller ID).
    Line(LineOutput),
    /// Send the port's audio to this relay port (`None`: no call, send nothing).
    Media(Option<u16>),
}

/// Port legs are numbered from here, apart from other kinds of legs.
pub const PORT_LEG_BASE: LegId = 1 << 48;

/// One analog port as the call layer knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// The extension number that rings this port and that it calls from.
    pub extension: String,
    /// Where the port's audio bridge sends and receives RTP (G.711 A-law, 20 ms).
    pub media: SocketAddr,
}

#[derive(Debug)]
struct PortCall {
    leg: LegId,
    /// The far party, shown when the call rings the phone again.
    party: CallerId,
    /// The port placed the call (rather than being rung).
    outgoing: bool,
    /// The call was answered (by the far end, or by the port's phone).
    answered: bool,
    /// Our relay port for the port's audio.
    relay_port: Option<u16>,
}

struct Port {
    spec: PortSpec,
    line: Line,
    /// The call the phone is on (talking, dialling out, ringing).
    call: Option<PortCall>,
    /// A call on hold (answered).
    held: Option<PortCall>,
    /// A call waiting to be taken (rings its caller).
    waiting: Option<PortCall>,
    /// Hanging up with both calls answered transfers (the second call was an
    /// enquiry, not a waiting call).
    transfer_on_hang_up: bool,
    /// Legs handed to call control for a transfer: it ends them.
    transferring: Vec<LegId>,
    /// The held call handed on by hanging up while the enquiry rang (a blind
    /// transfer): it rings the phone again if the transfer fails or is not answered.
    transferred_held: Option<PortCall>,
}

impl Port {
    fn has_second(&self) -> bool {
        self.held.is_some() || self.waiting.is_some()
    }
}

/// The analog ports' legs.
pub struct PortLegs {
    ports: Vec<Port>,
    next_leg: LegId,
    events: VecDeque<LegEvent>,
    shell: VecDeque<(usize, PortOutput)>,
    /// Ports whose held call comes back (a transfer failed): rung at the next timeout.
    recalls: Vec<usize>,
    /// The latest time an input came with (a recall is due from then on).
    last_now: Option<Instant>,
}

impl std::fmt::Debug for PortLegs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortLegs")
            .field("ports", &self.ports.len())
            .field("next_leg", &self.next_leg)
            .finish()
    }
}

impl PortLegs {
    /// Ports `0..n` with their lines.
    pub fn new(ports: Vec<(PortSpec, Line)>) -> Self {
        let mut me = Self {
            ports: ports
                .into_iter()
                .map(|(spec, line)| Port {
                    spec,
                    line,
                    call: None,
                    held: None,
                    waiting: None,
                    transfer_on_hang_up: false,
                    transferring: Vec::new(),
                    transferred_held: None,
                })
                .collect(),
            next_leg: PORT_LEG_BASE,
            events: VecDeque::new(),
            shell: VecDeque::new(),
            recalls: Vec::new(),
            last_now: None,
        };
        for i in 0..me.ports.len() {
            // A new line only sets its feed.
            while let Some(out) = me.ports[i].line.poll_output() {
                me.shell.push_back((i, PortOutput::Line(out)));
            }
        }
        me
    }

    /// Whether `leg` is one of the ports'.
    pub fn owns(&self, leg: LegId) -> bool {
        leg >= PORT_LEG_BASE
    }

    /// Whether extension `number` is a port.
    pub fn serves(&self, number: &str) -> bool {
        self.ports.iter().any(|p| p.spec.extension == number)
    }

    /// Port legs in progress (for leak checks): calls, held and waiting calls, and
    /// legs being transferred.
    pub fn calls(&self) -> usize {
        self.ports
            .iter()
            .map(|p| {
                usize::from(p.call.is_some())
                    + usize::from(p.held.is_some())
                    + usize::from(p.waiting.is_some())
                    + p.transferring.len()
            })
            .sum()
    }

    /// The leg of the answered call port `i`'s phone is on.
    pub fn talking_leg(&self, i: usize) -> Option<LegId> {
        let call = self.ports.get(i)?.call.as_ref()?;
        call.answered.then_some(call.leg)
    }

    /// Whether port `i` has a call on hold.
    pub fn has_held(&self, i: usize) -> bool {
        self.ports.get(i).is_some_and(|p| p.held.is_some())
    }

    /// Whether port `i` has a call waiting.
    pub fn has_waiting(&self, i: usize) -> bool {
        self.ports.get(i).is_some_and(|p| p.waiting.is_some())
    }

    /// A voicemail message waits for port `i`'s extension (or no longer): its dial
    /// tone becomes the special dial tone.
    pub fn set_message_waiting(&mut self, now: Instant, i: usize, on: bool) {
        if let Some(p) = self.ports.get_mut(i) {
            p.line.set_message_waiting(now, on);
        }
        self.collect(now);
    }

    /// The line of port `i` (state for listings).
    pub fn line(&self, i: usize) -> Option<&Line> {
        self.ports.get(i).map(|p| &p.line)
    }

    /// The line of port `i`, to change its settings.
    pub fn line_mut(&mut self, i: usize) -> Option<&mut Line> {
        self.ports.get_mut(i).map(|p| &mut p.line)
    }

    /// The relay port that port `i`'s audio goes to now, if it is in a call.
    pub fn relay_port(&self, i: usize) -> Option<u16> {
        self.ports
            .get(i)
            .and_then(|p| p.call.as_ref())
            .and_then(|c| c.relay_port)
    }

    /// A hook transition on port `i`.
    pub fn handle_hook(&mut self, now: Instant, i: usize, event: HookEvent) {
        if let Some(p) = self.ports.get_mut(i) {
            p.line.handle_hook(now, event);
        }
        self.collect(now);
    }

    /// 20 ms of audio from the phone on port `i`.
    pub fn handle_audio(&mut self, now: Instant, i: usize, frame: &[i16]) {
        if let Some(p) = self.ports.get_mut(i) {
            p.line.handle_audio(now, frame);
        }
        self.collect(now);
    }

    /// Fires the lines' due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in std::mem::take(&mut self.recalls) {
            self.recall(now, i);
        }
        for p in &mut self.ports {
            if p.line.poll_timeout().is_some_and(|t| t <= now) {
                p.line.handle_timeout(now);
            }
        }
        self.collect(now);
    }

    /// The earliest timer of any line.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let recall = self.last_now.filter(|_| !self.recalls.is_empty());
        self.ports
            .iter()
            .filter_map(|p| p.line.poll_timeout())
            .chain(recall)
            .min()
    }

    /// The next event for call control.
    pub fn poll_event(&mut self) -> Option<LegEvent> {
        self.events.pop_front()
    }

    /// The next instruction for port shells: (port, output).
    pub fn poll_shell(&mut self) -> Option<(usize, PortOutput)> {
        self.shell.pop_front()
    }

    /// The port's media as negotiated: its bridge speaks G.711 A-law, 20 ms.
    fn media(&self, i: usize) -> Negotiated {
        Negotiated {
            codec: Codec::Pcma,
            pt: 8,
            telephone_event: None,
            remote: self.ports[i].spec.media,
            ptime: 20,
            direction: Direction::SendRecv,
            srtp: None,
        }
    }

    /// The port whose current call (the one the phone is on) is `leg`.
    fn port_of_leg(&self, leg: LegId) -> Option<usize> {
        self.ports
            .iter()
            .position(|p| p.call.as_ref().is_some_and(|c| c.leg == leg))
    }

    /// Turns the lines' outputs into leg events and shell instructions.
    fn collect(&mut self, now: Instant) {
        self.last_now = Some(now);
        for i in 0..self.ports.len() {
            while let Some(out) = self.ports[i].line.poll_output() {
                match out {
                    LineOutput::Call(ev) => self.call_event(now, i, ev),
                    other => self.shell.push_back((i, PortOutput::Line(other))),
                }
            }
        }
    }

    fn call_event(&mut self, now: Instant, i: usize, ev: CallEvent) {
        let here = IpAddr::from(std::net::Ipv4Addr::LOCALHOST);
        match ev {
            CallEvent::Dial { digits } => {
                let leg = self.next_leg;
                self.next_leg += 1;
                let port = &mut self.ports[i];
                let party = CallerId {
                    number: Some(digits.clone()),
                    ..CallerId::default()
                };
                port.call = Some(PortCall {
                    leg,
                    party,
                    outgoing: true,
                    answered: false,
                    relay_port: None,
                });
                self.events.push_back(LegEvent::Incoming {
                    leg,
                    caller: port.spec.extension.clone(),
                    dialled: digits,
                    reference: format!("port{}-{leg}", i + 1),
                    source: here,
                });
            }
            CallEvent::Answer => {
                if self.ports[i].call.is_none() {
                    // The phone rang again for its held call (recall): take it back.
                    if let Some(held) = self.ports[i].held.take() {
                        self.ports[i].call = Some(held);
                        self.resume_call(now, i);
                    }
                    return;
                }
                let Some(call) = self.ports[i].call.as_mut() else {
                    return;
                };
                call.answered = true;
                let leg = call.leg;
                let media = self.media(i);
                self.events.push_back(LegEvent::Answered {
                    leg,
                    media,
                    peer: here,
                });
            }
            CallEvent::HangUp if self.ports[i].has_second() => self.hang_up_second(now, i),
            CallEvent::HangUp => {
                let Some(call) = self.ports[i].call.take() else {
                    return;
                };
                self.shell.push_back((i, PortOutput::Media(None)));
                let gone = if call.outgoing && !call.answered {
                    Gone::Cancelled("caller hung up while ringing")
                } else {
                    Gone::Normal
                };
                self.events.push_back(LegEvent::HungUp {
                    leg: call.leg,
                    gone,
                });
            }
            CallEvent::Flash => self.flash(now, i),
        }
    }

    /// Ends the port's current call from its side (the phone left it).
    fn leave_call(&mut self, i: usize) {
        let Some(call) = self.ports[i].call.take() else {
            return;
        };
        self.shell.push_back((i, PortOutput::Media(None)));
        let gone = if call.answered {
            Gone::Normal
        } else {
            Gone::Cancelled("caller gave up the enquiry")
        };
        self.events.push_back(LegEvent::HungUp {
            leg: call.leg,
            gone,
        });
    }

    /// Tells call control that the port's leg `leg` holds (`hold`) or resumes.
    fn renegotiate(&mut self, i: usize, leg: LegId, hold: bool) {
        let mut media = self.media(i);
        if hold {
            // Our answer towards a holding party does not send.
            media.direction = Direction::RecvOnly;
        }
        self.events.push_back(LegEvent::Renegotiated { leg, media });
    }

    /// Holds the current call: it becomes the held one.
    fn hold_call(&mut self, i: usize) {
        if let Some(call) = self.ports[i].call.take() {
            self.renegotiate(i, call.leg, true);
            self.ports[i].held = Some(call);
            self.shell.push_back((i, PortOutput::Media(None)));
        }
    }

    /// The current call (just taken from hold) talks again.
    fn resume_call(&mut self, now: Instant, i: usize) {
        let Some((leg, relay)) = self.ports[i].call.as_ref().map(|c| (c.leg, c.relay_port)) else {
            return;
        };
        self.renegotiate(i, leg, false);
        self.shell.push_back((i, PortOutput::Media(relay)));
        let port = &mut self.ports[i];
        port.line.resume(now);
        let second = port.has_second();
        port.line.set_second_call(now, second);
    }

    /// A hook flash: take a waiting call, start an enquiry, toggle, or go back.
    fn flash(&mut self, now: Instant, i: usize) {
        let talking = self.ports[i].call.as_ref().is_some_and(|c| c.answered)
            && self.ports[i].line.state() == super::LineState::Connected;
        if let Some(waiting) = self.ports[i].waiting.take() {
            // Take the waiting call; the first one goes on hold.
            self.ports[i].line.end_waiting(now);
            if talking {
                self.hold_call(i);
            } else {
                self.leave_call(i);
            }
            self.ports[i].transfer_on_hang_up = false;
            let leg = waiting.leg;
            self.ports[i].call = Some(PortCall {
                answered: true,
                ..waiting
            });
            let media = self.media(i);
            let here = IpAddr::from(std::net::Ipv4Addr::LOCALHOST);
            self.events.push_back(LegEvent::Answered {
                leg,
                media,
                peer: here,
            });
            self.resume_call(now, i);
            return;
        }
        if self.ports[i].held.is_some() {
            if talking {
                // Toggle: the current party waits, the held one talks.
                let current = self.ports[i].call.take();
                let held = self.ports[i].held.take();
                if let Some(c) = current {
                    self.renegotiate(i, c.leg, true);
                    self.ports[i].held = Some(c);
                }
                self.ports[i].call = held;
            } else {
                // The enquiry is dialling, ringing or failed: back to the held party.
                self.leave_call(i);
                self.ports[i].call = self.ports[i].held.take();
            }
            self.resume_call(now, i);
            return;
        }
        if talking {
            // Enquiry: hold the call and give the special dial tone.
            self.hold_call(i);
            self.ports[i].transfer_on_hang_up = true;
            self.ports[i].line.enquiry(now);
        }
    }

    /// The phone hung up while a second call exists: transfer, or ring again.
    fn hang_up_second(&mut self, now: Instant, i: usize) {
        let port = &mut self.ports[i];
        let both_answered = port.call.as_ref().is_some_and(|c| c.answered) && port.held.is_some();
        let enquiry_rings = port.held.is_some()
            && port
                .call
                .as_ref()
                .is_some_and(|c| c.outgoing && !c.answered && c.party.number.is_some());
        if enquiry_rings && port.transfer_on_hang_up {
            // Hung up while the enquiry rings: the held party is transferred to the
            // enquiry's number (blind; the ringing enquiry is cancelled and the target
            // rung for the held party). Unanswered or failed, it rings the phone again.
            let (Some(call), Some(held)) = (port.call.take(), port.held.take()) else {
                return;
            };
            let target = call.party.number.clone().unwrap_or_default();
            port.transfer_on_hang_up = false;
            port.transferring.push(held.leg);
            let leg = held.leg;
            port.transferred_held = Some(held);
            self.shell.push_back((i, PortOutput::Media(None)));
            self.events.push_back(LegEvent::HungUp {
                leg: call.leg,
                gone: Gone::Normal,
            });
            self.events
                .push_back(LegEvent::TransferRequested { leg, target });
            return;
        }
        if both_answered && port.transfer_on_hang_up {
            // Transfer: the held party takes the port's place in the enquiry call.
            let (Some(call), Some(held)) = (port.call.take(), port.held.take()) else {
                return;
            };
            port.transferring.extend([held.leg, call.leg]);
            port.transfer_on_hang_up = false;
            self.shell.push_back((i, PortOutput::Media(None)));
            self.events.push_back(LegEvent::ReplaceRequested {
                leg: held.leg,
                replaces: call.leg,
            });
            return;
        }
        self.leave_call(i);
        let port = &mut self.ports[i];
        port.transfer_on_hang_up = false;
        // Whatever is left rings the phone: the held call (recall) or the waiting one.
        let (next, recall) = match (port.held.take(), port.waiting.take()) {
            (Some(h), w) => {
                port.waiting = w;
                (h, true)
            }
            (None, Some(w)) => (w, false),
            (None, None) => return,
        };
        let party = next.party.clone();
        if recall {
            port.held = Some(next);
        } else {
            port.call = Some(next);
        }
        let second = port.waiting.is_some();
        port.line.set_second_call(now, second);
        if port.line.incoming(now, party).is_err() {
            // Cannot ring (should not happen: the line just went idle): end it.
            let leg = port.held.take().or_else(|| port.call.take()).map(|c| c.leg);
            if let Some(leg) = leg {
                self.events.push_back(LegEvent::HungUp {
                    leg,
                    gone: Gone::Lost("the port could not ring again".into()),
                });
            }
        }
    }

    /// Rings port `i` again for its held call (a transfer by hanging up failed); when
    /// the phone is in use, the held party is hung up.
    fn recall(&mut self, now: Instant, i: usize) {
        let Some(port) = self.ports.get_mut(i) else {
            return;
        };
        let Some(party) = port.held.as_ref().map(|h| h.party.clone()) else {
            return;
        };
        port.line.set_second_call(now, false);
        if port.call.is_some() || port.line.incoming(now, party).is_err() {
            if let Some(h) = port.held.take() {
                self.events.push_back(LegEvent::HungUp {
                    leg: h.leg,
                    gone: Gone::Lost("the port could not ring again".into()),
                });
            }
        }
        self.collect(now);
    }

    /// Takes a port's outgoing call on: its audio goes to `media`.
    pub fn accept(&mut self, leg: LegId, media: MediaPort) -> Result<Option<Negotiated>, Cause> {
        let i = self
            .port_of_leg(leg)
            .ok_or_else(|| Cause::new(CauseKind::NoSuchCall))?;
        if let Some(c) = self.ports[i].call.as_mut() {
            c.relay_port = Some(media.port);
        }
        self.shell
            .push_back((i, PortOutput::Media(Some(media.port))));
        Ok(Some(self.media(i)))
    }

    /// Rings the port of extension `target`.
    pub fn ring(
        &mut self,
        now: Instant,
        target: &RingTarget,
        from: &Party,
        media: MediaPort,
    ) -> Result<LegId, Cause> {
        let RingTarget::Extension(ext) = target else {
            return Err(Cause::new(CauseKind::NotFound));
        };
        let i = self
            .ports
            .iter()
            .position(|p| &p.spec.extension == ext)
            .ok_or_else(|| Cause::new(CauseKind::NotFound))?;
        let port = &mut self.ports[i];
        let caller = CallerId {
            number: Some(from.number.clone()),
            name: from.name.clone(),
            withheld: false,
            datetime: None,
        };
        let leg = self.next_leg;
        let call = PortCall {
            leg,
            party: caller.clone(),
            outgoing: false,
            answered: false,
            relay_port: Some(media.port),
        };
        if port.call.as_ref().is_some_and(|c| c.answered) && !port.has_second() {
            // In a call: wait (tone and type-2 caller ID), or busy if the line says so.
            port.line
                .call_waiting(now, caller)
                .map_err(|_| Cause::new(CauseKind::Busy))?;
            self.next_leg += 1;
            port.waiting = Some(call);
        } else {
            if port.call.is_some() || port.has_second() {
                return Err(Cause::new(CauseKind::Busy));
            }
            port.line
                .incoming(now, caller)
                .map_err(|_| Cause::new(CauseKind::Busy))?;
            self.next_leg += 1;
            port.call = Some(call);
            self.shell
                .push_back((i, PortOutput::Media(Some(media.port))));
        }
        // The phone rings from now on: the caller hears ringback.
        self.events.push_back(LegEvent::Progress {
            leg,
            ringing: true,
            media: None,
        });
        self.collect(now);
        Ok(leg)
    }

    /// The port's call progresses: ringback.
    pub fn progress(&mut self, now: Instant, leg: LegId) {
        if let Some(i) = self.port_of_leg(leg) {
            self.ports[i].line.remote_ringing(now);
        }
        self.collect(now);
    }

    /// The port's call was answered: connected.
    pub fn answer(&mut self, now: Instant, leg: LegId) {
        if let Some(i) = self.port_of_leg(leg) {
            if let Some(c) = self.ports[i].call.as_mut() {
                c.answered = true;
            }
            self.ports[i].line.remote_answered(now);
            self.events
                .push_back(LegEvent::Confirmed { leg, media: None });
        }
        self.collect(now);
    }

    /// The port's call failed: busy or congestion tone; the leg is gone.
    pub fn reject(&mut self, now: Instant, leg: LegId, cause: &Cause) {
        if let Some(i) = self.port_of_leg(leg) {
            let line = &mut self.ports[i].line;
            match cause.kind {
                CauseKind::Busy | CauseKind::Declined => line.remote_busy(now),
                CauseKind::NotFound | CauseKind::Forbidden | CauseKind::Incomplete => {
                    line.remote_failed(now, CallFailure::Rejected)
                }
                CauseKind::Unavailable | CauseKind::NoAnswer => {
                    line.remote_failed(now, CallFailure::Unreachable)
                }
                CauseKind::Balance => line.remote_failed(now, CallFailure::Refused),
                _ => line.remote_failed(now, CallFailure::Congestion),
            }
            self.ports[i].call = None;
            self.shell.push_back((i, PortOutput::Media(None)));
        }
        self.collect(now);
    }

    /// Ends the port's call (stops ringing, or busy tone for a connected phone).
    pub fn hang_up(&mut self, now: Instant, leg: LegId) {
        if let Some(i) = self.port_of_leg(leg) {
            self.ports[i].line.remote_hung_up(now);
            self.ports[i].call = None;
            self.shell.push_back((i, PortOutput::Media(None)));
        } else if let Some(i) = self.port_of_other_leg(leg) {
            let port = &mut self.ports[i];
            port.transferring.retain(|&l| l != leg);
            if port.waiting.as_ref().is_some_and(|c| c.leg == leg) {
                // The waiting caller gave up.
                port.waiting = None;
                port.line.end_waiting(now);
            }
            if port.held.as_ref().is_some_and(|c| c.leg == leg) {
                port.held = None;
                if port.call.is_none() {
                    // It was ringing the phone again: stop.
                    port.line.remote_hung_up(now);
                }
            }
        }
        self.sync_second(now);
        self.collect(now);
    }

    /// Tells each line whether its port has a second call.
    fn sync_second(&mut self, now: Instant) {
        for p in &mut self.ports {
            let second = p.has_second();
            p.line.set_second_call(now, second);
        }
    }

    /// The port whose held or waiting call, or transferred leg, is `leg`.
    fn port_of_other_leg(&self, leg: LegId) -> Option<usize> {
        self.ports.iter().position(|p| {
            p.held.as_ref().is_some_and(|c| c.leg == leg)
                || p.waiting.as_ref().is_some_and(|c| c.leg == leg)
                || p.transferring.contains(&leg)
        })
    }

    /// The port with `leg` as its current or held call.
    fn port_of_any_leg(&self, leg: LegId) -> Option<usize> {
        self.port_of_leg(leg).or_else(|| {
            self.ports
                .iter()
                .position(|p| p.held.as_ref().is_some_and(|c| c.leg == leg))
        })
    }

    /// The port's audio goes to another relay port (the bridge simply follows).
    pub fn move_media(&mut self, leg: LegId, media: MediaPort) {
        let Some(i) = self.port_of_any_leg(leg) else {
            return;
        };
        let port = &mut self.ports[i];
        if let Some(c) = port.call.as_mut().filter(|c| c.leg == leg) {
            c.relay_port = Some(media.port);
            self.shell
                .push_back((i, PortOutput::Media(Some(media.port))));
        } else if let Some(c) = port.held.as_mut() {
            // Moved while on hold: it talks there once resumed.
            c.relay_port = Some(media.port);
        }
        let here = IpAddr::from(std::net::Ipv4Addr::LOCALHOST);
        let result = Ok((self.media(i), here));
        self.events.push_back(LegEvent::MediaMoved { leg, result });
    }

    /// How the transfer a port asked for by hanging up goes: when it cannot be done,
    /// both legs end (the phone is on-hook already).
    pub fn transfer_status(&mut self, leg: LegId, status: TransferStatus) {
        let handed_on = self
            .ports
            .iter()
            .position(|p| p.transferred_held.as_ref().is_some_and(|c| c.leg == leg));
        if let Some(i) = handed_on {
            match status {
                TransferStatus::Done => self.ports[i].transferred_held = None,
                TransferStatus::Refused(_) | TransferStatus::Failed(_) => {
                    // Back to the port: its phone rings with the held party.
                    let port = &mut self.ports[i];
                    port.transferring.retain(|&l| l != leg);
                    port.held = port.transferred_held.take();
                    self.recalls.push(i);
                }
                _ => {}
            }
            return;
        }
        let (TransferStatus::Refused(_) | TransferStatus::Failed(_)) = status else {
            return;
        };
        let Some(i) = self
            .ports
            .iter()
            .position(|p| p.transferring.contains(&leg))
        else {
            return;
        };
        for leg in std::mem::take(&mut self.ports[i].transferring) {
            self.events.push_back(LegEvent::HungUp {
                leg,
                gone: Gone::Normal,
            });
        }
    }
}
