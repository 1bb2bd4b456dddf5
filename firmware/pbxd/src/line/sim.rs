//! `--hardware sim`: emulated FXS ports with a virtual phone on each, run by the real
//! SLIC driver against the SPI-level chip emulator (`pbx_hal::fxs::emulator`), and
//! scriptable through a control socket, so that the whole box can be tried and tested
//! without hardware.
//!
//! One thread ("ports") owns the emulated chips (they are single-threaded) and, every
//! 20 ms: reads the driver's hook events and the phone's microphone and hands both to
//! the SIP task (where the lines and call control run); sends the microphone as RTP
//! (G.711 A-law) to the call's relay port; plays the line's tones, caller ID or the
//! relayed call audio into the phone's earpiece ([`PortSound`]); and carries out the
//! SIP task's [`PortOutput`]s.
//!
//! The thread is generic over a port's devices ([`PortIo`]): `--hardware board` runs
//! the same code (`spawn_ports`) with the SLIC on spidev/GPIO and the PCM on ALSA
//! ([`super::board`]).
//!
//! The control socket (`DATA/sim.sock`, one command per line, one answer line each):
//! - `offhook N`, `onhook N`, `flash N`: the handset of port N (1-based)
//! - `dtmf N DIGITS`: key DIGITS (60 ms tone, 80 ms pause each) into the microphone
//! - `pulse N DIGITS`: dial DIGITS on a rotary dial
//! - `tone N HZ MS`: a sine of HZ for MS into the microphone (-10 dBm0)
//! - `status N`: `hook=on|off ringing=yes|no cid=NUMBER|- cid2=NUMBER|-` (cid2: the
//!   last call-waiting caller ID the phone decoded)
//! - `hear N HZ`: the level of HZ in the last 200 ms of earpiece audio, in dB relative to
//!   the whole signal's power (`hear=-0.3`; about 0 when HZ is all there is)

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use embedded_hal::delay::DelayNs;
use pbx_hal::fxs::emulator::{VirtualIrqPin, VirtualPhone, VirtualResetPin, VirtualSlic};
use pbx_hal::fxs::{BoardFile, FxsEvent, FxsPort, Linefeed as HalLinefeed, Slic};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UdpSocket, UnixListener};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::cpe::Type2Cpe;
use super::fax::{passthrough_jitter, FaxWatch, Side};
use super::legs::{PortOutput, PortSpec};
use super::port_io::{PortIo, PortIoError};
use super::ports_config::PortProfile;
use super::ports_sync::{PortState, PortsSync};
use super::sound::PortSound;
use super::{Hook, HookEvent, LineOutput, Linefeed, Tone};
use crate::clock;
use crate::media::dsp::callerid::CallerId as CidMessage;
use crate::media::dsp::dtmf::DtmfGenerator;
use crate::media::dsp::fsk::{FskDemodulator, FskParams};
use crate::media::dsp::goertzel_power;
use crate::media::jitter::{FrameKind, JitterBuffer, JitterConfig, RtpAudio};

/// The emulated chip's bring-up, as a vendor board file would give it.
const SIM_BOARD: &str = include_str!("../../../../hal/boards/sim-si3217x.board");

/// Samples per 20 ms frame at 8 kHz.
const FRAME: usize = 160;

/// Earpiece audio kept for `hear` (200 ms) and on-hook audio for caller ID (10 s).
const HEAR_SAMPLES: usize = 1600;
const ONHOOK_SAMPLES: usize = 80_000;

/// What the ports tell the SIP task.
#[derive(Debug, Clone, PartialEq)]
pub enum PortInput {
    /// A hook transition on port `.0`.
    Hook(usize, HookEvent),
    /// 20 ms of microphone audio from the phone on port `.0` (while off-hook).
    Audio(usize, Vec<i16>),
    /// Port `.0`'s call went to fax/modem pass-through: a SIP leg on G.722 is
    /// re-INVITEd to G.711.
    Fax(usize),
}

