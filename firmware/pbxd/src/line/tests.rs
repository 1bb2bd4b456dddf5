//! Line tests on a simulated clock.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::dialplan::StaticPlan;
use crate::media::dsp::dtmf::DtmfGenerator;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Extensions 1002, 1003, 20 and 201 (so "20" needs the inter-digit timeout).
fn test_plan() -> Box<dyn LinePlan + Send> {
    Box::new(SitePlan {
        site: Site::default(),
        plan: StaticPlan::new(["1002", "1003", "20", "201"], ["600"]),
    })
}

/// A line driven on a simulated clock; outputs recorded with their time since start.
struct Sim {
    line: Line,
    t0: Instant,
    now: Instant,
    outs: Vec<(Duration, LineOutput)>,
}

impl Sim {
    fn new() -> Self {
        Self::with(LineConfig::default())
    }

    #[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
    fn with(config: LineConfig) -> Self {
        let t0 = Instant::now();
        let mut sim = Sim {
            line: Line::new(config, test_plan()).expect("valid config"),
            t0,
            now: t0,
            outs: Vec::new(),
        };
        sim.drain();
        assert_eq!(
            sim.take(),
            vec![(ms(0), LineOutput::Linefeed(Linefeed::ForwardActive))]
        );
        sim
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn drain(&mut self) {
        while let Some(o) = self.line.poll_output() {
            self.outs.push((self.now - self.t0, o));
        }
    }

    fn take(&mut self) -> Vec<(Duration, LineOutput)> {
        std::mem::take(&mut self.outs)
    }

    /// Outputs only, without times.
    fn take_outs(&mut self) -> Vec<LineOutput> {
        self.take().into_iter().map(|(_, o)| o).collect()
    }

    /// Advances the clock by `d`, firing every timer on time.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.line.poll_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.line.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
    }

    fn hook(&mut self, hook: Hook) {
        self.line
            .handle_hook(self.now, HookEvent { hook, at: self.now });
        self.drain();
    }

    fn off(&mut self) {
        self.hook(Hook::OffHook);
    }

    fn on(&mut self) {
        self.hook(Hook::OnHook);
    }

    /// A break of `d` (on-hook, then off-hook again).
    fn break_for(&mut self, d: Duration) {
        self.on();
        self.run(d);
        self.off();
    }

    /// `n` dial pulses (60 ms break, 40 ms make), then `gap` of make.
    fn pulses(&mut self, n: u32, gap: Duration) {
        for i in 0..n {
            self.break_for(ms(60));
            if i + 1 < n {
                self.run(ms(40));
            }
        }
        self.run(gap);
    }

    /// Audio in 20 ms frames, each delivered at the end of its 20 ms.
    fn audio(&mut self, samples: &[i16]) {
        for frame in samples.chunks(160) {
            self.run(ms(20));
            self.line.handle_audio(self.now, frame);
            self.drain();
        }
    }

    /// One DTMF digit: 60 ms tone at -10 dBm0, 80 ms pause.
    fn dtmf(&mut self, digit: char) {
        let mut s = DtmfGenerator::new(digit, -10.0, ms(60))
            .expect("valid digit")
            .samples();
        s.resize(s.len() + 640, 0);
        self.audio(&s);
    }

    fn dials(&self) -> Vec<String> {
        self.outs
            .iter()
            .filter_map(|(_, o)| match o {
                LineOutput::Call(CallEvent::Dial { digits }) => Some(digits.clone()),
                _ => None,
            })
            .collect()
    }

    /// Off-hook, then dial `digits` by pulses, 700 ms apart.
    fn connect_outgoing(&mut self) {
        self.off();
        for d in "1002".chars() {
            let n = d.to_digit(10).expect("digit");
            self.pulses(if n == 0 { 10 } else { n }, ms(700));
        }
        assert_eq!(self.line.state(), LineState::Calling);
        self.line.remote_answered(self.now);
        self.drain();
        assert_eq!(self.line.state(), LineState::Connected);
        self.take();
    }
}

fn dial(digits: &str) -> LineOutput {
    LineOutput::Call(CallEvent::Dial {
        digits: digits.into(),
    })
}

#[test]
fn test_plan_is_what_the_tests_assume() {
    let p = test_plan();
    for (s, c) in [
        ("1", Completeness::NeedMore),
        ("100", Completeness::NeedMore),
        ("1002", Completeness::Complete),
        ("20", Completeness::NeedMore),
        ("201", Completeness::Complete),
        ("090", Completeness::NeedMore),
        ("0900", Completeness::Invalid),
    ] {
        assert_eq!(p.completeness(s), c, "{s}");
    }
    assert!(p.dial_on_timeout("20"));
    assert!(!p.dial_on_timeout("100"));
}

