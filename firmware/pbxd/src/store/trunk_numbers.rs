//! Calls over the cloud trunk (issue 5): the account's numbers (DIDs) and where each one
//! rings, which extensions may send it as caller ID, the site's emergency caller ID and
//! address, concurrent-call limits and the toll-fraud settings and locks.
//!
//! Numbers name their trunk by its plain name (the trunks' own table belongs to the
//! registration client); site-wide values live in the `settings` table (`site.emergency_*`,
//! `fraud.*` keys).

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::site::{get, put};
use super::trunks::validate_trunk_name;
use super::{AuditCtx, Store, StoreError};

const EMERGENCY_CALLER_ID: &str = "site.emergency_caller_id";
const EMERGENCY_ADDRESS: &str = "site.emergency_address";
const FRAUD_ENABLED: &str = "fraud.enabled";
const FRAUD_CALLS_PER_MINUTE: &str = "fraud.calls_per_minute";
const FRAUD_USER_CONCURRENT: &str = "fraud.user_concurrent";

/// One of the account's numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkNumber {
    /// The trunk (provider account) that owns it.
    pub trunk: String,
    /// E.164 with `+`, e.g. `+4921112345`.
    pub number: String,
    /// What a call to it rings: an extension, ring group or analog port number
    /// (`None`: used as caller ID only).
    pub destination: Option<String>,
    /// Extensions that may send it as their caller ID (`*`: every extension).
    pub callers: Vec<String>,
    /// The trunk's caller ID for extensions no number is assigned to.
    pub is_default: bool,
}

impl TrunkNumber {
    /// Whether `extension` may show this number.
    pub fn allows(&self, extension: &str) -> bool {
        self.callers.iter().any(|c| c == "*" || c == extension)
    }
}

/// Where emergency calls say they come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmergencySettings {
    /// E.164 sent as caller ID on 110/112 (one of the account's numbers).
    pub caller_id: Option<String>,
    /// The site's postal address, as registered with the provider for emergency calls.
    pub address: Option<String>,
}

/// Toll-fraud protection (on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TollFraudSettings {
    /// Whether the limits apply.
    pub enabled: bool,
    /// Outbound external calls one extension may start per minute before it is locked.
    pub calls_per_minute: u32,
    /// Concurrent external calls per extension (unless the extension sets its own).
    pub user_concurrent: u32,
}

impl Default for TollFraudSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            calls_per_minute: 5,
            // The provider's flatrate covers one line per user.
            user_concurrent: 1,
        }
    }
}

/// One extension's external-call policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalPolicy {
    /// Concurrent external calls (`None`: the site's default).
    pub max_concurrent: Option<u32>,
    /// Whether it may forward calls to external numbers.
    pub allow_forwarding: bool,
    /// Locked for external calls: since when (Unix seconds) and why.
    pub locked: Option<(i64, String)>,
}

fn invalid(what: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::InvalidValue {
        what,
        reason: reason.into(),
    }
}

/// Checks an E.164 number: `+`, a country code not starting with 0, 4 to 15 digits.
pub fn validate_e164(what: &'static str, n: &str) -> Result<(), StoreError> {
    let digits = n.strip_prefix('+').ok_or_else(|| {
        invalid(
            what,
            format!("{n:?} must be in E.164 form with +, e.g. +4921112345"),
        )
    })?;
    if !(4..=15).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || digits.starts_with('0')
    {
        return Err(invalid(
            what,
            format!("{n:?} must be + and 4 to 15 digits, not starting with 0"),
        ));
    }
    Ok(())
}

fn validate_internal(what: &'static str, n: &str) -> Result<(), StoreError> {
    if (1..=6).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(invalid(
            what,
            format!("{n:?} must be an extension, ring group or port number (1 to 6 digits)"),
        ))
    }
}

fn parse_u32(what: &'static str, v: &str) -> Result<u32, StoreError> {
    v.parse().map_err(|_| StoreError::BadValue {
        what,
        detail: format!("{v:?} is not a number"),
    })
}

