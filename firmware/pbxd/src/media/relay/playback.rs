//! Local playback into a leg: call-progress and confirmation tones, music on hold, audio
//! clips (WAV files, see [`super::wav`]).
//!
//! A [`Playback`] describes what to play; [`RelaySession::play`](super::RelaySession::play)
//! starts it on a leg. While a leg plays, the relay sends that leg one generated packet per
//! 20 ms instead of forwarding the other leg's audio (see [`super::session`] for timing,
//! numbering and the marker bit).
//!
//! Tones and PCM clips loop until stopped. [`Playback::Once`] and [`Playback::For`] end by
//! themselves; the relay then resumes forwarding and reports
//! [`RelayEvent::PlaybackDone`](super::RelayEvent::PlaybackDone). A tone whose cadence is
//! [`Cadence::Once`] (an alerting signal) also ends by itself after its on time.
//!
//! # Music on hold
//! [`Playback::music_on_hold`] is a generated loop, not a [`ToneSpec`]: a tone spec has one
//! sound, a melody needs several. It is a rising C major arpeggio (C5 523.25 Hz, E5
//! 659.26 Hz, G5 783.99 Hz), each note 400 ms with a soft 20 ms attack and an exponential
//! decay, a quiet octave overtone for warmth, then 800 ms of rest: a 2 s loop at about
//! -16 dBm0 peak. It is rendered once per process (40 KB) and shared by every call.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::media::dsp::tone::{Cadence, ToneError, ToneGenerator, ToneSound, ToneSpec};
use crate::media::dsp::SAMPLE_RATE;

/// Samples per packet: 20 ms at 8 kHz (also the RTP timestamp step of every codec here).
pub(crate) const FRAME: usize = 160;

/// What to play into a leg.
#[derive(Debug, Clone, PartialEq)]
pub enum Playback {
    /// A cadenced tone from the DSP module, e.g.
    /// [`RINGBACK_DE`](crate::media::dsp::tone::RINGBACK_DE) or [`CONFIRMATION`]. Loops
    /// until stopped, except a [`Cadence::Once`] tone, which ends after its on time.
    Tone(ToneSpec),
    /// 8 kHz 16-bit linear samples (e.g. from [`load_wav_8k`](super::load_wav_8k)), looped
    /// until stopped. An empty clip plays silence.
    Pcm(Arc<[i16]>),
    /// The inner source played one time, then done: a PCM clip once through; a tone one
    /// cadence cycle (all its on/off steps). A continuous tone has no cycle: refused with
    /// [`PlaybackError::Endless`] (use [`Playback::For`]).
    Once(Box<Playback>),
    /// The inner source for at most this long (rounded up to whole 20 ms packets), then
    /// done (earlier if the inner source ends earlier).
    For(Box<Playback>, Duration),
}

impl Playback {
    /// The generated music-on-hold loop (see the [module documentation](self)).
    #[must_use]
    pub fn music_on_hold() -> Self {
        static MOH: OnceLock<Arc<[i16]>> = OnceLock::new();
        Playback::Pcm(Arc::clone(MOH.get_or_init(render_music_on_hold)))
    }

    /// [`CONFIRMATION`] played once (for feature codes): 920 ms, then done.
    #[must_use]
    pub fn confirmation() -> Self {
        Playback::Tone(CONFIRMATION).once()
    }

    /// This source played one time ([`Playback::Once`]).
    #[must_use]
    pub fn once(self) -> Self {
        Playback::Once(Box::new(self))
    }

    /// This source for at most `limit` ([`Playback::For`]).
    #[must_use]
    pub fn limited(self, limit: Duration) -> Self {
        Playback::For(Box::new(self), limit)
    }
}

/// Confirmation tone for feature codes (our choice, no network standard): three 120 ms
/// beeps of 880 Hz at -10 dBm0, 80 ms apart, then 400 ms of silence. Play it with
/// [`Playback::confirmation`] (once, 920 ms); as a plain [`Playback::Tone`] it repeats.
pub const CONFIRMATION: ToneSpec = ToneSpec {
    sound: ToneSound::Single(880.0, -10.0),
    cadence: Cadence::Repeat(Cow::Borrowed(&[(120, 80), (120, 80), (120, 400)])),
};

/// Why a [`Playback`] cannot be played.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlaybackError {
    /// The tone description is invalid.
    #[error("invalid tone: {0}")]
    Tone(#[from] ToneError),
    /// [`Playback::Once`] of a continuous tone, which never ends.
    #[error("a continuous tone has no single cycle to play once; give it a duration")]
    Endless,
}

/// The innermost sound of a playback.
#[derive(Debug, Clone)]
enum Source {
    Tone(ToneGenerator),
    Pcm { data: Arc<[i16]>, pos: usize },
}

/// A validated, running playback: produces 8 kHz frames and knows when it is done.
#[derive(Debug, Clone)]
pub(crate) struct Player {
    source: Source,
    /// Samples left before done; `None` loops forever.
    left: Option<u64>,
}

