//! The health gate's trunk check: a box whose cloud trunk was registered before the
//! update must register it again on the new firmware, or the update rolls back. A box
//! that had no registered trunk (not set up yet, provider down) does not make the trunk
//! a condition: an update must not be blamed for what was already broken.
//!
//! Both halves read the `trunk_status` rows pbxd writes: before the SIP task starts, the
//! rows are the previous boot's; afterwards a row written at or after this start counts.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::warn;

use super::health::{Check, CheckResult};
use crate::store::{Store, StoredTrunk, TrunkStatusRow};

/// How often the probe reads the status rows.
const POLL: Duration = Duration::from_secs(3);

/// Whether the trunk check applies: an enabled trunk's last written state (from the
/// boot before this one) was `registered`.
#[must_use]
pub fn was_registered(previous: &[TrunkStatusRow], trunks: &[StoredTrunk]) -> bool {
    previous.iter().any(|row| {
        row.state == "registered"
            && trunks
                .iter()
                .any(|t| t.account.enabled && t.account.name == row.name)
    })
}

/// Whether a trunk has registered during this boot (`boot_unix`: when pbxd started).
#[must_use]
pub fn registered_since(rows: &[TrunkStatusRow], boot_unix: i64) -> bool {
    rows.iter()
        .any(|row| row.state == "registered" && row.updated_at >= boot_unix)
}

/// What the gate needs to watch the trunk during this boot.
#[derive(Debug, Clone)]
pub struct TrunkProbe {
    /// The data directory (the store).
    pub data_dir: PathBuf,
    /// Unix seconds at which pbxd started.
    pub boot_unix: i64,
}

impl TrunkProbe {
    /// Reads the previous boot's rows: `Some` when the check applies. Call before the
    /// SIP task writes this boot's status.
    pub fn if_registered_before(store: &Store, data_dir: PathBuf, boot_unix: i64) -> Option<Self> {
        let rows = store.trunk_statuses().ok()?;
        let trunks = store.list_trunks().ok()?;
        was_registered(&rows, &trunks).then_some(TrunkProbe {
            data_dir,
            boot_unix,
        })
    }

    /// Reports `TrunkRegistered` passed once a trunk registers; the gate's own time
    /// limit decides a failure. Ends when it reported or the gate went away.
    pub async fn run(self, tx: mpsc::Sender<(Check, CheckResult)>) {
        loop {
            let done = match Store::open(&self.data_dir).and_then(|s| s.trunk_statuses()) {
                Ok(rows) => registered_since(&rows, self.boot_unix),
                Err(e) => {
                    warn!("health gate: trunk status unreadable: {e}");
                    false
                }
            };
            if done {
                let _ = tx.send((Check::TrunkRegistered, CheckResult::Passed)).await;
                return;
            }
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        AuditCtx, SrtpMode, TrunkAccount, TrunkTransport, DEFAULT_MAX_CALLS, DEFAULT_REGISTER_SECS,
    };

    fn row(name: &str, state: &str, updated_at: i64) -> TrunkStatusRow {
        TrunkStatusRow {
            name: name.into(),
            state: state.into(),
            reason: String::new(),
            registered_until: None,
            public_addr: None,
            since: updated_at,
            updated_at,
        }
    }

    fn open_with_trunk(dir: &std::path::Path, enabled: bool) -> Store {
        let mut store = Store::open(dir).expect("open");
        let by = AuditCtx {
            actor: "test",
            source: "unit",
            now_unix: 900,
        };
        let account = TrunkAccount {
            name: "main".into(),
            enabled,
            registrar: "sip.provider.test".into(),
            domain: "sip.provider.test".into(),
            proxy: None,
            user: "4921112345".into(),
            auth_user: "4921112345".into(),
            transport: TrunkTransport::Udp,
            srtp: SrtpMode::Off,
            register_secs: DEFAULT_REGISTER_SECS,
            max_calls: DEFAULT_MAX_CALLS,
        };
        store.add_trunk(&by, &account, "sealed").expect("add trunk");
        store
    }

    #[test]
    fn applies_only_when_an_enabled_trunk_was_registered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = open_with_trunk(dir.path(), true);
        let path = dir.path().to_path_buf();
        assert!(
            TrunkProbe::if_registered_before(&store, path.clone(), 1000).is_none(),
            "no status yet: a box never registered is not held to it"
        );
        store
            .set_trunk_status(&row("main", "unreachable", 900))
            .expect("status");
        assert!(TrunkProbe::if_registered_before(&store, path.clone(), 1000).is_none());
        store
            .set_trunk_status(&row("main", "registered", 900))
            .expect("status");
        let probe = TrunkProbe::if_registered_before(&store, path, 1000).expect("applies");
        assert_eq!(probe.boot_unix, 1000);

        let rows = [row("main", "registered", 900)];
        let other = tempfile::tempdir().expect("tempdir");
        let disabled = open_with_trunk(other.path(), false);
        let trunks = disabled.list_trunks().expect("list");
        assert!(
            !was_registered(&rows, &trunks),
            "a disabled trunk does not count"
        );
        assert!(!was_registered(&[row("gone", "registered", 900)], &trunks));
    }

    #[test]
    fn only_a_registration_written_in_this_boot_passes() {
        let rows = [
            row("main", "registered", 999),
            row("b", "registering", 1005),
        ];
        assert!(!registered_since(&rows, 1000), "the previous boot's row");
        assert!(registered_since(&[row("main", "registered", 1000)], 1000));
        assert!(!registered_since(&[row("main", "auth-failed", 1010)], 1000));
    }

    #[tokio::test]
    async fn the_probe_reports_once_the_trunk_registers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = open_with_trunk(dir.path(), true);
        let probe = TrunkProbe {
            data_dir: dir.path().to_path_buf(),
            boot_unix: 1000,
        };
        let (tx, mut rx) = mpsc::channel(1);
        store
            .set_trunk_status(&row("main", "registered", 1001))
            .expect("status");
        probe.run(tx).await;
        assert_eq!(
            rx.recv().await,
            Some((Check::TrunkRegistered, CheckResult::Passed))
        );
    }
}
