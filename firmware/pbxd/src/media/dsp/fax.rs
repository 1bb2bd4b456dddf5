//! Fax and modem tone detection (ITU-T T.30 CNG, V.25 CED, V.8 ANSam).
//!
//! - CNG: the calling fax's 1100 Hz, 0.5 s on / 3 s off.
//! - CED / ANSam: the answering fax's or modem's 2100 Hz (2.6–4 s), plain, with a phase
//!   reversal every 450 ms (V.25 for echo-canceller disabling), or amplitude-modulated at
//!   15 Hz (V.8 ANSam, ANSam/).
//!
//! Per 10 ms block the detector measures how much of the block's power sits at the tone
//! (Goertzel, at the tone and ±25 Hz so that the T.30/V.25 frequency tolerances still
//! land in a bin). A tone counts once it has been the block's main content for
//! [`MIN_ON`] with gaps of at most [`MAX_GAP`] (a phase reversal empties one block).
//! Speech may hold a pure 1100 Hz for 100 ms; it does not hold it for 400 ms. Sans-IO:
//! `now` (the time of a frame's first sample) is passed in with every frame.

use std::time::{Duration, Instant};

use super::{goertzel_power, SAMPLE_RATE};

/// Samples per analysis block (10 ms).
const BLOCK: usize = 80;

/// How long a tone must last to count (CNG's burst is 0.5 s ±15 %: at least 425 ms).
pub const MIN_ON: Duration = Duration::from_millis(400);

/// Longest dropout inside one tone (a phase reversal spoils one or two blocks).
pub const MAX_GAP: Duration = Duration::from_millis(30);

/// Share of a block's power that must sit at the tone.
const MIN_SHARE: f64 = 0.6;

/// Quietest block that counts, as mean square (about −43 dBm0).
const MIN_POWER: f64 = 3.0e3;

/// Which fax/modem tone was heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaxTone {
    /// 1100 Hz calling tone (a fax is calling).
    Cng,
    /// 2100 Hz answer tone, with or without phase reversals or AM (a fax or modem
    /// answers).
    Ced,
}

impl FaxTone {
    /// The tone's frequency, Hz.
    #[must_use]
    pub fn hz(self) -> f32 {
        match self {
            FaxTone::Cng => 1100.0,
            FaxTone::Ced => 2100.0,
        }
    }

    /// Short name for logs and the port state.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            FaxTone::Cng => "CNG",
            FaxTone::Ced => "CED",
        }
    }
}

/// Tracks one tone's run of blocks.
#[derive(Debug, Clone, Default)]
struct Run {
    since: Option<Instant>,
    last_end: Option<Instant>,
}

impl Run {
    /// One block from `start` to `end`, `on` when the tone was its content; whether
    /// the tone has now lasted [`MIN_ON`].
    fn block(&mut self, start: Instant, end: Instant, on: bool) -> bool {
        if !on {
            if self
                .last_end
                .is_some_and(|t| end.saturating_duration_since(t) > MAX_GAP)
            {
                *self = Run::default();
            }
            return false;
        }
        let continues = self
            .last_end
            .is_some_and(|t| start.saturating_duration_since(t) <= MAX_GAP);
        if !continues {
            self.since = Some(start);
        }
        self.last_end = Some(end);
        self.since
            .is_some_and(|s| end.saturating_duration_since(s) >= MIN_ON)
    }
}

/// Streaming CNG and CED/ANSam detector for one audio direction.
#[derive(Debug, Clone, Default)]
pub struct FaxToneDetector {
    cng: Run,
    ced: Run,
    /// Samples of a block not yet complete.
    pending: Vec<i16>,
    /// Time of the first pending sample.
    pending_at: Option<Instant>,
}

