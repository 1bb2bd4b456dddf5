//! Deleting SMS from the web UI's inbox (the modem task owns queueing and sending).

use super::{AuditCtx, Store, StoreError};

impl Store {
    /// Deletes one SMS; `Ok(false)` if there is none with this id. One still queued or
    /// being sent stays (the modem task may hold it). Audited as `sms.delete`.
    pub fn delete_sms(&mut self, by: &AuditCtx<'_>, id: i64) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let status: Option<String> = rusqlite::OptionalExtension::optional(tx.query_row(
            "SELECT status FROM sms WHERE id = ?1",
            [id],
            |r| r.get(0),
        ))?;
        match status.as_deref() {
            None => return Ok(false),
            Some("queued" | "sending") => {
                return Err(StoreError::InvalidValue {
                    what: "SMS",
                    reason: format!(
                        "SMS {id} is still being sent; delete it once it is sent or failed"
                    ),
                })
            }
            Some(_) => {}
        }
        tx.execute("DELETE FROM sms WHERE id = ?1", [id])?;
        super::audit::insert(&tx, by, "sms.delete", &format!("id={id}"))?;
        tx.commit()?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_received_and_sent_but_not_queued_sms() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Store::open(dir.path()).expect("store");
        let by = AuditCtx {
            actor: "test",
            source: "test",
            now_unix: 1_700_000_000,
        };
        let inbox = s
            .insert_received_sms("+491701234567", "hi", 1, 1_700_000_000)
            .expect("insert");
        let queued = s
            .queue_sms("+491701234567", "out", 1, "test", 1_700_000_000)
            .expect("queue");
        assert!(matches!(
            s.delete_sms(&by, queued),
            Err(StoreError::InvalidValue { what: "SMS", .. })
        ));
        assert_eq!(s.delete_sms(&by, inbox).ok(), Some(true));
        assert_eq!(s.delete_sms(&by, inbox).ok(), Some(false));
        assert!(s.get_sms(inbox).expect("read").is_none());
        assert!(s.get_sms(queued).expect("read").is_some());
    }
}
