//! Fax/modem pass-through for a connected port: listens to both directions of the
//! call (the port's microphone and the far party's audio) for CNG or CED/ANSam and,
//! once one is heard, tells the port to switch the call to pass-through:
//!
//! - the jitter buffer goes to a fixed depth ([`PASSTHROUGH_DELAY`]) without loss
//!   concealment (a modem cannot follow a changing delay, and concealment invents
//!   waveform the receiver takes as data);
//! - the port stops playing tones and caller ID over the call (no call-waiting tone or
//!   CAS into a fax) and stops feeding the line's DTMF detector;
//! - the port's RTP stays G.711 A-law (it always is). A far leg on PCMU is transcoded
//!   A-law <-> µ-law by the relay, which fax survives; a SIP far leg on G.722 (a phone
//!   or the trunk) is re-INVITEd to G.711 by the user agent (`sip::ua::fax_g711`).
//!
//! There is no comfort noise or VAD on the port's path to switch off: the port sends
//! every 20 ms frame as it is.
//!
//! Sans-IO: `now` comes in with every frame.

use std::time::{Duration, Instant};

use crate::media::dsp::fax::{FaxTone, FaxToneDetector};
use crate::media::jitter::JitterConfig;

/// Fixed jitter-buffer depth in pass-through.
pub const PASSTHROUGH_DELAY: Duration = Duration::from_millis(60);

/// Which side of the call a tone came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The phone (fax machine, modem) on the port.
    Port,
    /// The far party.
    Far,
}

/// Why a call went to pass-through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaxSwitch {
    /// The tone heard.
    pub tone: FaxTone,
    /// Where it came from.
    pub side: Side,
}

/// The jitter-buffer settings for pass-through.
#[must_use]
pub fn passthrough_jitter() -> JitterConfig {
    JitterConfig::fixed(PASSTHROUGH_DELAY)
}

/// Watches one port's call for fax/modem tones.
#[derive(Debug, Clone, Default)]
pub struct FaxWatch {
    port: FaxToneDetector,
    far: FaxToneDetector,
    on: Option<FaxSwitch>,
}

impl FaxWatch {
    /// Nothing heard yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// One period of the call: `mic` from the port, `far` the far party's audio (if
    /// any arrived). Returns the switch once, when the call goes to pass-through.
    pub fn handle(&mut self, now: Instant, mic: &[i16], far: Option<&[i16]>) -> Option<FaxSwitch> {
        if self.on.is_some() {
            return None;
        }
        let port = self.port.handle_frame(now, mic).map(|tone| FaxSwitch {
            tone,
            side: Side::Port,
        });
        let far = far
            .and_then(|f| self.far.handle_frame(now, f))
            .map(|tone| FaxSwitch {
                tone,
                side: Side::Far,
            });
        self.on = port.or(far);
        self.on
    }

    /// Whether (and why) the call is in pass-through.
    #[must_use]
    pub fn passthrough(&self) -> Option<FaxSwitch> {
        self.on
    }

    /// A new call (or none): back to voice, nothing heard.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dsp::dbm0_to_peak;

    #[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
    fn epoch() -> Instant {
        Instant::now()
    }

    fn sine(hz: f64, ms: usize) -> Vec<i16> {
        let a = f64::from(dbm0_to_peak(-10.0));
        (0..ms * 8)
            .map(|i| (a * (std::f64::consts::TAU * hz * i as f64 / 8000.0).sin()) as i16)
            .collect()
    }

    /// Runs `mic` and `far` through a watch in 20 ms periods; the switch and when.
    fn watch(mic: &[i16], far: &[i16]) -> Option<(Duration, FaxSwitch)> {
        let mut w = FaxWatch::new();
        let t0 = epoch();
        let n = mic.len().max(far.len()).div_ceil(160);
        for k in 0..n {
            let now = t0 + Duration::from_millis(20 * k as u64);
            let frame = |x: &[i16]| {
                let mut f = [0i16; 160];
                for (o, s) in f.iter_mut().zip(x.iter().skip(160 * k)) {
                    *o = *s;
                }
                f
            };
            let (m, f) = (frame(mic), frame(far));
            if let Some(sw) = w.handle(now, &m, Some(&f)) {
                assert_eq!(w.passthrough(), Some(sw));
                // Reported once.
                assert_eq!(w.handle(now, &m, Some(&f)), None);
                return Some((now - t0 + Duration::from_millis(20), sw));
            }
        }
        None
    }

    #[test]
    fn cng_from_the_port_and_ced_from_the_far_side_switch() {
        let (at, sw) = watch(&sine(1100.0, 500), &[]).expect("CNG");
        assert_eq!(
            sw,
            FaxSwitch {
                tone: FaxTone::Cng,
                side: Side::Port
            }
        );
        assert_eq!(at, Duration::from_millis(400));
        let (_, sw) = watch(&[], &sine(2100.0, 3000)).expect("CED");
        assert_eq!(
            sw,
            FaxSwitch {
                tone: FaxTone::Ced,
                side: Side::Far
            }
        );
        // The port's own fax answering: CED from the port.
        let (_, sw) = watch(&sine(2100.0, 3000), &[]).expect("CED");
        assert_eq!(sw.side, Side::Port);
        // A 100 ms burst each way: voice stays voice.
        assert_eq!(watch(&sine(1100.0, 100), &sine(1100.0, 100)), None);
    }

    #[test]
    fn reset_returns_to_voice_and_passthrough_is_fixed_without_concealment() {
        let mut w = FaxWatch::new();
        let t0 = epoch();
        let tone = sine(1100.0, 500);
        for (k, f) in tone.chunks(160).enumerate() {
            let _ = w.handle(t0 + Duration::from_millis(20 * k as u64), f, None);
        }
        assert!(w.passthrough().is_some());
        w.reset();
        assert_eq!(w.passthrough(), None);
        let j = passthrough_jitter();
        assert!(!j.plc);
        assert_eq!(
            j.mode,
            crate::media::jitter::JitterMode::Fixed {
                delay: PASSTHROUGH_DELAY
            }
        );
    }
}
