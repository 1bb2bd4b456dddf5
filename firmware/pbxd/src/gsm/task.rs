//! The modem task: owns the serial port and a [`Gateway`], drives it with `pbxd::clock`
//! time, and connects it to the store (settings, status, alerts, SMS) and to the call
//! layer through a [`GsmLink`]. Supervised: an error (port gone) ends the task and its
//! supervisor opens the port again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use pbx_hal::modem::command::{Pin, Puk};
use pbx_hal::modem::power::{PowerSwitch, OFF_TIME};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::{info, warn};

use super::core::{Credentials, GatewayEvent, GsmCallError, GsmCallEvent, GsmStatus, SimStatus};
use super::serial::SerialPort;
use super::Gateway;
use crate::clock;
use crate::secret::DeviceKey;
use crate::store::{GsmSettings, GsmStatusRow, Severity, Store, StoreError};

/// How often the task asks SQLite whether another connection committed
/// ([`Store::data_version`]: no table read). Only then are settings (a new PIN) and the
/// SMS outbox read again; the web server and `pbxctl` (another process) write through
/// connections of their own, so this one check sees both.
pub const CHANGE_CHECK: Duration = Duration::from_millis(200);
/// How often old SMS are purged.
pub const HOUSEKEEPING: Duration = Duration::from_secs(3600);

/// Sealing purposes of the SIM codes (see [`crate::secret`]).
pub const PIN_PURPOSE: &str = "sim-pin";
/// Sealing purpose of the PUK.
pub const PUK_PURPOSE: &str = "sim-puk";

/// A request from the call layer.
#[derive(Debug)]
pub enum GsmCommand {
    /// `ATD<number>;`.
    Dial {
        /// The number as the network should see it.
        number: String,
        /// 110/112: dialled even when ordinary calls would be refused.
        emergency: bool,
        /// Whether the module took it.
        reply: oneshot::Sender<Result<(), GsmCallError>>,
    },
    /// `ATA`.
    Answer,
    /// `ATH`.
    HangUp,
}

/// What the call layer may ask about the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GsmSnapshot {
    /// See [`Gateway::can_take_call`].
    pub can_take_call: bool,
    /// See [`Gateway::is_emergency_capable`].
    pub emergency_capable: bool,
    /// The module's status.
    pub status: Option<GsmStatus>,
}

/// The call layer's end of the modem task: commands in, call events and status out.
/// Cloneable; survives task restarts.
#[derive(Debug, Clone)]
pub struct GsmLink {
    commands: mpsc::Sender<GsmCommand>,
    command_rx: Arc<tokio::sync::Mutex<mpsc::Receiver<GsmCommand>>>,
    events: broadcast::Sender<GsmCallEvent>,
    snapshot: watch::Sender<GsmSnapshot>,
}

impl Default for GsmLink {
    fn default() -> Self {
        let (commands, rx) = mpsc::channel(16);
        let (events, _) = broadcast::channel(64);
        let (snapshot, _) = watch::channel(GsmSnapshot {
            can_take_call: false,
            emergency_capable: false,
            status: None,
        });
        GsmLink {
            commands,
            command_rx: Arc::new(tokio::sync::Mutex::new(rx)),
            events,
            snapshot,
        }
    }
}

impl GsmLink {
    /// SIM ready, registered, no call: an ordinary call can go over GSM now.
    pub fn can_take_call(&self) -> bool {
        self.snapshot.borrow().can_take_call
    }
    /// An emergency call can go out over GSM now.
    pub fn is_emergency_capable(&self) -> bool {
        self.snapshot.borrow().emergency_capable
    }
    /// Status changes.
    pub fn watch(&self) -> watch::Receiver<GsmSnapshot> {
        self.snapshot.subscribe()
    }
    /// Call events (incoming, alerting, answered, ended).
    pub fn call_events(&self) -> broadcast::Receiver<GsmCallEvent> {
        self.events.subscribe()
    }
    /// Place a call over the module.
    pub async fn dial(&self, number: &str, emergency: bool) -> Result<(), GsmCallError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(GsmCommand::Dial {
                number: number.to_owned(),
                emergency,
                reply,
            })
            .await
            .map_err(|_| GsmCallError::Queue)?;
        rx.await.map_err(|_| GsmCallError::Queue)?
    }
    /// Answer the ringing call.
    pub async fn answer(&self) {
        let _ = self.commands.send(GsmCommand::Answer).await;
    }
    /// Hang up.
    pub async fn hang_up(&self) {
        let _ = self.commands.send(GsmCommand::HangUp).await;
    }
}

