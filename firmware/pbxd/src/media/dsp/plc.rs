//! Packet-loss concealment for G.711 in the style of ITU-T G.711 Appendix I.
//!
//! The concealer keeps the last [`HISTORY`] samples that were played. When samples are
//! missing it estimates the pitch period of that history (normalised cross-correlation
//! over 5..15 ms lags), then repeats the last pitch period; after 10 ms of erasure it
//! cycles the last two periods and after 20 ms the last three (fewer "buzzy" artefacts),
//! with a quarter-period cross-fade at each switch. From 10 ms on the output is attenuated
//! linearly by 20 % per 10 ms, so it is silent after 60 ms. When real samples return, the
//! synthetic signal is overlap-added into them over 4 ms, plus 4 ms per further 10 ms of
//! erasure, at most 10 ms.
//!
//! Unlike the reference we add no 3.75 ms output delay: the first synthetic period starts
//! right after the last real sample (no look-back smoothing of the samples already played).
//! This keeps the jitter buffer's delay exact at the cost of a small step at the start of
//! an erasure, which the periodicity of voiced speech keeps small.

/// History kept for pitch estimation: 48.75 ms, as in G.711 Appendix I.
pub const HISTORY: usize = 390;
/// Shortest pitch period searched: 5 ms (200 Hz).
pub const PITCH_MIN: usize = 40;
/// Longest pitch period searched: 15 ms (66.7 Hz).
pub const PITCH_MAX: usize = 120;
/// Correlation window for the pitch search: 20 ms.
const CORR_LEN: usize = 160;
/// Erasure length after which the output is silent: 60 ms.
pub const MAX_CONCEAL: usize = 480;
/// 10 ms in samples: the step of the attenuation and period-count schedule.
const TEN_MS: usize = 80;

/// Concealer state for one stream; see the module docs.
#[derive(Debug, Clone)]
pub struct Plc {
    /// The last [`HISTORY`] output samples, oldest first.
    hist: Vec<f32>,
    /// Samples concealed in the current erasure (0: no erasure).
    erased: usize,
    /// Pitch period found at the start of the erasure.
    pitch: usize,
    /// Snapshot of the last three periods at the start of the erasure.
    periods: Vec<f32>,
}

impl Default for Plc {
    fn default() -> Self {
        Self::new()
    }
}

impl Plc {
    /// A concealer whose history is silence.
    #[must_use]
    pub fn new() -> Self {
        Self {
            hist: vec![0.0; HISTORY],
            erased: 0,
            pitch: PITCH_MIN,
            periods: Vec::with_capacity(3 * PITCH_MAX),
        }
    }

    /// Whether an erasure is in progress (the last call was [`Plc::conceal`]).
    #[must_use]
    pub fn in_erasure(&self) -> bool {
        self.erased > 0
    }

    /// The pitch period (samples) used by the current or last erasure.
    #[must_use]
    pub fn pitch(&self) -> usize {
        self.pitch
    }

    /// Real samples about to be played: cross-fades them in after an erasure (modifying
    /// `samples`) and records them as history.
    pub fn good(&mut self, samples: &mut [i16]) {
        if self.erased > 0 {
            let extra = self.erased.saturating_sub(TEN_MS) / TEN_MS;
            let ola = (32 + 32 * extra).min(TEN_MS).min(samples.len());
            for (i, s) in samples.iter_mut().take(ola).enumerate() {
                let w = (i + 1) as f32 / (ola + 1) as f32;
                let synth = self.synth(self.erased + i);
                *s = to_pcm((1.0 - w) * synth + w * f32::from(*s));
            }
            self.erased = 0;
        }
        self.push(samples.iter().map(|&s| f32::from(s)));
    }

    /// Plays silence that is not an erasure (before a stream starts, or after the
    /// concealment has faded out): ends any erasure without a cross-fade.
    pub fn silence(&mut self, n: usize) {
        self.erased = 0;
        self.push(std::iter::repeat_n(0.0, n));
    }

