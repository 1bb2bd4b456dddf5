//! Payload transcoding between PCMA, PCMU and G.722.
//!
//! PCMA <-> PCMU is a byte-wise table look-up ([`super::g711`]). G.722 goes through 16 kHz
//! linear PCM with the `audio-codec` crate's G.722 (64 kbit/s, mode 1) and a 2x half-band FIR
//! between 8 and 16 kHz. The crate's "8 kHz" G.722 shortcut is not used: its encoder emits a
//! constant code in that mode (an operator-precedence slip carried over from the C original's
//! port), so we resample instead.
//!
//! All three codecs use an 8 kHz RTP clock (RFC 3551 sec. 4.5.2 for G.722) and one byte per
//! RTP timestamp unit, so a transcoded packet keeps its timestamp and payload length.

use audio_codec::g722::{Bitrate, G722Decoder, G722Encoder};
use audio_codec::{Decoder as _, Encoder as _};

use super::g711::{
    linear_to_alaw, linear_to_ulaw, ALAW_TO_LINEAR, ALAW_TO_ULAW, ULAW_TO_ALAW, ULAW_TO_LINEAR,
};
use super::Codec;

/// Largest payload we transcode (a 60 ms G.711 frame is 480 bytes); bigger ones are dropped.
pub(crate) const MAX_PAYLOAD: usize = 1024;

/// Taps of the half-band low-pass used for 8 <-> 16 kHz (odd, centre at `HALF`).
const TAPS: usize = 31;
const HALF: usize = TAPS / 2;
/// Non-zero taps of the even phase: h[0], h[2], .., h[30].
const PHASE: usize = HALF + 1;

/// Windowed-sinc half-band low-pass (cut-off fs/4), Blackman window, unity DC gain.
/// Every other tap of a half-band filter is zero except the centre; it is split into the
/// even-index taps and the centre tap so that 2x resampling is a polyphase filter.
fn half_band() -> ([f32; PHASE], f32) {
    let mut h = [0f32; TAPS];
    for (n, c) in h.iter_mut().enumerate() {
        let x = n as f32 - HALF as f32;
        let sinc = if n == HALF {
            0.5
        } else if (n + HALF).is_multiple_of(2) {
            0.0 // sin(k * pi): exactly zero
        } else {
            (std::f32::consts::PI * 0.5 * x).sin() / (std::f32::consts::PI * x)
        };
        let t = n as f32 / (TAPS - 1) as f32;
        let w = 0.42 - 0.5 * (2.0 * std::f32::consts::PI * t).cos()
            + 0.08 * (4.0 * std::f32::consts::PI * t).cos();
        *c = sinc * w;
    }
    let sum: f32 = h.iter().sum();
    let mut even = [0f32; PHASE];
    for (k, e) in even.iter_mut().enumerate() {
        *e = h[2 * k] / sum;
    }
    (even, h[HALF] / sum)
}

/// 2x up- or down-sampler between 8 and 16 kHz, keeping `HALF` samples of history so that
/// consecutive frames join without a seam.
#[derive(Debug, Clone)]
pub(crate) struct Resampler {
    even: [f32; PHASE],
    centre: f32,
    /// History then the current frame, at 8 kHz (the odd-phase samples when decimating).
    a: Vec<f32>,
    /// Even-phase samples when decimating.
    b: Vec<f32>,
}

impl Resampler {
    pub(crate) fn new() -> Self {
        let (even, centre) = half_band();
        Self {
            even,
            centre,
            a: vec![0.0; HALF],
            b: vec![0.0; HALF],
        }
    }

    fn fir(&self, x: &[f32], n: usize) -> f32 {
        // x[n + HALF] is the newest sample; the even taps reach back 2k samples at 16 kHz,
        // i.e. k samples at 8 kHz. h is symmetric, so direction does not matter.
        let w = &x[n..n + PHASE];
        w.iter().zip(self.even.iter()).map(|(a, b)| a * b).sum()
    }

    fn keep_history(v: &mut Vec<f32>) {
        let len = v.len();
        v.copy_within(len - HALF.., 0);
        v.truncate(HALF);
    }

    /// 8 kHz -> 16 kHz: zero-stuff and low-pass (gain 2 keeps the level).
    fn up(&mut self, pcm: &[i16], out: &mut Vec<i16>) {
        self.a.extend(pcm.iter().map(|&s| f32::from(s)));
        for n in 0..pcm.len() {
            out.push(sat(2.0 * self.fir(&self.a, n)));
            out.push(sat(2.0 * self.centre * self.a[n + HALF / 2 + 1]));
        }
        Self::keep_history(&mut self.a);
    }

