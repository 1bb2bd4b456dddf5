//! The site's "trunk down" alert threshold: how long a trunk may stay unregistered before
//! `trunk:<name>:down` is raised. A key/value setting (no schema change); pbxd reads it
//! every housekeeping tick, so a change applies without a restart.

use std::time::Duration;

use rusqlite::{params, TransactionBehavior};

use super::audit;
use super::{AuditCtx, Store, StoreError};

/// The threshold when none is set.
pub const DEFAULT_TRUNK_DOWN_ALERT_SECS: u32 = 120;
/// The accepted range: short enough to notice an outage within the hour, long enough
/// that a registrar restart or one lost refresh does not page anyone.
pub const TRUNK_DOWN_ALERT_RANGE: std::ops::RangeInclusive<u32> = 30..=3600;

const KEY: &str = "trunk_down_alert_secs";

/// Checks a threshold against [`TRUNK_DOWN_ALERT_RANGE`].
pub fn validate_trunk_down_alert(secs: u32) -> Result<(), StoreError> {
    if TRUNK_DOWN_ALERT_RANGE.contains(&secs) {
        return Ok(());
    }
    Err(StoreError::InvalidValue {
        what: "trunk down alert threshold",
        reason: format!(
            "{secs} s is outside {} to {} s",
            TRUNK_DOWN_ALERT_RANGE.start(),
            TRUNK_DOWN_ALERT_RANGE.end()
        ),
    })
}

impl Store {
    /// How long a trunk may be unregistered before its down alert; the default when
    /// unset, and also when the stored text is unusable (it was validated on write).
    pub fn trunk_down_alert_after(&self) -> Result<Duration, StoreError> {
        let secs = self
            .setting(KEY)?
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|s| TRUNK_DOWN_ALERT_RANGE.contains(s))
            .unwrap_or(DEFAULT_TRUNK_DOWN_ALERT_SECS);
        Ok(Duration::from_secs(u64::from(secs)))
    }

    /// Sets the threshold (audited).
    pub fn set_trunk_down_alert_after(
        &mut self,
        by: &AuditCtx<'_>,
        secs: u32,
    ) -> Result<(), StoreError> {
        validate_trunk_down_alert(secs)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![KEY, secs.to_string()],
        )?;
        audit::insert(&tx, by, "trunk.down_alert", &format!("{secs} s"))?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by() -> AuditCtx<'static> {
        AuditCtx {
            actor: "test",
            source: "cli",
            now_unix: 1_700_000_000,
        }
    }

    #[test]
    fn default_set_range_and_audit_on_a_real_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = Store::open(dir.path()).expect("open");
        assert_eq!(
            store.trunk_down_alert_after().expect("read"),
            Duration::from_secs(120)
        );
        store.set_trunk_down_alert_after(&by(), 45).expect("set");
        for bad in [0, 29, 3601] {
            let e = store
                .set_trunk_down_alert_after(&by(), bad)
                .expect_err("out of range");
            assert!(e.to_string().contains("outside 30 to 3600 s"), "{e}");
        }
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(
            store.trunk_down_alert_after().expect("read"),
            Duration::from_secs(45)
        );
        let audit = store.audit_entries(10).expect("audit");
        assert_eq!(audit.len(), 1, "refused values are not recorded");
        assert_eq!(audit[0].action, "trunk.down_alert");
        assert_eq!(audit[0].detail, "45 s");
    }
}