type SharedStore = Arc<Mutex<Store>>;

/// Run a store operation on a blocking thread.
async fn db<T: Send + 'static>(
    store: &SharedStore,
    f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
) -> anyhow::Result<T> {
    let store = Arc::clone(store);
    let r = tokio::task::spawn_blocking(move || {
        let mut s = store.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut s)
    })
    .await
    .context("store task")??;
    Ok(r)
}

/// PIN and PUK in clear from the sealed settings; a value that cannot be opened or has
/// the wrong form is left out (and logged), never sent.
fn credentials(key: &DeviceKey, s: &GsmSettings) -> Credentials {
    let open = |purpose: &str, sealed: &Option<String>| -> Option<String> {
        let sealed = sealed.as_ref()?;
        key.open(purpose, sealed)
            .map_err(|e| warn!("stored SIM code unusable: {e}"))
            .ok()
    };
    let pin = open(PIN_PURPOSE, &s.pin_sealed).and_then(|p| Pin::new(&p).ok());
    let puk = open(PUK_PURPOSE, &s.puk_sealed).and_then(|p| Puk::new(&p).ok());
    let new_pin = open(PIN_PURPOSE, &s.puk_new_pin_sealed).and_then(|p| Pin::new(&p).ok());
    Credentials {
        pin,
        pin_rejected: s.pin_rejected,
        pin_last_attempt_ok: s.pin_last_attempt_ok,
        puk: puk.zip(new_pin),
        puk_rejected: s.puk_rejected,
    }
}

/// Run the modem task on the serial device `port` until `shutdown`, without a power
/// switch (recovery stops at `ATZ` and keeps retrying).
pub async fn run(
    data_dir: PathBuf,
    port: PathBuf,
    link: GsmLink,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    run_with_power(data_dir, port, link, None, shutdown).await
}

/// Switches the module off for [`OFF_TIME`] and on again; the gateway then starts over.
async fn power_cycle(power: &mut dyn PowerSwitch, gw: &mut Gateway) {
    warn!("GSM module still not answering after a reset: power-cycling it");
    if let Err(e) = power.set_power(false) {
        warn!("{e}");
    }
    tokio::time::sleep(OFF_TIME).await;
    if let Err(e) = power.set_power(true) {
        warn!("{e}");
    }
    gw.modem_power_cycled(clock::now());
}

