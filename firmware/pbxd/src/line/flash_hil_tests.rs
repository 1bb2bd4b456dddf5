//! Hook flash and call waiting end to end on a simulated clock: three analog ports
//! (extensions 21, 22, 23), each a virtual phone on an emulated SLIC driven by the
//! real driver, the port legs and lines, call control, and an in-memory model of the
//! RTP relay (audio a port sends to a call's relay port reaches the other side's
//! configured address; a side on hold hears music). Audio is checked by tones: a tone
//! into one phone's microphone must come out of the other phone's earpiece.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use embedded_hal::delay::DelayNs;
use pbx_hal::fxs::emulator::{VirtualIrqPin, VirtualPhone, VirtualResetPin, VirtualSlic};
use pbx_hal::fxs::{BoardFile, FxsEvent, FxsPort, Slic};

use super::cpe::Type2Cpe;
use super::legs::{PortLegs, PortOutput, PortSpec};
use super::sound::PortSound;
use super::*;
use crate::call::{
    CallConfig, CallControl, CallDirectory, CallId, Cause, ExtensionProfile, LegId, Legs,
    MediaControl, MediaPort, Party, RingTarget, Side, Sound, TransferStatus,
};
use crate::dialplan::StaticPlan;
use crate::media::dsp::dtmf::DtmfGenerator;
use crate::media::dsp::goertzel_power;
use crate::media::sdp::Negotiated;
use crate::registrar::{Directory, ExtensionSecrets};
use crate::store::RingGroup;

const BOARD: &str = include_str!("../../../../hal/boards/sim-si3217x.board");
const FRAME: usize = 160;
const STEP: Duration = Duration::from_millis(5);
/// What the relay plays to a held party in this model.
const MUSIC_HZ: f32 = 330.0;
const EXTENSIONS: [&str; 3] = ["21", "22", "23"];

struct NoDelay;
impl DelayNs for NoDelay {
    fn delay_ns(&mut self, _ns: u32) {}
}

fn share(frame: &[i16], hz: f32) -> f64 {
    let total: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    if total <= 0.0 {
        return 0.0;
    }
    2.0 * f64::from(goertzel_power(frame, hz)) / (frame.len() as f64 * total)
}

fn sine(hz: f32, n: usize, phase: usize) -> Vec<i16> {
    (0..n)
        .map(|k| {
            let t = (k + phase) as f32 / 8000.0;
            (6000.0 * (2.0 * std::f32::consts::PI * hz * t).sin()) as i16
        })
        .collect()
}

/// The relay and directory as call control sees them.
#[derive(Default)]
struct Office {
    open: HashMap<CallId, (u16, u16)>,
    remote: HashMap<(CallId, Side), (SocketAddr, bool)>,
    music: HashSet<(CallId, Side)>,
    sounds: Vec<(CallId, Side, Option<Sound>)>,
}

impl Directory for Office {
    fn secrets(&mut self, _: &str) -> Option<ExtensionSecrets> {
        None
    }
}

impl CallDirectory for Office {
    fn extension(&self, n: &str) -> Option<ExtensionProfile> {
        EXTENSIONS
            .contains(&n)
            .then(|| ExtensionProfile::plain(None))
    }
    fn ring_group(&self, _: &str) -> Option<RingGroup> {
        None
    }
    fn is_prefix_of_internal(&self, p: &str) -> bool {
        EXTENSIONS
            .iter()
            .any(|n| n.len() > p.len() && n.starts_with(p))
    }
    fn site(&self) -> Site {
        Site::default()
    }
}

impl MediaControl for Office {
    fn play(&mut self, call: CallId, side: Side, sound: Sound) {
        self.sounds.push((call, side, Some(sound)));
        self.music.insert((call, side));
    }
    fn stop_playback(&mut self, call: CallId, side: Side) {
        self.sounds.push((call, side, None));
        self.music.remove(&(call, side));
    }
    fn open(&mut self, call: CallId) -> Result<(u16, u16), String> {
        let base = 30_000 + 4 * u16::try_from(call).map_err(|e| e.to_string())?;
        self.open.insert(call, (base, base + 2));
        Ok((base, base + 2))
    }
    fn configure(&mut self, call: CallId, side: Side, n: &Negotiated) {
        self.remote
            .insert((call, side), (n.remote, n.direction.sends()));
    }
    fn set_active(&mut self, _: CallId, _: bool) {}
    fn close(&mut self, call: CallId) {
        assert!(self.open.remove(&call).is_some(), "closed twice");
        self.remote.retain(|(c, _), _| *c != call);
        self.music.retain(|(c, _)| *c != call);
    }
}