/// The SIP task's side of the simulated ports.
#[derive(Debug)]
pub struct SimPorts {
    /// The ports, for the call layer.
    pub specs: Vec<PortSpec>,
    /// Hook events and audio from the ports.
    pub inputs: mpsc::UnboundedReceiver<PortInput>,
    /// Instructions to the ports.
    pub outputs: mpsc::UnboundedSender<(usize, PortOutput)>,
    /// Which ports came up, once their chips are initialised (for the health gate).
    pub health: Option<oneshot::Receiver<PortsHealth>>,
}

/// How the ports' bring-up went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortsHealth {
    /// Ports whose chip answered and took the board file.
    pub up: usize,
    /// Ports marked faulty (1-based) and why; the others keep working.
    pub faulty: Vec<(usize, String)>,
}

/// Starts the emulated ports (one per extension) on their own thread. `relay_ip` is
/// where the RTP relay listens; `control` the control socket's path; `sync` the link to
/// the store (per-port settings, live status), if any.
pub fn spawn(
    extensions: &[String],
    relay_ip: IpAddr,
    control: PathBuf,
    sync: Option<PortsSync>,
    wrong_chip_id: &[usize],
) -> std::io::Result<SimPorts> {
    let wrong_chip_id = wrong_chip_id.to_vec();
    let _ = std::fs::remove_file(&control);
    let listener = std::os::unix::net::UnixListener::bind(&control)?;
    listener.set_nonblocking(true)?;
    let n = extensions.len();
    let open = move |now: Instant| open_sim(n, now, &wrong_chip_id);
    let serve = move |ports: &Rc<RefCell<Vec<Option<Port<SimIo>>>>>| {
        if let Ok(l) = UnixListener::from_std(listener) {
            tokio::task::spawn_local(self::control(l, Rc::clone(ports)));
        }
    };
    let ports = spawn_ports(extensions, relay_ip, sync, open, serve)?;
    info!(ports = ports.specs.len(), control = %control.display(), "simulated analog ports started");
    Ok(ports)
}

/// The emulated chips, brought up with the simulated board file; the ports in
/// `wrong_chip_id` (1-based) get a chip that answers a wrong ID.
fn open_sim(n: usize, now: Instant, wrong_chip_id: &[usize]) -> Vec<Result<SimIo, String>> {
    let board = match BoardFile::parse(SIM_BOARD) {
        Ok(b) => b,
        Err(e) => return (0..n).map(|_| Err(format!("board file: {e}"))).collect(),
    };
    (0..n)
        .map(|i| {
            let chip = VirtualSlic::new(now);
            if wrong_chip_id.contains(&(i + 1)) {
                // A chip that is not ours, or no chip (the bus reads zero).
                chip.set_chip_id(0x00);
            }
            let mut slic = Slic::new(chip.clone(), chip.reset_pin(), chip.irq_pin());
            slic.init(&mut NoDelay, &board)
                .map_err(|e| format!("SLIC does not come up: {e}"))?;
            Ok(SimIo {
                phone: chip.phone(),
                chip,
                slic,
                cpe: Type2Cpe::new(true),
                mic: VecDeque::new(),
                heard: VecDeque::new(),
                onhook: Vec::new(),
                display: None,
                last_ring: None,
                pulses: VecDeque::new(),
                next_digit: None,
                fsk: FskParams::V23,
            })
        })
        .collect()
}

