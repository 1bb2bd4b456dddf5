//! The store's one error type.

use std::path::PathBuf;

/// Why a store operation failed.
///
/// Opening errors (`DataDir`, `Corrupt`, `SchemaTooNew`) mean the daemon must not start;
/// the others are per-request and leave the database unchanged.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory could not be created, is not a directory, or is not writable.
    #[error("data directory {path}: {reason}")]
    DataDir {
        /// The directory given.
        path: PathBuf,
        /// What went wrong, e.g. "not writable: Permission denied (os error 13)".
        reason: String,
    },
    /// The database file is not a SQLite database or fails its integrity check.
    #[error("database {path} is corrupt ({detail}); refusing to start, restore it from a backup")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// SQLite's own description of the damage.
        detail: String,
    },
    /// The database was written by a newer firmware; opening it could lose data.
    #[error(
        "database schema version {found} is newer than this pbxd ({supported}); refusing to start"
    )]
    SchemaTooNew {
        /// The `user_version` in the file.
        found: i64,
        /// The newest version this binary knows.
        supported: i64,
    },
    /// An extension number breaks the numbering rule (see [`crate::store::validate_number`]).
    #[error("invalid extension number {number:?}: {reason}")]
    InvalidNumber {
        /// The number as given.
        number: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A display name breaks the naming rule (see [`crate::store::validate_name`]).
    #[error("invalid name: {0}")]
    InvalidName(&'static str),
    /// A password is too weak or malformed; the password itself is never included.
    #[error("invalid password: {0}")]
    InvalidPassword(&'static str),
    /// `add_extension` for a number that already exists.
    #[error("extension {0} already exists")]
    DuplicateExtension(String),
    /// The extension does not exist.
    #[error("extension {0} does not exist")]
    UnknownExtension(String),
    /// A call-handling value (outbound class, forward target, timeout, site setting, ...)
    /// breaks its rule.
    #[error("invalid {what}: {reason}")]
    InvalidValue {
        /// Which value, e.g. "forward target".
        what: &'static str,
        /// Which rule it breaks.
        reason: String,
    },
    /// The number already belongs to something else (an extension or a ring group).
    #[error("number {number} is already {used_by}")]
    NumberInUse {
        /// The number as given.
        number: String,
        /// "an extension" or "a ring group".
        used_by: &'static str,
    },
    /// `add_ring_group` for a number that already is a ring group.
    #[error("ring group {0} already exists")]
    DuplicateRingGroup(String),
    /// The ring group does not exist.
    #[error("ring group {0} does not exist")]
    UnknownRingGroup(String),
    /// A forward (or ring-group no-answer) target is external, and the site forbids
    /// forwarding to external numbers (it costs money).
    #[error(
        "forwarding to the external number {0} is not allowed on this site \
         (allow_external_forwarding is off)"
    )]
    ExternalForwardingDisabled(String),
    /// A call record breaks an invariant (end before start, answer outside the call, ...).
    #[error("invalid call record: {0}")]
    InvalidCallRecord(&'static str),
    /// A value stored in the database cannot be read back as its type.
    #[error("bad stored value for {what}: {detail}")]
    BadValue {
        /// Which column or setting.
        what: &'static str,
        /// The problem.
        detail: String,
    },
    /// `add_web_user` for a user name that already exists.
    #[error("user {0} already exists")]
    DuplicateUser(String),
    /// The web user does not exist.
    #[error("user {0} does not exist")]
    UnknownUser(String),
    /// First-boot set-up after an account already exists.
    #[error("the first administrator has already been created")]
    AlreadySetUp,
    /// `add_trunk` for a name that already exists.
    #[error("trunk {0} already exists")]
    DuplicateTrunk(String),
    /// The trunk does not exist.
    #[error("trunk {0} does not exist")]
    UnknownTrunk(String),
    /// Any other SQLite failure (disk full, I/O error, lock timeout, ...).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}
