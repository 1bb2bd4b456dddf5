//! Configuration backup and restore: one archive file, shared by the web API and pbxctl.
//!
//! The archive is text:
//! ```text
//! PBX-BACKUP 1
//! sha256: <hex of the content>
//! hmac-sha256: <hex, keyed from this box's device key>
//!
//! <content: JSON with format/schema version, compatible, device id, time, tables>
//! ```
//! The SHA-256 catches a damaged or truncated file; the HMAC (key derived from
//! [`DeviceKey`]) tells a backup of this box from a foreign one. Only configuration is
//! kept: the tables in [`BACKUP_TABLES`] (never call records, registrations or the audit
//! log). New configuration tables are included by adding one line there.
//!
//! A restore checks everything it can before writing (header, checksum, origin, versions,
//! tables and columns, an administrator left), then replaces all listed tables in one
//! transaction, audited; a constraint failure rolls it back whole.

use std::collections::BTreeMap;

use ring::digest;
use ring::hmac;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::TransactionBehavior;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{audit, AuditCtx, Store, StoreError, SCHEMA_VERSION};
use crate::secret::{looks_sealed, DeviceKey};

/// The archive format this code writes and reads.
pub const BACKUP_FORMAT_VERSION: u32 = 1;
/// The product's compatible string (equal to `compatible=` in image/rauc/system.conf): a
/// backup only restores on the same product.
pub const COMPATIBLE: &str = "pbx-box-v1";
/// Largest archive a restore accepts (the web route's body limit too).
pub const MAX_BACKUP_BYTES: usize = 8 * 1024 * 1024;

const MAGIC: &str = "PBX-BACKUP";
const MAC_PURPOSE: &str = "pbx-backup-v1";
const ID_PURPOSE: &str = "pbx-device-id";

/// What to do with a value sealed by the device key when restoring a foreign backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignSecret {
    /// Leave the row out (key/value tables: the setting falls back to unset).
    DropRow,
    /// Store NULL in that column (the row stays; the secret must be entered again).
    Null,
}

/// One table a backup holds.
#[derive(Debug, Clone, Copy)]
pub struct BackupTable {
    /// The SQL table name.
    pub name: &'static str,
    /// Column naming a row in messages ("extension 101").
    pub key_column: &'static str,
    /// Handling of sealed secrets in a foreign restore.
    pub foreign_secret: ForeignSecret,
}

const fn table(name: &'static str, key_column: &'static str) -> BackupTable {
    BackupTable {
        name,
        key_column,
        foreign_secret: ForeignSecret::Null,
    }
}

/// The configuration tables, parents before children (restore inserts in this order and
/// deletes in reverse). Other features add their configuration tables (trunks, DIDs, GSM
/// settings) here; a table missing from the database is skipped.
pub const BACKUP_TABLES: &[BackupTable] = &[
    BackupTable {
        name: "settings",
        key_column: "key",
        foreign_secret: ForeignSecret::DropRow,
    },
    table("extensions", "number"),
    table("ring_groups", "number"),
    table("ring_group_members", "group_number"),
    table("call_settings", "extension"),
    table("web_users", "username"),
    table("auth_blocks", "ip"),
    // A trunk's password is NOT NULL: from another box the account must be entered again.
    BackupTable {
        name: "trunks",
        key_column: "name",
        foreign_secret: ForeignSecret::DropRow,
    },
    table("trunk_numbers", "number"),
    table("external_policy", "extension"),
    table("gsm_settings", "id"),
    table("ports", "port"),
    // After web_users: restored with its accounts (a cascade from them empties it first).
    table("phonebook", "id"),
];

/// Tables older archives may hold that this schema folded elsewhere; skipped on restore.
/// `trunk_limits`: the per-trunk call limit is now the account's `max_calls` (in `trunks`).
const LEGACY_TABLES: &[&str] = &["trunk_limits"];