    /// Fills `out` with the concealment of missing samples. Returns `false` once the
    /// erasure is longer than [`MAX_CONCEAL`] and `out` is all silence.
    pub fn conceal(&mut self, out: &mut [i16]) -> bool {
        if self.erased == 0 {
            self.start_erasure();
        }
        let mut audible = false;
        for s in out.iter_mut() {
            let v = self.synth(self.erased);
            self.erased += 1;
            *s = to_pcm(v);
            audible |= *s != 0;
        }
        let hist_len = self.hist.len();
        let n = out.len().min(hist_len);
        self.hist.copy_within(n.., 0);
        for (h, &s) in self.hist[hist_len - n..]
            .iter_mut()
            .zip(&out[out.len() - n..])
        {
            *h = f32::from(s);
        }
        audible
    }

    fn push(&mut self, samples: impl ExactSizeIterator<Item = f32>) {
        let len = self.hist.len();
        let n = samples.len();
        if n >= len {
            let skip = n - len;
            for (h, s) in self.hist.iter_mut().zip(samples.skip(skip)) {
                *h = s;
            }
        } else {
            self.hist.copy_within(n.., 0);
            for (h, s) in self.hist[len - n..].iter_mut().zip(samples) {
                *h = s;
            }
        }
    }

    fn start_erasure(&mut self) {
        self.pitch = estimate_pitch(&self.hist);
        let take = 3 * self.pitch;
        self.periods.clear();
        self.periods.extend_from_slice(&self.hist[HISTORY - take..]);
    }

    /// Synthetic sample `t` samples into the erasure, attenuation included.
    fn synth(&self, t: usize) -> f32 {
        if t >= MAX_CONCEAL {
            return 0.0;
        }
        let p = self.pitch;
        let k = (1 + t / TEN_MS).min(3);
        let at = |k: usize| {
            let len = k * p;
            // `periods` ends with the last played sample; k periods back is its start.
            self.periods[3 * p - len + t % len]
        };
        let mut v = at(k);
        // Quarter-period cross-fade from the previous period count after a switch.
        let since_switch = t.saturating_sub((k - 1) * TEN_MS);
        if k > 1 && since_switch < p / 4 {
            let w = (since_switch + 1) as f32 / (p / 4 + 1) as f32;
            v = (1.0 - w) * at(k - 1) + w * v;
        }
        let gain = if t < TEN_MS {
            1.0
        } else {
            1.0 - 0.2 * (t - TEN_MS) as f32 / TEN_MS as f32
        };
        v * gain.max(0.0)
    }
}

/// Pitch period of the end of `hist` (length [`HISTORY`]): the lag in
/// [`PITCH_MIN`]..=[`PITCH_MAX`] maximising the normalised cross-correlation of the last
/// 20 ms with the 20 ms one lag earlier.
#[must_use]
pub fn estimate_pitch(hist: &[f32]) -> usize {
    let n = hist.len();
    if n < CORR_LEN + PITCH_MAX {
        return PITCH_MIN;
    }
    let tail = &hist[n - CORR_LEN..];
    let score = |lag: usize| {
        let earlier = &hist[n - CORR_LEN - lag..n - lag];
        let (mut xy, mut yy) = (0.0f32, 0.0f32);
        for (&x, &y) in tail.iter().zip(earlier) {
            xy += x * y;
            yy += y * y;
        }
        if yy > 0.0 {
            xy / yy.sqrt()
        } else {
            0.0
        }
    };
    let scores: Vec<f32> = (PITCH_MIN..=PITCH_MAX).map(score).collect();
    let at = |lag: usize| scores[lag - PITCH_MIN];
    // Strict `>`: the shortest lag wins ties (silence).
    let mut best = PITCH_MIN;
    for lag in PITCH_MIN..=PITCH_MAX {
        if at(lag) > at(best) {
            best = lag;
        }
    }
    // A multiple of the period correlates as well as the period: prefer a sub-multiple
    // that scores nearly as high.
    for div in [3, 2] {
        let centre = (best + div / 2) / div;
        let Some(cand) = (centre.saturating_sub(1)..=centre + 1)
            .filter(|l| (PITCH_MIN..=PITCH_MAX).contains(l))
            .max_by(|&a, &b| at(a).total_cmp(&at(b)))
        else {
            continue;
        };
        if at(best) > 0.0 && at(cand) >= 0.9 * at(best) {
            return cand;
        }
    }
    best
}

