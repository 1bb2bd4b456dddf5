//! Cost of the per-port DSP per 20 ms frame (160 samples at 8 kHz). The budget is 1 % of
//! a core per port: 200 µs per frame.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use pbxd::media::dsp::callerid::{CallerId, CidDateTime};
use pbxd::media::dsp::dtmf::{DtmfDetector, DtmfGenerator};
use pbxd::media::dsp::fsk::{FskModulator, FskParams};
use pbxd::media::dsp::tone::{ToneGenerator, BUSY_DE};

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

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
