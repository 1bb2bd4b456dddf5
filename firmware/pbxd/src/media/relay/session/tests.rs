//! Scenario tests of the relay core on a simulated clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rtcp_types::{
    Compound, Packet, ReceiverReport, ReportBlock, RtcpPacketWriterExt as _, SenderReport,
};
use rtp_rs::RtpReader;

use super::RelaySession;
use crate::media::relay::g711::{alaw_to_linear, linear_to_ulaw};
use crate::media::relay::{
    Codec, Direction, Leg, LegConfig, RelayConfig, RelayEvent, Socket, Transmit,
};

const A_SDP: u16 = 4000;
const B_SDP: u16 = 6000;

fn addr(host: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, host], port))
}

#[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
fn epoch() -> Instant {
    Instant::now()
}

fn cfg(port: u16, codec: Codec, pt: u8, te: Option<u8>) -> LegConfig {
    LegConfig {
        remote: Some(addr(1, port)),
        codec,
        pt,
        telephone_event: te,
        direction: Direction::SendRecv,
    }
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80, (u8::from(marker) << 7) | pt];
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ts.to_be_bytes());
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[derive(Debug, PartialEq)]
struct Rtp {
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    marker: bool,
    payload: Vec<u8>,
}

fn parse(t: &Transmit) -> Rtp {
    let r = RtpReader::new(&t.data).expect("we send valid RTP");
    Rtp {
        pt: r.payload_type(),
        seq: u16::from(r.sequence_number()),
        ts: r.timestamp(),
        ssrc: r.ssrc(),
        marker: r.mark(),
        payload: r.payload().to_vec(),
    }
}

/// (ssrc, LSR, DLSR) of every report block in an SR or RR of a compound packet.
fn blocks(data: &[u8]) -> Vec<(u32, u32, u32)> {
    let f = |b: ReportBlock<'_>| {
        (
            b.ssrc(),
            b.last_sender_report_timestamp(),
            b.delay_since_last_sender_report_timestamp(),
        )
    };
    let mut v = Vec::new();
    for p in Compound::parse(data).expect("valid RTCP") {
        match p.expect("valid packet") {
            Packet::Sr(sr) => v.extend(sr.report_blocks().map(f)),
            Packet::Rr(rr) => v.extend(rr.report_blocks().map(f)),
            _ => {}
        }
    }
    v
}

struct Harness {
    s: RelaySession,
    t0: Instant,
}

impl Harness {
    /// A PCMA/101 <-> B PCMA/101, both sendrecv, call answered at t0.
    fn new() -> Self {
        Self::with(
            cfg(A_SDP, Codec::Pcma, 8, Some(101)),
            cfg(B_SDP, Codec::Pcma, 8, Some(101)),
        )
    }

    fn with(a: LegConfig, b: LegConfig) -> Self {
        let t0 = epoch();
        let mut s = RelaySession::new(RelayConfig::default(), t0, Duration::from_secs(1), 7);
        s.configure(t0, Leg::A, a);
        s.configure(t0, Leg::B, b);
        s.set_active(t0, true);
        Self { s, t0 }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn send(&mut self, ms: u64, leg: Leg, from: SocketAddr, data: &[u8]) -> Vec<Transmit> {
        self.s
            .handle_packet(self.at(ms), leg, Socket::Rtp, from, data);
        self.drain()
    }

    fn drain(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.s.poll_transmit()).collect()
    }

    fn events(&mut self) -> Vec<RelayEvent> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    /// Jumps from deadline to deadline up to `until`, collecting events and transmits.
    fn run_until(&mut self, until: Instant) -> (Vec<(Instant, RelayEvent)>, Vec<Transmit>) {
        let (mut ev, mut tx) = (Vec::new(), Vec::new());
        while let Some(d) = self.s.poll_timeout() {
            if d > until {
                break;
            }
            self.s.handle_timeout(d);
            ev.extend(std::iter::from_fn(|| self.s.poll_event()).map(|e| (d, e)));
            tx.extend(self.drain());
        }
        (ev, tx)
    }
}