#[test]
fn off_hook_gives_dial_tone_at_once() {
    let mut sim = Sim::new();
    sim.run(ms(1234));
    sim.off();
    assert_eq!(sim.take(), vec![(ms(1234), LineOutput::Play(Tone::Dial))]);
    assert_eq!(sim.line.state(), LineState::Dialling);
    assert_eq!(Tone::Dial.spec(), Some(tone::DIAL_TONE_DE));
}

#[test]
fn dtmf_digits_dial_as_soon_as_complete() {
    let mut sim = Sim::new();
    sim.off();
    sim.audio(&[0; 800]);
    sim.take();
    sim.dtmf('1');
    assert_eq!(sim.take_outs(), vec![LineOutput::Play(Tone::Silence)]);
    assert_eq!(sim.line.dialled(), "1");
    sim.dtmf('0');
    sim.dtmf('0');
    assert_eq!(sim.line.dialled(), "100");
    assert!(sim.take().is_empty());
    let before = sim.elapsed();
    sim.dtmf('2');
    let outs = sim.take();
    assert_eq!(outs.len(), 1, "{outs:?}");
    assert_eq!(outs[0].1, dial("1002"));
    // Dialled when the detector accepted the digit, not after a timeout.
    assert!(outs[0].0 - before <= ms(80), "{outs:?}");
    assert_eq!(sim.line.state(), LineState::Calling);
    // More tones do nothing once dialled.
    sim.dtmf('5');
    assert!(sim.take().is_empty());
}

#[test]
fn pulse_digits_dial_as_soon_as_complete() {
    let mut sim = Sim::new();
    sim.off();
    sim.take();
    sim.pulses(1, ms(700));
    assert_eq!(sim.take_outs(), vec![LineOutput::Play(Tone::Silence)]);
    sim.pulses(10, ms(700));
    sim.pulses(10, ms(700));
    assert_eq!(sim.line.dialled(), "100");
    sim.pulses(2, ms(0));
    let last_make = sim.elapsed();
    sim.run(ms(1000));
    assert_eq!(
        sim.take(),
        vec![(last_make + PULSE_DIGIT_GAP, dial("1002"))]
    );
}

#[test]
fn mixed_pulse_and_dtmf() {
    let mut sim = Sim::new();
    sim.off();
    sim.pulses(1, ms(400));
    sim.dtmf('0');
    sim.pulses(10, ms(400));
    sim.dtmf('2');
    assert_eq!(sim.dials(), vec!["1002".to_owned()]);
}

/// Dials one pulse with a break of `brk`, then waits 1 s; returns the digits.
fn one_pulse(brk: Duration) -> (String, LineState) {
    let mut sim = Sim::new();
    sim.off();
    sim.run(ms(500));
    sim.break_for(brk);
    sim.run(ms(1000));
    (sim.line.dialled().to_owned(), sim.line.state())
}

#[test]
fn pulse_break_min_boundary() {
    assert_eq!(one_pulse(ms(14)), (String::new(), LineState::Dialling));
    assert_eq!(one_pulse(ms(15)), ("1".to_owned(), LineState::Dialling));
}

#[test]
fn pulse_break_max_boundary() {
    assert_eq!(one_pulse(ms(200)), ("1".to_owned(), LineState::Dialling));
    assert_eq!(one_pulse(ms(201)), (String::new(), LineState::Dialling));
}

#[test]
fn hang_up_while_dialling_boundary() {
    assert_eq!(one_pulse(ms(300)), (String::new(), LineState::Dialling));
    let mut sim = Sim::new();
    sim.off();
    sim.break_for(ms(301));
    // Hung up, then lifted again: a fresh dial tone.
    assert_eq!(
        sim.take_outs(),
        vec![
            LineOutput::Play(Tone::Dial),
            LineOutput::Play(Tone::Silence),
            LineOutput::Play(Tone::Dial)
        ]
    );
}

#[test]
fn digit_gap_boundary() {
    for (make, want) in [(ms(299), "2"), (ms(300), "11")] {
        let mut sim = Sim::new();
        sim.off();
        sim.break_for(ms(60));
        sim.run(make);
        sim.break_for(ms(60));
        sim.run(ms(1000));
        assert_eq!(sim.line.dialled(), want, "make {make:?}");
    }
}

#[test]
fn ten_pulses_are_zero_eleven_are_invalid() {
    let mut sim = Sim::new();
    sim.off();
    sim.pulses(10, ms(500));
    assert_eq!(sim.line.dialled(), "0");
    let mut sim = Sim::new();
    sim.off();
    sim.pulses(11, ms(500));
    assert_eq!(sim.line.state(), LineState::Failed);
    assert_eq!(sim.line.tone(), Tone::Congestion);
}