/// [`run`] with the board's modem power switch (`modem-power` in the board file, or the
/// emulator's virtual pin): after repeated failures the module is power-cycled.
pub async fn run_with_power(
    data_dir: PathBuf,
    port: PathBuf,
    link: GsmLink,
    mut power: Option<Box<dyn PowerSwitch>>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (store, key) = {
        let dir = data_dir.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let store = Store::open(&dir)?;
            let key = DeviceKey::load_or_create(&dir)?;
            Ok((store, key))
        })
        .await
        .context("store task")??
    };
    let store: SharedStore = Arc::new(Mutex::new(store));
    let failed = db(&store, Store::fail_interrupted_sms).await?;
    if failed > 0 {
        warn!(failed, "SMS interrupted by a restart marked failed");
    }
    let serial = SerialPort::open(&port)?;
    info!(port = %port.display(), "GSM module port open");
    let mut settings = db(&store, |s| s.gsm_settings()).await?;
    let mut gw = Gateway::new(clock::now(), credentials(&key, &settings));
    let mut commands = link.command_rx.lock().await;
    let mut buf = [0u8; 1024];
    let mut change_check = tokio::time::interval(CHANGE_CHECK);
    // `None`: read settings and outbox at the next check whatever the version says.
    let mut seen_version: Option<i64> = None;
    let mut could_send = false;
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
    let mut sms_in_flight: Option<i64> = None;
    let mut alerts = AlertState::default();
    loop {
        let deadline = gw
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            r = serial.read(&mut buf) => {
                let n = r.with_context(|| format!("reading {}", port.display()))?;
                gw.handle_input(clock::now(), &buf[..n]);
            }
            _ = tokio::time::sleep_until(deadline) => gw.handle_timeout(clock::now()),
            Some(cmd) = commands.recv() => {
                let now = clock::now();
                match cmd {
                    GsmCommand::Dial { number, emergency, reply } => {
                        let _ = reply.send(gw.dial(now, &number, emergency));
                    }
                    GsmCommand::Answer => {
                        if let Err(e) = gw.answer(now) {
                            warn!("GSM answer: {e}");
                        }
                    }
                    GsmCommand::HangUp => { let _ = gw.hang_up(now); }
                }
            }
            _ = change_check.tick() => {
                let version = db(&store, |s| s.data_version()).await?;
                let can_send = gw.can_send_sms();
                // The outbox is looked at again when someone wrote, when the module became
                // able to send, and after each SMS (more may wait behind it).
                if seen_version != Some(version) || (can_send && !could_send) {
                    seen_version = Some(version);
                    let fresh = db(&store, |s| s.gsm_settings()).await?;
                    if fresh != settings {
                        settings = fresh;
                        gw.set_credentials(clock::now(), credentials(&key, &settings));
                    }
                    if sms_in_flight.is_none() && can_send {
                        if let Some(sms) = db(&store, Store::take_queued_sms).await? {
                            sms_in_flight = Some(sms.id);
                            gw.send_sms(clock::now(), sms.id, &sms.peer, &sms.text);
                        }
                    }
                }
                could_send = can_send;
            }
            _ = housekeeping.tick() => {
                let now = i64::try_from(clock::unix_now()).unwrap_or(i64::MAX);
                let n = db(&store, move |s| s.purge_sms(now)).await?;
                if n > 0 {
                    info!(purged = n, "old SMS deleted (retention)");
                }
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    return Ok(());
                }
            }
        }
        while let Some(bytes) = gw.poll_transmit() {
            serial
                .write_all(&bytes)
                .await
                .with_context(|| format!("writing {}", port.display()))?;
        }
        let mut cycle = false;
        while let Some(ev) = gw.poll_event() {
            if ev == GatewayEvent::PowerCycleNeeded && power.is_some() {
                cycle = true;
                continue;
            }
            if let GatewayEvent::SmsFinished { id, .. } = &ev {
                if sms_in_flight == Some(*id) {
                    sms_in_flight = None;
                    seen_version = None;
                }
            }
            handle_event(&store, &link, &gw, &mut alerts, ev).await?;
        }
        if let (true, Some(p)) = (cycle, power.as_deref_mut()) {
            power_cycle(p, &mut gw).await;
        }
        // Calls starting and ending change what the call layer may ask for, without a
        // status change: refresh the snapshot after every round.
        let fresh = GsmSnapshot {
            can_take_call: gw.can_take_call(),
            emergency_capable: gw.is_emergency_capable(),
            status: Some(gw.status().clone()),
        };
        link.snapshot.send_if_modified(|s| {
            let changed = *s != fresh;
            if changed {
                *s = fresh;
            }
            changed
        });
    }
}

#[derive(Debug, Default)]
struct AlertState {
    written: Option<GsmStatusRow>,
}

const ALERT_NO_SIM: &str = "gsm:no-sim";
const ALERT_NO_NETWORK: &str = "gsm:no-network";
const ALERT_PIN: &str = "gsm:pin";

