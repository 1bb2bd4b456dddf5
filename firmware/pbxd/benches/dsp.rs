//! Cost of the per-port DSP per 20 ms frame (160 samples at 8 kHz). The budget is 1 % of
//! a core per port: 200 µs per frame.
//!
//! Besides criterion's per-function figures, `port_frame_total` runs what one busy port
//! does per frame (DTMF detection on the phone's audio, a call-progress tone, 20 ms of
//! caller-ID FSK, the jitter buffer with concealment of 1 lost packet in 10) and prints
//! the result as ns per frame and % of one core per port.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use pbxd::media::dsp::callerid::{CallerId, CidDateTime};
use pbxd::media::dsp::dtmf::{DtmfDetector, DtmfGenerator};
use pbxd::media::dsp::fsk::{FskModulator, FskParams};
use pbxd::media::dsp::tone::{ToneGenerator, BUSY_DE};
use pbxd::media::jitter::{JitterBuffer, JitterConfig, RtpAudio};

const FRAME: usize = 160;

fn bench(c: &mut Criterion) {
    // One second of digits and pauses, replayed frame by frame.
    let mut signal = Vec::new();
    for d in "0123456789".chars() {
        let g = DtmfGenerator::new(d, -10.0, Duration::from_millis(50)).expect("valid digit");
        signal.extend(g.samples());
        signal.extend(std::iter::repeat_n(0i16, 400));
    }
    let frames: Vec<&[i16]> = signal.chunks(FRAME).collect();
    let mut det = DtmfDetector::new();
    let mut i = 0;
    c.bench_function("dtmf_detect_20ms", |b| {
        b.iter(|| {
            det.handle_samples(black_box(frames[i % frames.len()]));
            i += 1;
            while let Some(e) = det.poll_event() {
                black_box(e);
            }
        })
    });

    let mut tone = ToneGenerator::new(&BUSY_DE).expect("valid spec");
    let mut out = [0i16; FRAME];
    c.bench_function("tone_generate_20ms", |b| {
        b.iter(|| {
            tone.fill(&mut out);
            black_box(&out);
        })
    });

    // 24 bits are 20 ms at 1200 baud.
    let mut fsk = FskModulator::new(FskParams::V23);
    let mut buf = Vec::with_capacity(256);
    c.bench_function("fsk_modulate_20ms", |b| {
        b.iter(|| {
            buf.clear();
            for byte in [0x55u8, 0x80] {
                fsk.push_byte(black_box(byte), &mut buf);
            }
            fsk.push_mark(4, &mut buf);
            black_box(&buf);
        })
    });

    let cid = CallerId {
        datetime: Some(CidDateTime {
            month: 1,
            day: 2,
            hour: 13,
            minute: 4,
        }),
        number: Some("0301234567".into()),
        name: Some("Anna".into()),
        ..CallerId::default()
    };
    let burst = cid.modulate().expect("valid caller ID");
    c.bench_function("callerid_demodulate_burst", |b| {
        b.iter(|| black_box(CallerId::demodulate(black_box(&burst))))
    });
}

/// One port's work for one 20 ms frame.
struct Port {
    det: DtmfDetector,
    tone: ToneGenerator,
    fsk: FskModulator,
    fsk_out: Vec<i16>,
    jb: JitterBuffer,
    t0: std::time::Instant,
    k: u32,
    speech: Vec<i16>,
}

impl Port {
    #[allow(clippy::disallowed_methods)] // a benchmark's epoch
    fn new(speech: Vec<i16>) -> Self {
        Port {
            det: DtmfDetector::new(),
            tone: ToneGenerator::new(&BUSY_DE).expect("valid spec"),
            fsk: FskModulator::new(FskParams::V23),
            fsk_out: Vec::with_capacity(256),
            jb: JitterBuffer::new(JitterConfig::adaptive()).expect("valid config"),
            t0: std::time::Instant::now(),
            k: 0,
            speech,
        }
    }

    fn frame(&mut self, out: &mut [i16; FRAME]) {
        let k = self.k as usize;
        let input = &self.speech[(k * FRAME) % (self.speech.len() - FRAME)..][..FRAME];
        self.det.handle_samples(input);
        while let Some(e) = self.det.poll_event() {
            black_box(e);
        }
        self.tone.fill(out);
        self.fsk_out.clear();
        for byte in [0x55u8, 0x80] {
            self.fsk.push_byte(byte, &mut self.fsk_out);
        }
        self.fsk.push_mark(4, &mut self.fsk_out);
        let now = self.t0 + Duration::from_millis(20 * u64::from(self.k));
        if self.k % 10 != 7 {
            self.jb.handle_packet(
                now,
                RtpAudio {
                    seq: self.k as u16,
                    timestamp: self.k.wrapping_mul(FRAME as u32),
                    samples: input,
                },
            );
        }
        self.jb.poll_frame(now + Duration::from_millis(5), out);
        black_box(&out);
        self.k += 1;
    }
}

/// Voiced-speech-like input (125 Hz with harmonics) so concealment has work to do.
fn speech() -> Vec<i16> {
    (0..8000)
        .map(|i| {
            let w = std::f64::consts::TAU * 125.0 * f64::from(i) / 8000.0;
            (6000.0 * w.sin() + 3000.0 * (2.0 * w).sin()) as i16
        })
        .collect()
}

fn bench_port(c: &mut Criterion) {
    let mut jb = JitterBuffer::new(JitterConfig::adaptive()).expect("valid config");
    #[allow(clippy::disallowed_methods)] // a benchmark's epoch
    let t0 = std::time::Instant::now();
    let input = speech();
    let mut k = 0u32;
    let mut out = [0i16; FRAME];
    c.bench_function("jitter_packet_and_frame_10pct_loss", |b| {
        b.iter(|| {
            let now = t0 + Duration::from_millis(20 * u64::from(k));
            if k % 10 != 7 {
                let at = (k as usize * FRAME) % (input.len() - FRAME);
                jb.handle_packet(
                    now,
                    RtpAudio {
                        seq: k as u16,
                        timestamp: k.wrapping_mul(FRAME as u32),
                        samples: &input[at..at + FRAME],
                    },
                );
            }
            black_box(jb.poll_frame(now + Duration::from_millis(5), &mut out));
            k += 1;
        })
    });

    let mut port = Port::new(speech());
    c.bench_function("port_frame_total", |b| b.iter(|| port.frame(&mut out)));

    // The summary in the budget's terms, measured directly over 50 000 frames (1000 s of
    // one port's audio).
    let mut port = Port::new(speech());
    for _ in 0..500 {
        port.frame(&mut out);
    }
    let frames = 50_000u32;
    #[allow(clippy::disallowed_methods)] // measuring wall time is the point
    let start = std::time::Instant::now();
    for _ in 0..frames {
        port.frame(&mut out);
    }
    let per_frame = start.elapsed() / frames;
    let pct = per_frame.as_secs_f64() / 0.020 * 100.0;
    println!(
        "DSP per port per 20 ms frame (DTMF detect + tone + FSK + jitter buffer/PLC): {} ns = {pct:.3} % of one core (budget 1 %)",
        per_frame.as_nanos()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = bench, bench_port
}
criterion_main!(benches);
