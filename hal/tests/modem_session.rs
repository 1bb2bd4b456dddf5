//! Scripted conversations with the AT session core: bytes in, bytes out, simulated clock.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use pbx_hal::modem::command::{Command, CommandKind, DialNumber, Pin};
use pbx_hal::modem::lines::GarbageKind;
use pbx_hal::modem::pdu::{self, encode_submit, Address, Body, SubmitOptions};
use pbx_hal::modem::pin::{PinError, PinGuard, PinOutcome};
use pbx_hal::modem::response::{
    CallerId, CmeError, PinCounters, RegStatus, Registration, SignalQuality, SimState,
};
use pbx_hal::modem::session::{
    CommandError, CommandId, Discarded, ModemEvent, Response, SendError, Session, SessionConfig,
};

struct Harness {
    s: Session,
    start: Instant,
    now: Instant,
}

impl Harness {
    // Only the origin comes from the clock; every later instant is simulated.
    #[allow(clippy::disallowed_methods)]
    fn new() -> Self {
        let start = Instant::now();
        Harness {
            s: Session::new(SessionConfig::default()),
            start,
            now: start,
        }
    }
    fn send(&mut self, cmd: Command) -> CommandId {
        self.s.send(self.now, cmd).unwrap()
    }
    /// Everything the session wants written, concatenated.
    fn tx(&mut self) -> Vec<u8> {
        std::iter::from_fn(|| self.s.poll_transmit())
            .flatten()
            .collect()
    }
    fn rx(&mut self, bytes: &[u8]) {
        self.s.handle_input(self.now, bytes);
    }
    fn events(&mut self) -> Vec<ModemEvent> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }
    fn elapsed(&self) -> Duration {
        self.now - self.start
    }
    /// Jump to the next deadline and fire it.
    fn fire_timeout(&mut self) {
        self.now = self.s.poll_timeout().unwrap();
        self.s.handle_timeout(self.now);
    }
}

fn done(id: CommandId, kind: CommandKind, result: Result<Response, CommandError>) -> ModemEvent {
    ModemEvent::CommandCompleted { id, kind, result }
}

#[test]
fn pin_query_then_entry_with_echo_on() {
    let mut h = Harness::new();
    let mut guard = PinGuard::new();

    let id = h.send(Command::QuerySimState);
    assert_eq!(h.tx(), b"AT+CPIN?\r");
    h.rx(b"AT+CPIN?\r\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n");
    assert_eq!(
        h.events(),
        [done(
            id,
            CommandKind::QuerySimState,
            Ok(Response::SimState(SimState::PinRequired))
        )]
    );
    guard.record_sim_state(SimState::PinRequired);

    let id = h.send(Command::QueryPinCounters);
    assert_eq!(h.tx(), b"AT+QPINC=\"SC\"\r");
    h.rx(b"AT+QPINC=\"SC\"\r\r\n+QPINC: \"SC\",3,10\r\n\r\nOK\r\n");
    let counters = PinCounters {
        pin_left: 3,
        puk_left: 10,
    };
    assert_eq!(
        h.events(),
        [done(
            id,
            CommandKind::QueryPinCounters,
            Ok(Response::PinCounters(counters))
        )]
    );
    guard.record_counters(counters);

    let cmd = guard.check_pin(&Pin::new("4711").unwrap(), false).unwrap();
    let id = h.send(cmd);
    assert_eq!(h.tx(), b"AT+CPIN=\"4711\"\r");
    h.rx(b"AT+CPIN=\"4711\"\r\r\nOK\r\n\r\n+CPIN: READY\r\n\r\n+QIND: SMS DONE\r\n");
    let events = h.events();
    assert_eq!(
        events,
        [
            done(id, CommandKind::EnterPin, Ok(Response::Ok)),
            ModemEvent::SimState(SimState::Ready),
            ModemEvent::ModuleIndication("SMS DONE".into()),
        ]
    );
    let ModemEvent::CommandCompleted { result, .. } = &events[0] else {
        unreachable!()
    };
    assert_eq!(guard.record_result(result), PinOutcome::Accepted);
}

