//! The site's profile beyond the numbering plan: its time zone and the emergency address
//! sent with 110/112 calls (maintained by the installer, see DOMAIN.md). Stored as
//! `site.*` rows of `settings` like [`super::site`]; a missing row means "not set".
//! [`Store::set_site_profile`] writes these and the [`SiteSettings`] in one transaction.

use rusqlite::{Connection, TransactionBehavior};

use super::site::{self, validate_site_settings, SiteSettings};
use super::{AuditCtx, Store, StoreError};

const TIME_ZONE: &str = "site.time_zone";
const EA_STREET: &str = "site.emergency.street";
const EA_POSTAL_CODE: &str = "site.emergency.postal_code";
const EA_CITY: &str = "site.emergency.city";
const EA_DETAILS: &str = "site.emergency.details";

/// The time zone a new site gets (the model provider is German).
pub const DEFAULT_TIME_ZONE: &str = "Europe/Berlin";
/// Longest address field, in characters.
const MAX_ADDRESS_FIELD: usize = 100;
/// IANA tz database areas (the first part of `Area/Location`).
const TZ_AREAS: [&str; 11] = [
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
    "Etc",
];

/// Where the box stands: sent with emergency calls so that help finds the caller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmergencyAddress {
    /// Street and house number, e.g. "Königsallee 1".
    pub street: String,
    /// Postal code, e.g. "40212".
    pub postal_code: String,
    /// City, e.g. "Düsseldorf".
    pub city: String,
    /// Floor, room, building: free text, may be empty.
    pub details: String,
}

/// The site profile fields that [`SiteSettings`] does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteInfo {
    /// IANA time zone name, e.g. "Europe/Berlin".
    pub time_zone: String,
    /// The emergency address; `None` until the installer enters it.
    pub emergency_address: Option<EmergencyAddress>,
}

impl Default for SiteInfo {
    fn default() -> Self {
        SiteInfo {
            time_zone: DEFAULT_TIME_ZONE.to_owned(),
            emergency_address: None,
        }
    }
}

fn invalid(what: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::InvalidValue {
        what,
        reason: reason.into(),
    }
}

/// Checks a time zone name: "UTC", or `Area/Location[/Sub]` with an IANA area and parts
/// of letters, digits, `_`, `-` and `+` (the tz database's own naming rules).
pub fn validate_time_zone(tz: &str) -> Result<(), StoreError> {
    if tz == "UTC" {
        return Ok(());
    }
    let bad = || {
        invalid(
            "time zone",
            format!("{tz:?} is not a time zone like Europe/Berlin"),
        )
    };
    if tz.len() > 64 {
        return Err(bad());
    }
    let mut parts = tz.split('/');
    let area = parts.next().unwrap_or_default();
    if !TZ_AREAS.contains(&area) {
        return Err(bad());
    }
    let mut rest = 0;
    for p in parts {
        rest += 1;
        let ok = !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+'));
        if !ok {
            return Err(bad());
        }
    }
    if rest == 0 || rest > 2 {
        return Err(bad());
    }
    Ok(())
}

fn check_text(what: &'static str, s: &str, required: bool) -> Result<(), StoreError> {
    if required && s.trim().is_empty() {
        return Err(invalid(what, "must not be empty"));
    }
    if s.chars().count() > MAX_ADDRESS_FIELD {
        return Err(invalid(what, "longer than 100 characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(what, "contains control characters"));
    }
    Ok(())
}

/// Checks an emergency address: street and city required, a postal code of 3 to 10
/// letters, digits, spaces or `-`, at most 100 characters per field, no control characters.
pub fn validate_emergency_address(a: &EmergencyAddress) -> Result<(), StoreError> {
    check_text("emergency street", &a.street, true)?;
    check_text("emergency city", &a.city, true)?;
    check_text("emergency address details", &a.details, false)?;
    let pc = a.postal_code.trim();
    let pc_ok = (3..=10).contains(&pc.len())
        && pc
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'-'));
    if !pc_ok {
        return Err(invalid(
            "emergency postal code",
            "must be 3 to 10 letters or digits, e.g. 40212",
        ));
    }
    Ok(())
}

/// Checks every field of [`SiteInfo`].
pub fn validate_site_info(i: &SiteInfo) -> Result<(), StoreError> {
    validate_time_zone(&i.time_zone)?;
    if let Some(a) = &i.emergency_address {
        validate_emergency_address(a)?;
    }
    Ok(())
}

fn load(conn: &Connection) -> Result<SiteInfo, StoreError> {
    let mut info = SiteInfo::default();
    if let Some(tz) = site::get(conn, TIME_ZONE)? {
        info.time_zone = tz;
    }
    if let (Some(street), Some(city)) = (site::get(conn, EA_STREET)?, site::get(conn, EA_CITY)?) {
        info.emergency_address = Some(EmergencyAddress {
            street,
            city,
            postal_code: site::get(conn, EA_POSTAL_CODE)?.unwrap_or_default(),
            details: site::get(conn, EA_DETAILS)?.unwrap_or_default(),
        });
    }
    Ok(info)
}

