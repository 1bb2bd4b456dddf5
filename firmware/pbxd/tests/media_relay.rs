//! The media relay with real UDP sockets on loopback: two "phones" exchange RTP through a
//! `MediaService` session.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use pbxd::media::dsp::goertzel_power;
use pbxd::media::dsp::tone::{Cadence, ToneSound, ToneSpec};
use pbxd::media::relay::g711::{alaw_to_linear, ulaw_to_linear};
use pbxd::media::relay::{
    load_wav_8k, Codec, Direction, Leg, LegConfig, MediaConfig, MediaError, MediaEvent,
    MediaService, Playback,
};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn service(port_min: u16, port_max: u16, t: Duration) -> MediaService {
    MediaService::new(MediaConfig {
        bind_ip: LO,
        port_min,
        port_max,
        timeout: t,
    })
}

fn leg(remote: SocketAddr, codec: Codec, pt: u8) -> LegConfig {
    LegConfig {
        remote: Some(remote),
        codec,
        pt,
        telephone_event: Some(101),
        direction: Direction::SendRecv,
    }
}

fn rtp(pt: u8, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80, pt];
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    v.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

async fn recv(sock: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 2048];
    let (n, from) = timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
        .await
        .expect("packet within 2 s")
        .expect("recv");
    buf.truncate(n);
    (buf, from)
}

/// Phone A's SDP names a port it never sends from (as behind NAT); the relay latches onto
/// the real one. Audio flows both ways, A's PCMA transcoded to B's PCMU and back.
#[tokio::test]
async fn forwards_both_ways_and_latches_to_the_real_port() {
    let svc = service(32000, 32099, Duration::from_secs(60));
    let phone_a = UdpSocket::bind((LO, 0)).await.expect("bind");
    let phone_b = UdpSocket::bind((LO, 0)).await.expect("bind");
    let s = svc.open(1).expect("open");
    let sdp_a = SocketAddr::new(LO, 9); // "discard": nobody listens on it for us
    s.configure(Leg::A, leg(sdp_a, Codec::Pcma, 8));
    s.configure(
        Leg::B,
        leg(phone_b.local_addr().expect("addr"), Codec::Pcmu, 0),
    );
    s.set_active(true);

    let payload: Vec<u8> = (0..160u32).map(|i| (i * 3) as u8).collect();
    for seq in 1..=5u16 {
        phone_a
            .send_to(&rtp(8, seq, &payload), s.local(Leg::A))
            .await
            .expect("send");
        let (got, from) = recv(&phone_b).await;
        assert_eq!(from, s.local(Leg::B), "B hears us from our B-side address");
        assert_eq!(got[1] & 0x7f, 0, "PCMU towards B");
        assert_eq!(got.len(), 12 + 160);
    }
    // B answers; it must reach A's real port, not the SDP port.
    for seq in 1..=5u16 {
        phone_b
            .send_to(&rtp(0, seq, &[0xff; 160]), s.local(Leg::B))
            .await
            .expect("send");
        let (got, from) = recv(&phone_a).await;
        assert_eq!(from, s.local(Leg::A));
        assert_eq!(got[1] & 0x7f, 8, "PCMA towards A");
        // µ-law silence (0xff) is A-law silence (0xd5).
        assert!(got[12..].iter().all(|&b| b == 0xd5));
    }
    let report = s.close().await.expect("report");
    assert_eq!((report.a.packets_in, report.a.packets_out), (5, 5));
    assert_eq!((report.b.packets_in, report.b.packets_out), (5, 5));
    assert_eq!(report.a.loss_pct, 0.0);
    assert!(report.a.mos > 4.0);
    assert_eq!(svc.active_sessions(), 0);
}

