//! A web user's own data beyond settings: notes on call-log entries and the personal
//! phonebook (CRUD, search, CSV import and export). Everything is per account: a user
//! reaches only calls of their own extension (others' answer 404, as if absent) and only
//! their own phonebook; an administrator sees every call but, like everyone, only their
//! own notes and phonebook (DOMAIN.md: the phonebook is the user's own).

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::api::{parse_json, AppState, Authed};
use super::error::ApiError;
use crate::store::{
    clean_contact_numbers, validate_contact_name, PhonebookEntry, Role, Store, StoreError,
    StoredCallRecord, MAX_CONTACT_NUMBERS, MAX_PHONEBOOK_ENTRIES,
};

/// Largest phonebook CSV accepted for import.
const MAX_IMPORT_BYTES: usize = 512 * 1024;
/// At most this many bad lines are listed in an import error.
const MAX_LINE_ERRORS: usize = 50;

/// The routes of this module (appended to [`super::api::routes`]).
pub(super) fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::PUT, "/api/v1/cdr/{id}/note", put(set_note)),
        (Method::DELETE, "/api/v1/cdr/{id}/note", delete(delete_note)),
        (Method::GET, "/api/v1/me/phonebook", get(list_contacts)),
        (Method::POST, "/api/v1/me/phonebook", post(add_contact)),
        (
            Method::PUT,
            "/api/v1/me/phonebook/{id}",
            put(update_contact),
        ),
        (
            Method::DELETE,
            "/api/v1/me/phonebook/{id}",
            delete(delete_contact),
        ),
        (
            Method::GET,
            "/api/v1/me/phonebook.csv",
            get(export_contacts),
        ),
        (
            Method::POST,
            "/api/v1/me/phonebook/import",
            post(import_contacts),
        ),
    ]
}

fn store_err(hint: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |e| ApiError::from_store(e, hint)
}

fn path_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::NotFound(format!("{what} {raw:?} does not exist")))
}

/// The extension whose calls `a` may see: `Ok(None)` for an administrator (all calls),
/// 404 for a user without a linked extension (no call is theirs).
fn call_scope(a: &Authed, id: i64) -> Result<Option<String>, ApiError> {
    if a.user.role == Role::Admin {
        return Ok(None);
    }
    a.user
        .extension
        .clone()
        .map(Some)
        .ok_or_else(|| not_your_call(id))
}

fn not_your_call(id: i64) -> ApiError {
    ApiError::NotFound(format!("call {id} does not exist"))
}

// ---- notes ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    note: String,
}

#[derive(Serialize)]
struct NoteView {
    id: i64,
    note: String,
}

async fn set_note(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(raw): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<NoteView>, ApiError> {
    let id = path_id(&raw, "call")?;
    let scope = call_scope(&a, id)?;
    let req: NoteBody = parse_json(&headers, &body)?;
    let who = a.user.username.clone();
    let note = super::api_pbx::change(&st, &a, "note", move |s, by| {
        if !s.call_visible(id, scope.as_deref())? {
            return Ok(None);
        }
        s.set_call_note(by, &who, id, &req.note)?;
        s.call_note(&who, id)
    })
    .await?
    .ok_or_else(|| not_your_call(id))?;
    Ok(Json(NoteView { id, note }))
}

async fn delete_note(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(raw): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&raw, "call")?;
    let scope = call_scope(&a, id)?;
    let who = a.user.username.clone();
    let found = super::api_pbx::change(&st, &a, "note", move |s, by| {
        if !s.call_visible(id, scope.as_deref())? {
            return Ok(None);
        }
        s.delete_call_note(by, &who, id).map(Some)
    })
    .await?;
    match found {
        None => Err(not_your_call(id)),
        Some(false) => Err(ApiError::NotFound(format!("call {id} has no note"))),
        Some(true) => Ok(StatusCode::NO_CONTENT),
    }
}

// ---- the call list's extra columns ---------------------------------------------------

/// Number (as in the call records) → phonebook name, for one account and one page.
pub(super) struct ContactIndex {
    names: HashMap<String, String>,
}

