//! The ALSA backend against alsa-lib's user-space plugins, without a sound card: the
//! `file` plugin (defined in alsa.conf with arguments: `file:'PATH',raw`) records what the
//! port played, `null` gives silence to capture.
#![cfg(feature = "alsa")]

use std::time::Duration;

use pbx_hal::audio::alsa::AlsaAudio;
use pbx_hal::audio::{decode, encode, AudioConfig, AudioError, AudioPort, PcmCodec};

fn config(codec: PcmCodec, ms: u64) -> AudioConfig {
    AudioConfig::new(codec, Duration::from_millis(ms)).expect("10 or 20 ms")
}

/// Frame `k` of a test signal: a ramp naming the frame, so order and loss show.
fn frame(k: usize, len: usize) -> Vec<i16> {
    (0..len)
        .map(|i| ((k * len + i) as i32 * 53 % 16_000 - 8000) as i16)
        .collect()
}

#[test]
fn the_file_plugin_records_exactly_the_frames_written() {
    for (codec, ms) in [
        (PcmCodec::Linear16, 20),
        (PcmCodec::ALaw, 20),
        (PcmCodec::MuLaw, 10),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.raw");
        let name = format!("file:'{}',raw", path.display());
        let cfg = config(codec, ms);
        let mut port = AlsaAudio::open(Some(&name), None, cfg).unwrap();
        let mut expected = Vec::new();
        for k in 0..50 {
            let f = frame(k, cfg.frame_len());
            port.write_frame(&f).unwrap();
            encode(codec, &f, &mut expected);
        }
        port.drain().unwrap();
        assert_eq!(port.xruns(), 0);
        drop(port); // closing flushes the plugin's file buffer
        let got = std::fs::read(&path).unwrap();
        assert_eq!(
            got.len(),
            50 * cfg.frame_len() * cfg.bytes_per_sample(),
            "{codec:?}"
        );
        assert!(got == expected, "{codec:?}: recorded bytes differ");
    }
}

#[test]
fn capture_from_null_gives_the_plugins_zero_fill() {
    for codec in [PcmCodec::Linear16, PcmCodec::ALaw, PcmCodec::MuLaw] {
        let mut port = AlsaAudio::open(None, Some("null"), config(codec, 20)).unwrap();
        let mut f = [123i16; 160];
        for _ in 0..10 {
            port.read_frame(&mut f).unwrap();
            // The null plugin fills the buffer with zero bytes whatever the format, and
            // the port decodes them in the port's coding.
            let mut zero = [0i16; 1];
            decode(codec, &[0, 0], &mut zero);
            assert!(f.iter().all(|&s| s == zero[0]), "{codec:?}: {:?}", &f[..4]);
        }
    }
}

#[test]
fn playback_recovers_after_the_stream_was_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.raw");
    let name = format!("file:'{}',raw", path.display());
    let cfg = config(PcmCodec::Linear16, 20);
    let mut port = AlsaAudio::open(Some(&name), None, cfg).unwrap();
    let mut expected = Vec::new();
    for k in 0..20 {
        if k % 5 == 4 {
            // Stopped between frames (a tone cut short): the next write must prepare
            // the stream again and carry on.
            port.discard_playback().unwrap();
        }
        let f = frame(k, 160);
        port.write_frame(&f).unwrap();
        encode(PcmCodec::Linear16, &f, &mut expected);
    }
    port.drain().unwrap();
    drop(port);
    // The null slave consumes at once, so nothing queued was lost to the drops.
    assert!(std::fs::read(&path).unwrap() == expected);
}

#[test]
fn bad_use_gives_clear_errors() {
    let cfg = config(PcmCodec::ALaw, 20);
    match AlsaAudio::open(Some("pbx_no_such_pcm"), None, cfg) {
        Err(AudioError::Alsa { device, op, .. }) => {
            assert_eq!(device, "pbx_no_such_pcm");
            assert_eq!(op, "snd_pcm_open");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        AlsaAudio::open(Some("nul\0l"), None, cfg),
        Err(AudioError::Unsupported { .. })
    ));
    let mut port = AlsaAudio::open(Some("null"), None, cfg).unwrap();
    assert!(matches!(
        port.read_frame(&mut [0i16; 160]),
        Err(AudioError::NoDirection("capture"))
    ));
    assert!(matches!(
        port.write_frame(&[0i16; 100]),
        Err(AudioError::FrameLength {
            expected: 160,
            got: 100
        })
    ));
}
