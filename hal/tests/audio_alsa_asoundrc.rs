//! The ALSA backend with PCMs named in an asoundrc the test writes (as a board's
//! configuration would name the TDM slots), loaded through `ALSA_CONFIG_PATH`. One test
//! in this binary: the variable is process-wide and alsa-lib reads it once.
#![cfg(feature = "alsa")]

use std::time::Duration;

use pbx_hal::audio::alsa::AlsaAudio;
use pbx_hal::audio::{decode, encode, AudioConfig, AudioPort, PcmCodec};

#[test]
fn named_pcms_from_an_asoundrc_play_to_a_file_and_capture_from_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("port1-tx.raw");
    let input = dir.path().join("port1-rx.raw");
    // What the "phone" says: 30 frames of A-law.
    let cfg = AudioConfig::new(PcmCodec::ALaw, Duration::from_millis(20)).unwrap();
    let spoken: Vec<i16> = (0..30 * 160)
        .map(|i| ((i as f64 * 0.3).sin() * 9000.0) as i16)
        .collect();
    let mut spoken_bytes = Vec::new();
    encode(PcmCodec::ALaw, &spoken, &mut spoken_bytes);
    std::fs::write(&input, &spoken_bytes).unwrap();
    let rc = dir.path().join("asoundrc");
    std::fs::write(
        &rc,
        format!(
            "pcm.pbx_port1_tx {{\n  type file\n  slave.pcm {{ type null }}\n  file \"{}\"\n  format raw\n}}\n\
             pcm.pbx_port1_rx {{\n  type file\n  slave.pcm {{ type null }}\n  file \"/dev/null\"\n  infile \"{}\"\n  format raw\n}}\n",
            out.display(),
            input.display()
        ),
    )
    .unwrap();
    // Set before alsa-lib is first used in this process (the only test here).
    std::env::set_var("ALSA_CONFIG_PATH", &rc);

    let mut port = AlsaAudio::open(Some("pbx_port1_tx"), Some("pbx_port1_rx"), cfg).unwrap();
    let mut heard = Vec::new();
    let mut f = [0i16; 160];
    for _ in 0..30 {
        port.read_frame(&mut f).unwrap();
        heard.extend_from_slice(&f);
        // Echo it back: what the port plays must reach the file unchanged.
        port.write_frame(&f).unwrap();
    }
    port.drain().unwrap();
    drop(port);
    let mut expected = vec![0i16; spoken.len()];
    decode(PcmCodec::ALaw, &spoken_bytes, &mut expected);
    assert!(heard == expected, "captured audio differs from the infile");
    assert!(
        std::fs::read(&out).unwrap() == spoken_bytes,
        "played audio differs"
    );
}