/// Starts ports (one per extension) on their own thread ("ports"), for the emulator and
/// for a board alike. `open` runs on that thread (the devices need not be `Send`) and
/// gives each port's devices, brought up, or why the port is faulty; `serve` gets the
/// ports once they are up (the emulator's control socket).
pub(crate) fn spawn_ports<D, F, C>(
    extensions: &[String],
    relay_ip: IpAddr,
    sync: Option<PortsSync>,
    open: F,
    serve: C,
) -> std::io::Result<SimPorts>
where
    D: PortIo + 'static,
    F: FnOnce(Instant) -> Vec<Result<D, String>> + Send + 'static,
    C: FnOnce(&Rc<RefCell<Vec<Option<Port<D>>>>>) + Send + 'static,
{
    let relay_ip = if relay_ip.is_unspecified() {
        IpAddr::from(std::net::Ipv4Addr::LOCALHOST)
    } else {
        relay_ip
    };
    let mut sockets = Vec::new();
    let mut specs = Vec::new();
    let numbers: Vec<String> = extensions.to_vec();
    for ext in extensions {
        let s = std::net::UdpSocket::bind(SocketAddr::new(relay_ip, 0))?;
        s.set_nonblocking(true)?;
        specs.push(PortSpec {
            extension: ext.clone(),
            media: s.local_addr()?,
        });
        sockets.push(s);
    }
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let (health_tx, health_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("ports".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    warn!("analog ports cannot start: {e}");
                    return;
                }
            };
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let mut sync = sync;
                let devices = open(clock::now());
                let profiles = sync
                    .as_mut()
                    .map(|s| s.profiles.borrow_and_update().clone())
                    .unwrap_or_default();
                let (ports, faulty) = start(sockets, devices, numbers, &profiles, sync.as_ref());
                let _ = health_tx.send(PortsHealth {
                    up: ports.iter().flatten().count(),
                    faulty,
                });
                let ports = Rc::new(RefCell::new(ports));
                serve(&ports);
                run(ports, relay_ip, in_tx, out_rx, sync).await;
            });
        })?;
    Ok(SimPorts {
        specs,
        inputs: in_rx,
        outputs: out_tx,
        health: Some(health_rx),
    })
}

/// A delay that does not wait: the emulated chip is ready at once.
struct NoDelay;

impl DelayNs for NoDelay {
    fn delay_ns(&mut self, _ns: u32) {}
}

type Driver = Slic<VirtualSlic, VirtualResetPin, VirtualIrqPin>;

/// An emulated port's devices: the driver on the virtual chip, and the phone on it.
pub(crate) struct SimIo {
    chip: VirtualSlic,
    phone: VirtualPhone,
    slic: Driver,
    /// The phone's display: acknowledges a call-waiting CAS, decodes type-2 caller ID.
    cpe: Type2Cpe,
    /// What the phone's microphone will say, sample by sample.
    mic: VecDeque<i16>,
    /// What the earpiece played recently.
    heard: VecDeque<i16>,
    /// What reached the on-hook phone since it last rang (for its caller-ID display).
    onhook: Vec<i16>,
    /// The number the display shows for the call ringing now: decoded from `onhook`
    /// before a later ring burst of the same call clears that recording.
    display: Option<String>,
    /// The last ring burst the phone saw (a burst long after it starts a new call).
    last_ring: Option<Instant>,
    /// Rotary digits still to dial, and when the next may start.
    pulses: VecDeque<u8>,
    next_digit: Option<Instant>,
    /// The FSK the phone's caller-ID receiver decodes (the port's caller-ID mode).
    fsk: FskParams,
}

/// One port: its devices, and its audio paths to the call.
pub(crate) struct Port<D> {
    /// The extension number (for the live state).
    number: String,
    io: D,
    rtp: UdpSocket,
    /// Where the port's audio goes (the call's relay port), if in a call.
    target: Option<SocketAddr>,
    sound: PortSound,
    /// Call audio from the relay, played out at the port's 20 ms clock.
    jitter: JitterBuffer,
    /// The feed, the tone playing, and the last ring burst (for the live state).
    linefeed: Linefeed,
    tone: Tone,
    last_ring: Option<Instant>,
    /// Listens for fax/modem tones; once heard, the call is in pass-through.
    fax: FaxWatch,
    /// The state last reported to the store.
    reported: Option<PortState>,
    /// When the hook last changed: the line's answer (dial tone) comes a tick later.
    hook_changed: Option<Instant>,
    off_hook: bool,
    rtp_seq: u16,
    rtp_ts: u32,
    ssrc: u32,
}