#[test]
fn forwards_with_our_ssrc_and_the_other_legs_pt() {
    let mut h = Harness::with(
        cfg(A_SDP, Codec::Pcma, 8, None),
        cfg(B_SDP, Codec::Pcma, 96, None),
    );
    let out = h.send(
        0,
        Leg::A,
        addr(1, A_SDP),
        &rtp(8, 10, 1000, 0xAAAA, false, &[1, 2, 3]),
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].leg, out[0].socket, out[0].to),
        (Leg::B, Socket::Rtp, addr(1, B_SDP))
    );
    let p = parse(&out[0]);
    assert_eq!(p.pt, 96);
    assert_ne!(
        p.ssrc, 0xAAAA,
        "the source SSRC must not leak to the other leg"
    );
    assert_eq!(p.payload, vec![1, 2, 3]);
    // The other way uses a different SSRC of ours.
    let back = h.send(
        5,
        Leg::B,
        addr(1, B_SDP),
        &rtp(96, 1, 1, 0xBBBB, false, &[9]),
    );
    assert_eq!((back[0].leg, back[0].to), (Leg::A, addr(1, A_SDP)));
    assert_eq!(parse(&back[0]).pt, 8);
    assert_ne!(parse(&back[0]).ssrc, p.ssrc);
    assert_eq!(h.s.stats(Leg::A).packets_in, 1);
    assert_eq!(h.s.stats(Leg::B).packets_out, 1);
}

/// The phone's SDP says port 4000 but its packets come from a NAT port: we send there.
#[test]
fn latches_onto_the_real_source() {
    let mut h = Harness::new();
    // Before A has sent anything, B's media goes to A's SDP address.
    let out = h.send(0, Leg::B, addr(1, B_SDP), &rtp(8, 1, 0, 2, false, &[0]));
    assert_eq!(out[0].to, addr(1, A_SDP));
    let nat = SocketAddr::from(([203, 0, 113, 9], 31000));
    h.send(10, Leg::A, nat, &rtp(8, 1, 0, 1, false, &[0]));
    assert!(h.events().contains(&RelayEvent::Latched {
        leg: Leg::A,
        socket: Socket::Rtp,
        addr: nat
    }));
    let out = h.send(20, Leg::B, addr(1, B_SDP), &rtp(8, 2, 160, 2, false, &[0]));
    assert_eq!(out[0].to, nat);
    assert_eq!(h.s.rtp_destination(Leg::A), Some(nat));
}

/// Invalid packets never latch: a wrong PT or a non-RTP datagram from an attacker first.
#[test]
fn only_valid_rtp_latches() {
    let mut h = Harness::new();
    let evil = addr(66, 6666);
    h.send(0, Leg::A, evil, &rtp(0, 1, 0, 1, false, &[0])); // PCMU: not negotiated
    h.send(1, Leg::A, evil, &[0x40, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]); // version 1
    h.send(2, Leg::A, evil, b"hello"); // garbage
    assert_eq!(h.s.stats(Leg::A).dropped, 3);
    assert_eq!(h.s.rtp_destination(Leg::A), Some(addr(1, A_SDP)));
    let real = addr(1, 4002);
    assert_eq!(
        h.send(3, Leg::A, real, &rtp(8, 1, 0, 1, false, &[0])).len(),
        1
    );
    assert_eq!(h.s.rtp_destination(Leg::A), Some(real));
}

