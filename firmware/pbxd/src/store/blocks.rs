//! Authentication blocks: source addresses locked out after repeated digest failures.

use std::net::IpAddr;

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{AuditCtx, Store, StoreError};

/// A blocked source address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthBlock {
    /// The blocked address.
    pub ip: IpAddr,
    /// Why, e.g. "10 failed REGISTER authentications in 60 s".
    pub reason: String,
    /// Unix seconds when the block started.
    pub blocked_at: i64,
    /// Unix seconds when it lapses.
    pub until: i64,
}

impl Store {
    /// Blocks `ip` from `by.now_unix` until `until` (replacing an earlier block of the same
    /// address). Audited as `block.add`.
    pub fn add_block(
        &mut self,
        by: &AuditCtx<'_>,
        ip: IpAddr,
        reason: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR REPLACE INTO auth_blocks (ip, reason, blocked_at, blocked_until)
             VALUES (?1, ?2, ?3, ?4)",
            params![ip.to_canonical().to_string(), reason, by.now_unix, until],
        )?;
        super::audit::insert(
            &tx,
            by,
            "block.add",
            &format!("ip={ip} until={until} reason={reason:?}"),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Blocks in force at `now_unix` (`until > now_unix`), by address.
    pub fn active_blocks(&self, now_unix: i64) -> Result<Vec<AuthBlock>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT ip, reason, blocked_at, blocked_until FROM auth_blocks
             WHERE blocked_until > ?1 ORDER BY ip",
        )?;
        let rows = stmt.query_map([now_unix], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
            ))
        })?;
        let mut blocks = Vec::new();
        for row in rows {
            let (ip, reason, blocked_at, until) = row?;
            let ip = ip.parse().map_err(|e| StoreError::BadValue {
                what: "auth_blocks.ip",
                detail: format!("{ip:?}: {e}"),
            })?;
            blocks.push(AuthBlock {
                ip,
                reason,
                blocked_at,
                until,
            });
        }
        Ok(blocks)
    }

    /// Whether `ip` is blocked at `now_unix` (primary-key lookup).
    pub fn is_blocked(&self, ip: IpAddr, now_unix: i64) -> Result<bool, StoreError> {
        let hit = self
            .conn
            .prepare_cached("SELECT 1 FROM auth_blocks WHERE ip = ?1 AND blocked_until > ?2")?
            .query_row(params![ip.to_canonical().to_string(), now_unix], |_| Ok(()))
            .optional()?;
        Ok(hit.is_some())
    }

    /// Lifts the block on `ip`; returns whether there was one (expired or not).
    /// Audited as `block.remove` when a row was removed.
    pub fn remove_block(&mut self, by: &AuditCtx<'_>, ip: IpAddr) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "DELETE FROM auth_blocks WHERE ip = ?1",
            [ip.to_canonical().to_string()],
        )?;
        if n > 0 {
            super::audit::insert(&tx, by, "block.remove", &format!("ip={ip}"))?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    /// Deletes blocks that lapsed at or before `now_unix`; returns how many.
    pub fn delete_expired_blocks(&mut self, now_unix: i64) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "DELETE FROM auth_blocks WHERE blocked_until <= ?1",
            [now_unix],
        )?)
    }
}
