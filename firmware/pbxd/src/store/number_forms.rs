//! E.164 search keys for numbers stored as written: a call record's external parties
//! (`caller_e164`, `callee_e164`) and each phonebook number (`phonebook_numbers`, as
//! written and in E.164 form), so a
//! search for `0301234567`, `+49301234567` or `030 123 4567` finds the same calls and
//! contacts through an index.
//!
//! Keys come from the dial plan's [`normalise`] with the site's numbering rules (the
//! ones the call layer and the display use). A call record keeps the key of the rules at
//! call time; phonebook keys are rebuilt whenever the site's rules change, so a contact
//! written as a local number follows a new area code, as it did when matching was done
//! at read time.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::extensions::validate_number;
use super::{CallDirection, CallRecord, Store, StoreError};
use crate::dialplan::{normalise, Site};

/// The site's numbering rules as stored (defaults for unset or unreadable settings: a
/// search key must never cost a call its record).
pub(super) fn numbering_site(conn: &Connection) -> Site {
    match super::site::load(conn) {
        Ok(s) => Site {
            country_code: s.country_code,
            area_code: s.area_code,
            outside_prefix: s.outside_prefix,
            ..Site::default()
        },
        Err(_) => Site::default(),
    }
}

/// The E.164 key of an external number, `None` if it has none (`*31#`, anonymous,
/// a local number without a configured area code).
pub(super) fn e164_key(number: &str, site: &Site) -> Option<String> {
    normalise(number, site).ok()
}

/// The E.164 key of a search text, or `None` when it is an internal number (2 to 6
/// digits: extensions and ring groups, matched as written) or has no E.164 form.
pub(super) fn search_key(number: &str, site: &Site) -> Option<String> {
    if validate_number(number).is_ok() {
        return None;
    }
    e164_key(number, site)
}

/// `(caller_e164, callee_e164)` of a record: only external parties get one (an
/// extension number would otherwise turn into a local number of the site).
pub(super) fn call_keys(r: &CallRecord, site: &Site) -> (Option<String>, Option<String>) {
    let from_core = r.normalised.as_deref().filter(|n| n.starts_with('+'));
    match r.direction {
        CallDirection::Internal => (None, None),
        // A forwarded call is the forwarder's outbound leg, but its caller is the
        // outside party who called in: searchable like an inbound caller.
        CallDirection::Outbound => (
            r.forwarded_by
                .as_ref()
                .and_then(|_| e164_key(&r.caller, site)),
            from_core.map(str::to_owned).or_else(|| {
                // Dialled digits carry the outside prefix when the site has one.
                let dialled = site
                    .outside_prefix
                    .as_deref()
                    .and_then(|p| r.dialled.strip_prefix(p))
                    .unwrap_or(&r.dialled);
                e164_key(dialled, site)
            }),
        ),
        // Call control puts the caller's E.164 form into `normalised` on inbound calls;
        // the dialled digits are the DID that was called (an extension-like number is
        // kept as written, as [`search_key`] does).
        CallDirection::Inbound => (
            from_core
                .map(str::to_owned)
                .or_else(|| e164_key(&r.caller, site)),
            search_key(&r.dialled, site),
        ),
    }
}

/// The keys a number is found by: as written, and its E.164 form if it has another.
pub(super) fn contact_keys(number: &str, site: &Site) -> Vec<String> {
    let mut keys = vec![number.to_owned()];
    if let Some(k) = e164_key(number, site) {
        if k != number {
            keys.push(k);
        }
    }
    keys
}

/// Replaces the keys of one phonebook entry.
pub(super) fn set_entry_keys(
    conn: &Connection,
    site: &Site,
    entry: i64,
    username: &str,
    numbers: &[String],
) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM phonebook_numbers WHERE entry = ?1")?
        .execute([entry])?;
    let mut ins = conn.prepare_cached(
        "INSERT OR IGNORE INTO phonebook_numbers (entry, username, number_key)
         VALUES (?1, ?2, ?3)",
    )?;
    for n in numbers {
        for k in contact_keys(n, site) {
            ins.execute(params![entry, username, k])?;
        }
    }
    Ok(())
}

/// Rebuilds every phonebook entry's keys (after a site change or a restore).
pub(super) fn rebuild_phonebook_keys(conn: &Connection) -> Result<(), StoreError> {
    let site = numbering_site(conn);
    conn.execute("DELETE FROM phonebook_numbers", [])?;
    let mut stmt = conn.prepare("SELECT id, username, numbers FROM phonebook")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (id, user, numbers) = row?;
        let numbers: Vec<String> = numbers.split(',').map(str::to_owned).collect();
        set_entry_keys(conn, &site, id, &user, &numbers)?;
    }
    Ok(())
}