#[test]
fn ring_and_clip_in_the_middle_of_a_csq_response_are_demultiplexed() {
    let mut h = Harness::new();
    let id = h.send(Command::QuerySignal);
    assert_eq!(h.tx(), b"AT+CSQ\r");
    // Split at awkward places: inside a line, between CR and LF.
    let input: &[u8] =
        b"\r\n+CSQ: 20,99\r\n\r\nRING\r\n\r\n+CLIP: \"+4930123456\",145,\"\",0,\"\",0\r\n\r\nOK\r\n";
    for chunk in input.chunks(5) {
        h.rx(chunk);
    }
    assert_eq!(
        h.events(),
        [
            ModemEvent::IncomingCall,
            ModemEvent::CallerId(CallerId {
                number: Some("+4930123456".into()),
                number_type: 145,
                validity: Some(0),
            }),
            done(
                id,
                CommandKind::QuerySignal,
                Ok(Response::Signal(SignalQuality {
                    rssi_dbm: Some(-73),
                    ber: None
                }))
            ),
        ]
    );
}

#[test]
fn a_command_that_never_answers_times_out_and_the_next_one_proceeds() {
    let mut h = Harness::new();
    let at = h.send(Command::At);
    let csq = h.send(Command::QuerySignal);
    assert_eq!(h.tx(), b"AT\r", "one command in flight");
    assert_eq!(
        h.s.poll_timeout(),
        Some(h.start + Duration::from_millis(300))
    );

    // Just before the deadline nothing happens (spurious wake-up).
    h.now = h.start + Duration::from_millis(299);
    h.s.handle_timeout(h.now);
    assert_eq!(h.events(), []);

    h.fire_timeout();
    assert_eq!(h.elapsed(), Duration::from_millis(300));
    assert_eq!(
        h.events(),
        [done(
            at,
            CommandKind::At,
            Err(CommandError::Timeout(Duration::from_millis(300)))
        )]
    );
    assert_eq!(h.tx(), b"AT+CSQ\r");
    assert_eq!(
        h.s.poll_timeout(),
        Some(h.start + Duration::from_millis(600))
    );
    h.rx(b"\r\n+CSQ: 31,0\r\n\r\nOK\r\n");
    assert_eq!(
        h.events(),
        [done(
            csq,
            CommandKind::QuerySignal,
            Ok(Response::Signal(SignalQuality {
                rssi_dbm: Some(-51),
                ber: Some(0)
            }))
        )]
    );
    assert_eq!(h.s.poll_timeout(), None);
}

#[test]
fn timeouts_follow_the_per_command_table() {
    let mut h = Harness::new();
    h.send(Command::Dial(DialNumber::new("112").unwrap()));
    assert_eq!(h.tx(), b"ATD112;\r");
    h.fire_timeout();
    assert_eq!(h.elapsed(), Duration::from_secs(180));
    h.send(Command::QuerySimState);
    let t0 = h.now;
    h.fire_timeout();
    assert_eq!(h.now - t0, Duration::from_secs(5));
}

#[test]
fn with_probing_a_timed_out_command_is_followed_by_an_at_and_its_silence_asks_for_recovery() {
    let mut h = Harness::new();
    h.s = Session::new(SessionConfig {
        probe_after_timeout: true,
        ..SessionConfig::default()
    });
    // A dial and a queued status query; the module says nothing.
    let dial = h.send(Command::Dial(DialNumber::new("112").unwrap()));
    let queued = h.send(Command::QuerySignal);
    assert_eq!(h.tx(), b"ATD112;\r");
    h.fire_timeout();
    // The probe goes out ahead of the queued query, with the short time-out of AT.
    assert_eq!(h.tx(), b"AT\r");
    let t0 = h.now;
    h.fire_timeout();
    assert_eq!(h.now - t0, CommandKind::At.timeout());
    assert_eq!(
        h.events(),
        [
            done(
                dial,
                CommandKind::Dial,
                Err(CommandError::Timeout(CommandKind::Dial.timeout()))
            ),
            ModemEvent::RecoveryNeeded {
                consecutive_timeouts: 2,
                attempt: 1
            }
        ],
        "the probe itself reports nothing but its silence"
    );
    // The shell resets the session: the queued query is aborted, the probe is not reported.
    h.s.reset();
    assert_eq!(
        h.events(),
        [done(
            queued,
            CommandKind::QuerySignal,
            Err(CommandError::Aborted)
        )]
    );

    // A slow command on a live modem: the probe is answered and nothing more happens.
    let _ = h.tx();
    let slow = h.send(Command::QueryOperator);
    let _ = h.tx();
    h.fire_timeout();
    assert_eq!(h.tx(), b"AT\r");
    h.rx(b"\r\nOK\r\n");
    assert_eq!(
        h.events(),
        [done(
            slow,
            CommandKind::QueryOperator,
            Err(CommandError::Timeout(CommandKind::QueryOperator.timeout()))
        )]
    );
    assert_eq!(h.s.in_flight(), None);
    let id = h.send(Command::At);
    h.rx(b"\r\nOK\r\n");
    assert_eq!(h.events(), [done(id, CommandKind::At, Ok(Response::Ok))]);
}