/// After latching, another source takes over only once the latched one was silent 2 s.
#[test]
fn relatch_only_after_two_seconds_of_silence() {
    let mut h = Harness::new();
    let x = addr(1, 4000);
    let y = addr(99, 5555);
    let pkt = |seq: u16| rtp(8, seq, u32::from(seq) * 160, 1, false, &[0]);
    assert_eq!(h.send(0, Leg::A, x, &pkt(1)).len(), 1);
    assert!(
        h.send(1000, Leg::A, y, &pkt(2)).is_empty(),
        "injection while x is live"
    );
    assert_eq!(h.send(1500, Leg::A, x, &pkt(3)).len(), 1);
    assert!(
        h.send(3400, Leg::A, y, &pkt(4)).is_empty(),
        "x silent only 1.9 s"
    );
    assert_eq!(h.s.stats(Leg::A).dropped, 2);
    // x silent 2.0 s: y (a NAT rebinding) takes over.
    assert_eq!(h.send(3500, Leg::A, y, &pkt(5)).len(), 1);
    assert_eq!(h.s.rtp_destination(Leg::A), Some(y));
    assert!(
        h.send(3520, Leg::A, x, &pkt(6)).is_empty(),
        "now x is the stranger"
    );
    // The other leg's traffic follows the new latch.
    let out = h.send(3530, Leg::B, addr(1, B_SDP), &rtp(8, 1, 0, 2, false, &[0]));
    assert_eq!(out[0].to, y);
}

/// A re-INVITE moves leg A to another phone with a new SSRC, sequence and timestamp
/// base: B keeps seeing one stream with continuous numbering and a timestamp that
/// advanced by the real gap.
#[test]
fn ssrc_seq_ts_continuity_across_source_change() {
    let mut h = Harness::new();
    let mut seen = Vec::new();
    for i in 0..10u16 {
        let pkt = rtp(
            8,
            1000 + i,
            50_000 + u32::from(i) * 160,
            0x1111,
            false,
            &[0; 160],
        );
        seen.extend(h.send(u64::from(i) * 20, Leg::A, addr(1, A_SDP), &pkt));
    }
    // Re-INVITE: new remote; the new phone starts 500 ms after the last packet.
    h.s.configure(h.at(300), Leg::A, cfg(4100, Codec::Pcma, 8, Some(101)));
    for i in 0..5u16 {
        let pkt = rtp(
            8,
            7 + i,
            9_999_999 + u32::from(i) * 160,
            0x2222,
            false,
            &[0; 160],
        );
        seen.extend(h.send(680 + u64::from(i) * 20, Leg::A, addr(1, 4100), &pkt));
    }
    let p: Vec<Rtp> = seen.iter().map(parse).collect();
    assert_eq!(p.len(), 15);
    assert!(p.iter().all(|x| x.ssrc == p[0].ssrc), "one SSRC towards B");
    for w in p.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "continuous sequence");
    }
    for i in 1..15 {
        let step = p[i].ts.wrapping_sub(p[i - 1].ts);
        let expect = if i == 10 { 500 * 8 } else { 160 };
        assert_eq!(step, expect, "timestamp step at {i}");
    }
    assert!(p[0].marker && p[10].marker, "marker on each new source");
    assert!(!p[1].marker && !p[11].marker);
}

/// Same SSRC, but the phone restarted its sequence numbers (re-INVITE): still continuous.
#[test]
fn sequence_restart_with_the_same_ssrc_stays_continuous() {
    let mut h = Harness::new();
    let from = addr(1, A_SDP);
    let mut out = Vec::new();
    for (i, seq) in [100u16, 101, 102, 40_000, 40_001].into_iter().enumerate() {
        let ms = i as u64 * 20;
        out.extend(h.send(
            ms,
            Leg::A,
            from,
            &rtp(8, seq, ms as u32 * 8, 5, false, &[0]),
        ));
    }
    let seqs: Vec<u16> = out.iter().map(|t| parse(t).seq).collect();
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1), "{seqs:?}");
    }
    assert!(parse(&out[3]).marker);
}

/// Reordered packets keep their place: a late packet gets the earlier sequence number.
#[test]
fn reordering_is_preserved() {
    let mut h = Harness::new();
    let from = addr(1, A_SDP);
    let seqs: Vec<u16> = [1u16, 3, 2, 4]
        .iter()
        .flat_map(|&s| {
            h.send(
                u64::from(s) * 20,
                Leg::A,
                from,
                &rtp(8, s, u32::from(s) * 160, 5, false, &[0]),
            )
        })
        .map(|t| parse(&t).seq)
        .collect();
    let base = seqs[0];
    let rel: Vec<u16> = seqs.iter().map(|s| s.wrapping_sub(base)).collect();
    assert_eq!(rel, vec![0, 2, 1, 3]);
}

