//! DTMF generation (ITU-T Q.23) and streaming detection (ITU-T Q.24).
//!
//! # Detector
//! Samples are cut into blocks of [`BLOCK`] = 102 samples (12.75 ms, as in spandsp). For
//! each of the 8 Q.23 frequencies the block's single-bin DFT is computed as two halves
//! `A` (samples 0..51) and `B` (51..102) — the same sum a Goertzel filter computes, kept
//! complex. The strongest row and column bin (over the whole block) pick the candidate
//! digit; then, per half, a least-squares fit of exactly those two tones (a precomputed
//! 4x4 inverse Gram matrix applied to the half-block DFT values) gives each tone's complex
//! amplitude without the other tone's leakage. The phase step of a tone from half `A` to
//! half `B` measures its actual frequency. A block is a *hit* for the digit when:
//!
//! | check | limit (constant) |
//! |---|---|
//! | level per tone | ≥ −30 dBm0 ([`MIN_LEVEL_DBM0`]; −26 accepted, −35 rejected) |
//! | row louder than column | ≤ 8 dB ([`MAX_ROW_OVER_COL_DB`]) |
//! | column louder than row | ≤ 4 dB ([`MAX_COL_OVER_ROW_DB`]) |
//! | frequency deviation | ≤ 2.5 % ([`MAX_FREQ_DEVIATION`]; ±1.5 % accepted, ±3.5 % rejected) |
//! | both halves carry the tone | weaker half ≥ 0.85 × stronger ([`MIN_HALF_BALANCE`]) |
//! | talk-off: the fitted two tones carry the block | ≥ 85 % of its energy ([`MIN_TONE_ENERGY_RATIO`]) |
//!
//! The energy ratio rejects speech, noise and anything with harmonics: a third tone or a
//! 2nd harmonic stronger than about −4.5 dB relative to each DTMF tone fails it. The half balance means a hit needs the tone over
//! (nearly) the whole block, which makes the duration limits sharp.
//!
//! A digit *starts* after 2 consecutive hit blocks for it (≥ 25.5 ms of tone: a 40 ms tone
//! always contains 2 whole blocks, a 23 ms tone never does) and *ends* after 3 consecutive
//! blocks without it: a pause of 40 ms always spoils 3 adjacent blocks (2 whole ones and an
//! edge block with at least half of it silent), while a 10 ms drop-out (which Q.24 asks to
//! bridge) touches at most 2 blocks.
//!
//! ```
//! use pbxd::media::dsp::dtmf::{DtmfDetector, DtmfEventKind, DtmfGenerator};
//! use std::time::Duration;
//!
//! let mut line = DtmfGenerator::new('7', -20.0, Duration::from_millis(60))?.samples();
//! line.resize(line.len() + 800, 0); // 100 ms of silence after the digit
//! let mut det = DtmfDetector::new();
//! let mut dialled = String::new();
//! for frame in line.chunks(160) {
//!     det.handle_samples(frame); // one 20 ms frame from the line
//!     while let Some(ev) = det.poll_event() {
//!         if ev.kind == DtmfEventKind::Start {
//!             dialled.push(ev.digit);
//!         }
//!     }
//! }
//! assert_eq!(dialled, "7");
//! # Ok::<(), pbxd::media::dsp::dtmf::DtmfError>(())
//! ```
//!
//! The row/column naming of twist follows the task brief: "reverse twist" is the row (low
//! group) tone louder, "normal twist" the column (high group) louder.

use std::collections::VecDeque;
use std::f32::consts::PI;
use std::time::Duration;

use super::{dbm0_to_peak, peak_to_dbm0, to_pcm, SAMPLE_RATE};

