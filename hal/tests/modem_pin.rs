//! PinGuard: what protects the SIM. Three wrong PINs lock it; ten wrong PUKs destroy it.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use pbx_hal::modem::command::{Command, Pin, Puk};
use pbx_hal::modem::pin::{PinError, PinGuard, PinOutcome};
use pbx_hal::modem::response::{CmeError, PinCounters, SimState};
use pbx_hal::modem::session::{CommandError, Response};

fn pin(s: &str) -> Pin {
    Pin::new(s).unwrap()
}

fn guard(pin_left: u8, puk_left: u8) -> PinGuard {
    let mut g = PinGuard::new();
    g.record_counters(PinCounters { pin_left, puk_left });
    g
}

fn wrong() -> Result<Response, CommandError> {
    Err(CommandError::Cme(CmeError::Code(16)))
}

#[test]
fn a_rejected_pin_is_never_sent_again_but_another_is() {
    let mut g = guard(3, 10);
    assert_eq!(
        g.check_pin(&pin("1111"), false),
        Ok(Command::EnterPin(pin("1111")))
    );
    assert_eq!(
        g.record_result(&wrong()),
        PinOutcome::Rejected {
            attempts_left: Some(2)
        }
    );
    assert_eq!(
        g.check_pin(&pin("1111"), false),
        Err(PinError::Rejected {
            attempts_left: Some(2)
        })
    );
    assert_eq!(
        g.check_pin(&pin("1111"), true),
        Err(PinError::Rejected {
            attempts_left: Some(2)
        })
    );
    assert!(g.is_rejected(&pin("1111")));
    assert!(g.check_pin(&pin("2222"), false).is_ok());
}

#[test]
fn the_last_attempt_needs_confirmation() {
    let mut g = guard(1, 10);
    assert_eq!(
        g.check_pin(&pin("1234"), false),
        Err(PinError::LastAttempt { attempts_left: 1 })
    );
    assert!(g.check_pin(&pin("1234"), true).is_ok());
}

#[test]
fn unknown_counters_need_confirmation_and_zero_is_blocked() {
    let mut g = PinGuard::new();
    assert_eq!(
        g.check_pin(&pin("1234"), false),
        Err(PinError::AttemptsUnknown)
    );
    let mut g = guard(0, 10);
    assert_eq!(g.check_pin(&pin("1234"), true), Err(PinError::Blocked));
}

#[test]
fn one_attempt_at_a_time() {
    let mut g = guard(3, 10);
    g.check_pin(&pin("1234"), false).unwrap();
    assert_eq!(
        g.check_pin(&pin("5678"), false),
        Err(PinError::AttemptPending)
    );
}

#[test]
fn sim_state_gates_pin_entry() {
    let mut g = guard(3, 10);
    g.record_sim_state(SimState::PukRequired);
    assert_eq!(g.check_pin(&pin("1234"), true), Err(PinError::PukRequired));
    g.record_sim_state(SimState::Ready);
    assert_eq!(g.check_pin(&pin("1234"), true), Err(PinError::NotRequired));
}

#[test]
fn puk_required_answer_blocks_the_pin() {
    let mut g = guard(1, 10);
    g.check_pin(&pin("1111"), true).unwrap();
    assert_eq!(
        g.record_result(&Err(CommandError::Cme(CmeError::Code(12)))),
        PinOutcome::Rejected {
            attempts_left: Some(0)
        }
    );
    assert_eq!(g.check_pin(&pin("2222"), true), Err(PinError::PukRequired));
}

#[test]
fn a_timeout_is_no_verdict_but_forgets_the_counters() {
    let mut g = guard(3, 10);
    g.check_pin(&pin("1234"), false).unwrap();
    assert_eq!(
        g.record_result(&Err(CommandError::Timeout(std::time::Duration::from_secs(
            5
        )))),
        PinOutcome::Unknown
    );
    assert_eq!(g.counters(), None);
    assert_eq!(
        g.check_pin(&pin("1234"), false),
        Err(PinError::AttemptsUnknown)
    );
}

#[test]
fn a_bare_error_counts_as_a_rejection() {
    let mut g = guard(3, 10);
    g.check_pin(&pin("1234"), false).unwrap();
    assert_eq!(
        g.record_result(&Err(CommandError::Error)),
        PinOutcome::Rejected {
            attempts_left: Some(2)
        }
    );
}

#[test]
fn puk_rules_and_the_new_pin_is_cleared_from_the_rejected_list() {
    let mut g = guard(3, 10);
    g.check_pin(&pin("1111"), false).unwrap();
    g.record_result(&wrong());
    g.record_sim_state(SimState::PukRequired);
    g.record_counters(PinCounters {
        pin_left: 0,
        puk_left: 10,
    });

    let bad_puk = Puk::new("00000000").unwrap();
    g.check_puk(&bad_puk, &pin("1111"), false).unwrap();
    assert_eq!(
        g.record_result(&wrong()),
        PinOutcome::Rejected {
            attempts_left: Some(9)
        }
    );
    assert_eq!(
        g.check_puk(&bad_puk, &pin("1111"), true),
        Err(PinError::PukRejected {
            attempts_left: Some(9)
        })
    );

    let good_puk = Puk::new("12345678").unwrap();
    let cmd = g.check_puk(&good_puk, &pin("1111"), false).unwrap();
    assert_eq!(
        cmd,
        Command::EnterPuk {
            puk: good_puk,
            new_pin: pin("1111")
        }
    );
    assert_eq!(g.record_result(&Ok(Response::Ok)), PinOutcome::Accepted);
    // "1111" is now the SIM's PIN, so it is no longer refused.
    assert!(!g.is_rejected(&pin("1111")));
}

#[test]
fn last_puk_attempt_needs_confirmation() {
    let mut g = guard(0, 1);
    let puk = Puk::new("12345678").unwrap();
    assert_eq!(
        g.check_puk(&puk, &pin("1234"), false),
        Err(PinError::LastAttempt { attempts_left: 1 })
    );
    assert!(g.check_puk(&puk, &pin("1234"), true).is_ok());
}

#[test]
fn errors_read_clearly() {
    assert_eq!(
        PinError::Rejected {
            attempts_left: Some(2)
        }
        .to_string(),
        "PIN rejected by the SIM before, not sent again (2 attempts left)"
    );
    assert_eq!(
        PinGuard::new().record_result(&Ok(Response::Ok)),
        PinOutcome::NotPending
    );
}
