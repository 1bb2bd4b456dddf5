//! Adaptive jitter buffer for one RTP audio stream towards an analog port (sans-IO).
//!
//! The network side hands in packets ([`JitterBuffer::handle_packet`]) with their RTP
//! sequence number and timestamp, already decoded to 8 kHz linear PCM (G.711 through
//! `media::relay::g711`). The port side pulls one frame per PCM period
//! ([`JitterBuffer::poll_frame`]); the SLIC's PCM clock paces playout, so the buffer never
//! needs a timer of its own. Both calls take `now`; nothing reads a clock.
//!
//! # Delay
//! Each packet's transit `arrival - timestamp/8000` is measured; the buffer keeps the last
//! [`WINDOW`] transits. The *jitter* is the spread between the lowest transit and the
//! [`JITTER_QUANTILE`] quantile in that window, and the target delay is that jitter clamped
//! to the mode's range (adaptive: 20..=100 ms by default); it rises with the estimate at
//! once and falls only when the estimate is [`TARGET_HOLD`] below it. The *playout delay* at a pull is
//! how long after the fastest possible arrival the next timestamp is played:
//! `now - (timestamp_time(next) + lowest transit)`. A packet whose transit exceeds the
//! lowest by no more than the playout delay is in time.
//!
//! Playout adjusts in whole frames (the pulled frame's length), at most one per pull:
//! - playout delay below target: the frame is *inserted* (concealment, or silence before
//!   the stream's first frame was played) and the timestamp does not advance;
//! - playout delay at least target + one frame: one frame is *dropped* (skipped, with a
//!   2 ms cross-fade from the skipped audio into the next).
//!
//! So the playout delay stays within `[target, target + frame)`. A new jitter peak raises
//! the target at once; it decays when the peak leaves the window (about 2.5 s at 20 ms
//! packets), one frame per pull.
//!
//! # Packets
//! Reordered packets are placed by timestamp; duplicates (sequence number seen within the
//! last 128) are dropped; packets whose audio has already been played are dropped as late
//! (they still count for the jitter). Missing samples are concealed with
//! [`crate::media::dsp::plc`] (G.711 Appendix I style; silent after 60 ms). After
//! [`RESYNC_AFTER_LATE`] consecutive late packets that are new in sequence, or a new
//! packet whose timestamp is beyond the buffer's reach, the buffer restarts on that packet
//! (a sender restart, or a timestamp jump).
//!
//! # Fax and modem pass-through
//! [`JitterConfig::fixed`] keeps the delay fixed and conceals with silence: a modem's
//! receiver copes with a gap better than with invented signal, and a changing delay breaks
//! its timing. The delay is only corrected when it drifts by more than [`FIXED_SLACK`]
//! (clock drift between the sender and the PCM highway).
//!
//! # Run loop
//! ```
//! use std::time::{Duration, Instant};
//! use pbxd::media::jitter::{JitterBuffer, JitterConfig, RtpAudio};
//!
//! # #[allow(clippy::disallowed_methods)] // the shell's clock, once
//! let t0 = Instant::now();
//! let mut jb = JitterBuffer::new(JitterConfig::adaptive()).expect("valid config");
//! let mut frame = [0i16; 160];
//! for i in 0..10u16 {
//!     let now = t0 + Duration::from_millis(20 * u64::from(i));
//!     let samples = [100i16; 160];
//!     jb.handle_packet(now, RtpAudio { seq: i, timestamp: 160 * u32::from(i), samples: &samples });
//!     jb.poll_frame(now, &mut frame); // written to the port's PCM
//! }
//! assert_eq!(frame, [100i16; 160]);
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::media::dsp::plc::Plc;