/// Outputs of one break of `brk` while connected, and the state after.
fn break_connected(brk: Duration) -> (Vec<LineOutput>, LineState) {
    let mut sim = Sim::new();
    sim.connect_outgoing();
    sim.break_for(brk);
    sim.run(ms(1000));
    (sim.take_outs(), sim.line.state())
}

#[test]
fn flash_min_boundary() {
    assert_eq!(break_connected(ms(79)), (vec![], LineState::Connected));
    assert_eq!(
        break_connected(ms(80)),
        (
            vec![LineOutput::Call(CallEvent::Flash)],
            LineState::Connected
        )
    );
}

#[test]
fn flash_max_and_hang_up_boundary() {
    assert_eq!(
        break_connected(ms(300)),
        (
            vec![LineOutput::Call(CallEvent::Flash)],
            LineState::Connected
        )
    );
    // 301 ms on-hook: hang-up (detected by the timer), then the phone is lifted again.
    let (outs, state) = break_connected(ms(301));
    assert_eq!(outs[0], LineOutput::Call(CallEvent::HangUp));
    assert_eq!(outs[1], LineOutput::Play(Tone::Dial));
    assert_eq!(state, LineState::Dialling);
}

#[test]
fn hang_up_detected_by_timer_while_on_hook() {
    let mut sim = Sim::new();
    sim.connect_outgoing();
    sim.run(ms(100));
    let at = sim.elapsed();
    sim.on();
    sim.run(ms(5000));
    assert_eq!(
        sim.take(),
        vec![(at + FLASH_MAX + ms(1), LineOutput::Call(CallEvent::HangUp))]
    );
    assert_eq!(sim.line.state(), LineState::Idle);
    assert_eq!(sim.line.poll_timeout(), None);
}

#[test]
fn configurable_flash_window() {
    let cfg = LineConfig {
        flash_min: ms(100),
        flash_max: ms(600),
        ..LineConfig::default()
    };
    let mut sim = Sim::with(cfg);
    sim.connect_outgoing();
    sim.break_for(ms(99));
    sim.break_for(ms(550));
    sim.run(ms(1000));
    assert_eq!(sim.take_outs(), vec![LineOutput::Call(CallEvent::Flash)]);
    let bad = LineConfig {
        flash_max: ms(150),
        ..LineConfig::default()
    };
    assert!(matches!(
        Line::new(bad, test_plan()),
        Err(LineError::Config(_))
    ));
}

#[test]
fn inter_digit_timeout_dials_what_can_be_routed() {
    let mut sim = Sim::new();
    sim.off();
    sim.dtmf('2');
    sim.dtmf('0');
    let last = sim.elapsed();
    sim.run(ms(10_000));
    let (t, _) = sim
        .outs
        .iter()
        .find(|(_, o)| *o == dial("20"))
        .expect("dialled after the timeout");
    // The digit was accepted somewhat before the frame that ends it.
    assert!(*t >= last - ms(140) + INTER_DIGIT_TIMEOUT && *t <= last + INTER_DIGIT_TIMEOUT);
}

#[test]
fn inter_digit_timeout_on_incomplete_number_gives_congestion() {
    let mut sim = Sim::new();
    sim.off();
    for _ in 0..3 {
        sim.pulses(if sim.line.dialled().is_empty() { 1 } else { 10 }, ms(400));
    }
    assert_eq!(sim.line.dialled(), "100");
    sim.take();
    sim.run(INTER_DIGIT_TIMEOUT - ms(101));
    assert!(sim.take().is_empty());
    sim.run(ms(1));
    assert_eq!(sim.take_outs(), vec![LineOutput::Play(Tone::Congestion)]);
    assert!(sim.dials().is_empty());
}

#[test]
fn invalid_number_gives_congestion_at_once() {
    let mut sim = Sim::new();
    sim.off();
    for d in "090".chars() {
        sim.dtmf(d);
    }
    sim.take();
    sim.dtmf('0'); // 0900: blocked premium range, no continuation can be dialled
    assert_eq!(sim.take_outs(), vec![LineOutput::Play(Tone::Congestion)]);
    assert_eq!(sim.line.state(), LineState::Failed);
    // Congestion, then the howler, then silence; hanging up resets.
    sim.run(TONE_BEFORE_HOWLER);
    assert_eq!(sim.take_outs(), vec![LineOutput::Play(Tone::Howler)]);
    sim.run(HOWLER_DURATION);
    assert_eq!(sim.take_outs(), vec![LineOutput::Play(Tone::Silence)]);
    sim.on();
    sim.run(ms(400));
    assert_eq!(sim.line.state(), LineState::Idle);
    assert!(sim.take().is_empty());
}

