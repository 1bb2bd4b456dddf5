//! Jitter buffer scenarios on a simulated clock: a sender emits a 20 ms packet every
//! 20 ms, a network function decides each packet's fate, the port pulls a 20 ms frame
//! every 20 ms (3 ms out of phase with the sender).

use std::time::{Duration, Instant};

use super::*;

const N: usize = 160;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What the network does to packet `k`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    /// Delivered after this one-way delay.
    Delay(Duration),
    /// Delivered twice, the copy `gap` later.
    Twice(Duration, Duration),
    Lost,
}

/// A test signal whose samples name their timestamp, so ordering errors show.
fn ramp(ts: u32) -> i16 {
    (ts % 30_000) as i16 + 1
}

/// A voiced-speech-like signal (125 Hz with harmonics), for concealment tests.
fn voiced(ts: u32) -> i16 {
    let w = std::f64::consts::TAU * 125.0 * f64::from(ts) / 8000.0;
    (6000.0 * w.sin() + 3000.0 * (2.0 * w).sin() + 1500.0 * (3.0 * w + 0.5).sin()) as i16
}

struct Run {
    /// Per pulled frame: when, kind, samples, target and playout delay after the pull.
    frames: Vec<Pulled>,
    arrivals: Vec<(usize, Arrival)>,
    stats: JitterStats,
}

#[derive(Debug)]
struct Pulled {
    at: Duration,
    kind: FrameKind,
    samples: Vec<i16>,
    target: Duration,
    delay: Option<Duration>,
}

struct Net {
    seq0: u16,
    ts0: u32,
    /// Timestamp offset added from packet `k` on (a jump), if any.
    jump: Option<(usize, u32)>,
    signal: fn(u32) -> i16,
}

impl Default for Net {
    fn default() -> Self {
        Net {
            seq0: 1000,
            ts0: 50_000,
            jump: None,
            signal: ramp,
        }
    }
}

impl Net {
    fn ts(&self, k: usize) -> u32 {
        let jump = self.jump.filter(|&(from, _)| k >= from).map_or(0, |j| j.1);
        self.ts0.wrapping_add((k * N) as u32).wrapping_add(jump)
    }
}

#[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
fn run(
    config: JitterConfig,
    net: &Net,
    packets: usize,
    pulls: usize,
    fate: impl Fn(usize) -> Fate,
) -> Run {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(config).expect("valid config");
    // (arrival, packet index)
    let mut deliveries: Vec<(Duration, usize)> = Vec::new();
    for k in 0..packets {
        let sent = ms(20 * k as u64);
        match fate(k) {
            Fate::Delay(d) => deliveries.push((sent + d, k)),
            Fate::Twice(d, gap) => {
                deliveries.push((sent + d, k));
                deliveries.push((sent + d + gap, k));
            }
            Fate::Lost => {}
        }
    }
    deliveries.sort_by_key(|&(at, k)| (at, k));
    let mut next = 0;
    let mut frames = Vec::new();
    let mut arrivals = Vec::new();
    for p in 0..pulls {
        let at = ms(20 * p as u64 + 3);
        // Packets arriving up to and including this instant are in before the pull.
        while next < deliveries.len() && deliveries[next].0 <= at {
            let (arr, k) = deliveries[next];
            let ts = net.ts(k);
            let samples: Vec<i16> = (0..N as u32)
                .map(|i| (net.signal)(ts.wrapping_add(i)))
                .collect();
            let seq = net.seq0.wrapping_add(k as u16);
            let a = jb.handle_packet(
                t0 + arr,
                RtpAudio {
                    seq,
                    timestamp: ts,
                    samples: &samples,
                },
            );
            arrivals.push((k, a));
            next += 1;
        }
        let mut out = vec![0i16; N];
        let kind = jb.poll_frame(t0 + at, &mut out);
        frames.push(Pulled {
            at,
            kind,
            samples: out,
            target: jb.target_delay(),
            delay: jb.playout_delay(),
        });
    }
    Run {
        frames,
        arrivals,
        stats: jb.stats(),
    }
}

/// Index of the first frame that is not silence.
fn first_played(r: &Run) -> usize {
    r.frames
        .iter()
        .position(|f| f.kind != FrameKind::Silence)
        .expect("playout started")
}

/// Asserts that from frame `from` on, the output is the ramp continuing without a gap.
fn assert_contiguous(r: &Run, from: usize) {
    assert_contiguous_to(r, from, r.frames.len());
}

