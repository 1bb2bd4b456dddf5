//! Site-wide call settings: numbering plan (country code, area code, outside-line prefix),
//! the billing tick and whether calls may be forwarded to external numbers.
//!
//! Stored as rows of the `settings` table (`site.*` keys); a missing row means the default,
//! so a database from before these settings existed reads as a German site with defaults.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{AuditCtx, Store, StoreError};

pub(super) const COUNTRY_CODE: &str = "site.country_code";
pub(super) const AREA_CODE: &str = "site.area_code";
pub(super) const OUTSIDE_PREFIX: &str = "site.outside_prefix";
pub(super) const BILLING_TICK: &str = "site.billing_tick_secs";
pub(super) const ALLOW_EXTERNAL_FORWARDING: &str = "site.allow_external_forwarding";

/// Default country calling code (Germany).
pub const DEFAULT_COUNTRY_CODE: &str = "49";
/// Default billing tick: the basic business plan charges per started minute.
pub const DEFAULT_BILLING_TICK_SECS: u32 = 60;
/// Longest accepted billing tick (one hour).
const MAX_BILLING_TICK_SECS: u32 = 3600;

/// The site's call settings as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSettings {
    /// Country calling code without `+` or `00`, e.g. "49".
    pub country_code: String,
    /// Area code without the national `0`, e.g. "211"; empty when not set.
    pub area_code: String,
    /// Digit dialled before an external number: `None` (dial directly) or `Some("0")`.
    pub outside_prefix: Option<String>,
    /// Billing tick in seconds: billable time is rounded up to whole ticks.
    pub billing_tick_secs: u32,
    /// Whether call forwarding (and ring-group no-answer targets) may point at external
    /// numbers. Off by default: such calls cost the customer money (see DOMAIN.md).
    pub allow_external_forwarding: bool,
}

impl Default for SiteSettings {
    fn default() -> Self {
        SiteSettings {
            country_code: DEFAULT_COUNTRY_CODE.to_owned(),
            area_code: String::new(),
            outside_prefix: None,
            billing_tick_secs: DEFAULT_BILLING_TICK_SECS,
            allow_external_forwarding: false,
        }
    }
}

