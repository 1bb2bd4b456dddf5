//! Call waiting on a connected line: the country's call-waiting tone over the call,
//! then the off-hook (type 2) caller ID of ETSI EN 300 659-2: the CPE alerting signal
//! (CAS, 2130 + 2750 Hz, 80 ms), the phone's acknowledgement (DTMF `D`, or `A` as
//! Bellcore phones send it) and the V.23 FSK message without channel seizure. A phone
//! that does not acknowledge gets no FSK (it would hear it as noise), only the tone.
//!
//! Timing, sans-IO like the line: [`Waiting::poll_timeout`] and [`Waiting::fire`] drive
//! the stages; the line feeds the phone's audio while the acknowledgement is awaited.
//!
//! | stage | length |
//! |---|---|
//! | call-waiting tone burst (country cadence up to its long pause) | DE 600 ms |
//! | CAS | [`CAS_DURATION`] 80 ms |
//! | acknowledgement must start within | [`ACK_WINDOW`] 250 ms |
//! | acknowledgement to FSK | [`FSK_AFTER_ACK`] 100 ms |
//! | FSK | 80 bits of mark, 10 bits per byte, 2 stop, at 1200 baud, plus one frame |
//! | tone burst repeats every | the cadence's full cycle (DE 5.6 s) |
//!
//! From the CAS to the end of the FSK (or of the acknowledgement window) the call's
//! audio is muted both ways ([`LineOutput::MuteCall`]): the far party hears neither the
//! phone's DTMF acknowledgement nor anything else, and talks over neither signal.
//!
//! EN 300 659-2 gives the phone 160 ms to start its acknowledgement; we listen 250 ms
//! because our detector reports a digit one 20 ms frame and a minimum duration late.

use std::time::{Duration, Instant};

use super::{Country, LineOutput, Tone};
use crate::media::dsp::dtmf::{DtmfDetector, DtmfEventKind};
use crate::media::dsp::tone::Cadence;

/// Length of the CPE alerting signal.
pub const CAS_DURATION: Duration = Duration::from_millis(80);
/// How long after the CAS the phone's acknowledgement may start (as we detect it).
pub const ACK_WINDOW: Duration = Duration::from_millis(250);
/// Pause between the detected acknowledgement (65–90 ms of DTMF) and the FSK.
pub const FSK_AFTER_ACK: Duration = Duration::from_millis(100);

#[derive(Debug)]
enum Stage {
    /// The call-waiting tone plays until `.0`.
    Tone(Instant),
    /// The CAS plays until `.0`.
    Cas(Instant),
    /// Listening for the acknowledgement until `.0`.
    AwaitAck(Instant),
    /// Acknowledged: the FSK goes out at `.0`.
    Acked(Instant),
    /// The FSK plays until `.0`.
    Sending(Instant),
    /// Between bursts: the tone plays again at `.0`.
    Pause(Instant),
}

/// One call waiting on a connected line.
#[derive(Debug)]
pub(super) struct Waiting {
    /// The MDMF message still to send (`None`: caller ID off, or already sent or
    /// refused by the phone).
    msg: Option<Vec<u8>>,
    stage: Stage,
    /// Tone burst and the full cycle of the country's call-waiting cadence.
    burst: Duration,
    cycle: Duration,
    dtmf: Option<Box<DtmfDetector>>,
    /// The phone acknowledged the CAS (for tests and `pbxctl ports`).
    acked: bool,
}

/// Burst and cycle of `country`'s call-waiting tone: the burst runs until the last
/// pause of the cadence, which is the pause between bursts.
/// How long an off-hook FSK burst of a `len`-byte message plays: 80 bits of mark,
/// 10 bits per byte and 2 closing mark bits at 1200 baud, rounded up, plus one 20 ms
/// frame because the port plays whole frames.
fn fsk_duration(len: usize) -> Duration {
    let bits = 80 + 10 * len as u64 + 2;
    Duration::from_micros((bits * 1_000_000).div_ceil(1200)) + Duration::from_millis(20)
}