/// Same for frames `from..to`.
fn assert_contiguous_to(r: &Run, from: usize, to: usize) {
    let start = r.frames[from].samples[0];
    let mut want = i32::from(start);
    for (i, f) in r.frames[from..to].iter().enumerate() {
        assert_eq!(f.kind, FrameKind::Audio, "frame {}", from + i);
        for &s in &f.samples {
            assert_eq!(i32::from(s), want, "frame {}", from + i);
            want = if want == 30_000 { 1 } else { want + 1 };
        }
    }
}

#[test]
fn steady_network_plays_everything_at_the_minimum_delay() {
    let r = run(JitterConfig::adaptive(), &Net::default(), 200, 200, |_| {
        Fate::Delay(ms(10))
    });
    let first = first_played(&r);
    assert_contiguous(&r, first);
    // Packet 0 arrives at 10 ms; the pull at 23 ms sees 13 ms < 20 ms, the one at 43 ms
    // plays it 33 ms after its arrival, within [20, 40).
    assert_eq!(first, 2);
    assert_eq!(r.frames[first].samples[0], ramp(50_000));
    for f in &r.frames[first..] {
        assert_eq!(f.target, ms(20));
        assert_eq!(f.delay, Some(ms(33)));
    }
    assert_eq!(r.stats.concealed_frames, 0);
    assert_eq!(r.stats.late, 0);
    assert_eq!(r.stats.inserted_frames + r.stats.dropped_frames, 0);
}

#[test]
fn reordered_packets_are_played_in_order() {
    // Every even packet is held back 30 ms, so it arrives after its odd successor.
    let r = run(JitterConfig::adaptive(), &Net::default(), 300, 300, |k| {
        Fate::Delay(if k % 2 == 0 { ms(40) } else { ms(10) })
    });
    let swapped = r
        .arrivals
        .windows(2)
        .filter(|w| w[1].0 + 1 == w[0].0)
        .count();
    assert!(swapped >= 140, "{swapped} swaps");
    // Packet 1 came first and started the stream, so packet 0 was late; all others fit.
    assert_eq!(
        r.arrivals[..2],
        [(1, Arrival::Buffered), (0, Arrival::Late)]
    );
    assert!(r.arrivals[2..].iter().all(|&(_, a)| a == Arrival::Buffered));
    assert_eq!(r.frames.last().unwrap().target, ms(30));
    // Once the target has settled, the stream is exact.
    assert_contiguous(&r, 20);
    assert_eq!(r.stats.late, 1);
    for f in &r.frames[20..] {
        let d = f.delay.unwrap();
        assert!(d >= ms(30) && d < ms(50), "{d:?}");
    }
}

#[test]
fn duplicates_are_dropped() {
    let r = run(JitterConfig::adaptive(), &Net::default(), 200, 210, |k| {
        Fate::Twice(ms(10), ms(if k % 3 == 0 { 5 } else { 60 }))
    });
    let first = first_played(&r);
    assert_contiguous_to(&r, first, first + 200);
    assert_eq!(r.stats.received, 400);
    assert_eq!(r.stats.duplicates, 200);
    assert_eq!(r.stats.late, 0);
}

#[test]
fn a_lost_packet_is_concealed_from_the_voice_before_it() {
    let net = Net {
        signal: voiced,
        ..Net::default()
    };
    let r = run(JitterConfig::adaptive(), &net, 100, 100, |k| {
        if k == 50 {
            Fate::Lost
        } else {
            Fate::Delay(ms(10))
        }
    });
    assert_eq!(r.stats.concealed_frames, 1);
    let first = first_played(&r);
    let lost = &r.frames[first + 50];
    assert_eq!(lost.kind, FrameKind::Concealed);
    let truth: Vec<i16> = (0..N as u32).map(|i| voiced(net.ts(50) + i)).collect();
    let sig: f64 = truth.iter().map(|&x| f64::from(x).powi(2)).sum();
    let err: f64 = truth
        .iter()
        .zip(&lost.samples)
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
        .sum();
    let snr = 10.0 * (sig / err).log10();
    // Silence would give 0 dB; the repeated pitch period is close to the lost audio.
    assert!(snr > 10.0, "SNR {snr:.1} dB");
    // The next frame is real audio again, exact after the 4-8 ms cross-fade.
    let next = &r.frames[first + 51];
    assert_eq!(next.kind, FrameKind::Audio);
    let want: Vec<i16> = (0..N as u32).map(|i| voiced(net.ts(51) + i)).collect();
    assert_eq!(&next.samples[64..], &want[64..]);
}

