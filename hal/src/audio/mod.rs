//! PCM audio of the analog ports: one frame source and sink per port.
//!
//! At this interface audio is always 8 kHz mono 16-bit linear, one frame per period
//! (10 or 20 ms); a backend converts to the wire coding ([`PcmCodec`]) itself.
//!
//! - [`AudioPort`]: the trait the line shell uses.
//! - [`memory::MemoryAudio`]: in-memory frames for tests and the emulator path.
//! - `alsa::AlsaAudio` (feature `alsa`, on by default): the SLIC's PCM highway through
//!   ALSA (a TDM PCM per port, or any PCM name), with XRUN recovery.
//! - [`g711`]: A-law and µ-law coding.

#[cfg(feature = "alsa")]
pub mod alsa;
pub mod g711;
pub mod memory;

use std::time::Duration;

pub use crate::fxs::PcmCodec;

/// Sample rate of the PCM highway, in Hz.
pub const SAMPLE_RATE: u32 = 8000;

/// Coding and period of a port's audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudioConfig {
    /// Coding on the wire (the SLIC's timeslot coding).
    pub codec: PcmCodec,
    /// Samples per frame: 80 (10 ms) or 160 (20 ms).
    frame_len: usize,
}

impl AudioConfig {
    /// `codec` with frames of `period`, which must be 10 or 20 ms.
    pub fn new(codec: PcmCodec, period: Duration) -> Result<Self, AudioError> {
        let frame_len = match period.as_micros() {
            10_000 => 80,
            20_000 => 160,
            _ => return Err(AudioError::BadPeriod(period)),
        };
        Ok(Self { codec, frame_len })
    }

    /// Samples per frame.
    #[must_use]
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// Bytes per sample on the wire.
    #[must_use]
    pub fn bytes_per_sample(&self) -> usize {
        match self.codec {
            PcmCodec::Linear16 => 2,
            PcmCodec::ALaw | PcmCodec::MuLaw => 1,
        }
    }
}

impl Default for AudioConfig {
    /// A-law, 20 ms: the European SLIC default.
    fn default() -> Self {
        Self {
            codec: PcmCodec::ALaw,
            frame_len: 160,
        }
    }
}

/// Errors of the audio backends.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// Only 10 and 20 ms periods are supported.
    #[error("unsupported audio period {0:?} (10 or 20 ms)")]
    BadPeriod(Duration),
    /// A frame handed in or asked for has the wrong number of samples.
    #[error("frame of {got} samples, expected {expected}")]
    FrameLength {
        /// The port's frame length.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// The port was opened without this direction.
    #[error("audio port has no {0} direction")]
    NoDirection(&'static str),
    /// The device does not do what the port needs (rate, format, period).
    #[error("PCM {device}: {what}")]
    Unsupported {
        /// The PCM name.
        device: String,
        /// What it refused.
        what: String,
    },
    /// An ALSA call failed (after recovery, where recovery applies).
    #[cfg(feature = "alsa")]
    #[error("PCM {device}: {op}: {source}")]
    Alsa {
        /// The PCM name.
        device: String,
        /// The operation.
        op: &'static str,
        /// alsa-lib's error.
        source: ::alsa::Error,
    },
}

/// Audio frames of one port; 8 kHz mono 16-bit linear at this interface.
pub trait AudioPort {
    /// Error of the backend.
    type Error;

    /// Samples per frame.
    fn frame_len(&self) -> usize;
    /// The next frame from the phone into `out` (`frame_len` samples). Blocks until one
    /// period has been captured (the PCM clock paces the caller).
    fn read_frame(&mut self, out: &mut [i16]) -> Result<(), Self::Error>;
    /// Queues one frame (`frame_len` samples) towards the phone.
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), Self::Error>;
}

/// Checks a frame's length against the port's.
fn check_len(expected: usize, got: usize) -> Result<(), AudioError> {
    if expected == got {
        Ok(())
    } else {
        Err(AudioError::FrameLength { expected, got })
    }
}

/// Encodes linear samples to the wire coding, appending to `out`.
pub fn encode(codec: PcmCodec, samples: &[i16], out: &mut Vec<u8>) {
    match codec {
        PcmCodec::Linear16 => out.extend(samples.iter().flat_map(|s| s.to_le_bytes())),
        PcmCodec::ALaw => out.extend(samples.iter().map(|&s| g711::linear_to_alaw(s))),
        PcmCodec::MuLaw => out.extend(samples.iter().map(|&s| g711::linear_to_ulaw(s))),
    }
}

/// Decodes wire bytes into `out` (one sample per slot of `out`; missing bytes give 0).
pub fn decode(codec: PcmCodec, bytes: &[u8], out: &mut [i16]) {
    match codec {
        PcmCodec::Linear16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = i16::from_le_bytes([b[0], b[1]]);
            }
        }
        PcmCodec::ALaw => {
            for (o, &b) in out.iter_mut().zip(bytes) {
                *o = g711::alaw_to_linear(b);
            }
        }
        PcmCodec::MuLaw => {
            for (o, &b) in out.iter_mut().zip(bytes) {
                *o = g711::ulaw_to_linear(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        let ms = Duration::from_millis;
        assert_eq!(
            AudioConfig::new(PcmCodec::ALaw, ms(10))
                .unwrap()
                .frame_len(),
            80
        );
        assert_eq!(
            AudioConfig::new(PcmCodec::ALaw, ms(20))
                .unwrap()
                .frame_len(),
            160
        );
        assert!(matches!(
            AudioConfig::new(PcmCodec::ALaw, ms(30)),
            Err(AudioError::BadPeriod(p)) if p == ms(30)
        ));
    }

    #[test]
    fn codings_round_trip() {
        let x: Vec<i16> = (0..160).map(|i| (i * 397 % 20000 - 10000) as i16).collect();
        for codec in [PcmCodec::Linear16, PcmCodec::ALaw, PcmCodec::MuLaw] {
            let mut bytes = Vec::new();
            encode(codec, &x, &mut bytes);
            let bps = if codec == PcmCodec::Linear16 { 2 } else { 1 };
            assert_eq!(bytes.len(), 160 * bps);
            let mut y = vec![0i16; 160];
            decode(codec, &bytes, &mut y);
            for (a, b) in x.iter().zip(&y) {
                // G.711's step at 10000 is 512 (A-law) / 256 (µ-law): error below half of it
                // plus rounding.
                let tol = if codec == PcmCodec::Linear16 { 0 } else { 512 };
                assert!((i32::from(*a) - i32::from(*b)).abs() <= tol, "{codec:?}");
            }
        }
    }
}
