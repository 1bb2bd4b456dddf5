//! Local playback in the relay core, on a simulated clock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtp_rs::RtpReader;

use super::{RelaySession, MAX_LATE};
use crate::media::dsp::goertzel_power;
use crate::media::dsp::tone::{Cadence, ToneSound, ToneSpec, BUSY_DE};
use crate::media::relay::g711::{alaw_to_linear, ulaw_to_linear};
use crate::media::relay::transcode::Transcoder;
use crate::media::relay::{
    Codec, Direction, Leg, LegConfig, Playback, PlaybackError, RelayConfig, RelayEvent, Socket,
    Transmit,
};

fn addr(host: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, host], port))
}

#[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
fn epoch() -> Instant {
    Instant::now()
}

fn cfg(remote: Option<SocketAddr>, codec: Codec, pt: u8) -> LegConfig {
    LegConfig {
        remote,
        codec,
        pt,
        telephone_event: Some(101),
        direction: Direction::SendRecv,
    }
}

const A: u16 = 4000;
const B: u16 = 6000;

/// A pure tone that is always on, for frequency checks.
fn tone(hz: f32) -> Playback {
    Playback::Tone(ToneSpec {
        sound: ToneSound::Single(hz, -10.0),
        cadence: Cadence::Continuous,
    })
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80, pt];
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ts.to_be_bytes());
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[derive(Debug, Clone, PartialEq)]
struct Pkt {
    at: Instant,
    leg: Leg,
    to: SocketAddr,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    marker: bool,
    payload: Vec<u8>,
}

struct H {
    s: RelaySession,
    t0: Instant,
    /// RTP sent (RTCP is left out), with the time it was produced.
    out: Vec<Pkt>,
    /// Events other than `Latched`.
    events: Vec<(Instant, RelayEvent)>,
}

impl H {
    fn new(a: LegConfig, b: LegConfig) -> Self {
        let t0 = epoch();
        let mut s = RelaySession::new(RelayConfig::default(), t0, Duration::from_secs(1), 7);
        s.configure(t0, Leg::A, a);
        s.configure(t0, Leg::B, b);
        s.set_active(t0, true);
        Self {
            s,
            t0,
            out: Vec::new(),
            events: Vec::new(),
        }
    }

    fn pcma() -> Self {
        Self::new(
            cfg(Some(addr(1, A)), Codec::Pcma, 8),
            cfg(Some(addr(2, B)), Codec::Pcma, 8),
        )
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn collect(&mut self, now: Instant) {
        while let Some(t) = self.s.poll_transmit() {
            if t.socket == Socket::Rtp && !is_rtcp(&t) {
                self.out.push(parse(now, &t));
            }
        }
        // Latching has its own tests; only the rest is of interest here.
        while let Some(e) = self.s.poll_event() {
            if !matches!(e, RelayEvent::Latched { .. }) {
                self.events.push((now, e));
            }
        }
    }

    fn play(&mut self, ms: u64, leg: Leg, p: Playback) {
        let now = self.at(ms);
        self.s.play(now, leg, p).expect("valid playback");
        self.collect(now);
    }

    fn send(&mut self, ms: u64, leg: Leg, from: SocketAddr, data: &[u8]) {
        let now = self.at(ms);
        self.s.handle_packet(now, leg, Socket::Rtp, from, data);
        self.collect(now);
    }

    /// Runs the timers up to `ms`, waking `late(k)` after each deadline (the k-th wake-up).
    fn run_to(&mut self, ms: u64, late: impl Fn(u64) -> Duration) {
        let until = self.at(ms);
        let mut k = 0;
        while let Some(d) = self.s.poll_timeout() {
            let now = d + late(k);
            if now > until {
                break;
            }
            self.s.handle_timeout(now);
            self.collect(now);
            k += 1;
        }
    }

    fn to(&self, leg: Leg) -> Vec<Pkt> {
        self.out.iter().filter(|p| p.leg == leg).cloned().collect()
    }
}

fn is_rtcp(t: &Transmit) -> bool {
    t.data.len() >= 2 && (192..=223).contains(&t.data[1])
}

fn parse(at: Instant, t: &Transmit) -> Pkt {
    let r = RtpReader::new(&t.data).expect("we send valid RTP");
    Pkt {
        at,
        leg: t.leg,
        to: t.to,
        pt: r.payload_type(),
        seq: u16::from(r.sequence_number()),
        ts: r.timestamp(),
        ssrc: r.ssrc(),
        marker: r.mark(),
        payload: r.payload().to_vec(),
    }
}

fn decode(codec: Codec, pkts: &[Pkt]) -> Vec<i16> {
    let mut g722 = Transcoder::new(Codec::G722, Codec::Pcma).expect("codecs differ");
    let mut out = Vec::new();
    for p in pkts {
        match codec {
            Codec::Pcma => out.extend(p.payload.iter().map(|&b| alaw_to_linear(b))),
            Codec::Pcmu => out.extend(p.payload.iter().map(|&b| ulaw_to_linear(b))),
            Codec::G722 => {
                let mut a = Vec::new();
                assert!(g722.convert(&p.payload, &mut a));
                out.extend(a.iter().map(|&b| alaw_to_linear(b)));
            }
        }
    }
    out
}

/// Seq +1 and timestamp +160 from each packet to the next.
fn assert_contiguous(pkts: &[Pkt]) {
    for w in pkts.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "{:?} -> {:?}",
            w[0],
            w[1]
        );
        assert_eq!(w[1].ts, w[0].ts.wrapping_add(160), "seq {}", w[1].seq);
        assert_eq!(w[1].ssrc, w[0].ssrc);
    }
}