fn ms_to_samples(ms: u64) -> u64 {
    ms * u64::from(SAMPLE_RATE) / 1000
}

fn duration_to_samples(d: Duration) -> u64 {
    // Whole packets, rounded up: a limit of 50 ms plays three 20 ms packets.
    let frame_ns = 1_000_000_000 / u128::from(SAMPLE_RATE) * FRAME as u128;
    let frames = d.as_nanos().div_ceil(frame_ns);
    u64::try_from(frames.saturating_mul(FRAME as u128)).unwrap_or(u64::MAX)
}

/// Samples until `p` ends by itself, `None` if it loops forever.
fn limit(p: &Playback) -> Result<Option<u64>, PlaybackError> {
    Ok(match p {
        Playback::Tone(spec) => match spec.cadence {
            Cadence::Once(ms) => Some(ms_to_samples(u64::from(ms))),
            _ => None,
        },
        Playback::Pcm(_) => None,
        Playback::Once(inner) => Some(match &**inner {
            Playback::Tone(spec) => match &spec.cadence {
                Cadence::Continuous => return Err(PlaybackError::Endless),
                Cadence::Repeat(steps) => steps
                    .iter()
                    .map(|&(on, off)| ms_to_samples(u64::from(on) + u64::from(off)))
                    .sum(),
                Cadence::Once(ms) => ms_to_samples(u64::from(*ms)),
            },
            Playback::Pcm(data) => data.len() as u64,
            other => limit(other)?.ok_or(PlaybackError::Endless)?,
        }),
        Playback::For(inner, d) => {
            let d = duration_to_samples(*d);
            Some(limit(inner)?.map_or(d, |l| l.min(d)))
        }
    })
}

fn source(p: &Playback) -> Result<Source, PlaybackError> {
    Ok(match p {
        Playback::Tone(spec) => Source::Tone(ToneGenerator::new(spec)?),
        Playback::Pcm(data) => Source::Pcm {
            data: Arc::clone(data),
            pos: 0,
        },
        Playback::Once(inner) | Playback::For(inner, _) => source(inner)?,
    })
}

impl Player {
    /// Validates `p` and prepares it from its start.
    pub(crate) fn new(p: &Playback) -> Result<Self, PlaybackError> {
        Ok(Self {
            left: limit(p)?,
            source: source(p)?,
        })
    }

    /// Fills `out` with the next samples (silence past the end) and returns whether the
    /// playback is done after them.
    pub(crate) fn fill(&mut self, out: &mut [i16]) -> bool {
        match &mut self.source {
            Source::Tone(g) => g.fill(out),
            Source::Pcm { data, pos } => {
                if data.is_empty() {
                    out.fill(0);
                } else {
                    for s in out.iter_mut() {
                        // `pos < data.len()` holds: it wraps to 0 when it reaches the end.
                        *s = data[*pos];
                        *pos += 1;
                        if *pos == data.len() {
                            *pos = 0;
                        }
                    }
                }
            }
        }
        self.consume(out.len() as u64, Some(out))
    }

    /// Skips `n` samples of time without producing them (after a stall of the run loop);
    /// returns whether the playback is done.
    pub(crate) fn skip(&mut self, n: u64) -> bool {
        self.consume(n, None)
    }

    fn consume(&mut self, n: u64, out: Option<&mut [i16]>) -> bool {
        let Some(left) = self.left.as_mut() else {
            return false;
        };
        if let Some(out) = out {
            // Silence after the end within the last frame (a 100 ms tone ends mid-packet
            // only if its length is not a multiple of 20 ms).
            let keep = usize::try_from(*left).unwrap_or(usize::MAX).min(out.len());
            out[keep..].fill(0);
        }
        *left = left.saturating_sub(n);
        *left == 0
    }
}