/// telephone-event keeps its payload and gets the other leg's PT, even across a
/// transcoded call; with no telephone-event on the other leg it is dropped.
#[test]
fn telephone_event_pt_translation() {
    let mut h = Harness::with(
        cfg(A_SDP, Codec::Pcma, 8, Some(101)),
        cfg(B_SDP, Codec::Pcmu, 0, Some(113)),
    );
    let event = [5u8, 0x8a, 0x03, 0x20]; // digit 5, volume 10, duration 800
    let out = h.send(0, Leg::A, addr(1, A_SDP), &rtp(101, 1, 0, 9, true, &event));
    let p = parse(&out[0]);
    assert_eq!(
        (p.pt, p.payload.as_slice(), p.marker),
        (113, &event[..], true)
    );
    let back = h.send(
        10,
        Leg::B,
        addr(1, B_SDP),
        &rtp(113, 1, 0, 8, false, &event),
    );
    assert_eq!(parse(&back[0]).pt, 101);
    // The event's PT on the wrong leg is not accepted (B does not use 101).
    assert!(h
        .send(
            20,
            Leg::B,
            addr(1, B_SDP),
            &rtp(101, 2, 0, 8, false, &event)
        )
        .is_empty());

    let mut h = Harness::with(
        cfg(A_SDP, Codec::Pcma, 8, Some(101)),
        cfg(B_SDP, Codec::Pcma, 8, None),
    );
    assert!(h
        .send(0, Leg::A, addr(1, A_SDP), &rtp(101, 1, 0, 9, true, &event))
        .is_empty());
    assert_eq!(
        h.s.stats(Leg::A).packets_in,
        1,
        "received, just not forwardable"
    );
}

#[test]
fn pcma_to_pcmu_transcoding_is_bit_exact() {
    let mut h = Harness::with(
        cfg(A_SDP, Codec::Pcma, 8, None),
        cfg(B_SDP, Codec::Pcmu, 0, None),
    );
    let payload: Vec<u8> = (0..160u32).map(|i| (i * 37 % 256) as u8).collect();
    let out = h.send(0, Leg::A, addr(1, A_SDP), &rtp(8, 1, 0, 1, false, &payload));
    let p = parse(&out[0]);
    let expect: Vec<u8> = payload
        .iter()
        .map(|&a| linear_to_ulaw(alaw_to_linear(a)))
        .collect();
    assert_eq!(p.pt, 0);
    assert_eq!(p.payload, expect);
    // And back: PCMU -> PCMA on the way to A.
    let back = h.send(5, Leg::B, addr(1, B_SDP), &rtp(0, 1, 0, 2, false, &expect));
    assert_eq!(parse(&back[0]).pt, 8);
    assert_eq!(parse(&back[0]).payload.len(), 160);
}

#[test]
fn g722_leg_gets_g722_payloads_of_the_same_length() {
    let mut h = Harness::with(
        cfg(A_SDP, Codec::Pcma, 8, None),
        cfg(B_SDP, Codec::G722, 9, None),
    );
    let out = h.send(
        0,
        Leg::A,
        addr(1, A_SDP),
        &rtp(8, 1, 0, 1, false, &[0xd5; 160]),
    );
    let p = parse(&out[0]);
    assert_eq!((p.pt, p.payload.len()), (9, 160));
    let back = h.send(
        5,
        Leg::B,
        addr(1, B_SDP),
        &rtp(9, 1, 0, 2, false, &p.payload),
    );
    assert_eq!(parse(&back[0]).payload.len(), 160);
}

