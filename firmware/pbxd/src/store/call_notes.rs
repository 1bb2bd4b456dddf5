//! Notes on call-log entries: one per web account and call, private to that account.
//! Whether the account may see the call at all is checked here too, so the API cannot
//! attach a note to someone else's call.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{audit, AuditCtx, Store, StoreError};

/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 500;

/// Checks a note's text: 1 to [`MAX_NOTE_CHARS`] characters, no control characters
/// other than line breaks and tabs. Returns it trimmed.
pub fn validate_note(note: &str) -> Result<&str, StoreError> {
    let note = note.trim();
    let bad = |reason: &str| {
        Err(StoreError::InvalidValue {
            what: "note",
            reason: reason.to_owned(),
        })
    };
    if note.is_empty() {
        return bad("must not be empty (delete the note instead)");
    }
    if note.chars().count() > MAX_NOTE_CHARS {
        return bad("at most 500 characters");
    }
    if note
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        return bad("must not contain control characters");
    }
    Ok(note)
}

impl Store {
    /// Whether call record `id` exists and, when `own_extension` is given, that
    /// extension made or received it (the same rule as the call-log filter).
    pub fn call_visible(&self, id: i64, own_extension: Option<&str>) -> Result<bool, StoreError> {
        let found: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT id FROM call_records
                 WHERE id = ?1 AND (?2 IS NULL OR caller = ?2 OR destination = ?2)",
            )?
            .query_row(params![id, own_extension], |r| r.get(0))
            .optional()?;
        Ok(found.is_some())
    }

    /// Sets (adds or replaces) `username`'s note on call `id`. The caller checks
    /// visibility with [`Store::call_visible`] first. Audited as `call.note.set`
    /// (without the text: notes are private).
    pub fn set_call_note(
        &mut self,
        by: &AuditCtx<'_>,
        username: &str,
        id: i64,
        note: &str,
    ) -> Result<(), StoreError> {
        let note = validate_note(note)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO call_notes (call, username, note, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (call, username) DO UPDATE SET note = ?3, updated_at = ?4",
            params![id, username, note, by.now_unix],
        )?;
        audit::insert(
            &tx,
            by,
            "call.note.set",
            &format!("call={id} chars={}", note.chars().count()),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes `username`'s note on call `id`; false if there was none. Audited as
    /// `call.note.delete`.
    pub fn delete_call_note(
        &mut self,
        by: &AuditCtx<'_>,
        username: &str,
        id: i64,
    ) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "DELETE FROM call_notes WHERE call = ?1 AND username = ?2",
            params![id, username],
        )?;
        if n == 0 {
            return Ok(false);
        }
        audit::insert(&tx, by, "call.note.delete", &format!("call={id}"))?;
        tx.commit()?;
        Ok(true)
    }

    /// `username`'s note on call `id`, if any.
    pub fn call_note(&self, username: &str, id: i64) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT note FROM call_notes WHERE call = ?1 AND username = ?2")?
            .query_row(params![id, username], |r| r.get(0))
            .optional()?)
    }

    /// `username`'s notes on the given calls, by call id (for one call-log page or export).
    pub fn call_notes_for(
        &self,
        username: &str,
        ids: &[i64],
    ) -> Result<HashMap<i64, String>, StoreError> {
        let mut out = HashMap::new();
        if ids.len() > usize::try_from(super::MAX_PAGE).unwrap_or(usize::MAX) {
            // A CSV export: one walk over this account's notes beats a lookup per row.
            let wanted: std::collections::HashSet<i64> = ids.iter().copied().collect();
            let mut stmt = self
                .conn
                .prepare_cached("SELECT call, note FROM call_notes WHERE username = ?1")?;
            let rows = stmt.query_map([username], |r| Ok((r.get(0)?, r.get(1)?)))?;
            for row in rows {
                let (id, note): (i64, String) = row?;
                if wanted.contains(&id) {
                    out.insert(id, note);
                }
            }
            return Ok(out);
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT note FROM call_notes WHERE call = ?1 AND username = ?2")?;
        for id in ids {
            if let Some(n) = stmt
                .query_row(params![id, username], |r| r.get::<_, String>(0))
                .optional()?
            {
                out.insert(*id, n);
            }
        }
        Ok(out)
    }
}