/// Row (low group) frequencies, Hz (ITU-T Q.23).
pub const ROW_FREQS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// Column (high group) frequencies, Hz (ITU-T Q.23).
pub const COL_FREQS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// Digits by `[row][column]`.
const DIGITS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Detector block length in samples (12.75 ms).
pub const BLOCK: usize = 102;
const HALF: usize = BLOCK / 2;
/// Minimum level per tone, dBm0.
pub const MIN_LEVEL_DBM0: f32 = -30.0;
/// Maximum excess of the row tone over the column tone, dB.
pub const MAX_ROW_OVER_COL_DB: f32 = 8.0;
/// Maximum excess of the column tone over the row tone, dB.
pub const MAX_COL_OVER_ROW_DB: f32 = 4.0;
/// Maximum relative frequency deviation of each tone.
pub const MAX_FREQ_DEVIATION: f32 = 0.025;
/// Minimum ratio of the weaker to the stronger half-block magnitude.
pub const MIN_HALF_BALANCE: f32 = 0.85;
/// Minimum share of the block energy carried by the two tones.
pub const MIN_TONE_ENERGY_RATIO: f32 = 0.85;
/// Consecutive hit blocks that start a digit.
const START_BLOCKS: u8 = 2;
/// Consecutive non-hit blocks that end a digit.
const END_BLOCKS: u8 = 3;

/// Errors of the DTMF generator.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DtmfError {
    /// The character is not one of `0-9 * # A-D`.
    #[error("not a DTMF digit: {0:?}")]
    InvalidDigit(char),
}

/// Row and column frequencies of a digit (`0-9 * # A-D`, case-insensitive).
#[must_use]
pub fn digit_freqs(digit: char) -> Option<(f32, f32)> {
    let d = digit.to_ascii_uppercase();
    DIGITS.iter().enumerate().find_map(|(r, row)| {
        row.iter()
            .position(|&c| c == d)
            .map(|c| (ROW_FREQS[r], COL_FREQS[c]))
    })
}

/// Generates one DTMF digit: both tones at `level_dbm0` each for a fixed duration.
#[derive(Debug, Clone)]
pub struct DtmfGenerator {
    /// Phase increments (radians per sample) of row and column tone.
    step: [f64; 2],
    amp: f32,
    pos: usize,
    len: usize,
}

impl DtmfGenerator {
    /// A generator for `digit` with each tone at `level_dbm0`, lasting `duration`
    /// (rounded down to whole samples).
    pub fn new(digit: char, level_dbm0: f32, duration: Duration) -> Result<Self, DtmfError> {
        let (row, col) = digit_freqs(digit).ok_or(DtmfError::InvalidDigit(digit))?;
        let len = (duration.as_micros() * u128::from(SAMPLE_RATE) / 1_000_000) as usize;
        Ok(Self {
            step: [row, col].map(|f| std::f64::consts::TAU * f64::from(f) / f64::from(SAMPLE_RATE)),
            amp: dbm0_to_peak(level_dbm0),
            pos: 0,
            len,
        })
    }

    /// Total length in samples.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the tone has zero length.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when all samples have been produced.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.pos >= self.len
    }

    /// Fills `out` with the next samples; after the tone ends the rest is silence.
    /// Returns the number of tone samples written.
    pub fn fill(&mut self, out: &mut [i16]) -> usize {
        let mut written = 0;
        for s in out.iter_mut() {
            if self.pos < self.len {
                // Phase from the sample index in f64: no accumulated rounding error.
                let n = self.pos as f64;
                let v = (self.step[0] * n).sin() + (self.step[1] * n).sin();
                *s = to_pcm(self.amp * v as f32);
                self.pos += 1;
                written += 1;
            } else {
                *s = 0;
            }
        }
        written
    }

    /// All samples of the digit.
    #[must_use]
    pub fn samples(mut self) -> Vec<i16> {
        let mut out = vec![0; self.len - self.pos.min(self.len)];
        self.fill(&mut out);
        out
    }
}

/// Whether a digit began or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfEventKind {
    /// The digit has been present long enough to be accepted.
    Start,
    /// The digit is gone (after having started).
    End,
}

/// A detected digit edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    /// `0-9 * # A-D`.
    pub digit: char,
    /// Start or end.
    pub kind: DtmfEventKind,
    /// Index (counted from the detector's first sample) of the sample after the block that
    /// decided the event; the edge itself lies up to two blocks earlier.
    pub sample: u64,
}

