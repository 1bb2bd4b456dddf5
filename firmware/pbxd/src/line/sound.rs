//! What an analog port plays to its phone, one frame at a time: caller-ID FSK when
//! one is being sent, else the line's call-progress tone, else (connected) the call's
//! audio, else silence. Sans-IO: the port's shell applies the line's outputs and asks
//! for a frame every period.

use std::collections::VecDeque;

use super::LineOutput;
use crate::media::dsp::callerid::{modulate_bytes, Preamble};
use crate::media::dsp::fsk::FskParams;
use crate::media::dsp::tone::{self, ToneGenerator};

/// The CAS (80 ms at 8 kHz) as samples.
const CAS_SAMPLES: usize = 640;

/// The sound source of one port.
#[derive(Debug, Default)]
pub struct PortSound {
    tone: Option<ToneGenerator>,
    fsk: VecDeque<i16>,
}

impl PortSound {
    /// Silence, nothing queued.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the line's tone and caller-ID instructions (others are not sound).
    pub fn apply(&mut self, out: &LineOutput) {
        match out {
            LineOutput::Play(tone) => {
                // Each tone starts at the beginning of its cadence.
                self.tone = tone.spec().and_then(|spec| ToneGenerator::new(&spec).ok());
            }
            LineOutput::SendCallerId(msg) => {
                // Type 1 (on-hook) burst: channel seizure and mark, then the message.
                self.fsk
                    .extend(modulate_bytes(msg, FskParams::V23, Preamble::OnHook));
            }
            LineOutput::SendCas => {
                let cas = ToneGenerator::new(&tone::CAS).ok();
                if let Some(mut g) = cas {
                    let mut x = vec![0i16; CAS_SAMPLES];
                    g.fill(&mut x);
                    self.fsk.extend(x);
                }
            }
            LineOutput::SendCallerIdOffHook(msg) => {
                // Type 2 (off-hook) burst: mark, then the message.
                self.fsk
                    .extend(modulate_bytes(msg, FskParams::V23, Preamble::OffHook));
            }
            LineOutput::Linefeed(_) | LineOutput::Call(_) => {}
        }
    }

    /// Whether a tone (other than silence) is playing.
    pub fn tone_playing(&self) -> bool {
        self.tone.is_some()
    }

    /// The next frame for the phone into `out`; `call_audio` is the call's audio for
    /// this period, when the port is connected.
    pub fn frame(&mut self, call_audio: Option<&[i16]>, out: &mut [i16]) {
        if !self.fsk.is_empty() {
            for s in out.iter_mut() {
                *s = self.fsk.pop_front().unwrap_or(0);
            }
            return;
        }
        if let Some(t) = self.tone.as_mut() {
            t.fill(out);
            return;
        }
        match call_audio {
            Some(a) => {
                for (o, i) in out.iter_mut().zip(a.iter().chain(std::iter::repeat(&0))) {
                    *o = *i;
                }
            }
            None => out.fill(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::{CallerId, Tone};
    use crate::media::dsp::callerid;
    use crate::media::dsp::goertzel_power;

    fn frames(sound: &mut PortSound, n: usize, call: Option<&[i16]>) -> Vec<i16> {
        let mut all = Vec::new();
        for _ in 0..n {
            let mut f = [0i16; 160];
            sound.frame(call, &mut f);
            all.extend_from_slice(&f);
        }
        all
    }

    #[test]
    fn dial_tone_is_425_hz_and_silence_is_silent() {
        let mut s = PortSound::new();
        s.apply(&LineOutput::Play(Tone::Dial));
        let x = frames(&mut s, 10, None);
        let at_425 = goertzel_power(&x, 425.0);
        let at_1000 = goertzel_power(&x, 1000.0);
        assert!(at_425 > 1000.0 * at_1000.max(1e-3), "{at_425} vs {at_1000}");
        s.apply(&LineOutput::Play(Tone::Silence));
        assert!(!s.tone_playing());
        assert!(frames(&mut s, 3, None).iter().all(|&v| v == 0));
    }

    #[test]
    fn caller_id_comes_first_and_decodes_back() {
        let mut s = PortSound::new();
        s.apply(&LineOutput::Play(Tone::Silence));
        let cid = CallerId {
            number: Some("1002".into()),
            name: Some("Reception".into()),
            ..CallerId::default()
        };
        s.apply(&LineOutput::SendCallerId(cid.mdmf()));
        // The burst (~500 bits at 1200 baud) is well under 60 frames.
        let x = frames(&mut s, 60, None);
        let got = callerid::CallerId::demodulate(&x).expect("our own FSK decodes");
        assert_eq!(got.number.as_deref(), Some("1002"));
        assert_eq!(got.name.as_deref(), Some("Reception"));
    }

    #[test]
    fn a_connected_port_hears_the_call_unless_a_tone_plays() {
        let mut s = PortSound::new();
        let call: Vec<i16> = (0..160).map(|i| (i * 37 % 2000) as i16).collect();
        assert_eq!(frames(&mut s, 1, Some(&call)), call);
        s.apply(&LineOutput::Play(Tone::Busy));
        assert_ne!(frames(&mut s, 1, Some(&call)), call);
    }
}
