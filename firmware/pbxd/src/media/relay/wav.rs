//! WAV loader for music on hold and announcements.
//!
//! Hand-written RIFF parsing (a few dozen lines, every read bounds-checked; no crate
//! needed for one fixed format). Accepted: uncompressed PCM (format 1, or
//! `WAVE_FORMAT_EXTENSIBLE` with the PCM sub-format), mono, 16 bit, 8000 Hz or 16000 Hz.
//! 16 kHz is decimated to 8 kHz through the relay's half-band low-pass. Everything else is
//! refused with a [`WavError`] saying what was found; nothing is converted silently.
//!
//! Chunks may come in any order; unknown chunks (`LIST`, `fact`, ...) are skipped. The
//! RIFF size field is not trusted (some writers leave it 0 or wrong), but every chunk must
//! lie within the file: a `data` chunk claiming more bytes than the file holds is refused
//! as truncated.

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use super::transcode::Resampler;

/// Largest file accepted: 32 MiB (about 35 minutes at 8 kHz, 17 at 16 kHz).
pub const MAX_WAV_BYTES: u64 = 32 << 20;

/// Why a WAV file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// The file could not be read.
    #[error("cannot read WAV file: {0}")]
    Io(#[from] std::io::Error),
    /// The file is larger than [`MAX_WAV_BYTES`].
    #[error("WAV file too large: {bytes} bytes (at most {max})")]
    TooLarge {
        /// Size of the file (or of what was read before giving up).
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// No `RIFF....WAVE` header.
    #[error("not a WAV file (no RIFF/WAVE header)")]
    NotWav,
    /// A chunk runs past the end of the file.
    #[error("WAV file truncated: chunk '{chunk}' needs {needed} bytes, {available} left")]
    Truncated {
        /// The chunk id (lossy text).
        chunk: String,
        /// Bytes the chunk header declares.
        needed: u64,
        /// Bytes actually left in the file.
        available: u64,
    },
    /// Structurally wrong (missing or short `fmt `, no `data`, odd sample data).
    #[error("malformed WAV file: {0}")]
    Malformed(&'static str),
    /// A well-formed WAV in a format we do not play.
    #[error(
        "unsupported WAV format: need 16-bit PCM mono at 8000 or 16000 Hz, got format tag \
         {format_tag:#06x}, {channels} channel(s), {sample_rate} Hz, {bits} bit"
    )]
    Unsupported {
        /// `wFormatTag` (1 = PCM; 0xFFFE = extensible, whose sub-format was not PCM).
        format_tag: u16,
        /// Channels.
        channels: u16,
        /// Samples per second.
        sample_rate: u32,
        /// Bits per sample.
        bits: u16,
    },
    /// The `data` chunk holds no samples.
    #[error("WAV file has no samples")]
    Empty,
}

/// Loads a WAV file as 8 kHz 16-bit mono samples, ready for
/// [`Playback::Pcm`](super::Playback::Pcm). See the module documentation for what is
/// accepted.
pub fn load_wav_8k(path: impl AsRef<Path>) -> Result<Arc<[i16]>, WavError> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    // Read one byte past the limit to tell "exactly the limit" from "too large" without
    // trusting the file's metadata.
    let n = file.take(MAX_WAV_BYTES + 1).read_to_end(&mut bytes)? as u64;
    if n > MAX_WAV_BYTES {
        return Err(WavError::TooLarge {
            bytes: n,
            max: MAX_WAV_BYTES,
        });
    }
    parse_wav_8k(&bytes)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The fields of a `fmt ` chunk we check.
#[derive(Debug, Clone, Copy)]
struct Format {
    tag: u16,
    channels: u16,
    rate: u32,
    block_align: u16,
    bits: u16,
    /// For `WAVE_FORMAT_EXTENSIBLE`: the first two bytes of the sub-format GUID.
    sub_tag: Option<u16>,
}

const WAVE_FORMAT_PCM: u16 = 1;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

