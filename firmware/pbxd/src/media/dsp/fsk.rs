//! V.23 FSK at 1200 baud (mark 1300 Hz = 1, space 2100 Hz = 0), as used for ETSI caller ID.
//!
//! The modulator is continuous-phase and keeps bit timing to the exact rational
//! 8000/1200 = 6⅔ samples per bit. Bytes go out as UART frames: start bit 0, 8 data bits
//! LSB first, stop bit 1.
//!
//! The demodulator works on a captured buffer (a caller-ID burst is under a second): per
//! sample it compares the energy at the mark and space frequencies over a sliding window
//! of one bit (a non-coherent FSK discriminator), waits for a run of mark, then reads UART
//! frames, re-synchronising on every start-bit edge and sampling each bit at its middle.

use super::{dbm0_to_peak, to_pcm, SAMPLE_RATE};

/// Modulation parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FskParams {
    /// Frequency for bit 1, Hz.
    pub mark_hz: f32,
    /// Frequency for bit 0, Hz.
    pub space_hz: f32,
    /// Bit rate.
    pub baud: f32,
    /// Transmit level, dBm0.
    pub level_dbm0: f32,
}

impl FskParams {
    /// ITU-T V.23 forward channel as used by ETSI EN 300 659-1, at −13 dBm0 (our choice
    /// within the standard's receive range).
    pub const V23: Self = Self {
        mark_hz: 1300.0,
        space_hz: 2100.0,
        baud: 1200.0,
        level_dbm0: -13.0,
    };

    fn samples_per_bit(&self) -> f64 {
        f64::from(SAMPLE_RATE) / f64::from(self.baud)
    }
}

/// Continuous-phase FSK modulator.
#[derive(Debug, Clone)]
pub struct FskModulator {
    params: FskParams,
    amp: f64,
    phase: f64,
    /// Samples and bits produced so far; bit `k` ends at sample `k * 8000 / baud`,
    /// computed from the counts so no rounding error accumulates.
    produced: u64,
    bits: u64,
}

impl FskModulator {
    /// A modulator at phase 0.
    #[must_use]
    pub fn new(params: FskParams) -> Self {
        Self {
            params,
            amp: f64::from(dbm0_to_peak(params.level_dbm0)),
            phase: 0.0,
            produced: 0,
            bits: 0,
        }
    }

    /// Appends one bit's worth of samples (6 or 7 at 1200 baud).
    pub fn push_bit(&mut self, bit: bool, out: &mut Vec<i16>) {
        let f = if bit {
            self.params.mark_hz
        } else {
            self.params.space_hz
        };
        let step = f64::from(f) / f64::from(SAMPLE_RATE);
        self.bits += 1;
        let bit_end =
            (self.bits as f64 * f64::from(SAMPLE_RATE) / f64::from(self.params.baud)).ceil();
        while (self.produced as f64) < bit_end {
            out.push(to_pcm(
                (self.amp * (std::f64::consts::TAU * self.phase).sin()) as f32,
            ));
            self.phase = (self.phase + step).fract();
            self.produced += 1;
        }
    }

    /// Appends `n` bits alternating 0, 1, 0, ... (channel seizure).
    pub fn push_alternating(&mut self, n: usize, out: &mut Vec<i16>) {
        for i in 0..n {
            self.push_bit(i % 2 == 1, out);
        }
    }

    /// Appends `n` mark bits.
    pub fn push_mark(&mut self, n: usize, out: &mut Vec<i16>) {
        for _ in 0..n {
            self.push_bit(true, out);
        }
    }

    /// Appends a byte as a UART frame: start 0, data LSB first, stop 1.
    pub fn push_byte(&mut self, byte: u8, out: &mut Vec<i16>) {
        self.push_bit(false, out);
        for i in 0..8 {
            self.push_bit(byte >> i & 1 == 1, out);
        }
        self.push_bit(true, out);
    }
}

/// Errors of the demodulator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FskError {
    /// No run of mark signal long enough to start on.
    #[error("no mark signal found")]
    NoMarkSignal,
    /// A frame's stop bit was 0.
    #[error("framing error in byte {index}")]
    Framing {
        /// Zero-based index of the byte.
        index: usize,
    },
}

