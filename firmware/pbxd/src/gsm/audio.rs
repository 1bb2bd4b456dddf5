//! The module's voice audio ↔ RTP, as the analog ports bridge theirs (`line::sim`):
//! every 20 ms, 8 kHz linear PCM from the module goes as G.711 A-law RTP to the relay
//! port of the module's call, and the call's RTP from the relay goes through a jitter
//! buffer (which conceals loss) into the module.
//!
//! Where the PCM comes from is a [`Pcm`]: the EC25 emulator's in-memory audio (tests,
//! `--hardware sim`), a real module's PCM through ALSA (`--modem-pcm`, `alsa_pcm`), or
//! none ([`NoPcm`]: calls connect, without audio).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pbx_hal::modem::emulator::Ec25;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::clock;
use crate::media::jitter::{FrameKind, JitterBuffer, JitterConfig, RtpAudio};
use crate::media::relay::g711;

/// Samples per 20 ms frame at 8 kHz.
const FRAME: usize = 160;
/// RTP payload type of G.711 A-law.
const PT_PCMA: u8 = 8;

/// The module's PCM interface, 20 ms at a time.
pub trait Pcm: Send + 'static {
    /// The far end's voice for the next 20 ms (`None`: no call audio now).
    fn read(&mut self) -> Option<Vec<i16>>;
    /// Audio for the far end.
    fn write(&mut self, frame: &[i16]);
}

/// A module whose PCM is not connected (no `--modem-pcm`): silence both ways. Silence is still sent, so the relay's media time-out does
/// not end the call.
#[derive(Debug, Default)]
pub struct NoPcm;

impl Pcm for NoPcm {
    fn read(&mut self) -> Option<Vec<i16>> {
        Some(vec![0; FRAME])
    }
    fn write(&mut self, _: &[i16]) {}
}

/// The emulator's in-memory PCM.
impl Pcm for Arc<Mutex<Ec25>> {
    fn read(&mut self) -> Option<Vec<i16>> {
        self.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pcm_from_module()
    }
    fn write(&mut self, frame: &[i16]) {
        self.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pcm_to_module(frame);
    }
}

/// The running bridge: the address GSM legs give as the module's media, and where the
/// SIP task says which relay port the call uses.
#[derive(Debug)]
pub struct AudioBridge {
    /// The bridge's RTP address.
    pub addr: SocketAddr,
    /// The relay port of the module's call (`None`: no call).
    pub media: watch::Sender<Option<u16>>,
}

/// Starts the bridge on `relay_ip` (where the RTP relay listens) over `pcm`.
pub async fn spawn(relay_ip: IpAddr, pcm: impl Pcm) -> std::io::Result<AudioBridge> {
    let relay_ip = if relay_ip.is_unspecified() {
        IpAddr::from(Ipv4Addr::LOCALHOST)
    } else {
        relay_ip
    };
    let socket = UdpSocket::bind(SocketAddr::new(relay_ip, 0)).await?;
    let addr = socket.local_addr()?;
    let jitter = JitterBuffer::new(JitterConfig::adaptive())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let (media, rx) = watch::channel(None);
    tokio::spawn(run(socket, relay_ip, pcm, rx, jitter));
    Ok(AudioBridge { addr, media })
}

async fn run(
    socket: UdpSocket,
    relay_ip: IpAddr,
    mut pcm: impl Pcm,
    mut media: watch::Receiver<Option<u16>>,
    mut jitter: JitterBuffer,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut target: Option<SocketAddr> = None;
    let mut rtp = RtpOut {
        seq: rand::random(),
        ts: rand::random(),
        ssrc: rand::random(),
    };
    let mut buf = [0u8; 1500];
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            r = media.changed() => {
                if r.is_err() {
                    return;
                }
                target = media.borrow_and_update().map(|p| SocketAddr::new(relay_ip, p));
                jitter.reset();
                continue;
            }
        }
        let now = clock::now();
        // The far end's voice to the call.
        if let (Some(frame), Some(to)) = (pcm.read(), target) {
            if let Err(e) = socket.try_send_to(&rtp.packet(&frame), to) {
                debug!("GSM audio RTP: {e}");
            }
        }
        // The call's audio to the far end, through the jitter buffer.
        while let Ok((n, _)) = socket.try_recv_from(&mut buf) {
            if let (Some(pkt), true) = (decode(&buf[..n]), target.is_some()) {
                let (seq, timestamp, samples) = pkt;
                jitter.handle_packet(
                    now,
                    RtpAudio {
                        seq,
                        timestamp,
                        samples: &samples,
                    },
                );
            }
        }
        if target.is_some() {
            let mut frame = [0i16; FRAME];
            if jitter.poll_frame(now, &mut frame) != FrameKind::Silence {
                pcm.write(&frame);
            } else {
                pcm.write(&[0; FRAME]);
            }
        }
    }
}

struct RtpOut {
    seq: u16,
    ts: u32,
    ssrc: u32,
}

impl RtpOut {
    /// One A-law packet of `frame`.
    fn packet(&mut self, frame: &[i16]) -> Vec<u8> {
        let mut p = Vec::with_capacity(12 + frame.len());
        p.extend_from_slice(&[0x80, PT_PCMA]);
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&self.ts.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        p.extend(frame.iter().map(|&s| g711::linear_to_alaw(s)));
        self.seq = self.seq.wrapping_add(1);
        // A frame is 160 samples.
        self.ts = self
            .ts
            .wrapping_add(u32::try_from(frame.len()).unwrap_or(0));
        p
    }
}

/// Sequence number, timestamp and linear samples of a G.711 A-law packet.
fn decode(pkt: &[u8]) -> Option<(u16, u32, Vec<i16>)> {
    let r = rtp_rs::RtpReader::new(pkt).ok()?;
    if r.payload_type() != PT_PCMA {
        warn!(pt = r.payload_type(), "GSM audio: not A-law, dropped");
        return None;
    }
    Some((
        u16::from(r.sequence_number()),
        r.timestamp(),
        r.payload()
            .iter()
            .map(|&b| g711::alaw_to_linear(b))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PCM that says a constant and remembers what it heard.
    struct Probe(Arc<Mutex<Vec<i16>>>);

    impl Pcm for Probe {
        fn read(&mut self) -> Option<Vec<i16>> {
            Some(vec![1000; FRAME])
        }
        fn write(&mut self, frame: &[i16]) {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(frame);
        }
    }

    #[tokio::test]
    async fn pcm_goes_out_as_alaw_rtp_and_rtp_comes_back_as_pcm() {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let bridge = spawn(IpAddr::from(Ipv4Addr::LOCALHOST), Probe(heard.clone()))
            .await
            .unwrap();
        let relay = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        bridge
            .media
            .send_replace(Some(relay.local_addr().unwrap().port()));
        let mut buf = [0u8; 1500];
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), relay.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(from, bridge.addr);
        let (_, _, samples) = decode(&buf[..n]).unwrap();
        assert_eq!(samples.len(), FRAME);
        assert!(
            samples.iter().all(|&s| (s - 1000).abs() < 40),
            "{samples:?}"
        );
        // The relay's audio reaches the module.
        let mut out = RtpOut {
            seq: 1,
            ts: 0,
            ssrc: 7,
        };
        for _ in 0..30 {
            relay
                .send_to(&out.packet(&[-2000; FRAME]), bridge.addr)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let got = heard.lock().unwrap().clone();
        assert!(
            got.iter().any(|&s| (s + 2000).abs() < 80),
            "no relayed audio reached the module"
        );
    }
}
