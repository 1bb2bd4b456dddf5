//! Extensions: number, display name and digest HA1s (never the password).

use pbx_sip::auth::{ha1, Algorithm};
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

use super::{AuditCtx, Store, StoreError};

/// Shortest accepted SIP password, in characters.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest accepted SIP password, in characters (phones' own fields are shorter).
const MAX_PASSWORD_LEN: usize = 128;
/// Longest display name, in characters.
const MAX_NAME_LEN: usize = 64;
/// Emergency numbers (police, fire/ambulance, sea rescue) that dialling must reach at once.
const EMERGENCY: [&str; 3] = ["110", "112", "124124"];

/// A phone account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// The extension number, also the SIP user name.
    pub number: String,
    /// Display name, if any.
    pub name: Option<String>,
    /// The realm the HA1s were computed for; if it differs from [`Store::realm`], the
    /// password must be set again before the phone can authenticate.
    pub realm: String,
    /// Lowercase hex MD5(number:realm:password), from `pbx_sip::auth::ha1`.
    pub ha1_md5: String,
    /// Lowercase hex SHA-256(number:realm:password), from `pbx_sip::auth::ha1`.
    pub ha1_sha256: String,
    /// Disabled extensions keep their data but must not register or call.
    pub enabled: bool,
}

impl Extension {
    /// The stored HA1 for a digest algorithm, to hand to `pbx_sip::auth::verify`.
    pub fn ha1(&self, alg: Algorithm) -> &str {
        match alg {
            Algorithm::Md5 => &self.ha1_md5,
            Algorithm::Sha256 => &self.ha1_sha256,
        }
    }
}

/// Checks the office numbering rule.
///
/// A number is 2 to 6 ASCII digits and does not start with 0 (0 is the outside-line prefix).
/// It must not overlap an emergency number (110, 112, 124124) in either direction: it may
/// be neither one of them, nor a prefix of one (11, 12, 124, ...), nor start with one
/// (1100, 1123, ...). Analog phones dial digit by digit, and an emergency call must never
/// wait to see whether more digits follow.
pub fn validate_number(number: &str) -> Result<(), StoreError> {
    let bad = |reason| {
        Err(StoreError::InvalidNumber {
            number: number.to_owned(),
            reason,
        })
    };
    if !number.bytes().all(|b| b.is_ascii_digit()) {
        return bad("only digits 0-9 are allowed");
    }
    if !(2..=6).contains(&number.len()) {
        return bad("must have 2 to 6 digits");
    }
    if number.starts_with('0') {
        return bad("must not start with 0 (outside-line prefix)");
    }
    if EMERGENCY
        .iter()
        .any(|e| e.starts_with(number) || number.starts_with(e))
    {
        return bad("overlaps an emergency number (110, 112, 124124)");
    }
    Ok(())
}

/// Checks a display name: at most 64 characters, no control characters, not blank.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    if name.trim().is_empty() {
        return Err(StoreError::InvalidName("must not be empty"));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(StoreError::InvalidName("longer than 64 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(StoreError::InvalidName("contains control characters"));
    }
    Ok(())
}

/// Checks a SIP password: 8 to 128 characters, no control characters, not the number.
pub fn validate_password(number: &str, password: &str) -> Result<(), StoreError> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(StoreError::InvalidPassword("shorter than 8 characters"));
    }
    if len > MAX_PASSWORD_LEN {
        return Err(StoreError::InvalidPassword("longer than 128 characters"));
    }
    if password.chars().any(char::is_control) {
        return Err(StoreError::InvalidPassword("contains control characters"));
    }
    if password == number {
        return Err(StoreError::InvalidPassword(
            "must not be the extension number",
        ));
    }
    Ok(())
}

fn row_to_extension(row: &Row<'_>) -> rusqlite::Result<Extension> {
    Ok(Extension {
        number: row.get(0)?,
        name: row.get(1)?,
        realm: row.get(2)?,
        ha1_md5: row.get(3)?,
        ha1_sha256: row.get(4)?,
        enabled: row.get(5)?,
    })
}

