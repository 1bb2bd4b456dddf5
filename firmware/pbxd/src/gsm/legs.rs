//! The GSM module's one call as a leg of a PBX call, like the analog ports
//! ([`crate::line::legs`]): the module's call events become [`LegEvent`]s for call
//! control, and call control's commands become [`GsmOutput`]s for the modem task
//! ([`super::GsmLink`]). Sans-IO.
//!
//! Inbound: a call to the SIM rings the configured destination with the caller's number.
//! Outbound: call control rings [`RingTarget::Gsm`] (an emergency route, or a GSM route);
//! ordinary calls need the installer's gateway-use confirmation, emergency calls never do.
//!
//! `SipCalls` dispatches legs numbered from [`GSM_LEG_BASE`] and [`RingTarget::Gsm`] here;
//! the SIP task carries the outputs to the modem task and the module's call events back.
//! Inbound calls reach call control as calls from the trunk [`GSM_TRUNK`] (caller shown
//! in national format, destination from the GSM settings).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::core::GsmCallEvent;
use crate::call::{Cause, CauseKind, Gone, LegEvent, LegId, MediaPort, RingTarget};
use crate::media::sdp::{Codec, Direction, Negotiated};

/// GSM legs are numbered from here, apart from SIP legs and ports (`1 << 48`).
pub const GSM_LEG_BASE: LegId = 2 << 48;
/// The trunk name call control uses for the GSM module.
pub const GSM_TRUNK: &str = "gsm";
/// Numbers dialled as emergency calls over GSM (124124: sea rescue, mobile only).
pub const EMERGENCY_NUMBERS: [&str; 3] = ["110", "112", "124124"];

