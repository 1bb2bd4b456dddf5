//! Queries and changes the web UI needs beyond pbxctl's: renaming an extension, granting
//! and revoking admin rights, the filtered and paged call log, the paged audit log.

use std::fmt::Write as _;

use rusqlite::types::Value;
use rusqlite::{params, TransactionBehavior};

use super::audit::AuditEntry;
use super::cdr::{row_to_record, COLUMNS};
use super::extensions::{validate_name, validate_number};
use super::users::Role;
use super::{AuditCtx, Disposition, Store, StoreError, StoredCallRecord};

/// Most rows one call-log or audit page may ask for.
pub const MAX_PAGE: u32 = 500;

/// A call-log filter; results are newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CdrFilter {
    /// Only calls that started at or after this time (Unix ms).
    pub since_ms: Option<i64>,
    /// Only calls that started before this time (Unix ms).
    pub until_ms: Option<i64>,
    /// Only calls this extension made or received (a `user`'s own calls).
    pub own_extension: Option<String>,
    /// Only calls where this number is the caller or the destination, or (for an
    /// external number) the dialled digits or the E.164 form.
    pub number: Option<String>,
    /// Only calls that ended this way.
    pub disposition: Option<Disposition>,
}

/// One page of call records.
#[derive(Debug, Clone, PartialEq)]
pub struct CdrPage {
    /// The records, newest first.
    pub records: Vec<StoredCallRecord>,
    /// Whether more records match after this page.
    pub has_more: bool,
}

impl Store {
    /// Sets or clears an extension's display name. Audited as `extension.rename`.
    pub fn set_extension_name(
        &mut self,
        by: &AuditCtx<'_>,
        number: &str,
        name: Option<&str>,
    ) -> Result<(), StoreError> {
        if let Some(name) = name {
            validate_name(name)?;
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE extensions SET name = ?2, updated_at = ?3 WHERE number = ?1",
            params![number, name, by.now_unix],
        )?;
        if n == 0 {
            return Err(StoreError::UnknownExtension(number.to_owned()));
        }
        let detail = match name {
            Some(name) => format!("number={number} name={name:?}"),
            None => format!("number={number} name=none"),
        };
        super::audit::insert(&tx, by, "extension.rename", &detail)?;
        tx.commit()?;
        Ok(())
    }

