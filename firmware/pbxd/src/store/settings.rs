//! Key/value settings: the SIP realm and the digest nonce secret, created at first open.

use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

/// The SIP digest realm given to a new database.
pub const DEFAULT_REALM: &str = "pbx.local";

const REALM: &str = "sip_realm";
const NONCE_SECRET: &str = "nonce_secret";

impl Store {
    /// Creates missing defaults. `INSERT OR IGNORE`: a concurrent first open keeps one value.
    pub(super) fn init_settings(&self) -> Result<(), StoreError> {
        if self.setting(REALM)?.is_some() && self.setting(NONCE_SECRET)?.is_some() {
            return Ok(()); // no write lock needed
        }
        let secret: [u8; 32] = rand::random();
        let mut stmt = self
            .conn
            .prepare("INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)")?;
        stmt.execute(params![REALM, DEFAULT_REALM])?;
        stmt.execute(params![NONCE_SECRET, hex::encode(secret)])?;
        Ok(())
    }

    /// A setting's value, if set.
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let value = self
            .conn
            .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
            .query_row([key], |row| row.get(0))
            .optional()?;
        Ok(value)
    }

    /// The SIP digest realm the extensions' HA1s are made for.
    pub fn realm(&self) -> Result<String, StoreError> {
        self.setting(REALM)?.ok_or(StoreError::BadValue {
            what: REALM,
            detail: "missing".into(),
        })
    }

    /// The 32-byte secret that keys digest nonces; stable across restarts so that nonces
    /// issued before a restart stay verifiable.
    pub fn nonce_secret(&self) -> Result<[u8; 32], StoreError> {
        let bad = |detail: String| StoreError::BadValue {
            what: NONCE_SECRET,
            detail,
        };
        let text = self
            .setting(NONCE_SECRET)?
            .ok_or_else(|| bad("missing".into()))?;
        let bytes = hex::decode(&text).map_err(|e| bad(e.to_string()))?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| bad(format!("{} bytes instead of 32", bytes.len())))
    }
}