#[test]
fn a_long_loss_fades_to_silence_within_60_ms() {
    let net = Net {
        signal: voiced,
        ..Net::default()
    };
    let r = run(JitterConfig::adaptive(), &net, 100, 100, |k| {
        if (50..57).contains(&k) {
            Fate::Lost
        } else {
            Fate::Delay(ms(10))
        }
    });
    let first = first_played(&r);
    let kinds: Vec<FrameKind> = r.frames[first + 49..first + 58]
        .iter()
        .map(|f| f.kind)
        .collect();
    use FrameKind::*;
    assert_eq!(
        kinds,
        [Audio, Concealed, Concealed, Concealed, Silence, Silence, Silence, Silence, Audio]
    );
    let rms = |s: &[i16]| (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / 160.0).sqrt();
    let levels: Vec<f64> = (50..53)
        .map(|k| rms(&r.frames[first + k].samples))
        .collect();
    assert!(levels[0] > levels[1] && levels[1] > levels[2], "{levels:?}");
    // The last concealed 20 ms (40-60 ms) fade out to silence.
    assert!(r.frames[first + 52].samples[N - 8..]
        .iter()
        .all(|&s| s.abs() < 300));
    assert!(r.frames[first + 53].samples.iter().all(|&s| s == 0));
    assert_eq!(r.stats.concealed_frames, 7);
}

/// Extra delay of the burst: 0..=60 ms, scrambled.
fn burst(k: usize) -> Duration {
    ms((k as u64 * 37) % 61)
}

#[test]
fn target_follows_a_jitter_burst_and_decays_after_it() {
    let r = run(JitterConfig::adaptive(), &Net::default(), 600, 600, |k| {
        Fate::Delay(
            ms(10)
                + if (100..200).contains(&k) {
                    burst(k)
                } else {
                    ms(0)
                },
        )
    });
    let first = first_played(&r);
    // Before: minimum target.
    assert_eq!(r.frames[first + 95].target, ms(20));
    // During: the target follows the spread of the burst (its 98 % quantile: the three
    // highest of 128 transits are ignored, so the first peaks are late).
    let reached = |t| {
        (first + 100..first + 200)
            .find(|&i| r.frames[i].target >= ms(t))
            .expect("target grew")
    };
    assert!(reached(40) <= first + 110, "40 ms at frame {}", reached(40));
    assert!(reached(55) <= first + 125, "55 ms at frame {}", reached(55));
    for f in &r.frames[first + 110..first + 200] {
        let d = f.delay.unwrap();
        // Below the target only on the pull that inserts a frame to catch up.
        assert!(
            d + ms(20) > f.target && d < f.target + ms(20),
            "{d:?} vs {:?}",
            f.target
        );
    }
    // Late packets only while the target was still growing.
    let late: Vec<usize> = r
        .arrivals
        .iter()
        .filter(|a| a.1 == Arrival::Late)
        .map(|a| a.0)
        .collect();
    assert!(late.len() <= 6, "late packets {late:?}");
    assert!(late.iter().all(|&k| (100..120).contains(&k)), "{late:?}");
    // After: the burst leaves the 128-packet window at packet ~328; by 400 the delay is
    // back to the minimum.
    let f = &r.frames[first + 420];
    assert_eq!(f.target, ms(20));
    assert!(f.delay.unwrap() < ms(40), "{:?}", f.delay);
    // Two frames inserted to grow to ~60 ms, two dropped to come back: no flapping.
    assert_eq!((r.stats.inserted_frames, r.stats.dropped_frames), (2, 2));
    // Shrinking dropped frames one by one: the tail is exact again.
    assert_contiguous(&r, first + 450);
}

#[test]
fn target_is_capped_at_the_maximum() {
    let r = run(JitterConfig::adaptive(), &Net::default(), 300, 300, |k| {
        Fate::Delay(ms(10) + ms((k as u64 * 53) % 300))
    });
    let last = r.frames.last().unwrap();
    assert_eq!(last.target, ms(100));
    assert!(r.stats.late > 50, "{:?}", r.stats);
    assert_eq!(r.stats.resyncs, 0);
}

#[test]
fn fixed_mode_keeps_its_delay_and_fills_gaps_with_silence() {
    let config = JitterConfig::fixed(ms(60));
    let r = run(config, &Net::default(), 300, 300, |k| {
        if k == 150 {
            Fate::Lost
        } else {
            Fate::Delay(
                ms(10)
                    + if (100..200).contains(&k) {
                        burst(k)
                    } else {
                        ms(0)
                    },
            )
        }
    });
    let first = first_played(&r);
    for f in &r.frames[first..] {
        assert_eq!(f.target, ms(60));
        let d = f.delay.unwrap();
        assert!(d >= ms(60) && d < ms(80), "{d:?}");
    }
    assert_eq!(r.stats.inserted_frames + r.stats.dropped_frames, 0);
    assert_eq!(r.stats.late, 0);
    assert_eq!(r.stats.concealed_frames, 1);
    let lost = r
        .frames
        .iter()
        .position(|f| f.kind != FrameKind::Audio && f.at > ms(100))
        .unwrap();
    assert!(r.frames[lost].samples.iter().all(|&s| s == 0));
    assert_eq!(r.frames[lost].samples.len(), N);
    assert_contiguous(&r, lost + 1);
}

