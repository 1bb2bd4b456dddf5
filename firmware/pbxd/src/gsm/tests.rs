//! The gateway core against the EC25 emulator core, linked in memory on a simulated clock.

use std::time::{Duration, Instant};

use pbx_hal::modem::command::{Pin, Puk};
use pbx_hal::modem::emulator::{CallPhase, Ec25, Ec25Config};
use pbx_hal::modem::pdu::Body;

use super::core::{Credentials, Gateway, GatewayEvent, GsmCallEvent, SimStatus};

#[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
fn epoch() -> Instant {
    Instant::now()
}

struct Pair {
    now: Instant,
    gw: Gateway,
    modem: Ec25,
    events: Vec<GatewayEvent>,
}

fn pin(p: &str) -> Credentials {
    Credentials {
        pin: Some(Pin::new(p).unwrap()),
        ..Credentials::default()
    }
}

impl Pair {
    fn new(modem: Ec25, creds: Credentials) -> Pair {
        let now = epoch();
        let mut p = Pair {
            now,
            gw: Gateway::new(now, creds),
            modem,
            events: Vec::new(),
        };
        p.run(Duration::from_secs(1));
        p
    }

    fn step(&mut self) {
        loop {
            let mut moved = false;
            while let Some(b) = self.gw.poll_transmit() {
                self.modem.handle_input(self.now, &b);
                moved = true;
            }
            while let Some(b) = self.modem.poll_output() {
                self.gw.handle_input(self.now, &b);
                moved = true;
            }
            while let Some(e) = self.gw.poll_event() {
                self.events.push(e);
            }
            if !moved {
                return;
            }
        }
    }

    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(10);
            self.modem.handle_timeout(self.now);
            self.gw.handle_timeout(self.now);
            self.step();
        }
    }

    fn take(&mut self) -> Vec<GatewayEvent> {
        std::mem::take(&mut self.events)
    }

    fn calls(&mut self) -> Vec<GsmCallEvent> {
        self.take()
            .into_iter()
            .filter_map(|e| match e {
                GatewayEvent::Call(c) => Some(c),
                _ => None,
            })
            .collect()
    }
}

fn ready_pair() -> Pair {
    let p = Pair::new(Ec25::new(Ec25Config::default()), pin("1234"));
    assert_eq!(p.gw.status().sim, SimStatus::Ready);
    p
}

#[test]
fn start_up_enters_the_pin_once_and_reads_the_status() {
    let mut p = ready_pair();
    let st = p.gw.status().clone();
    assert!(st.responding && st.registered(), "{st:?}");
    assert_eq!(st.operator.as_deref(), Some("Emulated Telecom"));
    // +CSQ 20 = -113 + 2 * 20 dBm.
    assert_eq!(st.signal_dbm, Some(-73));
    assert_eq!(st.last_error, None);
    assert_eq!(p.modem.pin_attempts_left().pin_left, 3);
    assert!(p.take().contains(&GatewayEvent::PinAccepted));
    assert!(p.gw.can_take_call() && p.gw.is_emergency_capable() && p.gw.can_send_sms());
}

#[test]
fn a_wrong_pin_costs_exactly_one_attempt_and_is_never_sent_again() {
    let mut p = Pair::new(Ec25::new(Ec25Config::default()), pin("9999"));
    assert_eq!(p.modem.pin_attempts_left().pin_left, 2);
    let ev = p.take();
    assert!(
        ev.contains(&GatewayEvent::PinRejected {
            attempts_left: Some(2)
        }),
        "{ev:?}"
    );
    assert_eq!(p.gw.status().sim, SimStatus::PinRequired);
    assert_eq!(
        p.gw.status().last_error.as_deref(),
        Some("PIN rejected, 2 attempts left")
    );
    // The module restarts and asks again: the rejected PIN stays unsent.
    p.modem.reset_mid_command();
    p.run(Duration::from_secs(40));
    assert_eq!(p.modem.pin_attempts_left().pin_left, 2);
    assert_eq!(p.gw.status().sim, SimStatus::PinRequired);
    // The same PIN entered again by the admin is still refused.
    let mut again = pin("9999");
    again.pin_rejected = true;
    let now = p.now;
    p.gw.set_credentials(now, again);
    p.run(Duration::from_secs(1));
    assert_eq!(p.modem.pin_attempts_left().pin_left, 2);
    // A new PIN is tried once and works.
    let now = p.now;
    p.gw.set_credentials(now, pin("1234"));
    p.run(Duration::from_secs(1));
    assert_eq!(p.gw.status().sim, SimStatus::Ready);
    assert_eq!(p.modem.pin_attempts_left().pin_left, 3);
}