/// Fills the keys of rows written before schema V15 (the migration leaves a marker):
/// call records with the site's current rules, and the phonebook. Runs once, in one
/// transaction; a second process finds the marker gone.
pub(super) fn backfill(conn: &mut Connection) -> Result<(), StoreError> {
    let pending = |c: &Connection| -> Result<bool, StoreError> {
        Ok(c.query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'e164_backfill'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
    };
    if !pending(conn)? {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !pending(&tx)? {
        return Ok(());
    }
    let site = numbering_site(&tx);
    {
        let mut read = tx.prepare(
            "SELECT id, caller, dialled, normalised, direction FROM call_records
             WHERE direction != 'internal'",
        )?;
        let mut write =
            tx.prepare("UPDATE call_records SET caller_e164 = ?2, callee_e164 = ?3 WHERE id = ?1")?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let direction: String = row.get(4)?;
            let r = CallRecord {
                caller: row.get(1)?,
                dialled: row.get(2)?,
                normalised: row.get(3)?,
                direction: direction.parse().unwrap_or(CallDirection::Internal),
                ..placeholder()
            };
            let (caller, callee) = call_keys(&r, &site);
            if caller.is_some() || callee.is_some() {
                write.execute(params![row.get::<_, i64>(0)?, caller, callee])?;
            }
        }
    }
    rebuild_phonebook_keys(&tx)?;
    tx.execute("DROP TABLE e164_backfill", [])?;
    tx.commit()?;
    Ok(())
}

/// A record carrying only what [`call_keys`] reads.
fn placeholder() -> CallRecord {
    CallRecord {
        call_id: String::new(),
        caller: String::new(),
        caller_name: None,
        dialled: String::new(),
        normalised: None,
        destination: None,
        direction: CallDirection::Internal,
        route: None,
        source_ip: None,
        dest_ip: None,
        start_ms: 0,
        answer_ms: None,
        end_ms: 0,
        disposition: super::Disposition::Failed,
        reason: None,
        sip_status: None,
        hangup: None,
        quality_caller: None,
        quality_callee: None,
        forwarded_by: None,
    }
}

impl Store {
    /// Phonebook names of `username` for `numbers` (a call's parties, in any form):
    /// number as given → the name of the first entry (by name) holding it as written
    /// or in the same E.164 form. Index lookups only: the phonebook is not loaded.
    pub fn phonebook_names_for<'a>(
        &self,
        username: &str,
        numbers: impl IntoIterator<Item = &'a str>,
    ) -> Result<HashMap<String, String>, StoreError> {
        let site = numbering_site(&self.conn);
        // Each distinct number with its keys, in order of preference.
        let mut wanted: Vec<(&str, Vec<String>)> = Vec::new();
        let mut tried = HashSet::new();
        for n in numbers {
            if tried.insert(n) {
                wanted.push((n, contact_keys(n, &site)));
            }
        }
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let keys: Vec<&str> = wanted
            .iter()
            .flat_map(|(_, k)| k.iter().map(String::as_str))
            .collect();
        // One statement per page: index lookups for all keys at once.
        let mut stmt = self.conn.prepare_cached(
            "SELECT k.number_key, p.name FROM phonebook_numbers k
             JOIN phonebook p ON p.id = k.entry
             WHERE k.username = ?1 AND k.number_key IN (SELECT value FROM json_each(?2))
             ORDER BY p.name COLLATE NOCASE DESC, p.id DESC",
        )?;
        let mut by_key: HashMap<String, String> = HashMap::new();
        let rows = stmt.query_map(
            params![username, serde_json::to_string(&keys).unwrap_or_default()],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )?;
        // Descending order: the last insert per key is the first entry by name.
        for row in rows {
            let (k, name) = row?;
            by_key.insert(k, name);
        }
        let mut names = HashMap::new();
        for (n, ks) in wanted {
            if let Some(name) = ks.iter().find_map(|k| by_key.get(k)) {
                names.insert(n.to_owned(), name.clone());
            }
        }
        Ok(names)
    }

    /// The E.164 key the call log and phonebook searches use for `number` with the
    /// site's current rules (`None` for internal numbers and numbers without one).
    pub fn number_search_key(&self, number: &str) -> Option<String> {
        search_key(number, &numbering_site(&self.conn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::MIGRATIONS;

    fn site(area: &str, outside: Option<&str>) -> Site {
        Site {
            area_code: area.into(),
            outside_prefix: outside.map(str::to_owned),
            ..Site::default()
        }
    }

    #[test]
    fn only_external_parties_get_e164_keys() {
        struct Case {
            direction: CallDirection,
            caller: &'static str,
            dialled: &'static str,
            normalised: Option<&'static str>,
            outside: Option<&'static str>,
            want: (Option<&'static str>, Option<&'static str>),
        }
        for c in [
            Case {
                direction: CallDirection::Inbound,
                caller: "0301234567",
                dialled: "+4921155501",
                normalised: None,
                outside: None,
                want: (Some("+49301234567"), Some("+4921155501")),
            },
            Case {
                direction: CallDirection::Inbound,
                caller: "anonymous",
                dialled: "55501",
                normalised: None,
                outside: None,
                want: (None, None),
            },
            Case {
                direction: CallDirection::Outbound,
                caller: "101",
                dialled: "00301234567",
                normalised: None,
                outside: Some("0"),
                want: (None, Some("+49301234567")),
            },
            Case {
                direction: CallDirection::Outbound,
                caller: "101",
                dialled: "0301234567",
                normalised: Some("+49301234567"),
                outside: None,
                want: (None, Some("+49301234567")),
            },
            Case {
                direction: CallDirection::Internal,
                caller: "101",
                dialled: "102",
                normalised: None,
                outside: None,
                want: (None, None),
            },
        ] {
            let r = CallRecord {
                caller: c.caller.into(),
                dialled: c.dialled.into(),
                normalised: c.normalised.map(str::to_owned),
                direction: c.direction,
                ..placeholder()
            };
            let (a, b) = call_keys(&r, &site("211", c.outside));
            assert_eq!((a.as_deref(), b.as_deref()), c.want, "{}", c.caller);
        }
        assert_eq!(search_key("102", &site("211", None)), None);
        assert_eq!(
            search_key("030 123 4567", &site("211", None)).as_deref(),
            Some("+49301234567")
        );
    }

    #[test]
    fn a_forwarded_call_keys_its_outside_caller_and_target() {
        let r = CallRecord {
            caller: "0305551234".into(),
            dialled: "0211999888".into(),
            normalised: Some("+49211999888".into()),
            destination: Some("1002".into()),
            direction: CallDirection::Outbound,
            forwarded_by: Some("1002".into()),
            ..placeholder()
        };
        let (a, b) = call_keys(&r, &site("211", None));
        assert_eq!(a.as_deref(), Some("+49305551234"));
        assert_eq!(b.as_deref(), Some("+49211999888"));
        let plain = CallRecord {
            caller: "101".into(),
            forwarded_by: None,
            ..r
        };
        assert_eq!(call_keys(&plain, &site("211", None)).0, None);
    }

    /// A version-13 file: existing call records and phonebook entries get their keys
    /// on the first open, with the site's rules, once.
    #[test]
    fn v15_backfills_existing_rows_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut conn = Connection::open(dir.path().join("pbx.db")).expect("open");
            for step in &MIGRATIONS[..13] {
                conn.execute_batch(step).expect("old step");
            }
            conn.pragma_update(None, "user_version", 13)
                .expect("version");
            let tx = conn.transaction().expect("tx");
            tx.execute_batch(
                "INSERT INTO settings VALUES ('site.area_code', '30');
                 INSERT INTO call_records (call_id, caller, dialled, normalised, destination,
                     direction, start_ms, end_ms, disposition)
                 VALUES ('in', '0301234567', '101', NULL, '101', 'inbound', 1, 2, 'failed'),
                        ('local', '7654321', '101', NULL, '101', 'inbound', 3, 4, 'failed'),
                        ('out', '101', '0301234567', '+49301234567', NULL, 'outbound', 5, 6,
                         'failed'),
                        ('int', '101', '102', NULL, '102', 'internal', 7, 8, 'failed');
                 INSERT INTO web_users (username, password_hash, role, created_at, updated_at)
                 VALUES ('anna', 'x', 'user', 0, 0);
                 INSERT INTO phonebook (id, username, name, numbers, updated_at)
                 VALUES (1, 'anna', 'Berg', '0301234567,102', 0);",
            )
            .expect("old rows");
            tx.commit().expect("commit");
        }
        let s = Store::open(dir.path()).expect("migrates and backfills");
        let keys: Vec<(String, Option<String>, Option<String>)> = s
            .conn
            .prepare("SELECT call_id, caller_e164, callee_e164 FROM call_records ORDER BY id")
            .expect("stmt")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        let want = |id: &str, a: Option<&str>, b: Option<&str>| {
            (id.to_owned(), a.map(str::to_owned), b.map(str::to_owned))
        };
        assert_eq!(
            keys,
            [
                want("in", Some("+49301234567"), None),
                // A local caller ID gets the site's area code.
                want("local", Some("+49307654321"), None),
                want("out", None, Some("+49301234567")),
                want("int", None, None),
            ]
        );
        let names = s
            .phonebook_names_for("anna", ["+49301234567", "102", "0301234568"])
            .expect("names");
        assert_eq!(names.get("+49301234567").map(String::as_str), Some("Berg"));
        assert_eq!(names.get("102").map(String::as_str), Some("Berg"));
        assert_eq!(names.len(), 2);
        let marker: i64 = s
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'e164_backfill'",
                [],
                |r| r.get(0),
            )
            .expect("query");
        assert_eq!(marker, 0, "the marker is gone: the backfill runs once");
    }
}
