//! Schema and migrations.
//!
//! A hand-written `user_version` migrator: `MIGRATIONS[i]` takes the schema from version `i`
//! to `i + 1`. Each step runs in its own `BEGIN IMMEDIATE` transaction that also bumps
//! `user_version`, so a power cut leaves either the old or the new schema, and a pbxctl and
//! a pbxd opening a fresh file at the same moment cannot both apply a step.
//! Rule: never edit a released step; append a new one.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Version 1: settings, extensions, registrar bindings, auth blocks, audit log.
const V1: &str = "
CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Digest HA1s only, never the password. `realm` is the realm the HA1s were made for:
-- if the realm setting changes, these rows need a new password.
CREATE TABLE extensions (
    number     TEXT PRIMARY KEY NOT NULL
               CHECK (length(number) BETWEEN 2 AND 6 AND number NOT GLOB '*[^0-9]*'),
    name       TEXT CHECK (name IS NULL OR length(name) BETWEEN 1 AND 64),
    realm      TEXT NOT NULL,
    ha1_md5    TEXT NOT NULL CHECK (length(ha1_md5) = 32),
    ha1_sha256 TEXT NOT NULL CHECK (length(ha1_sha256) = 64),
    enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE registrations (
    aor        TEXT NOT NULL,
    contact    TEXT NOT NULL,
    instance   TEXT,
    call_id    TEXT NOT NULL,
    cseq       INTEGER NOT NULL CHECK (cseq >= 0),
    expires_at INTEGER NOT NULL,
    transport  TEXT NOT NULL,
    source     TEXT NOT NULL,
    user_agent TEXT,
    q_milli    INTEGER CHECK (q_milli IS NULL OR q_milli BETWEEN 0 AND 1000),
    PRIMARY KEY (aor, contact)
) WITHOUT ROWID;
CREATE INDEX registrations_expires_at ON registrations (expires_at);

CREATE TABLE auth_blocks (
    ip            TEXT PRIMARY KEY NOT NULL,
    reason        TEXT NOT NULL,
    blocked_at    INTEGER NOT NULL,
    blocked_until INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
";

/// All steps, oldest first.
const MIGRATIONS: &[&str] = &[V1];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    Ok(v)
}

/// Brings the schema up to [`SCHEMA_VERSION`]; refuses a newer one.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // Fast path without the write lock: a read-only pbxctl must not wait for the daemon.
    let found = user_version(conn)?;
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Read inside the write lock: another process may have migrated meanwhile.
        let found = user_version(&tx)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let Some(step) = usize::try_from(found).ok().and_then(|i| MIGRATIONS.get(i)) else {
            if found < 0 {
                return Err(StoreError::BadValue {
                    what: "user_version",
                    detail: format!("negative schema version {found}"),
                });
            }
            // found == SCHEMA_VERSION: up to date; the transaction is dropped unchanged.
            return Ok(());
        };
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", found + 1)?;
        tx.commit()?;
    }
}
