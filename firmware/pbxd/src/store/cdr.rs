//! Call detail records: one row per call attempt, written when the call ends.
//!
//! Times are Unix milliseconds (wall clock, passed in by call control). Duration and
//! billable time are computed from them, never stored, so they cannot disagree.
//!
//! CSV export ([`cdr_csv_header`], [`to_csv_row`]) follows RFC 4180 (fields with `,` `"`
//! CR or LF are quoted, quotes doubled; the caller ends each line with CRLF). Against
//! spreadsheet formula injection, every text field that starts with `=`, `+`, `-`, `@`,
//! TAB or CR gets a leading apostrophe (`'`), the OWASP recommendation: spreadsheet apps
//! then show it as text and evaluate nothing. Phone numbers in E.164 form start with `+`
//! and so appear as `'+49211123456`; this also keeps a spreadsheet from turning them into
//! numbers (losing the `+` and digits). Machine readers strip one leading `'` that is
//! followed by one of those characters. Times in CSV are RFC 3339 UTC with milliseconds.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::str::FromStr;

use rusqlite::types::Value;
use rusqlite::{params, Row};

use super::{Store, StoreError};

/// Longest stored free-text field (reason, caller name), in characters; longer text from
/// a peer is cut, not refused, so the record is never lost.
const MAX_TEXT_CHARS: usize = 256;
/// Longest stored number or identifier field, in characters.
const MAX_ID_CHARS: usize = 128;

/// Who called whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallDirection {
    /// Extension to extension (or ring group).
    Internal,
    /// Extension to an external number.
    Outbound,
    /// External caller to the PBX.
    Inbound,
}

/// How the call attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// The callee answered (the only disposition with an answer time).
    Answered,
    /// The callee was busy (486/600) or had do-not-disturb on.
    Busy,
    /// Nobody answered in time (408/480).
    NoAnswer,
    /// The caller hung up before an answer (CANCEL).
    Cancelled,
    /// Anything else went wrong (404, 503 no trunk, 488, media timeout before answer...).
    Failed,
    /// Refused by the dial plan (blocked range, outbound class, blocked extension).
    Blocked,
}

/// Which side ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HangupSide {
    /// The calling party.
    Caller,
    /// The called party.
    Callee,
    /// The PBX (timeout, media loss, shutdown, refusal).
    System,
}

/// Media quality of one leg, from RTCP receive reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LegQuality {
    /// Packet loss, percent.
    pub loss_pct: f32,
    /// Interarrival jitter, milliseconds.
    pub jitter_ms: f32,
    /// Round-trip time, milliseconds, when RTCP gave one.
    pub rtt_ms: Option<f32>,
    /// E-model MOS estimate (1.0 to 4.5).
    pub mos: f32,
}

/// One call attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// SIP Call-ID of the caller's leg.
    pub call_id: String,
    /// Calling number (extension or external number).
    pub caller: String,
    /// Caller's display name, if any.
    pub caller_name: Option<String>,
    /// Digits as dialled.
    pub dialled: String,
    /// E.164 form of an external number (`+49211123456`).
    pub normalised: Option<String>,
    /// Extension or ring group that was rung.
    pub destination: Option<String>,
    /// Internal, outbound or inbound.
    pub direction: CallDirection,
    /// "internal", a trunk name, or "gsm".
    pub route: Option<String>,
    /// Caller's signalling address.
    pub source_ip: Option<IpAddr>,
    /// Callee's signalling address.
    pub dest_ip: Option<IpAddr>,
    /// First INVITE, Unix milliseconds.
    pub start_ms: i64,
    /// Answer (200 OK), Unix milliseconds.
    pub answer_ms: Option<i64>,
    /// Call end, Unix milliseconds.
    pub end_ms: i64,
    /// How it ended.
    pub disposition: Disposition,
    /// Why, e.g. "blocked range 0900", "486 Busy Here".
    pub reason: Option<String>,
    /// Final SIP status sent to the caller, if the call failed.
    pub sip_status: Option<u16>,
    /// Who hung up.
    pub hangup: Option<HangupSide>,
    /// Quality of the caller's leg.
    pub quality_caller: Option<LegQuality>,
    /// Quality of the callee's leg.
    pub quality_callee: Option<LegQuality>,
    /// A call forwarded to an external number: the extension (or ring group) whose
    /// forward it followed, which pays for and is limited on the outbound leg. `caller`
    /// is then the original caller, `destination` the forwarding party, `normalised`
    /// the external target.
    pub forwarded_by: Option<String>,
}