#[test]
fn no_pin_stored_means_nothing_is_sent() {
    let mut p = Pair::new(Ec25::new(Ec25Config::default()), Credentials::default());
    p.run(Duration::from_secs(2));
    assert_eq!(p.gw.status().sim, SimStatus::PinRequired);
    assert_eq!(p.gw.status().pin_left, Some(3));
    assert!(p
        .gw
        .status()
        .last_error
        .as_deref()
        .unwrap()
        .contains("pbxctl gsm pin"));
    assert_eq!(p.modem.pin_attempts_left().pin_left, 3);
}

#[test]
fn the_last_pin_attempt_needs_the_admins_confirmation() {
    let mut modem = Ec25::new(Ec25Config::default());
    let t = epoch();
    modem.handle_input(t, b"AT+CPIN=\"0000\"\rAT+CPIN=\"0001\"\r");
    assert_eq!(modem.pin_attempts_left().pin_left, 1);
    let mut p = Pair::new(modem, pin("1234"));
    assert_eq!(p.modem.pin_attempts_left().pin_left, 1);
    assert!(p
        .gw
        .status()
        .last_error
        .as_deref()
        .unwrap()
        .contains("only 1 attempt left"));
    let mut confirmed = pin("1234");
    confirmed.pin_last_attempt_ok = true;
    let now = p.now;
    p.gw.set_credentials(now, confirmed);
    p.run(Duration::from_secs(1));
    assert_eq!(p.gw.status().sim, SimStatus::Ready);
}

#[test]
fn a_blocked_sim_takes_the_puk_and_the_new_pin() {
    let mut modem = Ec25::new(Ec25Config::default());
    let t = epoch();
    modem.handle_input(t, b"AT+CPIN=\"0000\"\rAT+CPIN=\"0001\"\rAT+CPIN=\"0002\"\r");
    let creds = Credentials {
        puk: Some((Puk::new("11111111").unwrap(), Pin::new("4321").unwrap())),
        ..Credentials::default()
    };
    let mut p = Pair::new(modem, creds);
    assert_eq!(p.modem.pin_attempts_left().puk_left, 9);
    assert!(p.take().contains(&GatewayEvent::PukRejected {
        attempts_left: Some(9)
    }));
    assert_eq!(
        p.gw.status().last_error.as_deref(),
        Some("PUK rejected, 9 attempts left")
    );
    let now = p.now;
    p.gw.set_credentials(
        now,
        Credentials {
            puk: Some((Puk::new("12345678").unwrap(), Pin::new("4321").unwrap())),
            ..Credentials::default()
        },
    );
    p.run(Duration::from_secs(1));
    assert!(p.take().contains(&GatewayEvent::PukAccepted));
    assert_eq!(p.gw.status().sim, SimStatus::Ready);
    assert_eq!(p.modem.pin_attempts_left().puk_left, 10);
}

#[test]
fn sms_in_all_codings_are_received_joined_and_deleted_from_the_sim() {
    let mut p = ready_pair();
    let long = "Lorem ipsum dolor sit amet, ".repeat(12);
    for text in [
        "plain GSM-7 text",
        "extension table: {[€]}~\\|^",
        "UCS-2: Grüße, Øresund 😀",
        long.as_str(),
    ] {
        p.modem.deliver_sms("+491701234567", text).unwrap();
        p.run(Duration::from_secs(1));
        let got: Vec<_> = p
            .take()
            .into_iter()
            .filter_map(|e| match e {
                GatewayEvent::SmsReceived {
                    from, text, parts, ..
                } => Some((from, text, parts)),
                _ => None,
            })
            .collect();
        assert_eq!(got.len(), 1, "{text:?}");
        assert_eq!(got[0].0, "+491701234567");
        assert_eq!(got[0].1, text);
        assert_eq!(usize::from(got[0].2), if text == long { 3 } else { 1 });
        assert!(p.modem.stored_sms().is_empty(), "{text:?}");
    }
}