fn to_pcm(x: f32) -> i16 {
    x.round() as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A voiced-speech-like signal: 125 Hz fundamental (64 samples) with harmonics.
    fn voiced(n: usize, start: usize) -> Vec<i16> {
        (start..start + n)
            .map(|i| {
                let t = i as f32 / 8000.0;
                let w = std::f32::consts::TAU * 125.0 * t;
                (6000.0 * w.sin() + 3000.0 * (2.0 * w).sin() + 1500.0 * (3.0 * w + 0.5).sin())
                    as i16
            })
            .collect()
    }

    fn snr_db(reference: &[i16], got: &[i16]) -> f64 {
        let sig: f64 = reference.iter().map(|&x| f64::from(x).powi(2)).sum();
        let err: f64 = reference
            .iter()
            .zip(got)
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum();
        10.0 * (sig / err.max(1.0)).log10()
    }

    #[test]
    fn pitch_of_a_periodic_signal() {
        for period in [40usize, 57, 64, 100, 120] {
            let hist: Vec<f32> = (0..HISTORY)
                .map(|i| {
                    let ph = std::f32::consts::TAU * i as f32 / period as f32;
                    1000.0 * ph.sin() + 400.0 * (3.0 * ph).cos()
                })
                .collect();
            assert_eq!(estimate_pitch(&hist), period);
        }
    }

    #[test]
    fn a_lost_frame_of_voiced_sound_is_rebuilt_closely() {
        let mut plc = Plc::new();
        let mut x = voiced(400, 0);
        plc.good(&mut x);
        let mut out = [0i16; 80];
        assert!(plc.conceal(&mut out));
        assert_eq!(plc.pitch(), 64);
        // The concealment continues the waveform: within 10 ms it is the signal itself.
        let truth = voiced(80, 400);
        let snr = snr_db(&truth, &out);
        assert!(snr > 20.0, "concealment SNR {snr:.1} dB");
    }

    #[test]
    fn attenuation_schedule_and_silence_after_60_ms() {
        let mut plc = Plc::new();
        let mut x = voiced(400, 0);
        plc.good(&mut x);
        let mut rms = Vec::new();
        for _ in 0..8 {
            let mut out = [0i16; 80];
            let audible = plc.conceal(&mut out);
            let r = (out.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 80.0).sqrt();
            rms.push((r, audible));
        }
        // 0-10 ms: full level; then falling every 10 ms; silent from 60 ms.
        let full = rms[0].0;
        assert!(full > 4000.0, "{rms:?}");
        for w in rms[1..6].windows(2) {
            assert!(w[1].0 < w[0].0, "not decreasing: {rms:?}");
        }
        // 10-20 ms: gain falls from 1.0 to 0.8, mean about 0.9.
        assert!((rms[1].0 / full - 0.9).abs() < 0.1, "{rms:?}");
        assert!(rms[6].0 == 0.0 && !rms[6].1 && !rms[7].1, "{rms:?}");
    }

    #[test]
    fn recovery_cross_fades_without_a_step() {
        let mut plc = Plc::new();
        let mut x = voiced(400, 0);
        plc.good(&mut x);
        let mut lost = [0i16; 160];
        plc.conceal(&mut lost);
        // The real signal returns with an unrelated phase: no sample-to-sample jump larger
        // than the signal's own largest step (plus the fade's share).
        let mut back: Vec<i16> = voiced(160, 1000 + 17);
        let max_step = back
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap();
        let last = lost[159];
        plc.good(&mut back);
        assert!(!plc.in_erasure());
        let first_step = (i32::from(back[0]) - i32::from(last)).abs();
        assert!(first_step <= max_step, "{first_step} > {max_step}");
        let worst = back
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap();
        assert!(worst <= 2 * max_step, "{worst} > 2 * {max_step}");
        // After the fade the samples are the real ones.
        assert_eq!(&back[80..], &voiced(160, 1017)[80..]);
    }

    #[test]
    fn silence_history_conceals_as_silence() {
        let mut plc = Plc::new();
        plc.silence(400);
        let mut out = [1i16; 160];
        assert!(!plc.conceal(&mut out));
        assert!(out.iter().all(|&s| s == 0));
    }
}