/// Whole seconds in `ms` milliseconds, rounded up; 0 for negative spans.
fn ceil_secs(ms: i64) -> u64 {
    u64::try_from(ms).map_or(0, |ms| ms.div_ceil(1000))
}

impl CallRecord {
    /// What the call log shows as the call's kind: "forwarded" for a call forwarded
    /// out, else the direction.
    pub fn kind(&self) -> &'static str {
        match self.forwarded_by {
            Some(_) => "forwarded",
            None => self.direction.as_str(),
        }
    }

    /// Seconds from start to end, rounded up.
    pub fn duration_secs(&self) -> u64 {
        ceil_secs(self.end_ms.saturating_sub(self.start_ms))
    }

    /// Charged seconds: from answer to end, rounded up, at least 1 for an answered call
    /// (calls under one second count as one); 0 if unanswered.
    pub fn billable_secs(&self) -> u64 {
        match self.answer_ms {
            Some(answer) => ceil_secs(self.end_ms.saturating_sub(answer)).max(1),
            None => 0,
        }
    }

    /// Billable seconds rounded up to whole ticks of `tick` seconds (a tick of 0 counts as 1).
    pub fn billed_secs(&self, tick: u32) -> u64 {
        let tick = u64::from(tick.max(1));
        self.billable_secs().div_ceil(tick).saturating_mul(tick)
    }
}

/// A call record with its row id.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCallRecord {
    /// Row id, increasing with insertion.
    pub id: i64,
    /// The record.
    pub record: CallRecord,
}

/// A filter over call records; results are newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdrQuery {
    /// Only calls that started at or after this time (Unix ms).
    pub since_ms: Option<i64>,
    /// Only calls that started before this time (Unix ms).
    pub until_ms: Option<i64>,
    /// Only calls where this number is the caller or the destination.
    pub extension: Option<String>,
    /// At most this many rows.
    pub limit: u32,
    /// Skip this many rows first (paging).
    pub offset: u32,
}

impl Default for CdrQuery {
    fn default() -> Self {
        CdrQuery {
            since_ms: None,
            until_ms: None,
            extension: None,
            limit: 100,
            offset: 0,
        }
    }
}

macro_rules! text_enum {
    ($ty:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        impl $ty {
            /// The name used in the database and in exports.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),* }
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($ty::$variant),)*
                    other => Err(format!("unknown {} {other:?}", stringify!($ty))),
                }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(CallDirection {
    Internal = "internal",
    Outbound = "outbound",
    Inbound = "inbound",
});
text_enum!(Disposition {
    Answered = "answered",
    Busy = "busy",
    NoAnswer = "no_answer",
    Cancelled = "cancelled",
    Failed = "failed",
    Blocked = "blocked",
});
text_enum!(HangupSide {
    Caller = "caller",
    Callee = "callee",
    System = "system",
});

/// Control characters (from a peer's display name or reason phrase) become spaces, and
/// the text is cut to `max` characters.
fn clean(s: &str, max: usize) -> Cow<'_, str> {
    if s.chars().count() <= max && !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .take(max)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
    )
}

fn opt_id(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(|s| clean(s, MAX_ID_CHARS))
}

/// A quality whose values are not all finite is stored as unknown: a NaN from a broken
/// RTCP report must not cost the call its record.
fn finite(q: Option<LegQuality>) -> Option<LegQuality> {
    q.filter(|q| {
        q.loss_pct.is_finite()
            && q.jitter_ms.is_finite()
            && q.mos.is_finite()
            && q.rtt_ms.is_none_or(f32::is_finite)
    })
}