fn parse_fmt(body: &[u8]) -> Result<Format, WavError> {
    let short = || WavError::Malformed("'fmt ' chunk shorter than 16 bytes");
    let tag = u16_at(body, 0).ok_or_else(short)?;
    Ok(Format {
        tag,
        channels: u16_at(body, 2).ok_or_else(short)?,
        rate: u32_at(body, 4).ok_or_else(short)?,
        block_align: u16_at(body, 12).ok_or_else(short)?,
        bits: u16_at(body, 14).ok_or_else(short)?,
        // cbSize at 16, valid bits at 18, channel mask at 20, sub-format GUID at 24.
        sub_tag: if tag == WAVE_FORMAT_EXTENSIBLE {
            Some(u16_at(body, 24).ok_or(WavError::Malformed(
                "extensible 'fmt ' chunk shorter than 40 bytes",
            ))?)
        } else {
            None
        },
    })
}

/// Parses WAV file contents; see [`load_wav_8k`].
pub fn parse_wav_8k(bytes: &[u8]) -> Result<Arc<[i16]>, WavError> {
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err(WavError::NotWav);
    }
    let mut fmt = None;
    let mut data = None;
    let mut pos = 12usize;
    // Chunk headers are 8 bytes; a few stray bytes at the end (padding some writers add)
    // are ignored.
    while let (Some(id), Some(size)) = (bytes.get(pos..pos + 4), u32_at(bytes, pos + 4)) {
        let start = pos + 8;
        let available = bytes.len() - start;
        let size = size as usize; // u32 fits usize on every target we build for
        if size > available {
            return Err(WavError::Truncated {
                chunk: String::from_utf8_lossy(id).into_owned(),
                needed: size as u64,
                available: available as u64,
            });
        }
        let body = &bytes[start..start + size];
        match id {
            b"fmt " if fmt.is_none() => fmt = Some(parse_fmt(body)?),
            b"data" if data.is_none() => data = Some(body),
            _ => {}
        }
        // Chunks are padded to an even length; the pad byte may be missing at the end.
        pos = start + size + (size & 1);
    }
    let fmt = fmt.ok_or(WavError::Malformed("no 'fmt ' chunk"))?;
    let data = data.ok_or(WavError::Malformed("no 'data' chunk"))?;
    let pcm = fmt.tag == WAVE_FORMAT_PCM
        || (fmt.tag == WAVE_FORMAT_EXTENSIBLE && fmt.sub_tag == Some(WAVE_FORMAT_PCM));
    if !pcm || fmt.channels != 1 || fmt.bits != 16 || !matches!(fmt.rate, 8000 | 16000) {
        return Err(WavError::Unsupported {
            format_tag: fmt.tag,
            channels: fmt.channels,
            sample_rate: fmt.rate,
            bits: fmt.bits,
        });
    }
    if fmt.block_align != 2 {
        return Err(WavError::Malformed(
            "block align is not 2 bytes for 16-bit mono",
        ));
    }
    if data.len() % 2 != 0 {
        return Err(WavError::Malformed(
            "'data' length is not a whole number of samples",
        ));
    }
    let samples: Vec<i16> = data
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    let samples = if fmt.rate == 16000 {
        decimate(&samples)
    } else {
        samples
    };
    if samples.is_empty() {
        return Err(WavError::Empty);
    }
    Ok(samples.into())
}

