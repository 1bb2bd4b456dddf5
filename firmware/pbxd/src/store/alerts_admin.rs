//! An administrator acknowledging an alert: closes the open alert (it stays as history,
//! audited). A condition that persists is raised again by the feature that detects it.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{audit, AuditCtx, Store, StoreError};

impl Store {
    /// Closes the open alert with row id `id`; returns its key, or `None` if no open alert
    /// has that id (unknown or already cleared).
    pub fn dismiss_alert(
        &mut self,
        by: &AuditCtx<'_>,
        id: i64,
    ) -> Result<Option<String>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let key: Option<String> = tx
            .query_row(
                "UPDATE alerts SET cleared_at = ?2 WHERE id = ?1 AND cleared_at IS NULL
                 RETURNING key",
                params![id, by.now_unix],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(k) = &key {
            audit::insert(&tx, by, "alert.dismiss", &format!("id={id} key={k}"))?;
            tx.commit()?;
        }
        Ok(key)
    }
}