/// Every socket comes from the range as an even RTP / odd RTCP pair; when the range is
/// full, `open` fails; closing frees the ports for the next call.
#[tokio::test]
async fn port_range_is_respected_and_freed() {
    let svc = service(33001, 33012, Duration::from_secs(60)); // pairs 33002..=33010
    let mut open = Vec::new();
    for id in 0..2 {
        let s = svc.open(id).expect("room for two sessions");
        for l in [Leg::A, Leg::B] {
            let p = s.local(l).port();
            assert!((33002..=33010).contains(&p) && p % 2 == 0, "port {p}");
            // The RTCP port is ours too: binding it fails.
            assert!(std::net::UdpSocket::bind((LO, p + 1)).is_err());
        }
        open.push(s);
    }
    // A port held by another program is skipped.
    let squatter = std::net::UdpSocket::bind((LO, 33010));
    match svc.open(9) {
        Err(MediaError::NoPorts { .. }) => {}
        other => panic!("expected NoPorts, got {other:?}"),
    }
    assert_eq!(svc.active_sessions(), 2);
    let first = open.remove(0);
    let freed = [first.local(Leg::A).port(), first.local(Leg::B).port()];
    first.close().await;
    assert_eq!(svc.active_sessions(), 1);
    let again = svc.open(3).expect("ports were freed");
    let mut got = [again.local(Leg::A).port(), again.local(Leg::B).port()];
    got.sort_unstable();
    let mut freed = freed;
    freed.sort_unstable();
    assert_eq!(got, freed, "the only free pairs are the ones just released");
    drop(squatter);
    drop(again);
    drop(open);
    // Dropping handles ends the tasks too.
    timeout(Duration::from_secs(2), async {
        while svc.active_sessions() != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("sessions end when their handles are dropped");
}

/// Sessions are handed out sequentially and wrap around at the end of the range.
#[tokio::test]
async fn allocation_is_sequential_with_wrap_around() {
    let svc = service(34000, 34007, Duration::from_secs(60)); // 4 pairs: 2 sessions
    let s1 = svc.open(1).expect("open");
    let p1 = [s1.local(Leg::A).port(), s1.local(Leg::B).port()];
    assert_eq!(p1, [34000, 34002]);
    s1.close().await;
    let s2 = svc.open(2).expect("open");
    assert_eq!(
        [s2.local(Leg::A).port(), s2.local(Leg::B).port()],
        [34004, 34006]
    );
    // Wraps around to the start (free again), never onto s2's open pairs.
    let s3 = svc.open(3).expect("open");
    assert_eq!(
        [s3.local(Leg::A).port(), s3.local(Leg::B).port()],
        [34000, 34002]
    );
    s2.close().await;
    s3.close().await;
    assert_eq!(svc.active_sessions(), 0);
}

/// No RTP after answer: one Timeout event for that session id, then the call layer closes.
#[tokio::test]
async fn media_timeout_is_reported() {
    let svc = service(35000, 35099, Duration::from_millis(300));
    let mut events = svc.take_events().expect("first take");
    assert!(svc.take_events().is_none());
    let phone = UdpSocket::bind((LO, 0)).await.expect("bind");
    let s = svc.open(77).expect("open");
    let peer = phone.local_addr().expect("addr");
    s.configure(Leg::A, leg(peer, Codec::Pcma, 8));
    s.configure(Leg::B, leg(peer, Codec::Pcma, 8));
    // Not answered yet: no timeout.
    assert!(timeout(Duration::from_millis(500), events.recv())
        .await
        .is_err());
    s.set_active(true);
    // Media keeps it alive...
    for seq in 0..8u16 {
        phone
            .send_to(&rtp(8, seq, &[0xd5; 160]), s.local(Leg::A))
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(events.try_recv().is_err(), "no timeout while RTP flows");
    // ... silence ends it.
    let ev = timeout(Duration::from_secs(2), events.recv())
        .await
        .expect("timeout event");
    assert_eq!(ev, Some(MediaEvent::Timeout { id: 77 }));
    s.close().await.expect("report");
    assert_eq!(svc.active_sessions(), 0);
}

#[test]
fn open_outside_a_runtime_is_an_error() {
    let svc = service(36000, 36099, Duration::from_secs(60));
    assert!(matches!(svc.open(1), Err(MediaError::NoRuntime)));
    assert_eq!(svc.active_sessions(), 0);
}

/// The daemon's arrangement: sessions on a media thread of their own, opened from
/// outside any runtime (the SIP task runs on another).
#[test]
fn sessions_run_on_the_media_thread() {
    let rt = pbxd::media::relay::spawn_media_runtime().expect("media thread");
    let svc = MediaService::new_on(
        MediaConfig {
            bind_ip: LO,
            port_min: 36200,
            port_max: 36299,
            timeout: Duration::from_secs(60),
        },
        rt,
    );
    let s = svc.open(1).expect("opens without a runtime of its own");
    let a = std::net::UdpSocket::bind((LO, 0)).expect("bind");
    let b = std::net::UdpSocket::bind((LO, 0)).expect("bind");
    b.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.configure(Leg::A, leg(a.local_addr().expect("addr"), Codec::Pcma, 8));
    s.configure(Leg::B, leg(b.local_addr().expect("addr"), Codec::Pcma, 8));
    a.send_to(&rtp(8, 1, &[0xd5; 160]), s.local(Leg::A))
        .expect("send");
    let mut buf = [0u8; 512];
    let (n, from) = b.recv_from(&mut buf).expect("relayed by the media thread");
    assert_eq!((n, from), (12 + 160, s.local(Leg::B)));
    drop(s);
    // Bounded wait (5 s) for the media thread to notice.
    for _ in 0..500 {
        if svc.active_sessions() == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        svc.active_sessions(),
        0,
        "dropping the handle ends the session"
    );
}

/// Receives RTP on `sock` for `dur`, returning (arrival, seq, marker, payload) per packet.
async fn collect(
    sock: &UdpSocket,
    dur: Duration,
) -> Vec<(tokio::time::Instant, u16, bool, Vec<u8>)> {
    let end = tokio::time::Instant::now() + dur;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Ok(r) = tokio::time::timeout_at(end, sock.recv_from(&mut buf)).await {
        let (n, _) = r.expect("recv");
        assert!(n >= 12, "RTP header");
        got.push((
            tokio::time::Instant::now(),
            u16::from_be_bytes([buf[2], buf[3]]),
            buf[1] & 0x80 != 0,
            buf[12..n].to_vec(),
        ));
    }
    got
}

/// A phone on hold gets the relay's own audio: about 50 packets per second in its codec
/// (PCMU here), carrying the tone, with contiguous numbering; the other phone's audio is
/// not forwarded meanwhile and is again after `stop_playback`. A one-shot confirmation
/// tone ends by itself with `MediaEvent::PlaybackDone`.
#[tokio::test]
async fn a_phone_hears_playback_at_50_packets_per_second() {
    let svc = service(37000, 37099, Duration::from_secs(60));
    let mut events = svc.take_events().expect("first take");
    let phone_a = UdpSocket::bind((LO, 0)).await.expect("bind");
    let phone_b = UdpSocket::bind((LO, 0)).await.expect("bind");
    let s = svc.open(5).expect("open");
    s.configure(
        Leg::A,
        leg(phone_a.local_addr().expect("addr"), Codec::Pcmu, 0),
    );
    s.configure(
        Leg::B,
        leg(phone_b.local_addr().expect("addr"), Codec::Pcma, 8),
    );
    s.set_active(true);

    let tone = ToneSpec {
        sound: ToneSound::Single(1000.0, -10.0),
        cadence: Cadence::Continuous,
    };
    s.play(Leg::A, Playback::Tone(tone)).expect("valid tone");
    // B talks (A-law silence) all along; none of it may reach A while A plays.
    let b_target = s.local(Leg::B);
    let talker = tokio::spawn(async move {
        for seq in 0u16.. {
            let _ = phone_b.send_to(&rtp(8, seq, &[0xd5; 160]), b_target).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let got = collect(&phone_a, Duration::from_secs(2)).await;
    assert!(got.len() >= 90, "{} packets in 2 s", got.len());
    let span = got[got.len() - 1].0 - got[0].0;
    let rate = (got.len() - 1) as f64 / span.as_secs_f64();
    assert!((47.0..=53.0).contains(&rate), "{rate} packets/s");
    assert!(got[0].2, "marker on the first packet");
    for w in got.windows(2) {
        assert_eq!(
            w[1].1,
            w[0].1.wrapping_add(1),
            "contiguous sequence numbers"
        );
    }
    let pcm: Vec<i16> = got
        .iter()
        .flat_map(|p| p.3.iter().map(|&b| ulaw_to_linear(b)))
        .collect();
    let on = goertzel_power(&pcm, 1000.0);
    let expect = (pbxd::media::dsp::dbm0_to_peak(-10.0) * pcm.len() as f32 / 2.0).powi(2);
    assert!(
        (10.0 * (on / expect).log10()).abs() < 1.0,
        "{on} vs {expect}"
    );
    assert!(goertzel_power(&pcm, 700.0) < on * 1e-3);

    // Back to B's audio (A-law silence, transcoded: near-zero samples, no tone).
    s.stop_playback(Leg::A);
    let _ = collect(&phone_a, Duration::from_millis(100)).await;
    let after = collect(&phone_a, Duration::from_millis(300)).await;
    assert!(!after.is_empty(), "B is forwarded again");
    assert!(after
        .iter()
        .all(|p| p.3.iter().all(|&b| ulaw_to_linear(b).abs() <= 8)));
    talker.abort();

    s.play(Leg::A, Playback::confirmation()).expect("valid");
    let ev = timeout(Duration::from_secs(3), events.recv())
        .await
        .expect("PlaybackDone within 3 s");
    assert_eq!(ev, Some(MediaEvent::PlaybackDone { id: 5, leg: Leg::A }));
    let beeps = collect(&phone_a, Duration::from_millis(200)).await;
    assert!(
        beeps.len() >= 40,
        "{} packets of the 46 left in the buffer",
        beeps.len()
    );
    s.close().await.expect("report");
    assert_eq!(svc.active_sessions(), 0);
}

/// Music on hold from a file: a 16 kHz WAV (as an admin would upload) is loaded, decimated
/// and played to a PCMA phone, which hears its 600 Hz.
#[tokio::test]
async fn wav_file_is_played_as_music_on_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("moh.wav");
    let samples: Vec<u8> = (0..16000)
        .map(|i| (8000.0 * (std::f64::consts::TAU * 600.0 * f64::from(i) / 16000.0).sin()) as i16)
        .flat_map(i16::to_le_bytes)
        .collect();
    let mut f = b"RIFF".to_vec();
    f.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
    f.extend_from_slice(b"WAVEfmt ");
    f.extend_from_slice(&16u32.to_le_bytes());
    for v in [1u16, 1] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    f.extend_from_slice(&16000u32.to_le_bytes());
    f.extend_from_slice(&32000u32.to_le_bytes());
    for v in [2u16, 16] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    f.extend_from_slice(b"data");
    f.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    f.extend_from_slice(&samples);
    std::fs::write(&path, f).expect("write");
    let moh = load_wav_8k(&path).expect("valid WAV");
    assert_eq!(moh.len(), 8000);

    let svc = service(37100, 37199, Duration::from_secs(60));
    let phone = UdpSocket::bind((LO, 0)).await.expect("bind");
    let s = svc.open(6).expect("open");
    s.configure(
        Leg::B,
        leg(phone.local_addr().expect("addr"), Codec::Pcma, 8),
    );
    s.play(Leg::B, Playback::Pcm(moh)).expect("valid");
    let got = collect(&phone, Duration::from_millis(600)).await;
    assert!(got.len() >= 25, "{} packets", got.len());
    let pcm: Vec<i16> = got
        .iter()
        .flat_map(|p| p.3.iter().map(|&b| alaw_to_linear(b)))
        .collect();
    let on = goertzel_power(&pcm[160..], 600.0);
    assert!(on > 1e3 * goertzel_power(&pcm[160..], 1200.0));
    s.close().await.expect("report");
}
