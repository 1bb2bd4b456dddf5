//! Call-progress tone generator: one or two sine components (or an amplitude-modulated
//! carrier) switched by an on/off cadence.
//!
//! Phase is carried across frames, so the output does not depend on how it is cut into
//! frames (no clicks at frame boundaries). Each on period starts at phase 0 (the first
//! sample is 0), and the cadence is counted in samples, so boundaries are exact.
//!
//! The German constants follow the commonly published Deutsche Telekom (1TR110) values,
//! as also listed for Germany in ITU-T E.180 Supplement 2; the level, −10 dBm0, is our
//! choice. [`HOWLER`] (off-hook warning) has no single standard; we use the loud
//! 1400 + 2060 Hz pair known from the UK howler, without its rising volume.

use std::borrow::Cow;

use super::{dbm0_to_peak, to_pcm, SAMPLE_RATE};

/// The sound of a tone while it is on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ToneSound {
    /// One sine: frequency (Hz) and level (dBm0).
    Single(f32, f32),
    /// Two sines, each `(Hz, dBm0)`.
    Dual((f32, f32), (f32, f32)),
    /// One sine whose frequency changes with each cadence step: step `i` plays
    /// `freqs[i % freqs.len()]` Hz at the level (dBm0). The special-information tone
    /// (ITU-T E.180: 950, 1400, 1800 Hz) is one.
    Stepped(&'static [f32], f32),
    /// A carrier amplitude-modulated by a lower frequency, e.g. 425 Hz by 25 Hz.
    /// `level_dbm0` is that of the unmodulated carrier; the envelope is
    /// `(1 + depth * sin) / (1 + depth)`, so the peak never exceeds the carrier's.
    Modulated {
        /// Carrier frequency, Hz.
        carrier_hz: f32,
        /// Modulating frequency, Hz.
        modulation_hz: f32,
        /// Carrier level, dBm0.
        level_dbm0: f32,
        /// Modulation depth, 0..=1.
        depth: f32,
    },
}

/// When a tone is on.
#[derive(Debug, Clone, PartialEq)]
pub enum Cadence {
    /// Always on.
    Continuous,
    /// Repeating `(on_ms, off_ms)` steps.
    Repeat(Cow<'static, [(u32, u32)]>),
    /// On once for this many ms, then silent for good (alerting signals).
    Once(u32),
}

/// A call-progress tone.
#[derive(Debug, Clone, PartialEq)]
pub struct ToneSpec {
    /// What plays while on.
    pub sound: ToneSound,
    /// On/off pattern.
    pub cadence: Cadence,
}

const DE_LEVEL: f32 = -10.0;

/// German dial tone: 425 Hz continuous.
pub const DIAL_TONE_DE: ToneSpec = ToneSpec {
    sound: ToneSound::Single(425.0, DE_LEVEL),
    cadence: Cadence::Continuous,
};
/// German ringback: 425 Hz, 1 s on, 4 s off.
pub const RINGBACK_DE: ToneSpec = ToneSpec {
    sound: ToneSound::Single(425.0, DE_LEVEL),
    cadence: Cadence::Repeat(Cow::Borrowed(&[(1000, 4000)])),
};
/// German busy tone: 425 Hz, 480 ms on, 480 ms off.
pub const BUSY_DE: ToneSpec = ToneSpec {
    sound: ToneSound::Single(425.0, DE_LEVEL),
    cadence: Cadence::Repeat(Cow::Borrowed(&[(480, 480)])),
};
/// German congestion tone: 425 Hz, 240 ms on, 240 ms off.
pub const CONGESTION_DE: ToneSpec = ToneSpec {
    sound: ToneSound::Single(425.0, DE_LEVEL),
    cadence: Cadence::Repeat(Cow::Borrowed(&[(240, 240)])),
};
/// German call-waiting tone: 425 Hz, 200 on, 200 off, 200 on, 5 s off.
pub const CALL_WAITING_DE: ToneSpec = ToneSpec {
    sound: ToneSound::Single(425.0, DE_LEVEL),
    cadence: Cadence::Repeat(Cow::Borrowed(&[(200, 200), (200, 5000)])),
};
/// Off-hook warning: 1400 + 2060 Hz at −4 dBm0 each, continuous (loud on purpose).
pub const HOWLER: ToneSpec = ToneSpec {
    sound: ToneSound::Dual((1400.0, -4.0), (2060.0, -4.0)),
    cadence: Cadence::Continuous,
};

/// Dual-tone alerting signal before an on-hook caller ID (ETSI EN 300 659-1 DT-AS):
/// 2130 + 2750 Hz for 100 ms. The level is our choice.
pub const DT_AS: ToneSpec = ToneSpec {
    sound: ToneSound::Dual((2130.0, -15.0), (2750.0, -15.0)),
    cadence: Cadence::Once(100),
};
/// CPE alerting signal before an off-hook (type 2) caller ID (ETSI EN 300 659-2 CAS):
/// 2130 + 2750 Hz for 80 ms. The level is our choice.
pub const CAS: ToneSpec = ToneSpec {
    sound: ToneSound::Dual((2130.0, -15.0), (2750.0, -15.0)),
    cadence: Cadence::Once(80),
};

/// The special-information tone (ITU-T E.180 sec. 8): 950, 1400 and 1800 Hz for 330 ms
/// each with 30 ms gaps, then 1 s of silence; the same in every country. Played when the
/// network refuses a service (the provider's "no balance"), before congestion.
pub const SPECIAL_INFORMATION: ToneSpec = ToneSpec {
    sound: ToneSound::Stepped(&[950.0, 1400.0, 1800.0], -13.0),
    cadence: Cadence::Repeat(Cow::Borrowed(&[(330, 30), (330, 30), (330, 1000)])),
};

/// Errors in a tone description.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ToneError {
    /// A frequency is not within 0 < f < 4000 Hz.
    #[error("frequency {0} Hz outside 0..4000 Hz")]
    BadFrequency(f32),
    /// A repeating cadence has no steps or never turns on.
    #[error("cadence never turns on")]
    EmptyCadence,
    /// Modulation depth outside 0..=1.
    #[error("modulation depth {0} outside 0..=1")]
    BadDepth(f32),
}