impl ContactIndex {
    /// The name for the first of `numbers` (other parties of a call) that matches.
    pub(super) fn name_for<'a>(
        &self,
        numbers: impl IntoIterator<Item = &'a str>,
    ) -> Option<String> {
        numbers.into_iter().find_map(|n| self.names.get(n).cloned())
    }
}

/// What a call-log view adds for `username`: their notes on `records` and the
/// phonebook names of the other parties (seen from `own`), looked up by number in any
/// form through the store's index (store/number_forms.rs).
pub(super) fn call_extras(
    s: &Store,
    username: &str,
    own: Option<&str>,
    records: &[StoredCallRecord],
) -> Result<(HashMap<i64, String>, ContactIndex), StoreError> {
    let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
    let notes = s.call_notes_for(username, &ids)?;
    let parties = records.iter().flat_map(|r| {
        let r = &r.record;
        other_parties(
            own,
            &r.caller,
            &r.dialled,
            r.normalised.as_deref(),
            r.destination.as_deref(),
        )
    });
    let names = s.phonebook_names_for(username, parties)?;
    Ok((notes, ContactIndex { names }))
}

/// The numbers of a call's other parties as seen from `own` (all parties for an admin).
pub(super) fn other_parties<'a>(
    own: Option<&'a str>,
    caller: &'a str,
    dialled: &'a str,
    normalised: Option<&'a str>,
    destination: Option<&'a str>,
) -> impl Iterator<Item = &'a str> {
    [Some(caller), normalised, Some(dialled), destination]
        .into_iter()
        .flatten()
        .filter(move |n| Some(*n) != own)
}

// ---- phonebook -----------------------------------------------------------------------

#[derive(Serialize)]
struct ContactView {
    id: i64,
    name: String,
    numbers: Vec<String>,
}

impl From<PhonebookEntry> for ContactView {
    fn from(e: PhonebookEntry) -> Self {
        ContactView {
            id: e.id,
            name: e.name,
            numbers: e.numbers,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactBody {
    name: String,
    numbers: Vec<String>,
}

impl ContactBody {
    fn check(self) -> Result<(String, Vec<String>), ApiError> {
        let name = validate_contact_name(&self.name).map_err(store_err("name"))?;
        let numbers = clean_contact_numbers(&self.numbers).map_err(store_err("numbers"))?;
        Ok((name, numbers))
    }
}

fn search_param(uri: &Uri) -> Result<Option<String>, ApiError> {
    let Some(q) = uri.query() else {
        return Ok(None);
    };
    let mut search = None;
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = url_decode(v).ok_or_else(|| ApiError::field("q", "bad percent-encoding"))?;
        match k {
            "q" if v.chars().count() <= 64 => search = Some(v),
            "q" => return Err(ApiError::field("q", "search text: at most 64 characters")),
            other => {
                return Err(ApiError::BadRequest {
                    field: None,
                    message: format!("unknown query parameter {other:?}"),
                })
            }
        }
    }
    Ok(search)
}

/// `application/x-www-form-urlencoded` value decoding (`+` is a space).
fn url_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

async fn list_contacts(
    State(st): State<AppState>,
    a: Authed,
    uri: Uri,
) -> Result<Json<Vec<ContactView>>, ApiError> {
    let search = search_param(&uri)?;
    let who = a.user.username.clone();
    let entries = st
        .db(move |s| s.phonebook(&who, search.as_deref()))
        .await
        .map_err(store_err("q"))?;
    Ok(Json(entries.into_iter().map(ContactView::from).collect()))
}

async fn add_contact(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<ContactView>), ApiError> {
    let (name, numbers) = parse_json::<ContactBody>(&headers, &body)?.check()?;
    let who = a.user.username.clone();
    let entry = super::api_pbx::change(&st, &a, "phonebook", move |s, by| {
        let ids = s.add_phonebook_entries(by, &who, &[(name, numbers)])?;
        match ids.first() {
            Some(id) => s.phonebook_entry(&who, *id),
            None => Ok(None),
        }
    })
    .await?
    .ok_or(ApiError::Internal)?;
    Ok((StatusCode::CREATED, Json(entry.into())))
}

async fn update_contact(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(raw): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ContactView>, ApiError> {
    let id = path_id(&raw, "phonebook entry")?;
    let (name, numbers) = parse_json::<ContactBody>(&headers, &body)?.check()?;
    let who = a.user.username.clone();
    let entry = super::api_pbx::change(&st, &a, "phonebook", move |s, by| {
        if !s.update_phonebook_entry(by, &who, id, &name, &numbers)? {
            return Ok(None);
        }
        s.phonebook_entry(&who, id)
    })
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("phonebook entry {id} does not exist")))?;
    Ok(Json(entry.into()))
}

async fn delete_contact(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(raw): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&raw, "phonebook entry")?;
    let who = a.user.username.clone();
    if super::api_pbx::change(&st, &a, "phonebook", move |s, by| {
        s.delete_phonebook_entry(by, &who, id)
    })
    .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "phonebook entry {id} does not exist"
        )))
    }
}