fn burst_and_cycle(country: Country) -> (Duration, Duration) {
    let ms = |v: u32| Duration::from_millis(u64::from(v));
    match Tone::CallWaiting.spec_for(country).map(|s| s.cadence) {
        Some(Cadence::Repeat(steps)) if !steps.is_empty() => {
            let cycle: u32 = steps.iter().map(|(on, off)| on + off).sum();
            let last_off = steps.last().map_or(0, |s| s.1);
            (ms(cycle - last_off), ms(cycle))
        }
        Some(Cadence::Once(on)) => (ms(on), ms(on + 10_000)),
        _ => (ms(300), ms(10_300)),
    }
}

impl Waiting {
    /// Starts at `now` with the tone; `msg` is the caller ID to send after the CAS.
    pub(super) fn start(now: Instant, country: Country, msg: Option<Vec<u8>>) -> Self {
        let (burst, cycle) = burst_and_cycle(country);
        Self {
            msg,
            stage: Stage::Tone(now + burst),
            burst,
            cycle,
            dtmf: None,
            acked: false,
        }
    }

    /// What plays when the waiting starts.
    pub(super) fn first_output() -> LineOutput {
        LineOutput::Play(Tone::CallWaiting)
    }

    /// Whether the call's audio is muted for the type-2 signalling now.
    pub(super) fn muting(&self) -> bool {
        matches!(
            self.stage,
            Stage::Cas(_) | Stage::AwaitAck(_) | Stage::Acked(_) | Stage::Sending(_)
        )
    }

    /// Whether the phone acknowledged the CAS.
    pub(super) fn acked(&self) -> bool {
        self.acked
    }

    pub(super) fn poll_timeout(&self) -> Instant {
        match self.stage {
            Stage::Tone(t)
            | Stage::Cas(t)
            | Stage::AwaitAck(t)
            | Stage::Acked(t)
            | Stage::Sending(t)
            | Stage::Pause(t) => t,
        }
    }

    /// The stage due at `t` ends; outputs go to `out`.
    pub(super) fn fire(&mut self, t: Instant, out: &mut Vec<LineOutput>) {
        self.stage = match self.stage {
            Stage::Tone(_) => {
                out.push(LineOutput::Play(Tone::Silence));
                if self.msg.is_some() {
                    out.push(LineOutput::MuteCall(true));
                    out.push(LineOutput::SendCas);
                    // Listen from the start: a quick phone answers as the CAS ends.
                    self.dtmf = Some(Box::new(DtmfDetector::new()));
                    Stage::Cas(t + CAS_DURATION)
                } else {
                    Stage::Pause(t - self.burst + self.cycle)
                }
            }
            Stage::Cas(_) => Stage::AwaitAck(t + ACK_WINDOW),
            Stage::AwaitAck(_) => {
                // No acknowledgement: this phone shows no type-2 caller ID.
                self.dtmf = None;
                self.msg = None;
                out.push(LineOutput::MuteCall(false));
                self.pause_after(t)
            }
            Stage::Acked(_) => match self.msg.take() {
                Some(msg) => {
                    let end = t + fsk_duration(msg.len());
                    out.push(LineOutput::SendCallerIdOffHook(msg));
                    Stage::Sending(end)
                }
                None => {
                    out.push(LineOutput::MuteCall(false));
                    self.pause_after(t)
                }
            },
            Stage::Sending(_) => {
                out.push(LineOutput::MuteCall(false));
                self.pause_after(t)
            }
            Stage::Pause(_) => {
                out.push(LineOutput::Play(Tone::CallWaiting));
                Stage::Tone(t + self.burst)
            }
        };
    }

    fn pause_after(&self, t: Instant) -> Stage {
        // The next burst comes a full cycle after this one started; never sooner
        // than the tone's own pause after the caller ID.
        Stage::Pause(t + self.cycle.saturating_sub(self.burst).max(self.burst))
    }

    /// The phone's audio while the acknowledgement is awaited.
    pub(super) fn handle_audio(&mut self, now: Instant, frame: &[i16]) {
        let (Stage::Cas(_) | Stage::AwaitAck(_)) = self.stage else {
            return;
        };
        let Some(dtmf) = self.dtmf.as_mut() else {
            return;
        };
        dtmf.handle_samples(frame);
        let mut ack = false;
        while let Some(ev) = dtmf.poll_event() {
            ack |= ev.kind == DtmfEventKind::Start && matches!(ev.digit, 'D' | 'A');
        }
        if ack {
            self.acked = true;
            self.dtmf = None;
            self.stage = Stage::Acked(now + FSK_AFTER_ACK);
        }
    }
}
