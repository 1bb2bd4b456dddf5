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

/// Version 2 (calls): call records, per-extension call settings, ring groups.
/// Site settings (country code, area code, ...) live in `settings` and need no table.
/// An extension and a ring group never share a number: triggers refuse it both ways,
/// whichever API (or a future one) inserts. Deleting an extension deletes its call
/// settings and its ring-group memberships (ON DELETE CASCADE).
const V2: &str = "
CREATE TABLE call_records (
    id              INTEGER PRIMARY KEY,
    call_id         TEXT NOT NULL,
    caller          TEXT NOT NULL,
    caller_name     TEXT,
    dialled         TEXT NOT NULL,
    normalised      TEXT,
    destination     TEXT,
    direction       TEXT NOT NULL CHECK (direction IN ('internal', 'outbound', 'inbound')),
    route           TEXT,
    source_ip       TEXT,
    dest_ip         TEXT,
    start_ms        INTEGER NOT NULL,
    answer_ms       INTEGER CHECK (answer_ms IS NULL OR answer_ms BETWEEN start_ms AND end_ms),
    end_ms          INTEGER NOT NULL CHECK (end_ms >= start_ms),
    disposition     TEXT NOT NULL CHECK (disposition IN
                        ('answered', 'busy', 'no_answer', 'cancelled', 'failed', 'blocked')),
    reason          TEXT,
    sip_status      INTEGER CHECK (sip_status IS NULL OR sip_status BETWEEN 100 AND 699),
    hangup          TEXT CHECK (hangup IS NULL OR hangup IN ('caller', 'callee', 'system')),
    caller_loss_pct REAL,
    caller_jitter_ms REAL,
    caller_rtt_ms   REAL,
    caller_mos      REAL,
    callee_loss_pct REAL,
    callee_jitter_ms REAL,
    callee_rtt_ms   REAL,
    callee_mos      REAL
);
CREATE INDEX call_records_start ON call_records (start_ms);
CREATE INDEX call_records_caller ON call_records (caller, start_ms);
CREATE INDEX call_records_destination ON call_records (destination, start_ms);