#[test]
fn sms_are_sent_part_by_part_and_errors_reported() {
    let mut p = ready_pair();
    let text = format!("{} Grüße 😀", "x".repeat(100));
    let now = p.now;
    p.gw.send_sms(now, 7, "+491701234567", &text);
    p.run(Duration::from_secs(1));
    assert!(p.take().contains(&GatewayEvent::SmsFinished {
        id: 7,
        result: Ok(2)
    }));
    let sent = p.modem.sent_sms();
    assert_eq!(sent.len(), 2);
    let joined: String = sent
        .iter()
        .map(|s| match &s.submit.body {
            Body::Text(t) => t.clone(),
            Body::Binary(_) => panic!("binary"),
        })
        .collect();
    assert_eq!(joined, text);
    // Too long: refused before anything reaches the modem.
    let now = p.now;
    p.gw.send_sms(now, 8, "+491701234567", &"y".repeat(153 * 256));
    p.run(Duration::from_millis(100));
    let ev = p.take();
    assert!(
        matches!(&ev[..], [GatewayEvent::SmsFinished { id: 8, result: Err(e) }] if e.contains("at most 255")),
        "{ev:?}"
    );
    assert_eq!(p.modem.sent_sms().len(), 2);
}

#[test]
fn an_incoming_call_rings_with_caller_id_and_ends_on_remote_hang_up() {
    let mut p = ready_pair();
    p.take();
    p.modem.incoming_call("+4930123456").unwrap();
    p.run(Duration::from_secs(1));
    assert_eq!(
        p.calls(),
        vec![GsmCallEvent::Incoming {
            number: Some("+4930123456".into())
        }]
    );
    assert!(!p.gw.can_take_call());
    let now = p.now;
    p.gw.answer(now).unwrap();
    p.run(Duration::from_millis(200));
    assert_eq!(p.calls(), vec![GsmCallEvent::Answered]);
    assert_eq!(p.modem.call().unwrap().phase, CallPhase::Active);
    p.modem.remote_hangup().unwrap();
    p.run(Duration::from_millis(200));
    assert_eq!(
        p.calls(),
        vec![GsmCallEvent::Ended {
            reason: "remote hang-up".into()
        }]
    );
    assert!(p.gw.can_take_call());
}

#[test]
fn an_outgoing_call_alerts_answers_and_a_busy_one_ends() {
    let mut p = ready_pair();
    p.take();
    let now = p.now;
    p.gw.dial(now, "+491701234567", false).unwrap();
    p.run(Duration::from_secs(2));
    assert_eq!(p.calls(), vec![GsmCallEvent::Alerting]);
    p.modem.remote_answers().unwrap();
    p.run(Duration::from_secs(2));
    assert_eq!(p.calls(), vec![GsmCallEvent::Answered]);
    let now = p.now;
    p.gw.hang_up(now).unwrap();
    p.run(Duration::from_millis(200));
    assert!(p.modem.call().is_none());

    let now = p.now;
    p.gw.dial(now, "0301234", false).unwrap();
    p.run(Duration::from_millis(100));
    p.modem.remote_busy().unwrap();
    p.run(Duration::from_millis(100));
    assert_eq!(
        p.calls(),
        vec![GsmCallEvent::Ended {
            reason: "busy".into()
        }]
    );
    // A number that could smuggle a command is refused before the modem.
    let now = p.now;
    assert!(p.gw.dial(now, "030;ATH", false).is_err());
}

#[test]
fn emergency_calls_go_out_without_a_pin_ordinary_ones_do_not() {
    let mut p = Pair::new(Ec25::new(Ec25Config::default()), Credentials::default());
    let now = p.now;
    assert!(p.gw.dial(now, "0301234", false).is_err());
    assert!(!p.gw.is_emergency_capable());
    p.gw.dial(now, "112", true).unwrap();
    p.run(Duration::from_millis(500));
    let c = p.modem.call().unwrap();
    assert!(c.emergency && c.number == "112");
}

