//! The SLIC's PCM highway through ALSA: one capture and one playback PCM per port.
//!
//! On the board the TDM interface appears as an ALSA card; the board file names one PCM
//! per port and direction (typically a `dsnoop`/`dshare` or driver-specific slot PCM
//! mapping the port's timeslot to a mono channel). The port opens it at 8 kHz mono in
//! the SLIC's coding (`S16_LE`, `A_LAW` or `MU_LAW`), with the frame length as period and
//! four periods of buffer, and moves one frame per call in blocking mode.
//!
//! # XRUN recovery
//! An underrun (playback) or overrun (capture) makes alsa-lib return `EPIPE`; a suspend
//! returns `ESTRPIPE`. The port then calls `snd_pcm_recover` (which prepares the stream
//! again), counts it in [`AlsaAudio::xruns`] and retries the transfer, at most
//! [`MAX_RECOVERIES`] times per frame. A stream found stopped before a transfer (for
//! example after [`AlsaAudio::discard_playback`]) is prepared again first. A late frame
//! thus costs a click, never the port.
//!
//! Tested without a sound card against alsa-lib's `null` and `file` plugins
//! (`hal/tests/audio_alsa*.rs`).

use std::ffi::CString;

use ::alsa::pcm::{Access, Format, HwParams, State, PCM};
use ::alsa::{Direction, ValueOr};

use super::{check_len, decode, encode, AudioConfig, AudioError, AudioPort, SAMPLE_RATE};
use crate::fxs::PcmCodec;

/// Recovery attempts per frame before an XRUN is returned as an error.
pub const MAX_RECOVERIES: u32 = 3;
/// Periods of buffer: enough to ride out scheduling hiccups, small enough for latency
/// (80 ms at 20 ms periods).
pub const PERIODS: usize = 4;

/// One direction of the port.
struct Stream {
    pcm: PCM,
    name: String,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("name", &self.name).finish()
    }
}

/// An [`AudioPort`] over ALSA PCMs; see the module docs.
#[derive(Debug)]
pub struct AlsaAudio {
    config: AudioConfig,
    playback: Option<Stream>,
    capture: Option<Stream>,
    xruns: u64,
    bytes: Vec<u8>,
}

impl AlsaAudio {
    /// Opens the named PCMs (either may be absent) for `config`.
    pub fn open(
        playback: Option<&str>,
        capture: Option<&str>,
        config: AudioConfig,
    ) -> Result<Self, AudioError> {
        let playback = playback
            .map(|n| open_stream(n, Direction::Playback, config))
            .transpose()?;
        let capture = capture
            .map(|n| open_stream(n, Direction::Capture, config))
            .transpose()?;
        Ok(Self {
            config,
            playback,
            capture,
            xruns: 0,
            bytes: Vec::with_capacity(config.frame_len() * 2),
        })
    }

    /// The coding and period in use.
    #[must_use]
    pub fn config(&self) -> AudioConfig {
        self.config
    }

    /// XRUNs (and suspends) recovered from so far.
    #[must_use]
    pub fn xruns(&self) -> u64 {
        self.xruns
    }

    /// Drops the queued playback audio at once (e.g. when a tone must stop now). The next
    /// write prepares the stream again.
    pub fn discard_playback(&mut self) -> Result<(), AudioError> {
        let Some(s) = &self.playback else {
            return Err(AudioError::NoDirection("playback"));
        };
        s.pcm.drop().map_err(|e| alsa_err(s, "snd_pcm_drop", e))
    }

    /// Blocks until the queued playback audio has been played.
    pub fn drain(&mut self) -> Result<(), AudioError> {
        let Some(s) = &self.playback else {
            return Err(AudioError::NoDirection("playback"));
        };
        if s.pcm.state() == State::Running {
            s.pcm.drain().map_err(|e| alsa_err(s, "snd_pcm_drain", e))?;
        }
        Ok(())
    }
}

fn alsa_err(s: &Stream, op: &'static str, source: ::alsa::Error) -> AudioError {
    AudioError::Alsa {
        device: s.name.clone(),
        op,
        source,
    }
}

