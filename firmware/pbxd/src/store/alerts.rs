//! Alerts: conditions the dashboard shows until they clear.
//!
//! Each alert has a stable key ("trunk:main:balance", "emergency:<call>", "fraud:21",
//! "gsm:no-sim"). Raising an open key again only updates its message; clearing closes it
//! and keeps it as history.

use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// For information (an emergency call that connected).
    Info,
    /// Needs attention (a trunk refusing calls).
    Warning,
    /// Telephony is impaired (a locked extension, no emergency route).
    Critical,
}

impl Severity {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "info" => Ok(Severity::Info),
            "warning" => Ok(Severity::Warning),
            "critical" => Ok(Severity::Critical),
            other => Err(StoreError::BadValue {
                what: "alerts.severity",
                detail: other.to_owned(),
            }),
        }
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Row id.
    pub id: i64,
    /// Stable key of the condition.
    pub key: String,
    /// Urgency.
    pub severity: Severity,
    /// What happened and what to do, for the installer.
    pub message: String,
    /// Unix seconds when first raised.
    pub raised_at: i64,
    /// Unix seconds of the latest raise.
    pub updated_at: i64,
    /// Unix seconds when cleared; `None` while open.
    pub cleared_at: Option<i64>,
}

const COLUMNS: &str = "id, key, severity, message, raised_at, updated_at, cleared_at";

fn row_to_alert(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Alert, String)> {
    Ok((
        Alert {
            id: row.get(0)?,
            key: row.get(1)?,
            severity: Severity::Info,
            message: row.get(3)?,
            raised_at: row.get(4)?,
            updated_at: row.get(5)?,
            cleared_at: row.get(6)?,
        },
        row.get(2)?,
    ))
}

fn finish(rows: Vec<(Alert, String)>) -> Result<Vec<Alert>, StoreError> {
    rows.into_iter()
        .map(|(mut a, sev)| {
            a.severity = Severity::parse(&sev)?;
            Ok(a)
        })
        .collect()
}

impl Store {
    /// Raises the alert `key` (or updates the open one's severity and message). Returns
    /// whether it is new (not open before), so callers log a new condition once.
    pub fn raise_alert(
        &mut self,
        key: &str,
        severity: Severity,
        message: &str,
        now_unix: i64,
    ) -> Result<bool, StoreError> {
        let updated = self.conn.execute(
            "UPDATE alerts SET severity = ?2, message = ?3, updated_at = ?4
             WHERE key = ?1 AND cleared_at IS NULL",
            params![key, severity.as_str(), message, now_unix],
        )?;
        if updated > 0 {
            return Ok(false);
        }
        self.conn.execute(
            "INSERT INTO alerts (key, severity, message, raised_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![key, severity.as_str(), message, now_unix],
        )?;
        Ok(true)
    }

    /// Clears the open alert `key`; returns whether one was open.
    pub fn clear_alert(&mut self, key: &str, now_unix: i64) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE alerts SET cleared_at = ?2 WHERE key = ?1 AND cleared_at IS NULL",
            params![key, now_unix],
        )?;
        Ok(n > 0)
    }

    /// The open alert `key`, if any.
    pub fn open_alert(&self, key: &str) -> Result<Option<Alert>, StoreError> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM alerts WHERE key = ?1 AND cleared_at IS NULL"),
                [key],
                row_to_alert,
            )
            .optional()?;
        Ok(finish(row.into_iter().collect())?.pop())
    }

    /// Open alerts, most severe first, then newest first.
    pub fn open_alerts(&self) -> Result<Vec<Alert>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM alerts WHERE cleared_at IS NULL
             ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,
                      updated_at DESC, id DESC"
        ))?;
        let rows = stmt
            .query_map([], row_to_alert)?
            .collect::<Result<Vec<_>, _>>()?;
        finish(rows)
    }

    /// The latest `limit` alerts, open or cleared, newest first (history).
    pub fn recent_alerts(&self, limit: u32) -> Result<Vec<Alert>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM alerts ORDER BY raised_at DESC, id DESC LIMIT ?1"
        ))?;
        let rows = stmt
            .query_map([limit], row_to_alert)?
            .collect::<Result<Vec<_>, _>>()?;
        finish(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_stays_open_once_per_key_until_cleared_and_then_is_history() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = Store::open(dir.path()).expect("store");
        assert!(store
            .raise_alert("trunk:main:balance", Severity::Warning, "balance", 100)
            .expect("raise"));
        assert!(!store
            .raise_alert(
                "trunk:main:balance",
                Severity::Warning,
                "balance (again)",
                160
            )
            .expect("raise"));
        assert!(store
            .raise_alert("fraud:21", Severity::Critical, "locked", 120)
            .expect("raise"));
        let open = store.open_alerts().expect("list");
        assert_eq!(open.len(), 2);
        assert_eq!(open[0].key, "fraud:21", "critical first");
        assert_eq!(open[1].message, "balance (again)");
        assert_eq!((open[1].raised_at, open[1].updated_at), (100, 160));
        assert!(store.clear_alert("trunk:main:balance", 200).expect("clear"));
        assert!(!store.clear_alert("trunk:main:balance", 201).expect("clear"));
        assert!(store
            .open_alert("trunk:main:balance")
            .expect("get")
            .is_none());
        // Raised again after clearing: a new row; the old one is history.
        assert!(store
            .raise_alert("trunk:main:balance", Severity::Warning, "balance", 300)
            .expect("raise"));
        let all = store.recent_alerts(10).expect("history");
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].cleared_at, Some(200));
    }
}