impl FaxToneDetector {
    /// A detector that has heard nothing.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `frame`, whose first sample was at `now`; returns the tone once one has
    /// lasted [`MIN_ON`] (again on every later frame while it lasts).
    pub fn handle_frame(&mut self, now: Instant, frame: &[i16]) -> Option<FaxTone> {
        let mut heard = None;
        let mut at = now;
        let mut rest = frame;
        if !self.pending.is_empty() {
            at = self.pending_at.unwrap_or(now);
            let take = (BLOCK - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() < BLOCK {
                return None;
            }
            let block = std::mem::take(&mut self.pending);
            heard = self.block(at, &block).or(heard);
            at = now + sample_time(take);
        }
        let mut chunks = rest.chunks_exact(BLOCK);
        for block in chunks.by_ref() {
            heard = self.block(at, block).or(heard);
            at += sample_time(BLOCK);
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            self.pending.extend_from_slice(tail);
            self.pending_at = Some(at);
        }
        heard
    }

    fn block(&mut self, start: Instant, block: &[i16]) -> Option<FaxTone> {
        let end = start + sample_time(block.len());
        let power: f64 = block
            .iter()
            .map(|&s| f64::from(s) * f64::from(s))
            .sum::<f64>()
            / block.len() as f64;
        let loud = power >= MIN_POWER;
        let cng = self.cng.block(
            start,
            end,
            loud && share(block, FaxTone::Cng.hz()) >= MIN_SHARE,
        );
        let ced = self.ced.block(
            start,
            end,
            loud && share(block, FaxTone::Ced.hz()) >= MIN_SHARE,
        );
        if ced {
            Some(FaxTone::Ced)
        } else if cng {
            Some(FaxTone::Cng)
        } else {
            None
        }
    }
}

fn sample_time(n: usize) -> Duration {
    Duration::from_micros(n as u64 * 1_000_000 / u64::from(SAMPLE_RATE))
}

/// Share of `block`'s power at `hz` (1.0: a pure tone there), best of the bins at
/// `hz` and `hz` ± 25 Hz.
fn share(block: &[i16], hz: f32) -> f64 {
    let total: f64 = block.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let best = [hz - 25.0, hz, hz + 25.0]
        .iter()
        .map(|&f| goertzel_power(block, f))
        .fold(0.0f32, f32::max);
    2.0 * f64::from(best) / (block.len() as f64 * total)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{add_noise, pcm, tones, Rng};
    use super::super::{dbm0_to_peak, SAMPLE_RATE};
    use super::*;

    const FRAME: usize = 160;

    #[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
    fn epoch() -> Instant {
        Instant::now()
    }

    /// Feeds `x` in 20 ms frames from `t0`; the time of the first detection, if any.
    fn run(det: &mut FaxToneDetector, t0: Instant, x: &[i16]) -> Option<(Duration, FaxTone)> {
        for (k, f) in x.chunks(FRAME).enumerate() {
            let now = t0 + Duration::from_millis(20 * k as u64);
            if let Some(t) = det.handle_frame(now, f) {
                return Some((now - t0 + Duration::from_millis(20), t));
            }
        }
        None
    }

    fn tone(hz: f64, level: f32, ms: usize) -> Vec<i16> {
        pcm(&tones(&[(hz, level)], ms * 8))
    }

    fn silence(ms: usize) -> Vec<i16> {
        vec![0; ms * 8]
    }

    /// 2100 Hz with a 180° phase reversal every 450 ms (V.25 with reversals).
    fn ced_with_reversals(ms: usize) -> Vec<i16> {
        let a = f64::from(dbm0_to_peak(-12.0));
        (0..ms * 8)
            .map(|i| {
                let t = i as f64 / f64::from(SAMPLE_RATE);
                // Reversals fall mid-block: that block's two halves cancel.
                let flip = if ((i + 40) / 3600) % 2 == 1 {
                    -1.0
                } else {
                    1.0
                };
                (flip * a * (std::f64::consts::TAU * 2100.0 * t).sin()) as i16
            })
            .collect()
    }

    /// V.8 ANSam: 2100 Hz amplitude-modulated by 15 Hz at 20 %.
    fn ansam(ms: usize) -> Vec<i16> {
        let a = f64::from(dbm0_to_peak(-12.0));
        (0..ms * 8)
            .map(|i| {
                let t = i as f64 / f64::from(SAMPLE_RATE);
                let env = 1.0 + 0.2 * (std::f64::consts::TAU * 15.0 * t).sin();
                (a * env * (std::f64::consts::TAU * 2100.0 * t).sin()) as i16
            })
            .collect()
    }

    struct Case {
        signal: Vec<i16>,
        want: Option<FaxTone>,
        msg: &'static str,
    }

    #[test]
    fn tones_are_told_apart_and_talk_off_does_not_trigger() {
        let mut rng = Rng::new(7);
        let mut noisy_cng = tones(&[(1100.0, -20.0)], 4000);
        add_noise(&mut noisy_cng, 15.0, &mut rng);
        let mut burst_train = Vec::new();
        for _ in 0..10 {
            // Talk-off: repeated 100 ms bursts of 1100 Hz with 60 ms pauses.
            burst_train.extend(tone(1100.0, -10.0, 100));
            burst_train.extend(silence(60));
        }
        let cases = [
            Case {
                signal: [tone(1100.0, -10.0, 500), silence(3000)].concat(),
                want: Some(FaxTone::Cng),
                msg: "CNG: 0.5 s of 1100 Hz",
            },
            Case {
                signal: tone(1138.0, -10.0, 500),
                want: Some(FaxTone::Cng),
                msg: "CNG at the T.30 tolerance (+38 Hz)",
            },
            Case {
                signal: pcm(&noisy_cng),
                want: Some(FaxTone::Cng),
                msg: "CNG at -20 dBm0 with 15 dB SNR",
            },
            Case {
                signal: tone(2100.0, -12.0, 3000),
                want: Some(FaxTone::Ced),
                msg: "CED without reversals",
            },
            Case {
                signal: ced_with_reversals(3000),
                want: Some(FaxTone::Ced),
                msg: "CED with phase reversals",
            },
            Case {
                signal: ansam(3000),
                want: Some(FaxTone::Ced),
                msg: "ANSam (15 Hz AM)",
            },
            Case {
                signal: [tone(1100.0, -10.0, 100), silence(1000)].concat(),
                want: None,
                msg: "talk-off: one 100 ms burst of 1100 Hz",
            },
            Case {
                signal: burst_train,
                want: None,
                msg: "talk-off: 100 ms bursts with pauses",
            },
            Case {
                signal: tone(1100.0, -10.0, 300),
                want: None,
                msg: "300 ms of 1100 Hz is too short",
            },
            Case {
                signal: pcm(&tones(&[(1100.0, -10.0), (1500.0, -10.0)], 4000)),
                want: None,
                msg: "1100 Hz with an equal 1500 Hz (not a pure tone)",
            },
            Case {
                signal: tone(1100.0, -50.0, 1000),
                want: None,
                msg: "below the level threshold",
            },
            Case {
                signal: pcm(&tones(&[(425.0, -10.0)], 4000)),
                want: None,
                msg: "dial tone",
            },
        ];
        let t0 = epoch();
        for c in cases {
            let mut det = FaxToneDetector::new();
            let got = run(&mut det, t0, &c.signal).map(|(_, t)| t);
            assert_eq!(got, c.want, "{}", c.msg);
        }
    }

    #[test]
    fn speech_like_noise_and_frame_sizes_do_not_matter() {
        // White noise at speech level: no tone.
        let mut rng = Rng::new(3);
        let mut noise = vec![0.0; 8000 * 5];
        for x in &mut noise {
            *x = 3000.0 * rng.gauss();
        }
        let mut det = FaxToneDetector::new();
        assert_eq!(run(&mut det, epoch(), &pcm(&noise)), None);
        // Odd frame sizes (not multiples of the block) still detect CNG in time.
        let cng = tone(1100.0, -10.0, 500);
        let t0 = epoch();
        let mut det = FaxToneDetector::new();
        let mut at = None;
        for (k, f) in cng.chunks(73).enumerate() {
            let now = t0 + sample_time(73 * k);
            if det.handle_frame(now, f).is_some() {
                at = Some(now + sample_time(f.len()) - t0);
                break;
            }
        }
        let at = at.expect("CNG detected");
        assert!(
            at >= MIN_ON && at <= MIN_ON + Duration::from_millis(20),
            "{at:?}"
        );
    }

    #[test]
    fn detection_takes_min_on_of_simulated_time() {
        let mut det = FaxToneDetector::new();
        let (at, t) = run(&mut det, epoch(), &tone(2100.0, -12.0, 1000)).expect("CED");
        assert_eq!(t, FaxTone::Ced);
        assert_eq!(at, MIN_ON);
    }
}
