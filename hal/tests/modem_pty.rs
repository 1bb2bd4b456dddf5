//! The real serial path: the AT `Session` talks to the EC25 emulator through a kernel
//! pseudo-terminal opened like a serial device. The emulator counts SIM attempts, so a
//! wrong PIN costing exactly one attempt is checked on the SIM's side.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use pbx_hal::modem::command::{Command, CommandKind, DialNumber, Pin};
use pbx_hal::modem::emulator::{Ec25, Ec25Config, PtyModem};
use pbx_hal::modem::lines::GarbageKind;
use pbx_hal::modem::pdu::{self, Address, Alphabet, Body, Reassembler, SubmitOptions};
use pbx_hal::modem::pin::{PinError, PinGuard, PinOutcome};
use pbx_hal::modem::response::{CallDirection, CallState, CallerId, CmeError, RegStatus, SimState};
use pbx_hal::modem::session::{
    CommandError, Discarded, ModemEvent, Response, Session, SessionConfig,
};

/// The test's clock: the emulator thread runs on real time, so the session does too.
#[allow(clippy::disallowed_methods)]
fn wall_now() -> Instant {
    Instant::now()
}

/// Longest any step may take before the test gives up.
const STEP_LIMIT: Duration = Duration::from_secs(5);

/// The host side: the session driven over the pty, and the events it reported.
struct Host {
    // Declared before `emu` so the port closes before the emulator thread stops.
    port: File,
    session: Session,
    events: Vec<ModemEvent>,
    emu: PtyModem,
}

impl Host {
    fn new(config: Ec25Config) -> Host {
        let emu = PtyModem::spawn(Ec25::new(config)).expect("openpty");
        let port = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(OFlag::O_NOCTTY.bits())
            .open(emu.slave_path())
            .expect("open the pty slave");
        let session = Session::new(SessionConfig {
            prompt_timeout: Duration::from_millis(500),
            ..SessionConfig::default()
        });
        Host {
            port,
            session,
            events: Vec::new(),
            emu,
        }
    }

    /// Echo off and numeric errors, as the daemon's start-up does.
    fn with_setup(config: Ec25Config) -> Host {
        let mut h = Host::new(config);
        assert_eq!(h.run(Command::EchoOff), Ok(Response::Ok));
        assert_eq!(h.run(Command::EnableNumericErrors), Ok(Response::Ok));
        h
    }

    /// One turn of the run loop: write, wait up to `max` for bytes, read, time-outs.
    fn step(&mut self, max: Duration) {
        while let Some(bytes) = self.session.poll_transmit() {
            self.port.write_all(&bytes).expect("write to the pty");
        }
        let now = wall_now();
        let wait = self
            .session
            .poll_timeout()
            .map_or(max, |t| t.saturating_duration_since(now).min(max));
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.port.as_fd(), PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::from(ms)).expect("poll");
        if n > 0 {
            let mut buf = [0u8; 1024];
            let got = self.port.read(&mut buf).expect("read from the pty");
            self.session.handle_input(wall_now(), &buf[..got]);
        }
        self.session.handle_timeout(wall_now());
        self.events
            .extend(std::iter::from_fn(|| self.session.poll_event()));
        while let Some(bytes) = self.session.poll_transmit() {
            self.port.write_all(&bytes).expect("write to the pty");
        }
    }

    /// Run until `pick` takes an event (events before it stay in `self.events`).
    fn wait_for<T>(&mut self, what: &str, mut pick: impl FnMut(&ModemEvent) -> Option<T>) -> T {
        let start = wall_now();
        loop {
            if let Some(i) = self.events.iter().position(|e| pick(e).is_some()) {
                let e = self.events.remove(i);
                return pick(&e).expect("matched just above");
            }
            assert!(
                wall_now() - start < STEP_LIMIT,
                "no {what} within {STEP_LIMIT:?}; events: {:?}",
                self.events
            );
            self.step(Duration::from_millis(20));
        }
    }

    /// Send a command and wait for its result.
    fn run(&mut self, cmd: Command) -> Result<Response, CommandError> {
        let id = self.session.send(wall_now(), cmd).expect("queue");
        self.wait_for("command result", |e| match e {
            ModemEvent::CommandCompleted { id: i, result, .. } if *i == id => Some(result.clone()),
            _ => None,
        })
    }

    /// Keep the loop running for `d` (lets URCs arrive).
    fn settle(&mut self, d: Duration) {
        let end = wall_now() + d;
        while wall_now() < end {
            self.step(Duration::from_millis(10));
        }
    }

    fn calls(&mut self) -> Vec<(CallDirection, CallState, Option<String>)> {
        match self.run(Command::ListCalls) {
            Ok(Response::Calls(c)) => c
                .into_iter()
                .map(|c| (c.direction, c.state, c.number))
                .collect(),
            other => panic!("AT+CLCC: {other:?}"),
        }
    }
}

