//! The SQLite store: the only module with SQL.
//!
//! One file, `DATA_DIR/pbx.db`, shared by `pbxd` and `pbxctl` at the same time (WAL mode,
//! a busy timeout, write transactions taken with `BEGIN IMMEDIATE`). `synchronous=FULL`:
//! a committed change survives a power cut. The API is synchronous; the daemon runs it on
//! a blocking thread. The store never reads the clock: callers pass `now_unix`.
//!
//! ```no_run
//! # fn main() -> Result<(), pbxd::store::StoreError> {
//! use pbxd::store::{AuditCtx, Store};
//! let mut store = Store::open(std::path::Path::new("./data"))?;
//! let by = AuditCtx { actor: "pbxctl", source: "cli", now_unix: 1_700_000_000 };
//! store.add_extension(&by, "101", Some("Reception"), "correct horse")?;
//! assert!(store.get_extension("101")?.is_some());
//! # Ok(()) }
//! ```

mod alerts;
mod alerts_admin;
mod audit;
mod backup;
mod blocks;
mod call_notes;
mod call_settings;
mod cdr;
mod data_version;
mod error;
mod extensions;
mod gsm;
mod number_forms;
mod phonebook;
mod ports;
mod registrations;
mod ring_groups;
mod schema;
mod settings;
mod site;
mod site_info;
mod sms_web;
mod trunk_alert;
mod trunk_numbers;
mod trunks;
mod user_prefs;
mod users;
mod web_queries;

use std::fs::{self, DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

pub use alerts::{Alert, Severity};
pub use audit::AuditEntry;
pub use backup::{
    device_id, BackupError, BackupTable, ForeignSecret, RestoreOptions, RestoreReport,
    BACKUP_FORMAT_VERSION, BACKUP_TABLES, COMPATIBLE, MAX_BACKUP_BYTES,
};
pub use blocks::AuthBlock;
pub use call_notes::{validate_note, MAX_NOTE_CHARS};
pub use call_settings::{
    validate_call_settings, CallSettings, ForwardTarget, OutboundClass, DEFAULT_NOANSWER_SECS,
    NOANSWER_SECS_RANGE, PICKUP_GROUP_RANGE,
};
pub use cdr::{
    cdr_csv_header, format_utc_ms, to_csv_row, validate_call_record, CallDirection, CallRecord,
    CdrQuery, Disposition, HangupSide, LegQuality, StoredCallRecord,
};
pub(crate) use cdr::{csv_field_guarded, csv_formula_start};
pub use error::StoreError;
pub use extensions::{
    validate_name, validate_number, validate_password, Extension, MIN_PASSWORD_LEN,
};
pub use gsm::{
    validate_inbound_destination, validate_outbound_prefix, GsmSettings, GsmStatusRow,
    OutboundPolicy, Sms, SmsDirection, SmsLimits, SmsStatus,
};
pub use phonebook::{
    clean_contact_number, clean_contact_numbers, validate_contact_name, PhonebookEntry,
    MAX_ENTRIES as MAX_PHONEBOOK_ENTRIES, MAX_NUMBERS as MAX_CONTACT_NUMBERS,
};
pub use ports::{PortSettings, PortStatusRow, MAX_PORTS};
pub use registrations::{Binding, BindingChange};
pub use ring_groups::{
    validate_ring_group, RingGroup, RingStrategy, DEFAULT_RING_SECS, MAX_MEMBERS, RING_SECS_RANGE,
};
pub use schema::SCHEMA_VERSION;
pub use settings::DEFAULT_REALM;
pub use site::{
    validate_area_code, validate_country_code, validate_outside_prefix, validate_site_settings,
    SiteSettings, DEFAULT_BILLING_TICK_SECS, DEFAULT_COUNTRY_CODE,
};
pub use site_info::{
    validate_emergency_address, validate_site_info, validate_time_zone, EmergencyAddress, SiteInfo,
    DEFAULT_TIME_ZONE,
};
pub use trunk_alert::{
    validate_trunk_down_alert, DEFAULT_TRUNK_DOWN_ALERT_SECS, TRUNK_DOWN_ALERT_RANGE,
};
pub use trunk_numbers::{
    validate_e164, EmergencySettings, ExternalPolicy, TollFraudSettings, TrunkNumber,
};
pub use trunks::{
    parse_srtp_mode, validate_host, validate_sip_user, validate_trunk, validate_trunk_name,
    SrtpMode, StoredTrunk, TrunkAccount, TrunkStatusRow, TrunkTransport, DEFAULT_MAX_CALLS,
    DEFAULT_REGISTER_SECS, REGISTER_SECS_RANGE,
};
pub use user_prefs::Language;
pub use users::{
    validate_username, validate_web_password, Role, WebUser, MAX_WEB_PASSWORD_LEN,
    MIN_WEB_PASSWORD_LEN,
};
pub use web_queries::{CdrFilter, CdrPage, MAX_PAGE};

/// The database file's name inside the data directory.
pub const DB_FILE_NAME: &str = "pbx.db";

/// Page cache per connection, in KiB (negative `cache_size` means KiB to SQLite).
const CACHE_KIB: i64 = -256;

/// How long a statement waits for the other process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Who makes a change, from where, and when: written to the audit log with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCtx<'a> {
    /// "pbxctl", "pbxd" or "web:USER".
    pub actor: &'a str,
    /// Where the request came from: "cli", a peer address, ...
    pub source: &'a str,
    /// Wall-clock time of the change, Unix seconds.
    pub now_unix: i64,
}

