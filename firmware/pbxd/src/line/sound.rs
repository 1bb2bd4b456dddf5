//! What an analog port plays to its phone, one frame at a time: caller-ID FSK when
//! one is being sent, else the line's call-progress tone, else (connected) the call's
//! audio, else silence. Sans-IO: the port's shell applies the line's outputs and asks
//! for a frame every period.

use std::collections::VecDeque;

use std::time::Duration;

use super::ports_config::{CidMode, PortProfile};
use super::{Country, LineOutput};
use crate::media::dsp::callerid::{modulate_bytes, CallerId as CidMessage, Preamble};
use crate::media::dsp::dtmf::DtmfGenerator;
use crate::media::dsp::fsk::FskParams;
use crate::media::dsp::tone::{self, ToneGenerator};

/// The CAS (80 ms at 8 kHz) as samples.
const CAS_SAMPLES: usize = 640;

/// The sound source of one port.
#[derive(Debug)]
pub struct PortSound {
    tone: Option<ToneGenerator>,
    fsk: VecDeque<i16>,
    country: Country,
    cid: CidMode,
    /// Fax/modem pass-through: the call's audio only, nothing played over it.
    passthrough: bool,
    /// Type-2 caller ID signalling: the call's audio is muted both ways.
    muted: bool,
}

impl Default for PortSound {
    fn default() -> Self {
        Self::with_profile(&PortProfile::default())
    }
}

impl PortSound {
    /// Silence, nothing queued.
    pub fn new() -> Self {
        Self::default()
    }

    /// Silence, with a port's country tones and caller-ID mode.
    pub fn with_profile(profile: &PortProfile) -> Self {
        PortSound {
            tone: None,
            fsk: VecDeque::new(),
            country: profile.country,
            cid: profile.cid,
            passthrough: false,
            muted: false,
        }
    }

    /// New settings: the next tone and caller ID use them.
    pub fn set_profile(&mut self, profile: &PortProfile) {
        self.country = profile.country;
        self.cid = profile.cid;
    }

    /// Takes the line's tone and caller-ID instructions (others are not sound).
    pub fn apply(&mut self, out: &LineOutput) {
        match out {
            LineOutput::Play(tone) => {
                // Each tone starts at the beginning of its cadence.
                self.tone = tone
                    .spec_for(self.country)
                    .and_then(|spec| ToneGenerator::new(&spec).ok());
            }
            LineOutput::SendCallerId(msg) => match (self.cid, self.cid.fsk()) {
                // Type 1 (on-hook) burst: channel seizure and mark, then the message.
                (_, Some(params)) => self
                    .fsk
                    .extend(modulate_bytes(msg, params, Preamble::OnHook)),
                (CidMode::Dtmf, None) => self.fsk.extend(dtmf_clip(msg)),
                _ => {}
            },
            LineOutput::SendCas => {
                let cas = ToneGenerator::new(&tone::CAS).ok();
                if let Some(mut g) = cas {
                    let mut x = vec![0i16; CAS_SAMPLES];
                    g.fill(&mut x);
                    self.fsk.extend(x);
                }
            }
            LineOutput::SendCallerIdOffHook(msg) => {
                // Type 2 (off-hook) burst: mark, then the message. It is FSK only; a port
                // with DTMF caller ID sends it as V.23, one with caller ID off sends none.
                if self.cid != CidMode::Off {
                    let params = self.cid.fsk().unwrap_or(FskParams::V23);
                    self.fsk
                        .extend(modulate_bytes(msg, params, Preamble::OffHook));
                }
            }
            LineOutput::MuteCall(m) => self.muted = *m,
            LineOutput::Linefeed(_) | LineOutput::Call(_) => {}
        }
    }

    /// Fax/modem pass-through on or off: while on, a connected port plays the call's
    /// audio only (a call-waiting tone, CAS or caller ID would break the fax).
    pub fn set_passthrough(&mut self, on: bool) {
        self.passthrough = on;
        if on {
            self.fsk.clear();
        }
    }

    /// Whether the call's audio is muted both ways (the port's shell sends silence
    /// instead of the microphone while this holds).
    pub fn call_muted(&self) -> bool {
        self.muted
    }

    /// The port's media changed (a new call, or none): nothing stays muted.
    pub fn unmute(&mut self) {
        self.muted = false;
    }

    /// Whether a tone (other than silence) is playing.
    pub fn tone_playing(&self) -> bool {
        self.tone.is_some()
    }