#[test]
fn a_modem_reset_mid_call_ends_the_call_and_the_modem_recovers() {
    let mut p = ready_pair();
    let now = p.now;
    p.gw.dial(now, "+491701234567", false).unwrap();
    p.run(Duration::from_millis(500));
    p.modem.remote_answers().unwrap();
    p.run(Duration::from_secs(2));
    p.take();
    p.modem.reset_mid_command();
    p.run(Duration::from_secs(5));
    let ev = p.take();
    assert!(
        ev.contains(&GatewayEvent::Call(GsmCallEvent::Ended {
            reason: "GSM module restarted".into()
        })),
        "{ev:?}"
    );
    assert_eq!(p.gw.status().sim, SimStatus::Ready);
    assert!(p.gw.can_take_call());
}

#[test]
fn a_silent_modem_is_reset_and_garbage_is_skipped() {
    let mut p = ready_pair();
    p.take();
    p.modem.go_silent();
    p.run(Duration::from_secs(95));
    assert!(!p.gw.status().responding);
    assert_eq!(
        p.gw.status().last_error.as_deref(),
        Some("the modem does not answer")
    );
    assert!(p.take().contains(&GatewayEvent::PowerCycleNeeded));
    p.modem.wake_up();
    p.run(Duration::from_secs(35));
    assert!(p.gw.status().responding);
    assert_eq!(p.gw.status().sim, SimStatus::Ready);
    p.modem.inject_garbage(b"\r\n\x01\x02\xff\xfe\r\n");
    p.run(Duration::from_secs(31));
    assert!(p.take().iter().any(|e| matches!(e, GatewayEvent::Log(_))));
    assert!(p.gw.status().registered());
}