/// Port legs as call control commands them, at `now`.
struct PortSide<'a> {
    ports: &'a mut PortLegs,
    now: Instant,
}

impl Legs for PortSide<'_> {
    fn accept(
        &mut self,
        leg: LegId,
        media: MediaPort,
        _: bool,
    ) -> Result<Option<Negotiated>, Cause> {
        self.ports.accept(leg, media)
    }
    fn ring(
        &mut self,
        target: &RingTarget,
        from: &Party,
        media: MediaPort,
    ) -> Result<LegId, Cause> {
        self.ports.ring(self.now, target, from, media)
    }
    fn progress(&mut self, leg: LegId, _: bool, _: bool) {
        self.ports.progress(self.now, leg);
    }
    fn answer(&mut self, leg: LegId) {
        self.ports.answer(self.now, leg);
    }
    fn reject(&mut self, leg: LegId, cause: &Cause) {
        self.ports.reject(self.now, leg, cause);
    }
    fn hang_up(&mut self, leg: LegId) {
        self.ports.hang_up(self.now, leg);
    }
    fn move_media(&mut self, leg: LegId, media: MediaPort) {
        self.ports.move_media(leg, media);
    }
    fn transfer_status(&mut self, leg: LegId, status: TransferStatus) {
        self.ports.transfer_status(leg, status);
    }
}

struct Phone {
    chip: VirtualSlic,
    hook: VirtualPhone,
    slic: Slic<VirtualSlic, VirtualResetPin, VirtualIrqPin>,
    sound: PortSound,
    media: SocketAddr,
    /// The relay port the port's bridge sends to.
    target: Option<u16>,
    mic: VecDeque<i16>,
    /// A steady tone into the microphone, if any.
    talk: Option<f32>,
    /// The last frame the phone heard.
    ear: Vec<i16>,
    cpe: Type2Cpe,
}

struct Rig {
    now: Instant,
    frame_at: Instant,
    phase: usize,
    ports: PortLegs,
    cc: CallControl,
    office: Office,
    phones: Vec<Phone>,
}

impl Rig {
    fn new() -> Self {
        #[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
        let t0 = Instant::now();
        let board = BoardFile::parse(BOARD).expect("the simulated board file parses");
        let mut lines = Vec::new();
        let mut phones = Vec::new();
        for (i, ext) in EXTENSIONS.iter().enumerate() {
            let chip = VirtualSlic::new(t0);
            let hook = chip.phone();
            let mut slic = Slic::new(chip.clone(), chip.reset_pin(), chip.irq_pin());
            slic.init(&mut NoDelay, &board)
                .expect("the emulated SLIC comes up");
            let plan = SitePlan {
                site: Site::default(),
                plan: StaticPlan::new(EXTENSIONS, Vec::<&str>::new()),
            };
            let line = Line::new(LineConfig::default(), Box::new(plan)).expect("line");
            let media: SocketAddr = format!("127.0.0.1:{}", 7000 + 2 * i).parse().expect("addr");
            lines.push((
                PortSpec {
                    extension: (*ext).to_owned(),
                    media,
                },
                line,
            ));
            phones.push(Phone {
                chip,
                hook,
                slic,
                sound: PortSound::new(),
                media,
                target: None,
                mic: VecDeque::new(),
                talk: None,
                ear: vec![0; FRAME],
                cpe: Type2Cpe::new(true),
            });
        }
        let mut rig = Self {
            now: t0,
            frame_at: t0,
            phase: 0,
            ports: PortLegs::new(lines),
            cc: CallControl::new(CallConfig {
                ring_timeout: Duration::from_secs(60),
                ..CallConfig::default()
            }),
            office: Office::default(),
            phones,
        };
        rig.shell();
        rig
    }

