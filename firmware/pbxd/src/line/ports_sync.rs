//! The port shells' link to the store, on a thread of its own so that SQLite never
//! stalls the 20 ms audio clock: it writes each port's live state when it changes
//! (`port_status`, read by `pbxctl ports`) and polls the ports' settings, handing the
//! shells a new [`PortProfile`] per port when `pbxctl port set` changed one.

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, warn};

use super::ports_config::PortProfile;
use super::Linefeed;
use crate::clock;
use crate::store::{PortSettings, PortStatusRow, Store, MAX_PORTS};

/// How often settings are read.
pub const POLL: Duration = Duration::from_secs(2);

/// A port's live state as the shell sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortState {
    /// 1-based.
    pub port: usize,
    /// The extension number in use.
    pub number: String,
    /// Handset lifted.
    pub off_hook: bool,
    /// The feed the driver last set.
    pub linefeed: Linefeed,
    /// `idle`, `ringing`, `dial tone`, `connected`, ...
    pub call: &'static str,
    /// Why the port is out of service.
    pub faulty: Option<String>,
}

impl PortState {
    fn row(&self, now_unix: i64) -> PortStatusRow {
        PortStatusRow {
            port: u32::try_from(self.port).unwrap_or(MAX_PORTS),
            number: self.number.clone(),
            hook: if self.off_hook { "off" } else { "on" }.into(),
            linefeed: linefeed_name(self.linefeed).into(),
            call: self.call.into(),
            faulty: self.faulty.clone(),
            updated_at: now_unix,
        }
    }
}

/// The name `pbxctl ports` shows.
#[must_use]
pub fn linefeed_name(lf: Linefeed) -> &'static str {
    match lf {
        Linefeed::Open => "open",
        Linefeed::ForwardActive => "forward",
        Linefeed::ReverseActive => "reverse",
        Linefeed::OnHookTransmission => "on-hook-tx",
        Linefeed::Ringing => "ringing",
    }
}

/// The shells' handle: report states, watch profiles.
#[derive(Debug, Clone)]
pub struct PortsSync {
    status: std_mpsc::Sender<PortState>,
    /// Each port's profile (index 0 = port 1); changes when settings change.
    pub profiles: watch::Receiver<Vec<PortProfile>>,
}

impl PortsSync {
    /// Queues a changed state for the store (never blocks).
    pub fn report(&self, state: PortState) {
        let _ = self.status.send(state);
    }
}

/// The profiles of ports `1..=n` from the stored settings.
#[must_use]
pub fn profiles(settings: &[PortSettings], n: usize) -> Vec<PortProfile> {
    (1..=n)
        .map(|port| {
            let s = settings
                .iter()
                .find(|s| usize::try_from(s.port).is_ok_and(|p| p == port));
            PortProfile::from_settings(s)
        })
        .collect()
}

/// The extension numbers of the ports: the stored number where one is set, else the
/// configured one (`--port-extensions`). A stored number that another port already
/// uses (its configured one) is ignored with a warning: two ports never share a number.
#[must_use]
pub fn numbers(configured: &[String], settings: &[PortSettings]) -> Vec<String> {
    let stored: Vec<Option<String>> = (1..=configured.len())
        .map(|port| {
            settings
                .iter()
                .find(|s| usize::try_from(s.port).is_ok_and(|p| p == port))
                .and_then(|s| s.number.clone())
        })
        .collect();
    let mut out: Vec<String> = Vec::new();
    for (i, n) in configured.iter().enumerate() {
        let pick = match &stored[i] {
            Some(s) => {
                let taken = out.contains(s)
                    || configured
                        .iter()
                        .enumerate()
                        .any(|(j, c)| j != i && stored[j].is_none() && c == s);
                if taken {
                    warn!(port = i + 1, number = %s, "stored port number is another port's; using {n}");
                    n.clone()
                } else {
                    s.clone()
                }
            }
            None => n.clone(),
        };
        out.push(pick);
    }
    out
}

/// Opens the store in `data_dir`, clears old status rows, and starts the thread for
/// `n` ports.
pub fn start(data_dir: &Path, n: usize) -> Result<PortsSync, crate::store::StoreError> {
    let mut store = Store::open(data_dir)?;
    store.clear_port_status()?;
    let first = profiles(&store.port_settings()?, n);
    let (tx, rx) = std_mpsc::channel();
    let (ptx, prx) = watch::channel(first);
    let dir: PathBuf = data_dir.to_owned();
    std::thread::Builder::new()
        .name("ports-store".into())
        .spawn(move || run(store, &dir, n, &rx, &ptx))
        .map_err(|e| crate::store::StoreError::DataDir {
            path: data_dir.to_owned(),
            reason: format!("cannot start the ports' store thread: {e}"),
        })?;
    Ok(PortsSync {
        status: tx,
        profiles: prx,
    })
}