#[test]
fn sms_left_on_the_sim_are_read_at_start_up_and_the_pcm_interface_is_set() {
    let mut modem = Ec25::new(Ec25Config::default());
    modem
        .preload_sms("+491701234567", "while you were away")
        .unwrap();
    modem.preload_sms("+491709999999", "Grüße 😀").unwrap();
    let mut p = Pair::new(modem, pin("1234"));
    p.run(Duration::from_secs(1));
    let got: Vec<_> = p
        .take()
        .into_iter()
        .filter_map(|e| match e {
            GatewayEvent::SmsReceived { from, text, .. } => Some((from, text)),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        [
            ("+491701234567".to_owned(), "while you were away".to_owned()),
            ("+491709999999".to_owned(), "Grüße 😀".to_owned()),
        ]
    );
    assert!(p.modem.stored_sms().is_empty(), "deleted from the SIM");
    assert_eq!(p.modem.pcm_interface(), Some("1,1,0,1,0,0,1,1"));
}

/// What the modem task does on `PowerCycleNeeded` with a power switch, in simulated time.
fn power_cycle(p: &mut Pair) {
    let now = p.now;
    p.modem.set_power(now, false);
    p.run(pbx_hal::modem::power::OFF_TIME);
    let now = p.now;
    p.modem.set_power(now, true);
    p.gw.modem_power_cycled(now);
}

#[test]
fn a_hung_module_is_power_cycled_and_works_again() {
    let mut p = ready_pair();
    p.take();
    p.modem.go_silent();
    p.run(Duration::from_secs(95));
    assert!(p.take().contains(&GatewayEvent::PowerCycleNeeded));
    assert!(!p.gw.can_take_call());
    power_cycle(&mut p);
    p.run(Duration::from_secs(10));
    let st = p.gw.status().clone();
    assert!(st.responding && st.registered(), "{st:?}");
    assert_eq!(st.sim, SimStatus::Ready);
    assert_eq!(st.last_error, None);
    assert_eq!(
        p.modem.pin_attempts_left().pin_left,
        3,
        "the right PIN again"
    );
    assert!(p.gw.can_take_call());
    let now = p.now;
    p.gw.dial(now, "+491701234567", false).unwrap();
    p.run(Duration::from_secs(2));
    p.modem.remote_answers().unwrap();
    p.run(Duration::from_secs(2));
    assert_eq!(
        p.calls(),
        vec![GsmCallEvent::Alerting, GsmCallEvent::Answered]
    );
}

#[test]
fn a_power_cycle_never_resends_a_rejected_pin() {
    let mut p = Pair::new(Ec25::new(Ec25Config::default()), pin("9999"));
    assert_eq!(p.modem.pin_attempts_left().pin_left, 2);
    p.take();
    // The module asks for the PIN again after the boot; the rejected one stays unsent.
    power_cycle(&mut p);
    p.run(Duration::from_secs(10));
    assert!(p.gw.status().responding);
    assert_eq!(p.modem.pin_attempts_left().pin_left, 2, "not sent again");
    assert!(!p.gw.can_take_call());
}

/// Runs in 10 ms steps until `want` matches an event or `limit` passes: the simulated
/// time from the start when it matched, and every event seen.
fn time_until(
    p: &mut Pair,
    limit: Duration,
    want: impl Fn(&GatewayEvent) -> bool,
) -> (Option<Duration>, Vec<GatewayEvent>) {
    let t0 = p.now;
    let mut seen = Vec::new();
    while p.now - t0 < limit {
        p.run(Duration::from_millis(10));
        let ev = p.take();
        let hit = ev.iter().any(&want);
        seen.extend(ev);
        if hit {
            return (Some(p.now - t0), seen);
        }
    }
    (None, seen)
}

#[test]
fn a_dial_on_a_hung_module_ends_the_call_and_starts_recovery_within_short_time_outs() {
    use pbx_hal::modem::command::CommandKind;
    let mut p = ready_pair();
    p.take();
    p.modem.go_silent();
    let now = p.now;
    p.gw.dial(now, "+491701234567", false).unwrap();
    // `AT` before the dial, then the probe: two short time-outs, not the dial's minutes.
    let at = CommandKind::At.timeout();
    let ended = time_until(&mut p, Duration::from_secs(200), |e| {
        matches!(e, GatewayEvent::Call(GsmCallEvent::Ended { .. }))
    })
    .0
    .expect("the call ends");
    assert!(ended <= at * 2 + Duration::from_millis(10), "{ended:?}");
    assert!(!p.gw.status().responding);
    // ATZ and its probe get no answer either: the module is to be power-cycled.
    let cycle = time_until(&mut p, Duration::from_secs(200), |e| {
        *e == GatewayEvent::PowerCycleNeeded
    })
    .0
    .expect("a power cycle is asked for");
    assert!(cycle <= at * 2 + Duration::from_millis(10), "{cycle:?}");
    assert_eq!(p.modem.pin_attempts_left().pin_left, 3, "no PIN sent");
}

#[test]
fn an_sms_on_a_hung_module_fails_within_the_prompt_time_out_and_recovery_starts() {
    let mut p = ready_pair();
    p.take();
    p.modem.go_silent();
    let now = p.now;
    p.gw.send_sms(now, 7, "+491701234567", "hello");
    let limit = pbx_hal::modem::session::SessionConfig::default().prompt_timeout
        + pbx_hal::modem::command::CommandKind::At.timeout()
        + Duration::from_millis(10);
    let (reset, seen) = time_until(&mut p, Duration::from_secs(200), |e| {
        matches!(e, GatewayEvent::ModemRestarted)
    });
    let reset = reset.expect("recovery starts");
    assert!(reset <= limit, "{reset:?}");
    assert!(
        seen.iter().any(|e| matches!(
            e,
            GatewayEvent::SmsFinished {
                id: 7,
                result: Err(_)
            }
        )),
        "{seen:?}"
    );
    assert!(!p.gw.status().responding);
}

#[test]
fn a_pin_entry_into_a_hung_module_is_not_repeated_blindly() {
    // The module hangs right when the PIN goes out: whether the SIM counted it is
    // unknown. After the power cycle the counters are read again before anything is sent.
    let mut p = Pair::new(Ec25::new(Ec25Config::default()), Credentials::default());
    assert_eq!(p.gw.status().sim, SimStatus::PinRequired);
    p.take();
    p.modem.go_silent();
    let now = p.now;
    p.gw.set_credentials(now, pin("9999"));
    time_until(&mut p, Duration::from_secs(30), |e| {
        *e == GatewayEvent::PowerCycleNeeded
    })
    .0
    .expect("a power cycle is asked for");
    assert_eq!(
        p.modem.pin_attempts_left().pin_left,
        3,
        "nothing reached the SIM"
    );
    power_cycle(&mut p);
    p.run(Duration::from_secs(10));
    // The wrong PIN now reaches the SIM once, is rejected, and never goes out again.
    assert_eq!(p.modem.pin_attempts_left().pin_left, 2);
    p.run(Duration::from_secs(60));
    power_cycle(&mut p);
    p.run(Duration::from_secs(10));
    assert_eq!(p.modem.pin_attempts_left().pin_left, 2, "not sent again");
}
