//! The analog chain on a simulated clock, through the real SLIC driver on the emulated
//! chip: the virtual phone goes off-hook, the chip raises its IRQ, the driver reads the
//! hook event, the line logic asks for dial tone and the port's sound source plays it in
//! the next 20 ms PCM frame. Issue 4: "lift port 1 → dial tone of the right frequency
//! within 50 ms of simulated time". The figure is printed (`--nocapture`) as the
//! dial-tone latency benchmark in simulated time.

use std::time::{Duration, Instant};

use embedded_hal::delay::DelayNs;
use pbx_hal::fxs::emulator::VirtualSlic;
use pbx_hal::fxs::{BoardFile, FxsEvent, FxsPort, Slic};

use super::sound::PortSound;
use super::*;
use crate::dialplan::StaticPlan;
use crate::media::dsp::goertzel_power;

const BOARD: &str = include_str!("../../../../hal/boards/sim-si3217x.board");
/// One PCM frame: 20 ms at 8 kHz.
const FRAME: usize = 160;
const FRAME_TIME: Duration = Duration::from_millis(20);

struct NoDelay;
impl DelayNs for NoDelay {
    fn delay_ns(&mut self, _ns: u32) {}
}

/// Share of a frame's power at `hz` (1.0: a pure tone at `hz`).
fn tone_share(frame: &[i16], hz: f32) -> f64 {
    let total: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    if total <= 0.0 {
        return 0.0;
    }
    2.0 * f64::from(goertzel_power(frame, hz)) / (frame.len() as f64 * total)
}

/// Lifts the handset at `lift` after start (with the PCM clock at an arbitrary phase) and
/// returns how long until a frame of 425 Hz dial tone started playing.
fn dial_tone_latency(lift: Duration) -> Duration {
    #[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
    let t0 = Instant::now();
    let chip = VirtualSlic::new(t0);
    let phone = chip.phone();
    let mut slic = Slic::new(chip.clone(), chip.reset_pin(), chip.irq_pin());
    let board = BoardFile::parse(BOARD).expect("the simulated board file parses");
    slic.init(&mut NoDelay, &board)
        .expect("the emulated SLIC comes up");
    let plan = SitePlan {
        site: Site::default(),
        plan: StaticPlan::new(["21", "22"], ["600"]),
    };
    let mut line = Line::new(LineConfig::default(), Box::new(plan)).expect("line");
    let mut sound = PortSound::new();
    let lift_at = t0 + lift;
    let mut lifted = false;
    let mut next_frame = t0 + FRAME_TIME;
    // 1 ms steps: the driver polls its IRQ as the board's interrupt thread would.
    for step in 1..=2000u64 {
        let now = t0 + Duration::from_millis(step);
        if !lifted && now >= lift_at {
            phone.off_hook(now);
            lifted = true;
        }
        chip.advance(now);
        while let Ok(Some(ev)) = slic.poll_event(now) {
            if let FxsEvent::HookChanged { off_hook, at } = ev {
                let hook = if off_hook {
                    Hook::OffHook
                } else {
                    Hook::OnHook
                };
                line.handle_hook(now, HookEvent { hook, at });
            }
        }
        if line.poll_timeout().is_some_and(|t| t <= now) {
            line.handle_timeout(now);
        }
        while let Some(out) = line.poll_output() {
            if let LineOutput::Linefeed(lf) = out {
                let _ = slic.set_linefeed(match lf {
                    Linefeed::Open => pbx_hal::fxs::Linefeed::Open,
                    _ => pbx_hal::fxs::Linefeed::ForwardActive,
                });
            }
            sound.apply(&out);
        }
        if now >= next_frame {
            // The frame that starts now.
            let mut ear = [0i16; FRAME];
            sound.frame(None, &mut ear);
            if lifted && tone_share(&ear, 425.0) > 0.9 {
                return now - lift_at;
            }
            next_frame += FRAME_TIME;
        }
    }
    panic!("no dial tone within 2 s of lifting the handset");
}

#[test]
fn lifting_the_handset_gives_425_hz_dial_tone_within_50_ms_of_simulated_time() {
    // Lift at every phase of the 20 ms PCM frame clock.
    let mut worst = Duration::ZERO;
    let mut total = Duration::ZERO;
    let phases = 20u32;
    for phase in 0..phases {
        let latency = dial_tone_latency(Duration::from_millis(500 + u64::from(phase)));
        assert!(
            latency <= Duration::from_millis(50),
            "dial tone after {latency:?} (lift at phase {phase} ms)"
        );
        worst = worst.max(latency);
        total += latency;
    }
    println!(
        "dial-tone latency from off-hook (simulated time, driver + emulated SLIC + line + \
         20 ms PCM frames): mean {:?}, worst {worst:?} over {phases} frame phases",
        total / phases
    );
}
