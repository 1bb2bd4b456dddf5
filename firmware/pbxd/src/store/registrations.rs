//! Registrar bindings, persisted so that phones stay reachable across a daemon restart.
//! The daemon keeps them in memory and writes through; pbxctl reads them.

use std::net::SocketAddr;

use rusqlite::{params, Connection, Row, TransactionBehavior};

use super::{Store, StoreError};

/// One contact bound to an address of record (RFC 3261 sec. 10). Key: (aor, contact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Address of record, e.g. "sip:101@pbx.local".
    pub aor: String,
    /// The Contact URI as registered.
    pub contact: String,
    /// `+sip.instance` (RFC 5626), if the phone sent one.
    pub instance: Option<String>,
    /// Call-ID of the REGISTER that made or refreshed the binding.
    pub call_id: String,
    /// Its CSeq number.
    pub cseq: u32,
    /// Unix seconds at which the binding lapses.
    pub expires_at: i64,
    /// Transport it came over: "udp", "tcp", "tls", ...
    pub transport: String,
    /// Source address of the REGISTER (where to send requests behind NAT).
    pub source: SocketAddr,
    /// User-Agent header, if any.
    pub user_agent: Option<String>,
    /// Contact q-value in thousandths (q=0.5 is 500), if given.
    pub q_milli: Option<u16>,
}

fn row_to_binding(row: &Row<'_>) -> rusqlite::Result<Binding> {
    let source: String = row.get(7)?;
    let source = source.parse::<SocketAddr>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Binding {
        aor: row.get(0)?,
        contact: row.get(1)?,
        instance: row.get(2)?,
        call_id: row.get(3)?,
        cseq: row.get(4)?,
        expires_at: row.get(5)?,
        transport: row.get(6)?,
        source,
        user_agent: row.get(8)?,
        q_milli: row.get(9)?,
    })
}

/// One change to the stored bindings, for [`Store::apply_binding_changes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingChange {
    /// Insert or replace the binding with the same (aor, contact).
    Save(Binding),
    /// Delete one binding.
    Delete {
        /// Address of record.
        aor: String,
        /// Contact URI as stored.
        contact: String,
    },
}

fn upsert(conn: &Connection, b: &Binding) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO registrations
                     (aor, contact, instance, call_id, cseq, expires_at, transport, source,
                      user_agent, q_milli)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        b.aor,
        b.contact,
        b.instance,
        b.call_id,
        b.cseq,
        b.expires_at,
        b.transport,
        b.source.to_string(),
        b.user_agent,
        b.q_milli
    ])?;
    Ok(())
}

fn delete(conn: &Connection, aor: &str, contact: &str) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached("DELETE FROM registrations WHERE aor = ?1 AND contact = ?2")?
        .execute([aor, contact])?;
    Ok(n > 0)
}

impl Store {
    /// Inserts or replaces the binding with the same (aor, contact).
    pub fn save_binding(&mut self, b: &Binding) -> Result<(), StoreError> {
        upsert(&self.conn, b)
    }

    /// Applies many changes in one transaction: one fsync for a burst of REGISTERs
    /// instead of one each (`synchronous=FULL` makes each commit cost milliseconds).
    pub fn apply_binding_changes(&mut self, changes: &[BindingChange]) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for change in changes {
            match change {
                BindingChange::Save(b) => upsert(&tx, b)?,
                BindingChange::Delete { aor, contact } => {
                    delete(&tx, aor, contact)?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes one binding; returns whether it existed.
    pub fn delete_binding(&mut self, aor: &str, contact: &str) -> Result<bool, StoreError> {
        delete(&self.conn, aor, contact)
    }

    /// Deletes every binding of an AOR (`Contact: *`); returns how many.
    pub fn delete_bindings_for(&mut self, aor: &str) -> Result<usize, StoreError> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM registrations WHERE aor = ?1")?
            .execute([aor])?;
        Ok(n)
    }

    /// The bindings still valid at `now_unix` (`expires_at > now_unix`), by AOR and contact.
    /// Read-only: expired rows are skipped, not deleted (see [`Store::delete_expired`]).
    pub fn load_bindings(&self, now_unix: i64) -> Result<Vec<Binding>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT aor, contact, instance, call_id, cseq, expires_at, transport, source,
                    user_agent, q_milli
             FROM registrations WHERE expires_at > ?1 ORDER BY aor, contact",
        )?;
        let rows = stmt.query_map([now_unix], row_to_binding)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes bindings that lapsed at or before `now_unix`; returns how many.
    pub fn delete_expired(&mut self, now_unix: i64) -> Result<usize, StoreError> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM registrations WHERE expires_at <= ?1")?
            .execute([now_unix])?;
        Ok(n)
    }
}