/// Plays a [`ToneSpec`] frame by frame.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    /// Phase increments in cycles per sample, and peak amplitudes, of up to two sines.
    step: [f64; 2],
    amp: [f32; 2],
    /// Modulation: phase increment and depth (depth 0 means none).
    mod_step: f64,
    depth: f32,
    phase: [f64; 3],
    /// Cadence in samples; empty means continuous.
    steps: Vec<(u64, u64)>,
    /// [`ToneSound::Stepped`]: the frequency (cycles per sample) of each step.
    stepped: Vec<f64>,
    step_idx: usize,
    /// Position within the current step, in samples.
    in_step: u64,
}

impl ToneGenerator {
    /// A generator at the start of the first on period.
    pub fn new(spec: &ToneSpec) -> Result<Self, ToneError> {
        let check = |f: f32| {
            if f > 0.0 && f < SAMPLE_RATE as f32 / 2.0 {
                Ok(f64::from(f) / f64::from(SAMPLE_RATE))
            } else {
                Err(ToneError::BadFrequency(f))
            }
        };
        let mut stepped = Vec::new();
        let (step, amp, mod_step, depth) = match spec.sound {
            ToneSound::Stepped(freqs, l) => {
                for f in freqs {
                    stepped.push(check(*f)?);
                }
                let first = *stepped.first().ok_or(ToneError::EmptyCadence)?;
                ([first, 0.0], [dbm0_to_peak(l), 0.0], 0.0, 0.0)
            }
            ToneSound::Single(f, l) => ([check(f)?, 0.0], [dbm0_to_peak(l), 0.0], 0.0, 0.0),
            ToneSound::Dual((f1, l1), (f2, l2)) => (
                [check(f1)?, check(f2)?],
                [dbm0_to_peak(l1), dbm0_to_peak(l2)],
                0.0,
                0.0,
            ),
            ToneSound::Modulated {
                carrier_hz,
                modulation_hz,
                level_dbm0,
                depth,
            } => {
                if !(0.0..=1.0).contains(&depth) {
                    return Err(ToneError::BadDepth(depth));
                }
                (
                    [check(carrier_hz)?, 0.0],
                    [dbm0_to_peak(level_dbm0), 0.0],
                    check(modulation_hz)?,
                    depth,
                )
            }
        };
        let ms = |v: u32| u64::from(v) * u64::from(SAMPLE_RATE) / 1000;
        let steps: Vec<(u64, u64)> = match &spec.cadence {
            Cadence::Continuous => Vec::new(),
            Cadence::Repeat(s) => {
                let steps: Vec<_> = s.iter().map(|&(on, off)| (ms(on), ms(off))).collect();
                if steps.iter().all(|&(on, _)| on == 0) {
                    return Err(ToneError::EmptyCadence);
                }
                steps
            }
            // An off period that never ends: `in_step` cannot reach `on + off`.
            Cadence::Once(on) => vec![(ms(*on), u64::MAX - ms(*on))],
        };
        Ok(Self {
            step,
            amp,
            mod_step,
            depth,
            phase: [0.0; 3],
            steps,
            stepped,
            step_idx: 0,
            in_step: 0,
        })
    }

    /// Whether the next sample belongs to an on period.
    #[must_use]
    pub fn is_on(&self) -> bool {
        self.steps
            .get(self.step_idx)
            .is_none_or(|&(on, _)| self.in_step < on)
    }

