//! Cost of the relay core per RTP packet (20 ms G.711, 160-byte payload): plain forwarding
//! with header rewrite, forwarding with PCMA -> PCMU transcoding (table look-up), and with
//! PCMA -> G.722 (decode, 2x resample, G.722 encode). Then the whole path through the tokio
//! shell on loopback: phone A's socket -> relay task -> phone B's socket, one packet at a
//! time (`relay_service_loopback`, mean), with p50/p99 of that one-way time printed first.
//! SRTP: the same PCMA forwarding with SRTP on both legs (`relay_forward_pcma_srtp`:
//! unprotect from A, protect towards B; compare with `relay_forward_pcma`), and the
//! transform alone (`srtp_protect_rtp_pcma`).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use pbxd::media::relay::{Codec, Direction, Leg, LegConfig, RelayConfig, RelaySession, Socket};

#[allow(clippy::disallowed_methods)] // the bench owns its clock; this is the epoch
fn epoch() -> Instant {
    Instant::now()
}

fn session(b_codec: Codec, b_pt: u8) -> RelaySession {
    let now = epoch();
    let mut s = RelaySession::new(RelayConfig::default(), now, Duration::ZERO, 1);
    let leg = |port, codec, pt| LegConfig {
        remote: Some(SocketAddr::from(([127, 0, 0, 1], port))),
        codec,
        pt,
        telephone_event: Some(101),
        direction: Direction::SendRecv,
    };
    s.configure(now, Leg::A, leg(4000, Codec::Pcma, 8));
    s.configure(now, Leg::B, leg(5000, b_codec, b_pt));
    s
}

fn bench(c: &mut Criterion) {
    let from = SocketAddr::from(([127, 0, 0, 1], 4000));
    let now = epoch();
    for (name, codec, pt) in [
        ("relay_forward_pcma", Codec::Pcma, 8),
        ("relay_transcode_pcma_pcmu", Codec::Pcmu, 0),
        ("relay_transcode_pcma_g722", Codec::G722, 9),
    ] {
        let mut s = session(codec, pt);
        let mut pkt = vec![0x80u8, 8, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
        pkt.extend((0..160u32).map(|i| (i * 7) as u8));
        let mut seq = 0u16;
        c.bench_function(name, |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                pkt[2..4].copy_from_slice(&seq.to_be_bytes());
                pkt[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                s.handle_packet(now, Leg::A, Socket::Rtp, from, black_box(&pkt));
                black_box(s.poll_transmit())
            })
        });
    }
}

/// One-way time phone A -> relay -> phone B on loopback, packets sent one after another.
fn bench_service(c: &mut Criterion) {
    use pbxd::media::relay::{MediaConfig, MediaService};
    use std::net::{IpAddr, Ipv4Addr};
    use tokio::net::UdpSocket;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let (svc, handle, a, b) = rt.block_on(async {
        let svc = MediaService::new(MediaConfig {
            bind_ip: lo,
            port_min: 39000,
            port_max: 39999,
            timeout: Duration::from_secs(600),
        });
        let a = UdpSocket::bind((lo, 0)).await.expect("bind");
        let b = UdpSocket::bind((lo, 0)).await.expect("bind");
        let h = svc.open(1).expect("open");
        for (leg, sock) in [(Leg::A, &a), (Leg::B, &b)] {
            h.configure(
                leg,
                LegConfig {
                    remote: Some(sock.local_addr().expect("addr")),
                    codec: Codec::Pcma,
                    pt: 8,
                    telephone_event: None,
                    direction: Direction::SendRecv,
                },
            );
        }
        (svc, h, a, b)
    });
    let to = handle.local(Leg::A);
    let mut seq = 0u16;
    let mut buf = vec![0u8; 2048];
    let mut one = |seq: u16| {
        let mut pkt = vec![0x80u8, 8];
        pkt.extend_from_slice(&seq.to_be_bytes());
        pkt.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        pkt.extend_from_slice(&[1, 2, 3, 4]);
        pkt.extend_from_slice(&[0xd5; 160]);
        rt.block_on(async {
            let t = epoch();
            a.send_to(&pkt, to).await.expect("send");
            b.recv_from(&mut buf).await.expect("recv");
            t.elapsed()
        })
    };
    let mut samples: Vec<Duration> = (0..20_000u16).map(&mut one).collect();
    samples.sort_unstable();
    eprintln!(
        "relay_service_loopback one-way A->B: p50 {:?}, p99 {:?}, max {:?}",
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
        samples[samples.len() - 1]
    );
    c.bench_function("relay_service_loopback", |bch| {
        bch.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    seq = seq.wrapping_add(1);
                    one(seq)
                })
                .sum()
        })
    });
    drop(handle);
    drop(svc);
}

/// SRTP on both legs: what one packet costs the relay (unprotect on ingress, protect on
/// egress) against plain forwarding. The phone's own protect runs outside the timing.
fn bench_srtp(c: &mut Criterion) {
    use pbxd::media::sdp::SrtpKeys;
    use pbxd::media::srtp::{MasterKey, SrtpContext, Suite};

    let suite = Suite::AesCm128HmacSha1_80;
    let key = |b: u8| MasterKey::from_bytes(&[b; 30]).expect("30 bytes");
    let now = epoch();
    let mut s = session(Codec::Pcma, 8);
    let keys = |send, recv| SrtpKeys {
        suite,
        send: key(send),
        recv: key(recv),
    };
    let leg = |port| LegConfig {
        remote: Some(SocketAddr::from(([127, 0, 0, 1], port))),
        codec: Codec::Pcma,
        pt: 8,
        telephone_event: Some(101),
        direction: Direction::SendRecv,
    };
    s.configure_secure(now, Leg::A, leg(4000), Some(keys(1, 2)));
    s.configure_secure(now, Leg::B, leg(5000), Some(keys(3, 4)));
    let mut phone = SrtpContext::new(suite, &key(2));
    let from = SocketAddr::from(([127, 0, 0, 1], 4000));
    let mut seq = 0u16;
    let mut next = move || {
        seq = seq.wrapping_add(1);
        let mut pkt = vec![0x80u8, 8];
        pkt.extend_from_slice(&seq.to_be_bytes());
        pkt.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        pkt.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        pkt.extend((0..160u32).map(|i| (i * 7) as u8));
        pkt
    };
    c.bench_function("relay_forward_pcma_srtp", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(4096);
                left -= n;
                let batch: Vec<Vec<u8>> = (0..n)
                    .map(|_| {
                        let mut p = next();
                        phone.protect_rtp(&mut p).expect("valid RTP");
                        p
                    })
                    .collect();
                let t = epoch();
                for p in &batch {
                    s.handle_packet(now, Leg::A, Socket::Rtp, from, black_box(p));
                    black_box(s.poll_transmit());
                }
                total += t.elapsed();
            }
            total
        })
    });
    let mut tx = SrtpContext::new(suite, &key(5));
    let mut seq = 0u16;
    c.bench_function("srtp_protect_rtp_pcma", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            let mut pkt = Vec::with_capacity(12 + 160 + 10);
            pkt.extend_from_slice(&[0x80, 8]);
            pkt.extend_from_slice(&seq.to_be_bytes());
            pkt.extend_from_slice(&[0; 8]);
            pkt.extend_from_slice(&[0xd5; 160]);
            tx.protect_rtp(&mut pkt).expect("valid RTP");
            black_box(pkt)
        })
    });
}

criterion_group!(benches, bench, bench_service, bench_srtp);
criterion_main!(benches);
