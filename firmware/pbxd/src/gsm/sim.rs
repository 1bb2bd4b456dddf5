//! `--hardware sim` without `--modem`: the EC25 emulator on a pty, its in-memory audio
//! feeding the audio bridge, and a control socket (`DATA/modem.sock`, one command per
//! line, one answer line each) that plays the mobile network and the far end:
//! - `ring NUMBER`: a call from NUMBER (`anonymous`: withheld)
//! - `answer`, `busy`, `hangup`: the far end of the current call
//! - `call`: `none`, or `<in|out> <number> <dialing|alerting|active|incoming> [emergency]`
//! - `tone HZ`: the far end speaks a sine of HZ (0: silence)
//! - `hear HZ`: the level of HZ in what the far end heard in the last 200 ms, in dB
//!   relative to the whole signal (`hear=-0.3`; about 0 when HZ is all there is)
//! - `pcm`: the PCM interface the host set with AT+QDAI, or `-`
//! - `sms FROM TEXT`: an SMS arrives

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use pbx_hal::modem::emulator::{CallPhase, Ec25};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tracing::warn;

use crate::media::dsp::goertzel_power;

/// Serves the control socket at `path` for the emulator `modem`.
pub fn spawn_control(path: &Path, modem: Arc<Mutex<Ec25>>) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let modem = Arc::clone(&modem);
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let answer = command(&line, &modem);
                    if w.write_all(format!("{answer}\n").as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(())
}

/// One control command; the answer line.
pub fn command(line: &str, modem: &Mutex<Ec25>) -> String {
    let mut m = modem.lock().unwrap_or_else(PoisonError::into_inner);
    let (verb, rest) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
    let done = |r: Result<(), pbx_hal::modem::emulator::ScriptError>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("error: {e}"),
    };
    match verb {
        "ring" if !rest.is_empty() => {
            // The emulator sends no +CLIP number for an empty one.
            let number = if rest == "anonymous" { "" } else { rest };
            done(m.incoming_call(number))
        }
        "answer" => done(m.remote_answers()),
        "busy" => done(m.remote_busy()),
        "hangup" => done(m.remote_hangup()),
        "call" => match m.call() {
            None => "none".into(),
            Some(c) => format!(
                "{} {} {}{}",
                if c.outgoing { "out" } else { "in" },
                c.number,
                match c.phase {
                    CallPhase::Active => "active",
                    CallPhase::Dialing => "dialing",
                    CallPhase::Alerting => "alerting",
                    CallPhase::Incoming => "incoming",
                },
                if c.emergency { " emergency" } else { "" }
            ),
        },
        "tone" => match rest.parse::<f32>() {
            Ok(hz) => {
                m.set_far_end_tone((hz > 0.0).then_some(hz));
                "ok".into()
            }
            Err(_) => "error: tone HZ".into(),
        },
        "hear" => match rest.parse::<f32>() {
            Ok(hz) => hear(&m.far_end_heard(), hz),
            Err(_) => "error: hear HZ".into(),
        },
        "pcm" => m.pcm_interface().unwrap_or("-").to_owned(),
        "sms" => match rest.split_once(' ') {
            Some((from, text)) => match m.deliver_sms(from, text) {
                Ok(_) => "ok".into(),
                Err(e) => format!("error: {e}"),
            },
            None => "error: sms FROM TEXT".into(),
        },
        _ => {
            warn!(line, "unknown modem control command");
            "error: unknown command".into()
        }
    }
}

/// The level of `hz` in `x` relative to its whole power, in dB.
fn hear(x: &[i16], hz: f32) -> String {
    let total: f64 = x.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    if total <= 0.0 {
        return "hear=-inf".into();
    }
    // A sine alone has Goertzel power (a n / 2)^2 and total power n a^2 / 2: their
    // ratio, scaled by 2 / n, is 1 (0 dB) when the tone is all there is.
    let n = x.len() as f64;
    let rel = 2.0 * f64::from(goertzel_power(x, hz)) / (n * total);
    format!("hear={:.1}", 10.0 * rel.max(1e-12).log10())
}