    /// Grants (`Role::Admin`) or revokes (`Role::User`) administrator rights. Audited as
    /// `user.role`.
    pub fn set_web_user_role(
        &mut self,
        by: &AuditCtx<'_>,
        username: &str,
        role: Role,
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE web_users SET role = ?2, updated_at = ?3 WHERE username = ?1",
            params![username, role.as_str(), by.now_unix],
        )?;
        if n == 0 {
            return Err(StoreError::UnknownUser(username.to_owned()));
        }
        super::audit::insert(
            &tx,
            by,
            "user.role",
            &format!("username={username} role={}", role.as_str()),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Call records matching `f`, newest first (by start time, then row id), `limit`
    /// (at most [`MAX_PAGE`]) after skipping `offset`.
    pub fn call_record_page(
        &self,
        f: &CdrFilter,
        limit: u32,
        offset: u32,
    ) -> Result<CdrPage, StoreError> {
        let limit = limit.min(MAX_PAGE);
        let mut records = self.filtered_records(f, i64::from(limit) + 1, offset)?;
        let has_more = records.len() > limit as usize;
        records.truncate(limit as usize);
        Ok(CdrPage { records, has_more })
    }

    /// Call records matching `f`, newest first, at most `max` (for CSV export).
    pub fn call_records_filtered(
        &self,
        f: &CdrFilter,
        max: u32,
    ) -> Result<Vec<StoredCallRecord>, StoreError> {
        self.filtered_records(f, i64::from(max), 0)
    }

    fn filtered_records(
        &self,
        f: &CdrFilter,
        limit: i64,
        offset: u32,
    ) -> Result<Vec<StoredCallRecord>, StoreError> {
        let key = f.number.as_deref().and_then(|n| {
            super::number_forms::search_key(n, &super::number_forms::numbering_site(&self.conn))
        });
        let (sql, args) = filtered_sql(f, key.as_deref(), limit, offset);
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), row_to_record)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// The call-log query for `f` and its arguments; `key` is the E.164 form of an external
/// number filter (store/number_forms.rs), matched against both parties' E.164 columns.
fn filtered_sql(f: &CdrFilter, key: Option<&str>, limit: i64, offset: u32) -> (String, Vec<Value>) {
    // "caller = X OR destination = X" cannot walk an index in start_ms order; one
    // index walk per column ((caller, start_ms), (destination, start_ms), and for an
    // external number (dialled, start_ms) and the E.164 columns), each stopping after
    // limit + offset rows, merged by UNION, can. The pivot is the user's own extension,
    // else the number filter.
    let internal = f.number.as_deref().filter(|n| validate_number(n).is_ok());
    let mut args: Vec<Value> = Vec::new();
    let mut cond = String::from("1");
    if let Some(since) = f.since_ms {
        args.push(since.into());
        let _ = write!(cond, " AND start_ms >= ?{}", args.len());
    }
    if let Some(until) = f.until_ms {
        args.push(until.into());
        let _ = write!(cond, " AND start_ms < ?{}", args.len());
    }
    if let (Some(num), Some(_)) = (&f.number, &f.own_extension) {
        args.push(num.clone().into());
        let n = args.len();
        // An internal number is always the caller or the destination of its calls;
        // an external one may be only in the dialled digits or an E.164 column.
        if internal.is_some() {
            let _ = write!(cond, " AND (caller = ?{n} OR destination = ?{n})");
        } else {
            let _ = write!(
                cond,
                " AND (caller = ?{n} OR destination = ?{n} OR dialled = ?{n} \
                     OR normalised = ?{n}"
            );
            if let Some(k) = key {
                args.push(k.to_owned().into());
                let k = args.len();
                let _ = write!(cond, " OR caller_e164 = ?{k} OR callee_e164 = ?{k}");
            }
            cond.push(')');
        }
    }
    if let Some(d) = f.disposition {
        args.push(d.as_str().to_owned().into());
        let _ = write!(cond, " AND disposition = ?{}", args.len());
    }
    // (column, argument index of the value it walks to)
    let mut walks: Vec<(&str, usize)> = Vec::new();
    let pivot = |v: &str, args: &mut Vec<Value>| {
        args.push(v.to_owned().into());
        args.len()
    };
    match (&f.own_extension, &f.number) {
        (Some(own), _) => {
            let p = pivot(own, &mut args);
            walks.extend([("caller", p), ("destination", p)]);
        }
        (None, Some(n)) if internal.is_some() => {
            let p = pivot(n, &mut args);
            walks.extend([("caller", p), ("destination", p)]);
        }
        (None, Some(n)) => {
            let p = pivot(n, &mut args);
            walks.extend([("caller", p), ("destination", p), ("dialled", p)]);
            match key {
                // The E.164 columns hold every external party's form, including what
                // `normalised` holds.
                Some(k) => {
                    let k = pivot(k, &mut args);
                    walks.extend([("caller_e164", k), ("callee_e164", k)]);
                }
                None => walks.push(("normalised", p)),
            }
        }
        (None, None) => {}
    }
    const ORDER: &str = "ORDER BY start_ms DESC, id DESC";
    let sql = if walks.is_empty() {
        format!("SELECT {COLUMNS} FROM call_records WHERE {cond} {ORDER}")
    } else {
        args.push(limit.saturating_add(i64::from(offset)).into());
        let kn = args.len();
        let parts: Vec<String> = walks
            .iter()
            .map(|(col, pn)| {
                format!(
                    "SELECT * FROM (SELECT * FROM call_records
                                        WHERE {cond} AND {col} = ?{pn} {ORDER} LIMIT ?{kn})"
                )
            })
            .collect();
        format!("SELECT {COLUMNS} FROM ({}) {ORDER}", parts.join(" UNION "))
    };
    args.push(limit.into());
    args.push(i64::from(offset).into());
    let sql = format!("{sql} LIMIT ?{} OFFSET ?{}", args.len() - 1, args.len());
    (sql, args)
}

