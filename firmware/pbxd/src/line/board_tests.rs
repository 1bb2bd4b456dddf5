//! The board's port path without hardware: [`board::spawn_with`] (bring-up from the board
//! file, [`BoardIo`], the shared ports thread) with injected devices: the real SLIC driver
//! on the emulated chip where the board has spidev and GPIO lines, and alsa-lib's
//! `file`/`null` plugins as the PCM (no sound card). The test plays the SIP task's part
//! with a real line core.

use std::time::Duration;

use pbx_hal::audio::alsa::AlsaAudio;
use pbx_hal::audio::{AudioConfig, AudioError, AudioPort, PcmCodec};
use pbx_hal::fxs::emulator::VirtualSlic;
use pbx_hal::fxs::{BoardFile, Slic};

use super::board::{self, BoardIo};
use super::legs::PortOutput;
use super::sim::{PortInput, PortsHealth};
use super::*;
use crate::dialplan::StaticPlan;
use crate::media::dsp::goertzel_power;

const BOARD: &str = include_str!("../../../../hal/boards/sim-si3217x.board");

/// Share of a frame's power at `hz` (1.0: a pure tone at `hz`).
fn tone_share(frame: &[i16], hz: f32) -> f64 {
    let total: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    if total <= 0.0 {
        return 0.0;
    }
    2.0 * f64::from(goertzel_power(frame, hz)) / (frame.len() as f64 * total)
}

/// The PCM of a port on the emulated chip: ALSA, whose frames also move the chip's time
/// on (on a board the chip runs by itself).
struct Clocked {
    pcm: AlsaAudio,
    chip: VirtualSlic,
}

impl AudioPort for Clocked {
    type Error = AudioError;

    fn frame_len(&self) -> usize {
        self.pcm.frame_len()
    }

    fn read_frame(&mut self, out: &mut [i16]) -> Result<(), AudioError> {
        self.chip.advance(crate::clock::now());
        self.pcm.read_frame(out)
    }

    fn write_frame(&mut self, frame: &[i16]) -> Result<(), AudioError> {
        self.pcm.write_frame(frame)
    }
}

#[test]
fn a_board_port_plays_dial_tone_into_its_pcm_and_a_wrong_chip_id_is_faulty_alone() {
    let dir = tempfile::tempdir().unwrap();
    let recorded = dir.path().join("port2.raw");
    let playback = format!("file:'{}',raw", recorded.display());
    let bring = BoardFile::parse(BOARD).unwrap();
    // board::spawn's devices, with the emulated chip in place of spidev and GPIO lines.
    let open = move |now| {
        (1..=2)
            .map(|port| -> Result<_, String> {
                let chip = VirtualSlic::new(now);
                if port == 1 {
                    chip.set_chip_id(0x00);
                }
                // The handset goes off the hook 100 ms after start, after the bring-up
                // (`flash` from on-hook: on-hook now, off-hook then).
                chip.phone().flash(now, Duration::from_millis(100));
                let slic = Slic::new(chip.clone(), chip.reset_pin(), chip.irq_pin());
                let name = if port == 2 { playback.as_str() } else { "null" };
                let pcm = AlsaAudio::open(Some(name), Some("null"), AudioConfig::default())
                    .map_err(|e| e.to_string())?;
                let audio = Clocked { pcm, chip };
                Ok(BoardIo { slic, audio })
            })
            .collect()
    };
    let exts = ["21".to_owned(), "22".to_owned()];
    let relay = "127.0.0.1".parse().unwrap();
    let mut ports = board::spawn_with(open, bring, &exts, relay, None).unwrap();
    let health = ports.health.take().unwrap().blocking_recv().unwrap();
    assert_eq!(
        health,
        PortsHealth {
            up: 1,
            faulty: vec![(
                1,
                "SLIC does not come up: wrong chip ID 0x00 (expected 0xc3)".into()
            )],
        }
    );
    // The SIP task's part: port 2's hook event into a line, its outputs back to the port.
    let plan = SitePlan {
        site: Site::default(),
        plan: StaticPlan::new(["21", "22"], ["600"]),
    };
    let mut line = Line::new(LineConfig::default(), Box::new(plan)).unwrap();
    let mut hook = None;
    for _ in 0..250 {
        match ports.inputs.try_recv() {
            Ok(PortInput::Hook(1, ev)) => {
                hook = Some(ev);
                break;
            }
            Ok(PortInput::Hook(i, _)) => panic!("hook event of port {}", i + 1),
            Ok(PortInput::Audio(..) | PortInput::Fax(_)) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let ev = hook.expect("port 2 reports the handset lifted within 5 s");
    assert_eq!(ev.hook, Hook::OffHook);
    line.handle_hook(crate::clock::now(), ev);
    while let Some(out) = line.poll_output() {
        ports.outputs.send((1, PortOutput::Line(out))).unwrap();
    }
    // The PCM's file records what the port played: dial tone, after the silence before.
    let mut last = vec![0i16; 160];
    for _ in 0..250 {
        std::thread::sleep(Duration::from_millis(20));
        let bytes = std::fs::read(&recorded).unwrap_or_default();
        if bytes.len() >= 160 {
            pbx_hal::audio::decode(PcmCodec::ALaw, &bytes[bytes.len() - 160..], &mut last);
            if tone_share(&last, 425.0) > 0.9 {
                return;
            }
        }
    }
    panic!(
        "no 425 Hz dial tone in the PCM within 5 s (last frame's share {:.2})",
        tone_share(&last, 425.0)
    );
}

#[test]
fn the_pcm_name_gets_the_port_number() {
    assert_eq!(board::pcm_name("pbx_slot{port}", 2), "pbx_slot2");
    assert_eq!(board::pcm_name("hw:0,0", 2), "hw:0,0");
}