/// Streaming DTMF detector; see the module docs for the algorithm and limits.
///
/// Feed frames of any length with [`handle_samples`](Self::handle_samples), then drain
/// [`poll_event`](Self::poll_event) to `None`.
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    /// `cos`/`sin` of `w * n` for the 8 frequencies (rows then columns), n in 0..BLOCK.
    cos: Vec<[f32; BLOCK]>,
    sin: Vec<[f32; BLOCK]>,
    /// Inverse Gram matrices for the two-tone fit, indexed `(row * 4 + col) * 2 + half`.
    fit: Vec<[f32; 16]>,
    buf: [f32; BLOCK],
    fill: usize,
    samples_seen: u64,
    current: Option<char>,
    candidate: Option<char>,
    hits: u8,
    misses: u8,
    events: VecDeque<DtmfEvent>,
}

impl Default for DtmfDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl DtmfDetector {
    /// A detector in the idle state.
    #[must_use]
    pub fn new() -> Self {
        let freqs = ROW_FREQS.iter().chain(COL_FREQS.iter());
        let (mut cos, mut sin) = (Vec::with_capacity(8), Vec::with_capacity(8));
        for &f in freqs {
            let w = 2.0 * std::f64::consts::PI * f64::from(f) / f64::from(SAMPLE_RATE);
            let (mut c, mut s) = ([0.0; BLOCK], [0.0; BLOCK]);
            for n in 0..BLOCK {
                c[n] = (w * n as f64).cos() as f32;
                s[n] = (w * n as f64).sin() as f32;
            }
            cos.push(c);
            sin.push(s);
        }
        let w = |f: f32| 2.0 * std::f64::consts::PI * f64::from(f) / f64::from(SAMPLE_RATE);
        let mut fit = Vec::with_capacity(32);
        for &r in &ROW_FREQS {
            for &c in &COL_FREQS {
                fit.push(inverse_gram(w(r), w(c), 0..HALF));
                fit.push(inverse_gram(w(r), w(c), HALF..BLOCK));
            }
        }
        Self {
            cos,
            sin,
            fit,
            buf: [0.0; BLOCK],
            fill: 0,
            samples_seen: 0,
            current: None,
            candidate: None,
            hits: 0,
            misses: 0,
            // Two events per block at most; callers drain after each frame.
            events: VecDeque::with_capacity(8),
        }
    }

    /// The digit currently present, if one has started and not yet ended.
    #[must_use]
    pub fn current_digit(&self) -> Option<char> {
        self.current
    }

    /// Feeds PCM samples.
    pub fn handle_samples(&mut self, samples: &[i16]) {
        for &x in samples {
            self.buf[self.fill] = f32::from(x);
            self.fill += 1;
            self.samples_seen += 1;
            if self.fill == BLOCK {
                self.fill = 0;
                let verdict = self.analyse_block();
                self.step(verdict);
            }
        }
    }

