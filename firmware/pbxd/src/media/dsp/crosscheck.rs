//! Cross-checks of our DSP against independent implementations:
//! - spandsp's ADSI receiver (C, `tests/dsp/adsi_rx.c`) decodes our ETSI caller ID;
//! - spandsp's DTMF generator (`tests/dsp/dtmf_gen.c`) makes digits our detector must
//!   find, inside the level and twist limits, and must not find outside them;
//! - espeak-ng speech (several voices and pitches, resampled to 8 kHz here) gives no
//!   false digits.
//!
//! The C programs are compiled with gcc against libspandsp into a temporary directory.
//! Without gcc, spandsp's headers or espeak-ng a test prints `SKIPPED: <why>` and
//! returns; with `PBX_DSP_CROSSCHECK=require` (set by `scripts/test.d/dsp.sh`) a missing
//! tool fails the test instead, so CI cannot pass by skipping.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::callerid::{Absence, CallerId, CidDateTime};
use super::dtmf::{DtmfDetector, DtmfEventKind};
use super::rms_dbm0;

fn required() -> bool {
    std::env::var("PBX_DSP_CROSSCHECK").is_ok_and(|v| v == "require")
}

/// Reports a missing tool: a skip, or a failure when required.
fn skip(why: &str) {
    assert!(!required(), "PBX_DSP_CROSSCHECK=require but {why}");
    eprintln!("SKIPPED: {why}");
}

/// Compiles `tests/dsp/<name>.c` against spandsp into `dir`; `None` (after reporting the
/// skip) when that is not possible here.
fn build(name: &str, dir: &Path) -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/dsp")
        .join(format!("{name}.c"));
    let exe = dir.join(name);
    let out = Command::new("gcc")
        .args(["-O1", "-Wall", "-o"])
        .arg(&exe)
        .arg(&src)
        .args(["-lspandsp", "-lm"])
        .output();
    match out {
        Err(e) => {
            skip(&format!("gcc not runnable: {e}"));
            None
        }
        Ok(o) if !o.status.success() => {
            skip(&format!(
                "{name}.c does not build against spandsp (libspandsp-dev missing?): {}",
                String::from_utf8_lossy(&o.stderr)
            ));
            None
        }
        Ok(_) => Some(exe),
    }
}

fn write_raw(path: &Path, samples: &[i16]) {
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn read_raw(path: &Path) -> Vec<i16> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Digits whose start our detector reports, fed in 20 ms frames.
fn detect(samples: &[i16]) -> String {
    let mut det = DtmfDetector::new();
    let mut digits = String::new();
    for frame in samples.chunks(160) {
        det.handle_samples(frame);
        while let Some(ev) = det.poll_event() {
            if ev.kind == DtmfEventKind::Start {
                digits.push(ev.digit);
            }
        }
    }
    digits
}

#[test]
fn spandsp_adsi_receiver_decodes_our_caller_id() {
    let dir = tempfile::tempdir().unwrap();
    let Some(rx) = build("adsi_rx", dir.path()) else {
        return;
    };
    let full = CallerId {
        datetime: Some(CidDateTime {
            month: 11,
            day: 21,
            hour: 9,
            minute: 5,
        }),
        number: Some("03012345678".into()),
        name: Some("Anna Muster".into()),
        ..CallerId::default()
    };
    let private = CallerId {
        number_absent: Some(Absence::Private),
        name_absent: Some(Absence::Private),
        ..CallerId::default()
    };
    let unavailable_number = CallerId {
        number_absent: Some(Absence::Unavailable),
        name: Some("Front door".into()),
        ..CallerId::default()
    };
    let cases = [
        (
            full,
            vec![
                "field 01 11210905",
                "field 02 03012345678",
                "field 07 Anna Muster",
            ],
        ),
        (private, vec!["field 04 P", "field 08 P"]),
        (
            unavailable_number,
            vec!["field 04 O", "field 07 Front door"],
        ),
    ];
    for (cid, fields) in cases {
        let mut burst = vec![0i16; 800];
        burst.extend(cid.modulate().unwrap());
        burst.extend(std::iter::repeat_n(0, 800));
        let raw = dir.path().join("cid.raw");
        write_raw(&raw, &burst);
        let out = Command::new(&rx).arg(&raw).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        let mut want = vec!["message 80"];
        want.extend(&fields);
        want.push("messages 1");
        assert_eq!(lines, want, "{cid:?}");
    }
}

#[test]
fn our_detector_finds_spandsp_dtmf_within_the_limits_only() {
    let dir = tempfile::tempdir().unwrap();
    let Some(tx) = build("dtmf_gen", dir.path()) else {
        return;
    };
    const ALL: &str = "0123456789*#ABCD";
    // (row level dBm0, column minus row dB, on ms, off ms, expected)
    let cases: [(i32, i32, u32, u32, &str); 11] = [
        (-10, 0, 50, 50, ALL),
        (-3, 0, 50, 50, ALL),
        // Level limit -30 dBm0 per tone: -28 accepted, -33 rejected.
        (-28, 0, 50, 50, ALL),
        (-33, 0, 50, 50, ""),
        // Twist: column up to 4 dB above row, row up to 8 dB above column.
        (-12, 3, 50, 50, ALL),
        (-8, -7, 50, 50, ALL),
        (-12, 6, 50, 50, ""),
        (-6, -10, 50, 50, ""),
        // Duration: 40 ms tones with 40 ms pauses are digits, 20 ms tones are not.
        (-10, 0, 40, 40, ALL),
        (-10, 0, 20, 60, ""),
        // A typical phone: fast dialling, a little normal twist.
        (-8, 2, 70, 70, "0301234567#"),
    ];
    for (level, twist, on, off, want) in cases {
        let digits = if want.is_empty() { ALL } else { want };
        let raw = dir.path().join("dtmf.raw");
        let st = Command::new(&tx)
            .arg(digits)
            .args([level, twist, on as i32, off as i32].map(|v| v.to_string()))
            .arg(&raw)
            .status()
            .unwrap();
        assert!(st.success());
        let samples = read_raw(&raw);
        assert_eq!(
            detect(&samples),
            want,
            "spandsp DTMF {digits} at {level} dBm0, twist {twist} dB, {on}/{off} ms"
        );
    }
}

/// A mono 16-bit WAV's sample rate and samples.
fn read_wav(path: &Path) -> (u32, Vec<i16>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..4], b"RIFF");
    let rate = u32::from_le_bytes([b[24], b[25], b[26], b[27]]);
    let mut pos = 12;
    while pos + 8 <= b.len() {
        let id = &b[pos..pos + 4];
        let len = u32::from_le_bytes([b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]]) as usize;
        if id == b"data" {
            let end = (pos + 8 + len).min(b.len());
            let samples = b[pos + 8..end]
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
            return (rate, samples);
        }
        pos += 8 + len + (len & 1);
    }
    panic!("no data chunk in {}", path.display());
}