/// 10 s of playback with the shell waking up 0..7 ms late: exactly 500 packets, packet k
/// produced in [k * 20 ms, k * 20 ms + 7 ms] (no drift), contiguous numbering, only the
/// first one marked; the other leg gets nothing from it.
#[test]
fn one_packet_every_20_ms_without_drift() {
    let mut h = H::pcma();
    h.play(0, Leg::A, Playback::music_on_hold());
    h.run_to(9_999, |k| Duration::from_millis((k * 7919) % 8));
    let pkts = h.to(Leg::A);
    assert_eq!(pkts.len(), 500);
    for (k, p) in pkts.iter().enumerate() {
        let due = h.at(20 * k as u64);
        assert!(
            p.at >= due && p.at <= due + Duration::from_millis(7),
            "packet {k} at {:?}",
            p.at - h.t0
        );
        assert_eq!((p.to, p.pt, p.payload.len()), (addr(1, A), 8, 160));
        assert_eq!(p.marker, k == 0, "marker only on packet {k} == 0");
    }
    assert_contiguous(&pkts);
    assert!(h.to(Leg::B).is_empty());
    assert!(h.events.is_empty());
    let st = h.s.stats(Leg::A);
    assert_eq!(st.packets_out, 500);
}

/// forward -> play -> forward: the phone on A sees one stream (one SSRC, seq +1 per packet,
/// timestamps following the clock), with the marker bit at each switch; B's audio is not
/// forwarded while A plays.
#[test]
fn stream_continuity_across_forward_play_forward() {
    let mut h = H::pcma();
    let from_b = addr(2, B);
    let speech = [0x55u8; 160];
    // B talks for 200 ms (10 packets), then keeps talking through the playback.
    let mut b_seq = 1000u16;
    let mut feed = |h: &mut H, from_ms: u64, to_ms: u64| {
        for ms in (from_ms..to_ms).step_by(20) {
            h.run_to(ms, |_| Duration::ZERO);
            h.send(
                ms,
                Leg::B,
                from_b,
                &rtp(8, b_seq, u32::from(b_seq) * 160, 0xB0B, &speech),
            );
            b_seq = b_seq.wrapping_add(1);
        }
    };
    feed(&mut h, 0, 200);
    h.play(205, Leg::A, tone(1000.0));
    feed(&mut h, 200, 1000);
    h.run_to(1000, |_| Duration::ZERO);
    h.s.stop(h.at(1003), Leg::A);
    feed(&mut h, 1020, 1400);
    h.run_to(1400, |_| Duration::ZERO);

    let pkts = h.to(Leg::A);
    let fwd1: Vec<_> = pkts.iter().take_while(|p| p.payload == speech).collect();
    assert_eq!(fwd1.len(), 10);
    // Playback: 205, 225, .. 985 ms = 40 packets, then forwarding again: 1020..1380 = 19.
    let play = &pkts[10..50];
    assert!(play.iter().all(|p| p.payload != speech), "B not forwarded");
    let fwd2 = &pkts[50..];
    assert_eq!(fwd2.len(), 19);
    assert!(fwd2.iter().all(|p| p.payload == speech));

    // One SSRC, seq +1 throughout.
    for w in pkts.windows(2) {
        assert_eq!(w[1].ssrc, w[0].ssrc);
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
    }
    // Marker exactly at the two switches (the first forwarded packet is marked too).
    let marked: Vec<usize> = (0..pkts.len()).filter(|&i| pkts[i].marker).collect();
    assert_eq!(marked, vec![0, 10, 50]);
    // Timestamps: +160 per 20 ms within each part; across each switch the clock time
    // (205 ms vs 180 ms: 25 ms = 200 units; 1020 vs 985: 35 ms = 280 units).
    assert_contiguous(&pkts[..10]);
    assert_contiguous(play);
    assert_contiguous(fwd2);
    assert_eq!(play[0].ts.wrapping_sub(pkts[9].ts), 200);
    assert_eq!(fwd2[0].ts.wrapping_sub(play[39].ts), 280);
    // B still reached nobody else, and no PlaybackDone for a stopped playback.
    assert!(h.events.is_empty(), "{:?}", h.events);
}