fn no_pin() -> Ec25Config {
    Ec25Config {
        pin: None,
        ..Ec25Config::default()
    }
}

#[test]
fn pin_entry_through_the_guard_spends_exactly_one_attempt_on_a_wrong_pin() {
    let mut h = Host::with_setup(Ec25Config::default());
    let mut guard = PinGuard::new();
    let Ok(Response::SimState(s)) = h.run(Command::QuerySimState) else {
        panic!("no SIM state")
    };
    assert_eq!(s, SimState::PinRequired);
    guard.record_sim_state(s);
    let Ok(Response::PinCounters(c)) = h.run(Command::QueryPinCounters) else {
        panic!("no counters")
    };
    assert_eq!((c.pin_left, c.puk_left), (3, 10));
    guard.record_counters(c);

    let wrong = Pin::new("9999").unwrap();
    let cmd = guard.check_pin(&wrong, false).unwrap();
    let result = h.run(cmd);
    assert_eq!(result, Err(CommandError::Cme(CmeError::Code(16))));
    assert_eq!(
        guard.record_result(&result),
        PinOutcome::Rejected {
            attempts_left: Some(2)
        }
    );
    assert_eq!(h.emu.modem().pin_attempts_left().pin_left, 2);

    // The guard refuses to send it again: nothing reaches the SIM.
    let seen = h.emu.modem().commands_seen();
    assert_eq!(
        guard.check_pin(&wrong, true),
        Err(PinError::Rejected {
            attempts_left: Some(2)
        })
    );
    h.settle(Duration::from_millis(50));
    assert_eq!(h.emu.modem().commands_seen(), seen);
    assert_eq!(h.emu.modem().pin_attempts_left().pin_left, 2);

    let right = Pin::new("1234").unwrap();
    let result = h.run(guard.check_pin(&right, false).unwrap());
    assert_eq!(result, Ok(Response::Ok));
    assert_eq!(guard.record_result(&result), PinOutcome::Accepted);
    assert_eq!(
        h.run(Command::QuerySimState),
        Ok(Response::SimState(SimState::Ready))
    );
    // With the SIM ready the module registers and says so unsolicited.
    let reg = h.wait_for("+CREG", |e| match e {
        ModemEvent::RegistrationChanged {
            eps: false,
            registration,
        } => Some(registration.status),
        _ => None,
    });
    assert_eq!(reg, RegStatus::Home);
    assert_eq!(h.emu.modem().pin_attempts_left().pin_left, 3);
}

#[test]
fn incoming_call_rings_with_caller_id_and_the_remote_hangs_up() {
    let mut h = Host::with_setup(no_pin());
    assert_eq!(h.run(Command::EnableCallerId), Ok(Response::Ok));
    h.emu.modem().incoming_call("+4930123456").unwrap();
    h.wait_for("RING", |e| {
        matches!(e, ModemEvent::IncomingCall).then_some(())
    });
    let clip = h.wait_for("+CLIP", |e| match e {
        ModemEvent::CallerId(c) => Some(c.clone()),
        _ => None,
    });
    assert_eq!(
        clip,
        CallerId {
            number: Some("+4930123456".into()),
            number_type: 145,
            validity: Some(0)
        }
    );
    assert_eq!(h.run(Command::Answer), Ok(Response::Ok));
    assert_eq!(
        h.calls(),
        [(
            CallDirection::Incoming,
            CallState::Active,
            Some("+4930123456".into())
        )]
    );
    h.emu.modem().remote_hangup().unwrap();
    h.wait_for("NO CARRIER", |e| {
        matches!(e, ModemEvent::RemoteHangup).then_some(())
    });
    assert_eq!(h.calls(), []);
}

