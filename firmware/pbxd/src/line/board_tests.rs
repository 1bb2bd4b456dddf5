//! The board's port path without hardware: [`board::bring_up`], [`BoardIo`] and the
//! shared ports thread, with injected devices: the real SLIC driver on the emulated chip
//! where the board has spidev and GPIO lines, and alsa-lib's `file`/`null` plugins as the
//! PCM (no sound card). The test plays the SIP task's part with a real line core.

use std::time::Duration;

use pbx_hal::audio::alsa::AlsaAudio;
use pbx_hal::audio::{AudioConfig, PcmCodec};
use pbx_hal::fxs::emulator::VirtualSlic;
use pbx_hal::fxs::{BoardFile, Slic};

use super::board::{self, BoardIo, SleepDelay};
use super::legs::PortOutput;
use super::sim::{spawn_ports, PortInput, PortsHealth};
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

#[test]
fn a_board_port_plays_dial_tone_into_its_pcm_and_a_wrong_chip_id_is_faulty_alone() {
    let dir = tempfile::tempdir().unwrap();
    let recorded = dir.path().join("port2.raw");
    let playback = format!("file:'{}',raw", recorded.display());
    let bring = BoardFile::parse(BOARD).unwrap();
    // What board::spawn does after opening the devices, with these in their place.
    let open = move |now| {
        (1..=2)
            .map(|port| -> Result<_, String> {
                let chip = VirtualSlic::new(now);
                if port == 1 {
                    chip.set_chip_id(0x00);
                }
                let slic = Slic::new(chip.clone(), chip.reset_pin(), chip.irq_pin());
                let name = if port == 2 { playback.as_str() } else { "null" };
                let audio = AlsaAudio::open(Some(name), Some("null"), AudioConfig::default())
                    .map_err(|e| e.to_string())?;
                let io = board::bring_up(BoardIo { slic, audio }, &bring, &mut SleepDelay)?;
                // The handset is off the hook as the port starts.
                chip.phone().off_hook(now);
                Ok(io)
            })
            .collect()
    };
    let exts = ["21".to_owned(), "22".to_owned()];
    let relay = "127.0.0.1".parse().unwrap();
    let mut ports = spawn_ports(&exts, relay, None, open, |_| {}).unwrap();
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
    let ev = loop {
        match ports.inputs.blocking_recv() {
            Some(PortInput::Hook(1, ev)) => break ev,
            Some(PortInput::Hook(i, _)) => panic!("hook event of port {}", i + 1),
            Some(PortInput::Audio(..)) => {}
            None => panic!("the ports thread ended"),
        }
    };
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