/// Why a backup could not be made or restored. The messages are for the installer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// Not a PBX backup at all.
    #[error("this file is not a PBX configuration backup")]
    NotABackup,
    /// Written by another archive format.
    #[error(
        "backup format version {found} is not supported (this firmware reads version {supported})"
    )]
    FormatVersion {
        /// The file's format version.
        found: String,
        /// The one this firmware reads.
        supported: u32,
    },
    /// The checksum does not match: the file was damaged or cut short.
    #[error("the backup is damaged or incomplete (checksum mismatch); use another copy")]
    Damaged,
    /// Made for another product.
    #[error("the backup is for {found:?}, not for this device type ({expected:?})")]
    WrongProduct {
        /// The backup's compatible string.
        found: String,
        /// Ours.
        expected: &'static str,
    },
    /// Made on another box and the caller did not allow that.
    #[error(
        "the backup was made on another box (device {device}); restore it only if intended, \
         by allowing a restore from another box (sealed secrets are then dropped)"
    )]
    Foreign {
        /// The device id in the backup.
        device: String,
    },
    /// Made by a newer firmware: its data might not fit this schema.
    #[error("the backup is from a newer firmware (database schema {found}, this firmware has {supported}); update the firmware first")]
    SchemaTooNew {
        /// The backup's schema version.
        found: i64,
        /// Ours.
        supported: i64,
    },
    /// The content does not fit this database (unknown table or column, bad values).
    #[error("the backup does not fit this firmware: {0}")]
    Invalid(String),
    /// Restoring it would leave no way to log in.
    #[error(
        "the backup has no enabled administrator web account; restoring it would lock everyone out"
    )]
    NoAdmin,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for BackupError {
    fn from(e: rusqlite::Error) -> Self {
        BackupError::Store(StoreError::Sqlite(e))
    }
}

/// The archive's content (what the checksums cover).
#[derive(Debug, Serialize, Deserialize)]
struct Content {
    format_version: u32,
    schema_version: i64,
    compatible: String,
    device_id: String,
    pbxd_version: String,
    created_at: i64,
    tables: BTreeMap<String, TableRows>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TableRows {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

/// How a restore may proceed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// Accept a backup made on another box (its sealed secrets are dropped).
    pub allow_foreign: bool,
    /// Refuse a backup without web accounts (the web UI: the restoring administrator
    /// would lock everyone out). pbxctl allows it: pbxd then offers first-boot set-up.
    pub require_accounts: bool,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreReport {
    /// The backup came from another box.
    pub foreign: bool,
    /// The device id recorded in the backup.
    pub device_id: String,
    /// When the backup was made, Unix seconds.
    pub created_at: i64,
    /// Rows written per table.
    pub tables: BTreeMap<String, usize>,
    /// Secrets that only opened on the other box and must be entered again
    /// ("settings sim_pin", "trunks main: password").
    pub dropped_secrets: Vec<String>,
}

/// A short, stable id of this box (from its device key; reveals nothing about the key).
pub fn device_id(key: &DeviceKey) -> String {
    let tag = hmac::sign(&key.mac_key(ID_PURPOSE), b"device-id");
    hex::encode(&tag.as_ref()[..8])
}

fn sql_to_json(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => serde_json::json!({ "blob": hex::encode(b) }),
    }
}

fn json_to_sql(v: &Value) -> Result<SqlValue, BackupError> {
    let bad = || BackupError::Invalid(format!("unsupported value {v}"));
    Ok(match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().ok_or_else(bad)?),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Object(o) => {
            let h = o.get("blob").and_then(Value::as_str).ok_or_else(bad)?;
            SqlValue::Blob(hex::decode(h).map_err(|_| bad())?)
        }
        Value::Array(_) => return Err(bad()),
    })
}