/// Transits remembered for the jitter estimate (2.56 s of 20 ms packets).
pub const WINDOW: usize = 128;
/// Quantile of the transit window taken as the worst case (ignores the top 3 of 128).
pub const JITTER_QUANTILE: f64 = 0.98;
/// Consecutive late packets, each newer in sequence than all before, that restart the
/// buffer (100 ms of 20 ms packets).
pub const RESYNC_AFTER_LATE: u32 = 5;
/// Fixed mode: the delay is corrected only when it is off by more than this.
pub const FIXED_SLACK: Duration = Duration::from_millis(40);
/// The target falls only when the estimate is this much below it.
pub const TARGET_HOLD: Duration = Duration::from_millis(5);
/// Samples the buffer can hold ahead of the playout point (1.024 s).
pub const CAPACITY: usize = 8192;
/// Cross-fade when a frame is dropped, in samples (2 ms).
const DROP_FADE: usize = 16;
/// Nanoseconds per sample at 8 kHz.
const NS_PER_SAMPLE: i64 = 125_000;

/// How the delay is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JitterMode {
    /// Target follows the measured jitter within `min..=max`.
    Adaptive {
        /// Lowest target delay.
        min: Duration,
        /// Highest target delay; packets later than that are lost.
        max: Duration,
    },
    /// Constant delay (fax/modem pass-through).
    Fixed {
        /// The delay.
        delay: Duration,
    },
}

/// Buffer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Delay policy.
    pub mode: JitterMode,
    /// Conceal missing audio (G.711 Appendix I style) instead of playing silence.
    pub plc: bool,
}

impl JitterConfig {
    /// Voice: adaptive 20..=100 ms with concealment.
    #[must_use]
    pub fn adaptive() -> Self {
        Self {
            mode: JitterMode::Adaptive {
                min: Duration::from_millis(20),
                max: Duration::from_millis(100),
            },
            plc: true,
        }
    }

    /// Fax/modem pass-through: fixed `delay`, silence for missing audio.
    #[must_use]
    pub fn fixed(delay: Duration) -> Self {
        Self {
            mode: JitterMode::Fixed { delay },
            plc: false,
        }
    }
}

/// Errors in a [`JitterConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JitterError {
    /// `min > max`, or a delay beyond the buffer's capacity.
    #[error("bad jitter buffer delay range {min:?}..={max:?}")]
    BadDelay {
        /// Lowest delay asked for.
        min: Duration,
        /// Highest delay asked for.
        max: Duration,
    },
}

/// One RTP packet's audio, decoded to 8 kHz linear PCM.
#[derive(Debug, Clone, Copy)]
pub struct RtpAudio<'a> {
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp (8 kHz clock) of the first sample.
    pub timestamp: u32,
    /// The samples.
    pub samples: &'a [i16],
}

/// What became of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Stored for playout.
    Buffered,
    /// Same sequence number as a packet already received: dropped.
    Duplicate,
    /// Its audio was already played (or concealed): dropped.
    Late,
    /// The buffer restarted on this packet (timestamp jump or sender restart).
    Resynced,
    /// Out of reach and not newer in sequence (a stray packet): dropped.
    Discarded,
}

/// What a pulled frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Received audio only.
    Audio,
    /// Some or all samples are concealment (loss, or a frame inserted to grow the delay).
    Concealed,
    /// Silence: before playout started, after concealment faded out, or fixed mode's fill.
    Silence,
}

/// Counters since creation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets handed in.
    pub received: u64,
    /// Dropped as duplicates.
    pub duplicates: u64,
    /// Dropped as late.
    pub late: u64,
    /// Dropped as stray.
    pub discarded: u64,
    /// Restarts.
    pub resyncs: u64,
    /// Frames pulled with received samples missing (lost or late), concealed or silent.
    pub concealed_frames: u64,
    /// Frames inserted to grow the delay.
    pub inserted_frames: u64,
    /// Frames dropped to shrink the delay.
    pub dropped_frames: u64,
}

/// Adaptive jitter buffer; see the module docs.
#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    stream: Option<Stream>,
    plc: Plc,
    /// Whether a frame of the stream has been played (before that, growing is silence).
    playing: bool,
    /// Samples of a dropped frame to fade from at the start of the next frame.
    fade_from: Vec<i16>,
    target: Duration,
    delay: Option<Duration>,
    stats: JitterStats,
}

