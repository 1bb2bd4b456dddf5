//! Recovery's last step through the real serial path: the EC25 emulator on a pty hangs
//! (fault "silence": it answers nothing); `ATZ` does not help; the modem task switches
//! the module off and on through its power pin (the emulator's virtual pin, driven as an
//! embedded-hal OutputPin like the board's GPIO line) and the module is back: PIN entered
//! once more (the accepted one), registered, calls work.
//!
//! The hang shows in a call attempt: the `AT` sent ahead of the dial and the session's
//! probe get no answer, so recovery starts within those short time-outs (not at the
//! next 30 s status poll, nor after the dial's own minutes) and the attempt ends.
// Helpers outside #[test] fns: a panic there is a test failure too.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pbx_hal::modem::emulator::{CallPhase, Ec25, Ec25Config, PtyModem};
use pbx_hal::modem::power::{GpioPower, PowerSwitch};
use pbxd::gsm::task::{self, GsmLink, PIN_PURPOSE};
use pbxd::gsm::GsmCallEvent;
use pbxd::secret::DeviceKey;
use pbxd::store::Store;
use tokio::sync::watch;

/// Waits up to `secs` for `cond`.
async fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    for _ in 0..secs * 20 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_module_is_power_cycled_through_its_pin_and_calls_work_again() {
    let modem = PtyModem::spawn(Ec25::new(Ec25Config::default())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = Store::open(dir.path()).unwrap();
        let key = DeviceKey::load_or_create(dir.path()).unwrap();
        store
            .set_gsm_pin(&key.seal(PIN_PURPOSE, "1234").unwrap(), false, 1)
            .unwrap();
    }
    let link = GsmLink::default();
    let (stop, rx) = watch::channel(false);
    let power: Box<dyn PowerSwitch> = Box::new(GpioPower::new(modem.power_pin(), false));
    let task = tokio::spawn(task::run_with_power(
        dir.path().to_owned(),
        modem.slave_path(),
        link.clone(),
        Some(power),
        rx,
    ));
    wait_for("module set up", 10, || link.can_take_call()).await;
    assert_eq!(modem.modem().pin_attempts_left().pin_left, 3);

    modem.modem().go_silent();
    let mut events = link.call_events();
    link.dial("+491701234567", false).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(60), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(ev, GsmCallEvent::Ended { .. }),
        "the attempt on the hung module ends: {ev:?}"
    );
    wait_for("the hang noticed", 60, || !link.can_take_call()).await;
    // Nobody calls wake_up: only switching the supply off and on ends the silence.
    wait_for("module back after the power cycle", 60, || {
        link.can_take_call()
    })
    .await;
    assert!(modem.modem().is_powered());
    assert_eq!(
        modem.modem().pin_attempts_left().pin_left,
        3,
        "the accepted PIN entered again, no attempt lost"
    );

    let mut events = link.call_events();
    link.dial("+491701234567", false).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev, GsmCallEvent::Alerting);
    modem.modem().remote_answers().unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev, GsmCallEvent::Answered);
    assert_eq!(modem.modem().call().unwrap().phase, CallPhase::Active);
    link.hang_up().await;

    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