    /// Fills `out` with the next samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out.iter_mut() {
            *s = if self.is_on() { self.next_on() } else { 0 };
            self.advance();
        }
    }

    fn next_on(&mut self) -> i16 {
        use std::f64::consts::TAU;
        let mut v = 0.0f64;
        for i in 0..2 {
            v += f64::from(self.amp[i]) * (TAU * self.phase[i]).sin();
            self.phase[i] = (self.phase[i] + self.step[i]).fract();
        }
        if self.depth > 0.0 {
            let d = f64::from(self.depth);
            v *= (1.0 + d * (TAU * self.phase[2]).sin()) / (1.0 + d);
            self.phase[2] = (self.phase[2] + self.mod_step).fract();
        }
        to_pcm(v as f32)
    }

    fn advance(&mut self) {
        let Some(&(on, off)) = self.steps.get(self.step_idx) else {
            return;
        };
        self.in_step += 1;
        if self.in_step >= on + off {
            self.in_step = 0;
            self.step_idx = (self.step_idx + 1) % self.steps.len();
            // Each on period starts at phase 0.
            self.phase = [0.0; 3];
            if !self.stepped.is_empty() {
                self.step[0] = self.stepped[self.step_idx % self.stepped.len()];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dsp::rms_dbm0;

    fn render(spec: &ToneSpec, n: usize, frame: usize) -> Vec<i16> {
        let mut g = ToneGenerator::new(spec).unwrap();
        let mut out = vec![0i16; n];
        for chunk in out.chunks_mut(frame) {
            g.fill(chunk);
        }
        out
    }

    /// Frequency from the interpolated times of the first and last rising zero crossing.
    fn measured_hz(x: &[i16]) -> f64 {
        let times: Vec<f64> = x
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] < 0 && w[1] >= 0)
            .map(|(i, w)| {
                let (a, b) = (f64::from(w[0]), f64::from(w[1]));
                i as f64 + a / (a - b)
            })
            .collect();
        let span = times[times.len() - 1] - times[0];
        (times.len() - 1) as f64 * 8000.0 / span
    }

    #[test]
    fn frequency_and_level_of_every_german_tone() {
        for (name, spec) in [
            ("dial", DIAL_TONE_DE),
            ("ringback", RINGBACK_DE),
            ("busy", BUSY_DE),
            ("congestion", CONGESTION_DE),
            ("call waiting", CALL_WAITING_DE),
        ] {
            // The first on period (at most 1 s long).
            let x = render(&spec, 8000, 160);
            let on_len = match &spec.cadence {
                Cadence::Repeat(s) => s[0].0 as usize * 8,
                _ => 8000,
            };
            let on = &x[..on_len];
            let hz = measured_hz(on);
            assert!((hz - 425.0).abs() <= 1.0, "{name}: {hz} Hz");
            let level = rms_dbm0(on);
            assert!((level + 10.0).abs() <= 0.5, "{name}: {level} dBm0");
        }
        // Over 2 s the estimate is far tighter than the ±1 Hz asked for.
        let hz = measured_hz(&render(&DIAL_TONE_DE, 16000, 160));
        assert!((hz - 425.0).abs() < 0.05, "{hz}");
    }

    #[test]
    fn howler_has_both_components() {
        let x = render(&HOWLER, 1600, 160);
        let expect = (crate::media::dsp::dbm0_to_peak(-4.0) * 1600.0 / 2.0).powi(2);
        for f in [1400.0, 2060.0] {
            let p = crate::media::dsp::goertzel_power(&x, f);
            assert!((10.0 * (p / expect).log10()).abs() < 0.5, "{f} Hz");
        }
        assert!(crate::media::dsp::goertzel_power(&x, 425.0) < expect * 1e-3);
    }

    /// Every sample equals the ideal sine restarted at each on period; off is silence.
    fn assert_cadence_exact(spec: &ToneSpec, pattern_ms: &[(u32, u32)], seconds: usize) {
        let x = render(spec, 8000 * seconds, 160);
        let amp = f64::from(crate::media::dsp::dbm0_to_peak(-10.0));
        let mut start = 0usize;
        'outer: loop {
            for &(on, off) in pattern_ms {
                let (on, off) = (on as usize * 8, off as usize * 8);
                for n in start..start + on + off {
                    if n >= x.len() {
                        break 'outer;
                    }
                    let want = if n < start + on {
                        let t = (n - start) as f64 / 8000.0;
                        (amp * (std::f64::consts::TAU * 425.0 * t).sin()).round()
                    } else {
                        0.0
                    };
                    assert!(
                        (f64::from(x[n]) - want).abs() <= 1.0,
                        "sample {n}: {} vs {want}",
                        x[n]
                    );
                }
                start += on + off;
            }
        }
    }

    #[test]
    fn cadence_boundaries_exact_to_the_sample() {
        assert_cadence_exact(&RINGBACK_DE, &[(1000, 4000)], 11);
        assert_cadence_exact(&BUSY_DE, &[(480, 480)], 3);
        assert_cadence_exact(&CONGESTION_DE, &[(240, 240)], 2);
        assert_cadence_exact(&CALL_WAITING_DE, &[(200, 200), (200, 5000)], 12);
    }

    #[test]
    fn phase_continuous_across_any_framing() {
        for spec in [DIAL_TONE_DE, BUSY_DE, HOWLER] {
            let whole = render(&spec, 16000, 16000);
            for frame in [80, 160, 37] {
                assert_eq!(render(&spec, 16000, frame), whole, "frame {frame}");
            }
        }
        // No step between neighbouring samples larger than the sine's maximum slope.
        let x = render(&DIAL_TONE_DE, 16000, 80);
        let max_slope =
            f64::from(crate::media::dsp::dbm0_to_peak(-10.0)) * std::f64::consts::TAU * 425.0
                / 8000.0;
        let worst = x
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap();
        assert!(f64::from(worst) <= max_slope + 1.0, "{worst} > {max_slope}");
    }

    #[test]
    fn alerting_signals_play_once_for_their_exact_length() {
        for (spec, ms) in [(DT_AS, 100), (CAS, 80)] {
            let x = render(&spec, 8000, 160);
            let len = ms * 8;
            assert!(x[len..].iter().all(|&s| s == 0), "{ms} ms: silent after");
            assert!(
                x[len - 8..len].iter().any(|&s| s != 0),
                "{ms} ms: on until the end"
            );
            let expect = (crate::media::dsp::dbm0_to_peak(-15.0) * len as f32 / 2.0).powi(2);
            for f in [2130.0, 2750.0] {
                let p = crate::media::dsp::goertzel_power(&x[..len], f);
                assert!((10.0 * (p / expect).log10()).abs() < 0.5, "{ms} ms, {f} Hz");
            }
        }
    }

    #[test]
    fn modulated_tone_envelope() {
        let spec = ToneSpec {
            sound: ToneSound::Modulated {
                carrier_hz: 425.0,
                modulation_hz: 25.0,
                level_dbm0: -10.0,
                depth: 1.0,
            },
            cadence: Cadence::Continuous,
        };
        let x = render(&spec, 8000, 160);
        let peak = f32::from(*x.iter().max().unwrap());
        let a = crate::media::dsp::dbm0_to_peak(-10.0);
        assert!(peak <= a + 1.0 && peak > 0.9 * a, "{peak} vs {a}");
        // 100 % modulation: envelope minimum near zero once per 40 ms.
        let quiet = x
            .chunks(8)
            .filter(|c| c.iter().all(|s| s.abs() < 200))
            .count();
        assert!(quiet >= 25, "{quiet} quiet stretches");
    }

    #[test]
    fn bad_specs_rejected() {
        let cases = [
            (
                ToneSound::Single(4500.0, -10.0),
                Cadence::Continuous,
                ToneError::BadFrequency(4500.0),
            ),
            (
                ToneSound::Single(425.0, -10.0),
                Cadence::Repeat(Cow::Owned(vec![(0, 100)])),
                ToneError::EmptyCadence,
            ),
            (
                ToneSound::Modulated {
                    carrier_hz: 425.0,
                    modulation_hz: 25.0,
                    level_dbm0: -10.0,
                    depth: 1.5,
                },
                Cadence::Continuous,
                ToneError::BadDepth(1.5),
            ),
        ];
        for (sound, cadence, err) in cases {
            assert_eq!(
                ToneGenerator::new(&ToneSpec { sound, cadence }).unwrap_err(),
                err
            );
        }
    }

    #[test]
    fn special_information_tone_steps_through_its_three_frequencies() {
        let x = render(&SPECIAL_INFORMATION, 8 * 2200, 160);
        // 330 ms on, 30 ms off per segment (8 samples/ms); measure inside each segment.
        for (i, hz) in [950.0, 1400.0, 1800.0].into_iter().enumerate() {
            let start = i * 360 * 8 + 400;
            let got = measured_hz(&x[start..start + 1600]);
            assert!((got - hz).abs() < 5.0, "segment {i}: {got} Hz");
        }
        // Then a second of silence, then 950 Hz again.
        assert!(x[1100 * 8..2000 * 8].iter().all(|s| *s == 0));
        let again = measured_hz(&x[2090 * 8..2090 * 8 + 800]);
        assert!((again - 950.0).abs() < 5.0, "{again}");
    }
}
