//! A real module's voice PCM through ALSA (`--modem-pcm NAME`).
//!
//! The module's PCM/I2S lines reach the SoC's audio interface, which appears as an ALSA
//! PCM (a codec-less `simple-audio-card`, or a slot of the same TDM highway the SLIC uses).
//! The module is set to 8 kHz, 16-bit linear (AT+QDAI), so the PCM is opened as `S16_LE`
//! mono with 20 ms periods by the same backend the analog ports use
//! (`pbx_hal::audio::alsa`, with its XRUN recovery).
//!
//! ALSA transfers block, so they run on their own thread ("gsm-pcm"), paced by the PCM
//! clock: capture a frame, queue it for the bridge, play the frame the bridge queued (or
//! silence). The bridge ([`super::audio`]) ticks on the system clock and takes and gives
//! one frame per tick without blocking. The two clocks drift apart slowly (crystal
//! tolerances, ~100 ppm: one frame in about 3 minutes); the small queues absorb jitter,
//! and a slip costs one frame (the bridge sends silence, or ALSA recovers an XRUN), never
//! the call.
//!
//! When the PCM cannot be opened or fails for good, the thread logs why and retries
//! every few seconds; the bridge meanwhile sends silence, so calls still connect.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::Duration;

use pbx_hal::audio::alsa::AlsaAudio;
use pbx_hal::audio::{AudioConfig, AudioError, AudioPort, PcmCodec};
use tracing::{info, warn};

use super::audio::Pcm;

/// Samples per 20 ms frame at 8 kHz.
const FRAME: usize = 160;
/// Captured frames waiting for the bridge. Two are enough to ride out a late tick; when
/// the bridge is slower than the PCM clock the capture thread waits here (and ALSA's own
/// buffer takes the slack, recovered as an XRUN if it overflows).
const CAPTURE_QUEUE: usize = 2;
/// Frames from the bridge waiting to be played; beyond this the newest is dropped.
const PLAYBACK_QUEUE: usize = 4;
/// Pause before opening the PCM again after it failed.
const REOPEN_AFTER: Duration = Duration::from_secs(5);

/// The bridge's end of the module's ALSA PCM; see the module docs.
#[derive(Debug)]
pub struct AlsaPcm {
    from_module: Receiver<Vec<i16>>,
    to_module: SyncSender<Vec<i16>>,
}

impl AlsaPcm {
    /// Starts the PCM thread on the ALSA PCM `name` (both directions). Fails only when
    /// the thread cannot be started; an unusable PCM is logged and retried.
    pub fn start(name: &str) -> std::io::Result<Self> {
        let (cap_tx, from_module) = mpsc::sync_channel(CAPTURE_QUEUE);
        let (to_module, play_rx) = mpsc::sync_channel(PLAYBACK_QUEUE);
        let name = name.to_owned();
        std::thread::Builder::new()
            .name("gsm-pcm".into())
            .spawn(move || run(&name, &cap_tx, &play_rx))?;
        Ok(Self {
            from_module,
            to_module,
        })
    }
}

impl Pcm for AlsaPcm {
    fn read(&mut self) -> Option<Vec<i16>> {
        // Nothing captured this tick (PCM not open, or a clock slip): silence keeps the
        // RTP stream going, so the relay's media time-out does not end the call.
        Some(
            self.from_module
                .try_recv()
                .unwrap_or_else(|_| vec![0; FRAME]),
        )
    }

    fn write(&mut self, frame: &[i16]) {
        // A full queue drops this frame (the PCM clock is behind: one frame slips); a
        // gone thread has logged why.
        let _ = self.to_module.try_send(frame.to_vec());
    }
}

/// The PCM thread: (re)opens the PCM and moves frames until the bridge is gone.
fn run(name: &str, cap_tx: &SyncSender<Vec<i16>>, play_rx: &Receiver<Vec<i16>>) {
    let config = match AudioConfig::new(PcmCodec::Linear16, Duration::from_millis(20)) {
        Ok(c) => c,
        Err(e) => {
            warn!("GSM module PCM: {e}");
            return;
        }
    };
    loop {
        match AlsaAudio::open(Some(name), Some(name), config) {
            Ok(mut pcm) => {
                info!(pcm = name, "GSM module PCM open (8 kHz, S16_LE, 20 ms)");
                match transfer(&mut pcm, cap_tx, play_rx) {
                    Ok(()) => return,
                    Err(e) => warn!("GSM module PCM {name}: {e}; opening it again"),
                }
            }
            Err(e) => warn!("GSM module PCM {name} cannot be opened: {e}; calls have no audio"),
        }
        std::thread::sleep(REOPEN_AFTER);
    }
}

/// Moves frames until the bridge is gone (`Ok`) or the PCM fails after recovery.
fn transfer(
    pcm: &mut AlsaAudio,
    cap_tx: &SyncSender<Vec<i16>>,
    play_rx: &Receiver<Vec<i16>>,
) -> Result<(), AudioError> {
    let mut frame = vec![0i16; FRAME];
    let silence = [0i16; FRAME];
    loop {
        pcm.read_frame(&mut frame)?;
        if cap_tx.send(frame.clone()).is_err() {
            return Ok(());
        }
        match play_rx.try_recv() {
            Ok(f) if f.len() == FRAME => pcm.write_frame(&f)?,
            Ok(_) | Err(mpsc::TryRecvError::Empty) => pcm.write_frame(&silence)?,
            Err(mpsc::TryRecvError::Disconnected) => return Ok(()),
        }
    }
}