fn run(
    mut store: Store,
    dir: &Path,
    n: usize,
    rx: &std_mpsc::Receiver<PortState>,
    profiles_tx: &watch::Sender<Vec<PortProfile>>,
) {
    let mut next_poll = clock::now() + POLL;
    loop {
        let wait = next_poll.saturating_duration_since(clock::now());
        match rx.recv_timeout(wait) {
            Ok(state) => {
                let now_unix = i64::try_from(clock::unix_now()).unwrap_or(i64::MAX);
                if let Err(e) = store.write_port_status(&state.row(now_unix)) {
                    debug!(port = state.port, "port status not written: {e}");
                }
            }
            Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
        }
        if clock::now() >= next_poll {
            next_poll = clock::now() + POLL;
            match store.port_settings() {
                Ok(s) => {
                    let p = profiles(&s, n);
                    profiles_tx.send_if_modified(|cur| {
                        let changed = *cur != p;
                        *cur = p;
                        changed
                    });
                }
                Err(e) => warn!(dir = %dir.display(), "port settings unreadable: {e}"),
            }
        }
    }
}

/// Gives each port's line its stored settings where they changed (the SIP task, on its
/// housekeeping tick): ring cadence and caller ID on/off.
pub fn apply_line_settings(store: &Store, legs: &mut super::legs::PortLegs) {
    let settings = match store.port_settings() {
        Ok(s) => s,
        Err(e) => {
            warn!("port settings unreadable: {e}");
            return;
        }
    };
    for (i, profile) in profiles(&settings, MAX_PORTS as usize).iter().enumerate() {
        let Some(line) = legs.line_mut(i) else {
            break;
        };
        let cfg = profile.line_config();
        if *line.config() != cfg {
            line.set_config(cfg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::Country;

    fn set(port: u32, number: Option<&str>, country: Option<Country>) -> PortSettings {
        PortSettings {
            number: number.map(str::to_owned),
            country,
            ..PortSettings::new(port)
        }
    }

    #[test]
    fn stored_numbers_replace_the_configured_ones_unless_another_port_has_them() {
        let cfg = vec!["21".to_owned(), "22".to_owned()];
        assert_eq!(numbers(&cfg, &[]), cfg);
        assert_eq!(numbers(&cfg, &[set(2, Some("31"), None)]), ["21", "31"]);
        // Port 1 asks for port 2's configured number: refused, port 1 keeps 21.
        assert_eq!(numbers(&cfg, &[set(1, Some("22"), None)]), ["21", "22"]);
        // Unless port 2 moves away from it.
        assert_eq!(
            numbers(&cfg, &[set(1, Some("22"), None), set(2, Some("23"), None)]),
            ["22", "23"]
        );
        // Settings for ports that do not exist are ignored.
        assert_eq!(numbers(&cfg, &[set(9, Some("99"), None)]), cfg);
    }

    #[test]
    fn profiles_cover_every_port_with_defaults_where_nothing_is_set() {
        let p = profiles(&[set(2, None, Some(Country::Gb))], 3);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0], PortProfile::default());
        assert_eq!(p[1].country, Country::Gb);
        assert_eq!(p[2], PortProfile::default());
    }

    #[test]
    fn stored_settings_reach_the_running_lines() {
        use crate::dialplan::{Site, StaticPlan};
        use crate::line::legs::{PortLegs, PortSpec};
        use crate::line::ports_config::CidMode;
        use crate::line::{Line, LineConfig, SitePlan};
        use crate::store::AuditCtx;

        let line = |ext: &str| {
            let plan = SitePlan {
                site: Site::default(),
                plan: StaticPlan::new(["21", "22"], Vec::<&str>::new()),
            };
            let spec = PortSpec {
                extension: ext.into(),
                media: "127.0.0.1:7000".parse().expect("addr"),
            };
            (
                spec,
                Line::new(LineConfig::default(), Box::new(plan)).expect("config"),
            )
        };
        let mut legs = PortLegs::new(vec![line("21"), line("22")]);
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(tmp.path()).expect("store");
        let by = AuditCtx {
            actor: "pbxctl",
            source: "cli",
            now_unix: 1_763_700_000,
        };
        let s = PortSettings {
            country: Some(Country::Us),
            cid: Some(CidMode::Off),
            ..PortSettings::new(2)
        };
        store.set_port_settings(&by, &s).expect("set");
        apply_line_settings(&store, &mut legs);
        let p1 = legs.line_mut(0).expect("port 1").config();
        assert_eq!(*p1, LineConfig::default());
        let p2 = legs.line_mut(1).expect("port 2").config();
        assert_eq!(p2.country, Country::Us);
        assert_eq!((p2.ring_on, p2.ring_off), Country::Us.ring_cadence()[0]);
        assert!(!p2.caller_id);
    }
}