#[test]
fn howler_after_off_hook_without_dialling() {
    let mut sim = Sim::new();
    sim.off();
    sim.take();
    sim.run(FIRST_DIGIT_TIMEOUT - ms(1));
    assert!(sim.take().is_empty());
    sim.run(ms(1));
    assert_eq!(
        sim.take(),
        vec![(FIRST_DIGIT_TIMEOUT, LineOutput::Play(Tone::Howler))]
    );
    sim.run(HOWLER_DURATION);
    assert_eq!(
        sim.take(),
        vec![(
            FIRST_DIGIT_TIMEOUT + HOWLER_DURATION,
            LineOutput::Play(Tone::Silence)
        )]
    );
    assert_eq!(sim.line.poll_timeout(), None);
    // The feed stays on so that the hang-up is seen.
    assert_eq!(sim.line.linefeed(), Linefeed::ForwardActive);
    sim.break_for(ms(400));
    assert_eq!(sim.line.tone(), Tone::Dial);
}

#[test]
fn outgoing_call_tones() {
    let mut sim = Sim::new();
    sim.off();
    sim.pulses(2, ms(400));
    sim.pulses(10, ms(400));
    sim.pulses(1, ms(400));
    assert_eq!(sim.dials(), vec!["201".to_owned()]);
    sim.take();
    sim.line.remote_ringing(sim.now);
    sim.drain();
    assert_eq!(sim.take_outs(), vec![LineOutput::Play(Tone::Ringback)]);
    sim.line.remote_answered(sim.now);
    sim.drain();
    assert_eq!(sim.take_outs(), vec![LineOutput::Play(Tone::Silence)]);
    sim.line.remote_hung_up(sim.now);
    sim.drain();
    assert_eq!(sim.take_outs(), vec![LineOutput::Play(Tone::Busy)]);
    sim.run(TONE_BEFORE_HOWLER);
    assert_eq!(sim.take_outs(), vec![LineOutput::Play(Tone::Howler)]);
    // The call is over: hanging up sends no HangUp.
    sim.on();
    sim.run(ms(400));
    assert_eq!(sim.take_outs(), vec![LineOutput::Play(Tone::Silence)]);
}

#[test]
fn remote_busy_and_failure() {
    let mut sim = Sim::new();
    sim.off();
    sim.pulses(2, ms(400));
    sim.pulses(10, ms(400));
    sim.pulses(1, ms(400));
    sim.line.remote_busy(sim.now);
    sim.drain();
    assert_eq!(sim.line.tone(), Tone::Busy);
    assert_eq!(sim.line.state(), LineState::Failed);

    let mut sim = Sim::new();
    sim.connect_outgoing();
    // Failures after the answer are not failures of the set-up: ignored.
    sim.line.remote_failed(sim.now, CallFailure::Congestion);
    sim.line.remote_busy(sim.now);
    sim.drain();
    assert!(sim.take().is_empty());
    sim.on();
    sim.run(ms(400));
    assert_eq!(sim.take_outs(), vec![LineOutput::Call(CallEvent::HangUp)]);
}

#[test]
fn refused_service_plays_the_special_information_tone_then_congestion() {
    let mut sim = Sim::new();
    sim.off();
    sim.pulses(2, ms(400));
    sim.pulses(10, ms(400));
    sim.pulses(1, ms(400));
    sim.take();
    sim.line.remote_failed(sim.now, CallFailure::Refused);
    sim.drain();
    assert_eq!(
        sim.take_outs(),
        vec![LineOutput::Play(Tone::SpecialInformation)]
    );
    assert_eq!(sim.line.state(), LineState::Failed);
    sim.run(SIT_BEFORE_CONGESTION);
    assert_eq!(sim.take_outs(), vec![LineOutput::Play(Tone::Congestion)]);
    sim.run(TONE_BEFORE_HOWLER);
    assert_eq!(sim.take_outs(), vec![LineOutput::Play(Tone::Howler)]);
}

fn caller() -> CallerId {
    CallerId {
        number: Some("1002".into()),
        name: Some("Alice".into()),
        withheld: false,
        datetime: Some(CidDateTime {
            month: 11,
            day: 21,
            hour: 10,
            minute: 45,
        }),
    }
}

#[test]
fn incoming_rings_with_cadence_and_caller_id_between_rings() {
    let mut sim = Sim::new();
    sim.run(ms(100));
    sim.line.incoming(sim.now, caller()).expect("idle");
    sim.drain();
    sim.run(ms(10_900));
    let t = |n: u64| ms(100 + n);
    let outs = sim.take();
    let expect_mdmf = caller().mdmf();
    assert_eq!(
        outs,
        vec![
            (t(0), LineOutput::Linefeed(Linefeed::Ringing)),
            (t(1000), LineOutput::Linefeed(Linefeed::OnHookTransmission)),
            (t(1500), LineOutput::SendCallerId(expect_mdmf.clone())),
            (t(5000), LineOutput::Linefeed(Linefeed::Ringing)),
            (t(6000), LineOutput::Linefeed(Linefeed::ForwardActive)),
            (t(10_000), LineOutput::Linefeed(Linefeed::Ringing)),
        ]
    );
    let parsed = callerid::CallerId::parse_mdmf(&expect_mdmf).expect("valid MDMF");
    assert_eq!(parsed.number.as_deref(), Some("1002"));
    assert_eq!(parsed.name.as_deref(), Some("Alice"));
    assert_eq!(parsed.datetime, caller().datetime);
    // The burst fits between the rings: it ends >= 200 ms before ring 2.
    let burst = callerid::modulate_bytes(
        &expect_mdmf,
        crate::media::dsp::fsk::FskParams::V23,
        callerid::Preamble::OnHook,
    );
    let burst_ms = burst.len() as u64 * 1000 / 8000;
    assert!(1500 + burst_ms + 200 <= 5000, "burst {burst_ms} ms");
}