    /// Carries out the port legs' shell instructions and call control's work.
    fn shell(&mut self) {
        for _ in 0..100 {
            let mut busy = false;
            while let Some(ev) = self.ports.poll_event() {
                busy = true;
                let mut side = PortSide {
                    ports: &mut self.ports,
                    now: self.now,
                };
                self.cc
                    .handle_event(self.now, ev, &mut side, &mut self.office);
            }
            while let Some((i, out)) = self.ports.poll_shell() {
                busy = true;
                let p = &mut self.phones[i];
                match out {
                    PortOutput::Media(t) => p.target = t,
                    PortOutput::Line(LineOutput::Linefeed(lf)) => {
                        let hal = match lf {
                            Linefeed::Open => pbx_hal::fxs::Linefeed::Open,
                            Linefeed::ForwardActive => pbx_hal::fxs::Linefeed::ForwardActive,
                            Linefeed::ReverseActive => pbx_hal::fxs::Linefeed::ReverseActive,
                            Linefeed::OnHookTransmission => {
                                pbx_hal::fxs::Linefeed::OnHookTransmission
                            }
                            Linefeed::Ringing => pbx_hal::fxs::Linefeed::Ringing,
                        };
                        p.slic.set_linefeed(hal).expect("emulated linefeed");
                    }
                    PortOutput::Line(other) => p.sound.apply(&other),
                }
            }
            if !busy {
                return;
            }
        }
        panic!("the port legs and call control never settle");
    }

    fn step(&mut self) {
        self.now += STEP;
        let now = self.now;
        for i in 0..self.phones.len() {
            self.phones[i].chip.advance(now);
            while let Ok(Some(ev)) = self.phones[i].slic.poll_event(now) {
                let (hook, at) = match ev {
                    FxsEvent::HookChanged { off_hook, at } => (
                        if off_hook {
                            Hook::OffHook
                        } else {
                            Hook::OnHook
                        },
                        at,
                    ),
                    FxsEvent::RingTripped { at } => (Hook::OffHook, at),
                };
                self.ports.handle_hook(now, i, HookEvent { hook, at });
                self.shell();
            }
        }
        if self.ports.poll_timeout().is_some_and(|t| t <= now) {
            self.ports.handle_timeout(now);
        }
        if self.cc.poll_timeout().is_some_and(|t| t <= now) {
            let mut side = PortSide {
                ports: &mut self.ports,
                now,
            };
            self.cc.handle_timeout(now, &mut side, &mut self.office);
        }
        self.shell();
        if now >= self.frame_at + Duration::from_millis(20) {
            self.frame_at = now;
            self.frame();
        }
    }