    /// 16 kHz -> 8 kHz: low-pass and keep every other sample (an odd last sample is
    /// ignored).
    pub(crate) fn down(&mut self, wide: &[i16], out: &mut Vec<i16>) {
        for pair in wide.chunks_exact(2) {
            self.b.push(f32::from(pair[0]));
            self.a.push(f32::from(pair[1]));
        }
        for n in 0..wide.len() / 2 {
            let v = self.fir(&self.a, n) + self.centre * self.b[n + HALF / 2 + 1];
            out.push(sat(v));
        }
        Self::keep_history(&mut self.a);
        Self::keep_history(&mut self.b);
    }
}

fn sat(v: f32) -> i16 {
    v.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

/// Decodes one payload to 8 kHz linear PCM.
pub(crate) enum Dec {
    Pcma,
    Pcmu,
    G722(Box<(G722Decoder, Resampler)>),
}

/// Encodes 8 kHz linear PCM to one payload.
pub(crate) enum Enc {
    Pcma,
    Pcmu,
    G722(Box<(G722Encoder, Resampler)>),
}

// The codec states have no Debug; their names are enough.
impl std::fmt::Debug for Dec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dec::Pcma => "Pcma",
            Dec::Pcmu => "Pcmu",
            Dec::G722(..) => "G722",
        })
    }
}

impl Enc {
    /// A (fresh) encoder for `codec`.
    pub(crate) fn new(codec: Codec) -> Self {
        match codec {
            Codec::Pcma => Enc::Pcma,
            Codec::Pcmu => Enc::Pcmu,
            Codec::G722 => Enc::G722(Box::new((
                G722Encoder::with_options(Bitrate::Mode1_64000, false, false),
                Resampler::new(),
            ))),
        }
    }

    /// Encodes `pcm` (8 kHz), appending one byte per sample to `out`; `wide` is scratch
    /// space for G.722's 16 kHz signal.
    pub(crate) fn encode(&mut self, pcm: &[i16], wide: &mut Vec<i16>, out: &mut Vec<u8>) {
        match self {
            Enc::Pcma => out.extend(pcm.iter().map(|&s| linear_to_alaw(s))),
            Enc::Pcmu => out.extend(pcm.iter().map(|&s| linear_to_ulaw(s))),
            Enc::G722(state) => {
                let (e, rs) = &mut **state;
                wide.clear();
                rs.up(pcm, wide);
                let start = out.len();
                out.resize(start + wide.len() / 2 + 1, 0);
                let n = e.encode_into(wide, &mut out[start..]).unwrap_or(0);
                out.truncate(start + n);
            }
        }
    }
}

impl std::fmt::Debug for Enc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Enc::Pcma => "Pcma",
            Enc::Pcmu => "Pcmu",
            Enc::G722(..) => "G722",
        })
    }
}

/// A stateful converter for one direction of a call (G.722 keeps ADPCM and filter state).
#[derive(Debug)]
pub(crate) enum Transcoder {
    /// PCMA -> PCMU by table.
    AlawToUlaw,
    /// PCMU -> PCMA by table.
    UlawToAlaw,
    /// Anything involving G.722, through linear PCM.
    Linear {
        dec: Dec,
        enc: Enc,
        pcm: Vec<i16>,
        wide: Vec<i16>,
    },
}

impl Transcoder {
    /// A converter from `from` to `to`, or `None` if they are the same codec.
    pub(crate) fn new(from: Codec, to: Codec) -> Option<Self> {
        let dec = |c| match c {
            Codec::Pcma => Dec::Pcma,
            Codec::Pcmu => Dec::Pcmu,
            Codec::G722 => Dec::G722(Box::new((
                G722Decoder::with_options(Bitrate::Mode1_64000, false, false),
                Resampler::new(),
            ))),
        };
        match (from, to) {
            _ if from == to => None,
            (Codec::Pcma, Codec::Pcmu) => Some(Self::AlawToUlaw),
            (Codec::Pcmu, Codec::Pcma) => Some(Self::UlawToAlaw),
            _ => Some(Self::Linear {
                dec: dec(from),
                enc: Enc::new(to),
                pcm: Vec::with_capacity(MAX_PAYLOAD),
                wide: Vec::with_capacity(2 * MAX_PAYLOAD),
            }),
        }
    }