impl Store {
    fn table_exists(&self, name: &str) -> Result<bool, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    fn table_columns(&self, name: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM pragma_table_info(?1)")?;
        let cols = stmt
            .query_map([name], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(cols)
    }

    /// The configuration tables as columns and rows, read in one consistent snapshot.
    fn dump_tables(&self) -> Result<BTreeMap<String, TableRows>, StoreError> {
        // One read transaction: a consistent snapshot while pbxctl or the daemon write.
        let tx = self.conn.unchecked_transaction()?;
        let mut tables = BTreeMap::new();
        for t in BACKUP_TABLES {
            if !self.table_exists(t.name)? {
                continue;
            }
            let columns = self.table_columns(t.name)?;
            let list = quoted(&columns);
            let mut stmt = tx.prepare(&format!("SELECT {list} FROM \"{}\"", t.name))?;
            let n = columns.len();
            let rows = stmt
                .query_map([], |row| {
                    (0..n)
                        .map(|i| row.get_ref(i).map(sql_to_json))
                        .collect::<Result<Vec<_>, _>>()
                })?
                .collect::<Result<Vec<_>, _>>()?;
            tables.insert(t.name.to_owned(), TableRows { columns, rows });
        }
        Ok(tables)
    }

    /// The configuration for a support bundle: the backup's tables as objects, with
    /// every secret replaced by `"<redacted>"` (password hashes, HA1s, sealed values,
    /// and columns or settings whose name says secret, password, pin, hash or ha1).
    pub fn config_without_secrets(&self) -> Result<Value, StoreError> {
        let secretish = |name: &str| {
            let n = name.to_ascii_lowercase();
            ["secret", "password", "pin", "hash", "ha1", "key"]
                .iter()
                .any(|w| n.contains(w))
        };
        let mut out = serde_json::Map::new();
        for (name, t) in self.dump_tables()? {
            let rows: Vec<Value> = t
                .rows
                .into_iter()
                .map(|row| {
                    // Key/value tables: the key names the secret.
                    let row_secret = name == "settings"
                        && row.first().and_then(Value::as_str).is_some_and(secretish);
                    let obj = t
                        .columns
                        .iter()
                        .zip(row)
                        .map(|(c, v)| {
                            let hide = (row_secret && c == "value")
                                || (secretish(c) && c != "key" && !v.is_null())
                                || v.as_str().is_some_and(looks_sealed);
                            let v = if hide { Value::from("<redacted>") } else { v };
                            (c.clone(), v)
                        })
                        .collect::<serde_json::Map<_, _>>();
                    Value::Object(obj)
                })
                .collect();
            out.insert(name, Value::Array(rows));
        }
        Ok(Value::Object(out))
    }

    /// Writes a backup of the configuration, marked with this box's key, and audits it.
    pub fn create_backup(
        &self,
        by: &AuditCtx<'_>,
        key: &DeviceKey,
    ) -> Result<Vec<u8>, BackupError> {
        let tables = self.dump_tables()?;
        let content = Content {
            format_version: BACKUP_FORMAT_VERSION,
            schema_version: SCHEMA_VERSION,
            compatible: COMPATIBLE.to_owned(),
            device_id: device_id(key),
            pbxd_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_at: by.now_unix,
            tables,
        };
        let body =
            serde_json::to_vec_pretty(&content).map_err(|e| BackupError::Invalid(e.to_string()))?;
        let sha = digest::digest(&digest::SHA256, &body);
        let mac = hmac::sign(&key.mac_key(MAC_PURPOSE), &body);
        let mut out = format!(
            "{MAGIC} {BACKUP_FORMAT_VERSION}\nsha256: {}\nhmac-sha256: {}\n\n",
            hex::encode(sha.as_ref()),
            hex::encode(mac.as_ref())
        )
        .into_bytes();
        out.extend_from_slice(&body);
        let counts: Vec<String> = content
            .tables
            .iter()
            .map(|(k, v)| format!("{k}={}", v.rows.len()))
            .collect();
        audit::insert(&self.conn, by, "backup.create", &counts.join(" "))?;
        Ok(out)
    }

    /// Checks a backup and, if it is sound, replaces the configuration with it in one
    /// transaction. A backup from another box is refused unless `opts.allow_foreign`;
    /// then its sealed secrets are dropped and listed in the report. Web accounts, if
    /// any, must include an enabled administrator.
    pub fn restore_backup(
        &mut self,
        by: &AuditCtx<'_>,
        key: &DeviceKey,
        archive: &[u8],
        opts: RestoreOptions,
    ) -> Result<RestoreReport, BackupError> {
        let (content, foreign) = open_archive(archive, key)?;
        if foreign && !opts.allow_foreign {
            return Err(BackupError::Foreign {
                device: content.device_id,
            });
        }
        let plan = self.plan_restore(&content, foreign)?;
        check_admin(&content, opts.require_accounts)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for t in plan.iter().rev() {
            tx.execute(&format!("DELETE FROM \"{}\"", t.name), [])?;
        }
        let mut counts = BTreeMap::new();
        for t in &plan {
            let marks = vec!["?"; t.columns.len()].join(", ");
            let sql = format!(
                "INSERT INTO \"{}\" ({}) VALUES ({marks})",
                t.name,
                quoted(&t.columns)
            );
            let mut stmt = tx.prepare(&sql)?;
            for (i, row) in t.rows.iter().enumerate() {
                stmt.execute(rusqlite::params_from_iter(row.iter()))
                    .map_err(|e| {
                        BackupError::Invalid(format!("table {} row {}: {e}", t.name, i + 1))
                    })?;
            }
            counts.insert(t.name.to_owned(), t.rows.len());
        }
        let broken: Option<String> = tx
            .query_row("SELECT \"table\" FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .ok();
        if let Some(table) = broken {
            return Err(BackupError::Invalid(format!(
                "table {table} refers to rows that are not in the backup"
            )));
        }
        // Notes of accounts the backup does not hold must not pass to a later namesake.
        tx.execute(
            "DELETE FROM call_notes WHERE username NOT IN (SELECT username FROM web_users)",
            [],
        )?;
        // The restored phonebook and site rules: its number keys are derived data.
        super::number_forms::rebuild_phonebook_keys(&tx)?;
        let dropped: Vec<String> = plan.iter().flat_map(|t| t.dropped.clone()).collect();
        audit::insert(
            &tx,
            by,
            "backup.restore",
            &format!(
                "device={} created_at={} foreign={foreign} dropped_secrets={}",
                content.device_id,
                content.created_at,
                dropped.len()
            ),
        )?;
        tx.commit()?;
        Ok(RestoreReport {
            foreign,
            device_id: content.device_id,
            created_at: content.created_at,
            tables: counts,
            dropped_secrets: dropped,
        })
    }

    /// Checks tables and columns against this database and prepares the rows.
    fn plan_restore(&self, c: &Content, foreign: bool) -> Result<Vec<Planned>, BackupError> {
        if let Some(name) = c.tables.keys().find(|n| {
            !BACKUP_TABLES.iter().any(|t| t.name == n.as_str())
                && !LEGACY_TABLES.contains(&n.as_str())
        }) {
            return Err(BackupError::Invalid(format!("unknown table {name:?}")));
        }
        let mut plan = Vec::new();
        for t in BACKUP_TABLES {
            if !self.table_exists(t.name)? {
                if c.tables.get(t.name).is_some_and(|r| !r.rows.is_empty()) {
                    return Err(BackupError::Invalid(format!(
                        "table {} does not exist here",
                        t.name
                    )));
                }
                continue;
            }
            let Some(data) = c.tables.get(t.name) else {
                // An older backup without this table: the table ends up empty.
                plan.push(Planned::empty(t.name));
                continue;
            };
            let ours = self.table_columns(t.name)?;
            if let Some(col) = data.columns.iter().find(|c| !ours.contains(c)) {
                return Err(BackupError::Invalid(format!(
                    "table {} has no column {col:?} here",
                    t.name
                )));
            }
            let key_at = data.columns.iter().position(|c| c == t.key_column);
            let mut planned = Planned::empty(t.name);
            planned.columns.clone_from(&data.columns);
            'rows: for (i, row) in data.rows.iter().enumerate() {
                if row.len() != data.columns.len() {
                    return Err(BackupError::Invalid(format!(
                        "table {} row {} has {} values for {} columns",
                        t.name,
                        i + 1,
                        row.len(),
                        data.columns.len()
                    )));
                }
                let mut values = Vec::with_capacity(row.len());
                for (col, v) in data.columns.iter().zip(row) {
                    let sealed = foreign && v.as_str().is_some_and(looks_sealed);
                    if !sealed {
                        values.push(json_to_sql(v)?);
                        continue;
                    }
                    let key = key_at
                        .and_then(|k| row.get(k))
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                        .unwrap_or_else(|| format!("row {}", i + 1));
                    match t.foreign_secret {
                        ForeignSecret::DropRow => {
                            planned.dropped.push(format!("{} {key}", t.name));
                            continue 'rows;
                        }
                        ForeignSecret::Null => {
                            planned.dropped.push(format!("{} {key}: {col}", t.name));
                            values.push(SqlValue::Null);
                        }
                    }
                }
                planned.rows.push(values);
            }
            plan.push(planned);
        }
        Ok(plan)
    }
}

struct Planned {
    name: &'static str,
    columns: Vec<String>,
    rows: Vec<Vec<SqlValue>>,
    dropped: Vec<String>,
}

impl Planned {
    fn empty(name: &'static str) -> Self {
        Planned {
            name,
            columns: Vec::new(),
            rows: Vec::new(),
            dropped: Vec::new(),
        }
    }
}

fn quoted(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Accounts, if any (or if required), must include an enabled administrator, or nobody
/// could administer the box.
fn check_admin(c: &Content, require_accounts: bool) -> Result<(), BackupError> {
    let users = c.tables.get("web_users").filter(|u| !u.rows.is_empty());
    let Some(users) = users else {
        return if require_accounts {
            Err(BackupError::NoAdmin)
        } else {
            Ok(())
        };
    };
    let at = |name: &str| users.columns.iter().position(|c| c == name);
    let (Some(role), disabled) = (at("role"), at("disabled")) else {
        return Err(BackupError::NoAdmin);
    };
    let ok = users.rows.iter().any(|r| {
        r.get(role).and_then(Value::as_str) == Some("admin")
            && disabled
                .and_then(|d| r.get(d))
                .is_none_or(|v| v.as_i64() == Some(0))
    });
    if ok {
        Ok(())
    } else {
        Err(BackupError::NoAdmin)
    }
}

/// Parses and verifies an archive: returns its content and whether it is foreign.
fn open_archive(archive: &[u8], key: &DeviceKey) -> Result<(Content, bool), BackupError> {
    if archive.len() > MAX_BACKUP_BYTES {
        return Err(BackupError::Invalid(format!(
            "larger than {} MiB",
            MAX_BACKUP_BYTES / (1024 * 1024)
        )));
    }
    let mut lines = archive.splitn(5, |&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let first = std::str::from_utf8(first).map_err(|_| BackupError::NotABackup)?;
    let version = first
        .strip_prefix(MAGIC)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(BackupError::NotABackup)?;
    if version != BACKUP_FORMAT_VERSION.to_string() {
        return Err(BackupError::FormatVersion {
            found: version.chars().take(16).collect(),
            supported: BACKUP_FORMAT_VERSION,
        });
    }
    let field = |line: Option<&[u8]>, name: &str| -> Result<Vec<u8>, BackupError> {
        line.and_then(|l| std::str::from_utf8(l).ok())
            .and_then(|l| l.strip_prefix(name))
            .and_then(|h| hex::decode(h.trim()).ok())
            .ok_or(BackupError::Damaged)
    };
    let sha = field(lines.next(), "sha256: ")?;
    let mac = field(lines.next(), "hmac-sha256: ")?;
    if lines.next() != Some(b"") {
        return Err(BackupError::Damaged);
    }
    let body = lines.next().ok_or(BackupError::Damaged)?;
    if digest::digest(&digest::SHA256, body).as_ref() != sha.as_slice() {
        return Err(BackupError::Damaged);
    }
    let foreign = hmac::verify(&key.mac_key(MAC_PURPOSE), body, &mac).is_err();
    let content: Content = serde_json::from_slice(body)
        .map_err(|e| BackupError::Invalid(format!("unreadable content: {e}")))?;
    if content.format_version != BACKUP_FORMAT_VERSION {
        return Err(BackupError::FormatVersion {
            found: content.format_version.to_string(),
            supported: BACKUP_FORMAT_VERSION,
        });
    }
    if content.compatible != COMPATIBLE {
        return Err(BackupError::WrongProduct {
            found: content.compatible,
            expected: COMPATIBLE,
        });
    }
    if content.schema_version > SCHEMA_VERSION {
        return Err(BackupError::SchemaTooNew {
            found: content.schema_version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok((content, foreign))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Role;

    const BY: AuditCtx<'static> = AuditCtx {
        actor: "test",
        source: "cli",
        now_unix: 1_700_000_000,
    };
    const OWN: RestoreOptions = RestoreOptions {
        allow_foreign: false,
        require_accounts: true,
    };
    const FOREIGN: RestoreOptions = RestoreOptions {
        allow_foreign: true,
        require_accounts: true,
    };
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

    fn configured(dir: &std::path::Path) -> Store {
        let mut s = Store::open(dir).expect("store");
        s.add_extension(&BY, "101", Some("Reception"), "secret-101")
            .expect("ext");
        s.add_extension(&BY, "102", None, "secret-102")
            .expect("ext");
        s.add_web_user(&BY, "root", HASH, Role::Admin, None)
            .expect("admin");
        s.add_web_user(&BY, "anna", HASH, Role::User, Some("101"))
            .expect("user");
        s
    }

    fn key(byte: u8) -> DeviceKey {
        DeviceKey::from_bytes(&[byte; 32]).expect("key")
    }

    fn count(s: &Store, table: &str) -> i64 {
        s.conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count")
    }

    #[test]
    fn a_backup_restores_the_configuration_and_nothing_else() {
        let dir = tempfile::tempdir().expect("dir");
        let mut s = configured(dir.path());
        let k = key(1);
        let archive = s.create_backup(&BY, &k).expect("backup");
        let text = String::from_utf8(archive.clone()).expect("text");
        assert!(text.starts_with("PBX-BACKUP 1\nsha256: "), "{text}");
        assert!(!text.contains("call_records") && !text.contains("registrations"));
        // Change the configuration, then restore.
        s.remove_extension(&BY, "102").expect("remove");
        s.add_extension(&BY, "103", None, "secret-103")
            .expect("ext");
        let report = s.restore_backup(&BY, &k, &archive, OWN).expect("restore");
        assert!(!report.foreign);
        assert_eq!(report.tables.get("extensions"), Some(&2));
        assert_eq!(report.tables.get("web_users"), Some(&2));
        assert!(s.get_extension("102").expect("get").is_some());
        assert!(s.get_extension("103").expect("get").is_none());
        let anna = s.get_web_user("anna").expect("get").expect("anna");
        assert_eq!(anna.extension.as_deref(), Some("101"));
        assert_eq!(anna.password_hash, HASH);
        let audit = s.audit_entries(1).expect("audit");
        assert_eq!(audit[0].action, "backup.restore");
    }

    #[test]
    fn a_bad_archive_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().expect("dir");
        let mut s = configured(dir.path());
        let k = key(1);
        let archive = s.create_backup(&BY, &k).expect("backup");
        s.add_extension(&BY, "199", None, "secret-199")
            .expect("ext");
        let mut flipped = archive.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x01;
        let newer = String::from_utf8(archive.clone()).expect("text").replacen(
            "PBX-BACKUP 1",
            "PBX-BACKUP 2",
            1,
        );
        let cases: [(&[u8], &str); 5] = [
            (&archive[..archive.len() / 2], "damaged or incomplete"),
            (&flipped, "damaged or incomplete"),
            (newer.as_bytes(), "format version 2 is not supported"),
            (b"hello", "not a PBX configuration backup"),
            (b"", "not a PBX configuration backup"),
        ];
        for (bytes, want) in cases {
            let err = s
                .restore_backup(&BY, &k, bytes, FOREIGN)
                .expect_err("refused")
                .to_string();
            assert!(err.contains(want), "{err} (wanted {want})");
        }
        assert!(s.get_extension("199").expect("get").is_some(), "unchanged");
    }

    #[test]
    fn a_foreign_backup_needs_consent_and_loses_its_sealed_secrets() {
        let dir = tempfile::tempdir().expect("dir");
        let mut s = configured(dir.path());
        let sealed = key(1).seal("sim-pin", "1234").expect("seal");
        s.conn
            .execute(
                "INSERT INTO settings (key, value) VALUES ('sim_pin', ?1)",
                [&sealed],
            )
            .expect("setting");
        let archive = s.create_backup(&BY, &key(1)).expect("backup");
        let other = tempfile::tempdir().expect("dir");
        let mut t = Store::open(other.path()).expect("store");
        let err = t
            .restore_backup(&BY, &key(2), &archive, OWN)
            .expect_err("foreign");
        assert!(matches!(err, BackupError::Foreign { .. }), "{err}");
        assert_eq!(count(&t, "extensions"), 0);
        let report = t
            .restore_backup(&BY, &key(2), &archive, FOREIGN)
            .expect("restore");
        assert!(report.foreign);
        assert_eq!(report.dropped_secrets, vec!["settings sim_pin".to_owned()]);
        assert_eq!(t.setting("sim_pin").expect("get"), None);
        assert!(t.get_extension("101").expect("get").is_some());
        // On its own box the secret comes back.
        let report = s
            .restore_backup(&BY, &key(1), &archive, OWN)
            .expect("restore");
        assert!(report.dropped_secrets.is_empty());
        assert_eq!(s.setting("sim_pin").expect("get"), Some(sealed));
    }

    #[test]
    fn trunks_numbers_and_the_sim_pin_travel_with_the_backup() {
        use crate::store::{SrtpMode, TrunkAccount, TrunkNumber, TrunkTransport};
        let dir = tempfile::tempdir().expect("dir");
        let mut s = configured(dir.path());
        let k = key(1);
        let account = TrunkAccount {
            name: "main".into(),
            enabled: true,
            registrar: "sipconnect.example.net".into(),
            domain: "sipconnect.example.net".into(),
            proxy: None,
            user: "4930123456".into(),
            auth_user: "4930123456".into(),
            transport: TrunkTransport::Udp,
            srtp: SrtpMode::Off,
            register_secs: 600,
            max_calls: 2,
        };
        let pw = k.seal("trunk:main", "provider-pw").expect("seal");
        s.add_trunk(&BY, &account, &pw).expect("trunk");
        s.add_trunk_number(
            &BY,
            &TrunkNumber {
                trunk: "main".into(),
                number: "+4930123456".into(),
                destination: Some("101".into()),
                callers: vec!["101".into()],
                is_default: true,
            },
        )
        .expect("number");
        let pin = k.seal("sim-pin", "1234").expect("seal");
        s.set_gsm_pin(&pin, false, 1).expect("pin");
        let archive = s.create_backup(&BY, &k).expect("backup");
        assert!(!String::from_utf8_lossy(&archive).contains("provider-pw"));

        // This box, after the configuration was lost: everything comes back.
        s.remove_trunk_number(&BY, "+4930123456").expect("remove");
        s.remove_trunk(&BY, "main").expect("remove");
        s.restore_backup(&BY, &k, &archive, OWN).expect("restore");
        assert!(s.get_trunk("main").expect("get").is_some());
        assert_eq!(s.trunk_numbers(None).expect("numbers").len(), 1);
        assert_eq!(s.gsm_settings().expect("gsm").pin_sealed, Some(pin));

        // Another box: the trunk (whose password cannot open there) and the PIN are left
        // out and listed; the numbers stay.
        let other = tempfile::tempdir().expect("dir");
        let mut t = Store::open(other.path()).expect("store");
        let report = t
            .restore_backup(&BY, &key(2), &archive, FOREIGN)
            .expect("restore");
        assert!(t.get_trunk("main").expect("get").is_none());
        assert_eq!(t.gsm_settings().expect("gsm").pin_sealed, None);
        assert_eq!(t.trunk_numbers(None).expect("numbers").len(), 1);
        assert_eq!(
            report.dropped_secrets.len(),
            2,
            "{:?}",
            report.dropped_secrets
        );
    }

    #[test]
    fn a_newer_schema_or_no_administrator_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let mut s = configured(dir.path());
        let k = key(1);
        let reseal = |content: &str| {
            let body = content.as_bytes();
            let sha = hex::encode(digest::digest(&digest::SHA256, body).as_ref());
            let mac = hex::encode(hmac::sign(&k.mac_key(MAC_PURPOSE), body).as_ref());
            format!("PBX-BACKUP 1\nsha256: {sha}\nhmac-sha256: {mac}\n\n{content}").into_bytes()
        };
        let archive = String::from_utf8(s.create_backup(&BY, &k).expect("backup")).expect("u8");
        let body = archive.split_once("\n\n").expect("body").1;
        let newer = body.replacen(
            &format!("\"schema_version\": {SCHEMA_VERSION}"),
            &format!("\"schema_version\": {}", SCHEMA_VERSION + 1),
            1,
        );
        let err = s
            .restore_backup(&BY, &k, &reseal(&newer), OWN)
            .expect_err("newer");
        assert!(matches!(err, BackupError::SchemaTooNew { .. }), "{err}");
        let no_admin = body.replace("\"admin\"", "\"user\"");
        let err = s
            .restore_backup(&BY, &k, &reseal(&no_admin), OWN)
            .expect_err("no admin");
        assert!(matches!(err, BackupError::NoAdmin), "{err}");
        let odd = body.replacen("\"extensions\"", "\"call_records\"", 1);
        let err = s
            .restore_backup(&BY, &k, &reseal(&odd), OWN)
            .expect_err("unknown table");
        assert!(err.to_string().contains("unknown table"), "{err}");
    }

    #[test]
    fn the_support_configuration_has_no_secrets() {
        let dir = tempfile::tempdir().expect("dir");
        let s = configured(dir.path());
        let cfg = s.config_without_secrets().expect("config").to_string();
        assert!(cfg.contains("\"Reception\""), "{cfg}");
        assert!(!cfg.contains("argon2id"), "{cfg}");
        let ha1: String = s
            .conn
            .query_row("SELECT ha1_md5 FROM extensions LIMIT 1", [], |r| r.get(0))
            .expect("ha1");
        let nonce = s.setting("nonce_secret").expect("get").expect("set");
        assert!(!cfg.contains(&ha1) && !cfg.contains(&nonce), "{cfg}");
    }
}