    /// One 20 ms PCM period: microphones to the relay, the relay to the earpieces.
    fn frame(&mut self) {
        let now = self.now;
        let mut sent: HashMap<u16, Vec<i16>> = HashMap::new();
        for i in 0..self.phones.len() {
            let p = &mut self.phones[i];
            if !p.hook.is_off_hook() {
                p.mic.clear();
                continue;
            }
            let mut mic: Vec<i16> = match p.talk {
                Some(hz) => sine(hz, FRAME, self.phase),
                None => vec![0; FRAME],
            };
            for s in mic.iter_mut() {
                if let Some(v) = p.mic.pop_front() {
                    *s = s.saturating_add(v);
                }
            }
            if let Some(t) = p.target {
                // As the port shell: silence to the call while the line mutes it.
                let to_call = if p.sound.call_muted() {
                    vec![0; FRAME]
                } else {
                    mic.clone()
                };
                sent.insert(t, to_call);
            }
            self.ports.handle_audio(now, i, &mic);
            self.shell();
        }
        for i in 0..self.phones.len() {
            let media = self.phones[i].media;
            let mut call_audio = None;
            for (&(id, side), &(remote, sends)) in &self.office.remote {
                if remote != media || !sends {
                    continue;
                }
                if self.office.music.contains(&(id, side)) {
                    call_audio = Some(sine(MUSIC_HZ, FRAME, self.phase));
                } else if let Some(&(a, b)) = self.office.open.get(&id) {
                    let from = if side == Side::Caller { b } else { a };
                    call_audio = sent.get(&from).cloned();
                }
            }
            let p = &mut self.phones[i];
            let mut ear = vec![0i16; FRAME];
            p.sound.frame(call_audio.as_deref(), &mut ear);
            if p.hook.is_off_hook() {
                if let Some(ack) = p.cpe.hear(&ear) {
                    p.mic.extend(ack);
                }
            }
            p.ear = ear;
        }
        self.phase += FRAME;
    }

    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }

    /// Runs until `cond` holds, at most `limit`.
    fn until(&mut self, limit: Duration, what: &str, cond: impl Fn(&Rig) -> bool) {
        let end = self.now + limit;
        while !cond(self) {
            assert!(self.now < end, "not within {limit:?}: {what}");
            self.step();
        }
    }

    fn lift(&mut self, i: usize) {
        self.phones[i].hook.off_hook(self.now);
        self.run(Duration::from_millis(100));
    }

    fn hang_up(&mut self, i: usize) {
        self.phones[i].hook.on_hook(self.now);
        self.run(Duration::from_millis(600));
    }

    fn flash(&mut self, i: usize) {
        let back = self.phones[i]
            .hook
            .flash(self.now, Duration::from_millis(150));
        while self.now < back {
            self.step();
        }
        self.run(Duration::from_millis(200));
    }

    fn dial(&mut self, i: usize, digits: &str) {
        for d in digits.chars() {
            let s = DtmfGenerator::new(d, -10.0, Duration::from_millis(60))
                .expect("digit")
                .samples();
            self.phones[i].mic.extend(s);
            self.phones[i].mic.extend(std::iter::repeat_n(0, 640));
            self.run(Duration::from_millis(140));
        }
        self.run(Duration::from_millis(200));
    }

    fn ringing(&self, i: usize) -> bool {
        self.phones[i].hook.is_ringing(self.now)
    }

    /// Share of `hz` in what phone `i` heard over the next 200 ms (the best frame).
    fn hears(&mut self, i: usize, hz: f32) -> f64 {
        let mut best: f64 = 0.0;
        for _ in 0..10 {
            let end = self.now + Duration::from_millis(20);
            while self.now < end {
                self.step();
            }
            best = best.max(share(&self.phones[i].ear, hz));
        }
        best
    }

    /// Phone `from` talks (a tone); phone `to` must hear it, and `not` must not.
    fn assert_talk(&mut self, from: usize, to: usize, not: Option<usize>, hz: f32) {
        self.phones[from].talk = Some(hz);
        let heard = self.hears(to, hz);
        assert!(
            heard > 0.8,
            "phone {} should hear phone {}: {heard}",
            to + 1,
            from + 1
        );
        if let Some(n) = not {
            let leak = self.hears(n, hz);
            assert!(
                leak < 0.1,
                "phone {} should not hear phone {}: {leak}",
                n + 1,
                from + 1
            );
        }
        self.phones[from].talk = None;
    }

    /// Phone `a` (off-hook) calls extension `ext` of phone `b`, which answers.
    fn call(&mut self, a: usize, b: usize) {
        self.lift(a);
        self.dial(a, EXTENSIONS[b]);
        self.until(Duration::from_secs(2), "the callee rings", |r| r.ringing(b));
        self.lift(b);
        self.run(Duration::from_millis(200));
    }

    fn assert_idle(&mut self) {
        self.run(Duration::from_secs(1));
        assert!(self.cc.is_empty(), "calls left");
        assert_eq!(self.cc.legs_known(), 0, "legs left in call control");
        assert_eq!(self.ports.calls(), 0, "port legs left");
        assert!(self.office.open.is_empty(), "media left open");
    }
}