/// Demodulator for a captured FSK burst.
#[derive(Debug, Clone)]
pub struct FskDemodulator {
    params: FskParams,
    /// Minimum run of mark before the first start bit, in bits.
    min_mark_bits: usize,
}

impl FskDemodulator {
    /// A demodulator that needs at least `min_mark_bits` of mark before the data (ETSI
    /// sends 180 on-hook and 80 off-hook; 40 leaves margin for a late start).
    #[must_use]
    pub fn new(params: FskParams, min_mark_bits: usize) -> Self {
        Self {
            params,
            min_mark_bits,
        }
    }

    /// Soft decision per sample (> 0 means mark) and the discriminator energy.
    fn discriminate(&self, x: &[i16]) -> (Vec<f32>, Vec<f32>) {
        let w = self.params.samples_per_bit().round() as usize;
        let mix = |f: f32| -> Vec<(f64, f64)> {
            let step = std::f64::consts::TAU * f64::from(f) / f64::from(SAMPLE_RATE);
            x.iter()
                .enumerate()
                .map(|(n, &s)| {
                    let ph = (step * n as f64) % std::f64::consts::TAU;
                    (f64::from(s) * ph.cos(), -f64::from(s) * ph.sin())
                })
                .collect()
        };
        let (m, s) = (mix(self.params.mark_hz), mix(self.params.space_hz));
        let mut soft = vec![0.0f32; x.len()];
        let mut energy = vec![0.0f32; x.len()];
        let (mut mr, mut mi, mut sr, mut si) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for n in 0..x.len() {
            mr += m[n].0;
            mi += m[n].1;
            sr += s[n].0;
            si += s[n].1;
            if n >= w {
                mr -= m[n - w].0;
                mi -= m[n - w].1;
                sr -= s[n - w].0;
                si -= s[n - w].1;
            }
            let (pm, ps) = (mr * mr + mi * mi, sr * sr + si * si);
            soft[n] = (pm - ps) as f32;
            energy[n] = (pm + ps) as f32;
        }
        (soft, energy)
    }