/// Gives each port that came up its audio socket, jitter buffer and sound; marks the
/// others faulty.
#[allow(clippy::type_complexity)]
fn start<D: PortIo>(
    sockets: Vec<std::net::UdpSocket>,
    devices: Vec<Result<D, String>>,
    numbers: Vec<String>,
    profiles: &[PortProfile],
    sync: Option<&PortsSync>,
) -> (Vec<Option<Port<D>>>, Vec<(usize, String)>) {
    let mut faulty = Vec::new();
    // Index i is port i + 1 also when a port is faulty (None).
    let mut ports: Vec<Option<Port<D>>> = Vec::new();
    let mut devices = devices.into_iter();
    for (i, s) in sockets.into_iter().enumerate() {
        let number = numbers.get(i).cloned().unwrap_or_default();
        let io = match devices.next() {
            Some(Ok(io)) => io,
            Some(Err(why)) => {
                warn!(port = i + 1, "{why}; port marked faulty");
                mark_faulty(&mut faulty, sync, i, number, why);
                ports.push(None);
                continue;
            }
            None => {
                let why = "no devices for this port".to_owned();
                mark_faulty(&mut faulty, sync, i, number, why);
                ports.push(None);
                continue;
            }
        };
        let rtp = match UdpSocket::from_std(s) {
            Ok(r) => r,
            Err(e) => {
                warn!(port = i + 1, "port audio socket: {e}");
                mark_faulty(&mut faulty, sync, i, number, format!("audio socket: {e}"));
                ports.push(None);
                continue;
            }
        };
        let jitter = match JitterBuffer::new(JitterConfig::adaptive()) {
            Ok(j) => j,
            Err(e) => {
                warn!(port = i + 1, "port jitter buffer: {e}");
                mark_faulty(&mut faulty, sync, i, number, format!("jitter buffer: {e}"));
                ports.push(None);
                continue;
            }
        };
        let profile = profiles.get(i).copied().unwrap_or_default();
        let mut io = io;
        io.set_profile(&profile);
        ports.push(Some(Port {
            number,
            io,
            rtp,
            target: None,
            sound: PortSound::with_profile(&profile),
            linefeed: Linefeed::ForwardActive,
            tone: Tone::Silence,
            last_ring: None,
            fax: FaxWatch::new(),
            reported: None,
            hook_changed: None,
            jitter,
            off_hook: false,
            rtp_seq: rand::random(),
            rtp_ts: rand::random(),
            ssrc: rand::random(),
        }));
    }
    (ports, faulty)
}

async fn run<D: PortIo>(
    ports: Rc<RefCell<Vec<Option<Port<D>>>>>,
    relay_ip: IpAddr,
    inputs: mpsc::UnboundedSender<PortInput>,
    mut outputs: mpsc::UnboundedReceiver<(usize, PortOutput)>,
    mut sync: Option<PortsSync>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = [0u8; 1500];
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = clock::now();
                let new_profiles = sync
                    .as_mut()
                    .filter(|s| s.profiles.has_changed().unwrap_or(false))
                    .map(|s| s.profiles.borrow_and_update().clone());
                for (i, p) in ports.borrow_mut().iter_mut().enumerate() {
                    let Some(p) = p else { continue };
                    if let Some(profile) = new_profiles.as_ref().and_then(|v| v.get(i)) {
                        p.sound.set_profile(profile);
                        p.io.set_profile(profile);
                    }
                    p.tick(now, i, relay_ip, &inputs, &mut buf);
                    if let Some(s) = &sync {
                        p.report(now, i, s);
                    }
                }
            }
            cmd = outputs.recv() => match cmd {
                Some((i, out)) => {
                    if let Some(Some(p)) = ports.borrow_mut().get_mut(i) {
                        p.apply(out, relay_ip);
                    }
                }
                None => break,
            },
        }
    }
}

/// Records a port that did not come up: for the health gate and `pbxctl ports`.
fn mark_faulty(
    faulty: &mut Vec<(usize, String)>,
    sync: Option<&PortsSync>,
    i: usize,
    number: String,
    why: String,
) {
    if let Some(s) = sync {
        s.report(PortState {
            port: i + 1,
            number,
            off_hook: false,
            linefeed: Linefeed::Open,
            call: "faulty",
            faulty: Some(why.clone()),
        });
    }
    faulty.push((i + 1, why));
}