/// A peer that holds (sendonly) or is inactive gets nothing; it can still send.
#[test]
fn hold_stops_forwarding_to_the_holding_peer() {
    for dir in [Direction::SendOnly, Direction::Inactive] {
        let mut h = Harness::new();
        h.s.configure(
            h.t0,
            Leg::B,
            LegConfig {
                direction: dir,
                ..cfg(B_SDP, Codec::Pcma, 8, Some(101))
            },
        );
        assert!(h
            .send(0, Leg::A, addr(1, A_SDP), &rtp(8, 1, 0, 1, false, &[0]))
            .is_empty());
        assert_eq!(
            h.send(5, Leg::B, addr(1, B_SDP), &rtp(8, 1, 0, 2, false, &[0]))
                .len(),
            1
        );
        // Resume.
        h.s.configure(h.at(10), Leg::B, cfg(B_SDP, Codec::Pcma, 8, Some(101)));
        assert_eq!(
            h.send(20, Leg::A, addr(1, A_SDP), &rtp(8, 2, 160, 1, false, &[0]))
                .len(),
            1
        );
    }
}

/// No RTP for 60 s after the call is answered: exactly one Timeout, at last packet + 60 s.
#[test]
fn media_timeout_fires_at_60_s_only_when_active() {
    let mut h = Harness::new();
    h.s.set_active(h.t0, false);
    let (ev, _) = h.run_until(h.at(300_000));
    assert!(
        ev.iter().all(|(_, e)| *e != RelayEvent::Timeout),
        "not answered: no timeout"
    );

    let mut h = Harness::new();
    for i in 0..500u16 {
        h.send(
            u64::from(i) * 20,
            Leg::A,
            addr(1, A_SDP),
            &rtp(8, i, u32::from(i) * 160, 1, false, &[0]),
        );
    }
    let last = h.at(499 * 20);
    let (ev, _) = h.run_until(h.at(200_000));
    let timeouts: Vec<_> = ev
        .iter()
        .filter(|(_, e)| *e == RelayEvent::Timeout)
        .collect();
    assert_eq!(timeouts.len(), 1);
    assert_eq!(timeouts[0].0, last + Duration::from_secs(60));
}

#[test]
fn no_timeout_while_both_sides_are_inactive() {
    let mut h = Harness::new();
    for leg in [Leg::A, Leg::B] {
        let port = if leg == Leg::A { A_SDP } else { B_SDP };
        h.s.configure(
            h.t0,
            leg,
            LegConfig {
                direction: Direction::Inactive,
                ..cfg(port, Codec::Pcma, 8, None)
            },
        );
    }
    let (ev, _) = h.run_until(h.at(600_000));
    assert!(ev.iter().all(|(_, e)| *e != RelayEvent::Timeout));
    // Resume at 10 min: the timer restarts from the re-INVITE.
    h.s.configure(h.at(600_000), Leg::A, cfg(A_SDP, Codec::Pcma, 8, None));
    let (ev, _) = h.run_until(h.at(700_000));
    let t: Vec<_> = ev
        .iter()
        .filter(|(_, e)| *e == RelayEvent::Timeout)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(t, vec![h.at(660_000)]);
}

/// Loss and jitter of a crafted stream from A: 5 of 100 packets missing, arrival
/// alternating +-5 ms around the 20 ms clock.
#[test]
fn loss_and_jitter_of_the_received_stream() {
    let mut h = Harness::new();
    for i in 0..100u16 {
        if i % 20 == 7 {
            continue;
        }
        let wobble = if i % 2 == 0 { 5 } else { 0 };
        h.send(
            u64::from(i) * 20 + wobble,
            Leg::A,
            addr(1, A_SDP),
            &rtp(8, i, u32::from(i) * 160, 3, false, &[0]),
        );
    }
    let s = h.s.stats(Leg::A);
    assert_eq!((s.expected, s.lost, s.packets_in), (100, 5, 95));
    assert!((s.loss_pct() - 5.0).abs() < 1e-9);
    // |D| = 40 units (5 ms) per packet; J -> 5 ms (within 10 % after ~95 samples).
    assert!((s.jitter_ms - 5.0).abs() < 0.5, "jitter {} ms", s.jitter_ms);
}