/// Renders the music-on-hold loop described in the module documentation.
fn render_music_on_hold() -> Arc<[i16]> {
    const NOTES: [f32; 3] = [523.25, 659.26, 783.99];
    const NOTE_MS: u64 = 400;
    const REST_MS: u64 = 800;
    const ATTACK_MS: u64 = 20;
    let note_len = ms_to_samples(NOTE_MS) as usize;
    let attack = ms_to_samples(ATTACK_MS) as usize;
    let mut out = Vec::with_capacity(NOTES.len() * note_len + ms_to_samples(REST_MS) as usize);
    for f in NOTES {
        let spec = ToneSpec {
            sound: ToneSound::Dual((f, -16.0), (2.0 * f, -30.0)),
            cadence: Cadence::Continuous,
        };
        let mut note = vec![0i16; note_len];
        // Cannot fail: every note and its octave lie below 4 kHz. Were it to, silence is
        // a safe fallback for music, so no panic path.
        if let Ok(mut g) = ToneGenerator::new(&spec) {
            g.fill(&mut note);
        }
        for (i, s) in note.iter_mut().enumerate() {
            // Linear attack, then decay to about -26 dB at the end of the note; the last
            // 10 ms fade to zero so the next note starts without a click.
            let t = i as f32 / note_len as f32;
            let mut env = if i < attack {
                i as f32 / attack as f32
            } else {
                (-3.0 * t).exp()
            };
            let tail = note_len - i;
            if tail < 80 {
                env *= tail as f32 / 80.0;
            }
            *s = (f32::from(*s) * env).round() as i16;
        }
        out.extend_from_slice(&note);
    }
    out.resize(out.len() + ms_to_samples(REST_MS) as usize, 0);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dsp::goertzel_power;
    use crate::media::dsp::tone::{BUSY_DE, DIAL_TONE_DE, DT_AS};

    fn run(p: &Playback, max_frames: usize) -> (Vec<i16>, Option<usize>) {
        let mut pl = Player::new(p).expect("valid");
        let mut all = Vec::new();
        for k in 0..max_frames {
            let mut f = [0i16; FRAME];
            let done = pl.fill(&mut f);
            all.extend_from_slice(&f);
            if done {
                return (all, Some(k + 1));
            }
        }
        (all, None)
    }

    #[test]
    fn loops_and_limits() {
        // Tones and clips loop.
        assert_eq!(run(&Playback::Tone(BUSY_DE), 500).1, None);
        let clip: Arc<[i16]> = (0..100).map(|i| i as i16).collect();
        let (x, done) = run(&Playback::Pcm(Arc::clone(&clip)), 10);
        assert_eq!(done, None);
        assert_eq!(&x[100..200], &clip[..], "the clip wraps around");
        // Once: a clip once through (250 samples -> 2 frames, the rest silent).
        let clip: Arc<[i16]> = vec![7i16; 250].into();
        let (x, done) = run(&Playback::Pcm(clip).once(), 10);
        assert_eq!(done, Some(2));
        assert!(x[..250].iter().all(|&s| s == 7) && x[250..].iter().all(|&s| s == 0));
        // Once of a tone: one cadence cycle (busy: 960 ms = 48 frames).
        assert_eq!(run(&Playback::Tone(BUSY_DE).once(), 500).1, Some(48));
        assert_eq!(run(&Playback::confirmation(), 500).1, Some(46));
        // An alerting signal ends after its on time (100 ms = 5 frames).
        assert_eq!(run(&Playback::Tone(DT_AS), 500).1, Some(5));
        // For: rounded up to whole frames, the shorter of both limits wins.
        let p = Playback::Tone(DIAL_TONE_DE).limited(Duration::from_millis(50));
        assert_eq!(run(&p, 500).1, Some(3));
        let p = Playback::Tone(BUSY_DE)
            .once()
            .limited(Duration::from_secs(10));
        assert_eq!(run(&p, 1000).1, Some(48));
        // An empty clip once is done at once; looped, it is silence.
        assert_eq!(run(&Playback::Pcm(Arc::from([])).once(), 5).1, Some(1));
        let (x, done) = run(&Playback::Pcm(Arc::from([])), 5);
        assert!(done.is_none() && x.iter().all(|&s| s == 0));
    }

    #[test]
    fn invalid_playbacks_are_refused() {
        assert_eq!(
            Player::new(&Playback::Tone(DIAL_TONE_DE).once()).err(),
            Some(PlaybackError::Endless)
        );
        let bad = ToneSpec {
            sound: ToneSound::Single(5000.0, -10.0),
            cadence: Cadence::Continuous,
        };
        assert_eq!(
            Player::new(&Playback::Tone(bad)).err(),
            Some(PlaybackError::Tone(ToneError::BadFrequency(5000.0)))
        );
    }

    #[test]
    fn music_on_hold_plays_its_three_notes() {
        let Playback::Pcm(moh) = Playback::music_on_hold() else {
            panic!("music on hold is a PCM loop");
        };
        assert_eq!(moh.len(), 16000, "a 2 s loop");
        // Each 400 ms note: its own pitch dominates the other two.
        let notes = [523.25, 659.26, 783.99];
        for (i, &f) in notes.iter().enumerate() {
            let seg = &moh[i * 3200..(i + 1) * 3200];
            let p = goertzel_power(seg, f);
            for &g in notes.iter().filter(|&&g| g != f) {
                assert!(p > 100.0 * goertzel_power(seg, g), "note {i}: {f} vs {g}");
            }
            let peak = seg.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
            assert!((3000..12000).contains(&peak), "note {i}: peak {peak}");
        }
        assert!(moh[9600..].iter().all(|&s| s == 0), "rest");
        // No clicks: the loop starts and each note ends at (near) zero.
        for i in 1..=3 {
            assert!(moh[i * 3200 - 1].abs() < 200, "end of note {i}");
        }
        assert_eq!(moh[0], 0);
        // Shared, not re-rendered.
        let Playback::Pcm(again) = Playback::music_on_hold() else {
            panic!("music on hold is a PCM loop");
        };
        assert!(Arc::ptr_eq(&moh, &again));
    }
}
