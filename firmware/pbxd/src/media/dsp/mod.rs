//! Sans-IO signal processing on 8 kHz, 16-bit linear PCM.
//!
//! Everything here works on `&[i16]` frames (typically 80 or 160 samples, 10 or 20 ms),
//! reads no clock and allocates only in constructors (and in the batch helpers that
//! return a `Vec`).
//!
//! Levels are in dBm0 with the G.711 convention also used by spandsp: a full-scale sine
//! (peak 32767) is +3.14 dBm0, so a 0 dBm0 sine has a peak of about 22 827.
//!
//! - [`dtmf`]: DTMF generator and streaming detector (ITU-T Q.23 / Q.24)
//! - [`tone`]: call-progress tone generator with cadences (German set included)
//! - [`fax`]: fax/modem tone detector (CNG 1100 Hz, CED/ANSam 2100 Hz)
//! - [`fsk`]: V.23 FSK modulator and demodulator (1200 baud)
//! - [`callerid`]: ETSI EN 300 659 caller ID (MDMF call set-up message)
//! - [`plc`]: G.711 packet-loss concealment (Appendix I style)

pub mod callerid;
pub mod dtmf;
pub mod fax;
pub mod fsk;
pub mod plc;
pub mod tone;

/// Sample rate of all PCM handled here, in Hz.
pub const SAMPLE_RATE: u32 = 8000;

/// Level in dBm0 of a full-scale sine (peak 32767), per G.711.
#[allow(clippy::approx_constant)] // a level in dB that happens to look like pi
const FULL_SCALE_SINE_DBM0: f32 = 3.14;

/// Peak amplitude of a sine at `level_dbm0`.
#[must_use]
pub fn dbm0_to_peak(level_dbm0: f32) -> f32 {
    32767.0 * 10f32.powf((level_dbm0 - FULL_SCALE_SINE_DBM0) / 20.0)
}

/// Level in dBm0 of a sine with peak amplitude `peak`.
#[must_use]
pub fn peak_to_dbm0(peak: f32) -> f32 {
    if peak <= 0.0 {
        return f32::NEG_INFINITY;
    }
    20.0 * (peak / 32767.0).log10() + FULL_SCALE_SINE_DBM0
}

/// Power level of `samples` in dBm0 (the level of a sine with the same RMS).
#[must_use]
pub fn rms_dbm0(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return f32::NEG_INFINITY;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / samples.len() as f64).sqrt();
    peak_to_dbm0((rms * std::f64::consts::SQRT_2) as f32)
}

/// Goertzel power of `samples` at `freq_hz`: `|X(f)|^2` of the single-bin DFT.
///
/// For a sine of peak `a` covering all `n` samples this is about `(a * n / 2)^2`.
#[must_use]
pub fn goertzel_power(samples: &[i16], freq_hz: f32) -> f32 {
    let w = 2.0 * std::f32::consts::PI * freq_hz / SAMPLE_RATE as f32;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in samples {
        let s0 = f32::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// Converts a float sample to PCM with saturation.
#[inline]
fn to_pcm(x: f32) -> i16 {
    // `as` saturates for floats; round to nearest first.
    x.round() as i16
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Signal helpers for the DSP tests: deterministic noise and tone synthesis.

    use super::{dbm0_to_peak, SAMPLE_RATE};

    /// Small deterministic PRNG (xorshift64*), so tests are reproducible without `rand`.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Rng(seed.max(1))
        }
        pub(crate) fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        /// Uniform in [0, 1).
        pub(crate) fn uniform(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }
        /// Standard normal (Box-Muller).
        pub(crate) fn gauss(&mut self) -> f64 {
            let u1 = self.uniform().max(1e-12);
            let u2 = self.uniform();
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        }
    }

    /// Sum of sines `(freq_hz, level_dbm0)` for `n` samples, as f64.
    pub(crate) fn tones(parts: &[(f64, f32)], n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(SAMPLE_RATE);
                parts
                    .iter()
                    .map(|&(f, l)| {
                        f64::from(dbm0_to_peak(l)) * (2.0 * std::f64::consts::PI * f * t).sin()
                    })
                    .sum()
            })
            .collect()
    }

    /// Adds white Gaussian noise so that signal power / noise power = `snr_db`.
    pub(crate) fn add_noise(signal: &mut [f64], snr_db: f64, rng: &mut Rng) {
        let p: f64 = signal.iter().map(|x| x * x).sum::<f64>() / signal.len() as f64;
        let sigma = (p / 10f64.powf(snr_db / 10.0)).sqrt();
        for x in signal.iter_mut() {
            *x += sigma * rng.gauss();
        }
    }

    /// Rounds to PCM with saturation.
    pub(crate) fn pcm(signal: &[f64]) -> Vec<i16> {
        signal.iter().map(|&x| x.round() as i16).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_conversions_round_trip() {
        assert!((dbm0_to_peak(FULL_SCALE_SINE_DBM0) - 32767.0).abs() < 0.5);
        assert!((dbm0_to_peak(0.0) - 22_827.0).abs() < 5.0);
        assert!((peak_to_dbm0(dbm0_to_peak(-26.0)) + 26.0).abs() < 1e-3);
        let sine: Vec<i16> = (0..8000)
            .map(|i| to_pcm(dbm0_to_peak(-10.0) * (i as f32 * 0.3).sin()))
            .collect();
        assert!((rms_dbm0(&sine) + 10.0).abs() < 0.05);
    }

    #[test]
    fn goertzel_sees_its_frequency_only() {
        let a = dbm0_to_peak(-10.0);
        let x: Vec<i16> = (0..160)
            .map(|i| to_pcm(a * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 8000.0).sin()))
            .collect();
        let on = goertzel_power(&x, 1000.0);
        let expect = (a * 160.0 / 2.0).powi(2);
        assert!((on / expect - 1.0).abs() < 0.01, "{on} vs {expect}");
        assert!(goertzel_power(&x, 1500.0) < on * 1e-3);
    }
}

#[cfg(test)]
mod crosscheck;