#[test]
fn sequence_and_timestamp_wrap_around() {
    let net = Net {
        seq0: 65_500,
        ts0: u32::MAX - 1000,
        ..Net::default()
    };
    let r = run(JitterConfig::adaptive(), &net, 200, 200, |_| {
        Fate::Delay(ms(10))
    });
    let first = first_played(&r);
    assert_eq!(r.stats.resyncs, 0);
    // The ramp is `ts % 30000`: across the u32 wrap it jumps, so check the count instead.
    assert!(r.frames[first..].iter().all(|f| f.kind == FrameKind::Audio));
    assert_eq!(r.frames.len() - first, 198);
    assert_eq!(r.stats.late + r.stats.duplicates + r.stats.discarded, 0);
}

#[test]
fn timestamp_jump_restarts_the_stream() {
    let net = Net {
        jump: Some((50, 200_000)),
        ..Net::default()
    };
    let r = run(JitterConfig::adaptive(), &net, 150, 150, |_| {
        Fate::Delay(ms(10))
    });
    assert_eq!(r.stats.resyncs, 1);
    assert!(r.arrivals.contains(&(50, Arrival::Resynced)));
    // After the jump audio continues from the new timestamps.
    let f = r
        .frames
        .iter()
        .rposition(|f| f.samples[0] == ramp(net.ts(60)))
        .expect("packet 60 played");
    assert_contiguous(&r, f);
}

#[test]
fn sender_restart_with_older_timestamps_resyncs_after_five_late_packets() {
    // Timestamps go back 2 s at packet 50, sequence numbers continue.
    let net = Net {
        jump: Some((50, 0u32.wrapping_sub(16_000))),
        ..Net::default()
    };
    let r = run(JitterConfig::adaptive(), &net, 150, 150, |_| {
        Fate::Delay(ms(10))
    });
    let fates: Vec<Arrival> = r.arrivals[50..56].iter().map(|a| a.1).collect();
    use Arrival::*;
    assert_eq!(fates, [Late, Late, Late, Late, Resynced, Buffered]);
    let f = r
        .frames
        .iter()
        .rposition(|f| f.samples[0] == ramp(net.ts(70)))
        .expect("packet 70 played");
    assert_contiguous(&r, f);
}

#[test]
fn stray_packets_are_discarded_and_bad_configs_rejected() {
    #[allow(clippy::disallowed_methods)] // test epoch
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::adaptive()).unwrap();
    let s = [5i16; N];
    let pkt = |seq, timestamp| RtpAudio {
        seq,
        timestamp,
        samples: &s,
    };
    assert_eq!(jb.handle_packet(t0, pkt(10, 1600)), Arrival::Buffered);
    assert_eq!(jb.handle_packet(t0, pkt(11, 1760)), Arrival::Buffered);
    // Old sequence number, timestamp far ahead: neither a restart nor playable.
    assert_eq!(jb.handle_packet(t0, pkt(5, 900_000)), Arrival::Discarded);
    assert_eq!(jb.handle_packet(t0, pkt(11, 1760)), Arrival::Duplicate);
    assert_eq!(
        JitterBuffer::new(JitterConfig {
            mode: JitterMode::Adaptive {
                min: ms(80),
                max: ms(40)
            },
            plc: true
        })
        .unwrap_err(),
        JitterError::BadDelay {
            min: ms(80),
            max: ms(40)
        }
    );
    assert!(JitterBuffer::new(JitterConfig::fixed(ms(2000))).is_err());
}

#[test]
fn switching_to_fixed_mode_keeps_the_audio() {
    #[allow(clippy::disallowed_methods)] // test epoch
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::adaptive()).unwrap();
    let mut out = [0i16; N];
    for k in 0..20u16 {
        let now = t0 + ms(20 * u64::from(k));
        let s = [k as i16 + 1; N];
        jb.handle_packet(
            now,
            RtpAudio {
                seq: k,
                timestamp: N as u32 * u32::from(k),
                samples: &s,
            },
        );
        jb.poll_frame(now + ms(1), &mut out);
        if k == 10 {
            jb.set_config(JitterConfig::fixed(ms(20))).unwrap();
            assert!(!jb.config().plc);
        }
    }
    // Fixed 20 ms = the adaptive minimum: no jump, the frame sent 20 ms ago plays.
    assert_eq!(out, [19i16; N]);
    assert_eq!(jb.stats().dropped_frames + jb.stats().inserted_frames, 0);
}