#[test]
fn three_timeouts_in_a_row_ask_for_recovery_and_an_answer_resets_the_count() {
    let mut h = Harness::new();
    // Two time-outs, then an answer: no recovery.
    for _ in 0..2 {
        h.send(Command::At);
        h.fire_timeout();
    }
    h.send(Command::At);
    h.rx(b"\r\nOK\r\n");
    assert!(!h
        .events()
        .iter()
        .any(|e| matches!(e, ModemEvent::RecoveryNeeded { .. })));

    for _ in 0..3 {
        h.send(Command::At);
        h.fire_timeout();
    }
    let events = h.events();
    assert_eq!(events.len(), 4);
    assert_eq!(
        events[3],
        ModemEvent::RecoveryNeeded {
            consecutive_timeouts: 3,
            attempt: 1
        }
    );

    // The shell tries ATZ; it gets no answer either, nor do two more commands: round 2
    // (the shell power-cycles the module).
    let _ = h.tx();
    h.send(Command::Reset);
    assert_eq!(h.tx(), b"ATZ\r");
    for _ in 0..2 {
        h.fire_timeout();
        h.send(Command::At);
    }
    h.fire_timeout();
    assert_eq!(
        h.events().last(),
        Some(&ModemEvent::RecoveryNeeded {
            consecutive_timeouts: 3,
            attempt: 2
        })
    );

    // After the power cycle the modem answers; the session carries on.
    h.s.reset();
    let _ = (h.events(), h.tx());
    let id = h.send(Command::At);
    h.rx(b"\r\nOK\r\n");
    assert_eq!(h.events(), [done(id, CommandKind::At, Ok(Response::Ok))]);
}

#[test]
fn sms_is_sent_in_two_steps_after_the_prompt() {
    let mut h = Harness::new();
    let opts = SubmitOptions {
        validity: Some(0xAA),
        ..SubmitOptions::default()
    };
    let pdu = encode_submit("+46708251358", "hellohello", &opts)
        .unwrap()
        .remove(0);
    let id = h.send(Command::SendSms(pdu));
    assert_eq!(h.tx(), b"AT+CMGS=23\r");
    assert_eq!(
        h.s.poll_timeout(),
        Some(h.start + Duration::from_secs(5)),
        "prompt wait"
    );

    h.now += Duration::from_millis(50);
    h.rx(b"AT+CMGS=23\r\r\n> ");
    assert_eq!(
        h.tx(),
        b"0011000B916407281553F80000AA0AE8329BFD4697D9EC37\x1a"
    );
    assert_eq!(h.s.poll_timeout(), Some(h.now + Duration::from_secs(120)));
    assert_eq!(h.events(), []);

    // The modem echoes the PDU (echo on), then answers after a while.
    h.rx(b"0011000B916407281553F80000AA0AE8329BFD4697D9EC37\x1a");
    h.now += Duration::from_secs(3);
    h.rx(b"\r\n+CMGS: 42\r\n\r\nOK\r\n");
    assert_eq!(
        h.events(),
        [done(
            id,
            CommandKind::SendSms,
            Ok(Response::SmsSent { reference: 42 })
        )]
    );
}

#[test]
fn sms_prompt_that_never_comes_cancels_with_escape() {
    let mut h = Harness::new();
    let pdu = encode_submit("+4915112345678", "hi", &SubmitOptions::default())
        .unwrap()
        .remove(0);
    let id = h.send(Command::SendSms(pdu));
    let _ = h.tx();
    h.fire_timeout();
    assert_eq!(h.elapsed(), Duration::from_secs(5));
    assert_eq!(h.tx(), b"\x1b");
    assert_eq!(
        h.events(),
        [done(
            id,
            CommandKind::SendSms,
            Err(CommandError::Timeout(Duration::from_secs(5)))
        )]
    );
}

#[test]
fn sms_send_refused_by_the_network_is_a_cms_error() {
    let mut h = Harness::new();
    let pdu = encode_submit("+4915112345678", "hi", &SubmitOptions::default())
        .unwrap()
        .remove(0);
    let id = h.send(Command::SendSms(pdu));
    let _ = h.tx();
    h.rx(b"\r\n> ");
    let _ = h.tx();
    h.rx(b"\r\n+CMS ERROR: 500\r\n");
    assert_eq!(
        h.events(),
        [done(id, CommandKind::SendSms, Err(CommandError::Cms(500)))]
    );
}