-- One row per extension that differs from the defaults; no row = defaults.
CREATE TABLE call_settings (
    extension        TEXT PRIMARY KEY NOT NULL
                     REFERENCES extensions (number) ON DELETE CASCADE,
    outbound_class   TEXT NOT NULL DEFAULT 'national'
                     CHECK (outbound_class IN ('internal', 'local', 'national', 'international')),
    clir             INTEGER NOT NULL DEFAULT 0 CHECK (clir IN (0, 1)),
    dnd              INTEGER NOT NULL DEFAULT 0 CHECK (dnd IN (0, 1)),
    forward_always   TEXT,
    forward_busy     TEXT,
    forward_noanswer TEXT,
    forward_noanswer_secs INTEGER NOT NULL DEFAULT 20
                     CHECK (forward_noanswer_secs BETWEEN 5 AND 120),
    pickup_group     INTEGER CHECK (pickup_group IS NULL OR pickup_group BETWEEN 1 AND 99),
    updated_at       INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE ring_groups (
    number          TEXT PRIMARY KEY NOT NULL
                    CHECK (length(number) BETWEEN 2 AND 6 AND number NOT GLOB '*[^0-9]*'),
    name            TEXT CHECK (name IS NULL OR length(name) BETWEEN 1 AND 64),
    strategy        TEXT NOT NULL CHECK (strategy IN ('simultaneous', 'ordered')),
    ring_secs       INTEGER NOT NULL DEFAULT 20 CHECK (ring_secs BETWEEN 5 AND 300),
    noanswer_target TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE ring_group_members (
    group_number TEXT NOT NULL REFERENCES ring_groups (number) ON DELETE CASCADE,
    position     INTEGER NOT NULL CHECK (position >= 0),
    extension    TEXT NOT NULL REFERENCES extensions (number) ON DELETE CASCADE,
    PRIMARY KEY (group_number, position),
    UNIQUE (group_number, extension)
) WITHOUT ROWID;
CREATE INDEX ring_group_members_extension ON ring_group_members (extension);

CREATE TRIGGER extension_number_free BEFORE INSERT ON extensions
WHEN EXISTS (SELECT 1 FROM ring_groups WHERE number = NEW.number)
BEGIN SELECT RAISE(ABORT, 'number is a ring group'); END;
CREATE TRIGGER ring_group_number_free BEFORE INSERT ON ring_groups
WHEN EXISTS (SELECT 1 FROM extensions WHERE number = NEW.number)
BEGIN SELECT RAISE(ABORT, 'number is an extension'); END;
";

/// Version 3 (web UI accounts): user name, argon2id PHC hash, role, linked extension.
/// Deleting an extension unlinks it from its user (the account stays).
const V3: &str = "
CREATE TABLE web_users (
    username      TEXT PRIMARY KEY NOT NULL CHECK (length(username) BETWEEN 1 AND 32),
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    extension     TEXT REFERENCES extensions (number) ON DELETE SET NULL,
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX web_users_extension ON web_users (extension);
";

/// Version 4 (alerts): conditions the dashboard shows until they clear (trunk refusals,
/// emergency calls, toll-fraud locks, SIM problems). One open alert per key; cleared ones
/// stay as history.
const V4: &str = "
CREATE TABLE alerts (
    id         INTEGER PRIMARY KEY,
    key        TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 128),
    severity   TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message    TEXT NOT NULL,
    raised_at  INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    cleared_at INTEGER
);
CREATE UNIQUE INDEX alerts_open ON alerts (key) WHERE cleared_at IS NULL;
CREATE INDEX alerts_raised ON alerts (raised_at);
";

/// Version 5 (web UI language): each web account's UI language (English or German).
const V5: &str = "
ALTER TABLE web_users ADD COLUMN language TEXT NOT NULL DEFAULT 'en'
    CHECK (language IN ('en', 'de'));
";

/// Version 6 (GSM/LTE module): one settings row (PIN and PUK sealed with the device key,
/// the SIM's rejection of them, the installer's gateway-use confirmation, inbound
/// destination, outbound policy, SMS limits), one status row the daemon writes, and the
/// SMS in- and outbox.
const V6: &str = "
CREATE TABLE gsm_settings (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    pin_sealed           TEXT,
    pin_rejected         INTEGER NOT NULL DEFAULT 0 CHECK (pin_rejected IN (0, 1)),
    pin_last_attempt_ok  INTEGER NOT NULL DEFAULT 0 CHECK (pin_last_attempt_ok IN (0, 1)),
    puk_sealed           TEXT,
    puk_new_pin_sealed   TEXT,
    puk_rejected         INTEGER NOT NULL DEFAULT 0 CHECK (puk_rejected IN (0, 1)),
    gateway_confirmed_at INTEGER,
    inbound_destination  TEXT,
    outbound_prefix      TEXT,
    outbound_policy      TEXT NOT NULL DEFAULT 'prefix'
                         CHECK (outbound_policy IN ('off', 'prefix', 'fallback', 'all')),
    sms_retention_days   INTEGER NOT NULL DEFAULT 30 CHECK (sms_retention_days BETWEEN 1 AND 3650),
    sms_per_minute       INTEGER NOT NULL DEFAULT 5 CHECK (sms_per_minute BETWEEN 1 AND 60),
    sms_per_day          INTEGER NOT NULL DEFAULT 100 CHECK (sms_per_day BETWEEN 1 AND 1000),
    updated_at           INTEGER NOT NULL
);
INSERT INTO gsm_settings (id, updated_at) VALUES (1, 0);
CREATE TABLE gsm_status (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    sim           TEXT NOT NULL,
    registration  TEXT NOT NULL,
    operator      TEXT,
    signal_dbm    INTEGER,
    pin_left      INTEGER,
    puk_left      INTEGER,
    last_error    TEXT,
    updated_at    INTEGER NOT NULL
);
CREATE TABLE sms (
    id          INTEGER PRIMARY KEY,
    direction   TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    peer        TEXT NOT NULL,
    at          INTEGER NOT NULL,
    text        TEXT NOT NULL,
    parts       INTEGER NOT NULL DEFAULT 1,
    read        INTEGER NOT NULL DEFAULT 0 CHECK (read IN (0, 1)),
    status      TEXT NOT NULL CHECK (status IN ('received', 'queued', 'sending', 'sent', 'failed')),
    error       TEXT,
    created_by  TEXT
);
CREATE INDEX sms_at ON sms (at);
CREATE INDEX sms_outbox ON sms (status) WHERE status IN ('queued', 'sending');
";

/// Version 7 (calls over the cloud trunk): the account's numbers per trunk name (no
/// foreign key: the trunks' table comes with the registration client), per-extension
/// external-call policy and toll-fraud locks, per-trunk concurrent-call limits.
const V7: &str = "
CREATE TABLE trunk_numbers (
    number      TEXT PRIMARY KEY NOT NULL CHECK (number GLOB '+[1-9]*'),
    trunk       TEXT NOT NULL CHECK (length(trunk) BETWEEN 1 AND 64),
    destination TEXT,
    callers     TEXT NOT NULL DEFAULT '',
    is_default  INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1))
) WITHOUT ROWID;
CREATE INDEX trunk_numbers_trunk ON trunk_numbers (trunk);
CREATE TABLE external_policy (
    extension        TEXT PRIMARY KEY NOT NULL,
    max_concurrent   INTEGER CHECK (max_concurrent >= 1),
    allow_forwarding INTEGER NOT NULL DEFAULT 0 CHECK (allow_forwarding IN (0, 1)),
    locked_at        INTEGER,
    locked_reason    TEXT
) WITHOUT ROWID;
CREATE TABLE trunk_limits (
    trunk     TEXT PRIMARY KEY NOT NULL,
    max_calls INTEGER NOT NULL CHECK (max_calls >= 1)
) WITHOUT ROWID;
";