#[test]
fn outgoing_call_alerts_is_answered_and_ends_with_remote_hangup() {
    let mut h = Host::with_setup(Ec25Config {
        alert_delay: Duration::from_millis(400),
        ..no_pin()
    });
    let number = DialNumber::new("+4917012345").unwrap();
    assert_eq!(h.run(Command::Dial(number.clone())), Ok(Response::Ok));
    assert_eq!(
        h.calls(),
        [(
            CallDirection::Outgoing,
            CallState::Dialing,
            Some("+4917012345".into())
        )]
    );
    h.settle(Duration::from_millis(450)); // past the alert delay
    assert_eq!(h.calls()[0].1, CallState::Alerting);
    h.emu.modem().remote_answers().unwrap();
    assert_eq!(h.calls()[0].1, CallState::Active);
    h.emu.modem().remote_hangup().unwrap();
    h.wait_for("NO CARRIER", |e| {
        matches!(e, ModemEvent::RemoteHangup).then_some(())
    });
    assert_eq!(
        h.run(Command::QueryCallEndReason),
        Ok(Response::CallEndReason("Normal call clearing".into()))
    );

    // A busy callee.
    assert_eq!(h.run(Command::Dial(number)), Ok(Response::Ok));
    h.emu.modem().remote_busy().unwrap();
    h.wait_for("BUSY", |e| {
        matches!(e, ModemEvent::RemoteBusy).then_some(())
    });
    assert_eq!(h.calls(), []);
}

#[test]
fn emergency_call_goes_out_without_the_pin() {
    let mut h = Host::with_setup(Ec25Config::default());
    assert_eq!(
        h.run(Command::Dial(DialNumber::new("030123").unwrap())),
        Err(CommandError::Cme(CmeError::Code(11)))
    );
    assert_eq!(
        h.run(Command::Dial(DialNumber::new("112").unwrap())),
        Ok(Response::Ok)
    );
    assert!(h.emu.modem().call().is_some_and(|c| c.emergency));
    assert_eq!(h.emu.modem().pin_attempts_left().pin_left, 3);
}

#[test]
fn sms_round_trip_in_gsm7_with_extension_chars_ucs2_and_multipart() {
    // Echo stays on: the session must recognise the echoed command lines and PDU hex.
    let mut h = Host::new(no_pin());
    assert_eq!(h.run(Command::SetPduMode), Ok(Response::Ok));
    let texts = [
        ("Preis: 10€ {Rabatt} [a|b] ~^\\", Alphabet::Gsm7),
        ("Grüße aus München 😀", Alphabet::Ucs2),
        (&*"Lang und länger. ".repeat(12), Alphabet::Gsm7),
    ];
    for (i, (text, alphabet)) in texts.iter().enumerate() {
        let opts = SubmitOptions {
            concat_ref: i as u8,
            ..SubmitOptions::default()
        };
        let parts = pdu::encode_submit("+4915112345678", text, &opts).unwrap();
        let before = h.emu.modem().sent_sms().len();
        for p in &parts {
            let Ok(Response::SmsSent { reference }) = h.run(Command::SendSms(p.clone())) else {
                panic!("CMGS failed for {text:?}")
            };
            let sent = h.emu.modem().sent_sms().last().cloned().unwrap();
            assert_eq!(sent.reference, reference);
            assert_eq!(sent.pdu, p.bytes());
        }
        // The emulator decoded exactly the text we meant.
        let modem = h.emu.modem();
        let sent = &modem.sent_sms()[before..];
        assert_eq!(sent.len(), parts.len());
        let mut got = String::new();
        for s in sent {
            assert_eq!(
                s.submit.destination,
                Address::International("+4915112345678".into())
            );
            assert_eq!(s.submit.alphabet, *alphabet, "{text:?}");
            let Body::Text(t) = &s.submit.body else {
                panic!("binary body")
            };
            got.push_str(t);
        }
        assert_eq!(got, *text);
    }
    assert_eq!(
        h.emu.modem().sent_sms().len(),
        4,
        "the long text is 2 parts"
    );

    // Inbound: +CMTI, AT+CMGR, decode, reassemble, delete.
    let mut reasm = Reassembler::new(4);
    for (text, _) in &texts {
        let indexes = h.emu.modem().deliver_sms("+4930999", text).unwrap();
        let mut whole = None;
        for _ in &indexes {
            let index = h.wait_for("+CMTI", |e| match e {
                ModemEvent::SmsReceived { storage, index } if storage == "SM" => Some(*index),
                _ => None,
            });
            let Ok(Response::SmsRead(Some(stored))) = h.run(Command::ReadSms(index)) else {
                panic!("CMGR {index}")
            };
            assert_eq!(usize::from(stored.header.length), stored.pdu.len() - 1);
            let d = pdu::decode_deliver(&stored.pdu).unwrap();
            assert_eq!(d.sender, Address::International("+4930999".into()));
            whole = reasm.push(d).or(whole);
            assert_eq!(h.run(Command::DeleteSms(index)), Ok(Response::Ok));
        }
        let msg = whole.expect("all parts arrived");
        assert_eq!(msg.body, Body::Text((*text).to_owned()));
    }
    assert!(h.emu.modem().stored_sms().is_empty());
    assert_eq!(h.run(Command::ReadSms(1)), Ok(Response::SmsRead(None)));
}