    /// Next detected event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<DtmfEvent> {
        self.events.pop_front()
    }

    fn step(&mut self, verdict: Option<char>) {
        let sample = self.samples_seen;
        if let Some(d) = self.current {
            if verdict == Some(d) {
                self.misses = 0;
                return;
            }
            self.misses += 1;
            if self.misses < END_BLOCKS {
                return;
            }
            self.events.push_back(DtmfEvent {
                digit: d,
                kind: DtmfEventKind::End,
                sample,
            });
            self.current = None;
            self.candidate = verdict;
            self.hits = u8::from(verdict.is_some());
            return;
        }
        if verdict.is_some() && verdict == self.candidate {
            self.hits = self.hits.saturating_add(1);
        } else {
            self.candidate = verdict;
            self.hits = u8::from(verdict.is_some());
        }
        if self.hits >= START_BLOCKS {
            if let Some(d) = self.candidate {
                self.current = Some(d);
                self.misses = 0;
                self.events.push_back(DtmfEvent {
                    digit: d,
                    kind: DtmfEventKind::Start,
                    sample,
                });
            }
        }
    }

    /// Half-block DFTs `(A, B)` as `(re, im)` pairs for frequency index `k`.
    fn halves(&self, k: usize) -> [(f32, f32); 2] {
        let (c, s) = (&self.cos[k], &self.sin[k]);
        let mut out = [(0.0, 0.0); 2];
        for (h, o) in out.iter_mut().enumerate() {
            let r = h * HALF..(h + 1) * HALF;
            let (mut re, mut im) = (0.0f32, 0.0f32);
            for ((x, c), s) in self.buf[r.clone()].iter().zip(&c[r.clone()]).zip(&s[r]) {
                re += x * c;
                im -= x * s;
            }
            *o = (re, im);
        }
        out
    }

    fn analyse_block(&self) -> Option<char> {
        let energy: f32 = self.buf.iter().map(|x| x * x).sum();
        if energy <= 0.0 {
            return None;
        }
        let mut halves = [[(0.0f32, 0.0f32); 2]; 8];
        let mut power = [0.0f32; 8];
        for (k, (h, p)) in halves.iter_mut().zip(power.iter_mut()).enumerate() {
            *h = self.halves(k);
            let (re, im) = (h[0].0 + h[1].0, h[0].1 + h[1].1);
            *p = re * re + im * im;
        }
        let argmax = |r: std::ops::Range<usize>| {
            r.max_by(|&a, &b| power[a].total_cmp(&power[b]))
                .expect("range of 4 is not empty")
        };
        let (row, col) = (argmax(0..4), argmax(4..8));
        // Least-squares fit of the two tones in each half: free of their mutual leakage.
        let mut amp = [[(0.0f32, 0.0f32); 2]; 2]; // [tone][half] complex amplitude
        let mut tone_energy = 0.0f32;
        for h in 0..2 {
            let v = [
                halves[row][h].0,
                -halves[row][h].1,
                halves[col][h].0,
                -halves[col][h].1,
            ];
            let g = &self.fit[(row * 4 + col - 4) * 2 + h];
            let mut theta = [0.0f32; 4];
            for (i, t) in theta.iter_mut().enumerate() {
                *t = (0..4).map(|j| g[i * 4 + j] * v[j]).sum();
            }
            tone_energy += theta.iter().zip(&v).map(|(t, v)| t * v).sum::<f32>();
            amp[0][h] = (theta[0], -theta[1]);
            amp[1][h] = (theta[2], -theta[3]);
        }
        let mut level = [0.0f32; 2];
        for (i, f) in [ROW_FREQS[row], COL_FREQS[col - 4]].into_iter().enumerate() {
            let [(ar, ai), (br, bi)] = amp[i];
            let (ma, mb) = ((ar * ar + ai * ai).sqrt(), (br * br + bi * bi).sqrt());
            if ma.min(mb) < MIN_HALF_BALANCE * ma.max(mb) {
                return None;
            }
            // Phase step from A to B is HALF * (frequency error in rad/sample).
            let (cr, ci) = (br * ar + bi * ai, bi * ar - br * ai);
            let dev_hz = ci.atan2(cr) / HALF as f32 * SAMPLE_RATE as f32 / (2.0 * PI);
            if dev_hz.abs() > MAX_FREQ_DEVIATION * f {
                return None;
            }
            level[i] = peak_to_dbm0((ma + mb) / 2.0);
        }
        let [row_db, col_db] = level;
        let ok = row_db >= MIN_LEVEL_DBM0
            && col_db >= MIN_LEVEL_DBM0
            && row_db - col_db <= MAX_ROW_OVER_COL_DB
            && col_db - row_db <= MAX_COL_OVER_ROW_DB
            && tone_energy >= MIN_TONE_ENERGY_RATIO * energy;
        ok.then(|| DIGITS[row][col - 4])
    }
}