impl Store {
    /// Audit entries older than `before_id` (all if `None`), newest first, at most
    /// `limit` (capped at [`MAX_PAGE`]).
    pub fn audit_page(
        &self,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at, actor, action, detail, source FROM audit_log
             WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![before_id.unwrap_or(i64::MAX), limit.min(MAX_PAGE)],
            |row| {
                Ok(AuditEntry {
                    id: row.get(0)?,
                    at: row.get(1)?,
                    actor: row.get(2)?,
                    action: row.get(3)?,
                    detail: row.get(4)?,
                    source: row.get(5)?,
                })
            },
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::number_forms;
    use crate::store::{CallDirection, CallRecord};

    fn by() -> AuditCtx<'static> {
        AuditCtx {
            actor: "web:root",
            source: "192.0.2.1",
            now_unix: 7,
        }
    }

    fn record(i: i64, caller: &str, dialled: &str, disposition: Disposition) -> CallRecord {
        let answered = disposition == Disposition::Answered;
        CallRecord {
            call_id: format!("c{i}"),
            caller: caller.into(),
            caller_name: None,
            dialled: dialled.into(),
            normalised: None,
            destination: (dialled.len() <= 6).then(|| dialled.to_owned()),
            direction: CallDirection::Internal,
            route: None,
            source_ip: None,
            dest_ip: None,
            start_ms: i * 1000,
            answer_ms: answered.then_some(i * 1000 + 10),
            end_ms: i * 1000 + 500,
            disposition,
            reason: None,
            sip_status: None,
            hangup: None,
            quality_caller: None,
            quality_callee: None,
            forwarded_by: None,
        }
    }