#[test]
fn withheld_and_unknown_caller_ids() {
    let withheld = CallerId {
        withheld: true,
        ..caller()
    };
    let p = callerid::CallerId::parse_mdmf(&withheld.mdmf()).expect("valid");
    assert_eq!((p.number, p.name), (None, None));
    assert_eq!(p.number_absent, Some(Absence::Private));
    assert_eq!(p.name_absent, Some(Absence::Private));
    let odd = CallerId {
        number: Some("+49 211 1234567890123456789".into()),
        name: Some("Jürgen".into()),
        ..CallerId::default()
    };
    let p = callerid::CallerId::parse_mdmf(&odd.mdmf()).expect("valid");
    assert_eq!(p.number.as_deref(), Some("+49 211 123456789012"));
    assert_eq!(p.name.as_deref(), Some("Jrgen"));
    let p = callerid::CallerId::parse_mdmf(&CallerId::default().mdmf()).expect("valid");
    assert_eq!(p.number_absent, Some(Absence::Unavailable));
}

#[test]
fn ring_trip_answers_in_the_same_call() {
    for at in [ms(500), ms(2300)] {
        let mut sim = Sim::new();
        sim.line.incoming(sim.now, caller()).expect("idle");
        sim.drain();
        sim.run(at);
        sim.take();
        sim.off();
        let outs = sim.take();
        assert!(outs.iter().all(|(t, _)| *t == at), "{outs:?}");
        let outs: Vec<_> = outs.into_iter().map(|(_, o)| o).collect();
        assert_eq!(outs.last(), Some(&LineOutput::Call(CallEvent::Answer)));
        assert_eq!(sim.line.linefeed(), Linefeed::ForwardActive);
        assert_eq!(sim.line.state(), LineState::Connected);
        // No more ringing, no late caller ID.
        sim.run(ms(20_000));
        assert!(sim.take().is_empty());
        sim.on();
        sim.run(ms(400));
        assert_eq!(sim.take_outs(), vec![LineOutput::Call(CallEvent::HangUp)]);
    }
}

#[test]
fn incoming_when_not_idle_is_busy_and_caller_giving_up_stops_ringing() {
    let mut sim = Sim::new();
    sim.off();
    assert_eq!(sim.line.incoming(sim.now, caller()), Err(LineError::Busy));
    let mut sim = Sim::new();
    sim.line.incoming(sim.now, caller()).expect("idle");
    assert_eq!(sim.line.incoming(sim.now, caller()), Err(LineError::Busy));
    sim.drain();
    sim.run(ms(300));
    sim.line.remote_hung_up(sim.now);
    sim.drain();
    assert_eq!(sim.line.state(), LineState::Idle);
    assert_eq!(sim.line.linefeed(), Linefeed::ForwardActive);
    assert_eq!(sim.line.poll_timeout(), None);
}

#[test]
fn flash_then_hang_up() {
    let mut sim = Sim::new();
    sim.connect_outgoing();
    sim.break_for(ms(150));
    sim.run(ms(2000));
    sim.on();
    sim.run(ms(1000));
    assert_eq!(
        sim.take_outs(),
        vec![
            LineOutput::Call(CallEvent::Flash),
            LineOutput::Call(CallEvent::HangUp)
        ]
    );
}

#[test]
fn late_hook_event_is_judged_by_its_timestamp() {
    // An off-hook stamped 60 ms after the break but delivered after the hang-up timer
    // (301 ms) ran: too late, that was a hang-up; the phone is simply off-hook again.
    let mut sim = Sim::new();
    sim.off();
    let on_at = sim.now;
    sim.on();
    sim.run(ms(310));
    let off = HookEvent {
        hook: Hook::OnHook,
        at: on_at,
    };
    sim.line.handle_hook(sim.now, off); // duplicate: ignored
    sim.line.handle_hook(
        sim.now,
        HookEvent {
            hook: Hook::OffHook,
            at: on_at + ms(60),
        },
    );
    sim.drain();
    assert_eq!(sim.line.state(), LineState::Dialling);
    assert_eq!(sim.line.dialled(), "");

    // The same off-hook delivered 190 ms late, before the timer: still a pulse.
    let mut sim = Sim::new();
    sim.off();
    let on_at = sim.now;
    sim.on();
    sim.run(ms(250));
    sim.line.handle_hook(
        sim.now,
        HookEvent {
            hook: Hook::OffHook,
            at: on_at + ms(60),
        },
    );
    sim.run(ms(1000));
    assert_eq!(sim.line.dialled(), "1");
}