fn open_stream(name: &str, dir: Direction, config: AudioConfig) -> Result<Stream, AudioError> {
    let err = |op: &'static str| {
        move |source| AudioError::Alsa {
            device: name.to_owned(),
            op,
            source,
        }
    };
    let unsupported = |what: String| AudioError::Unsupported {
        device: name.to_owned(),
        what,
    };
    let cname = CString::new(name).map_err(|_| unsupported("name contains NUL".into()))?;
    let pcm = PCM::open(&cname, dir, false).map_err(err("snd_pcm_open"))?;
    {
        let hw = HwParams::any(&pcm).map_err(err("snd_pcm_hw_params_any"))?;
        hw.set_access(Access::RWInterleaved)
            .map_err(err("set_access"))?;
        let format = match config.codec {
            PcmCodec::Linear16 => Format::S16LE,
            PcmCodec::ALaw => Format::ALaw,
            PcmCodec::MuLaw => Format::MuLaw,
        };
        hw.set_format(format)
            .map_err(|_| unsupported(format!("format {format}")))?;
        hw.set_channels(1).map_err(|_| unsupported("mono".into()))?;
        // No resampling: a rate other than 8 kHz means a wrong PCM, not a conversion job.
        hw.set_rate_resample(false)
            .map_err(err("set_rate_resample"))?;
        hw.set_rate(SAMPLE_RATE, ValueOr::Nearest)
            .map_err(|_| unsupported(format!("rate {SAMPLE_RATE} Hz")))?;
        let period = config.frame_len() as ::alsa::pcm::Frames;
        hw.set_period_size(period, ValueOr::Nearest)
            .map_err(|_| unsupported(format!("period of {period} frames")))?;
        hw.set_buffer_size_near(period * PERIODS as ::alsa::pcm::Frames)
            .map_err(err("set_buffer_size_near"))?;
        pcm.hw_params(&hw).map_err(err("snd_pcm_hw_params"))?;
    }
    {
        let sw = pcm
            .sw_params_current()
            .map_err(err("snd_pcm_sw_params_current"))?;
        let period = config.frame_len() as ::alsa::pcm::Frames;
        // Playback starts with the first frame queued: the line hears it one period later.
        sw.set_start_threshold(period)
            .map_err(err("set_start_threshold"))?;
        sw.set_avail_min(period).map_err(err("set_avail_min"))?;
        pcm.sw_params(&sw).map_err(err("snd_pcm_sw_params"))?;
    }
    Ok(Stream {
        pcm,
        name: name.to_owned(),
    })
}

/// Prepares a stream that is not ready for transfers. Returns whether it was an XRUN.
fn ready(s: &Stream) -> Result<bool, AudioError> {
    match s.pcm.state() {
        State::XRun => {
            s.pcm
                .prepare()
                .map_err(|e| alsa_err(s, "snd_pcm_prepare", e))?;
            Ok(true)
        }
        State::Setup => {
            s.pcm
                .prepare()
                .map_err(|e| alsa_err(s, "snd_pcm_prepare", e))?;
            Ok(false)
        }
        State::Suspended => {
            if s.pcm.resume().is_err() {
                s.pcm
                    .prepare()
                    .map_err(|e| alsa_err(s, "snd_pcm_prepare", e))?;
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Whether alsa-lib's error is one `snd_pcm_recover` handles (EPIPE, ESTRPIPE, EINTR).
fn recoverable(e: &::alsa::Error) -> bool {
    const EINTR: i32 = 4;
    const EPIPE: i32 = 32;
    const ESTRPIPE: i32 = 86;
    matches!(e.errno(), EINTR | EPIPE | ESTRPIPE)
}

impl AudioPort for AlsaAudio {
    type Error = AudioError;

    fn frame_len(&self) -> usize {
        self.config.frame_len()
    }

    fn write_frame(&mut self, frame: &[i16]) -> Result<(), AudioError> {
        check_len(self.config.frame_len(), frame.len())?;
        let Some(s) = &self.playback else {
            return Err(AudioError::NoDirection("playback"));
        };
        self.bytes.clear();
        encode(self.config.codec, frame, &mut self.bytes);
        let bps = self.config.bytes_per_sample();
        let mut done = 0; // samples
        let mut recoveries = 0;
        while done < frame.len() {
            if ready(s)? {
                self.xruns += 1;
            }
            let io = s.pcm.io_bytes();
            match io.writei(&self.bytes[done * bps..]) {
                Ok(n) => done += n,
                Err(e) if recoverable(&e) && recoveries < MAX_RECOVERIES => {
                    recoveries += 1;
                    drop(io);
                    s.pcm
                        .try_recover(e, true)
                        .map_err(|e| alsa_err(s, "snd_pcm_recover", e))?;
                    self.xruns += 1;
                }
                Err(e) => return Err(alsa_err(s, "snd_pcm_writei", e)),
            }
        }
        Ok(())
    }

    fn read_frame(&mut self, out: &mut [i16]) -> Result<(), AudioError> {
        check_len(self.config.frame_len(), out.len())?;
        let Some(s) = &self.capture else {
            return Err(AudioError::NoDirection("capture"));
        };
        let bps = self.config.bytes_per_sample();
        self.bytes.clear();
        self.bytes.resize(out.len() * bps, 0);
        let mut done = 0;
        let mut recoveries = 0;
        while done < out.len() {
            if ready(s)? {
                self.xruns += 1;
            }
            let io = s.pcm.io_bytes();
            match io.readi(&mut self.bytes[done * bps..]) {
                Ok(n) => done += n,
                Err(e) if recoverable(&e) && recoveries < MAX_RECOVERIES => {
                    recoveries += 1;
                    drop(io);
                    s.pcm
                        .try_recover(e, true)
                        .map_err(|e| alsa_err(s, "snd_pcm_recover", e))?;
                    self.xruns += 1;
                }
                Err(e) => return Err(alsa_err(s, "snd_pcm_readi", e)),
            }
        }
        decode(self.config.codec, &self.bytes, out);
        Ok(())
    }
}