/// We send SRs to each leg; the peer's RR about our stream gives its loss, jitter and the
/// round trip (LSR/DLSR); the result lands in the report with a lower MOS.
#[test]
fn rtcp_sr_out_rr_in_round_trip() {
    let mut h = Harness::new();
    for i in 0..200u16 {
        h.send(
            u64::from(i) * 20,
            Leg::A,
            addr(1, A_SDP),
            &rtp(8, i, u32::from(i) * 160, 3, false, &[0; 160]),
        );
    }
    let ours = parse(
        &h.send(
            4000,
            Leg::A,
            addr(1, A_SDP),
            &rtp(8, 200, 32000, 3, false, &[0; 160]),
        )[0],
    )
    .ssrc;
    // First report to B at t0 + 7.5 s (interval plus half, to stagger the legs), an SR
    // since we sent B media; A's came at 5 s.
    let (_, tx) = h.run_until(h.at(7500));
    let sr_tx: Vec<_> = tx.iter().filter(|t| t.leg == Leg::B).collect();
    assert_eq!(sr_tx.len(), 1);
    assert_eq!(
        (sr_tx[0].socket, sr_tx[0].to),
        (Socket::Rtcp, addr(1, B_SDP + 1))
    );
    let compound = Compound::parse(&sr_tx[0].data).expect("valid RTCP");
    let mut lsr = 0;
    for p in compound {
        if let Ok(Packet::Sr(sr)) = p {
            assert_eq!(sr.ssrc(), ours);
            assert_eq!(sr.packet_count(), 201);
            assert_eq!(sr.octet_count(), 201 * 160);
            lsr = (sr.ntp_timestamp() >> 16) as u32;
        }
    }
    assert_ne!(lsr, 0);
    // Leg A got an RR (B sent it nothing to relay) with a block about A's stream (SSRC 3).
    let a_tx: Vec<_> = tx.iter().filter(|t| t.leg == Leg::A).collect();
    let a_blocks: Vec<u32> = blocks(&a_tx[0].data).iter().map(|b| b.0).collect();
    assert_eq!(a_blocks, vec![3]);

    // B answers 600 ms later, having held our SR for 500 ms: RTT = 100 ms.
    let rr = ReceiverReport::builder(0xB0B).add_report_block(
        ReportBlock::builder(ours)
            .fraction_lost(64) // 25 %
            .cumulative_lost(50)
            .extended_sequence_number(1000)
            .interarrival_jitter(80) // 10 ms
            .last_sender_report_timestamp(lsr)
            .delay_since_last_sender_report_timestamp(32768), // 0.5 s
    );
    let mut buf = vec![0; 200];
    let n = rr.write_into(&mut buf).expect("fits");
    let before = h.s.report().b.mos;
    h.s.handle_packet(
        h.at(8100),
        Leg::B,
        Socket::Rtcp,
        addr(1, B_SDP + 1),
        &buf[..n],
    );
    assert!(h.drain().is_empty(), "RTCP is terminated, not forwarded");
    let s = h.s.stats(Leg::B);
    assert_eq!(s.rtcp_in, 1);
    assert_eq!(s.remote_loss_pct, Some(25.0));
    assert_eq!(s.remote_lost, Some(50));
    assert_eq!(s.remote_jitter_ms, Some(10.0));
    let rtt = s.rtt_ms.expect("rtt from LSR/DLSR");
    assert!((rtt - 100.0).abs() < 0.1, "rtt {rtt}");
    let r = h.s.report().b;
    assert_eq!(r.loss_pct, 25.0);
    assert!(
        r.mos < before - 1.0,
        "25 % loss must hurt: {} -> {}",
        before,
        r.mos
    );

    // A report block about some other SSRC is ignored.
    let rr = ReceiverReport::builder(0xB0B)
        .add_report_block(ReportBlock::builder(12345).fraction_lost(255));
    let n = rr.write_into(&mut buf).expect("fits");
    h.s.handle_packet(
        h.at(8200),
        Leg::B,
        Socket::Rtcp,
        addr(1, B_SDP + 1),
        &buf[..n],
    );
    assert_eq!(h.s.stats(Leg::B).remote_loss_pct, Some(25.0));
}