    /// The next frame for the phone into `out`; `call_audio` is the call's audio for
    /// this period, when the port is connected.
    pub fn frame(&mut self, call_audio: Option<&[i16]>, out: &mut [i16]) {
        let call_audio = call_audio.filter(|_| !self.muted);
        if self.passthrough && call_audio.is_some() {
            self.fsk.clear();
            self.tone = None;
        }
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

/// DTMF caller ID: `A`, the number's digits, `C`, 70 ms tones with 70 ms gaps. A
/// withheld or unparseable number sends nothing.
fn dtmf_clip(msg: &[u8]) -> Vec<i16> {
    let Some(number) = CidMessage::parse_mdmf(msg).ok().and_then(|c| c.number) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let tone = Duration::from_millis(70);
    for d in std::iter::once('A')
        .chain(number.chars().filter(char::is_ascii_digit))
        .chain(std::iter::once('C'))
    {
        if let Ok(g) = DtmfGenerator::new(d, -10.0, tone) {
            out.extend(g.samples());
            out.extend(std::iter::repeat_n(0, 560));
        }
    }
    out
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

    #[test]
    fn a_port_in_fax_pass_through_plays_nothing_over_the_call() {
        let mut s = PortSound::new();
        let call: Vec<i16> = (0..160).map(|i| (i * 37 % 2000) as i16).collect();
        s.set_passthrough(true);
        s.apply(&LineOutput::Play(Tone::CallWaiting));
        s.apply(&LineOutput::SendCas);
        assert_eq!(frames(&mut s, 3, Some(&call)), call.repeat(3));
        // Back to voice: tones play over the call again.
        s.set_passthrough(false);
        s.apply(&LineOutput::Play(Tone::CallWaiting));
        assert_ne!(frames(&mut s, 1, Some(&call)), call);
    }

    fn profile(country: Country, cid: CidMode) -> PortProfile {
        PortProfile {
            country,
            cid,
            call_waiting: true,
        }
    }

    #[test]
    fn a_gb_port_plays_the_gb_dial_tone() {
        let mut s = PortSound::with_profile(&profile(Country::Gb, CidMode::FskV23));
        s.apply(&LineOutput::Play(Tone::Dial));
        let x = frames(&mut s, 10, None);
        let p350 = goertzel_power(&x, 350.0);
        let p440 = goertzel_power(&x, 440.0);
        let p425 = goertzel_power(&x, 425.0);
        // 350 + 440 Hz at equal level, nothing of the German 425 Hz.
        assert!((p350 / p440 - 1.0).abs() < 0.2, "{p350} vs {p440}");
        assert!(p350 > 100.0 * p425, "{p350} vs 425 Hz {p425}");
        // Changed live back to Germany: the next tone is 425 Hz.
        s.set_profile(&profile(Country::De, CidMode::FskV23));
        s.apply(&LineOutput::Play(Tone::Dial));
        let x = frames(&mut s, 10, None);
        assert!(goertzel_power(&x, 425.0) > 100.0 * goertzel_power(&x, 350.0));
    }

    fn cid_1002() -> Vec<u8> {
        CallerId {
            number: Some("1002".into()),
            name: Some("Reception".into()),
            ..CallerId::default()
        }
        .mdmf()
    }

    #[test]
    fn caller_id_follows_the_mode() {
        use crate::line::ports_config::BELL202;
        use crate::media::dsp::dtmf::{DtmfDetector, DtmfEventKind};
        use crate::media::dsp::fsk::{FskDemodulator, FskParams};

        // Bell 202: decodes with Bell 202 and not as V.23.
        let mut s = PortSound::with_profile(&profile(Country::Us, CidMode::FskBell202));
        s.apply(&LineOutput::SendCallerId(cid_1002()));
        let x = frames(&mut s, 60, None);
        let bytes = FskDemodulator::new(BELL202, 40)
            .demodulate(&x)
            .expect("Bell 202 burst");
        let got = callerid::CallerId::parse_mdmf(&bytes).expect("MDMF");
        assert_eq!(got.number.as_deref(), Some("1002"));
        // Bell 202's mark is 1200 Hz where V.23's is 1300 Hz (V.23 demodulators are
        // tolerant enough to read both, so look at the mark after the seizure: 300 bits
        // of 6⅔ samples, then 180 bits of mark).
        let mark = |x: &[i16], f| goertzel_power(&x[2100..3100], f);
        assert!(mark(&x, 1200.0) > 10.0 * mark(&x, 1300.0));
        let mut v = PortSound::with_profile(&profile(Country::De, CidMode::FskV23));
        v.apply(&LineOutput::SendCallerId(cid_1002()));
        let y = frames(&mut v, 60, None);
        assert!(mark(&y, 1300.0) > 10.0 * mark(&y, 1200.0));
        assert!(FskDemodulator::new(FskParams::V23, 40)
            .demodulate(&y)
            .is_ok());

        // DTMF: A 1002 C.
        let mut s = PortSound::with_profile(&profile(Country::Nl, CidMode::Dtmf));
        s.apply(&LineOutput::SendCallerId(cid_1002()));
        let x = frames(&mut s, 60, None);
        let mut det = DtmfDetector::new();
        det.handle_samples(&x);
        let mut digits = String::new();
        while let Some(ev) = det.poll_event() {
            if ev.kind == DtmfEventKind::Start {
                digits.push(ev.digit);
            }
        }
        assert_eq!(digits, "A1002C");

        // Off: nothing is sent.
        let mut s = PortSound::with_profile(&profile(Country::De, CidMode::Off));
        s.apply(&LineOutput::SendCallerId(cid_1002()));
        assert!(frames(&mut s, 5, None).iter().all(|&v| v == 0));
    }
}