/// Windowed-sinc resampling to 8 kHz (cut-off 3.6 kHz, 64 taps, Hann window).
fn resample_to_8k(rate: u32, x: &[i16]) -> Vec<f64> {
    const HALF: i64 = 32;
    let ratio = f64::from(rate) / 8000.0;
    let fc = 3600.0 / f64::from(rate);
    let n_out = (x.len() as f64 / ratio) as usize;
    (0..n_out)
        .map(|n| {
            let t = n as f64 * ratio;
            let centre = t.floor() as i64;
            let mut acc = 0.0;
            for k in centre - HALF + 1..=centre + HALF {
                let Some(&s) = usize::try_from(k).ok().and_then(|k| x.get(k)) else {
                    continue;
                };
                let d = t - k as f64;
                let arg = 2.0 * fc * d;
                let sinc = if arg.abs() < 1e-9 {
                    1.0
                } else {
                    (std::f64::consts::PI * arg).sin() / (std::f64::consts::PI * arg)
                };
                let w = 0.5 + 0.5 * (std::f64::consts::PI * d / HALF as f64).cos();
                acc += f64::from(s) * 2.0 * fc * sinc * w;
            }
            acc
        })
        .collect()
}

#[test]
fn espeak_speech_gives_no_false_digits() {
    let dir = tempfile::tempdir().unwrap();
    let texts = [
        (
            "en",
            "Hello, this is the office telephone system. Please hold the line while we \
             connect your call. The quick brown fox jumps over the lazy dog. \
             Seven, eight, nine, and one two three four five six.",
        ),
        (
            "de",
            "Guten Tag, hier ist die Telefonanlage der Firma Müller. Bitte warten Sie, \
             Sie werden verbunden. Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich.",
        ),
        (
            "fr",
            "Bonjour, vous êtes bien au standard. Veuillez patienter, nous transférons \
             votre appel. Portez ce vieux whisky au juge blond qui fume.",
        ),
    ];
    let mut seconds = 0.0;
    for (voice, text) in texts {
        for pitch in ["20", "80"] {
            let wav = dir.path().join(format!("{voice}-{pitch}.wav"));
            let st = Command::new("espeak-ng")
                .args(["-v", voice, "-p", pitch, "-w"])
                .arg(&wav)
                .arg(text)
                .status();
            match st {
                Ok(s) if s.success() => {}
                other => {
                    skip(&format!("espeak-ng not usable: {other:?}"));
                    return;
                }
            }
            let (rate, raw) = read_wav(&wav);
            let speech = resample_to_8k(rate, &raw);
            seconds += speech.len() as f64 / 8000.0;
            // Normalise the active speech to a loud and a normal telephone level.
            let pcm: Vec<i16> = speech.iter().map(|&s| s as i16).collect();
            let active: Vec<i16> = pcm.iter().copied().filter(|s| s.abs() > 300).collect();
            let level = rms_dbm0(&active);
            for target in [-8.0f32, -20.0] {
                let gain = 10f64.powf(f64::from(target - level) / 20.0);
                let scaled: Vec<i16> = speech
                    .iter()
                    .map(|&s| (s * gain).round().clamp(-32768.0, 32767.0) as i16)
                    .collect();
                assert_eq!(
                    detect(&scaled),
                    "",
                    "espeak-ng -v {voice} -p {pitch} at {target} dBm0 talked off a digit"
                );
            }
        }
    }
    assert!(seconds > 30.0, "only {seconds:.1} s of speech");
    eprintln!("espeak-ng: {seconds:.1} s of speech, no false digits");
}
