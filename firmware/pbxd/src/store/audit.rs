//! The audit log: who changed what, when, from where. Never holds a password.

use rusqlite::{params, Connection};

use super::{AuditCtx, Store, StoreError};

/// One audit log row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Increasing row id.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// "pbxctl", "pbxd", "web:alice", ...
    pub actor: String,
    /// Dotted verb, e.g. "extension.add".
    pub action: String,
    /// Free text without secrets, e.g. "number=101".
    pub detail: String,
    /// Where the request came from.
    pub source: String,
}

/// Appends a row inside the caller's transaction, so a change and its entry commit together.
pub(super) fn insert(
    conn: &Connection,
    by: &AuditCtx<'_>,
    action: &str,
    detail: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit_log (at, actor, action, detail, source) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![by.now_unix, by.actor, action, detail, by.source])?;
    Ok(())
}

impl Store {
    /// Appends an entry for an action the store does not audit itself (logins, reloads...).
    /// `detail` must not contain secrets.
    pub fn audit(&self, by: &AuditCtx<'_>, action: &str, detail: &str) -> Result<(), StoreError> {
        insert(&self.conn, by, action, detail)
    }

    /// The newest `limit` entries, newest first.
    pub fn audit_entries(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at, actor, action, detail, source FROM audit_log
             ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |row| {
            Ok(AuditEntry {
                id: row.get(0)?,
                at: row.get(1)?,
                actor: row.get(2)?,
                action: row.get(3)?,
                detail: row.get(4)?,
                source: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes entries older than `before_unix` (retention); returns how many.
    pub fn prune_audit(&mut self, before_unix: i64) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM audit_log WHERE at < ?1", [before_unix])?)
    }
}