#[derive(Debug, Clone)]
enum Input {
    Hook(bool, u16),
    Audio(u8, u8),
    Wait(u16),
    Incoming(bool),
    Ringing,
    Answered,
    Busy,
    Failed,
    HungUp,
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        4 => (any::<bool>(), 0u16..700).prop_map(|(h, d)| Input::Hook(h, d)),
        2 => (0u8..20, 0u8..4).prop_map(|(d, n)| Input::Audio(d, n)),
        2 => (0u16..8000).prop_map(Input::Wait),
        1 => any::<bool>().prop_map(Input::Incoming),
        1 => Just(Input::Ringing),
        1 => Just(Input::Answered),
        1 => Just(Input::Busy),
        1 => Just(Input::Failed),
        1 => Just(Input::HungUp),
    ]
}

const DIGITS: &[u8] = b"0123456789*#ABCD";

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// No panics; a `Dial` only after the phone went on-hook since the last one; `HangUp`
    /// only for a call the line started or answered; every timeout lies ahead.
    #[test]
    fn arbitrary_sequences_keep_invariants(inputs in proptest::collection::vec(input(), 0..80)) {
        let mut sim = Sim::new();
        let mut idle_since_dial = true;
        let mut call = false;
        for inp in inputs {
            match inp {
                Input::Hook(off, d) => {
                    sim.run(ms(u64::from(d)));
                    sim.hook(if off { Hook::OffHook } else { Hook::OnHook });
                }
                Input::Audio(d, n) => {
                    let digit = char::from(DIGITS[usize::from(d) % DIGITS.len()]);
                    let mut s = DtmfGenerator::new(digit, -12.0, ms(20 * u64::from(n)))
                        .expect("valid digit")
                        .samples();
                    if d >= 16 {
                        s = (0..480).map(|i| ((i * 7919) % 2000) as i16 - 1000).collect();
                    }
                    sim.audio(&s);
                }
                Input::Wait(d) => sim.run(ms(u64::from(d))),
                Input::Incoming(withheld) => {
                    let _ = sim.line.incoming(sim.now, CallerId { withheld, ..caller() });
                    sim.drain();
                }
                Input::Ringing => sim.line.remote_ringing(sim.now),
                Input::Answered => sim.line.remote_answered(sim.now),
                Input::Busy => sim.line.remote_busy(sim.now),
                Input::Failed => sim.line.remote_failed(sim.now, CallFailure::Rejected),
                Input::HungUp => sim.line.remote_hung_up(sim.now),
            }
            sim.drain();
            if let Some(t) = sim.line.poll_timeout() {
                // Deadlines in the past were fired by the input itself.
                prop_assert!(t > sim.now);
            }
            for (_, o) in sim.take() {
                match o {
                    LineOutput::Call(CallEvent::Dial { .. }) => {
                        prop_assert!(idle_since_dial, "second Dial without going on-hook");
                        idle_since_dial = false;
                        call = true;
                    }
                    LineOutput::Call(CallEvent::Answer) => call = true,
                    LineOutput::Call(CallEvent::HangUp) => {
                        prop_assert!(call, "HangUp without a call");
                        call = false;
                    }
                    _ => {}
                }
            }
            if sim.line.state() == LineState::Idle {
                idle_since_dial = true;
                call = false;
            }
            if matches!(sim.line.state(), LineState::Failed | LineState::Ringing) {
                call = false;
            }
        }
    }
}

