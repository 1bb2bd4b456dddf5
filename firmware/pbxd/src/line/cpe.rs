//! The audio side of a virtual phone that shows type-2 (off-hook, call waiting) caller
//! ID, as a real display phone does per ETSI EN 300 659-2: it listens to its earpiece
//! for the CPE alerting signal (CAS, 2130 + 2750 Hz), answers with DTMF `D` once the
//! CAS ends, and decodes the V.23 FSK that follows. The hal's `VirtualPhone` models the
//! hook; this models the display. Sans-IO: feed it every earpiece frame, put what it
//! returns into the microphone.

use crate::media::dsp::callerid::CallerId as CidMessage;
use crate::media::dsp::dtmf::DtmfGenerator;
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
        }
    }

    /// Whether `frame` (20 ms of earpiece audio) is mostly the CAS's two tones.
    #[must_use]
    pub fn is_cas(frame: &[i16]) -> bool {
        let (a, b) = (share(frame, 2130.0), share(frame, 2750.0));
        a > 0.25 && b > 0.25 && a + b > 0.7
    }

    /// Whether `frame` carries V.23 FSK (mark 1300 Hz, space 2100 Hz) at a level
    /// above line noise.
    fn is_fsk(frame: &[i16]) -> bool {
        let power: f64 = frame
            .iter()
            .map(|&s| f64::from(s) * f64::from(s))
            .sum::<f64>()
            / frame.len().max(1) as f64;
        power > 1e5 && share(frame, 1300.0) + share(frame, 2100.0) > 0.5
    }

    /// One earpiece frame. Returns the acknowledgement to send (microphone samples)
    /// when the CAS has just ended.
    pub fn hear(&mut self, frame: &[i16]) -> Option<Vec<i16>> {
        // Capture from the FSK carrier on (the receiver's carrier detect): the call's
        // audio before it is noise the demodulator could take for a start of mark.
        if self.awaiting && Self::is_fsk(frame) {
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
        CidMessage::demodulate(&self.capture).ok()
    }
}