/// Version 8 (cloud trunk accounts): one row per provider account, the password sealed
/// with the device key; `trunk_status` is written by the registration client for
/// `pbxctl trunk status` (no foreign key: pbxd may write a status a moment after removal).
const V8: &str = "
CREATE TABLE trunks (
    name            TEXT PRIMARY KEY NOT NULL CHECK (length(name) BETWEEN 1 AND 32),
    enabled         INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    registrar       TEXT NOT NULL,
    domain          TEXT NOT NULL,
    proxy           TEXT,
    sip_user        TEXT NOT NULL,
    auth_user       TEXT NOT NULL,
    password_sealed TEXT NOT NULL,
    transport       TEXT NOT NULL CHECK (transport IN ('udp', 'tcp', 'tls')),
    srtp            TEXT NOT NULL CHECK (srtp IN ('off', 'optional', 'mandatory')),
    register_secs   INTEGER NOT NULL CHECK (register_secs BETWEEN 60 AND 86400),
    max_calls       INTEGER NOT NULL CHECK (max_calls BETWEEN 1 AND 1000),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE trunk_status (
    name             TEXT PRIMARY KEY NOT NULL,
    state            TEXT NOT NULL,
    reason           TEXT NOT NULL,
    registered_until INTEGER,
    public_addr      TEXT,
    since            INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Issue 7, GSM routing by number class: mobile numbers go out over the module.
const V9: &str = "
ALTER TABLE gsm_settings ADD COLUMN outbound_mobile INTEGER NOT NULL DEFAULT 0
    CHECK (outbound_mobile IN (0, 1));
";

/// Version 10 (issue 5): a trunk's concurrent-call limit lives in
/// one place, `trunks.max_calls`. Limits set with `pbxctl numbers limit` (the old
/// `trunk_limits` table) move onto their trunk, capped to the account's 1..=1000;
/// a limit for a trunk that does not exist had no effect and goes.
const V10: &str = "
UPDATE trunks SET max_calls = (
    SELECT min(l.max_calls, 1000) FROM trunk_limits l WHERE l.trunk = trunks.name
) WHERE name IN (SELECT trunk FROM trunk_limits);
DROP TABLE trunk_limits;
";

/// Version 11 (analog port settings): per-port settings
/// set with `pbxctl port set` (NULL: the default, i.e. `--port-extensions`, DE, the
/// country's caller-ID mode), and `port_status`, written by pbxd on change for
/// `pbxctl ports` (no foreign key: a port may have status without settings).
const V11: &str = "
CREATE TABLE ports (
    port         INTEGER PRIMARY KEY NOT NULL CHECK (port BETWEEN 1 AND 64),
    number       TEXT,
    name         TEXT,
    country      TEXT CHECK (country IN ('DE', 'AT', 'CH', 'GB', 'FR', 'NL', 'US')),
    cid_mode     TEXT CHECK (cid_mode IN ('off', 'bell202', 'v23', 'dtmf')),
    call_waiting INTEGER NOT NULL DEFAULT 1 CHECK (call_waiting IN (0, 1)),
    updated_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX ports_number ON ports (number) WHERE number IS NOT NULL;
CREATE TABLE port_status (
    port       INTEGER PRIMARY KEY NOT NULL,
    number     TEXT NOT NULL,
    hook       TEXT NOT NULL,
    linefeed   TEXT NOT NULL,
    call       TEXT NOT NULL,
    faulty     TEXT,
    updated_at INTEGER NOT NULL
);
";

/// Version 12 (the call log searched by an external number): the
/// dialled digits and their E.164 form get indexes in start order, so a number filter
/// walks four indexes (caller, destination, dialled, normalised) instead of scanning
/// every record. Existing rows are indexed as the index is built: nothing to backfill.
const V12: &str = "
CREATE INDEX call_records_dialled ON call_records (dialled, start_ms);
CREATE INDEX call_records_normalised ON call_records (normalised, start_ms)
    WHERE normalised IS NOT NULL;
";

/// Version 13 (web users' own data): a note per account on a call-log entry, and each
/// account's personal phonebook (entries with up to five numbers, stored as entered; the
/// web side normalises them with the site's current dial rules when matching calls).
/// Deleting a call record deletes its notes, an account its phonebook. A note's account is
/// not a foreign key: a restore replaces `web_users` wholesale and a cascade would wipe
/// every note (call records, hence notes, are not in backups); deleting an account and a
/// restore remove notes of accounts that no longer exist explicitly.
const V13: &str = "
CREATE TABLE call_notes (
    call       INTEGER NOT NULL REFERENCES call_records (id) ON DELETE CASCADE,
    username   TEXT NOT NULL,
    note       TEXT NOT NULL CHECK (length(note) BETWEEN 1 AND 500),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (call, username)
) WITHOUT ROWID;
CREATE INDEX call_notes_username ON call_notes (username);
CREATE TABLE phonebook (
    id         INTEGER PRIMARY KEY,
    username   TEXT NOT NULL REFERENCES web_users (username) ON DELETE CASCADE,
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    numbers    TEXT NOT NULL CHECK (length(numbers) BETWEEN 1 AND 200),
    updated_at INTEGER NOT NULL
);
CREATE INDEX phonebook_username ON phonebook (username, name);
";

/// Version 14 (forwarded calls, issue 5): a call an extension forwards to an external
/// number records the forwarding party, which pays for the outbound leg. A plain added
/// column (NULL for every older record and every other call); the direction's CHECK
/// stays as it is, since widening it would mean rebuilding the table under its notes.
const V14: &str = "
ALTER TABLE call_records ADD COLUMN forwarded_by TEXT;
";

/// Version 15 (numbers searched in any form): the E.164 form of a call's external
/// caller and callee, and of each phonebook number, indexed, so `0301234567`,
/// `+49301234567` and `030 123 4567` find the same calls and contacts. The forms come
/// from the dial plan's rules in Rust (store/number_forms.rs): the `e164_backfill`
/// marker table makes the next open fill existing rows, then drops it.
const V15: &str = "
ALTER TABLE call_records ADD COLUMN caller_e164 TEXT;
ALTER TABLE call_records ADD COLUMN callee_e164 TEXT;
CREATE INDEX call_records_caller_e164 ON call_records (caller_e164, start_ms)
    WHERE caller_e164 IS NOT NULL;
CREATE INDEX call_records_callee_e164 ON call_records (callee_e164, start_ms)
    WHERE callee_e164 IS NOT NULL;
-- Each phonebook number as written and its E.164 form (one row each).
CREATE TABLE phonebook_numbers (
    entry      INTEGER NOT NULL REFERENCES phonebook (id) ON DELETE CASCADE,
    username   TEXT NOT NULL,
    number_key TEXT NOT NULL,
    PRIMARY KEY (entry, number_key)
) WITHOUT ROWID;
CREATE INDEX phonebook_numbers_key ON phonebook_numbers (username, number_key);
CREATE TABLE e164_backfill (pending INTEGER NOT NULL);
";

/// All steps, oldest first.
pub(super) const MIGRATIONS: &[&str] = &[
    V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13, V14, V15,
];

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

#[cfg(test)]
mod v10_tests {
    use super::*;

    /// A version-8 file with a limit in `trunk_limits` keeps it, now on the account.
    #[test]
    fn v10_moves_trunk_limits_onto_their_trunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = Connection::open(dir.path().join("pbx.db")).expect("open");
        let v8 = MIGRATIONS.iter().position(|m| *m == V8).expect("V8 listed");
        for step in &MIGRATIONS[..=v8] {
            conn.execute_batch(step).expect("old step");
        }
        conn.pragma_update(None, "user_version", i64::try_from(v8 + 1).expect("small"))
            .expect("version");
        conn.execute_batch(
            "INSERT INTO trunks VALUES ('a', 1, 'r', 'd', NULL, 'u', 'u', 'x', 'udp', 'off', 600, 10, 0, 0);
             INSERT INTO trunks VALUES ('b', 1, 'r', 'd', NULL, 'u', 'u', 'x', 'udp', 'off', 600, 10, 0, 0);
             INSERT INTO trunk_limits VALUES ('a', 3), ('b', 5000), ('gone', 2);",
        )
        .expect("old rows");
        migrate(&mut conn).expect("migrate");
        let limit = |name: &str| -> u32 {
            conn.query_row(
                "SELECT max_calls FROM trunks WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .expect("row")
        };
        assert_eq!(limit("a"), 3);
        assert_eq!(limit("b"), 1000, "capped to the account's range");
        let left: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'trunk_limits'",
                [],
                |r| r.get(0),
            )
            .expect("query");
        assert_eq!(left, 0);
    }
}