#[test]
fn flash_enquiry_toggle_and_hang_up_transfers_the_held_party_to_the_enquiry_party() {
    let mut rig = Rig::new();
    // Port 1 calls port 2: they talk.
    rig.call(0, 1);
    rig.assert_talk(0, 1, None, 1000.0);
    rig.assert_talk(1, 0, None, 800.0);
    // Flash: port 2 hears music on hold; port 1 the special dial tone (425 Hz).
    rig.flash(0);
    assert!(rig.ports.has_held(0));
    assert_eq!(rig.ports.line(0).map(Line::tone), Some(Tone::SpecialDial));
    assert!(rig.hears(1, MUSIC_HZ) > 0.8, "the held party hears music");
    assert!(rig.hears(0, 425.0) > 0.8, "special dial tone");
    // Enquiry to port 3, which answers: ports 1 and 3 talk, port 2 still hears music.
    rig.dial(0, "23");
    rig.until(Duration::from_secs(2), "port 3 rings", |r| r.ringing(2));
    rig.lift(2);
    rig.run(Duration::from_millis(200));
    rig.assert_talk(0, 2, Some(1), 1000.0);
    // Flash toggles to port 2 (port 3 now on hold) and back.
    rig.flash(0);
    rig.assert_talk(0, 1, Some(2), 1200.0);
    assert!(
        rig.hears(2, MUSIC_HZ) > 0.8,
        "the enquiry party now hears music"
    );
    rig.flash(0);
    rig.assert_talk(0, 2, Some(1), 1000.0);
    // Port 1 hangs up: transfer. Ports 2 and 3 talk, both ways, without music.
    rig.hang_up(0);
    assert_eq!(rig.ports.line(0).map(Line::state), Some(LineState::Idle));
    assert!(!rig.ringing(0), "a transfer does not ring the transferor");
    rig.assert_talk(1, 2, None, 1400.0);
    rig.assert_talk(2, 1, None, 700.0);
    assert!(
        rig.hears(1, MUSIC_HZ) < 0.1,
        "music stopped after the transfer"
    );
    assert_eq!(rig.ports.calls(), 2, "one leg each on ports 2 and 3");
    rig.hang_up(1);
    assert_eq!(rig.ports.line(2).map(Line::tone), Some(Tone::Busy));
    rig.hang_up(2);
    rig.assert_idle();
}

#[test]
fn hang_up_with_only_the_held_call_rings_again_and_a_busy_enquiry_returns_by_flash() {
    let mut rig = Rig::new();
    rig.call(0, 1);
    rig.flash(0);
    // The enquiry finds port 3 busy (off-hook, dialling): busy tone; flash goes back.
    rig.lift(2);
    rig.dial(0, "23");
    assert_eq!(rig.ports.line(0).map(Line::state), Some(LineState::Failed));
    assert!(
        matches!(
            rig.ports.line(0).map(Line::tone),
            Some(Tone::Busy | Tone::Congestion)
        ),
        "the enquiry failed"
    );
    rig.flash(0);
    rig.assert_talk(0, 1, None, 1000.0);
    assert!(rig.hears(1, MUSIC_HZ) < 0.1, "resumed: no music");
    rig.hang_up(2);
    // Hold again and hang up: the phone rings again (recall) with the held party's
    // number; lifting resumes the held call.
    rig.flash(0);
    rig.hang_up(0);
    rig.until(Duration::from_secs(2), "recall rings port 1", |r| {
        r.ringing(0)
    });
    assert!(
        rig.hears(1, MUSIC_HZ) > 0.8,
        "still held while the recall rings"
    );
    rig.lift(0);
    rig.run(Duration::from_millis(200));
    rig.assert_talk(1, 0, None, 900.0);
    rig.assert_talk(0, 1, None, 1100.0);
    rig.hang_up(0);
    rig.hang_up(1);
    rig.assert_idle();
}