/// The phonebook CSV header: a name, then up to five numbers.
const CSV_HEADER: &str = "name,number1,number2,number3,number4,number5";

async fn export_contacts(State(st): State<AppState>, a: Authed) -> Result<Response, ApiError> {
    let who = a.user.username.clone();
    let entries = st
        .db(move |s| s.phonebook(&who, None))
        .await
        .map_err(store_err("phonebook"))?;
    let mut text = String::from(CSV_HEADER);
    text.push_str("\r\n");
    for e in &entries {
        csv_field(&mut text, &e.name);
        for n in &e.numbers {
            text.push(',');
            csv_field(&mut text, n);
        }
        text.push_str("\r\n");
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"phonebook.csv\"",
            ),
        ],
        text,
    )
        .into_response())
}

/// One CSV field: a leading `=`, `+`, `-`, `@` gets a `'` (a spreadsheet must not run it
/// as a formula), except a `+` before digits (an E.164 number); RFC 4180 quoting.
pub(super) fn csv_field(out: &mut String, s: &str) {
    let number = s.strip_prefix('+').is_some_and(|r| {
        !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'*' | b'#'))
    });
    crate::store::csv_field_guarded(out, s, !number && crate::store::csv_formula_start(s));
}

/// A CSV record: its first line number and its fields.
type CsvRecord = (usize, Vec<String>);

/// Splits CSV text into records of fields (RFC 4180: quoted fields may hold commas,
/// doubled quotes and line breaks). Returns each record with its first line number.
pub(super) fn parse_csv(text: &str) -> Result<Vec<CsvRecord>, (usize, String)> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let (mut line, mut start_line) = (1usize, 1usize);
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if at_start => quoted = true,
            '"' => return Err((line, "a quote inside an unquoted field".into())),
            ',' => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
                continue;
            }
            '\r' => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                records.push((start_line, std::mem::take(&mut fields)));
                line += 1;
                start_line = line;
                at_start = true;
                continue;
            }
            _ => field.push(c),
        }
        at_start = false;
    }
    if quoted {
        return Err((start_line, "a quoted field is not closed".into()));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        records.push((start_line, fields));
    }
    Ok(records)
}

/// A field exported with the formula guard comes back without it.
fn unguard(s: &str) -> &str {
    match s.strip_prefix('\'') {
        Some(r) if r.starts_with(['=', '+', '-', '@']) => r,
        _ => s,
    }
}