/// Longest pause between ring bursts of any country (AT: 5 s), with margin: a port
/// that rang this recently is still ringing.
const RING_PAUSE_MAX: Duration = Duration::from_secs(6);

/// How long a port just taken off hook may wait for the line's first tone before its
/// silence is reported as dialling.
const HOOK_SETTLE: Duration = Duration::from_millis(500);

impl<D: PortIo> Port<D> {
    /// Reports the port's live state to the store when it changed.
    fn report(&mut self, now: Instant, i: usize, sync: &PortsSync) {
        // Lifted a moment ago and the line has not answered yet: not "dialling" but a
        // state about to settle (the dial tone arrives within a tick or two).
        if self.off_hook
            && self.tone == Tone::Silence
            && self.target.is_none()
            && self
                .hook_changed
                .is_some_and(|t| now.saturating_duration_since(t) < HOOK_SETTLE)
        {
            return;
        }
        let ringing = !self.off_hook
            && self
                .last_ring
                .is_some_and(|t| now.saturating_duration_since(t) < RING_PAUSE_MAX);
        let call = if self.target.is_some() && self.fax.passthrough().is_some() {
            "fax"
        } else if self.target.is_some() {
            "connected"
        } else if ringing {
            "ringing"
        } else if !self.off_hook {
            "idle"
        } else {
            match self.tone {
                Tone::Silence => "dialling",
                Tone::Dial => "dial tone",
                Tone::Ringback => "calling",
                Tone::Busy => "busy",
                Tone::Howler => "howler",
                Tone::CallWaiting => "call waiting",
                // Congestion, special information, and tones added later.
                _ => "failed",
            }
        };
        let state = PortState {
            port: i + 1,
            number: self.number.clone(),
            off_hook: self.off_hook,
            linefeed: self.linefeed,
            call,
            faulty: None,
        };
        if self.reported.as_ref() != Some(&state) {
            sync.report(state.clone());
            self.reported = Some(state);
        }
    }

    fn tick(
        &mut self,
        now: Instant,
        i: usize,
        _relay_ip: IpAddr,
        inputs: &mpsc::UnboundedSender<PortInput>,
        buf: &mut [u8],
    ) {
        self.io.advance(now);
        loop {
            match self.io.poll_event(now) {
                Ok(Some(FxsEvent::HookChanged { off_hook, at })) => {
                    self.off_hook = off_hook;
                    self.hook_changed = Some(now);
                    let hook = if off_hook {
                        Hook::OffHook
                    } else {
                        Hook::OnHook
                    };
                    let _ = inputs.send(PortInput::Hook(i, HookEvent { hook, at }));
                }
                Ok(Some(FxsEvent::RingTripped { at })) => {
                    self.off_hook = true;
                    self.hook_changed = Some(now);
                    let ev = HookEvent {
                        hook: Hook::OffHook,
                        at,
                    };
                    let _ = inputs.send(PortInput::Hook(i, ev));
                }
                Ok(None) => break,
                Err(e) => {
                    debug!(port = i + 1, "{e}");
                    break;
                }
            }
        }
        // The microphone, while off-hook: to the line (digits) and to the call.
        let mut mic = [0i16; FRAME];
        if let Err(e) = self.io.capture(&mut mic) {
            debug!(port = i + 1, "{e}");
        }
        if self.off_hook {
            // In fax pass-through no DTMF detector acts on the call's audio.
            if self.fax.passthrough().is_none() {
                let _ = inputs.send(PortInput::Audio(i, mic.to_vec()));
            }
            if let Some(target) = self.target {
                // Muted while type-2 caller ID signals: the far party gets silence.
                let pkt = if self.sound.call_muted() {
                    self.packet(&[0; FRAME])
                } else {
                    self.packet(&mic)
                };
                if let Err(e) = self.rtp.try_send_to(&pkt, target) {
                    debug!(port = i + 1, "port RTP: {e}");
                }
            }
        }
        // The call's audio from the relay, through the jitter buffer (which conceals loss).
        while let Ok((n, _)) = self.rtp.try_recv_from(buf) {
            if let Some((seq, timestamp, samples)) = decode(&buf[..n]) {
                if self.target.is_some() {
                    let pkt = RtpAudio {
                        seq,
                        timestamp,
                        samples: &samples,
                    };
                    self.jitter.handle_packet(now, pkt);
                }
            }
        }
        let mut call = [0i16; FRAME];
        let kind = self.jitter.poll_frame(now, &mut call);
        let call = (self.target.is_some() && kind != FrameKind::Silence).then_some(&call[..]);
        if self.target.is_some() && self.off_hook {
            if let Some(sw) = self.fax.handle(now, &mic, call) {
                self.passthrough(i, sw);
                let _ = inputs.send(PortInput::Fax(i));
            }
        }
        let mut ear = [0i16; FRAME];
        self.sound.frame(call, &mut ear);
        if let Err(e) = self.io.play(&ear, self.off_hook) {
            debug!(port = i + 1, "{e}");
        }
    }

