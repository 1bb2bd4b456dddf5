//! The modem task through the real serial path: the EC25 emulator on a pseudo-terminal,
//! `pbxd::gsm::task::run` opening it like `/dev/ttyUSB2`, the store as pbxctl and the
//! web UI use it.
//!
//! With `PBX_HIL_MODEM=/dev/ttyUSB2` the status test runs against that real module too
//! (scripted network events need the emulator; those tests report as skipped there).
// Helpers outside #[test] fns: a panic there is a test failure too.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use pbx_hal::modem::emulator::{CallPhase, Ec25, Ec25Config, PtyModem};
use pbx_hal::modem::pdu::Body;
use pbxd::gsm::task::{self, GsmLink, PIN_PURPOSE};
use pbxd::gsm::GsmCallEvent;
use pbxd::secret::DeviceKey;
use pbxd::store::{SmsDirection, SmsStatus, Store};
use tokio::sync::watch;

/// Waits up to 10 s for `cond` (bounded; the emulator answers within milliseconds).
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

struct Rig {
    dir: tempfile::TempDir,
    modem: Option<PtyModem>,
    link: GsmLink,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Rig {
    /// Emulator with PIN 1234; `pin` stored sealed before the task starts.
    async fn start(pin: Option<&str>) -> Rig {
        let modem = PtyModem::spawn(Ec25::new(Ec25Config::default())).unwrap();
        let path = modem.slave_path();
        Self::start_on(Some(modem), path, pin).await
    }

    async fn start_on(modem: Option<PtyModem>, port: PathBuf, pin: Option<&str>) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        if let Some(pin) = pin {
            let key = DeviceKey::load_or_create(dir.path()).unwrap();
            store
                .set_gsm_pin(&key.seal(PIN_PURPOSE, pin).unwrap(), false, 1)
                .unwrap();
        }
        let link = GsmLink::default();
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(task::run(dir.path().to_owned(), port, link.clone(), rx));
        Rig {
            dir,
            modem,
            link,
            stop,
            task,
        }
    }

    fn store(&self) -> Store {
        Store::open(self.dir.path()).unwrap()
    }

    fn modem(&self) -> std::sync::MutexGuard<'_, Ec25> {
        self.modem.as_ref().unwrap().modem()
    }

    async fn ready(&self) {
        let dir = self.dir.path().to_owned();
        wait_for("SIM ready and registered", || sim_is(&dir, "ready", "home")).await;
        // Start-up done (caller ID on, PDU mode, URCs).
        wait_for("module set up", || self.link.can_take_call()).await;
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let r = tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("task stops");
        r.unwrap().unwrap();
    }
}