/// Per-stream state, replaced on a resync.
#[derive(Debug)]
struct Stream {
    /// Arrival time of the first packet: the origin of transits.
    epoch: Instant,
    /// Extended timestamp of the first packet.
    base_ts: i64,
    /// Last extended timestamp seen (the unwrapping reference).
    last_ts: i64,
    /// Highest extended sequence number seen.
    top_seq: i64,
    /// Bit `i` set: sequence number `top_seq - i` seen (i < 128).
    seen: u128,
    /// Next extended timestamp to play.
    play_ts: i64,
    /// Ring of samples indexed by extended timestamp modulo [`CAPACITY`].
    ring: Vec<i16>,
    present: Vec<bool>,
    /// Recent transits in ns relative to the first packet's.
    transits: VecDeque<i64>,
    /// Lowest and quantile transit of the window.
    low: i64,
    high: i64,
    /// Consecutive late packets that were newest in sequence.
    late_run: u32,
}

impl Stream {
    fn new(now: Instant, seq: u16, timestamp: u32) -> Self {
        let ts = i64::from(timestamp);
        let mut transits = VecDeque::with_capacity(WINDOW);
        transits.push_back(0);
        Stream {
            epoch: now,
            base_ts: ts,
            last_ts: ts,
            top_seq: i64::from(seq),
            seen: 1,
            play_ts: ts,
            ring: vec![0; CAPACITY],
            present: vec![false; CAPACITY],
            transits,
            low: 0,
            high: 0,
            late_run: 0,
        }
    }

    fn extend_ts(&self, ts: u32) -> i64 {
        // Truncation to u32 then i32 gives the signed distance modulo 2^32.
        self.last_ts + i64::from(ts.wrapping_sub(self.last_ts as u32) as i32)
    }

    fn extend_seq(&self, seq: u16) -> i64 {
        self.top_seq + i64::from(seq.wrapping_sub(self.top_seq as u16) as i16)
    }

    /// Records `seq`; `false` if it was seen before (or is too old to tell).
    fn mark_seq(&mut self, seq: i64) -> bool {
        if seq > self.top_seq {
            let shift = seq - self.top_seq;
            self.seen = if shift >= 128 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.top_seq = seq;
            return true;
        }
        let back = self.top_seq - seq;
        if back >= 128 {
            return false;
        }
        let bit = 1u128 << back;
        let fresh = self.seen & bit == 0;
        self.seen |= bit;
        fresh
    }

    fn record_transit(&mut self, now: Instant, ts: i64) {
        let arrival =
            i64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(i64::MAX);
        let transit = arrival - (ts - self.base_ts) * NS_PER_SAMPLE;
        if self.transits.len() == WINDOW {
            self.transits.pop_front();
        }
        self.transits.push_back(transit);
        let mut sorted: Vec<i64> = self.transits.iter().copied().collect();
        sorted.sort_unstable();
        self.low = sorted[0];
        let q = ((sorted.len() - 1) as f64 * JITTER_QUANTILE).round() as usize;
        self.high = sorted[q.min(sorted.len() - 1)];
    }

    fn store(&mut self, ts: i64, samples: &[i16]) {
        for (i, &s) in samples.iter().enumerate() {
            let t = ts + i as i64;
            if t < self.play_ts || t >= self.play_ts + CAPACITY as i64 {
                continue;
            }
            let slot = t.rem_euclid(CAPACITY as i64) as usize;
            self.ring[slot] = s;
            self.present[slot] = true;
        }
    }

    /// Takes the next `n` samples into `out` (missing ones as `None`) and advances.
    fn take(&mut self, out: &mut [Option<i16>]) {
        for o in out.iter_mut() {
            let slot = self.play_ts.rem_euclid(CAPACITY as i64) as usize;
            *o = self.present[slot].then_some(self.ring[slot]);
            self.present[slot] = false;
            self.play_ts += 1;
        }
    }