    fn apply(&mut self, out: PortOutput, relay_ip: IpAddr) {
        match out {
            PortOutput::Media(port) => {
                self.target = port.map(|p| SocketAddr::new(relay_ip, p));
                self.jitter.reset();
                self.sound.unmute();
                // A new call (or none) starts as voice.
                if self.fax.passthrough().is_some() {
                    self.fax.reset();
                    self.sound.set_passthrough(false);
                    if let Err(e) = self.jitter.set_config(JitterConfig::adaptive()) {
                        warn!("jitter buffer back to voice: {e}");
                    }
                }
            }
            PortOutput::Line(LineOutput::Linefeed(lf)) => {
                self.linefeed = lf;
                if lf == Linefeed::Ringing {
                    self.last_ring = Some(clock::now());
                }
                if let Err(e) = self.io.set_linefeed(hal_linefeed(lf), self.off_hook) {
                    debug!("linefeed: {e}");
                }
            }
            PortOutput::Line(other) => {
                if let LineOutput::Play(t) = &other {
                    self.tone = *t;
                }
                self.sound.apply(&other);
            }
        }
    }

    /// Switches the call to fax/modem pass-through (see [`super::fax`]).
    fn passthrough(&mut self, i: usize, sw: super::fax::FaxSwitch) {
        let side = match sw.side {
            Side::Port => "port",
            Side::Far => "far party",
        };
        if let Err(e) = self.jitter.set_config(passthrough_jitter()) {
            warn!(port = i + 1, "jitter buffer for pass-through: {e}");
        }
        self.sound.set_passthrough(true);
        info!(
            port = i + 1,
            tone = sw.tone.name(),
            from = side,
            "fax/modem tone: call in pass-through (port leg G.711 A-law, fixed jitter buffer, \
             no tones or DTMF detection; a SIP leg on G.722 is re-INVITEd to G.711)"
        );
    }

    fn packet(&mut self, frame: &[i16]) -> Vec<u8> {
        let mut p = Vec::with_capacity(12 + frame.len());
        p.extend_from_slice(&[0x80, 8]);
        p.extend_from_slice(&self.rtp_seq.to_be_bytes());
        p.extend_from_slice(&self.rtp_ts.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        p.extend(
            frame
                .iter()
                .map(|&s| crate::media::relay::g711::linear_to_alaw(s)),
        );
        self.rtp_seq = self.rtp_seq.wrapping_add(1);
        self.rtp_ts = self.rtp_ts.wrapping_add(frame.len() as u32);
        p
    }
}

impl PortIo for SimIo {
    fn set_profile(&mut self, profile: &PortProfile) {
        // A phone bought for the port's country: its display decodes that FSK (a
        // DTMF or caller-ID-off port still sends type 2 as V.23, see `PortSound`).
        self.fsk = profile.cid.fsk().unwrap_or(FskParams::V23);
        self.cpe.set_fsk(self.fsk);
    }