fn sim_is(dir: &Path, sim: &str, reg: &str) -> bool {
    Store::open(dir)
        .unwrap()
        .gsm_status()
        .unwrap()
        .is_some_and(|s| s.sim == sim && s.registration == reg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pin_uses_exactly_one_attempt_then_the_right_one_works() {
    let rig = Rig::start(Some("9999")).await;
    let dir = rig.dir.path().to_owned();
    wait_for("PIN rejection stored and shown", || {
        let db = Store::open(&dir).unwrap();
        db.gsm_settings().unwrap().pin_rejected
            && db
                .gsm_status()
                .unwrap()
                .is_some_and(|s| s.last_error.is_some_and(|e| e.starts_with("PIN rejected")))
    })
    .await;
    let st = rig.store().gsm_status().unwrap().unwrap();
    assert_eq!(
        st.last_error.as_deref(),
        Some("PIN rejected, 2 attempts left")
    );
    assert_eq!(st.pin_left, Some(2));
    assert!(rig.store().open_alert("gsm:pin").unwrap().is_some());
    // Several settings polls later, and after a module reboot, still one attempt used.
    rig.modem().reset_mid_command();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rig.modem().pin_attempts_left().pin_left, 2);
    // The admin enters the right PIN (as `pbxctl gsm pin` does).
    let key = DeviceKey::load_or_create(&dir).unwrap();
    rig.store()
        .set_gsm_pin(&key.seal(PIN_PURPOSE, "1234").unwrap(), false, 2)
        .unwrap();
    rig.ready().await;
    assert_eq!(rig.modem().pin_attempts_left().pin_left, 3);
    assert!(rig.store().open_alert("gsm:pin").unwrap().is_none());
    assert!(rig.link.can_take_call() && rig.link.is_emergency_capable());
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sim_raises_the_alert() {
    let cfg = Ec25Config {
        sim_inserted: false,
        ..Ec25Config::default()
    };
    let modem = PtyModem::spawn(Ec25::new(cfg)).unwrap();
    let path = modem.slave_path();
    let rig = Rig::start_on(Some(modem), path, Some("1234")).await;
    let dir = rig.dir.path().to_owned();
    wait_for("no-SIM alert", || {
        Store::open(&dir)
            .unwrap()
            .open_alert("gsm:no-sim")
            .unwrap()
            .is_some()
    })
    .await;
    assert!(!rig.link.is_emergency_capable());
    rig.modem().insert_sim();
    rig.ready().await;
    assert!(rig.store().open_alert("gsm:no-sim").unwrap().is_none());
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_round_trip_gsm7_extension_ucs2_and_multipart() {
    let rig = Rig::start(Some("1234")).await;
    rig.ready().await;
    let long = "Mehrteilige Nachricht über das GSM-Modul. ".repeat(6);
    let texts = [
        "Hello from the PBX",
        "Extension table: {[~]} \\ | ^ €",
        "Umlaute äöüß and emoji 😀👍",
        long.as_str(),
    ];
    // Out: queued as `pbxctl sms send` does, sent by the task.
    for t in texts {
        let parts = pbxd::gsm::sms::check("+491701234567", t).unwrap();
        rig.store()
            .queue_sms("+491701234567", t, parts as u32, "test", 1)
            .unwrap();
    }
    let dir = rig.dir.path().to_owned();
    wait_for("all SMS sent", || {
        Store::open(&dir)
            .unwrap()
            .list_sms(10)
            .unwrap()
            .iter()
            .all(|s| s.status == SmsStatus::Sent)
    })
    .await;
    let sent: Vec<String> = {
        let m = rig.modem();
        let mut out = Vec::new();
        for s in m.sent_sms() {
            let Body::Text(t) = &s.submit.body else {
                panic!("binary")
            };
            match &s.submit.concat {
                Some(c) if c.seq > 1 => out.last_mut().map(|l: &mut String| l.push_str(t)).unwrap(),
                _ => out.push(t.clone()),
            }
        }
        out
    };
    assert_eq!(sent, texts);
    // In: delivered by the emulated network, joined, stored in the inbox.
    for t in texts {
        rig.modem().deliver_sms("+4930123456", t).unwrap();
    }
    wait_for("inbox", || {
        Store::open(&dir)
            .unwrap()
            .list_sms(20)
            .unwrap()
            .iter()
            .filter(|s| s.direction == SmsDirection::In)
            .count()
            == texts.len()
    })
    .await;
    let mut inbox: Vec<_> = rig
        .store()
        .list_sms(20)
        .unwrap()
        .into_iter()
        .filter(|s| s.direction == SmsDirection::In)
        .collect();
    inbox.sort_by_key(|s| s.id);
    let got: Vec<&str> = inbox.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(got, texts);
    assert!(inbox.iter().all(|s| s.peer == "+4930123456" && !s.read));
    assert!(inbox.last().unwrap().parts > 1);
    // The SIM's slots are freed after the message is stored (AT+CMGD follows AT+CMGR).
    wait_for("SIM emptied", || rig.modem().stored_sms().is_empty()).await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_and_out_and_a_modem_reset_mid_call() {
    let rig = Rig::start(Some("1234")).await;
    rig.ready().await;
    let mut events = rig.link.call_events();
    // Incoming, with the caller's number.
    rig.modem().incoming_call("+4930999").unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ev,
        GsmCallEvent::Incoming {
            number: Some("+4930999".into())
        }
    );
    rig.link.answer().await;
    let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev, GsmCallEvent::Answered);
    rig.modem().remote_hangup().unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(ev, GsmCallEvent::Ended { .. }));

    // Outgoing; the module resets while the call is up.
    wait_for("module free", || rig.link.can_take_call()).await;
    rig.link.dial("+491701234567", false).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev, GsmCallEvent::Alerting);
    rig.modem().remote_answers().unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev, GsmCallEvent::Answered);
    assert_eq!(rig.modem().call().unwrap().phase, CallPhase::Active);
    rig.modem().reset_mid_command();
    let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ev,
        GsmCallEvent::Ended {
            reason: "GSM module restarted".into()
        }
    );
    // The module comes back: PIN entered again (the accepted one), registered.
    wait_for("module back", || rig.link.can_take_call()).await;
    assert_eq!(rig.modem().pin_attempts_left().pin_left, 3);
    // Emergency numbers dial while ordinary calls are refused for bad numbers.
    assert!(rig.link.dial("030;ATH", false).await.is_err());
    rig.link.dial("112", true).await.unwrap();
    wait_for("emergency call", || {
        rig.modem().call().is_some_and(|c| c.emergency)
    })
    .await;
    rig.stop().await;
}

/// Against a real module when `PBX_HIL_MODEM` names its AT port: it must answer and
/// report a SIM state. Never stores a PIN (a wrong one would cost an attempt).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hil_real_module_reports_its_status() {
    let Ok(port) = std::env::var("PBX_HIL_MODEM") else {
        println!("SKIPPED: set PBX_HIL_MODEM=/dev/ttyUSB2 to run against a real module");
        return;
    };
    let rig = Rig::start_on(None, PathBuf::from(port), None).await;
    let dir = rig.dir.path().to_owned();
    wait_for("status from the real module", || {
        Store::open(&dir)
            .unwrap()
            .gsm_status()
            .unwrap()
            .is_some_and(|s| s.sim != "unknown" && s.sim != "modem not answering")
    })
    .await;
    println!("{:?}", rig.store().gsm_status().unwrap());
    rig.stop().await;
}