async fn handle_event(
    store: &SharedStore,
    link: &GsmLink,
    gw: &Gateway,
    alerts: &mut AlertState,
    ev: GatewayEvent,
) -> anyhow::Result<()> {
    let now = i64::try_from(clock::unix_now()).unwrap_or(i64::MAX);
    match ev {
        GatewayEvent::StatusChanged => {
            let st = gw.status().clone();
            let row = GsmStatusRow {
                sim: if st.responding {
                    st.sim.label()
                } else {
                    "modem not answering".into()
                },
                registration: st.registration_label(),
                operator: st.operator.clone(),
                signal_dbm: st.signal_dbm,
                pin_left: st.pin_left,
                puk_left: st.puk_left,
                last_error: st.last_error.clone(),
                updated_at: now,
            };
            let same = alerts.written.as_ref().is_some_and(|w| {
                GsmStatusRow {
                    updated_at: now,
                    ..w.clone()
                } == row
            });
            if same {
                return Ok(());
            }
            alerts.written = Some(row.clone());
            db(store, move |s| {
                s.write_gsm_status(&row)?;
                sync_alerts(s, &st, now)
            })
            .await?;
        }
        GatewayEvent::PinAccepted => info!("SIM PIN accepted"),
        GatewayEvent::PinRejected { attempts_left } => {
            warn!(
                ?attempts_left,
                "SIM rejected the PIN; it will not be sent again"
            );
            db(store, move |s| s.mark_gsm_pin_rejected(now)).await?;
        }
        GatewayEvent::PukAccepted => {
            info!("SIM PUK accepted; the new PIN is stored");
            db(store, move |s| s.gsm_puk_accepted(now)).await?;
        }
        GatewayEvent::PukRejected { attempts_left } => {
            warn!(
                ?attempts_left,
                "SIM rejected the PUK; it will not be sent again"
            );
            db(store, move |s| s.mark_gsm_puk_rejected(now)).await?;
        }
        GatewayEvent::SmsReceived {
            from, text, parts, ..
        } => {
            info!(%from, parts, "SMS received");
            db(store, move |s| {
                s.insert_received_sms(&from, &text, u32::from(parts), now)
            })
            .await?;
        }
        GatewayEvent::SmsFinished { id, result } => {
            match &result {
                Ok(parts) => info!(id, parts, "SMS sent"),
                Err(e) => warn!(id, "SMS not sent: {e}"),
            }
            db(store, move |s| {
                s.finish_sms(id, result.as_ref().map(|_| ()).map_err(String::as_str))
            })
            .await?;
        }
        GatewayEvent::PowerCycleNeeded => {
            // Without a power switch (`modem-power` in the board file) the gateway keeps
            // trying to start the module.
            warn!("GSM module still not answering after a reset: power-cycle it (no modem-power line in the board file)");
        }
        GatewayEvent::ModemRestarted => info!("GSM module restarted"),
        GatewayEvent::Call(c) => {
            info!(event = ?c, "GSM call");
            let _ = link.events.send(c);
        }
        GatewayEvent::Log(l) => warn!("{l}"),
    }
    Ok(())
}

/// Raise or clear the module's dashboard alerts to match its status.
fn sync_alerts(s: &mut Store, st: &GsmStatus, now: i64) -> Result<(), StoreError> {
    let set = |s: &mut Store, key: &str, on: Option<(Severity, String)>| match on {
        Some((sev, msg)) => s.raise_alert(key, sev, &msg, now).map(|_| ()),
        None => s.clear_alert(key, now).map(|_| ()),
    };
    let no_sim = (st.sim == SimStatus::NotInserted).then(|| {
        (
            Severity::Warning,
            "No SIM in the GSM module: no GSM calls, no SMS, no emergency fallback over GSM".into(),
        )
    });
    set(s, ALERT_NO_SIM, no_sim)?;
    let pin = matches!(st.sim, SimStatus::PinRequired | SimStatus::PukRequired).then(|| {
        (
            Severity::Critical,
            st.last_error
                .clone()
                .unwrap_or_else(|| format!("SIM: {}", st.sim.label())),
        )
    });
    set(s, ALERT_PIN, pin)?;
    let known = st.cs.is_some() || st.eps.is_some();
    let no_net = (st.sim == SimStatus::Ready && known && !st.registered()).then(|| {
        (
            Severity::Warning,
            format!("GSM module not registered ({})", st.registration_label()),
        )
    });
    set(s, ALERT_NO_NETWORK, no_net)?;
    Ok(())
}

/// The serial device to use: `--modem PATH`, or the emulator's pty.
pub fn device_path(
    modem: Option<&Path>,
    emulator: Option<&pbx_hal::modem::emulator::PtyModem>,
) -> Option<PathBuf> {
    modem
        .map(Path::to_owned)
        .or_else(|| emulator.map(|e| e.slave_path()))
}