/// Checks the invariants the schema also enforces, with readable errors.
pub fn validate_call_record(r: &CallRecord) -> Result<(), StoreError> {
    let bad = |reason| Err(StoreError::InvalidCallRecord(reason));
    if r.call_id.is_empty() {
        return bad("empty call id");
    }
    if r.end_ms < r.start_ms {
        return bad("ends before it starts");
    }
    if let Some(a) = r.answer_ms {
        if a < r.start_ms || a > r.end_ms {
            return bad("answer time outside the call");
        }
    }
    if r.answer_ms.is_some() != (r.disposition == Disposition::Answered) {
        return bad("an answer time goes with disposition answered, and only with it");
    }
    if r.sip_status.is_some_and(|s| !(100..=699).contains(&s)) {
        return bad("SIP status outside 100..=699");
    }
    Ok(())
}

pub(super) const COLUMNS: &str =
    "id, call_id, caller, caller_name, dialled, normalised, destination,
    direction, route, source_ip, dest_ip, start_ms, answer_ms, end_ms, disposition, reason,
    sip_status, hangup, caller_loss_pct, caller_jitter_ms, caller_rtt_ms, caller_mos,
    callee_loss_pct, callee_jitter_ms, callee_rtt_ms, callee_mos, forwarded_by";

fn conversion(
    col: usize,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, e.into())
}

fn parsed<T: FromStr>(row: &Row<'_>, col: usize) -> rusqlite::Result<T>
where
    T::Err: std::fmt::Display,
{
    let text: String = row.get(col)?;
    text.parse()
        .map_err(|e: T::Err| conversion(col, e.to_string()))
}

fn parsed_opt<T: FromStr>(row: &Row<'_>, col: usize) -> rusqlite::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    let text: Option<String> = row.get(col)?;
    text.map(|t| {
        t.parse()
            .map_err(|e: T::Err| conversion(col, e.to_string()))
    })
    .transpose()
}

fn quality(row: &Row<'_>, first: usize) -> rusqlite::Result<Option<LegQuality>> {
    let loss: Option<f32> = row.get(first)?;
    let Some(loss_pct) = loss else {
        return Ok(None);
    };
    Ok(Some(LegQuality {
        loss_pct,
        jitter_ms: row.get(first + 1)?,
        rtt_ms: row.get(first + 2)?,
        mos: row.get(first + 3)?,
    }))
}

pub(super) fn row_to_record(row: &Row<'_>) -> rusqlite::Result<StoredCallRecord> {
    Ok(StoredCallRecord {
        id: row.get(0)?,
        record: CallRecord {
            call_id: row.get(1)?,
            caller: row.get(2)?,
            caller_name: row.get(3)?,
            dialled: row.get(4)?,
            normalised: row.get(5)?,
            destination: row.get(6)?,
            direction: parsed(row, 7)?,
            route: row.get(8)?,
            source_ip: parsed_opt(row, 9)?,
            dest_ip: parsed_opt(row, 10)?,
            start_ms: row.get(11)?,
            answer_ms: row.get(12)?,
            end_ms: row.get(13)?,
            disposition: parsed(row, 14)?,
            reason: row.get(15)?,
            sip_status: row.get(16)?,
            hangup: parsed_opt(row, 17)?,
            quality_caller: quality(row, 18)?,
            quality_callee: quality(row, 22)?,
            forwarded_by: row.get(26)?,
        },
    })
}

impl Store {
    /// Writes one call record (one statement, so all or nothing) and returns its row id.
    /// Free text is cleaned (control characters become spaces) and cut to 256 characters;
    /// non-finite quality figures are stored as unknown.
    pub fn insert_call_record(&mut self, r: &CallRecord) -> Result<i64, StoreError> {
        validate_call_record(r)?;
        let site = super::number_forms::numbering_site(&self.conn);
        insert_one(&self.conn, &site, r)
    }

    /// Writes several records in one transaction (one fsync for a burst of finished
    /// calls: at hundreds of calls per second, one transaction each cannot keep up).
    /// Records that fail validation are skipped and returned with their error; the
    /// others are written all or none.
    pub fn insert_call_records(
        &mut self,
        records: &[CallRecord],
    ) -> Result<Vec<(usize, StoreError)>, StoreError> {
        let mut refused = Vec::new();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let site = super::number_forms::numbering_site(&tx);
        for (i, r) in records.iter().enumerate() {
            match validate_call_record(r) {
                Ok(()) => {
                    insert_one(&tx, &site, r)?;
                }
                Err(e) => refused.push((i, e)),
            }
        }
        tx.commit()?;
        Ok(refused)
    }

    /// Call records matching `q`, newest first (by start time, then row id).
    pub fn call_records(&self, q: &CdrQuery) -> Result<Vec<StoredCallRecord>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM call_records WHERE 1");
        let mut args: Vec<Value> = Vec::new();
        if let Some(since) = q.since_ms {
            args.push(since.into());
            let _ = write!(sql, " AND start_ms >= ?{}", args.len());
        }
        if let Some(until) = q.until_ms {
            args.push(until.into());
            let _ = write!(sql, " AND start_ms < ?{}", args.len());
        }
        if let Some(ext) = &q.extension {
            args.push(ext.clone().into());
            let n = args.len();
            let _ = write!(sql, " AND (caller = ?{n} OR destination = ?{n})");
        }
        args.push(i64::from(q.limit).into());
        args.push(i64::from(q.offset).into());
        let _ = write!(
            sql,
            " ORDER BY start_ms DESC, id DESC LIMIT ?{} OFFSET ?{}",
            args.len() - 1,
            args.len()
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), row_to_record)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes call records that started before `older_than_ms` (retention); returns how
    /// many.
    pub fn purge_call_records(&mut self, older_than_ms: i64) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "DELETE FROM call_records WHERE start_ms < ?1",
            [older_than_ms],
        )?)
    }
}