impl Store {
    /// The site's time zone and emergency address (defaults where not set).
    pub fn site_info(&self) -> Result<SiteInfo, StoreError> {
        load(&self.conn)
    }

    /// Validates and stores the site settings and the site info together, in one
    /// transaction (the set-up wizard's site step). Audited as `site.set`.
    pub fn set_site_profile(
        &mut self,
        by: &AuditCtx<'_>,
        s: &SiteSettings,
        info: &SiteInfo,
    ) -> Result<(), StoreError> {
        validate_site_settings(s)?;
        validate_site_info(info)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        site::put(&tx, site::COUNTRY_CODE, &s.country_code)?;
        site::put(&tx, site::AREA_CODE, &s.area_code)?;
        site::put(
            &tx,
            site::OUTSIDE_PREFIX,
            s.outside_prefix.as_deref().unwrap_or(""),
        )?;
        site::put(&tx, site::BILLING_TICK, &s.billing_tick_secs.to_string())?;
        site::put(
            &tx,
            site::ALLOW_EXTERNAL_FORWARDING,
            if s.allow_external_forwarding {
                "1"
            } else {
                "0"
            },
        )?;
        site::put(&tx, TIME_ZONE, &info.time_zone)?;
        match &info.emergency_address {
            Some(a) => {
                site::put(&tx, EA_STREET, a.street.trim())?;
                site::put(&tx, EA_POSTAL_CODE, a.postal_code.trim())?;
                site::put(&tx, EA_CITY, a.city.trim())?;
                site::put(&tx, EA_DETAILS, a.details.trim())?;
            }
            None => {
                tx.execute(
                    "DELETE FROM settings WHERE key IN (?1, ?2, ?3, ?4)",
                    [EA_STREET, EA_POSTAL_CODE, EA_CITY, EA_DETAILS],
                )?;
            }
        }
        let detail = format!(
            "country_code={} area_code={} outside_prefix={} billing_tick={} \
             allow_external_forwarding={} time_zone={} emergency_address={}",
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
            info.time_zone,
            match &info.emergency_address {
                Some(a) => format!(
                    "{:?}",
                    format!("{}, {} {}", a.street, a.postal_code, a.city)
                ),
                None => "none".to_owned(),
            },
        );
        super::audit::insert(&tx, by, "site.set", &detail)?;
        // Phonebook keys follow the new numbering rules.
        super::number_forms::rebuild_phonebook_keys(&tx)?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones() {
        for ok in [
            "UTC",
            "Europe/Berlin",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+1",
        ] {
            assert_eq!(validate_time_zone(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "Berlin",
            "Mars/Olympus",
            "Europe/",
            "Europe/Ber lin",
            "Europe/../x",
        ] {
            assert!(validate_time_zone(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emergency_address_rules() {
        let good = EmergencyAddress {
            street: "Königsallee 1".into(),
            postal_code: "40212".into(),
            city: "Düsseldorf".into(),
            details: String::new(),
        };
        assert_eq!(validate_emergency_address(&good), Ok(()));
        let no_street = EmergencyAddress {
            street: " ".into(),
            ..good.clone()
        };
        assert_eq!(
            validate_emergency_address(&no_street),
            Err(invalid("emergency street", "must not be empty"))
        );
        let bad_pc = EmergencyAddress {
            postal_code: "4".into(),
            ..good.clone()
        };
        assert!(validate_emergency_address(&bad_pc).is_err());
        let ctrl = EmergencyAddress {
            details: "a\nb".into(),
            ..good
        };
        assert!(validate_emergency_address(&ctrl).is_err());
    }

    #[test]
    fn profile_is_written_together_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        let by = AuditCtx {
            actor: "web:root",
            source: "192.0.2.1",
            now_unix: 5,
        };
        assert_eq!(store.site_info().expect("info"), SiteInfo::default());
        let s = SiteSettings {
            area_code: "211".into(),
            ..SiteSettings::default()
        };
        let info = SiteInfo {
            time_zone: "Europe/Vienna".into(),
            emergency_address: Some(EmergencyAddress {
                street: "Ring 1".into(),
                postal_code: "1010".into(),
                city: "Wien".into(),
                details: "2. Stock".into(),
            }),
        };
        // A bad address refuses the whole change: the area code stays unset.
        let mut broken = info.clone();
        if let Some(a) = broken.emergency_address.as_mut() {
            a.city.clear();
        }
        assert!(store.set_site_profile(&by, &s, &broken).is_err());
        assert_eq!(store.site_settings().expect("site").area_code, "");
        store.set_site_profile(&by, &s, &info).expect("set");
        assert_eq!(store.site_settings().expect("site"), s);
        assert_eq!(store.site_info().expect("info"), info);
        let entry = &store.audit_entries(1).expect("audit")[0];
        assert_eq!(entry.action, "site.set");
        assert!(
            entry.detail.contains("time_zone=Europe/Vienna"),
            "{}",
            entry.detail
        );
        store
            .set_site_profile(&by, &s, &SiteInfo::default())
            .expect("clear");
        assert_eq!(store.site_info().expect("info").emergency_address, None);
    }
}
