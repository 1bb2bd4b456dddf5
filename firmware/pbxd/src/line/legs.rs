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
//! Not yet: hook flash (hold, enquiry, transfer) and call waiting; a flash is ignored.

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
    call: Option<PortCall>,
}

/// The analog ports' legs.
pub struct PortLegs {
    ports: Vec<Port>,
    next_leg: LegId,
    events: VecDeque<LegEvent>,
    shell: VecDeque<(usize, PortOutput)>,
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
                })
                .collect(),
            next_leg: PORT_LEG_BASE,
            events: VecDeque::new(),
            shell: VecDeque::new(),
        };
        me.collect();
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

    /// Calls in progress on ports (for leak checks).
    pub fn calls(&self) -> usize {
        self.ports.iter().filter(|p| p.call.is_some()).count()
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
        self.collect();
    }

    /// 20 ms of audio from the phone on port `i`.
    pub fn handle_audio(&mut self, now: Instant, i: usize, frame: &[i16]) {
        if let Some(p) = self.ports.get_mut(i) {
            p.line.handle_audio(now, frame);
        }
        self.collect();
    }

    /// Fires the lines' due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        for p in &mut self.ports {
            if p.line.poll_timeout().is_some_and(|t| t <= now) {
                p.line.handle_timeout(now);
            }
        }
        self.collect();
    }

    /// The earliest timer of any line.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ports
            .iter()
            .filter_map(|p| p.line.poll_timeout())
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

    fn port_of_leg(&self, leg: LegId) -> Option<usize> {
        self.ports
            .iter()
            .position(|p| p.call.as_ref().is_some_and(|c| c.leg == leg))
    }

    /// Turns the lines' outputs into leg events and shell instructions.
    fn collect(&mut self) {
        for i in 0..self.ports.len() {
            while let Some(out) = self.ports[i].line.poll_output() {
                match out {
                    LineOutput::Call(ev) => self.call_event(i, ev),
                    other => self.shell.push_back((i, PortOutput::Line(other))),
                }
            }
        }
    }

    fn call_event(&mut self, i: usize, ev: CallEvent) {
        let here = IpAddr::from(std::net::Ipv4Addr::LOCALHOST);
        match ev {
            CallEvent::Dial { digits } => {
                let leg = self.next_leg;
                self.next_leg += 1;
                let port = &mut self.ports[i];
                port.call = Some(PortCall {
                    leg,
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
            // Hold, enquiry and transfer by flash are not built yet.
            CallEvent::Flash => {}
        }
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
        if port.call.is_some() {
            return Err(Cause::new(CauseKind::Busy));
        }
        let caller = CallerId {
            number: Some(from.number.clone()),
            name: from.name.clone(),
            withheld: false,
            datetime: None,
        };
        port.line
            .incoming(now, caller)
            .map_err(|_| Cause::new(CauseKind::Busy))?;
        let leg = self.next_leg;
        self.next_leg += 1;
        port.call = Some(PortCall {
            leg,
            outgoing: false,
            answered: false,
            relay_port: Some(media.port),
        });
        self.shell
            .push_back((i, PortOutput::Media(Some(media.port))));
        // The phone rings from now on: the caller hears ringback.
        self.events.push_back(LegEvent::Progress {
            leg,
            ringing: true,
            media: None,
        });
        self.collect();
        Ok(leg)
    }

    /// The port's call progresses: ringback.
    pub fn progress(&mut self, now: Instant, leg: LegId) {
        if let Some(i) = self.port_of_leg(leg) {
            self.ports[i].line.remote_ringing(now);
        }
        self.collect();
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
        self.collect();
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
        self.collect();
    }

    /// Ends the port's call (stops ringing, or busy tone for a connected phone).
    pub fn hang_up(&mut self, now: Instant, leg: LegId) {
        if let Some(i) = self.port_of_leg(leg) {
            self.ports[i].line.remote_hung_up(now);
            self.ports[i].call = None;
            self.shell.push_back((i, PortOutput::Media(None)));
        }
        self.collect();
    }

    /// The port's audio goes to another relay port (the bridge simply follows).
    pub fn move_media(&mut self, leg: LegId, media: MediaPort) {
        let Some(i) = self.port_of_leg(leg) else {
            return;
        };
        if let Some(c) = self.ports[i].call.as_mut() {
            c.relay_port = Some(media.port);
        }
        self.shell
            .push_back((i, PortOutput::Media(Some(media.port))));
        let here = IpAddr::from(std::net::Ipv4Addr::LOCALHOST);
        let result = Ok((self.media(i), here));
        self.events.push_back(LegEvent::MediaMoved { leg, result });
    }

    /// Ports cannot ask for transfers yet (no flash handling): nothing to tell.
    pub fn transfer_status(&mut self, _leg: LegId, _status: TransferStatus) {}
}