/// RTCP multiplexed on the RTP port is parsed, not forwarded, and our reports follow it.
#[test]
fn rtcp_mux_on_the_rtp_socket() {
    let mut h = Harness::new();
    h.send(0, Leg::B, addr(1, B_SDP), &rtp(8, 1, 0, 2, false, &[0]));
    let sr = SenderReport::builder(2)
        .ntp_timestamp(0x0102_0304_0506_0708)
        .packet_count(1);
    let mut buf = vec![0; 200];
    let n = sr.write_into(&mut buf).expect("fits");
    assert!(h.send(10, Leg::B, addr(1, B_SDP), &buf[..n]).is_empty());
    assert_eq!(h.s.stats(Leg::B).rtcp_in, 1);
    assert_eq!(h.s.stats(Leg::B).packets_in, 1);
    let (_, tx) = h.run_until(h.at(8000));
    let to_b: Vec<_> = tx.iter().filter(|t| t.leg == Leg::B).collect();
    assert_eq!((to_b[0].socket, to_b[0].to), (Socket::Rtp, addr(1, B_SDP)));
    // Our RR block echoes the peer's SR: LSR = middle 32 bits, DLSR = time held.
    let blocks = blocks(&to_b[0].data);
    // B's report is due at t0 + 7.5 s; the SR came at 10 ms.
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].1, 0x0304_0506);
    assert!(
        blocks[0].2.abs_diff((7.49 * 65536.0) as u32) <= 1,
        "dlsr {}",
        blocks[0].2
    );
}

#[test]
fn unconfigured_leg_drops_everything() {
    let t0 = epoch();
    let mut s = RelaySession::new(RelayConfig::default(), t0, Duration::ZERO, 1);
    s.handle_packet(
        t0,
        Leg::A,
        Socket::Rtp,
        addr(1, 1),
        &rtp(8, 1, 0, 1, false, &[0]),
    );
    assert!(s.poll_transmit().is_none());
    assert_eq!(s.stats(Leg::A).dropped, 1);
}

proptest! {
    /// Any datagram on any socket: no panic, and every packet is either accepted or
    /// counted as dropped.
    #[test]
    fn arbitrary_datagrams_never_panic(
        pkts in proptest::collection::vec(
            (any::<bool>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300)),
            1..40,
        )
    ) {
        let mut h = Harness::with(cfg(A_SDP, Codec::Pcma, 8, Some(101)), cfg(B_SDP, Codec::G722, 9, Some(113)));
        for (i, (leg_a, on_rtp, data)) in pkts.iter().enumerate() {
            let leg = if *leg_a { Leg::A } else { Leg::B };
            let socket = if *on_rtp { Socket::Rtp } else { Socket::Rtcp };
            h.s.handle_packet(h.at(i as u64 * 7), leg, socket, addr(3, 3000), data);
            h.drain();
        }
        let total: u64 = [Leg::A, Leg::B]
            .iter()
            .map(|&l| { let s = h.s.stats(l); s.packets_in + s.dropped + s.rtcp_in })
            .sum();
        prop_assert_eq!(total, pkts.len() as u64);
        let _ = h.run_until(h.at(100_000));
    }

    /// Valid RTP headers with arbitrary fields and payloads (also through G.722).
    #[test]
    fn arbitrary_rtp_never_panics(
        pkts in proptest::collection::vec(
            (prop_oneof![Just(8u8), Just(9), Just(101), Just(113), any::<u8>()],
             any::<u16>(), any::<u32>(), any::<u32>(), any::<bool>(),
             proptest::collection::vec(any::<u8>(), 0..1200)),
            1..30,
        )
    ) {
        let mut h = Harness::with(cfg(A_SDP, Codec::Pcma, 8, Some(101)), cfg(B_SDP, Codec::G722, 9, Some(113)));
        for (i, (pt, seq, ts, ssrc, a, payload)) in pkts.iter().enumerate() {
            let leg = if *a { Leg::A } else { Leg::B };
            h.s.handle_packet(h.at(i as u64 * 20), leg, Socket::Rtp, addr(3, 3000), &rtp(*pt & 0x7f, *seq, *ts, *ssrc, false, payload));
            for t in h.drain() {
                prop_assert!(RtpReader::new(&t.data).is_ok());
            }
        }
    }
}