/// The packets are in the leg's own codec and PT, and the tone is in them.
#[test]
fn tone_is_encoded_in_the_legs_codec() {
    for (codec, pt) in [(Codec::Pcma, 8), (Codec::Pcmu, 0), (Codec::G722, 9)] {
        // The other leg's codec differs, so nothing is borrowed from it.
        let other = if codec == Codec::Pcma {
            Codec::Pcmu
        } else {
            Codec::Pcma
        };
        let mut h = H::new(
            cfg(Some(addr(1, A)), codec, pt),
            cfg(Some(addr(2, B)), other, 0),
        );
        h.play(0, Leg::B, tone(1000.0));
        h.play(0, Leg::A, tone(700.0));
        h.run_to(1000, |_| Duration::ZERO);
        let pkts = h.to(Leg::A);
        assert_eq!(pkts.len(), 51);
        assert!(pkts.iter().all(|p| p.pt == pt && p.payload.len() == 160));
        let pcm = decode(codec, &pkts);
        // Skip 100 ms of codec adaptation and filter delay.
        let x = &pcm[800..];
        let on = goertzel_power(x, 700.0);
        let expect = (crate::media::dsp::dbm0_to_peak(-10.0) * x.len() as f32 / 2.0).powi(2);
        assert!(
            (10.0 * (on / expect).log10()).abs() < 2.0,
            "{codec:?}: level {on} vs {expect}"
        );
        for f in [1000.0, 425.0, 1400.0] {
            assert!(goertzel_power(x, f) < on * 1e-3, "{codec:?}: {f} Hz");
        }
        // B got its own tone in its own codec.
        let b = decode(other, &h.to(Leg::B));
        assert!(goertzel_power(&b[800..], 1000.0) > 1e3 * goertzel_power(&b[800..], 700.0));
    }
}

/// A one-shot playback ends by itself: exactly its length in packets, `PlaybackDone`
/// once, then the other leg is heard again (marked, continuous numbering).
#[test]
fn playback_done_once_then_forwarding_resumes() {
    let mut h = H::pcma();
    h.play(0, Leg::A, Playback::confirmation());
    h.run_to(3000, |_| Duration::ZERO);
    let play = h.to(Leg::A);
    assert_eq!(play.len(), 46, "920 ms");
    assert_eq!(h.events.len(), 1);
    assert_eq!(h.events[0].1, RelayEvent::PlaybackDone { leg: Leg::A });
    assert_eq!(h.events[0].0, h.at(900), "done with the last packet");
    assert!(!h.s.is_playing(Leg::A));
    // The tone's beeps are in it: 880 Hz during the first beep, silence in the pause.
    let pcm = decode(Codec::Pcma, &play);
    let beep = goertzel_power(&pcm[..960], 880.0);
    assert!(beep > 1e3 * goertzel_power(&pcm[..960], 440.0));
    assert!(pcm[960..1600].iter().all(|&s| s.abs() <= 8), "80 ms pause");

    h.send(
        3000,
        Leg::B,
        addr(2, B),
        &rtp(8, 5, 800, 0xB0B, &[0x55; 160]),
    );
    let all = h.to(Leg::A);
    let next = &all[46];
    assert_eq!(next.payload, vec![0x55; 160]);
    assert!(next.marker);
    assert_eq!(next.seq, play[45].seq.wrapping_add(1));
    assert_eq!(next.ts, play[45].ts.wrapping_add(2100 * 8));
    h.run_to(6000, |_| Duration::ZERO);
    assert_eq!(h.events.len(), 1, "reported once");
}

/// No address for the leg (no SDP remote, nothing latched) or no configuration: nothing
/// is sent and nothing panics; once the phone's first packet latches, playback reaches it.
#[test]
fn no_output_without_a_remote() {
    let mut h = H::new(
        cfg(None, Codec::Pcmu, 0),
        cfg(Some(addr(2, B)), Codec::Pcma, 8),
    );
    h.play(0, Leg::A, tone(425.0));
    h.run_to(1000, |_| Duration::ZERO);
    assert!(h.out.is_empty(), "{:?}", h.out.first());
    // The phone speaks from its NAT address: latched, and playback follows.
    let phone = addr(9, 7078);
    h.send(1005, Leg::A, phone, &rtp(0, 1, 160, 0xA, &[0xff; 160]));
    h.run_to(1100, |_| Duration::ZERO);
    let pkts = h.to(Leg::A);
    assert_eq!(pkts.len(), 5, "1020..1100 ms");
    assert!(pkts.iter().all(|p| p.to == phone && p.pt == 0));
    assert!(pkts[0].marker && !pkts[1].marker);
    assert_contiguous(&pkts);
    // The phone's packet went to B as usual; B is not playing.
    assert_eq!(h.to(Leg::B).len(), 1);

    // A leg never configured: nothing, no panic.
    let t0 = epoch();
    let mut s = RelaySession::new(RelayConfig::default(), t0, Duration::ZERO, 1);
    s.play(t0, Leg::B, Playback::music_on_hold())
        .expect("valid");
    for k in 0..100u64 {
        let now = t0 + Duration::from_millis(20 * k);
        s.handle_timeout(now);
        assert!(s.poll_transmit().is_none());
    }
    assert!(s.is_playing(Leg::B));
}