/// The CSV header line (no line end), matching [`to_csv_row`].
pub fn cdr_csv_header() -> &'static str {
    "id,call_id,start,answer,end,duration_secs,billable_secs,billed_secs,direction,\
     caller,caller_name,dialled,normalised,destination,route,source_ip,dest_ip,\
     disposition,reason,sip_status,hangup,\
     caller_loss_pct,caller_jitter_ms,caller_rtt_ms,caller_mos,\
     callee_loss_pct,callee_jitter_ms,callee_rtt_ms,callee_mos,forwarded_by"
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-21T09:14:54.123Z`; the raw number for
/// times outside the calendar's range.
pub fn format_utc_ms(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        ),
        Err(_) => ms.to_string(),
    }
}

/// One CSV field: formula guard, then RFC 4180 quoting.
fn csv_field(out: &mut String, s: &str) {
    csv_field_guarded(out, s, csv_formula_start(s));
}

/// Whether `s` starts like a spreadsheet formula (and needs a `'` in front).
pub(crate) fn csv_formula_start(s: &str) -> bool {
    s.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// One CSV field, `'`-guarded if `guard`, with RFC 4180 quoting.
pub(crate) fn csv_field_guarded(out: &mut String, s: &str, guard: bool) {
    let quote = s.contains([',', '"', '\r', '\n']);
    if quote {
        out.push('"');
    }
    if guard {
        out.push('\'');
    }
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

/// One record as a CSV line (no line end) under [`cdr_csv_header`]; `tick` is the billing
/// tick for `billed_secs`. See the module docs for quoting and the formula guard.
pub fn to_csv_row(s: &StoredCallRecord, tick: u32) -> String {
    let r = &s.record;
    let opt = |v: Option<String>| v.unwrap_or_default();
    let q = |q: Option<LegQuality>| -> [String; 4] {
        match q {
            Some(q) => [
                format!("{:.2}", q.loss_pct),
                format!("{:.1}", q.jitter_ms),
                q.rtt_ms.map(|r| format!("{r:.1}")).unwrap_or_default(),
                format!("{:.2}", q.mos),
            ],
            None => Default::default(),
        }
    };
    let [cl, cj, cr, cm] = q(r.quality_caller);
    let [el, ej, er, em] = q(r.quality_callee);
    let fields: [String; 30] = [
        s.id.to_string(),
        r.call_id.clone(),
        format_utc_ms(r.start_ms),
        opt(r.answer_ms.map(format_utc_ms)),
        format_utc_ms(r.end_ms),
        r.duration_secs().to_string(),
        r.billable_secs().to_string(),
        r.billed_secs(tick).to_string(),
        r.direction.as_str().to_owned(),
        r.caller.clone(),
        opt(r.caller_name.clone()),
        r.dialled.clone(),
        opt(r.normalised.clone()),
        opt(r.destination.clone()),
        opt(r.route.clone()),
        opt(r.source_ip.map(|ip| ip.to_string())),
        opt(r.dest_ip.map(|ip| ip.to_string())),
        r.disposition.as_str().to_owned(),
        opt(r.reason.clone()),
        opt(r.sip_status.map(|s| s.to_string())),
        opt(r.hangup.map(|h| h.as_str().to_owned())),
        cl,
        cj,
        cr,
        cm,
        el,
        ej,
        er,
        em,
        opt(r.forwarded_by.clone()),
    ];
    let mut line = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        csv_field(&mut line, f);
    }
    line
}

fn insert_one(
    conn: &rusqlite::Connection,
    site: &crate::dialplan::Site,
    r: &CallRecord,
) -> Result<i64, StoreError> {
    let qc = finite(r.quality_caller);
    let qe = finite(r.quality_callee);
    let (caller_e164, callee_e164) = super::number_forms::call_keys(r, site);
    conn.prepare_cached(
        "INSERT INTO call_records (call_id, caller, caller_name, dialled, normalised,
                     destination, direction, route, source_ip, dest_ip, start_ms, answer_ms,
                     end_ms, disposition, reason, sip_status, hangup,
                     caller_loss_pct, caller_jitter_ms, caller_rtt_ms, caller_mos,
                     callee_loss_pct, callee_jitter_ms, callee_rtt_ms, callee_mos,
                     forwarded_by, caller_e164, callee_e164)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                     ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)",
    )?
    .execute(params![
        clean(&r.call_id, MAX_ID_CHARS),
        clean(&r.caller, MAX_ID_CHARS),
        r.caller_name.as_deref().map(|s| clean(s, MAX_TEXT_CHARS)),
        clean(&r.dialled, MAX_ID_CHARS),
        opt_id(&r.normalised),
        opt_id(&r.destination),
        r.direction.as_str(),
        opt_id(&r.route),
        r.source_ip.map(|ip| ip.to_string()),
        r.dest_ip.map(|ip| ip.to_string()),
        r.start_ms,
        r.answer_ms,
        r.end_ms,
        r.disposition.as_str(),
        r.reason.as_deref().map(|s| clean(s, MAX_TEXT_CHARS)),
        r.sip_status,
        r.hangup.map(HangupSide::as_str),
        qc.map(|q| q.loss_pct),
        qc.map(|q| q.jitter_ms),
        qc.and_then(|q| q.rtt_ms),
        qc.map(|q| q.mos),
        qe.map(|q| q.loss_pct),
        qe.map(|q| q.jitter_ms),
        qe.and_then(|q| q.rtt_ms),
        qe.map(|q| q.mos),
        opt_id(&r.forwarded_by),
        caller_e164,
        callee_e164,
    ])?;
    Ok(conn.last_insert_rowid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_secs_rounds_up_and_clamps_negative_spans() {
        for (ms, secs) in [(-5, 0), (0, 0), (1, 1), (999, 1), (1000, 1), (1001, 2)] {
            assert_eq!(ceil_secs(ms), secs, "{ms}");
        }
    }

    #[test]
    fn clean_borrows_clean_text_and_fixes_the_rest() {
        assert!(matches!(clean("486 Busy Here", 256), Cow::Borrowed(_)));
        assert_eq!(clean("a\r\nb\u{0}", 256), "a  b ");
        assert_eq!(clean("äöü", 2), "äö");
    }

    #[test]
    fn csv_field_quotes_and_guards() {
        let cases = [
            ("plain", "plain"),
            ("", ""),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("+49211", "'+49211"),
            ("=1+1", "'=1+1"),
            ("-x", "'-x"),
            ("@x", "'@x"),
            ("\tx", "'\tx"),
            ("\rx", "\"'\rx\""),
            ("=a,b", "\"'=a,b\""),
            ("a=b", "a=b"),
        ];
        for (input, want) in cases {
            let mut out = String::new();
            csv_field(&mut out, input);
            assert_eq!(out, want, "{input:?}");
        }
    }

    #[test]
    fn utc_times() {
        assert_eq!(format_utc_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_utc_ms(1_763_700_000_123), "2025-11-21T04:40:00.123Z");
        assert_eq!(format_utc_ms(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_utc_ms(i64::MAX), i64::MAX.to_string());
    }
}