/// An open database. Cheap lookups (`get_extension`, `realm`) use cached statements on
/// primary keys, so the daemon can read per request.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// The database path for a data directory.
    pub fn db_path(data_dir: &Path) -> PathBuf {
        data_dir.join(DB_FILE_NAME)
    }

    /// Opens (creating if needed) `data_dir/pbx.db` and applies migrations.
    ///
    /// Creates `data_dir` with mode 0700 if missing. Refuses, with a clear error, a data
    /// directory it cannot write, a file that is not a database or fails `quick_check`, and a
    /// schema newer than [`SCHEMA_VERSION`]. On first open it creates the `sip_realm`
    /// ("pbx.local") and a random `nonce_secret` settings.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        prepare_data_dir(data_dir)?;
        let path = Self::db_path(data_dir);
        create_private(&path).map_err(|e| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            reason: format!("cannot create {}: {e}", path.display()),
        })?;
        // Each step of `connect` is idempotent. A lock held longer than the busy timeout
        // still fails; this covers SQLite's few lock paths that skip the busy handler.
        let mut retries = 0;
        loop {
            match Self::connect(path.clone()) {
                Err(StoreError::Sqlite(e))
                    if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) && retries < 3 =>
                {
                    retries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                result => return result,
            }
        }
    }

    /// Opens the connection, sets it up, migrates and initialises settings.
    fn connect(path: PathBuf) -> Result<Store, StoreError> {
        let classified = |e: rusqlite::Error| classify(&path, e);
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(classified)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(classified)?;
        // A database from a newer pbxd is refused before anything (even the journal
        // mode) is changed in it.
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(classified)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        set_wal(&conn, &path)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(classified)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(classified)?;
        // Lookups are by primary key; a small cache per connection keeps the daemon's
        // memory low on the appliance (the default grows to 2 MiB per connection,
        // filled by the quick_check below).
        conn.pragma_update(None, "cache_size", CACHE_KIB)
            .map_err(classified)?;
        quick_check(&conn, &path)?;
        schema::migrate(&mut conn).map_err(|e| match e {
            StoreError::Sqlite(e) => classify(&path, e),
            other => other,
        })?;
        number_forms::backfill(&mut conn).map_err(|e| match e {
            StoreError::Sqlite(e) => classify(&path, e),
            other => other,
        })?;
        let store = Store { conn, path };
        store.init_settings()?;
        Ok(store)
    }

    /// The database file this store uses.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Switches the file to WAL mode (a persistent property of the file), once.
///
/// The switch needs exclusive access and SQLite does not run the busy handler for it, so
/// two first opens at the same moment (pbxd starting while pbxctl runs) would see
/// "database is locked" at once: read the mode first (no lock once it is WAL) and retry
/// the switch with backoff, about as long as the busy timeout. The first statement that
/// reads the header also reports "not a database" for a foreign file.
fn set_wal(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    const ATTEMPTS: u32 = 100; // ~4.8 s of backoff in all
    let mut attempt = 0u32;
    loop {
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .map_err(|e| classify(path, e))?;
        if mode.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        if attempt == ATTEMPTS {
            return Err(StoreError::DataDir {
                path: path.to_path_buf(),
                reason: format!("cannot switch the database to WAL mode (still {mode:?})"),
            });
        }
        // Busy, or refused without an error (the answer is then the old mode): retry.
        match conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
        {
            Ok(_) => {}
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => {}
            Err(e) => return Err(classify(path, e)),
        }
        attempt += 1;
        if attempt > 1 {
            std::thread::sleep(Duration::from_millis(u64::from(attempt.min(11) - 1) * 5));
        }
    }
}

/// Creates the data directory (0700) if missing and checks that it is a writable directory:
/// SQLite in WAL mode must create `-wal` and `-shm` files beside the database.
fn prepare_data_dir(dir: &Path) -> Result<(), StoreError> {
    let fail = |reason: String| StoreError::DataDir {
        path: dir.to_path_buf(),
        reason,
    };
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(fail("not a directory".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| fail(format!("cannot create: {e}")))?;
        }
        Err(e) => return Err(fail(format!("cannot read: {e}"))),
    }
    fs::read_dir(dir).map_err(|e| fail(format!("not readable: {e}")))?;
    let probe = dir.join(".pbx-write-probe");
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .map_err(|e| fail(format!("not writable: {e}")))?;
    // Best effort: a leftover probe file is harmless and overwritten next time.
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// Creates an empty database file with mode 0600 if there is none: it holds HA1s, which
/// are password equivalents. SQLite gives its `-wal` and `-shm` files the same mode.
/// An empty file is a valid empty database.
fn create_private(path: &Path) -> std::io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Maps SQLite's "this is not (or no longer) a database" codes to [`StoreError::Corrupt`].
fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        },
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => {
            StoreError::DataDir {
                path: path.to_path_buf(),
                reason: format!("cannot open the database: {e}"),
            }
        }
        _ => StoreError::Sqlite(e),
    }
}

/// `PRAGMA quick_check`: O(size), a few milliseconds for this database; catches damaged
/// pages before the daemon trusts the file.
fn quick_check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check(5)")
        .map_err(|e| classify(path, e))?;
    let problems: Vec<String> = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| classify(path, e))?;
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    Err(StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: format!(
            "integrity check failed: {}",
            problems.join("; ").replace('\n', " ")
        ),
    })
}
