//! Per-extension call settings: outbound class, CLIR, do-not-disturb, call forwarding and
//! the pickup group. An extension without a row has the defaults.

use std::fmt;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::extensions::validate_number;
use super::{AuditCtx, Store, StoreError};

/// Default seconds of ringing before forwarding on no answer.
pub const DEFAULT_NOANSWER_SECS: u32 = 20;
/// Accepted range for the no-answer timeout, in seconds.
pub const NOANSWER_SECS_RANGE: std::ops::RangeInclusive<u32> = 5..=120;
/// Accepted pickup group numbers.
pub const PICKUP_GROUP_RANGE: std::ops::RangeInclusive<u8> = 1..=99;
/// Digits in an external number (without `+`).
const EXTERNAL_DIGITS: std::ops::RangeInclusive<usize> = 3..=20;

/// Which external numbers an extension may dial: the dial plan's classes, stored by
/// name ("internal", "local", "national", "international").
pub use crate::dialplan::OutboundClass;

/// Where a call is forwarded to.
///
/// Parsing rule ([`ForwardTarget::parse`]): `+` and 3 to 20 digits, or digits starting
/// with 0, or more than 6 digits are external (routed through the dial plan as if the
/// forwarding extension had dialled them, so without the outside-line prefix); 2 to 6
/// digits not starting with 0 are internal (an extension or a ring group, under the
/// numbering rule of [`validate_number`]). A short external number must therefore be
/// written with its 0 prefix or as `+49...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ForwardTarget {
    /// An extension or ring group on this PBX.
    Internal(String),
    /// A number reached through a trunk (costs money).
    External(String),
}

impl ForwardTarget {
    /// Classifies and checks a target as typed by the installer or stored.
    pub fn parse(s: &str) -> Result<ForwardTarget, StoreError> {
        let bad = |reason: &str| StoreError::InvalidValue {
            what: "forward target",
            reason: format!("{s:?}: {reason}"),
        };
        let (plus, digits) = match s.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(
                "must be an internal number or an external number ([+]digits)",
            ));
        }
        if plus || digits.starts_with('0') || digits.len() > 6 {
            if !EXTERNAL_DIGITS.contains(&digits.len()) {
                return Err(bad("an external number has 3 to 20 digits"));
            }
            return Ok(ForwardTarget::External(s.to_owned()));
        }
        validate_number(s)?;
        Ok(ForwardTarget::Internal(s.to_owned()))
    }

    /// The number as stored.
    pub fn as_str(&self) -> &str {
        match self {
            ForwardTarget::Internal(n) | ForwardTarget::External(n) => n,
        }
    }

    /// Whether the target is reached through a trunk.
    pub fn is_external(&self) -> bool {
        matches!(self, ForwardTarget::External(_))
    }
}

impl fmt::Display for ForwardTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One extension's call settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSettings {
    /// Which external numbers the extension may dial.
    pub outbound_class: OutboundClass,
    /// Suppress the caller ID on every outgoing call (`Privacy: id`).
    pub clir: bool,
    /// Do not disturb: incoming calls are refused as busy.
    pub dnd: bool,
    /// Forward every call.
    pub forward_always: Option<ForwardTarget>,
    /// Forward when busy (or DND).
    pub forward_busy: Option<ForwardTarget>,
    /// Forward after `forward_noanswer_secs` of ringing.
    pub forward_noanswer: Option<ForwardTarget>,
    /// Ringing time before the no-answer forward, 5 to 120 s.
    pub forward_noanswer_secs: u32,
    /// Call pickup group (1 to 99), if any.
    pub pickup_group: Option<u8>,
}

impl Default for CallSettings {
    fn default() -> Self {
        CallSettings {
            outbound_class: OutboundClass::National,
            clir: false,
            dnd: false,
            forward_always: None,
            forward_busy: None,
            forward_noanswer: None,
            forward_noanswer_secs: DEFAULT_NOANSWER_SECS,
            pickup_group: None,
        }
    }
}

impl CallSettings {
    /// The forward targets that are set, with their kind ("always", "busy", "noanswer").
    pub fn forwards(&self) -> impl Iterator<Item = (&'static str, &ForwardTarget)> {
        [
            ("always", &self.forward_always),
            ("busy", &self.forward_busy),
            ("noanswer", &self.forward_noanswer),
        ]
        .into_iter()
        .filter_map(|(kind, t)| t.as_ref().map(|t| (kind, t)))
    }
}

/// Checks the values that need no database: timeout and pickup ranges, no forward to
/// the extension itself.
pub fn validate_call_settings(extension: &str, s: &CallSettings) -> Result<(), StoreError> {
    if !NOANSWER_SECS_RANGE.contains(&s.forward_noanswer_secs) {
        return Err(StoreError::InvalidValue {
            what: "no-answer time",
            reason: format!("{} s is not 5 to 120 s", s.forward_noanswer_secs),
        });
    }
    if let Some(g) = s.pickup_group {
        if !PICKUP_GROUP_RANGE.contains(&g) {
            return Err(StoreError::InvalidValue {
                what: "pickup group",
                reason: format!("{g} is not 1 to 99"),
            });
        }
    }
    for (_, target) in s.forwards() {
        if target.as_str() == extension {
            return Err(StoreError::InvalidValue {
                what: "forward target",
                reason: format!("{extension} cannot forward to itself"),
            });
        }
    }
    Ok(())
}

