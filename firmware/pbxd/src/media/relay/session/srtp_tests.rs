//! SRTP legs of the relay against an SRTP peer in-process: the phone's side encrypts and
//! decrypts with its own [`SrtpContext`]s (the transform checked against libsrtp's and
//! webrtc-rs's output in `media::srtp`), the relay sits in between.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtcp_types::{Compound, Packet, ReceiverReport, ReportBlock, RtcpPacketWriterExt as _};
use rtp_rs::RtpReader;

use super::RelaySession;
use crate::media::relay::{Codec, Direction, Leg, LegConfig, RelayConfig, Socket, Transmit};
use crate::media::sdp::SrtpKeys;
use crate::media::srtp::{MasterKey, SrtpContext, SrtpError, Suite};

const SUITE: Suite = Suite::AesCm128HmacSha1_80;

fn addr(host: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, host], port))
}

#[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
fn epoch() -> Instant {
    Instant::now()
}

fn cfg(port: u16) -> LegConfig {
    LegConfig {
        remote: Some(addr(1, port)),
        codec: Codec::Pcma,
        pt: 8,
        telephone_event: Some(101),
        direction: Direction::SendRecv,
    }
}

fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80, 8];
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// A phone doing SRTP with the box: it sends with `key`, the box with `ours`.
struct Phone {
    tx: SrtpContext,
    rx: SrtpContext,
    keys: SrtpKeys,
}

impl Phone {
    fn new() -> Self {
        let (key, ours) = (MasterKey::random(), MasterKey::random());
        Phone {
            tx: SrtpContext::new(SUITE, &key),
            rx: SrtpContext::new(SUITE, &ours),
            // The relay's view: it sends with our key, receives with the phone's.
            keys: SrtpKeys {
                suite: SUITE,
                send: ours,
                recv: key,
            },
        }
    }

    fn protect(&mut self, mut p: Vec<u8>) -> Vec<u8> {
        self.tx.protect_rtp(&mut p).unwrap();
        p
    }

    fn open(&mut self, t: &Transmit) -> Result<Vec<u8>, SrtpError> {
        let mut p = t.data.clone();
        self.rx.unprotect_rtp(&mut p).map(|()| p)
    }
}

struct Rig {
    s: RelaySession,
    t0: Instant,
}

impl Rig {
    fn new(a: Option<&Phone>, b: Option<&Phone>) -> Self {
        let t0 = epoch();
        let mut s = RelaySession::new(RelayConfig::default(), t0, Duration::ZERO, 7);
        s.configure_secure(t0, Leg::A, cfg(4000), a.map(|p| p.keys.clone()));
        s.configure_secure(t0, Leg::B, cfg(6000), b.map(|p| p.keys.clone()));
        s.set_active(t0, true);
        Rig { s, t0 }
    }

    fn send(&mut self, ms: u64, leg: Leg, from: SocketAddr, data: &[u8]) -> Vec<Transmit> {
        let now = self.t0 + Duration::from_millis(ms);
        self.s.handle_packet(now, leg, Socket::Rtp, from, data);
        std::iter::from_fn(|| self.s.poll_transmit()).collect()
    }
}

fn payload(data: &[u8]) -> Vec<u8> {
    RtpReader::new(data).expect("valid RTP").payload().to_vec()
}

#[test]
fn srtp_leg_to_plain_leg_and_back() {
    let mut a = Phone::new();
    let mut r = Rig::new(Some(&a), None);
    let voice = [0x55u8; 160];
    // A's SRTP arrives as plain RTP on B with A's audio.
    let out = r.send(0, Leg::A, addr(9, 4000), &a.protect(rtp(1, 0xa, &voice)));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].leg, out[0].data.len()), (Leg::B, 12 + 160));
    assert_eq!(payload(&out[0].data), voice);
    // B's plain RTP reaches A as SRTP that A opens with our key, and that is not plain.
    let back = [0xd5u8; 160];
    let out = r.send(20, Leg::B, addr(8, 6000), &rtp(1, 0xb, &back));
    assert_eq!((out[0].leg, out[0].data.len()), (Leg::A, 12 + 160 + 10));
    assert_ne!(&out[0].data[12..172], &back[..]);
    assert_eq!(payload(&a.open(&out[0]).unwrap()), back);
    let st = r.s.stats(Leg::A);
    assert_eq!((st.packets_in, st.dropped, st.srtp_auth_failed), (1, 0, 0));
}

#[test]
fn both_legs_secure_with_their_own_keys() {
    let (mut a, mut b) = (Phone::new(), Phone::new());
    let mut r = Rig::new(Some(&a), Some(&b));
    for seq in 1..=3u16 {
        let voice = [seq as u8; 160];
        let out = r.send(
            u64::from(seq) * 20,
            Leg::A,
            addr(9, 4000),
            &a.protect(rtp(seq, 1, &voice)),
        );
        assert_eq!(payload(&b.open(&out[0]).unwrap()), voice);
        // A's own key does not open what B gets.
        assert_eq!(a.open(&out[0]), Err(SrtpError::AuthFailed));
        let out = r.send(
            u64::from(seq) * 20 + 5,
            Leg::B,
            addr(8, 6000),
            &b.protect(rtp(seq, 2, &voice)),
        );
        assert_eq!(payload(&a.open(&out[0]).unwrap()), voice);
    }
}