    fn advance(&mut self, now: Instant) {
        // Rotary digits, one after the other (the phone's schedule starts at `now`).
        if self.next_digit.is_none_or(|t| t <= now) {
            self.next_digit = self.pulses.pop_front().map(|d| {
                // The line ends a digit after 300 ms of closed loop: pause twice that.
                self.phone.dial_pulses(now, d) + Duration::from_millis(600)
            });
        }
        self.chip.advance(now);
    }

    fn poll_event(&mut self, now: Instant) -> Result<Option<FxsEvent>, PortIoError> {
        self.slic
            .poll_event(now)
            .map_err(|e| PortIoError::Slic(format!("emulated SLIC: {e:?}")))
    }

    fn set_linefeed(&mut self, lf: HalLinefeed, off_hook: bool) -> Result<(), PortIoError> {
        if lf == HalLinefeed::Ringing && !off_hook {
            // A ring burst long after the last one is a new call: the display forgets
            // the last caller. Within a call it keeps the number it showed, although
            // the recording restarts to stay bounded.
            let now = clock::now();
            let same_call = self
                .last_ring
                .is_some_and(|t| now.saturating_duration_since(t) < RING_PAUSE_MAX);
            if !same_call {
                self.display = None;
            }
            if self.onhook.len() > ONHOOK_SAMPLES / 2 {
                if let Some(n) = cid_number(&self.onhook, self.fsk) {
                    self.display = Some(n);
                }
                self.onhook.clear();
            }
        }
        if lf == HalLinefeed::Ringing {
            self.last_ring = Some(clock::now());
        }
        self.slic
            .set_linefeed(lf)
            .map_err(|e| PortIoError::Slic(format!("emulated SLIC linefeed: {e:?}")))
    }

    fn capture(&mut self, mic: &mut [i16]) -> Result<(), PortIoError> {
        for s in mic.iter_mut() {
            *s = self.mic.pop_front().unwrap_or(0);
        }
        Ok(())
    }

    fn play(&mut self, ear: &[i16], off_hook: bool) -> Result<(), PortIoError> {
        if off_hook {
            if let Some(ack) = self.cpe.hear(ear) {
                self.mic.extend(ack);
            }
        }
        self.heard.extend(ear);
        while self.heard.len() > HEAR_SAMPLES {
            self.heard.pop_front();
        }
        if !off_hook && self.onhook.len() < ONHOOK_SAMPLES {
            self.onhook.extend(ear);
        }
        Ok(())
    }
}

impl SimIo {
    fn status(&self) -> String {
        let cid = cid_number(&self.onhook, self.fsk)
            .or_else(|| self.display.clone())
            .unwrap_or_else(|| "-".into());
        let cid2 = self
            .cpe
            .caller_id()
            .and_then(|c| c.number)
            .unwrap_or_else(|| "-".into());
        let now = clock::now();
        format!(
            "hook={} ringing={} cid={cid} cid2={cid2}",
            if self.phone.is_off_hook() {
                "off"
            } else {
                "on"
            },
            if self.phone.is_ringing(now) {
                "yes"
            } else {
                "no"
            },
        )
    }