#[test]
fn country_ring_cadences() {
    // US: 2 s on, 4 s off, caller ID 500 ms after the first ring.
    let mut sim = Sim::with(LineConfig::for_country(Country::Us));
    sim.line.incoming(sim.now, caller()).expect("idle");
    sim.drain();
    sim.run(ms(12_500));
    let outs = sim.take();
    assert_eq!(
        outs,
        vec![
            (ms(0), LineOutput::Linefeed(Linefeed::Ringing)),
            (ms(2000), LineOutput::Linefeed(Linefeed::OnHookTransmission)),
            (ms(2500), LineOutput::SendCallerId(caller().mdmf())),
            (ms(6000), LineOutput::Linefeed(Linefeed::Ringing)),
            (ms(8000), LineOutput::Linefeed(Linefeed::ForwardActive)),
            (ms(12_000), LineOutput::Linefeed(Linefeed::Ringing)),
        ]
    );
    // GB: the double ring 0.4 on, 0.2 off, 0.4 on, 2.0 off. Its 200 ms pause is too
    // short for the caller ID after the first ring (the UK sends it before the first
    // ring, which the line does not do yet), so none is sent.
    let mut sim = Sim::with(LineConfig::for_country(Country::Gb));
    sim.line.incoming(sim.now, caller()).expect("idle");
    sim.drain();
    sim.run(ms(6100));
    let feeds: Vec<(Duration, LineOutput)> = sim.take();
    use Linefeed::*;
    let want: Vec<(Duration, LineOutput)> = [
        (0, Ringing),
        (400, OnHookTransmission),
        (600, Ringing),
        (1000, ForwardActive),
        (3000, Ringing),
        (3400, ForwardActive),
        (3600, Ringing),
        (4000, ForwardActive),
        (6000, Ringing),
    ]
    .into_iter()
    .map(|(t, f)| (ms(t), LineOutput::Linefeed(f)))
    .collect();
    assert_eq!(feeds, want);
    // A custom simple cadence overrides the country's pattern.
    let mut sim = Sim::with(LineConfig {
        ring_on: ms(800),
        ring_off: ms(3200),
        ..LineConfig::for_country(Country::Gb)
    });
    sim.line
        .incoming(sim.now, CallerId::default())
        .expect("idle");
    sim.drain();
    sim.run(ms(4100));
    let edges: Vec<Duration> = sim.take().into_iter().map(|(t, _)| t).collect();
    assert_eq!(edges, vec![ms(0), ms(800), ms(1300), ms(4000)]);
}

#[test]
fn tones_follow_the_port_country() {
    let line = Line::new(LineConfig::for_country(Country::Us), test_plan()).expect("valid");
    let dial = line.tone_spec(Tone::Dial).expect("a tone");
    assert_eq!(
        dial.sound,
        crate::media::dsp::tone::ToneSound::Dual((350.0, -13.0), (440.0, -13.0))
    );
    let line = Line::new(LineConfig::default(), test_plan()).expect("valid");
    assert_eq!(line.tone_spec(Tone::Busy), Tone::Busy.spec());
    assert_eq!(line.tone_spec(Tone::Silence), None);
}

#[test]
fn with_a_held_call_a_flash_while_dialling_or_after_a_failed_enquiry_is_reported() {
    let mut sim = Sim::new();
    sim.connect_outgoing();
    sim.line.enquiry(sim.now);
    sim.drain();
    assert_eq!(sim.line.state(), LineState::Dialling);
    assert_eq!(sim.line.tone(), Tone::SpecialDial);
    // A 60 ms break is still a dial pulse (10 pps rotary dial); no flash.
    sim.take();
    sim.break_for(ms(60));
    sim.run(ms(400));
    assert!(!sim
        .take_outs()
        .contains(&LineOutput::Call(CallEvent::Flash)));
    assert_eq!(sim.line.dialled(), "1");
    // Back to the held call, then a new enquiry that fails: a flash is still seen.
    sim.line.resume(sim.now);
    sim.line.enquiry(sim.now);
    sim.drain();
    sim.take();
    sim.break_for(ms(150));
    sim.run(ms(100));
    assert_eq!(sim.take_outs(), vec![LineOutput::Call(CallEvent::Flash)]);
    for n in [1, 10, 10, 2] {
        sim.pulses(n, ms(700));
    }
    assert_eq!(sim.line.state(), LineState::Calling);
    sim.line.remote_busy(sim.now);
    sim.drain();
    sim.take();
    sim.break_for(ms(150));
    sim.run(ms(100));
    assert_eq!(sim.take_outs(), vec![LineOutput::Call(CallEvent::Flash)]);
    // Without a second call, a flash outside a call means nothing.
    sim.line.set_second_call(sim.now, false);
    sim.break_for(ms(150));
    sim.run(ms(100));
    assert_eq!(sim.take_outs(), vec![]);
    // Hanging up with a second call is always reported (to transfer or recall).
    sim.line.set_second_call(sim.now, true);
    sim.on();
    sim.run(ms(1000));
    assert_eq!(
        sim.take_outs(),
        vec![
            LineOutput::Call(CallEvent::HangUp),
            LineOutput::Play(Tone::Silence)
        ]
    );
}