#[test]
fn a_silent_modem_times_out_and_asks_for_recovery() {
    let mut h = Host::with_setup(no_pin());
    h.emu.modem().go_silent();
    let start = wall_now();
    for _ in 0..3 {
        assert_eq!(
            h.run(Command::At),
            Err(CommandError::Timeout(CommandKind::At.timeout()))
        );
    }
    assert!(wall_now() - start >= CommandKind::At.timeout() * 3);
    let r = h.wait_for("RecoveryNeeded", |e| match e {
        ModemEvent::RecoveryNeeded {
            consecutive_timeouts,
            attempt,
        } => Some((*consecutive_timeouts, *attempt)),
        _ => None,
    });
    assert_eq!(r, (3, 1));
    // Recovery (here: the modem comes back) and the session works again.
    h.emu.modem().wake_up();
    assert_eq!(h.run(Command::Reset), Ok(Response::Ok));
}

#[test]
fn garbage_in_the_middle_of_a_response_is_skipped() {
    let mut h = Host::with_setup(no_pin());
    h.emu
        .modem()
        .inject_garbage(b"\r\n\xff\xfe\x01\x02junk\r\n");
    assert_eq!(
        h.run(Command::QuerySignal),
        Ok(Response::Signal(pbx_hal::modem::response::SignalQuality {
            rssi_dbm: Some(-73),
            ber: None
        }))
    );
    h.wait_for("discarded garbage", |e| match e {
        ModemEvent::Discarded(Discarded::Garbage(GarbageKind::NotText { .. })) => Some(()),
        _ => None,
    });
}

#[test]
fn a_reset_mid_command_times_out_the_command_and_the_module_says_rdy() {
    // The boot outlasts the command's 300 ms time-out: the session reads an unknown line
    // while a command is in flight as that command's information, so an earlier `RDY`
    // would not surface as an event.
    let mut h = Host::with_setup(Ec25Config {
        boot_time: Duration::from_millis(450),
        ..Ec25Config::default()
    });
    h.emu.modem().reset_mid_command();
    assert_eq!(
        h.run(Command::QuerySignal),
        Err(CommandError::Timeout(CommandKind::QuerySignal.timeout()))
    );
    h.wait_for("RDY", |e| match e {
        ModemEvent::Unsolicited(s) if s == "RDY" => Some(()),
        _ => None,
    });
    h.wait_for("+CPIN: SIM PIN", |e| match e {
        ModemEvent::SimState(SimState::PinRequired) => Some(()),
        _ => None,
    });
    // The reboot turned echo back on; the session copes with the echo.
    assert_eq!(
        h.run(Command::QuerySimState),
        Ok(Response::SimState(SimState::PinRequired))
    );
}

#[test]
fn a_lost_sim_is_reported_and_the_network_is_lost() {
    let mut h = Host::with_setup(no_pin());
    h.emu.modem().remove_sim();
    h.wait_for("+CPIN: NOT INSERTED", |e| match e {
        ModemEvent::SimState(SimState::NotInserted) => Some(()),
        _ => None,
    });
    let reg = h.wait_for("+CREG", |e| match e {
        ModemEvent::RegistrationChanged {
            eps: false,
            registration,
        } => Some(registration.status),
        _ => None,
    });
    assert_eq!(reg, RegStatus::NotRegistered);
    assert_eq!(
        h.run(Command::QuerySimState),
        Err(CommandError::Cme(CmeError::Code(10)))
    );
    h.emu.modem().insert_sim();
    h.wait_for("+CPIN: READY", |e| match e {
        ModemEvent::SimState(SimState::Ready) => Some(()),
        _ => None,
    });
}