const SELECT: &str = "SELECT number, name, realm, ha1_md5, ha1_sha256, enabled FROM extensions";

impl Store {
    /// Adds an extension after validating number, name and password; stores only HA1s
    /// for the current realm. Audited as `extension.add`.
    pub fn add_extension(
        &mut self,
        by: &AuditCtx<'_>,
        number: &str,
        name: Option<&str>,
        password: &str,
    ) -> Result<(), StoreError> {
        validate_number(number)?;
        if let Some(name) = name {
            validate_name(name)?;
        }
        validate_password(number, password)?;
        let realm = self.realm()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO extensions
                 (number, name, realm, ha1_md5, ha1_sha256, enabled, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6)",
            params![
                number,
                name,
                realm,
                ha1(Algorithm::Md5, number, &realm, password),
                ha1(Algorithm::Sha256, number, &realm, password),
                by.now_unix
            ],
        );
        match inserted {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                return Err(StoreError::DuplicateExtension(number.to_owned()));
            }
            // The schema's `extension_number_free` trigger: the number is a ring group.
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_TRIGGER =>
            {
                return Err(StoreError::NumberInUse {
                    number: number.to_owned(),
                    used_by: "a ring group",
                });
            }
            Err(e) => return Err(e.into()),
        }
        let detail = match name {
            Some(name) => format!("number={number} name={name:?}"),
            None => format!("number={number}"),
        };
        super::audit::insert(&tx, by, "extension.add", &detail)?;
        tx.commit()?;
        Ok(())
    }

    /// All extensions, ordered by number.
    pub fn list_extensions(&self) -> Result<Vec<Extension>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("{SELECT} ORDER BY number"))?;
        let rows = stmt.query_map([], row_to_extension)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One extension by number (primary-key lookup, cheap enough per SIP request).
    pub fn get_extension(&self, number: &str) -> Result<Option<Extension>, StoreError> {
        let ext = self
            .conn
            .prepare_cached(&format!("{SELECT} WHERE number = ?1"))?
            .query_row([number], row_to_extension)
            .optional()?;
        Ok(ext)
    }

    /// Removes an extension. Audited as `extension.remove`.
    pub fn remove_extension(&mut self, by: &AuditCtx<'_>, number: &str) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if tx.execute("DELETE FROM extensions WHERE number = ?1", [number])? == 0 {
            return Err(StoreError::UnknownExtension(number.to_owned()));
        }
        super::audit::insert(&tx, by, "extension.remove", &format!("number={number}"))?;
        tx.commit()?;
        Ok(())
    }

    /// Replaces an extension's password (HA1s for the current realm). Audited as
    /// `extension.set_password`; the password is not logged.
    pub fn set_password(
        &mut self,
        by: &AuditCtx<'_>,
        number: &str,
        password: &str,
    ) -> Result<(), StoreError> {
        validate_password(number, password)?;
        let realm = self.realm()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE extensions SET realm = ?2, ha1_md5 = ?3, ha1_sha256 = ?4, updated_at = ?5
             WHERE number = ?1",
            params![
                number,
                realm,
                ha1(Algorithm::Md5, number, &realm, password),
                ha1(Algorithm::Sha256, number, &realm, password),
                by.now_unix
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::UnknownExtension(number.to_owned()));
        }
        super::audit::insert(
            &tx,
            by,
            "extension.set_password",
            &format!("number={number}"),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Enables or disables an extension (an administrator's block on suspected misuse).
    /// Audited as `extension.enable` / `extension.disable`.
    pub fn set_extension_enabled(
        &mut self,
        by: &AuditCtx<'_>,
        number: &str,
        enabled: bool,
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE extensions SET enabled = ?2, updated_at = ?3 WHERE number = ?1",
            params![number, enabled, by.now_unix],
        )?;
        if changed == 0 {
            return Err(StoreError::UnknownExtension(number.to_owned()));
        }
        let action = if enabled {
            "extension.enable"
        } else {
            "extension.disable"
        };
        super::audit::insert(&tx, by, action, &format!("number={number}"))?;
        tx.commit()?;
        Ok(())
    }
}