    /// Converts `payload`, appending the result to `out`. Payloads over [`MAX_PAYLOAD`]
    /// bytes give `false` and append nothing.
    pub(crate) fn convert(&mut self, payload: &[u8], out: &mut Vec<u8>) -> bool {
        if payload.len() > MAX_PAYLOAD {
            return false;
        }
        match self {
            Self::AlawToUlaw => out.extend(payload.iter().map(|&b| ALAW_TO_ULAW[b as usize])),
            Self::UlawToAlaw => out.extend(payload.iter().map(|&b| ULAW_TO_ALAW[b as usize])),
            Self::Linear {
                dec,
                enc,
                pcm,
                wide,
            } => {
                pcm.clear();
                match dec {
                    Dec::Pcma => pcm.extend(payload.iter().map(|&b| ALAW_TO_LINEAR[b as usize])),
                    Dec::Pcmu => pcm.extend(payload.iter().map(|&b| ULAW_TO_LINEAR[b as usize])),
                    Dec::G722(state) => {
                        // One byte -> two 16 kHz samples -> one 8 kHz sample.
                        let (d, rs) = &mut **state;
                        wide.clear();
                        wide.resize(2 * payload.len(), 0);
                        let n = d.decode_into(payload, wide).unwrap_or(0);
                        rs.down(&wide[..n], pcm);
                    }
                }
                enc.encode(pcm, wide, out);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dsp::goertzel_power;

    fn tone(freq: f32, n: usize, amp: f32) -> Vec<i16> {
        (0..n)
            .map(|i| (amp * (2.0 * std::f32::consts::PI * freq * i as f32 / 8000.0).sin()) as i16)
            .collect()
    }

    #[test]
    fn same_codec_needs_no_transcoder() {
        for c in [Codec::Pcma, Codec::Pcmu, Codec::G722] {
            assert!(Transcoder::new(c, c).is_none());
        }
    }

    /// PCMA -> PCMU output equals decoding each A-law byte and encoding it as µ-law.
    #[test]
    fn pcma_to_pcmu_bit_exact() {
        let mut t = Transcoder::new(Codec::Pcma, Codec::Pcmu).expect("codecs differ");
        let payload: Vec<u8> = (0..=255u8).collect();
        let mut out = Vec::new();
        assert!(t.convert(&payload, &mut out));
        let expect: Vec<u8> = payload
            .iter()
            .map(|&a| linear_to_ulaw(ALAW_TO_LINEAR[a as usize]))
            .collect();
        assert_eq!(out, expect);
    }

    /// A 1 kHz tone survives G.711 -> G.722 -> G.711: same length per packet, the tone's
    /// frequency dominates, and its level is kept within 2 dB.
    #[test]
    fn g722_round_trip_keeps_a_tone() {
        for (narrow, freq) in [(Codec::Pcma, 1000.0), (Codec::Pcmu, 440.0)] {
            let mut up = Transcoder::new(narrow, Codec::G722).expect("differ");
            let mut down = Transcoder::new(Codec::G722, narrow).expect("differ");
            let enc = |s: &[i16]| -> Vec<u8> {
                s.iter()
                    .map(|&x| {
                        if narrow == Codec::Pcma {
                            linear_to_alaw(x)
                        } else {
                            linear_to_ulaw(x)
                        }
                    })
                    .collect()
            };
            let dec = |b: &[u8]| -> Vec<i16> {
                b.iter()
                    .map(|&x| {
                        if narrow == Codec::Pcma {
                            ALAW_TO_LINEAR[x as usize]
                        } else {
                            ULAW_TO_LINEAR[x as usize]
                        }
                    })
                    .collect()
            };
            let signal = tone(freq, 160 * 25, 8000.0);
            let mut back = Vec::new();
            for frame in signal.chunks(160) {
                let mut g722 = Vec::new();
                assert!(up.convert(&enc(frame), &mut g722));
                assert_eq!(g722.len(), 160, "20 ms of G.722 is 160 bytes");
                let mut g711 = Vec::new();
                assert!(down.convert(&g722, &mut g711));
                assert_eq!(g711.len(), 160);
                back.extend(dec(&g711));
            }
            // Skip the first 100 ms (codec adaptation, filter delay).
            let tail = &back[800..];
            let p_tone = goertzel_power(tail, freq);
            let p_other = goertzel_power(tail, freq * 2.3);
            assert!(
                p_tone > 1000.0 * p_other,
                "{narrow:?}: tone {p_tone} other {p_other}"
            );
            let rms_in = crate::media::dsp::rms_dbm0(&signal[800..]);
            let rms_out = crate::media::dsp::rms_dbm0(tail);
            assert!(
                (rms_in - rms_out).abs() < 2.0,
                "{narrow:?}: {rms_in} dBm0 -> {rms_out}"
            );
        }
    }

    #[test]
    fn oversized_payload_is_refused() {
        let mut t = Transcoder::new(Codec::Pcmu, Codec::Pcma).expect("differ");
        let mut out = Vec::new();
        assert!(!t.convert(&vec![0u8; MAX_PAYLOAD + 1], &mut out));
        assert!(out.is_empty());
    }
}