/// Inverse Gram matrix (row-major 4x4) of the basis `cos wr n, sin wr n, cos wc n, sin wc n`
/// over `n` in `range`, for the least-squares two-tone fit.
fn inverse_gram(wr: f64, wc: f64, range: std::ops::Range<usize>) -> [f32; 16] {
    let basis = |i: usize, n: f64| match i {
        0 => (wr * n).cos(),
        1 => (wr * n).sin(),
        2 => (wc * n).cos(),
        _ => (wc * n).sin(),
    };
    // Augmented [G | I], Gauss-Jordan with partial pivoting; G is well conditioned
    // (distinct frequencies, 51 samples).
    let mut m = [[0.0f64; 8]; 4];
    for (i, row) in m.iter_mut().enumerate() {
        for (j, g) in row.iter_mut().take(4).enumerate() {
            *g = range
                .clone()
                .map(|n| basis(i, n as f64) * basis(j, n as f64))
                .sum();
        }
        row[4 + i] = 1.0;
    }
    for c in 0..4 {
        let p = (c..4)
            .max_by(|&a, &b| m[a][c].abs().total_cmp(&m[b][c].abs()))
            .expect("non-empty pivot range");
        m.swap(c, p);
        let d = m[c][c];
        for v in m[c].iter_mut() {
            *v /= d;
        }
        for r in 0..4 {
            if r != c {
                let f = m[r][c];
                let pivot = m[c];
                for (v, pv) in m[r].iter_mut().zip(pivot) {
                    *v -= f * pv;
                }
            }
        }
    }
    let mut out = [0.0f32; 16];
    for i in 0..4 {
        for j in 0..4 {
            out[i * 4 + j] = m[i][4 + j] as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dsp::testutil::{add_noise, pcm, tones, Rng};

    const ALL: &str = "123A456B789C*0#D";

    fn ms(n: usize) -> usize {
        n * 8
    }

    /// Runs the detector over `x` in 80-sample frames plus 300 ms of silence.
    fn detect(x: &[i16]) -> Vec<DtmfEvent> {
        let mut det = DtmfDetector::new();
        let mut out = Vec::new();
        let tail = vec![0i16; ms(300)];
        for frame in x.chunks(80).chain(tail.chunks(80)) {
            det.handle_samples(frame);
            while let Some(e) = det.poll_event() {
                out.push(e);
            }
        }
        out
    }

    fn digits(events: &[DtmfEvent]) -> String {
        events
            .iter()
            .filter(|e| e.kind == DtmfEventKind::Start)
            .map(|e| e.digit)
            .collect()
    }

    /// A two-tone burst with explicit frequencies and levels, preceded by `lead` samples
    /// of silence.
    fn burst(row: (f64, f32), col: (f64, f32), len: usize, lead: usize) -> Vec<i16> {
        let mut x = vec![0.0; lead];
        x.extend(tones(&[row, col], len));
        pcm(&x)
    }

    #[test]
    fn all_16_digits_detected_with_start_and_end() {
        for d in ALL.chars() {
            let x = DtmfGenerator::new(d, -10.0, Duration::from_millis(60))
                .unwrap()
                .samples();
            let ev = detect(&x);
            assert_eq!(ev.len(), 2, "digit {d}: {ev:?}");
            assert_eq!((ev[0].digit, ev[0].kind), (d, DtmfEventKind::Start));
            assert_eq!((ev[1].digit, ev[1].kind), (d, DtmfEventKind::End));
        }
    }

    #[test]
    fn generator_rejects_bad_digit_and_counts_samples() {
        assert_eq!(
            DtmfGenerator::new('x', -10.0, Duration::from_millis(50)).unwrap_err(),
            DtmfError::InvalidDigit('x')
        );
        let g = DtmfGenerator::new('5', -10.0, Duration::from_millis(50)).unwrap();
        assert_eq!(g.len(), 400);
        assert_eq!(digit_freqs('d'), Some((941.0, 1633.0)));
    }

    #[test]
    fn frequency_deviation_table() {
        struct Case {
            dev: f64,
            detected: bool,
        }
        let cases = [
            Case {
                dev: 0.0,
                detected: true,
            },
            Case {
                dev: 0.014,
                detected: true,
            },
            Case {
                dev: -0.014,
                detected: true,
            },
            Case {
                dev: 0.036,
                detected: false,
            },
            Case {
                dev: -0.036,
                detected: false,
            },
        ];
        for c in &cases {
            for d in ALL.chars() {
                let (r, k) = digit_freqs(d).unwrap();
                // Deviate both tones, and each one alone.
                for (dr, dc) in [(c.dev, c.dev), (c.dev, 0.0), (0.0, c.dev)] {
                    let x = burst(
                        (f64::from(r) * (1.0 + dr), -10.0),
                        (f64::from(k) * (1.0 + dc), -10.0),
                        ms(60),
                        0,
                    );
                    let got = digits(&detect(&x));
                    let want = if c.detected {
                        d.to_string()
                    } else {
                        String::new()
                    };
                    assert_eq!(got, want, "digit {d} dev row {dr} col {dc}");
                }
            }
        }
    }

    #[test]
    fn twist_table() {
        // (row level, column level, detected)
        let cases = [
            (-10.0, -10.0, true),
            (-10.0, -17.0, true),  // row 7 dB above column
            (-10.0, -19.0, false), // row 9 dB above column
            (-13.0, -10.0, true),  // column 3 dB above row
            (-15.0, -10.0, false), // column 5 dB above row
        ];
        for (rl, cl, detected) in cases {
            for d in ALL.chars() {
                let (r, k) = digit_freqs(d).unwrap();
                let x = burst((f64::from(r), rl), (f64::from(k), cl), ms(60), 0);
                let want = if detected {
                    d.to_string()
                } else {
                    String::new()
                };
                assert_eq!(digits(&detect(&x)), want, "digit {d} row {rl} col {cl}");
            }
        }
    }

    #[test]
    fn level_table() {
        let cases = [
            (0.0, true),
            (-10.0, true),
            (-26.0, true),
            (-35.0, false),
            (-45.0, false),
        ];
        for (level, detected) in cases {
            for d in ALL.chars() {
                let x = DtmfGenerator::new(d, level, Duration::from_millis(60))
                    .unwrap()
                    .samples();
                let want = if detected {
                    d.to_string()
                } else {
                    String::new()
                };
                assert_eq!(digits(&detect(&x)), want, "digit {d} at {level} dBm0");
            }
        }
    }

    #[test]
    fn duration_table_at_every_block_alignment() {
        let cases = [(23, false), (20, false), (40, true), (45, true)];
        for (dur, detected) in cases {
            for lead in (0..BLOCK).step_by(3) {
                for d in ['1', '5', '#', 'D'] {
                    let (r, k) = digit_freqs(d).unwrap();
                    let x = burst((f64::from(r), -10.0), (f64::from(k), -10.0), ms(dur), lead);
                    let want = if detected {
                        d.to_string()
                    } else {
                        String::new()
                    };
                    assert_eq!(digits(&detect(&x)), want, "{d} {dur} ms, lead {lead}");
                }
            }
        }
    }

    #[test]
    fn hundred_digits_50ms_on_50ms_off() {
        let seq: String = (0..100)
            .map(|i| ALL.as_bytes()[(i * 7 + i / 16) % 16] as char)
            .collect();
        let mut x = Vec::new();
        for d in seq.chars() {
            x.extend(
                DtmfGenerator::new(d, -20.0, Duration::from_millis(50))
                    .unwrap()
                    .samples(),
            );
            x.extend(std::iter::repeat_n(0i16, ms(50)));
        }
        let ev = detect(&x);
        assert_eq!(digits(&ev), seq);
        assert_eq!(ev.len(), 200, "every start has its end");
        for pair in ev.chunks(2) {
            assert_eq!(pair[0].kind, DtmfEventKind::Start);
            assert_eq!(pair[1].kind, DtmfEventKind::End);
            assert_eq!(pair[0].digit, pair[1].digit);
        }
    }

    #[test]
    fn detected_in_noise_at_20_db_snr() {
        for seed in 1..=4 {
            let mut rng = Rng::new(seed);
            let mut x = Vec::new();
            for d in ALL.chars() {
                let (r, k) = digit_freqs(d).unwrap();
                x.extend(tones(
                    &[(f64::from(r), -20.0), (f64::from(k), -20.0)],
                    ms(50),
                ));
                x.extend(std::iter::repeat_n(0.0, ms(60)));
            }
            // SNR 20 dB relative to the mean power of the whole signal (tones are 45 % of it,
            // so the SNR while a tone is on is 23.5 dB).
            add_noise(&mut x, 20.0, &mut rng);
            assert_eq!(digits(&detect(&pcm(&x))), ALL, "seed {seed}");
        }
    }

    /// Pitch-varying harmonic series through vowel formant resonators.
    fn speech_like(seconds: usize, rng: &mut Rng) -> Vec<f64> {
        // (F1, F2, F3) of a few vowels: /a/ /i/ /u/ /e/ /o/.
        let vowels = [
            (700.0, 1220.0, 2600.0),
            (300.0, 2300.0, 3000.0),
            (300.0, 870.0, 2240.0),
            (530.0, 1840.0, 2480.0),
            (570.0, 840.0, 2410.0),
        ];
        let n = 8000 * seconds;
        let mut out = Vec::with_capacity(n);
        let mut phase = 0.0f64;
        for i in 0..n {
            let t = i as f64 / 8000.0;
            // Pitch glides between 85 and 260 Hz.
            let f0 = 170.0
                + 85.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin()
                + 20.0 * (2.0 * std::f64::consts::PI * 3.1 * t).sin();
            phase += f0 / 8000.0;
            // Vowel changes every 150 ms, with a crossfade-free switch.
            let (f1, f2, f3) = vowels[(i / 1200) % vowels.len()];
            let mut s = 0.0;
            let mut h = 1.0;
            while h * f0 < 3800.0 {
                let f = h * f0;
                let formant = |fc: f64, bw: f64| 1.0 / (1.0 + ((f - fc) / bw).powi(2));
                let gain =
                    (formant(f1, 90.0) + 0.7 * formant(f2, 110.0) + 0.3 * formant(f3, 150.0))
                        / h.sqrt();
                s += gain * (2.0 * std::f64::consts::PI * h * phase).sin();
                h += 1.0;
            }
            out.push(6000.0 * s + 50.0 * rng.gauss());
        }
        out
    }

    #[test]
    fn talk_off_speech_like_and_white_noise_give_no_digits() {
        let mut rng = Rng::new(42);
        let speech = pcm(&speech_like(4, &mut rng));
        assert!(
            crate::media::dsp::rms_dbm0(&speech) > -25.0,
            "speech is loud"
        );
        assert_eq!(detect(&speech), vec![]);
        let noise: Vec<f64> = (0..8000 * 3).map(|_| 3000.0 * rng.gauss()).collect();
        assert_eq!(detect(&pcm(&noise)), vec![]);
    }

    #[test]
    fn forty_ms_tones_and_pauses_at_every_alignment() {
        // Repeated digits only separate through the pause.
        let seq = "55#11D0";
        for lead in (0..BLOCK).step_by(5) {
            let mut x = vec![0.0; lead];
            for d in seq.chars() {
                let (r, k) = digit_freqs(d).unwrap();
                x.extend(tones(
                    &[(f64::from(r), -10.0), (f64::from(k), -10.0)],
                    ms(40),
                ));
                x.extend(std::iter::repeat_n(0.0, ms(40)));
            }
            assert_eq!(digits(&detect(&pcm(&x))), seq, "lead {lead}");
        }
    }

    #[test]
    fn third_tone_or_strong_harmonic_is_not_a_digit() {
        // (extra frequency, its level relative to each DTMF tone in dB, detected)
        let cases = [
            (500.0, 0.0, false),   // three equal tones
            (1394.0, -3.0, false), // 2nd harmonic of 697 Hz, strong
            (500.0, -20.0, true),  // weak interference is tolerated
            (1394.0, -20.0, true),
        ];
        for (f, rel, detected) in cases {
            let x = tones(
                &[(697.0, -10.0), (1209.0, -10.0), (f, -10.0 + rel as f32)],
                ms(60),
            );
            let want = if detected { "1" } else { "" };
            assert_eq!(digits(&detect(&pcm(&x))), want, "{f} Hz at {rel} dB");
        }
    }

    #[test]
    fn dropout_of_ten_ms_is_bridged() {
        let (r, k) = digit_freqs('7').unwrap();
        let on = tones(&[(f64::from(r), -10.0), (f64::from(k), -10.0)], ms(60));
        let mut x = on.clone();
        x.extend(std::iter::repeat_n(0.0, ms(10)));
        x.extend(on);
        assert_eq!(digits(&detect(&pcm(&x))), "7");
    }
}