    /// Demodulates the UART bytes after the first long enough run of mark. Reading stops
    /// when no start bit follows within 20 bits, or the carrier drops below a tenth of its
    /// energy during the mark run, or the samples end.
    pub fn demodulate(&self, x: &[i16]) -> Result<Vec<u8>, FskError> {
        let spb = self.params.samples_per_bit();
        let (soft, energy) = self.discriminate(x);
        let min_run = (self.min_mark_bits as f64 * spb) as usize;
        // Find the end of the first long mark run: the first falling edge after it.
        let mut run = 0usize;
        let mut run_energy = 0.0f64;
        let mut edge = None;
        for n in 0..x.len() {
            if soft[n] > 0.0 {
                run += 1;
                run_energy += f64::from(energy[n]);
            } else if run >= min_run {
                edge = Some((n, run_energy / run as f64));
                break;
            } else {
                run = 0;
                run_energy = 0.0;
            }
        }
        let (mut edge, mark_energy) = edge.ok_or(FskError::NoMarkSignal)?;
        let carrier = (mark_energy / 10.0) as f32;
        // Soft value around the middle of bit `k` after an edge.
        let bit_at = |edge: usize, k: usize| -> Option<f32> {
            let mid = edge as f64 + (k as f64 + 0.5) * spb;
            let c = mid as usize;
            let r = c.saturating_sub(1)..(c + 2).min(x.len());
            (c < x.len() && energy[c] >= carrier).then(|| soft[r].iter().sum())
        };
        let mut bytes = Vec::new();
        // Start bit must still be space at its middle (else a glitch: resync below).
        while let Some(start) = bit_at(edge, 0) {
            if start < 0.0 {
                let mut byte = 0u8;
                for i in 0..8 {
                    let Some(v) = bit_at(edge, 1 + i) else {
                        return Ok(bytes);
                    };
                    if v > 0.0 {
                        byte |= 1 << i;
                    }
                }
                match bit_at(edge, 9) {
                    Some(v) if v > 0.0 => bytes.push(byte),
                    Some(_) => return Err(FskError::Framing { index: bytes.len() }),
                    None => return Ok(bytes),
                }
                edge = (edge as f64 + 9.5 * spb) as usize;
            } else {
                edge += 1;
            }
            // Next falling edge (mark to space) within 20 bits.
            let limit = (edge + (20.0 * spb) as usize).min(x.len());
            match (edge..limit).find(|&n| soft[n] <= 0.0 && energy[n] >= carrier) {
                Some(n) => edge = n,
                None => break,
            }
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dsp::goertzel_power;
    use crate::media::dsp::testutil::{add_noise, pcm, Rng};

    fn burst(params: FskParams, data: &[u8]) -> Vec<i16> {
        let mut m = FskModulator::new(params);
        let mut out = vec![0i16; 400];
        m.push_alternating(300, &mut out);
        m.push_mark(180, &mut out);
        for &b in data {
            m.push_byte(b, &mut out);
        }
        m.push_mark(5, &mut out);
        out.extend(std::iter::repeat_n(0, 400));
        out
    }

    #[test]
    fn bit_timing_is_exact_and_phase_continuous() {
        let mut m = FskModulator::new(FskParams::V23);
        let mut out = Vec::new();
        m.push_alternating(1200, &mut out);
        assert_eq!(out.len(), 8000, "1200 bits are exactly one second");
        // Continuous phase: no step larger than the faster tone's maximum slope.
        let a = f64::from(dbm0_to_peak(-13.0));
        let max_slope = a * std::f64::consts::TAU * 2100.0 / 8000.0;
        let worst = out
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap();
        assert!(f64::from(worst) <= max_slope + 1.0);
    }

    #[test]
    fn mark_and_space_frequencies() {
        let mut m = FskModulator::new(FskParams::V23);
        let mut out = Vec::new();
        m.push_mark(120, &mut out);
        assert!(goertzel_power(&out, 1300.0) > 1000.0 * goertzel_power(&out, 2100.0));
        let mut out = Vec::new();
        for _ in 0..120 {
            m.push_bit(false, &mut out);
        }
        assert!(goertzel_power(&out, 2100.0) > 1000.0 * goertzel_power(&out, 1300.0));
    }

    #[test]
    fn round_trip_all_byte_values() {
        let data: Vec<u8> = (0..=255).collect();
        let demod = FskDemodulator::new(FskParams::V23, 40);
        assert_eq!(demod.demodulate(&burst(FskParams::V23, &data)), Ok(data));
    }

    #[test]
    fn round_trip_with_noise_and_offset() {
        let data: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
        let mut rng = Rng::new(3);
        for offset in [0.99f32, 1.0, 1.01] {
            let tx = FskParams {
                mark_hz: 1300.0 * offset,
                space_hz: 2100.0 * offset,
                baud: 1200.0 * offset,
                ..FskParams::V23
            };
            let mut x: Vec<f64> = burst(tx, &data).iter().map(|&s| f64::from(s)).collect();
            add_noise(&mut x, 25.0, &mut rng);
            let demod = FskDemodulator::new(FskParams::V23, 40);
            assert_eq!(
                demod.demodulate(&pcm(&x)),
                Ok(data.clone()),
                "offset {offset}"
            );
        }
    }

    #[test]
    fn silence_has_no_mark_and_bad_stop_bit_is_reported() {
        let demod = FskDemodulator::new(FskParams::V23, 40);
        assert_eq!(demod.demodulate(&[0; 4000]), Err(FskError::NoMarkSignal));
        let mut m = FskModulator::new(FskParams::V23);
        let mut out = Vec::new();
        m.push_mark(100, &mut out);
        m.push_byte(0x41, &mut out);
        // A frame whose stop bit is 0.
        for bit in [
            false, true, false, false, false, false, false, true, false, false,
        ] {
            m.push_bit(bit, &mut out);
        }
        m.push_mark(20, &mut out);
        assert_eq!(demod.demodulate(&out), Err(FskError::Framing { index: 1 }));
    }
}