#[test]
fn wrong_pin_is_remembered_and_never_sent_again() {
    let mut h = Harness::new();
    let mut guard = PinGuard::new();
    guard.record_counters(PinCounters {
        pin_left: 3,
        puk_left: 10,
    });
    let wrong = Pin::new("0000").unwrap();

    let id = h.send(guard.check_pin(&wrong, false).unwrap());
    assert_eq!(h.tx(), b"AT+CPIN=\"0000\"\r");
    h.rx(b"\r\n+CME ERROR: 16\r\n");
    let events = h.events();
    let expected = Err(CommandError::Cme(CmeError::Code(16)));
    assert_eq!(events, [done(id, CommandKind::EnterPin, expected.clone())]);
    assert_eq!(
        guard.record_result(&expected),
        PinOutcome::Rejected {
            attempts_left: Some(2)
        }
    );

    // The same PIN again, even confirmed: refused, nothing is sent.
    assert_eq!(
        guard.check_pin(&wrong, true),
        Err(PinError::Rejected {
            attempts_left: Some(2)
        })
    );
    assert_eq!(h.tx(), b"");
    // A different PIN may be tried.
    let cmd = guard.check_pin(&Pin::new("1234").unwrap(), false).unwrap();
    h.send(cmd);
    assert_eq!(h.tx(), b"AT+CPIN=\"1234\"\r");
}

#[test]
fn garbage_and_overlong_lines_are_skipped() {
    let mut h = Harness::new();
    let id = h.send(Command::QuerySignal);
    let _ = h.tx();
    let mut input = b"\xff\xfe\x00\x13\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'A', 5000));
    input.extend(b"\r\n+CSQ: 10,99\r\n\r\nOK\r\n");
    h.rx(&input);
    assert_eq!(
        h.events(),
        [
            ModemEvent::Discarded(Discarded::Garbage(GarbageKind::NotText { len: 4 })),
            ModemEvent::Discarded(Discarded::Garbage(GarbageKind::TooLong { len: 5000 })),
            done(
                id,
                CommandKind::QuerySignal,
                Ok(Response::Signal(SignalQuality {
                    rssi_dbm: Some(-93),
                    ber: None
                }))
            ),
        ]
    );
}

#[test]
fn call_progress_results_end_dial_but_are_events_otherwise() {
    let mut h = Harness::new();
    let id = h.send(Command::Dial(DialNumber::new("+4930123456").unwrap()));
    assert_eq!(h.tx(), b"ATD+4930123456;\r");
    h.rx(b"\r\nBUSY\r\n");
    assert_eq!(
        h.events(),
        [done(id, CommandKind::Dial, Err(CommandError::Busy))]
    );

    // Quectel: OK at once, then call progress is unsolicited.
    let id = h.send(Command::Dial(DialNumber::new("030123").unwrap()));
    h.rx(b"\r\nOK\r\n\r\nNO ANSWER\r\n");
    assert_eq!(
        h.events(),
        [
            done(id, CommandKind::Dial, Ok(Response::Ok)),
            ModemEvent::RemoteNoAnswer
        ]
    );

    // During an unrelated command, and with nothing in flight: the call ended.
    let id = h.send(Command::QuerySignal);
    h.rx(b"\r\nNO CARRIER\r\n\r\n+CSQ: 99,99\r\n\r\nOK\r\n\r\nNO CARRIER\r\n");
    assert_eq!(
        h.events(),
        [
            ModemEvent::RemoteHangup,
            done(
                id,
                CommandKind::QuerySignal,
                Ok(Response::Signal(SignalQuality {
                    rssi_dbm: None,
                    ber: None
                }))
            ),
            ModemEvent::RemoteHangup,
        ]
    );
}