#[test]
fn call_waiting_tone_type_2_caller_id_flash_takes_the_call_and_recall_after_hang_up() {
    let mut rig = Rig::new();
    rig.call(0, 1);
    // Port 3 calls 21 while port 1 talks: it hears ringback, port 1 the waiting tone.
    rig.lift(2);
    rig.dial(2, "21");
    assert!(rig.ports.has_waiting(0), "the call waits");
    rig.until(Duration::from_secs(2), "CAS heard", |r| {
        r.phones[0].cpe.cas_heard() > 0
    });
    let cas_end = rig.now;
    assert!(!rig.ringing(0));
    assert_eq!(rig.ports.line(2).map(Line::tone), Some(Tone::Ringback));
    // The display phone on port 1 hears the CAS, acknowledges and decodes the FSK.
    rig.until(Duration::from_secs(3), "caller ID decoded", |r| {
        r.phones[0].cpe.caller_id().is_some()
    });
    let cid = rig.phones[0].cpe.caller_id().expect("decoded");
    println!(
        "type-2 caller ID decoded by the virtual phone {:?} (simulated, 5 ms steps) after \
         the CAS ended: ACK, 100 ms pause, FSK",
        rig.now - cas_end
    );
    assert_eq!(cid.number.as_deref(), Some("23"));
    assert_eq!(rig.ports.line(0).and_then(Line::waiting), Some(true));
    // The call goes on meanwhile.
    rig.assert_talk(1, 0, None, 800.0);
    // Flash takes the waiting call; port 2 is held (music).
    rig.flash(0);
    assert!(!rig.ports.has_waiting(0));
    rig.assert_talk(0, 2, Some(1), 1000.0);
    assert!(rig.hears(1, MUSIC_HZ) > 0.8);
    // Flash toggles back to port 2.
    rig.flash(0);
    rig.assert_talk(0, 1, Some(2), 1200.0);
    // Hanging up ends the call with port 2 (a waiting call is no enquiry: no
    // transfer) and rings again for port 3.
    rig.hang_up(0);
    assert_eq!(rig.ports.line(1).map(Line::tone), Some(Tone::Busy));
    rig.until(Duration::from_secs(2), "recall rings port 1", |r| {
        r.ringing(0)
    });
    rig.lift(0);
    rig.run(Duration::from_millis(200));
    rig.assert_talk(2, 0, None, 600.0);
    rig.hang_up(1);
    rig.hang_up(0);
    rig.hang_up(2);
    rig.assert_idle();
}

#[test]
fn a_phone_without_type_2_support_gets_the_tone_but_no_fsk() {
    let mut rig = Rig::new();
    rig.phones[0].cpe = Type2Cpe::new(false);
    rig.call(0, 1);
    rig.lift(2);
    rig.dial(2, "21");
    rig.run(Duration::from_secs(2));
    assert_eq!(rig.phones[0].cpe.cas_heard(), 1);
    assert_eq!(rig.ports.line(0).and_then(Line::waiting), Some(false));
    // No FSK: the call is heard again after the CAS.
    rig.assert_talk(1, 0, None, 800.0);
    // The waiting caller gives up: the waiting ends, the call goes on.
    rig.hang_up(2);
    assert!(!rig.ports.has_waiting(0));
    rig.assert_talk(0, 1, None, 1000.0);
    rig.hang_up(0);
    rig.hang_up(1);
    rig.assert_idle();
}

#[test]
fn a_us_port_sends_type_2_caller_id_as_bell_202_and_its_phone_decodes_it() {
    use super::ports_config::{CidMode, PortProfile, BELL202};
    let mut rig = Rig::new();
    let us = PortProfile {
        country: Country::Us,
        cid: CidMode::FskBell202,
        call_waiting: true,
    };
    rig.phones[0].sound = PortSound::with_profile(&us);
    rig.phones[0].cpe = Type2Cpe::new(true).with_fsk(BELL202);
    rig.call(0, 1);
    rig.lift(2);
    rig.dial(2, "21");
    rig.until(Duration::from_secs(3), "Bell 202 caller ID decoded", |r| {
        r.phones[0].cpe.caller_id().is_some()
    });
    let cid = rig.phones[0].cpe.caller_id().expect("decoded");
    assert_eq!(cid.number.as_deref(), Some("23"));
    assert_eq!(rig.ports.line(0).and_then(Line::waiting), Some(true));
    rig.hang_up(2);
    rig.hang_up(0);
    rig.hang_up(1);
    rig.assert_idle();
}