/// Checks every line of an import; either all entries or the list of bad lines.
pub(super) fn check_import(text: &str) -> Result<Vec<(String, Vec<String>)>, Vec<LineError>> {
    let records = parse_csv(text).map_err(|(line, error)| vec![LineError { line, error }])?;
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (i, (line, fields)) in records.into_iter().enumerate() {
        if fields.iter().all(|f| f.trim().is_empty()) {
            continue; // blank line
        }
        if i == 0
            && fields
                .first()
                .is_some_and(|f| f.trim().eq_ignore_ascii_case("name"))
        {
            continue; // the header line
        }
        let mut fail = |error: String| {
            if errors.len() < MAX_LINE_ERRORS {
                errors.push(LineError { line, error });
            }
        };
        let Some((name, numbers)) = fields.split_first() else {
            continue;
        };
        let numbers: Vec<&str> = numbers.iter().map(|n| unguard(n)).collect();
        if numbers.iter().filter(|n| !n.trim().is_empty()).count() > MAX_CONTACT_NUMBERS {
            fail(format!("at most {MAX_CONTACT_NUMBERS} numbers per entry"));
            continue;
        }
        match (
            validate_contact_name(unguard(name)),
            clean_contact_numbers(&numbers),
        ) {
            (Ok(n), Ok(nums)) => entries.push((n, nums)),
            (Err(e), _) | (_, Err(e)) => fail(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(entries)
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub(super) struct LineError {
    line: usize,
    error: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    csv: String,
}

#[derive(Serialize)]
struct ImportResult {
    imported: usize,
}

#[derive(Serialize)]
struct ImportRefusal {
    error: String,
    field: &'static str,
    lines: Vec<LineError>,
}

/// Imports CSV lines (`name,number1,...`; a header line is skipped) as new entries, all
/// or none: any bad line refuses the whole file with every bad line's number and reason.
async fn import_contacts(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if body.len() > MAX_IMPORT_BYTES + 1024 {
        return Err(ApiError::field("csv", "the file is larger than 512 KiB"));
    }
    let req: ImportBody = parse_json(&headers, &body)?;
    if req.csv.len() > MAX_IMPORT_BYTES {
        return Err(ApiError::field("csv", "the file is larger than 512 KiB"));
    }
    let entries = match check_import(&req.csv) {
        Ok(e) => e,
        Err(lines) => {
            let mut error = String::from("nothing imported; bad lines:");
            for l in lines.iter().take(3) {
                let _ = write!(error, " line {}: {};", l.line, l.error);
            }
            error.pop();
            let body = ImportRefusal {
                error,
                field: "csv",
                lines,
            };
            return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
        }
    };
    if entries.is_empty() {
        return Err(ApiError::field("csv", "the file holds no entries"));
    }
    if i64::try_from(entries.len()).unwrap_or(i64::MAX) > MAX_PHONEBOOK_ENTRIES {
        return Err(ApiError::field(
            "csv",
            format!("at most {MAX_PHONEBOOK_ENTRIES} entries"),
        ));
    }
    let who = a.user.username.clone();
    let n = super::api_pbx::change(&st, &a, "csv", move |s, by| {
        s.add_phonebook_entries(by, &who, &entries)
            .map(|ids| ids.len())
    })
    .await?;
    Ok(Json(ImportResult { imported: n }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips_quotes_commas_and_guards() {
        let mut line = String::new();
        for (i, f) in ["Müller, \"Bob\"", "+49211123", "=cmd"].iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            csv_field(&mut line, f);
        }
        assert_eq!(line, "\"Müller, \"\"Bob\"\"\",+49211123,'=cmd");
        let parsed = parse_csv(&format!("{line}\r\nx,1\n")).expect("valid");
        assert_eq!(
            parsed,
            [
                (
                    1,
                    vec!["Müller, \"Bob\"".into(), "+49211123".into(), "'=cmd".into()]
                ),
                (2, vec!["x".into(), "1".into()]),
            ]
        );
        assert_eq!(
            parse_csv("a,\"b\nc"),
            Err((1, "a quoted field is not closed".into()))
        );
    }

    #[test]
    fn import_names_every_bad_line() {
        let text =
            "name,number1\nAnna,0211 123\n,0211\nBob,abc\n\nCarl,1,2,3,4,5,6\nDora,+4930 1\n";
        let errs = check_import(text).expect_err("bad lines");
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 6]);
        assert!(errs[0].error.contains("name"), "{errs:?}");
        assert!(errs[1].error.contains("\"abc\""), "{errs:?}");
        let ok = check_import("Anna,0211 123\nDora,+4930 1,102\n").expect("valid");
        assert_eq!(
            ok,
            [
                ("Anna".to_owned(), vec!["0211123".to_owned()]),
                (
                    "Dora".to_owned(),
                    vec!["+49301".to_owned(), "102".to_owned()]
                ),
            ]
        );
    }

    #[test]
    fn other_parties_leave_out_the_viewer() {
        let parties: Vec<&str> =
            other_parties(Some("101"), "101", "0211", Some("+49211"), None).collect();
        assert_eq!(parties, ["+49211", "0211"]);
    }
}