#[test]
fn creg_answer_and_creg_urc_are_told_apart_by_the_query_in_flight() {
    let mut h = Harness::new();
    let id = h.send(Command::QueryRegistration);
    // `n,stat,...` answer, with an unrelated URC in the middle.
    h.rx(b"\r\n+CREG: 2,1,\"1A2B\",\"01C3D4E5\",7\r\n\r\n+CMTI: \"SM\",3\r\n\r\nOK\r\n");
    // `stat,...` URC while idle: 5 is roaming, not `n`.
    h.rx(b"\r\n+CREG: 5,\"1A2B\",\"01C3D4E5\",7\r\n\r\n+CEREG: 0\r\n");
    assert_eq!(
        h.events(),
        [
            ModemEvent::SmsReceived {
                storage: "SM".into(),
                index: 3
            },
            done(
                id,
                CommandKind::QueryRegistration,
                Ok(Response::Registration(Registration {
                    status: RegStatus::Home,
                    area: Some("1A2B".into()),
                    cell: Some("01C3D4E5".into()),
                    act: Some(7),
                }))
            ),
            ModemEvent::RegistrationChanged {
                eps: false,
                registration: Registration {
                    status: RegStatus::Roaming,
                    area: Some("1A2B".into()),
                    cell: Some("01C3D4E5".into()),
                    act: Some(7),
                },
            },
            ModemEvent::RegistrationChanged {
                eps: true,
                registration: Registration {
                    status: RegStatus::NotRegistered,
                    area: None,
                    cell: None,
                    act: None,
                },
            },
        ]
    );
}

#[test]
fn stored_sms_is_read_and_decoded() {
    let mut h = Harness::new();
    let id = h.send(Command::ReadSms(3));
    assert_eq!(h.tx(), b"AT+CMGR=3\r");
    h.rx(b"\r\n+CMGR: 0,,24\r\n07911326040000F0040B911346610089F60000208071323472800CC8F71D14969741F977FD07\r\n\r\nOK\r\n");
    let events = h.events();
    let [ModemEvent::CommandCompleted {
        id: got,
        result: Ok(Response::SmsRead(Some(sms))),
        ..
    }] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!(*got, id);
    assert_eq!(sms.header.length, 24);
    let d = pdu::decode_deliver(&sms.pdu).unwrap();
    assert_eq!(d.sender, Address::International("+31641600986".into()));
    assert_eq!(d.body, Body::Text("How are you?".into()));

    // An empty slot is OK with no +CMGR line.
    let id = h.send(Command::ReadSms(4));
    h.rx(b"\r\nOK\r\n");
    assert_eq!(
        h.events(),
        [done(id, CommandKind::ReadSms, Ok(Response::SmsRead(None)))]
    );
}

#[test]
fn ok_without_the_expected_information_is_malformed() {
    let mut h = Harness::new();
    let id = h.send(Command::QuerySignal);
    h.rx(b"\r\n+CSQ: banana\r\n\r\nOK\r\n");
    let events = h.events();
    assert!(
        matches!(&events[..], [ModemEvent::CommandCompleted { id: got, result: Err(CommandError::Malformed(_)), .. }] if *got == id),
        "{events:?}"
    );
}

#[test]
fn a_late_answer_after_a_timeout_is_reported_as_stray() {
    let mut h = Harness::new();
    h.send(Command::At);
    h.fire_timeout();
    let _ = h.events();
    h.rx(b"\r\nOK\r\n");
    assert_eq!(
        h.events(),
        [ModemEvent::Discarded(Discarded::StrayResult(
            pbx_hal::modem::response::FinalResult::Ok
        ))]
    );
}

#[test]
fn queue_is_bounded_and_reset_aborts_everything() {
    let mut h = Harness::new();
    let first = h.send(Command::At);
    for _ in 0..16 {
        h.send(Command::At);
    }
    assert_eq!(h.s.send(h.now, Command::At), Err(SendError::QueueFull(16)));
    h.s.reset();
    let events = h.events();
    assert_eq!(events.len(), 17);
    assert_eq!(
        events[0],
        done(first, CommandKind::At, Err(CommandError::Aborted))
    );
    assert_eq!(h.s.poll_timeout(), None);
    assert_eq!(h.tx(), b"", "pending writes dropped");
}

proptest::proptest! {
    /// Any byte stream, in any chunking, never panics and leaves the session usable.
    #[test]
    fn arbitrary_input_never_breaks_the_session(
        chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..64), 0..16)
    ) {
        let mut h = Harness::new();
        h.send(Command::QuerySignal);
        for c in &chunks {
            h.rx(c);
        }
        let _ = h.events();
        // Whatever happened, a fresh line end plus an answer completes the next command.
        h.s.reset();
        let _ = h.events();
        let id = h.send(Command::At);
        h.rx(b"\r\nOK\r\n");
        proptest::prop_assert_eq!(h.events(), vec![done(id, CommandKind::At, Ok(Response::Ok))]);
    }
}