impl Store {
    /// Adds one of the account's numbers (or replaces it). Making it the default clears
    /// the trunk's previous default. Audited as `number.add`.
    pub fn add_trunk_number(
        &mut self,
        by: &AuditCtx<'_>,
        n: &TrunkNumber,
    ) -> Result<(), StoreError> {
        validate_trunk_name(&n.trunk)?;
        validate_e164("number", &n.number)?;
        if let Some(d) = &n.destination {
            validate_internal("destination", d)?;
        }
        for c in &n.callers {
            if c != "*" {
                validate_internal("caller", c)?;
            }
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if n.is_default {
            tx.execute(
                "UPDATE trunk_numbers SET is_default = 0 WHERE trunk = ?1",
                [&n.trunk],
            )?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO trunk_numbers (number, trunk, destination, callers, is_default)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                n.number,
                n.trunk,
                n.destination,
                n.callers.join(","),
                n.is_default
            ],
        )?;
        super::audit::insert(
            &tx,
            by,
            "number.add",
            &format!(
                "number={} trunk={} destination={} callers={} default={}",
                n.number,
                n.trunk,
                n.destination.as_deref().unwrap_or("-"),
                n.callers.join(","),
                n.is_default
            ),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Removes a number; `Ok(false)` if the account had no such number. Audited as
    /// `number.remove`.
    pub fn remove_trunk_number(
        &mut self,
        by: &AuditCtx<'_>,
        number: &str,
    ) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute("DELETE FROM trunk_numbers WHERE number = ?1", [number])?;
        if n > 0 {
            super::audit::insert(&tx, by, "number.remove", &format!("number={number}"))?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    /// The account's numbers (of `trunk`, or all), by trunk and number.
    pub fn trunk_numbers(&self, trunk: Option<&str>) -> Result<Vec<TrunkNumber>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT trunk, number, destination, callers, is_default FROM trunk_numbers
             WHERE ?1 IS NULL OR trunk = ?1 ORDER BY trunk, number",
        )?;
        let rows = stmt.query_map([trunk], |row| {
            let callers: String = row.get(3)?;
            Ok(TrunkNumber {
                trunk: row.get(0)?,
                number: row.get(1)?,
                destination: row.get(2)?,
                callers: callers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                is_default: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The caller ID `extension` shows on calls through `trunk`: a number assigned to
    /// it, else the trunk's default number; never a number the account does not own.
    pub fn caller_id_for(
        &self,
        trunk: &str,
        extension: &str,
    ) -> Result<Option<String>, StoreError> {
        let numbers = self.trunk_numbers(Some(trunk))?;
        let own = numbers
            .iter()
            .find(|n| n.callers.iter().any(|c| c == extension))
            .or_else(|| numbers.iter().find(|n| n.allows(extension)))
            .or_else(|| numbers.iter().find(|n| n.is_default));
        Ok(own.map(|n| n.number.clone()))
    }

    /// The site's emergency caller ID and address.
    pub fn emergency_settings(&self) -> Result<EmergencySettings, StoreError> {
        let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
        Ok(EmergencySettings {
            caller_id: non_empty(get(&self.conn, EMERGENCY_CALLER_ID)?),
            address: non_empty(get(&self.conn, EMERGENCY_ADDRESS)?),
        })
    }

    /// Stores the emergency caller ID (E.164) and address. Audited as `site.emergency`.
    pub fn set_emergency_settings(
        &mut self,
        by: &AuditCtx<'_>,
        s: &EmergencySettings,
    ) -> Result<(), StoreError> {
        if let Some(n) = &s.caller_id {
            validate_e164("emergency caller ID", n)?;
        }
        if let Some(a) = &s.address {
            if a.trim().is_empty() || a.len() > 200 || a.chars().any(char::is_control) {
                return Err(invalid(
                    "emergency address",
                    "must be 1 to 200 characters on one line",
                ));
            }
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        put(
            &tx,
            EMERGENCY_CALLER_ID,
            s.caller_id.as_deref().unwrap_or(""),
        )?;
        put(&tx, EMERGENCY_ADDRESS, s.address.as_deref().unwrap_or(""))?;
        super::audit::insert(
            &tx,
            by,
            "site.emergency",
            &format!(
                "caller_id={} address={:?}",
                s.caller_id.as_deref().unwrap_or("-"),
                s.address.as_deref().unwrap_or("")
            ),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Toll-fraud settings (defaults where not set).
    pub fn toll_fraud(&self) -> Result<TollFraudSettings, StoreError> {
        let d = TollFraudSettings::default();
        Ok(TollFraudSettings {
            enabled: get(&self.conn, FRAUD_ENABLED)?.map_or(d.enabled, |v| v != "0"),
            calls_per_minute: match get(&self.conn, FRAUD_CALLS_PER_MINUTE)? {
                Some(v) => parse_u32(FRAUD_CALLS_PER_MINUTE, &v)?,
                None => d.calls_per_minute,
            },
            user_concurrent: match get(&self.conn, FRAUD_USER_CONCURRENT)? {
                Some(v) => parse_u32(FRAUD_USER_CONCURRENT, &v)?,
                None => d.user_concurrent,
            },
        })
    }

    /// Stores the toll-fraud settings. Audited as `fraud.set`.
    pub fn set_toll_fraud(
        &mut self,
        by: &AuditCtx<'_>,
        s: &TollFraudSettings,
    ) -> Result<(), StoreError> {
        if !(1..=1000).contains(&s.calls_per_minute) {
            return Err(invalid("calls per minute", "must be 1 to 1000"));
        }
        if !(1..=100).contains(&s.user_concurrent) {
            return Err(invalid("concurrent calls per user", "must be 1 to 100"));
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        put(&tx, FRAUD_ENABLED, if s.enabled { "1" } else { "0" })?;
        put(&tx, FRAUD_CALLS_PER_MINUTE, &s.calls_per_minute.to_string())?;
        put(&tx, FRAUD_USER_CONCURRENT, &s.user_concurrent.to_string())?;
        super::audit::insert(&tx, by, "fraud.set", &format!("{s:?}"))?;
        tx.commit()?;
        Ok(())
    }

    /// `extension`'s external-call policy (defaults when it has none).
    pub fn external_policy(&self, extension: &str) -> Result<ExternalPolicy, StoreError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT max_concurrent, allow_forwarding, locked_at, locked_reason
                 FROM external_policy WHERE extension = ?1",
            )?
            .query_row([extension], |row| {
                let locked_at: Option<i64> = row.get(2)?;
                let reason: Option<String> = row.get(3)?;
                Ok(ExternalPolicy {
                    max_concurrent: row.get(0)?,
                    allow_forwarding: row.get(1)?,
                    locked: locked_at.map(|t| (t, reason.unwrap_or_default())),
                })
            })
            .optional()?;
        Ok(row.unwrap_or_default())
    }

    /// Sets `extension`'s concurrent-call limit and external forwarding (a lock stays).
    /// Audited as `external.set`.
    pub fn set_external_policy(
        &mut self,
        by: &AuditCtx<'_>,
        extension: &str,
        max_concurrent: Option<u32>,
        allow_forwarding: bool,
    ) -> Result<(), StoreError> {
        validate_internal("extension", extension)?;
        if max_concurrent.is_some_and(|m| !(1..=100).contains(&m)) {
            return Err(invalid("concurrent calls", "must be 1 to 100"));
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO external_policy (extension, max_concurrent, allow_forwarding)
             VALUES (?1, ?2, ?3)
             ON CONFLICT (extension) DO UPDATE SET max_concurrent = excluded.max_concurrent,
                 allow_forwarding = excluded.allow_forwarding",
            params![extension, max_concurrent, allow_forwarding],
        )?;
        super::audit::insert(
            &tx,
            by,
            "external.set",
            &format!("extension={extension} max_concurrent={max_concurrent:?} allow_forwarding={allow_forwarding}"),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Locks `extension` for external calls (toll-fraud protection); `Ok(false)` if it
    /// was locked already. Audited as `external.lock`.
    pub fn lock_external(
        &mut self,
        by: &AuditCtx<'_>,
        extension: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "INSERT INTO external_policy (extension, locked_at, locked_reason) VALUES (?1, ?2, ?3)
             ON CONFLICT (extension) DO UPDATE SET locked_at = excluded.locked_at,
                 locked_reason = excluded.locked_reason WHERE locked_at IS NULL",
            params![extension, by.now_unix, reason],
        )?;
        if n > 0 {
            super::audit::insert(
                &tx,
                by,
                "external.lock",
                &format!("extension={extension} reason={reason:?}"),
            )?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    /// Lifts a toll-fraud lock; `Ok(false)` if `extension` was not locked. Audited as
    /// `external.unlock`.
    pub fn unlock_external(
        &mut self,
        by: &AuditCtx<'_>,
        extension: &str,
    ) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE external_policy SET locked_at = NULL, locked_reason = NULL
             WHERE extension = ?1 AND locked_at IS NOT NULL",
            [extension],
        )?;
        if n > 0 {
            super::audit::insert(
                &tx,
                by,
                "external.unlock",
                &format!("extension={extension}"),
            )?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    /// Concurrent external calls allowed through `trunk`: the account's `max_calls`
    /// (`None`: no such trunk, so nothing to count against).
    pub fn trunk_call_limit(&self, trunk: &str) -> Result<Option<u32>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT max_calls FROM trunks WHERE name = ?1")?
            .query_row([trunk], |row| row.get(0))
            .optional()?)
    }

    /// Sets `trunk`'s concurrent-call limit (the account's `max_calls`, also set by
    /// `pbxctl trunk set --max-calls`). A trunk always has one: `None` is refused, as is
    /// a trunk that does not exist. Audited as `trunk.limit`.
    pub fn set_trunk_call_limit(
        &mut self,
        by: &AuditCtx<'_>,
        trunk: &str,
        max: Option<u32>,
    ) -> Result<(), StoreError> {
        validate_trunk_name(trunk)?;
        let Some(max) = max else {
            return Err(invalid(
                "concurrent calls",
                "a trunk always has a limit: give 1 to 1000",
            ));
        };
        if !(1..=1000).contains(&max) {
            return Err(invalid("concurrent calls", "must be 1 to 1000"));
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE trunks SET max_calls = ?2 WHERE name = ?1",
            params![trunk, max],
        )?;
        if n == 0 {
            return Err(StoreError::UnknownTrunk(trunk.to_owned()));
        }
        super::audit::insert(&tx, by, "trunk.limit", &format!("trunk={trunk} max={max}"))?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by() -> AuditCtx<'static> {
        AuditCtx {
            actor: "test",
            source: "cli",
            now_unix: 1_800_000_000,
        }
    }

    fn num(n: &str, dest: Option<&str>, callers: &[&str], default: bool) -> TrunkNumber {
        TrunkNumber {
            trunk: "cloud".into(),
            number: n.into(),
            destination: dest.map(str::to_owned),
            callers: callers.iter().map(|c| c.to_string()).collect(),
            is_default: default,
        }
    }

    #[test]
    fn numbers_are_stored_and_caller_ids_chosen_from_the_account_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = Store::open(dir.path()).expect("open");
        db.add_trunk_number(&by(), &num("+4921112345", Some("100"), &[], true))
            .expect("add");
        db.add_trunk_number(&by(), &num("+4921112346", Some("101"), &["101"], false))
            .expect("add");
        assert_eq!(db.trunk_numbers(None).expect("list").len(), 2);
        assert_eq!(
            db.caller_id_for("cloud", "101").expect("cid").as_deref(),
            Some("+4921112346")
        );
        assert_eq!(
            db.caller_id_for("cloud", "102").expect("cid").as_deref(),
            Some("+4921112345")
        );
        assert_eq!(db.caller_id_for("other", "101").expect("cid"), None);
        // A second default replaces the first.
        db.add_trunk_number(&by(), &num("+4921112347", None, &["*"], true))
            .expect("add");
        let defaults: Vec<_> = db
            .trunk_numbers(Some("cloud"))
            .expect("list")
            .into_iter()
            .filter(|n| n.is_default)
            .map(|n| n.number)
            .collect();
        assert_eq!(defaults, ["+4921112347"]);
        assert!(db.remove_trunk_number(&by(), "+4921112345").expect("rm"));
        assert!(!db.remove_trunk_number(&by(), "+4921112345").expect("rm"));
    }

    #[test]
    fn bad_values_get_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = Store::open(dir.path()).expect("open");
        let e = db
            .add_trunk_number(&by(), &num("021112345", None, &[], false))
            .expect_err("not e164");
        assert!(e.to_string().contains("E.164"), "{e}");
        let e = db
            .add_trunk_number(&by(), &num("+4921112345", Some("10a"), &[], false))
            .expect_err("bad destination");
        assert!(e.to_string().contains("destination"), "{e}");
        let e = db
            .set_emergency_settings(
                &by(),
                &EmergencySettings {
                    caller_id: Some("+0123".into()),
                    address: None,
                },
            )
            .expect_err("bad cid");
        assert!(e.to_string().contains("emergency caller ID"), "{e}");
    }

    #[test]
    fn emergency_fraud_and_locks_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = Store::open(dir.path()).expect("open");
        assert_eq!(db.emergency_settings().expect("get"), Default::default());
        let e = EmergencySettings {
            caller_id: Some("+4921112345".into()),
            address: Some("Hauptstr. 1, 40210 Düsseldorf".into()),
        };
        db.set_emergency_settings(&by(), &e).expect("set");
        assert_eq!(db.emergency_settings().expect("get"), e);
        assert_eq!(db.toll_fraud().expect("get"), TollFraudSettings::default());
        assert!(db
            .lock_external(&by(), "101", "7 calls in a minute")
            .expect("lock"));
        assert!(!db.lock_external(&by(), "101", "again").expect("lock"));
        let p = db.external_policy("101").expect("get");
        assert_eq!(
            p.locked.map(|l| l.1).as_deref(),
            Some("7 calls in a minute")
        );
        db.set_external_policy(&by(), "101", Some(2), true)
            .expect("set");
        assert!(db.external_policy("101").expect("get").locked.is_some());
        assert!(db.unlock_external(&by(), "101").expect("unlock"));
        let p = db.external_policy("101").expect("get");
        assert_eq!(
            p,
            ExternalPolicy {
                max_concurrent: Some(2),
                allow_forwarding: true,
                locked: None
            }
        );
        // The limit is the account's max_calls: no trunk, no limit to set.
        assert_eq!(db.trunk_call_limit("cloud").expect("get"), None);
        let e = db
            .set_trunk_call_limit(&by(), "cloud", Some(2))
            .expect_err("no such trunk");
        assert!(matches!(e, StoreError::UnknownTrunk(_)), "{e}");
    }

    #[test]
    fn the_trunk_call_limit_is_the_accounts_max_calls() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = Store::open(dir.path()).expect("open");
        let mut account = crate::store::TrunkAccount {
            name: "cloud".into(),
            enabled: true,
            registrar: "sip.example".into(),
            domain: "sip.example".into(),
            proxy: None,
            user: "4930123".into(),
            auth_user: "4930123".into(),
            transport: crate::store::TrunkTransport::Udp,
            srtp: crate::store::SrtpMode::Off,
            register_secs: 600,
            max_calls: 4,
        };
        db.add_trunk(&by(), &account, "sealed").expect("add");
        assert_eq!(db.trunk_call_limit("cloud").expect("get"), Some(4));
        db.set_trunk_call_limit(&by(), "cloud", Some(2))
            .expect("set");
        assert_eq!(db.trunk_call_limit("cloud").expect("get"), Some(2));
        assert_eq!(
            db.list_trunks().expect("list")[0].account.max_calls,
            2,
            "one value, seen by pbxctl trunk show too"
        );
        let e = db
            .set_trunk_call_limit(&by(), "cloud", None)
            .expect_err("none");
        assert!(e.to_string().contains("always has a limit"), "{e}");
        account.max_calls = 7;
        db.update_trunk(&by(), &account, None).expect("update");
        assert_eq!(db.trunk_call_limit("cloud").expect("get"), Some(7));
    }
}