    #[test]
    fn call_log_filters_and_pages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Store::open(dir.path()).expect("open");
        let mut all = Vec::new();
        for i in 0..10 {
            let (caller, dialled) = if i % 2 == 0 {
                ("101", "102")
            } else {
                ("103", "02111234")
            };
            let d = if i % 3 == 0 {
                Disposition::Busy
            } else {
                Disposition::Answered
            };
            all.push(record(i, caller, dialled, d));
        }
        s.insert_call_records(&all).expect("insert");
        let ids = |p: &[StoredCallRecord]| -> Vec<String> {
            p.iter().map(|r| r.record.call_id.clone()).collect()
        };
        let f = CdrFilter::default();
        let p1 = s.call_record_page(&f, 4, 0).expect("page");
        assert_eq!(ids(&p1.records), ["c9", "c8", "c7", "c6"]);
        assert!(p1.has_more);
        let p3 = s.call_record_page(&f, 4, 8).expect("page");
        assert_eq!(ids(&p3.records), ["c1", "c0"]);
        assert!(!p3.has_more);
        let own = CdrFilter {
            own_extension: Some("102".into()),
            ..CdrFilter::default()
        };
        assert_eq!(
            ids(&s.call_record_page(&own, 100, 0).expect("own").records),
            ["c8", "c6", "c4", "c2", "c0"]
        );
        // Paging through one extension's calls (the merged index walks) is exact.
        let p2 = s.call_record_page(&own, 2, 2).expect("own page 2");
        assert_eq!(
            (ids(&p2.records), p2.has_more),
            (vec!["c4".to_owned(), "c2".to_owned()], true)
        );
        let p3 = s.call_record_page(&own, 2, 4).expect("own page 3");
        assert_eq!(
            (ids(&p3.records), p3.has_more),
            (vec!["c0".to_owned()], false)
        );
        let own_busy = CdrFilter {
            disposition: Some(Disposition::Busy),
            number: Some("101".into()),
            ..own.clone()
        };
        assert_eq!(
            ids(&s.call_record_page(&own_busy, 100, 0).expect("ob").records),
            ["c6", "c0"]
        );
        let by_number = CdrFilter {
            number: Some("02111234".into()),
            disposition: Some(Disposition::Busy),
            ..CdrFilter::default()
        };
        assert_eq!(
            ids(&s.call_record_page(&by_number, 100, 0).expect("n").records),
            ["c9", "c3"]
        );
        let internal = CdrFilter {
            number: Some("103".into()),
            ..CdrFilter::default()
        };
        assert_eq!(
            ids(&s.call_record_page(&internal, 100, 0).expect("i").records),
            ["c9", "c7", "c5", "c3", "c1"]
        );
        let window = CdrFilter {
            since_ms: Some(2000),
            until_ms: Some(5000),
            ..CdrFilter::default()
        };
        assert_eq!(
            ids(&s.call_records_filtered(&window, 100).expect("w")),
            ["c4", "c3", "c2"]
        );
    }

    #[test]
    fn rename_role_and_audit_paging() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Store::open(dir.path()).expect("open");
        s.add_extension(&by(), "101", None, "correct horse")
            .expect("ext");
        s.set_extension_name(&by(), "101", Some("Reception"))
            .expect("rename");
        assert_eq!(
            s.get_extension("101").expect("get").expect("exists").name,
            Some("Reception".into())
        );
        assert_eq!(
            s.set_extension_name(&by(), "109", None),
            Err(StoreError::UnknownExtension("109".into()))
        );
        assert!(s.set_extension_name(&by(), "101", Some(" ")).is_err());
        assert_eq!(
            s.set_web_user_role(&by(), "ghost", Role::Admin),
            Err(StoreError::UnknownUser("ghost".into()))
        );
        let all = s.audit_page(None, 10).expect("audit");
        let actions: Vec<_> = all.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["extension.rename", "extension.add"]);
        let older = s.audit_page(Some(all[0].id), 10).expect("older");
        assert_eq!(older.len(), 1);
        assert_eq!(older[0].action, "extension.add");
    }

    /// The number filter walks indexes, never the whole table (schemas V12, V15).
    #[test]
    fn number_filters_use_indexes_not_a_table_scan() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("store");
        for (number, own) in [
            ("02111234567", None),
            ("+492111234567", None),
            ("123", None),
            ("02111234567", Some("101")),
        ] {
            let f = CdrFilter {
                number: Some(number.into()),
                own_extension: own.map(str::to_owned),
                ..CdrFilter::default()
            };
            let key = number_forms::search_key(number, &crate::dialplan::Site::default());
            let (sql, args) = filtered_sql(&f, key.as_deref(), 51, 0);
            let mut stmt = s
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("plan");
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
                .expect("rows")
                .collect::<Result<_, _>>()
                .expect("plan rows");
            let walks = plan
                .iter()
                .filter(|l| l.starts_with("SEARCH call_records USING INDEX"))
                .count();
            assert!(
                !plan.iter().any(|l| l.starts_with("SCAN call_records")),
                "{number}: {plan:#?}"
            );
            // caller, destination, dialled and both E.164 columns for an external
            // number; caller and destination for an extension or the own calls.
            let want = if own.is_none() && number.len() > 6 {
                5
            } else {
                2
            };
            assert_eq!(walks, want, "{number}: {plan:#?}");
        }
    }

    #[test]
    fn external_number_matches_dialled_or_e164_form_newest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Store::open(dir.path()).expect("store");
        let mut with_e164 = record(3, "101", "02111234567", Disposition::Answered);
        with_e164.normalised = Some("+492111234567".into());
        with_e164.direction = CallDirection::Outbound;
        for r in [
            record(1, "101", "02111234567", Disposition::Busy),
            record(2, "102", "02119999999", Disposition::Answered),
            with_e164,
            record(4, "02111234567", "101", Disposition::Answered),
        ] {
            s.insert_call_record(&r).expect("insert");
        }
        let ids = |n: &str| -> Vec<String> {
            let f = CdrFilter {
                number: Some(n.into()),
                ..CdrFilter::default()
            };
            s.call_record_page(&f, 10, 0)
                .expect("page")
                .records
                .into_iter()
                .map(|r| r.record.call_id)
                .collect()
        };
        assert_eq!(ids("02111234567"), ["c4", "c3", "c1"]);
        assert_eq!(ids("+492111234567"), ["c3"]);
        assert!(ids("+4930").is_empty());
    }
}