fn invalid(what: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::InvalidValue {
        what,
        reason: reason.into(),
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Checks a country code: 1 to 3 digits, not starting with 0 (ITU-T E.164 codes).
pub fn validate_country_code(code: &str) -> Result<(), StoreError> {
    if !all_digits(code) || !(1..=3).contains(&code.len()) {
        return Err(invalid("country code", "must be 1 to 3 digits, e.g. 49"));
    }
    if code.starts_with('0') {
        return Err(invalid(
            "country code",
            "must not start with 0 (give it without 00 or +)",
        ));
    }
    Ok(())
}

/// Checks an area code: empty, or 1 to 5 digits without the national prefix 0
/// (German area codes have 2 to 5 digits after the 0, e.g. 30, 211, 33203).
pub fn validate_area_code(code: &str) -> Result<(), StoreError> {
    if code.is_empty() {
        return Ok(());
    }
    if !all_digits(code) || code.len() > 5 {
        return Err(invalid("area code", "must be 1 to 5 digits, e.g. 211"));
    }
    if code.starts_with('0') {
        return Err(invalid(
            "area code",
            "must be given without the leading 0 (211, not 0211)",
        ));
    }
    Ok(())
}

/// Checks the outside-line prefix: none, or "0" (extensions never start with 0, so "0"
/// cannot collide with an internal number).
pub fn validate_outside_prefix(prefix: Option<&str>) -> Result<(), StoreError> {
    match prefix {
        None | Some("0") => Ok(()),
        Some(_) => Err(invalid("outside-line prefix", "must be none or 0")),
    }
}

/// Checks every field of [`SiteSettings`].
pub fn validate_site_settings(s: &SiteSettings) -> Result<(), StoreError> {
    validate_country_code(&s.country_code)?;
    validate_area_code(&s.area_code)?;
    validate_outside_prefix(s.outside_prefix.as_deref())?;
    if !(1..=MAX_BILLING_TICK_SECS).contains(&s.billing_tick_secs) {
        return Err(invalid("billing tick", "must be 1 to 3600 seconds"));
    }
    Ok(())
}

pub(super) fn get(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([key], |row| row.get(0))
        .optional()?)
}

pub(super) fn put(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

fn bad(what: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::BadValue {
        what,
        detail: detail.into(),
    }
}

fn parse_bool(key: &'static str, value: &str) -> Result<bool, StoreError> {
    match value {
        "1" => Ok(true),
        "0" => Ok(false),
        other => Err(bad(key, format!("{other:?} is not 0 or 1"))),
    }
}

/// Reads the site settings through `conn` (also used inside other modules' transactions).
pub(super) fn load(conn: &Connection) -> Result<SiteSettings, StoreError> {
    let mut s = SiteSettings::default();
    if let Some(v) = get(conn, COUNTRY_CODE)? {
        validate_country_code(&v).map_err(|e| bad(COUNTRY_CODE, e.to_string()))?;
        s.country_code = v;
    }
    if let Some(v) = get(conn, AREA_CODE)? {
        validate_area_code(&v).map_err(|e| bad(AREA_CODE, e.to_string()))?;
        s.area_code = v;
    }
    if let Some(v) = get(conn, OUTSIDE_PREFIX)? {
        // Stored as "" for none.
        let prefix = (!v.is_empty()).then_some(v);
        validate_outside_prefix(prefix.as_deref())
            .map_err(|e| bad(OUTSIDE_PREFIX, e.to_string()))?;
        s.outside_prefix = prefix;
    }
    if let Some(v) = get(conn, BILLING_TICK)? {
        s.billing_tick_secs = v
            .parse()
            .ok()
            .filter(|t| (1..=MAX_BILLING_TICK_SECS).contains(t))
            .ok_or_else(|| bad(BILLING_TICK, format!("{v:?} is not 1 to 3600")))?;
    }
    if let Some(v) = get(conn, ALLOW_EXTERNAL_FORWARDING)? {
        s.allow_external_forwarding = parse_bool(ALLOW_EXTERNAL_FORWARDING, &v)?;
    }
    Ok(s)
}

impl Store {
    /// The site's call settings (defaults for any not set).
    pub fn site_settings(&self) -> Result<SiteSettings, StoreError> {
        load(&self.conn)
    }

    /// Validates and stores all site settings at once. Audited as `site.set` with the new
    /// values. Turning `allow_external_forwarding` off does not clear forwards already set:
    /// call control must check the setting at call time too.
    pub fn set_site_settings(
        &mut self,
        by: &AuditCtx<'_>,
        s: &SiteSettings,
    ) -> Result<(), StoreError> {
        validate_site_settings(s)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        put(&tx, COUNTRY_CODE, &s.country_code)?;
        put(&tx, AREA_CODE, &s.area_code)?;
        put(
            &tx,
            OUTSIDE_PREFIX,
            s.outside_prefix.as_deref().unwrap_or(""),
        )?;
        put(&tx, BILLING_TICK, &s.billing_tick_secs.to_string())?;
        put(
            &tx,
            ALLOW_EXTERNAL_FORWARDING,
            if s.allow_external_forwarding {
                "1"
            } else {
                "0"
            },
        )?;
        let detail = format!(
            "country_code={} area_code={} outside_prefix={} billing_tick={} \
             allow_external_forwarding={}",
            s.country_code,
            if s.area_code.is_empty() {
                "none"
            } else {
                &s.area_code
            },
            s.outside_prefix.as_deref().unwrap_or("none"),
            s.billing_tick_secs,
            if s.allow_external_forwarding {
                "on"
            } else {
                "off"
            },
        );
        super::audit::insert(&tx, by, "site.set", &detail)?;
        // Phonebook keys follow the new numbering rules.
        super::number_forms::rebuild_phonebook_keys(&tx)?;
        tx.commit()?;
        Ok(())
    }
}