/// What the modem task must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GsmOutput {
    /// Dial `number` (`ATD<number>;`).
    Dial {
        /// The leg that dialled (a refusal fails it: [`GsmLegs::dial_failed`]).
        leg: LegId,
        /// The number.
        number: String,
        /// An emergency call.
        emergency: bool,
    },
    /// Answer the ringing call.
    Answer,
    /// Hang up.
    HangUp,
    /// Send the module's audio to this relay port (`None`: stop).
    Media(Option<u16>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GsmCall {
    leg: LegId,
    /// We dialled out (rather than being called).
    outgoing: bool,
    answered: bool,
}

/// The GSM module's call as a leg.
#[derive(Debug)]
pub struct GsmLegs {
    media: SocketAddr,
    call: Option<GsmCall>,
    next_leg: LegId,
    events: VecDeque<LegEvent>,
    outputs: VecDeque<GsmOutput>,
}

impl GsmLegs {
    /// `media`: where the module's audio bridge sends and receives RTP (A-law, 20 ms).
    pub fn new(media: SocketAddr) -> Self {
        GsmLegs {
            media,
            call: None,
            next_leg: GSM_LEG_BASE,
            events: VecDeque::new(),
            outputs: VecDeque::new(),
        }
    }

    /// Whether `leg` is the module's.
    pub fn owns(&self, leg: LegId) -> bool {
        (GSM_LEG_BASE..GSM_LEG_BASE + (1 << 48)).contains(&leg)
    }

    /// Calls in progress (0 or 1, for leak checks).
    pub fn calls(&self) -> usize {
        usize::from(self.call.is_some())
    }

    /// Whether `target` is for the module.
    pub fn serves(target: &RingTarget) -> bool {
        matches!(target, RingTarget::Gsm { .. })
    }

    /// The next event for call control.
    pub fn poll_event(&mut self) -> Option<LegEvent> {
        self.events.pop_front()
    }

    /// The next instruction for the modem task.
    pub fn poll_output(&mut self) -> Option<GsmOutput> {
        self.outputs.pop_front()
    }

    fn negotiated(&self) -> Negotiated {
        Negotiated {
            codec: Codec::Pcma,
            pt: 8,
            telephone_event: None,
            remote: self.media,
            ptime: 20,
            direction: Direction::SendRecv,
            srtp: None,
        }
    }

    fn leg_of(&self, leg: LegId) -> Option<GsmCall> {
        self.call.filter(|c| c.leg == leg)
    }

    /// A call event from the module. `destination`: the internal number inbound calls
    /// ring (`None`: inbound calls are refused, the module hangs up).
    pub fn handle_call_event(&mut self, ev: GsmCallEvent, destination: Option<&str>) {
        let here = IpAddr::from(Ipv4Addr::LOCALHOST);
        match ev {
            GsmCallEvent::Incoming { number } => {
                // A second call while one is live is left alone: ATH would end both.
                if self.call.is_some() {
                    return;
                }
                if destination.is_none() {
                    self.outputs.push_back(GsmOutput::HangUp);
                    return;
                }
                let leg = self.next_leg;
                self.next_leg += 1;
                self.call = Some(GsmCall {
                    leg,
                    outgoing: false,
                    answered: false,
                });
                // A call from the trunk "gsm": call control shows the caller in national
                // format (or anonymous) and asks the directory where the SIM's calls go
                // (no called number: the SIM has one).
                self.events.push_back(LegEvent::IncomingTrunk {
                    leg,
                    trunk: GSM_TRUNK.to_owned(),
                    called: Vec::new(),
                    caller: number,
                    name: None,
                    reference: format!("gsm-{leg}"),
                    source: here,
                });
            }
            GsmCallEvent::Alerting => {
                if let Some(c) = self.call.filter(|c| c.outgoing) {
                    self.events.push_back(LegEvent::Progress {
                        leg: c.leg,
                        ringing: true,
                        media: None,
                    });
                }
            }
            GsmCallEvent::Answered => {
                let media = self.negotiated();
                let Some(c) = self.call.as_mut() else { return };
                c.answered = true;
                let leg = c.leg;
                self.events.push_back(if c.outgoing {
                    LegEvent::Answered {
                        leg,
                        media,
                        peer: here,
                    }
                } else {
                    LegEvent::Confirmed { leg, media: None }
                });
            }
            GsmCallEvent::Ended { reason } => {
                let Some(c) = self.call.take() else { return };
                self.outputs.push_back(GsmOutput::Media(None));
                self.events.push_back(match (c.outgoing, c.answered) {
                    (true, false) => LegEvent::Failed {
                        leg: c.leg,
                        cause: end_cause(&reason),
                    },
                    (false, false) => LegEvent::HungUp {
                        leg: c.leg,
                        gone: Gone::Cancelled("caller hung up while ringing"),
                    },
                    _ if reason == "remote hang-up" => LegEvent::HungUp {
                        leg: c.leg,
                        gone: Gone::Normal,
                    },
                    _ => LegEvent::HungUp {
                        leg: c.leg,
                        gone: Gone::Lost(reason),
                    },
                });
            }
        }
    }

    /// The modem refused the dial command (not ready, bad number).
    pub fn dial_failed(&mut self, leg: LegId, why: &str) {
        if self.leg_of(leg).is_some() {
            self.call = None;
            self.events.push_back(LegEvent::Failed {
                leg,
                cause: Cause::with(CauseKind::Congestion, why),
            });
        }
    }

    /// Takes the inbound call on: its audio goes to `media`.
    pub fn accept(&mut self, leg: LegId, media: MediaPort) -> Result<Option<Negotiated>, Cause> {
        self.leg_of(leg)
            .ok_or_else(|| Cause::new(CauseKind::NoSuchCall))?;
        self.outputs.push_back(GsmOutput::Media(Some(media.port)));
        Ok(Some(self.negotiated()))
    }

    /// Dials out over the module. Call control has checked the installer's gateway
    /// confirmation for ordinary calls (per call, from the store); emergency numbers
    /// never wait for it.
    pub fn ring(&mut self, target: &RingTarget, media: MediaPort) -> Result<LegId, Cause> {
        let RingTarget::Gsm { number } = target else {
            return Err(Cause::new(CauseKind::NotFound));
        };
        let emergency = EMERGENCY_NUMBERS.contains(&number.as_str());
        if self.call.is_some() {
            return Err(Cause::with(CauseKind::Busy, "the GSM module is in a call"));
        }
        let leg = self.next_leg;
        self.next_leg += 1;
        self.call = Some(GsmCall {
            leg,
            outgoing: true,
            answered: false,
        });
        self.outputs.push_back(GsmOutput::Media(Some(media.port)));
        self.outputs.push_back(GsmOutput::Dial {
            leg,
            number: number.clone(),
            emergency,
        });
        Ok(leg)
    }

    /// Answers the inbound call; `Confirmed` follows once the module connected.
    pub fn answer(&mut self, leg: LegId) {
        if self.leg_of(leg).is_some() {
            self.outputs.push_back(GsmOutput::Answer);
        }
    }

    /// Refuses or ends the call.
    pub fn hang_up(&mut self, leg: LegId) {
        if self.leg_of(leg).is_some() {
            self.call = None;
            self.outputs.push_back(GsmOutput::HangUp);
            self.outputs.push_back(GsmOutput::Media(None));
        }
    }

    /// The module's audio goes to another relay port.
    pub fn move_media(&mut self, leg: LegId, media: MediaPort) {
        if self.leg_of(leg).is_none() {
            return;
        }
        self.outputs.push_back(GsmOutput::Media(Some(media.port)));
        let here = IpAddr::from(Ipv4Addr::LOCALHOST);
        let result = Ok((self.negotiated(), here));
        self.events.push_back(LegEvent::MediaMoved { leg, result });
    }
}

/// An outgoing call that ended before it was answered.
fn end_cause(reason: &str) -> Cause {
    let kind = match reason {
        "busy" => CauseKind::Busy,
        "no answer" => CauseKind::NoAnswer,
        _ => CauseKind::Unavailable,
    };
    Cause::with(kind, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legs() -> GsmLegs {
        GsmLegs::new("127.0.0.1:4000".parse().unwrap())
    }

    fn gsm(number: &str) -> RingTarget {
        RingTarget::Gsm {
            number: number.into(),
        }
    }

    const MEDIA: MediaPort = MediaPort {
        port: 10_000,
        prefer: None,
    };

    #[test]
    fn inbound_rings_the_destination_with_caller_id() {
        let mut l = legs();
        l.handle_call_event(
            GsmCallEvent::Incoming {
                number: Some("+4930999".into()),
            },
            Some("21"),
        );
        let Some(LegEvent::IncomingTrunk {
            leg, trunk, caller, ..
        }) = l.poll_event()
        else {
            panic!("no incoming leg")
        };
        assert!(l.owns(leg) && leg >= GSM_LEG_BASE);
        assert_eq!(
            (caller.as_deref(), trunk.as_str()),
            (Some("+4930999"), GSM_TRUNK)
        );
        assert!(l.accept(leg, MEDIA).unwrap().is_some());
        l.answer(leg);
        let outs: Vec<_> = std::iter::from_fn(|| l.poll_output()).collect();
        assert_eq!(
            outs,
            vec![GsmOutput::Media(Some(10_000)), GsmOutput::Answer]
        );
        l.handle_call_event(GsmCallEvent::Answered, None);
        assert_eq!(
            l.poll_event(),
            Some(LegEvent::Confirmed { leg, media: None })
        );
        l.handle_call_event(
            GsmCallEvent::Ended {
                reason: "remote hang-up".into(),
            },
            None,
        );
        assert_eq!(
            l.poll_event(),
            Some(LegEvent::HungUp {
                leg,
                gone: Gone::Normal
            })
        );
        assert_eq!(l.calls(), 0);
        // Without a destination the module hangs up.
        l.handle_call_event(GsmCallEvent::Incoming { number: None }, None);
        assert_eq!(l.poll_event(), None);
        assert_eq!(l.poll_output(), Some(GsmOutput::Media(None)));
        assert_eq!(l.poll_output(), Some(GsmOutput::HangUp));
    }

    #[test]
    fn an_emergency_number_is_dialled_as_one_and_a_second_call_is_busy() {
        let mut l = legs();
        let leg = l.ring(&gsm("112"), MEDIA).unwrap();
        let outs: Vec<_> = std::iter::from_fn(|| l.poll_output()).collect();
        assert!(outs.contains(&GsmOutput::Dial {
            leg,
            number: "112".into(),
            emergency: true
        }));
        assert_eq!(
            l.ring(&gsm("+4930"), MEDIA).unwrap_err().kind,
            CauseKind::Busy
        );
        l.handle_call_event(GsmCallEvent::Alerting, None);
        assert!(matches!(
            l.poll_event(),
            Some(LegEvent::Progress { ringing: true, .. })
        ));
        l.handle_call_event(GsmCallEvent::Answered, None);
        assert!(matches!(l.poll_event(), Some(LegEvent::Answered { leg: x, .. }) if x == leg));
        // A module reset mid-call: the leg is lost, with the reason.
        l.handle_call_event(
            GsmCallEvent::Ended {
                reason: "GSM module restarted".into(),
            },
            None,
        );
        assert_eq!(
            l.poll_event(),
            Some(LegEvent::HungUp {
                leg,
                gone: Gone::Lost("GSM module restarted".into())
            })
        );
    }

    #[test]
    fn a_busy_number_fails_the_leg() {
        let mut l = legs();
        let leg = l.ring(&gsm("0301234"), MEDIA).unwrap();
        l.handle_call_event(
            GsmCallEvent::Ended {
                reason: "busy".into(),
            },
            None,
        );
        assert_eq!(
            l.poll_event(),
            Some(LegEvent::Failed {
                leg,
                cause: Cause::with(CauseKind::Busy, "busy")
            })
        );
        assert_eq!(
            l.ring(&RingTarget::Extension("21".into()), MEDIA)
                .unwrap_err()
                .kind,
            CauseKind::NotFound
        );
    }
}