/// Checks a forward or no-answer target against the database: an internal target must be
/// an extension or ring group; an external one needs `allow_external_forwarding`.
pub(super) fn check_target(conn: &Connection, target: &ForwardTarget) -> Result<(), StoreError> {
    match target {
        ForwardTarget::Internal(n) => {
            let exists: bool = conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM extensions WHERE number = ?1)
                         OR EXISTS (SELECT 1 FROM ring_groups WHERE number = ?1)",
                )?
                .query_row([n], |row| row.get(0))?;
            if !exists {
                return Err(StoreError::InvalidValue {
                    what: "forward target",
                    reason: format!("{n} is neither an extension nor a ring group"),
                });
            }
        }
        ForwardTarget::External(n) => {
            if !super::site::load(conn)?.allow_external_forwarding {
                return Err(StoreError::ExternalForwardingDisabled(n.clone()));
            }
        }
    }
    Ok(())
}

/// Reads a stored target column.
pub(super) fn stored_target(
    what: &'static str,
    value: Option<String>,
) -> Result<Option<ForwardTarget>, StoreError> {
    value
        .map(|v| {
            ForwardTarget::parse(&v).map_err(|e| StoreError::BadValue {
                what,
                detail: e.to_string(),
            })
        })
        .transpose()
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn target_text(t: &Option<ForwardTarget>) -> &str {
    t.as_ref().map_or("off", ForwardTarget::as_str)
}

impl Store {
    /// An extension's call settings (the defaults if none were set).
    pub fn call_settings(&self, extension: &str) -> Result<CallSettings, StoreError> {
        type RawRow = (
            Option<String>,
            Option<bool>,
            Option<bool>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<u32>,
            Option<u8>,
        );
        let row: Option<RawRow> = self
            .conn
            .prepare_cached(
                "SELECT c.outbound_class, c.clir, c.dnd, c.forward_always, c.forward_busy,
                        c.forward_noanswer, c.forward_noanswer_secs, c.pickup_group
                 FROM extensions e LEFT JOIN call_settings c ON c.extension = e.number
                 WHERE e.number = ?1",
            )?
            .query_row([extension], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .optional()?;
        let Some((class, clir, dnd, always, busy, noanswer, secs, pickup)) = row else {
            return Err(StoreError::UnknownExtension(extension.to_owned()));
        };
        let Some(class) = class else {
            return Ok(CallSettings::default()); // no row: defaults
        };
        Ok(CallSettings {
            outbound_class: class
                .parse()
                .map_err(|e: crate::dialplan::ParseClassError| StoreError::BadValue {
                    what: "call_settings.outbound_class",
                    detail: format!("{class:?}: {e}"),
                })?,
            clir: clir.unwrap_or(false),
            dnd: dnd.unwrap_or(false),
            forward_always: stored_target("call_settings.forward_always", always)?,
            forward_busy: stored_target("call_settings.forward_busy", busy)?,
            forward_noanswer: stored_target("call_settings.forward_noanswer", noanswer)?,
            forward_noanswer_secs: secs.unwrap_or(DEFAULT_NOANSWER_SECS),
            pickup_group: pickup,
        })
    }

    /// Replaces an extension's call settings after checking them (see
    /// [`validate_call_settings`]; internal targets must exist; external targets need the
    /// site's `allow_external_forwarding`). Audited as `extension.call_settings` with the
    /// new values.
    pub fn set_call_settings(
        &mut self,
        by: &AuditCtx<'_>,
        extension: &str,
        s: &CallSettings,
    ) -> Result<(), StoreError> {
        validate_call_settings(extension, s)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM extensions WHERE number = ?1)")?
            .query_row([extension], |row| row.get(0))?;
        if !exists {
            return Err(StoreError::UnknownExtension(extension.to_owned()));
        }
        for (_, target) in s.forwards() {
            check_target(&tx, target)?;
        }
        tx.prepare_cached(
            "INSERT OR REPLACE INTO call_settings
                 (extension, outbound_class, clir, dnd, forward_always, forward_busy,
                  forward_noanswer, forward_noanswer_secs, pickup_group, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            extension,
            s.outbound_class.as_str(),
            s.clir,
            s.dnd,
            s.forward_always.as_ref().map(ForwardTarget::as_str),
            s.forward_busy.as_ref().map(ForwardTarget::as_str),
            s.forward_noanswer.as_ref().map(ForwardTarget::as_str),
            s.forward_noanswer_secs,
            s.pickup_group,
            by.now_unix
        ])?;
        let detail = format!(
            "number={extension} class={} clir={} dnd={} forward_always={} forward_busy={} \
             forward_noanswer={} noanswer_secs={} pickup_group={}",
            s.outbound_class,
            on_off(s.clir),
            on_off(s.dnd),
            target_text(&s.forward_always),
            target_text(&s.forward_busy),
            target_text(&s.forward_noanswer),
            s.forward_noanswer_secs,
            s.pickup_group
                .map_or_else(|| "off".to_owned(), |g| g.to_string()),
        );
        super::audit::insert(&tx, by, "extension.call_settings", &detail)?;
        tx.commit()?;
        Ok(())
    }
}