#[test]
fn call_waiting_needs_a_connected_line_and_is_refused_when_switched_off() {
    let cid = CallerId {
        number: Some("23".into()),
        ..CallerId::default()
    };
    let mut sim = Sim::new();
    sim.off();
    assert_eq!(
        sim.line.call_waiting(sim.now, cid.clone()),
        Err(LineError::Busy)
    );
    sim.on();
    sim.run(ms(1000));
    let mut sim = Sim::with(LineConfig {
        call_waiting: false,
        ..LineConfig::default()
    });
    sim.connect_outgoing();
    assert_eq!(
        sim.line.call_waiting(sim.now, cid.clone()),
        Err(LineError::Busy)
    );
    // On: the tone burst (DE: 600 ms), then the CAS, then nothing without an ACK.
    let mut sim = Sim::new();
    sim.connect_outgoing();
    let start = sim.elapsed();
    assert_eq!(sim.line.call_waiting(sim.now, cid.clone()), Ok(()));
    sim.drain();
    assert_eq!(
        sim.line.call_waiting(sim.now, cid),
        Err(LineError::Busy),
        "one call waits at a time"
    );
    sim.run(ms(2000));
    let outs: Vec<_> = sim
        .take()
        .into_iter()
        .map(|(t, o)| (t - start, o))
        .collect();
    assert_eq!(
        outs,
        vec![
            (ms(0), LineOutput::Play(Tone::CallWaiting)),
            (ms(600), LineOutput::Play(Tone::Silence)),
            (ms(600), LineOutput::MuteCall(true)),
            (ms(600), LineOutput::SendCas),
            // No acknowledgement within 80 + 250 ms: the call is heard again.
            (ms(930), LineOutput::MuteCall(false)),
        ]
    );
    assert_eq!(sim.line.waiting(), Some(false));
    // The burst comes again after the cadence's pause (5 s), without a CAS.
    sim.run(ms(4700));
    assert_eq!(
        sim.take_outs(),
        vec![
            LineOutput::Play(Tone::CallWaiting),
            LineOutput::Play(Tone::Silence)
        ]
    );
    sim.line.end_waiting(sim.now);
    assert_eq!(sim.line.waiting(), None);
}

#[test]
fn a_waiting_message_gives_the_special_dial_tone() {
    let mut sim = Sim::new();
    sim.line.set_message_waiting(sim.now, true);
    sim.off();
    assert_eq!(sim.line.tone(), Tone::SpecialDial);
    sim.line.set_message_waiting(sim.now, false);
    sim.drain();
    assert_eq!(sim.line.tone(), Tone::Dial);
    sim.line.set_message_waiting(sim.now, true);
    sim.drain();
    assert_eq!(sim.line.tone(), Tone::SpecialDial);
    // The first digit stops it as it stops the dial tone.
    sim.pulses(2, ms(700));
    assert_eq!(sim.line.tone(), Tone::Silence);
}

#[test]
fn type_2_caller_id_mutes_the_call_from_the_cas_to_the_end_of_the_fsk() {
    let cid = CallerId {
        number: Some("23".into()),
        ..CallerId::default()
    };
    let mut sim = Sim::new();
    sim.connect_outgoing();
    let start = sim.elapsed();
    assert_eq!(sim.line.call_waiting(sim.now, cid), Ok(()));
    sim.drain();
    // The tone burst, then mute and CAS at 600 ms; the phone answers D after the CAS.
    sim.run(ms(680));
    sim.dtmf('D');
    sim.run(ms(1000));
    let outs: Vec<_> = sim
        .take()
        .into_iter()
        .map(|(t, o)| (t - start, o))
        .collect();
    let mute = |on| {
        outs.iter()
            .find(|(_, o)| *o == LineOutput::MuteCall(on))
            .map(|(t, _)| *t)
    };
    let fsk = outs
        .iter()
        .find_map(|(t, o)| match o {
            LineOutput::SendCallerIdOffHook(m) => Some((*t, m.len())),
            _ => None,
        })
        .expect("type-2 caller ID sent");
    assert_eq!(mute(true), Some(ms(600)), "{outs:?}");
    // Unmuted only once the FSK (80 + 10 per byte + 2 bits at 1200 baud) has played.
    let bits = 82 + 10 * fsk.1 as u64;
    let fsk_end = fsk.0 + Duration::from_micros((bits * 1_000_000).div_ceil(1200));
    let unmute = mute(false).expect("unmuted");
    assert!(
        unmute >= fsk_end && unmute <= fsk_end + ms(40),
        "unmuted at {unmute:?}, FSK ends {fsk_end:?}: {outs:?}"
    );
    assert_eq!(sim.line.waiting(), Some(true));
    // A waiting call that ends while muted unmutes (the caller gives up during CAS).
    let mut sim = Sim::new();
    sim.connect_outgoing();
    let cid = CallerId {
        number: Some("23".into()),
        ..CallerId::default()
    };
    assert_eq!(sim.line.call_waiting(sim.now, cid), Ok(()));
    sim.run(ms(650));
    sim.take();
    sim.line.end_waiting(sim.now);
    sim.drain();
    assert_eq!(sim.take_outs(), vec![LineOutput::MuteCall(false)]);
}
