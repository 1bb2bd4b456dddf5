//! The GSM module's voice through a real ALSA PCM (`--modem-pcm`), without a sound card:
//! alsa-lib's `file` plugin plays what the module would hear into a file and captures
//! what the module says from one, named in an asoundrc loaded through
//! `ALSA_CONFIG_PATH`. The real capture thread and the real RTP bridge run; the test is
//! the call's relay port. One test in this binary: alsa-lib reads the variable once.
#![cfg(feature = "alsa")]

use std::net::Ipv4Addr;
use std::time::Duration;

use pbx_e2e::alsa_file::{file_pcm_asoundrc, tone_bytes};
use pbxd::gsm::alsa_pcm::AlsaPcm;
use pbxd::gsm::audio::Pcm;
use pbxd::media::dsp::goertzel_power;
use pbxd::media::relay::g711;

/// Share of a block's power at `hz`, in dB (0: a pure tone at `hz`).
fn tone_db(x: &[i16], hz: f32) -> f64 {
    let total: f64 = x.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    if total <= 0.0 {
        return f64::NEG_INFINITY;
    }
    let rel = 2.0 * f64::from(goertzel_power(x, hz)) / (x.len() as f64 * total);
    10.0 * rel.max(1e-12).log10()
}

/// One A-law RTP packet of `samples`.
fn rtp(seq: u16, ts: u32, samples: &[i16]) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend(samples.iter().map(|&s| g711::linear_to_alaw(s)));
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_modules_alsa_pcm_carries_the_call_audio_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let said = dir.path().join("module-says.raw");
    let heard = dir.path().join("module-hears.raw");
    // The far end on the mobile network says 1 kHz for 4 s.
    std::fs::write(&said, tone_bytes(1000.0, 4.0)).unwrap();
    let rc = dir.path().join("asoundrc");
    std::fs::write(&rc, file_pcm_asoundrc("gsm_module", &heard, &said)).unwrap();
    // Set before alsa-lib is first used in this process (the only test here).
    std::env::set_var("ALSA_CONFIG_PATH", &rc);

    // A PCM that does not exist: the bridge still gets silence frames, so a call on a
    // misconfigured box stays up (without audio) instead of timing out.
    let mut missing = AlsaPcm::start("no_such_pcm").unwrap();
    assert_eq!(missing.read(), Some(vec![0; 160]));

    let pcm = AlsaPcm::start("gsm_module").unwrap();
    let bridge = pbxd::gsm::audio::spawn(Ipv4Addr::LOCALHOST.into(), pcm)
        .await
        .unwrap();
    let relay = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    bridge
        .media
        .send(Some(relay.local_addr().unwrap().port()))
        .unwrap();

    // The call says 400 Hz to the module for 1.5 s while the module's audio arrives.
    let speech: Vec<i16> = (0..160 * 75)
        .map(|i| ((2.0 * std::f64::consts::PI * 400.0 * i as f64 / 8000.0).sin() * 8000.0) as i16)
        .collect();
    let mut from_module = Vec::new();
    let mut buf = [0u8; 1500];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for (k, frame) in speech.chunks(160).enumerate() {
        tick.tick().await;
        let pkt = rtp(k as u16, (k * 160) as u32, frame);
        relay.send_to(&pkt, bridge.addr).await.unwrap();
        while let Ok((n, _)) = relay.try_recv_from(&mut buf) {
            if n > 12 && buf[1] & 0x7f == 8 {
                from_module.extend(buf[12..n].iter().map(|&b| g711::alaw_to_linear(b)));
            }
        }
    }
    // The bridge sent the module's 1 kHz to the call.
    let blocks_1k = from_module
        .chunks_exact(160)
        .filter(|b| tone_db(b, 1000.0) > -1.0)
        .count();
    assert!(
        blocks_1k >= 30,
        "only {blocks_1k} of {} RTP frames carry the module's 1 kHz",
        from_module.len() / 160
    );

    // Hanging up the bridge ends the PCM thread, which closes the PCM (flushing the file).
    drop(bridge);
    let mut played = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let bytes = std::fs::read(&heard).unwrap_or_default();
        played = bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect::<Vec<_>>();
        let blocks = played
            .chunks_exact(160)
            .filter(|b| tone_db(b, 400.0) > -1.0)
            .count();
        if blocks >= 30 {
            return;
        }
    }
    let blocks = played
        .chunks_exact(160)
        .filter(|b| tone_db(b, 400.0) > -1.0)
        .count();
    panic!(
        "the module's PCM played only {blocks} frames of the call's 400 Hz ({} frames in all)",
        played.len() / 160
    );
}