#[test]
fn the_far_party_hears_neither_the_acknowledgement_nor_anything_during_type_2_caller_id() {
    let mut rig = Rig::new();
    rig.call(0, 1);
    // Port 2 talks all along (700 Hz); port 1 is quiet but for its acknowledgement (a
    // display phone mutes its handset microphone while it sends it).
    rig.phones[0].talk = None;
    rig.phones[1].talk = Some(700.0);
    rig.lift(2);
    rig.dial(2, "21");
    let end = rig.now + Duration::from_secs(3);
    let (mut muted_frames, mut ack_heard, mut far_heard_muted) = (0, 0.0f64, 0.0f64);
    while rig.now < end && rig.phones[0].cpe.caller_id().is_none() {
        let at = rig.frame_at;
        rig.step();
        if rig.frame_at == at {
            continue;
        }
        // A frame just went by: what port 2 heard of port 1 (DTMF D: 941 + 1633 Hz).
        ack_heard = ack_heard.max(share(&rig.phones[1].ear, 1633.0));
        if rig.phones[0].sound.call_muted() {
            muted_frames += 1;
            // Port 1 hears no far-party audio under the signalling.
            far_heard_muted = far_heard_muted.max(share(&rig.phones[0].ear, 700.0));
            // Port 2 hears silence from port 1.
            assert!(
                rig.phones[1].ear.iter().all(|&s| s == 0),
                "port 2 hears port 1 while muted"
            );
        }
    }
    assert_eq!(
        rig.phones[0]
            .cpe
            .caller_id()
            .and_then(|c| c.number)
            .as_deref(),
        Some("23")
    );
    assert!(muted_frames > 10, "muted for {muted_frames} frames only");
    assert!(
        ack_heard < 0.01,
        "port 2 heard the DTMF D acknowledgement: {ack_heard}"
    );
    assert!(
        far_heard_muted < 0.01,
        "port 1 heard port 2 under the FSK: {far_heard_muted}"
    );
    // After the FSK both hear each other again.
    rig.run(Duration::from_millis(200));
    assert!(!rig.phones[0].sound.call_muted());
    rig.assert_talk(0, 1, None, 1000.0);
    rig.assert_talk(1, 0, None, 700.0);
    rig.hang_up(2);
    rig.hang_up(0);
    rig.hang_up(1);
    rig.assert_idle();
}

#[test]
fn hanging_up_while_the_enquiry_rings_transfers_and_an_unanswered_transfer_recalls() {
    // Answered: port 2 (held) ends up talking to port 3, which rang for the enquiry.
    let mut rig = Rig::new();
    rig.call(0, 1);
    rig.flash(0);
    rig.dial(0, "23");
    rig.until(Duration::from_secs(2), "the enquiry rings port 3", |r| {
        r.ringing(2)
    });
    rig.hang_up(0);
    rig.until(
        Duration::from_secs(6),
        "port 3 rings for the held party",
        |r| r.ringing(2),
    );
    assert!(!rig.ringing(0), "port 1 is out of it");
    rig.lift(2);
    rig.run(Duration::from_millis(200));
    rig.assert_talk(1, 2, Some(0), 900.0);
    rig.assert_talk(2, 1, Some(0), 1300.0);
    assert!(rig.hears(1, MUSIC_HZ) < 0.1, "transferred: no music");
    rig.hang_up(1);
    rig.hang_up(2);
    rig.assert_idle();

    // Unanswered: after call control's ring timeout the held call rings port 1 again.
    let mut rig = Rig::new();
    rig.call(0, 1);
    rig.flash(0);
    rig.dial(0, "23");
    rig.until(Duration::from_secs(2), "the enquiry rings port 3", |r| {
        r.ringing(2)
    });
    rig.hang_up(0);
    rig.until(Duration::from_secs(70), "recall rings port 1", |r| {
        r.ringing(0)
    });
    assert!(!rig.ringing(2), "port 3 stopped ringing");
    rig.lift(0);
    rig.run(Duration::from_millis(200));
    rig.assert_talk(1, 0, None, 900.0);
    rig.assert_talk(0, 1, None, 1100.0);
    rig.hang_up(0);
    rig.hang_up(1);
    rig.assert_idle();
}