#[test]
fn tampered_forged_and_plain_packets_are_dropped_and_counted() {
    let mut a = Phone::new();
    let mut r = Rig::new(Some(&a), None);
    let good = a.protect(rtp(1, 0xa, &[0x55; 160]));
    let mut tampered = good.clone();
    tampered[40] ^= 0x10;
    // From an attacker's address first: dropped, and it must not steal the latch.
    assert!(r.send(0, Leg::A, addr(66, 1234), &tampered).is_empty());
    assert!(r
        .send(1, Leg::A, addr(66, 1234), &rtp(2, 0xa, &[0; 160]))
        .is_empty());
    let mut forged = rtp(3, 0xa, &[0; 160]);
    forged.extend_from_slice(&[0; 10]);
    assert!(r.send(2, Leg::A, addr(66, 1234), &forged).is_empty());
    let st = r.s.stats(Leg::A);
    assert_eq!((st.srtp_auth_failed, st.dropped, st.packets_in), (3, 3, 0));
    // The phone's genuine packet still goes through and latches.
    let out = r.send(3, Leg::A, addr(9, 4000), &good);
    assert_eq!(out.len(), 1);
    assert_eq!(r.s.rtp_destination(Leg::A), Some(addr(9, 4000)));
}

#[test]
fn replayed_packets_are_dropped() {
    let mut a = Phone::new();
    let mut r = Rig::new(Some(&a), None);
    let p1 = a.protect(rtp(1, 0xa, &[1; 160]));
    let p2 = a.protect(rtp(2, 0xa, &[2; 160]));
    assert_eq!(r.send(0, Leg::A, addr(9, 4000), &p2).len(), 1);
    // p1 late but new: forwarded; p2 and p1 again: replays.
    assert_eq!(r.send(5, Leg::A, addr(9, 4000), &p1).len(), 1);
    assert!(r.send(10, Leg::A, addr(9, 4000), &p2).is_empty());
    assert!(r.send(15, Leg::A, addr(9, 4000), &p1).is_empty());
    let st = r.s.stats(Leg::A);
    assert_eq!((st.srtp_replayed, st.dropped, st.packets_in), (2, 2, 2));
    // A re-INVITE with the same keys keeps the replay window.
    r.s.configure_secure(r.t0, Leg::A, cfg(4000), Some(a.keys.clone()));
    assert!(r.send(20, Leg::A, addr(9, 4000), &p2).is_empty());
    // New keys from the phone: its old packets no longer authenticate.
    let mut a2 = Phone::new();
    a2.keys.send = a.keys.send.clone();
    r.s.configure_secure(r.t0, Leg::A, cfg(4000), Some(a2.keys.clone()));
    assert!(r
        .send(
            25,
            Leg::A,
            addr(9, 4000),
            &a.protect(rtp(3, 0xa, &[3; 160]))
        )
        .is_empty());
    assert_eq!(
        r.send(
            30,
            Leg::A,
            addr(9, 4000),
            &a2.protect(rtp(3, 0xa, &[3; 160]))
        )
        .len(),
        1
    );
    // Going plain again (re-INVITE without crypto) ends SRTP on the leg.
    r.s.configure(r.t0, Leg::A, cfg(4000));
    assert_eq!(
        r.send(35, Leg::A, addr(9, 4000), &rtp(4, 0xa, &[4; 160]))
            .len(),
        1
    );
}

#[test]
fn rtcp_is_srtcp_both_ways() {
    let mut a = Phone::new();
    let mut r = Rig::new(Some(&a), None);
    // Some media so that our report has a block about A's stream.
    r.send(
        0,
        Leg::A,
        addr(9, 4000),
        &a.protect(rtp(1, 0xa, &[0x55; 160])),
    );
    r.send(10, Leg::B, addr(8, 6000), &rtp(1, 0xb, &[0x55; 160]));
    // A's SRTCP receiver report is taken in; the same report in the clear is not.
    let mut buf = vec![0u8; 128];
    let n = ReceiverReport::builder(0xa)
        .add_report_block(ReportBlock::builder(0x1234))
        .write_into(&mut buf)
        .unwrap();
    buf.truncate(n);
    let mut srtcp = buf.clone();
    a.tx.protect_rtcp(&mut srtcp).unwrap();
    let now = r.t0 + Duration::from_millis(30);
    r.s.handle_packet(now, Leg::A, Socket::Rtcp, addr(9, 4001), &buf);
    r.s.handle_packet(now, Leg::A, Socket::Rtcp, addr(9, 4001), &srtcp);
    let st = r.s.stats(Leg::A);
    assert_eq!((st.rtcp_in, st.srtp_auth_failed), (1, 1));
    // Our reports to A are SRTCP that A opens; B's are plain.
    let later = r.t0 + Duration::from_secs(11);
    r.s.handle_timeout(later);
    let reports: Vec<Transmit> = std::iter::from_fn(|| r.s.poll_transmit()).collect();
    let to_a: Vec<&Transmit> = reports.iter().filter(|t| t.leg == Leg::A).collect();
    let to_b: Vec<&Transmit> = reports.iter().filter(|t| t.leg == Leg::B).collect();
    assert_eq!((to_a.len(), to_b.len()), (1, 1));
    assert_eq!(to_a[0].socket, Socket::Rtcp);
    assert!(Compound::parse(&to_b[0].data).is_ok());
    let mut p = to_a[0].data.clone();
    // It authenticates with our key: SRTCP, not a plain report.
    a.rx.unprotect_rtcp(&mut p).unwrap();
    let packets: Vec<_> = Compound::parse(&p).unwrap().collect();
    assert!(matches!(packets[0], Ok(Packet::Sr(_)) | Ok(Packet::Rr(_))));
}