    /// Playout delay at `now` in ns (may be negative).
    fn delay_ns(&self, now: Instant) -> i64 {
        let elapsed =
            i64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(i64::MAX);
        elapsed - (self.play_ts - self.base_ts) * NS_PER_SAMPLE - self.low
    }
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(config: JitterConfig) -> Result<Self, JitterError> {
        let (min, max) = match config.mode {
            JitterMode::Adaptive { min, max } => (min, max),
            JitterMode::Fixed { delay } => (delay, delay),
        };
        // Leave room for a frame and the fixed mode's slack above the highest delay.
        let reach = Duration::from_nanos((CAPACITY as u64 / 2) * NS_PER_SAMPLE as u64);
        if min > max || max > reach {
            return Err(JitterError::BadDelay { min, max });
        }
        Ok(Self {
            config,
            stream: None,
            plc: Plc::new(),
            playing: false,
            fade_from: Vec::new(),
            target: min,
            delay: None,
            stats: JitterStats::default(),
        })
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> JitterConfig {
        self.config
    }

    /// Switches mode (e.g. to fixed on fax detection) keeping the buffered audio.
    pub fn set_config(&mut self, config: JitterConfig) -> Result<(), JitterError> {
        Self::new(config)?;
        self.config = config;
        self.target = Duration::ZERO;
        self.update_target();
        Ok(())
    }

    /// Target playout delay now.
    #[must_use]
    pub fn target_delay(&self) -> Duration {
        self.target
    }

    /// Playout delay measured at the last pull (before that pull's adjustment), once
    /// playout has started.
    #[must_use]
    pub fn playout_delay(&self) -> Option<Duration> {
        self.delay
    }

    /// Current jitter estimate (transit spread over the window).
    #[must_use]
    pub fn jitter(&self) -> Duration {
        self.stream.as_ref().map_or(Duration::ZERO, |s| {
            Duration::from_nanos(u64::try_from(s.high - s.low).unwrap_or(0))
        })
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Forgets the stream (new SSRC, new call); counters are kept.
    pub fn reset(&mut self) {
        self.stream = None;
        self.target = Duration::ZERO;
        self.playing = false;
        self.fade_from.clear();
        self.delay = None;
        self.update_target();
    }

    /// A packet arrived at `now`.
    pub fn handle_packet(&mut self, now: Instant, pkt: RtpAudio<'_>) -> Arrival {
        self.stats.received += 1;
        let Some(stream) = self.stream.as_mut() else {
            self.start(now, pkt);
            return Arrival::Buffered;
        };
        let seq = stream.extend_seq(pkt.seq);
        let newest = seq > stream.top_seq;
        if !stream.mark_seq(seq) {
            self.stats.duplicates += 1;
            return Arrival::Duplicate;
        }
        let ts = stream.extend_ts(pkt.timestamp);
        let end = ts + pkt.samples.len() as i64;
        if end > stream.play_ts + CAPACITY as i64 {
            if newest {
                self.resync(now, pkt);
                return Arrival::Resynced;
            }
            self.stats.discarded += 1;
            return Arrival::Discarded;
        }
        if newest {
            stream.last_ts = ts;
        }
        stream.record_transit(now, ts);
        if end <= stream.play_ts {
            if newest {
                stream.late_run += 1;
                if stream.late_run >= RESYNC_AFTER_LATE {
                    self.resync(now, pkt);
                    return Arrival::Resynced;
                }
            }
            self.stats.late += 1;
            self.update_target();
            return Arrival::Late;
        }
        stream.late_run = 0;
        stream.store(ts, pkt.samples);
        self.update_target();
        Arrival::Buffered
    }

    fn start(&mut self, now: Instant, pkt: RtpAudio<'_>) {
        let mut stream = Stream::new(now, pkt.seq, pkt.timestamp);
        stream.store(i64::from(pkt.timestamp), pkt.samples);
        self.stream = Some(stream);
        self.update_target();
    }

    fn resync(&mut self, now: Instant, pkt: RtpAudio<'_>) {
        self.stats.resyncs += 1;
        self.fade_from.clear();
        self.start(now, pkt);
    }

    fn update_target(&mut self) {
        self.target = match self.config.mode {
            JitterMode::Fixed { delay } => delay,
            JitterMode::Adaptive { min, max } => {
                let jitter = self.jitter();
                // Whole milliseconds upwards, so tiny transit noise does not flap the target.
                let ms = Duration::from_millis(jitter.as_nanos().div_ceil(1_000_000) as u64);
                let estimate = ms.clamp(min, max);
                // Rise at once; fall only by more than the hold, so the estimate's noise
                // does not cost a drop and an insert in turn.
                if estimate > self.target || estimate + TARGET_HOLD < self.target {
                    estimate
                } else {
                    self.target.clamp(min, max)
                }
            }
        };
    }

    /// Fills `out` (one PCM period, e.g. 160 samples) with the audio to play at `now`.
    pub fn poll_frame(&mut self, now: Instant, out: &mut [i16]) -> FrameKind {
        let n = out.len();
        let Some(stream) = self.stream.as_mut() else {
            return self.fill_silence(out);
        };
        let delay = stream.delay_ns(now);
        let target = i64::try_from(self.target.as_nanos()).unwrap_or(i64::MAX);
        let frame = n as i64 * NS_PER_SAMPLE;
        let (grow, shrink) = match self.config.mode {
            JitterMode::Adaptive { .. } => (delay < target, delay >= target + frame),
            JitterMode::Fixed { .. } => {
                let slack = FIXED_SLACK.as_nanos() as i64;
                // Before playout starts, wait for the full delay.
                let grow = if self.playing {
                    delay < target - slack
                } else {
                    delay < target
                };
                (grow, delay > target + frame + slack)
            }
        };
        if grow {
            if !self.playing {
                return self.fill_silence(out);
            }
            self.stats.inserted_frames += 1;
            self.delay = Some(ns_to_duration(delay));
            return self.fill_missing(out);
        }
        let mut taken = vec![None; n];
        if shrink {
            stream.take(&mut taken);
            self.stats.dropped_frames += 1;
            self.fade_from.clear();
            if taken.iter().all(Option::is_some) {
                self.fade_from
                    .extend(taken.iter().take(DROP_FADE).map(|s| s.unwrap_or(0)));
            }
        }
        self.delay = Some(ns_to_duration(delay));
        stream.take(&mut taken);
        self.playing = true;
        let missing = taken.iter().filter(|s| s.is_none()).count();
        if missing == n {
            self.fade_from.clear();
            self.stats.concealed_frames += 1;
            return self.fill_missing(out);
        }
        if missing == 0 {
            for (o, t) in out.iter_mut().zip(&taken) {
                *o = t.unwrap_or(0);
            }
            let fade = std::mem::take(&mut self.fade_from);
            let len = fade.len() + 1;
            for (i, (o, f)) in out.iter_mut().zip(&fade).enumerate() {
                let w = (i + 1) as f32 / len as f32;
                *o = ((1.0 - w) * f32::from(*f) + w * f32::from(*o)).round() as i16;
            }
            self.plc.good(out);
            return FrameKind::Audio;
        }
        // Partly present: play the runs, conceal the gaps.
        self.fade_from.clear();
        self.stats.concealed_frames += 1;
        let mut i = 0;
        while i < n {
            let run_end = (i..n)
                .find(|&j| taken[j].is_some() != taken[i].is_some())
                .unwrap_or(n);
            let chunk = &mut out[i..run_end];
            if taken[i].is_some() {
                for (o, t) in chunk.iter_mut().zip(&taken[i..run_end]) {
                    *o = t.unwrap_or(0);
                }
                self.plc.good(chunk);
            } else if self.config.plc {
                self.plc.conceal(chunk);
            } else {
                chunk.fill(0);
                self.plc.silence(chunk.len());
            }
            i = run_end;
        }
        FrameKind::Concealed
    }

    fn fill_silence(&mut self, out: &mut [i16]) -> FrameKind {
        out.fill(0);
        self.plc.silence(out.len());
        FrameKind::Silence
    }

    /// A frame with no received audio: concealment while it is audible.
    fn fill_missing(&mut self, out: &mut [i16]) -> FrameKind {
        if self.config.plc && self.plc.conceal(out) {
            return FrameKind::Concealed;
        }
        if !self.config.plc {
            out.fill(0);
            self.plc.silence(out.len());
        }
        FrameKind::Silence
    }
}

fn ns_to_duration(ns: i64) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

#[cfg(test)]
mod tests;
