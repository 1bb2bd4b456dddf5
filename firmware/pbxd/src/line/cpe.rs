//! The audio side of a virtual phone that shows type-2 (off-hook, call waiting) caller
//! ID, as a real display phone does per ETSI EN 300 659-2: it listens to its earpiece
//! for the CPE alerting signal (CAS, 2130 + 2750 Hz), answers with DTMF `D` once the
//! CAS ends, and decodes the FSK that follows: V.23 (Europe) or Bell 202 (North
//! America), as the port is configured ([`Type2Cpe::with_fsk`]). The hal's `VirtualPhone` models the
//! hook; this models the display. Sans-IO: feed it every earpiece frame, put what it
//! returns into the microphone.

use crate::media::dsp::callerid::CallerId as CidMessage;
use crate::media::dsp::dtmf::DtmfGenerator;
use crate::media::dsp::fsk::{FskDemodulator, FskParams};
use crate::media::dsp::goertzel_power;

/// Earpiece audio kept after the acknowledgement for decoding (2 s at 8 kHz).
const CAPTURE: usize = 16_000;

/// Acknowledgement length: EN 300 659-2 asks for 65–90 ms of DTMF.
const ACK_MS: u64 = 70;

/// Share of a frame's power at `hz` (1.0: a pure tone at `hz`).
fn share(frame: &[i16], hz: f32) -> f64 {
    let total: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    if total <= 0.0 || frame.is_empty() {
        return 0.0;
    }
    2.0 * f64::from(goertzel_power(frame, hz)) / (frame.len() as f64 * total)
}

/// A display phone's type-2 caller-ID receiver.
#[derive(Debug, Clone)]
pub struct Type2Cpe {
    /// Answer the CAS (a phone without type-2 support does not).
    pub acknowledge: bool,
    in_cas: bool,
    acks: usize,
    capture: Vec<i16>,
    /// Acknowledged: waiting for the FSK carrier.
    awaiting: bool,
    capturing: bool,
    /// The FSK the phone's receiver demodulates.
    fsk: FskParams,
}

impl Type2Cpe {
    /// A phone that acknowledges the CAS when `acknowledge`.
    #[must_use]
    pub fn new(acknowledge: bool) -> Self {
        Self {
            acknowledge,
            in_cas: false,
            acks: 0,
            capture: Vec::new(),
            awaiting: false,
            capturing: false,
            fsk: FskParams::V23,
        }
    }

    /// The same phone with a receiver for `fsk` (V.23 by default).
    #[must_use]
    pub fn with_fsk(mut self, fsk: FskParams) -> Self {
        self.fsk = fsk;
        self
    }

    /// Switches the receiver to `fsk` (the port's caller-ID mode changed).
    pub fn set_fsk(&mut self, fsk: FskParams) {
        self.fsk = fsk;
    }

    /// Whether `frame` (20 ms of earpiece audio) is mostly the CAS's two tones.
    #[must_use]
    pub fn is_cas(frame: &[i16]) -> bool {
        let (a, b) = (share(frame, 2130.0), share(frame, 2750.0));
        a > 0.25 && b > 0.25 && a + b > 0.7
    }

    /// Whether `frame` carries the receiver's FSK (V.23: mark 1300 Hz, space 2100 Hz;
    /// Bell 202: 1200 and 2200 Hz) at a level above line noise.
    fn is_fsk(&self, frame: &[i16]) -> bool {
        let power: f64 = frame
            .iter()
            .map(|&s| f64::from(s) * f64::from(s))
            .sum::<f64>()
            / frame.len().max(1) as f64;
        power > 1e5 && share(frame, self.fsk.mark_hz) + share(frame, self.fsk.space_hz) > 0.5
    }

    /// One earpiece frame. Returns the acknowledgement to send (microphone samples)
    /// when the CAS has just ended.
    pub fn hear(&mut self, frame: &[i16]) -> Option<Vec<i16>> {
        // Capture from the FSK carrier on (the receiver's carrier detect): the call's
        // audio before it is noise the demodulator could take for a start of mark.
        if self.awaiting && self.is_fsk(frame) {
            self.awaiting = false;
            self.capturing = true;
        }
        if self.capturing && self.capture.len() < CAPTURE {
            self.capture.extend_from_slice(frame);
        }
        let cas = Self::is_cas(frame);
        let ended = self.in_cas && !cas;
        self.in_cas = cas;
        if !ended {
            return None;
        }
        self.acks += 1;
        if !self.acknowledge {
            return None;
        }
        // A new caller ID replaces what was captured before.
        self.capture.clear();
        self.capturing = false;
        self.awaiting = true;
        DtmfGenerator::new('D', -10.0, std::time::Duration::from_millis(ACK_MS))
            .ok()
            .map(DtmfGenerator::samples)
    }

    /// How many CAS the phone heard.
    #[must_use]
    pub fn cas_heard(&self) -> usize {
        self.acks
    }

    /// The caller ID decoded from the FSK after the last acknowledgement.
    #[must_use]
    pub fn caller_id(&self) -> Option<CidMessage> {
        let bytes = FskDemodulator::new(self.fsk, 40)
            .demodulate(&self.capture)
            .ok()?;
        CidMessage::parse_mdmf(&bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::ports_config::{CidMode, PortProfile, BELL202};
    use crate::line::sound::PortSound;
    use crate::line::{Country, LineOutput};

    /// What a port with `cid` plays for a call-waiting caller ID "23", frame by frame,
    /// into `cpe`, with the acknowledgement answered as the line does (FSK 100 ms after).
    fn play_type_2(cid: CidMode, cpe: &mut Type2Cpe) {
        let profile = PortProfile {
            country: Country::Us,
            cid,
            call_waiting: true,
        };
        let mut sound = PortSound::with_profile(&profile);
        let msg = CidMessage {
            number: Some("23".into()),
            ..CidMessage::default()
        }
        .encode_mdmf()
        .expect("encodes");
        sound.apply(&LineOutput::SendCas);
        let mut acked_at = None;
        for k in 0..100 {
            if acked_at.is_some_and(|a| k == a + 5) {
                sound.apply(&LineOutput::SendCallerIdOffHook(msg.clone()));
            }
            let mut ear = [0i16; 160];
            sound.frame(None, &mut ear);
            if cpe.hear(&ear).is_some() {
                acked_at = Some(k);
            }
        }
        assert!(acked_at.is_some(), "the phone acknowledged the CAS");
    }

    #[test]
    fn the_display_decodes_the_ports_fsk_only() {
        // A US phone on a Bell 202 port: decodes.
        let mut us = Type2Cpe::new(true).with_fsk(BELL202);
        play_type_2(CidMode::FskBell202, &mut us);
        assert_eq!(us.caller_id().and_then(|c| c.number).as_deref(), Some("23"));
        // A V.23 display on that port sees no valid message.
        let mut eu = Type2Cpe::new(true);
        play_type_2(CidMode::FskBell202, &mut eu);
        assert_eq!(eu.caller_id(), None);
        // And a V.23 port with a V.23 display, as before.
        let mut eu = Type2Cpe::new(true);
        play_type_2(CidMode::FskV23, &mut eu);
        assert_eq!(eu.caller_id().and_then(|c| c.number).as_deref(), Some("23"));
    }
}