    fn hear(&self, hz: f32) -> String {
        let x: Vec<i16> = self.heard.iter().copied().collect();
        let total: f64 = x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>();
        if total <= 0.0 {
            return "hear=-inf".into();
        }
        // A sine alone has Goertzel power (a n / 2)^2 and total power n a^2 / 2: their
        // ratio, scaled by 2 / n, is 1 (0 dB) when the tone is all there is.
        let n = x.len() as f64;
        let rel = 2.0 * f64::from(goertzel_power(&x, hz)) / (n * total);
        format!("hear={:.1}", 10.0 * rel.max(1e-12).log10())
    }
}

/// The number in the type-1 caller ID (FSK `fsk`) recorded on hook, if one decodes.
fn cid_number(onhook: &[i16], fsk: FskParams) -> Option<String> {
    let bytes = FskDemodulator::new(fsk, 40).demodulate(onhook).ok()?;
    CidMessage::parse_mdmf(&bytes).ok().and_then(|c| c.number)
}

/// Sequence number, timestamp and linear samples of a G.711 A-law packet.
fn decode(pkt: &[u8]) -> Option<(u16, u32, Vec<i16>)> {
    let r = rtp_rs::RtpReader::new(pkt).ok()?;
    if r.payload_type() != 8 {
        return None;
    }
    Some((
        u16::from(r.sequence_number()),
        r.timestamp(),
        r.payload()
            .iter()
            .map(|&b| crate::media::relay::g711::alaw_to_linear(b))
            .collect(),
    ))
}

fn hal_linefeed(lf: Linefeed) -> HalLinefeed {
    match lf {
        Linefeed::Open => HalLinefeed::Open,
        Linefeed::ForwardActive => HalLinefeed::ForwardActive,
        Linefeed::ReverseActive => HalLinefeed::ReverseActive,
        Linefeed::OnHookTransmission => HalLinefeed::OnHookTransmission,
        Linefeed::Ringing => HalLinefeed::Ringing,
    }
}

/// Serves the control socket.
async fn control(listener: UnixListener, ports: Rc<RefCell<Vec<Option<Port<SimIo>>>>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let ports = Rc::clone(&ports);
        tokio::task::spawn_local(async move {
            let (r, mut w) = stream.into_split();
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let answer = command(&line, &ports);
                if w.write_all(format!("{answer}\n").as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// One control command; the answer line.
fn command(line: &str, ports: &Rc<RefCell<Vec<Option<Port<SimIo>>>>>) -> String {
    let mut words = line.split_whitespace();
    let (Some(verb), Some(n)) = (words.next(), words.next()) else {
        return "error: expected VERB PORT [ARGS]".into();
    };
    let mut ports = ports.borrow_mut();
    let Some(p) = n
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| ports.get_mut(i))
        .and_then(Option::as_mut)
        .map(|p| &mut p.io)
    else {
        return format!("error: no port {n}");
    };
    let now = clock::now();
    match (verb, words.next(), words.next()) {
        ("offhook", None, None) => {
            p.phone.off_hook(now);
            "ok".into()
        }
        ("onhook", None, None) => {
            p.phone.on_hook(now);
            "ok".into()
        }
        ("flash", None, None) => {
            p.phone.flash(now, Duration::from_millis(150));
            "ok".into()
        }
        ("dtmf", Some(digits), None) => {
            for d in digits.chars() {
                match DtmfGenerator::new(d, -10.0, Duration::from_millis(60)) {
                    Ok(g) => p.mic.extend(g.samples()),
                    Err(_) => return format!("error: not a DTMF digit: {d}"),
                }
                p.mic.extend(std::iter::repeat_n(0, 640));
            }
            "ok".into()
        }
        ("pulse", Some(digits), None) => {
            let mut queued = Vec::new();
            for d in digits.chars() {
                match d.to_digit(10) {
                    Some(v) => queued.push(v as u8),
                    None => return format!("error: a rotary dial has no {d}"),
                }
            }
            p.pulses.extend(queued);
            "ok".into()
        }
        ("tone", Some(hz), Some(ms)) => {
            let (Ok(hz), Ok(ms)) = (hz.parse::<f64>(), ms.parse::<u64>()) else {
                return "error: tone N HZ MS".into();
            };
            let n = (ms * 8) as usize;
            let amp = f64::from(crate::media::dsp::dbm0_to_peak(-10.0));
            p.mic.extend((0..n).map(|k| {
                let t = k as f64 / 8000.0;
                (amp * (std::f64::consts::TAU * hz * t).sin()) as i16
            }));
            "ok".into()
        }
        ("status", None, None) => p.status(),
        ("hear", Some(hz), None) => match hz.parse::<f32>() {
            Ok(hz) => p.hear(hz),
            Err(_) => "error: hear N HZ".into(),
        },
        _ => format!("error: unknown command: {line}"),
    }
}