/// A peer that holds the call (sendonly) gets no playback, but a one-shot playback still
/// ends on time.
#[test]
fn hold_direction_is_respected() {
    let mut a = cfg(Some(addr(1, A)), Codec::Pcma, 8);
    a.direction = Direction::SendOnly;
    let mut h = H::new(a, cfg(Some(addr(2, B)), Codec::Pcma, 8));
    h.play(0, Leg::A, Playback::Tone(BUSY_DE).once());
    h.run_to(2000, |_| Duration::ZERO);
    assert!(h.to(Leg::A).is_empty());
    assert_eq!(
        h.events,
        vec![(h.at(940), RelayEvent::PlaybackDone { leg: Leg::A })]
    );
}

/// A stalled shell (1 s without a wake-up) does not get a burst of 50 packets: at most
/// MAX_LATE worth, and the timestamps still follow the clock.
#[test]
fn a_stall_skips_instead_of_bursting() {
    let mut h = H::pcma();
    h.play(0, Leg::A, tone(425.0));
    h.run_to(100, |_| Duration::ZERO);
    assert_eq!(h.to(Leg::A).len(), 6);
    let now = h.at(1100);
    h.s.handle_timeout(now);
    h.collect(now);
    let pkts = h.to(Leg::A);
    let burst = &pkts[6..];
    let max = (MAX_LATE.as_millis() / 20 + 1) as usize;
    assert!(!burst.is_empty() && burst.len() <= max, "{}", burst.len());
    // The last one is the packet due at 1100 ms: timestamp 1100 ms after the first.
    let last = burst.last().expect("not empty");
    assert_eq!(last.ts.wrapping_sub(pkts[0].ts), 1100 * 8);
    assert_eq!(last.seq, pkts[5].seq.wrapping_add(burst.len() as u16));
    // And the schedule goes on from the start instant.
    assert_eq!(h.s.poll_timeout(), Some(h.at(1120)));
}

/// Playing again replaces the source (no `PlaybackDone` for the old one); a WAV-style PCM
/// clip loops; invalid sources are refused without touching the leg.
#[test]
fn replace_loop_and_refuse() {
    let mut h = H::pcma();
    h.play(0, Leg::A, Playback::confirmation());
    let clip: Arc<[i16]> = (0..240)
        .map(|i| if i < 120 { 1000 } else { -1000 })
        .collect();
    h.play(10, Leg::A, Playback::Pcm(clip));
    h.run_to(2000, |_| Duration::ZERO);
    assert!(h.events.is_empty());
    let pkts = h.to(Leg::A);
    assert_eq!(pkts.len(), 1 + 100);
    assert!(pkts[1].marker, "a new playback is a new talk spurt");
    let pcm = decode(Codec::Pcma, &pkts[1..]);
    // The 240-sample clip repeats: sample n equals sample n + 240.
    assert!(pcm[..pcm.len() - 240]
        .iter()
        .zip(&pcm[240..])
        .all(|(a, b)| a == b));

    let continuous = tone(425.0).once();
    assert_eq!(
        h.s.play(h.at(2000), Leg::A, continuous),
        Err(PlaybackError::Endless)
    );
    assert!(h.s.is_playing(Leg::A), "the old playback goes on");
}

/// A re-INVITE during playback: a new address gets the rest of the playback (marked, same
/// stream), a new codec is used from the next packet on.
#[test]
fn reconfigure_during_playback() {
    let mut h = H::pcma();
    h.play(0, Leg::A, Playback::music_on_hold());
    h.run_to(100, |_| Duration::ZERO);
    h.s.configure(h.at(110), Leg::A, cfg(Some(addr(3, 5000)), Codec::Pcmu, 0));
    h.run_to(200, |_| Duration::ZERO);
    let pkts = h.to(Leg::A);
    assert_eq!(pkts.len(), 11);
    assert_contiguous(&pkts);
    let moved: Vec<_> = pkts[6..].iter().map(|p| (p.to, p.pt, p.marker)).collect();
    assert_eq!(moved[0], (addr(3, 5000), 0, true));
    assert!(moved[1..].iter().all(|&m| m == (addr(3, 5000), 0, false)));
}