/// 16 kHz -> 8 kHz with the half-band low-pass, in 20 ms blocks so the filter's buffers
/// stay small.
fn decimate(wide: &[i16]) -> Vec<i16> {
    let mut rs = Resampler::new();
    let mut out = Vec::with_capacity(wide.len() / 2);
    for block in wide.chunks(320) {
        rs.down(block, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dsp::goertzel_power;
    use proptest::prelude::*;

    /// A canonical WAV file: `fmt ` (16 or 40 bytes) then `data`, optional extra chunk
    /// in between.
    fn wav(tag: u16, channels: u16, rate: u32, bits: u16, extra: bool, data: &[u8]) -> Vec<u8> {
        let mut fmt = Vec::new();
        let align = channels * bits / 8;
        fmt.extend_from_slice(&tag.to_le_bytes());
        fmt.extend_from_slice(&channels.to_le_bytes());
        fmt.extend_from_slice(&rate.to_le_bytes());
        fmt.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
        fmt.extend_from_slice(&align.to_le_bytes());
        fmt.extend_from_slice(&bits.to_le_bytes());
        if tag == WAVE_FORMAT_EXTENSIBLE {
            fmt.extend_from_slice(&22u16.to_le_bytes());
            fmt.extend_from_slice(&bits.to_le_bytes());
            fmt.extend_from_slice(&4u32.to_le_bytes());
            // KSDATAFORMAT_SUBTYPE_PCM
            fmt.extend_from_slice(&[
                1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71,
            ]);
        }
        let mut body = b"WAVE".to_vec();
        let mut chunk = |id: &[u8], b: &[u8]| {
            body.extend_from_slice(id);
            body.extend_from_slice(&(b.len() as u32).to_le_bytes());
            body.extend_from_slice(b);
            if b.len() % 2 == 1 {
                body.push(0);
            }
        };
        chunk(b"fmt ", &fmt);
        if extra {
            chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00pbxd\x00");
        }
        chunk(b"data", data);
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&(body.len() as u32).to_le_bytes());
        v.extend_from_slice(&body);
        v
    }

    fn sine(freq: f64, rate: f64, n: usize, amp: f64) -> Vec<i16> {
        (0..n)
            .map(|i| (amp * (std::f64::consts::TAU * freq * i as f64 / rate).sin()).round() as i16)
            .collect()
    }

    fn le(s: &[i16]) -> Vec<u8> {
        s.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn good_8k_file_loads_exactly() {
        let s = sine(440.0, 8000.0, 8000, 10000.0);
        for (tag, extra) in [(WAVE_FORMAT_PCM, false), (WAVE_FORMAT_EXTENSIBLE, true)] {
            let got = parse_wav_8k(&wav(tag, 1, 8000, 16, extra, &le(&s))).expect("valid");
            assert_eq!(&got[..], &s[..], "tag {tag:#x}");
        }
    }

    #[test]
    fn file_on_disk_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("moh.wav");
        let s = sine(440.0, 8000.0, 800, 10000.0);
        std::fs::write(&p, wav(1, 1, 8000, 16, false, &le(&s))).expect("write");
        assert_eq!(&load_wav_8k(&p).expect("valid")[..], &s[..]);
        assert!(matches!(
            load_wav_8k(dir.path().join("missing.wav")),
            Err(WavError::Io(_))
        ));
    }

    /// 16 kHz is halved: a 1 kHz tone stays 1 kHz at the same level; a 6 kHz tone (above
    /// the new Nyquist) is filtered out instead of folding to 2 kHz.
    #[test]
    fn sixteen_khz_is_decimated() {
        let s = sine(1000.0, 16000.0, 16000, 10000.0);
        let got = parse_wav_8k(&wav(1, 1, 16000, 16, false, &le(&s))).expect("valid");
        assert_eq!(got.len(), 8000);
        let tail = &got[100..];
        let p = goertzel_power(tail, 1000.0);
        let expect = (10000.0 * tail.len() as f32 / 2.0).powi(2);
        assert!((10.0 * (p / expect).log10()).abs() < 0.5, "level kept");
        assert!(goertzel_power(tail, 2000.0) < p * 1e-3);

        let s = sine(6000.0, 16000.0, 16000, 10000.0);
        let got = parse_wav_8k(&wav(1, 1, 16000, 16, false, &le(&s))).expect("valid");
        let alias = goertzel_power(&got[100..], 2000.0);
        assert!(alias < expect * 1e-3, "aliasing {alias} vs {expect}");
    }

    #[test]
    fn unsupported_formats_refused() {
        let d = le(&[0i16; 160]);
        for (tag, ch, rate, bits) in [
            (1, 2, 8000, 16),  // stereo
            (1, 1, 44100, 16), // CD rate
            (1, 1, 8000, 8),   // 8 bit
            (6, 1, 8000, 8),   // A-law
            (3, 1, 8000, 32),  // float
            (1, 1, 16000, 24), // 24 bit
        ] {
            let e = parse_wav_8k(&wav(tag, ch, rate, bits, false, &d)).unwrap_err();
            match e {
                WavError::Unsupported {
                    format_tag,
                    channels,
                    sample_rate,
                    bits: b,
                } => assert_eq!(
                    (format_tag, channels, sample_rate, b),
                    (tag, ch, rate, bits)
                ),
                other => panic!("{tag} {ch} {rate} {bits}: {other}"),
            }
        }
        let msg = parse_wav_8k(&wav(1, 2, 8000, 16, false, &d))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("2 channel(s)") && msg.contains("mono"),
            "{msg}"
        );
    }

    #[test]
    fn truncated_and_garbage_refused() {
        let good = wav(1, 1, 8000, 16, false, &le(&[5i16; 800]));
        // Cut anywhere in the data chunk: the declared size no longer fits.
        for cut in [good.len() - 1, good.len() - 100, 60] {
            assert!(
                matches!(
                    parse_wav_8k(&good[..cut]),
                    Err(WavError::Truncated { ref chunk, .. }) if chunk == "data"
                ),
                "cut at {cut}"
            );
        }
        // Cut inside the header or the fmt chunk.
        assert!(matches!(parse_wav_8k(&good[..10]), Err(WavError::NotWav)));
        assert!(matches!(
            parse_wav_8k(&good[..30]),
            Err(WavError::Truncated { .. })
        ));
        // Header only: no chunks.
        assert!(matches!(
            parse_wav_8k(&good[..12]),
            Err(WavError::Malformed("no 'fmt ' chunk"))
        ));
        assert!(matches!(
            parse_wav_8k(b"hello, this is not a wav file at all"),
            Err(WavError::NotWav)
        ));
        assert!(matches!(parse_wav_8k(&[]), Err(WavError::NotWav)));
        assert!(matches!(
            parse_wav_8k(&wav(1, 1, 8000, 16, false, &[])),
            Err(WavError::Empty)
        ));
        assert!(matches!(
            parse_wav_8k(&wav(1, 1, 8000, 16, false, &[1, 2, 3])),
            Err(WavError::Malformed(_))
        ));
    }

    #[test]
    fn too_large_file_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("big.wav");
        let f = std::fs::File::create(&p).expect("create");
        f.set_len(MAX_WAV_BYTES + 10).expect("sparse file");
        assert!(matches!(
            load_wav_8k(&p),
            Err(WavError::TooLarge { bytes, .. }) if bytes == MAX_WAV_BYTES + 1
        ));
    }

    proptest! {
        /// Arbitrary bytes, and valid files with arbitrary corruption, never panic.
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_wav_8k(&data);
            let mut with_header = b"RIFF\x00\x00\x00\x00WAVE".to_vec();
            with_header.extend_from_slice(&data);
            let _ = parse_wav_8k(&with_header);
        }

        #[test]
        fn corrupted_valid_files_never_panic(
            flips in proptest::collection::vec((0usize..400, any::<u8>()), 1..8),
            cut in 0usize..400,
            rate in prop_oneof![Just(8000u32), Just(16000u32)],
        ) {
            let mut f = wav(1, 1, rate, 16, true, &le(&[3i16; 150]));
            for (at, v) in flips {
                let n = f.len();
                f[at % n] = v;
            }
            f.truncate(cut.max(1));
            if let Ok(s) = parse_wav_8k(&f) {
                prop_assert!(!s.is_empty());
            }
        }
    }
}
