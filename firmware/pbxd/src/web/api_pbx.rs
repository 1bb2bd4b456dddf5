//! The PBX's configuration and records over the API: extensions, ring groups, the call
//! log (JSON pages and CSV), SIP brute-force blocks, the audit log, site settings, user
//! roles and a user's own call settings. Validation is the store's, the same pbxctl uses;
//! every change is audited by the store in the change's own transaction.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::api::{parse_json, unix_now, AppState, Authed, UserView};
use super::error::ApiError;
use crate::store::{
    cdr_csv_header, to_csv_row, AuditCtx, CallSettings, CdrFilter, Disposition, EmergencyAddress,
    ForwardTarget, OutboundClass, RingGroup, RingStrategy, Role, SiteInfo, SiteSettings, Store,
    StoreError, StoredCallRecord, DEFAULT_RING_SECS, MAX_PAGE,
};

/// Most rows one CSV export holds.
pub const MAX_CSV_ROWS: u32 = 100_000;
/// Default call-log page size.
const DEFAULT_PAGE: u32 = 50;

/// The routes of this module (appended to [`super::api::routes`]).
pub(super) fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/api/v1/extensions", get(list_extensions)),
        (Method::POST, "/api/v1/extensions", post(add_extension)),
        (
            Method::GET,
            "/api/v1/extensions/{number}",
            get(get_extension),
        ),
        (
            Method::PUT,
            "/api/v1/extensions/{number}",
            put(rename_extension),
        ),
        (
            Method::DELETE,
            "/api/v1/extensions/{number}",
            delete(remove_extension),
        ),
        (
            Method::PUT,
            "/api/v1/extensions/{number}/password",
            put(set_extension_password),
        ),
        (
            Method::PUT,
            "/api/v1/extensions/{number}/settings",
            put(set_extension_settings),
        ),
        (
            Method::POST,
            "/api/v1/extensions/{number}/disable",
            post(disable_extension),
        ),
        (
            Method::POST,
            "/api/v1/extensions/{number}/enable",
            post(enable_extension),
        ),
        (Method::GET, "/api/v1/ring-groups", get(list_ring_groups)),
        (Method::POST, "/api/v1/ring-groups", post(add_ring_group)),
        (
            Method::PUT,
            "/api/v1/ring-groups/{number}",
            put(update_ring_group),
        ),
        (
            Method::DELETE,
            "/api/v1/ring-groups/{number}",
            delete(remove_ring_group),
        ),
        (Method::GET, "/api/v1/cdr", get(cdr_page)),
        (Method::GET, "/api/v1/cdr.csv", get(cdr_csv)),
        (Method::GET, "/api/v1/blocks", get(list_blocks)),
        (Method::DELETE, "/api/v1/blocks/{ip}", delete(lift_block)),
        (Method::GET, "/api/v1/audit", get(audit_page)),
        (Method::GET, "/api/v1/site", get(get_site)),
        (Method::PUT, "/api/v1/site", put(set_site)),
        (Method::PUT, "/api/v1/users/{name}/role", put(set_role)),
        (Method::GET, "/api/v1/me/settings", get(my_settings)),
        (Method::PUT, "/api/v1/me/settings", put(set_my_settings)),
    ]
}

/// Runs a store change with an audit context for `a`.
pub(super) async fn change<T, F>(
    st: &AppState,
    a: &Authed,
    hint: &'static str,
    f: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut Store, &AuditCtx<'_>) -> Result<T, StoreError> + Send + 'static,
{
    let (actor, source) = (a.actor(), a.source.to_string());
    st.db(move |s| {
        let by = AuditCtx {
            actor: &actor,
            source: &source,
            now_unix: unix_now(),
        };
        f(s, &by)
    })
    .await
    .map_err(|e| ApiError::from_store(e, hint))
}

/// A read that needs no audit.
async fn read<T, F>(st: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
{
    st.db(f)
        .await
        .map_err(|e| ApiError::from_store(e, "request"))
}

/// The extension named in the path must exist: 404 instead of a field error.
fn path_extension(number: &str, e: ApiError) -> ApiError {
    match e {
        ApiError::BadRequest {
            field: Some("extension"),
            ..
        } => ApiError::NotFound(format!("extension {number} does not exist")),
        other => other,
    }
}

// ---- extensions --------------------------------------------------------------------

#[derive(Serialize)]
struct ExtensionView {
    number: String,
    name: Option<String>,
    enabled: bool,
    /// False when the SIP realm changed since the password was set: the phone cannot
    /// authenticate until the password is set again.
    password_valid: bool,
    /// Registered contacts now.
    registrations: usize,
}

/// The extension part of an address of record `sip:101@realm`.
fn aor_user(aor: &str) -> &str {
    let rest = aor
        .strip_prefix("sips:")
        .or_else(|| aor.strip_prefix("sip:"))
        .unwrap_or(aor);
    rest.split('@').next().unwrap_or(rest)
}

async fn list_extensions(
    State(st): State<AppState>,
    a: Authed,
) -> Result<Json<Vec<ExtensionView>>, ApiError> {
    a.require_admin()?;
    let now = unix_now();
    let (exts, realm, bindings) = read(&st, move |s| {
        Ok((s.list_extensions()?, s.realm()?, s.load_bindings(now)?))
    })
    .await?;
    Ok(Json(
        exts.into_iter()
            .map(|e| ExtensionView {
                registrations: bindings
                    .iter()
                    .filter(|b| aor_user(&b.aor) == e.number)
                    .count(),
                password_valid: e.realm == realm,
                number: e.number,
                name: e.name,
                enabled: e.enabled,
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewExtension {
    number: String,
    #[serde(default)]
    name: Option<String>,
    password: String,
}

/// An empty or blank optional text field means "none".
fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.trim().is_empty())
}

async fn add_extension(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<ExtensionDetail>), ApiError> {
    a.require_admin()?;
    let req: NewExtension = parse_json(&headers, &body)?;
    let name = non_empty(req.name);
    let number = req.number.clone();
    change(&st, &a, "password", move |s, by| {
        s.add_extension(by, &req.number, name.as_deref(), &req.password)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(detail(&st, number).await?)))
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    outbound_class: String,
    clir: bool,
    dnd: bool,
    forward_always: Option<String>,
    forward_busy: Option<String>,
    forward_noanswer: Option<String>,
    forward_noanswer_secs: u32,
    pickup_group: Option<u8>,
}

fn target_text(t: &Option<ForwardTarget>) -> Option<String> {
    t.as_ref().map(|t| t.as_str().to_owned())
}

impl From<&CallSettings> for SettingsBody {
    fn from(s: &CallSettings) -> Self {
        SettingsBody {
            outbound_class: s.outbound_class.as_str().to_owned(),
            clir: s.clir,
            dnd: s.dnd,
            forward_always: target_text(&s.forward_always),
            forward_busy: target_text(&s.forward_busy),
            forward_noanswer: target_text(&s.forward_noanswer),
            forward_noanswer_secs: s.forward_noanswer_secs,
            pickup_group: s.pickup_group,
        }
    }
}

/// Names the forward field an error about a target (e.g. an external number on a site
/// that forbids external forwarding) is about.
fn target_field(s: &CallSettings, e: ApiError) -> ApiError {
    let ApiError::BadRequest { field, message } = e else {
        return e;
    };
    let named = [
        ("forward_always", &s.forward_always),
        ("forward_busy", &s.forward_busy),
        ("forward_noanswer", &s.forward_noanswer),
    ]
    .into_iter()
    .find(|(_, t)| t.as_ref().is_some_and(|t| message.contains(t.as_str())))
    .map(|(f, _)| f);
    ApiError::BadRequest {
        field: named.or(field),
        message,
    }
}

/// Ring-group errors about an unknown extension concern the member list.
fn member_field(e: ApiError) -> ApiError {
    match e {
        ApiError::BadRequest {
            field: Some("extension"),
            message,
        } => ApiError::BadRequest {
            field: Some("members"),
            message,
        },
        other => other,
    }
}

/// A forward target field: empty means none.
fn parse_target(field: &'static str, v: Option<String>) -> Result<Option<ForwardTarget>, ApiError> {
    match non_empty(v) {
        None => Ok(None),
        Some(t) => ForwardTarget::parse(t.trim())
            .map(Some)
            .map_err(|e| ApiError::from_store(e, field)),
    }
}

impl SettingsBody {
    fn parse(self) -> Result<CallSettings, ApiError> {
        let outbound_class: OutboundClass = self.outbound_class.parse().map_err(|_| {
            ApiError::field(
                "outbound_class",
                "outbound class must be internal, local, national or international",
            )
        })?;
        Ok(CallSettings {
            outbound_class,
            clir: self.clir,
            dnd: self.dnd,
            forward_always: parse_target("forward_always", self.forward_always)?,
            forward_busy: parse_target("forward_busy", self.forward_busy)?,
            forward_noanswer: parse_target("forward_noanswer", self.forward_noanswer)?,
            forward_noanswer_secs: self.forward_noanswer_secs,
            pickup_group: self.pickup_group,
        })
    }
}

#[derive(Serialize)]
struct ExtensionDetail {
    number: String,
    name: Option<String>,
    enabled: bool,
    password_valid: bool,
    settings: SettingsBody,
    ring_groups: Vec<String>,
}

async fn detail(st: &AppState, number: String) -> Result<ExtensionDetail, ApiError> {
    let n = number.clone();
    let found = read(st, move |s| {
        let Some(ext) = s.get_extension(&n)? else {
            return Ok(None);
        };
        Ok(Some((
            ext,
            s.realm()?,
            s.call_settings(&n)?,
            s.ring_groups_of(&n)?,
        )))
    })
    .await?;
    let (ext, realm, settings, groups) =
        found.ok_or_else(|| ApiError::NotFound(format!("extension {number} does not exist")))?;
    Ok(ExtensionDetail {
        password_valid: ext.realm == realm,
        number: ext.number,
        name: ext.name,
        enabled: ext.enabled,
        settings: SettingsBody::from(&settings),
        ring_groups: groups,
    })
}

async fn get_extension(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(number): UrlPath<String>,
) -> Result<Json<ExtensionDetail>, ApiError> {
    a.require_admin()?;
    Ok(Json(detail(&st, number).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: Option<String>,
}

async fn rename_extension(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(number): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ExtensionDetail>, ApiError> {
    a.require_admin()?;
    let req: Rename = parse_json(&headers, &body)?;
    let name = non_empty(req.name);
    let n = number.clone();
    change(&st, &a, "name", move |s, by| {
        s.set_extension_name(by, &n, name.as_deref())
    })
    .await
    .map_err(|e| path_extension(&number, e))?;
    Ok(Json(detail(&st, number).await?))
}

async fn remove_extension(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(number): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    a.require_admin()?;
    let n = number.clone();
    change(&st, &a, "number", move |s, by| s.remove_extension(by, &n))
        .await
        .map_err(|e| path_extension(&number, e))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

async fn set_extension_password(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(number): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    a.require_admin()?;
    let req: NewPassword = parse_json(&headers, &body)?;
    let n = number.clone();
    change(&st, &a, "password", move |s, by| {
        s.set_password(by, &n, &req.password)
    })
    .await
    .map_err(|e| path_extension(&number, e))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_extension_settings(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(number): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ExtensionDetail>, ApiError> {
    a.require_admin()?;
    let settings = parse_json::<SettingsBody>(&headers, &body)?.parse()?;
    let n = number.clone();
    let fields = settings.clone();
    change(&st, &a, "settings", move |s, by| {
        s.set_call_settings(by, &n, &settings)
    })
    .await
    .map_err(|e| target_field(&fields, path_extension(&number, e)))?;
    Ok(Json(detail(&st, number).await?))
}

async fn set_extension_enabled(
    st: AppState,
    a: Authed,
    number: String,
    enabled: bool,
) -> Result<Json<ExtensionDetail>, ApiError> {
    a.require_admin()?;
    let n = number.clone();
    change(&st, &a, "number", move |s, by| {
        s.set_extension_enabled(by, &n, enabled)
    })
    .await
    .map_err(|e| path_extension(&number, e))?;
    Ok(Json(detail(&st, number).await?))
}

async fn disable_extension(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(number): UrlPath<String>,
) -> Result<Json<ExtensionDetail>, ApiError> {
    set_extension_enabled(st, a, number, false).await
}

async fn enable_extension(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(number): UrlPath<String>,
) -> Result<Json<ExtensionDetail>, ApiError> {
    set_extension_enabled(st, a, number, true).await
}

// ---- ring groups -------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RingGroupBody {
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    strategy: Option<String>,
    #[serde(default)]
    ring_secs: Option<u32>,
    #[serde(default)]
    noanswer_target: Option<String>,
    #[serde(default)]
    members: Vec<String>,
}

impl From<RingGroup> for RingGroupBody {
    fn from(g: RingGroup) -> Self {
        RingGroupBody {
            number: Some(g.number),
            name: g.name,
            strategy: Some(g.strategy.as_str().to_owned()),
            ring_secs: Some(g.ring_secs),
            noanswer_target: target_text(&g.noanswer_target),
            members: g.members,
        }
    }
}

impl RingGroupBody {
    fn parse(self, number: String) -> Result<RingGroup, ApiError> {
        let strategy = match self.strategy.as_deref() {
            None | Some("") => RingStrategy::default(),
            Some(s) => s
                .parse()
                .map_err(|e: StoreError| ApiError::from_store(e, "strategy"))?,
        };
        Ok(RingGroup {
            number,
            name: non_empty(self.name),
            strategy,
            ring_secs: self.ring_secs.unwrap_or(DEFAULT_RING_SECS),
            noanswer_target: parse_target("noanswer_target", self.noanswer_target)?,
            members: self
                .members
                .into_iter()
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty())
                .collect(),
        })
    }
}

async fn list_ring_groups(
    State(st): State<AppState>,
    a: Authed,
) -> Result<Json<Vec<RingGroupBody>>, ApiError> {
    a.require_admin()?;
    let groups = read(&st, |s| s.list_ring_groups()).await?;
    Ok(Json(groups.into_iter().map(RingGroupBody::from).collect()))
}

async fn add_ring_group(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<RingGroupBody>), ApiError> {
    a.require_admin()?;
    let req: RingGroupBody = parse_json(&headers, &body)?;
    let number = non_empty(req.number.clone())
        .ok_or_else(|| ApiError::field("number", "the ring group needs a number"))?;
    let g = req.parse(number)?;
    let saved = g.clone();
    change(&st, &a, "members", move |s, by| s.add_ring_group(by, &g))
        .await
        .map_err(member_field)?;
    Ok((StatusCode::CREATED, Json(RingGroupBody::from(saved))))
}

async fn update_ring_group(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(number): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<RingGroupBody>, ApiError> {
    a.require_admin()?;
    let req: RingGroupBody = parse_json(&headers, &body)?;
    if req.number.as_deref().is_some_and(|n| n != number) {
        return Err(ApiError::field(
            "number",
            "a ring group's number cannot be changed; remove it and add a new one",
        ));
    }
    let g = req.parse(number)?;
    let saved = g.clone();
    change(&st, &a, "members", move |s, by| s.update_ring_group(by, &g))
        .await
        .map_err(member_field)?;
    Ok(Json(RingGroupBody::from(saved)))
}

async fn remove_ring_group(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(number): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    a.require_admin()?;
    change(&st, &a, "number", move |s, by| {
        s.remove_ring_group(by, &number)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- call log ------------------------------------------------------------------------

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space).
fn url_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The query string as pairs; a malformed one is a 400.
fn query_pairs(uri: &Uri) -> Result<Vec<(String, String)>, ApiError> {
    let Some(q) = uri.query() else {
        return Ok(Vec::new());
    };
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match (url_decode(k), url_decode(v)) {
                (Some(k), Some(v)) => Ok((k, v)),
                _ => Err(ApiError::field("query", "malformed query string")),
            }
        })
        .collect()
}

fn int_param<T: std::str::FromStr>(field: &'static str, v: &str) -> Result<T, ApiError> {
    v.trim()
        .parse()
        .map_err(|_| ApiError::field(field, format!("{field} must be a whole number")))
}

/// A parsed call-log query.
struct CdrParams {
    filter: CdrFilter,
    limit: u32,
    offset: u32,
}

fn cdr_params(uri: &Uri, paged: bool) -> Result<CdrParams, ApiError> {
    let mut p = CdrParams {
        filter: CdrFilter::default(),
        limit: DEFAULT_PAGE,
        offset: 0,
    };
    for (k, v) in query_pairs(uri)? {
        if v.trim().is_empty() {
            continue; // an empty form field filters nothing
        }
        match k.as_str() {
            "since_ms" => p.filter.since_ms = Some(int_param("since_ms", &v)?),
            "until_ms" => p.filter.until_ms = Some(int_param("until_ms", &v)?),
            "number" => {
                // "030 123 4567" as people write it; the store matches any form.
                let n: String = v
                    .chars()
                    .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '/' | '.' | '(' | ')'))
                    .collect();
                let ok = !n.is_empty()
                    && n.len() <= 32
                    && n.bytes()
                        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'*' | b'#'));
                if !ok {
                    return Err(ApiError::field(
                        "number",
                        "number may hold only digits, + * # and separators (at most 32)",
                    ));
                }
                p.filter.number = Some(n);
            }
            "disposition" => {
                p.filter.disposition = Some(v.parse::<Disposition>().map_err(|_| {
                    ApiError::field(
                        "disposition",
                        "disposition must be answered, busy, no_answer, cancelled, \
                             failed or blocked",
                    )
                })?)
            }
            "limit" if paged => {
                p.limit = int_param("limit", &v)?;
                if !(1..=MAX_PAGE).contains(&p.limit) {
                    return Err(ApiError::field("limit", "limit must be 1 to 500"));
                }
            }
            "offset" if paged => {
                p.offset = int_param("offset", &v)?;
                if p.offset > 10_000_000 {
                    return Err(ApiError::field("offset", "offset too large"));
                }
            }
            other => {
                return Err(ApiError::BadRequest {
                    field: None,
                    message: format!("unknown query parameter {other:?}"),
                })
            }
        }
    }
    if let (Some(a), Some(b)) = (p.filter.since_ms, p.filter.until_ms) {
        if b < a {
            return Err(ApiError::field("until_ms", "the end lies before the start"));
        }
    }
    Ok(p)
}

/// Restricts a `user` to their own calls (none without a linked extension).
fn own_calls(a: &Authed, f: &mut CdrFilter) -> bool {
    if a.user.role == Role::Admin {
        return true;
    }
    match &a.user.extension {
        Some(ext) => {
            f.own_extension = Some(ext.clone());
            true
        }
        None => false,
    }
}

#[derive(Serialize)]
struct CallView {
    id: i64,
    start_ms: i64,
    answer_ms: Option<i64>,
    end_ms: i64,
    direction: &'static str,
    /// "forwarded" for a call forwarded out, else the direction.
    kind: &'static str,
    /// The extension whose forward sent the call out.
    forwarded_by: Option<String>,
    caller: String,
    caller_name: Option<String>,
    dialled: String,
    destination: Option<String>,
    normalised: Option<String>,
    disposition: &'static str,
    reason: Option<String>,
    duration_secs: u64,
    billable_secs: u64,
    /// The viewer's own note on this call.
    note: Option<String>,
    /// The viewer's phonebook name for the other party's number.
    contact: Option<String>,
}

impl From<StoredCallRecord> for CallView {
    fn from(s: StoredCallRecord) -> Self {
        let r = s.record;
        CallView {
            id: s.id,
            duration_secs: r.duration_secs(),
            billable_secs: r.billable_secs(),
            start_ms: r.start_ms,
            answer_ms: r.answer_ms,
            end_ms: r.end_ms,
            direction: r.direction.as_str(),
            kind: r.kind(),
            forwarded_by: r.forwarded_by.clone(),
            caller: r.caller,
            caller_name: r.caller_name,
            dialled: r.dialled,
            destination: r.destination,
            normalised: r.normalised,
            disposition: r.disposition.as_str(),
            reason: r.reason,
            note: None,
            contact: None,
        }
    }
}

#[derive(Serialize)]
struct CallPage {
    records: Vec<CallView>,
    has_more: bool,
    limit: u32,
    offset: u32,
}

async fn cdr_page(
    State(st): State<AppState>,
    a: Authed,
    uri: Uri,
) -> Result<Json<CallPage>, ApiError> {
    let mut p = cdr_params(&uri, true)?;
    if !own_calls(&a, &mut p.filter) {
        return Ok(Json(CallPage {
            records: Vec::new(),
            has_more: false,
            limit: p.limit,
            offset: p.offset,
        }));
    }
    let (f, limit, offset) = (p.filter, p.limit, p.offset);
    let (who, own) = (a.user.username.clone(), a.user.extension.clone());
    let own_q = own.clone();
    let (page, (mut notes, contacts)) = read(&st, move |s| {
        let page = s.call_record_page(&f, limit, offset)?;
        let extras = super::api_user::call_extras(s, &who, own_q.as_deref(), &page.records)?;
        Ok((page, extras))
    })
    .await?;
    let views = page.records.into_iter().map(|s| {
        let contact = contacts.name_for(super::api_user::other_parties(
            own.as_deref(),
            &s.record.caller,
            &s.record.dialled,
            s.record.normalised.as_deref(),
            s.record.destination.as_deref(),
        ));
        let note = notes.remove(&s.id);
        CallView {
            note,
            contact,
            ..CallView::from(s)
        }
    });
    Ok(Json(CallPage {
        records: views.collect(),
        has_more: page.has_more,
        limit,
        offset,
    }))
}

async fn cdr_csv(State(st): State<AppState>, a: Authed, uri: Uri) -> Result<Response, ApiError> {
    let mut p = cdr_params(&uri, false)?;
    let allowed = own_calls(&a, &mut p.filter);
    let f = p.filter;
    let (who, own) = (a.user.username.clone(), a.user.extension.clone());
    let own_q = own.clone();
    let (records, tick, (notes, contacts)) = if allowed {
        read(&st, move |s| {
            let records = s.call_records_filtered(&f, MAX_CSV_ROWS)?;
            let extras = super::api_user::call_extras(s, &who, own_q.as_deref(), &records)?;
            Ok((records, s.site_settings()?.billing_tick_secs, extras))
        })
        .await?
    } else {
        let extras = read(&st, move |s| {
            super::api_user::call_extras(s, &who, None, &[])
        })
        .await?;
        (Vec::new(), 1, extras)
    };
    let mut text = String::with_capacity(256 * (records.len() + 1));
    text.push_str(cdr_csv_header());
    // The viewer's own note and phonebook name (issue 6: notes are exported).
    text.push_str(",note,contact\r\n");
    for r in &records {
        text.push_str(&to_csv_row(r, tick));
        text.push(',');
        if let Some(n) = notes.get(&r.id) {
            super::api_user::csv_field(&mut text, n);
        }
        text.push(',');
        let rec = &r.record;
        let contact = contacts.name_for(super::api_user::other_parties(
            own.as_deref(),
            &rec.caller,
            &rec.dialled,
            rec.normalised.as_deref(),
            rec.destination.as_deref(),
        ));
        if let Some(c) = contact {
            super::api_user::csv_field(&mut text, &c);
        }
        text.push_str("\r\n");
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"calls.csv\"",
            ),
        ],
        text,
    )
        .into_response())
}

// ---- blocks and audit ---------------------------------------------------------------

#[derive(Serialize)]
struct BlockView {
    ip: String,
    reason: String,
    blocked_at: i64,
    until: i64,
}

async fn list_blocks(
    State(st): State<AppState>,
    a: Authed,
) -> Result<Json<Vec<BlockView>>, ApiError> {
    a.require_admin()?;
    let now = unix_now();
    let blocks = read(&st, move |s| s.active_blocks(now)).await?;
    Ok(Json(
        blocks
            .into_iter()
            .map(|b| BlockView {
                ip: b.ip.to_string(),
                reason: b.reason,
                blocked_at: b.blocked_at,
                until: b.until,
            })
            .collect(),
    ))
}

async fn lift_block(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(ip): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    a.require_admin()?;
    let addr: IpAddr = ip
        .parse()
        .map_err(|_| ApiError::field("ip", format!("{ip:?} is not an IP address")))?;
    // The SIP task notices the lifted block at its next housekeeping round.
    let removed = change(&st, &a, "ip", move |s, by| s.remove_block(by, addr)).await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("{addr} is not blocked")))
    }
}

#[derive(Serialize)]
struct AuditView {
    id: i64,
    at: i64,
    actor: String,
    action: String,
    detail: String,
    source: String,
}

async fn audit_page(
    State(st): State<AppState>,
    a: Authed,
    uri: Uri,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    a.require_admin()?;
    let (mut before, mut limit) = (None, 100u32);
    for (k, v) in query_pairs(&uri)? {
        match k.as_str() {
            "before_id" => before = Some(int_param::<i64>("before_id", &v)?),
            "limit" => {
                limit = int_param("limit", &v)?;
                if !(1..=MAX_PAGE).contains(&limit) {
                    return Err(ApiError::field("limit", "limit must be 1 to 500"));
                }
            }
            other => {
                return Err(ApiError::BadRequest {
                    field: None,
                    message: format!("unknown query parameter {other:?}"),
                })
            }
        }
    }
    let entries = read(&st, move |s| s.audit_page(before, limit)).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditView {
                id: e.id,
                at: e.at,
                actor: e.actor,
                action: e.action,
                detail: e.detail,
                source: e.source,
            })
            .collect(),
    ))
}

// ---- site ----------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AddressBody {
    street: String,
    postal_code: String,
    city: String,
    #[serde(default)]
    details: String,
}

#[derive(Serialize)]
struct SiteView {
    country_code: String,
    area_code: String,
    outside_prefix: Option<String>,
    billing_tick_secs: u32,
    allow_external_forwarding: bool,
    time_zone: String,
    emergency_address: Option<AddressBody>,
}

/// A site change: every field optional, missing ones keep their value. An explicit
/// `"emergency_address": null` clears the address.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteChange {
    country_code: Option<String>,
    area_code: Option<String>,
    #[serde(default, with = "double_option")]
    outside_prefix: Option<Option<String>>,
    billing_tick_secs: Option<u32>,
    allow_external_forwarding: Option<bool>,
    time_zone: Option<String>,
    #[serde(default, with = "double_option")]
    emergency_address: Option<Option<AddressBody>>,
}

/// `Option<Option<T>>` from JSON: missing = `None`, `null` = `Some(None)`.
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

fn site_view(s: SiteSettings, i: SiteInfo) -> SiteView {
    SiteView {
        country_code: s.country_code,
        area_code: s.area_code,
        outside_prefix: s.outside_prefix,
        billing_tick_secs: s.billing_tick_secs,
        allow_external_forwarding: s.allow_external_forwarding,
        time_zone: i.time_zone,
        emergency_address: i.emergency_address.map(|a| AddressBody {
            street: a.street,
            postal_code: a.postal_code,
            city: a.city,
            details: a.details,
        }),
    }
}

async fn get_site(State(st): State<AppState>, a: Authed) -> Result<Json<SiteView>, ApiError> {
    a.require_admin()?;
    let (s, i) = read(&st, |s| Ok((s.site_settings()?, s.site_info()?))).await?;
    Ok(Json(site_view(s, i)))
}

/// The field a site validation error belongs to, from the store's `what`.
fn site_field(e: StoreError) -> ApiError {
    let field = match &e {
        StoreError::InvalidValue { what, .. } => match *what {
            "country code" => "country_code",
            "area code" => "area_code",
            "outside-line prefix" => "outside_prefix",
            "billing tick" => "billing_tick_secs",
            "time zone" => "time_zone",
            "emergency street" => "emergency_address.street",
            "emergency city" => "emergency_address.city",
            "emergency postal code" => "emergency_address.postal_code",
            "emergency address details" => "emergency_address.details",
            _ => "site",
        },
        _ => "site",
    };
    match e {
        StoreError::InvalidValue { .. } => ApiError::field(field, e.to_string()),
        other => ApiError::from_store(other, field),
    }
}

async fn set_site(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<SiteView>, ApiError> {
    a.require_admin()?;
    let req: SiteChange = parse_json(&headers, &body)?;
    let (actor, source) = (a.actor(), a.source.to_string());
    let (s, i) = st
        .db(move |store| {
            let mut s = store.site_settings()?;
            let mut i = store.site_info()?;
            if let Some(v) = req.country_code {
                s.country_code = v.trim().to_owned();
            }
            if let Some(v) = req.area_code {
                s.area_code = v.trim().to_owned();
            }
            if let Some(v) = req.outside_prefix {
                s.outside_prefix = non_empty(v);
            }
            if let Some(v) = req.billing_tick_secs {
                s.billing_tick_secs = v;
            }
            if let Some(v) = req.allow_external_forwarding {
                s.allow_external_forwarding = v;
            }
            if let Some(v) = req.time_zone {
                i.time_zone = v.trim().to_owned();
            }
            if let Some(v) = req.emergency_address {
                i.emergency_address = v.map(|a| EmergencyAddress {
                    street: a.street,
                    postal_code: a.postal_code,
                    city: a.city,
                    details: a.details,
                });
            }
            let by = AuditCtx {
                actor: &actor,
                source: &source,
                now_unix: unix_now(),
            };
            store.set_site_profile(&by, &s, &i)?;
            Ok((store.site_settings()?, store.site_info()?))
        })
        .await
        .map_err(site_field)?;
    Ok(Json(site_view(s, i)))
}

// ---- users and own settings -----------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleChange {
    role: String,
}

async fn set_role(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<UserView>, ApiError> {
    a.require_admin()?;
    let req: RoleChange = parse_json(&headers, &body)?;
    let role = Role::parse(&req.role)
        .ok_or_else(|| ApiError::field("role", "role must be \"admin\" or \"user\""))?;
    // Also keeps at least one administrator: the one asking.
    if name == a.user.username && role != Role::Admin {
        return Err(ApiError::Conflict(
            "you cannot revoke your own administrator rights".into(),
        ));
    }
    let who = name.clone();
    let user = change(&st, &a, "username", move |s, by| {
        s.set_web_user_role(by, &who, role)?;
        s.get_web_user(&who)
    })
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("user {name} does not exist")))?;
    Ok(Json(UserView::from(&user)))
}

/// What a user may change of their own extension: forwarding and do-not-disturb.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MySettings {
    #[serde(default)]
    extension: Option<String>,
    dnd: bool,
    forward_always: Option<String>,
    forward_busy: Option<String>,
    forward_noanswer: Option<String>,
    forward_noanswer_secs: u32,
}

fn own_extension(a: &Authed) -> Result<String, ApiError> {
    a.user.extension.clone().ok_or_else(|| {
        ApiError::Conflict("no extension is linked to your account; ask an administrator".into())
    })
}

async fn my_settings(State(st): State<AppState>, a: Authed) -> Result<Json<MySettings>, ApiError> {
    let ext = own_extension(&a)?;
    let e = ext.clone();
    let s = read(&st, move |s| s.call_settings(&e)).await?;
    Ok(Json(MySettings {
        extension: Some(ext),
        dnd: s.dnd,
        forward_always: target_text(&s.forward_always),
        forward_busy: target_text(&s.forward_busy),
        forward_noanswer: target_text(&s.forward_noanswer),
        forward_noanswer_secs: s.forward_noanswer_secs,
    }))
}

async fn set_my_settings(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<MySettings>, ApiError> {
    let ext = own_extension(&a)?;
    let req: MySettings = parse_json(&headers, &body)?;
    if req.extension.as_deref().is_some_and(|e| e != ext) {
        return Err(ApiError::forbidden(
            "you can change only your own extension",
        ));
    }
    let always = parse_target("forward_always", req.forward_always)?;
    let busy = parse_target("forward_busy", req.forward_busy)?;
    let noanswer = parse_target("forward_noanswer", req.forward_noanswer)?;
    let e = ext.clone();
    let (dnd, secs) = (req.dnd, req.forward_noanswer_secs);
    let fields = CallSettings {
        forward_always: always.clone(),
        forward_busy: busy.clone(),
        forward_noanswer: noanswer.clone(),
        ..CallSettings::default()
    };
    let s = change(&st, &a, "settings", move |s, by| {
        // Class, CLIR and pickup group stay as the administrator set them.
        let mut cs = s.call_settings(&e)?;
        cs.dnd = dnd;
        cs.forward_always = always;
        cs.forward_busy = busy;
        cs.forward_noanswer = noanswer;
        cs.forward_noanswer_secs = secs;
        s.set_call_settings(by, &e, &cs)?;
        s.call_settings(&e)
    })
    .await
    .map_err(|e| target_field(&fields, e))?;
    Ok(Json(MySettings {
        extension: Some(ext),
        dnd: s.dnd,
        forward_always: target_text(&s.forward_always),
        forward_busy: target_text(&s.forward_busy),
        forward_noanswer: target_text(&s.forward_noanswer),
        forward_noanswer_secs: s.forward_noanswer_secs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_and_refuse_garbage() {
        let uri: Uri = "/api/v1/cdr?number=%2B49211&disposition=busy&limit=5&since_ms="
            .parse()
            .expect("uri");
        let p = cdr_params(&uri, true).expect("params");
        assert_eq!(p.filter.number.as_deref(), Some("+49211"));
        assert_eq!(p.filter.disposition, Some(Disposition::Busy));
        assert_eq!((p.limit, p.offset, p.filter.since_ms), (5, 0, None));
        for (q, field) in [
            ("limit=0", Some("limit")),
            ("limit=9999", Some("limit")),
            ("number=1%27%20OR%201", Some("number")),
            ("disposition=lost", Some("disposition")),
            ("since_ms=abc", Some("since_ms")),
            ("since_ms=10&until_ms=5", Some("until_ms")),
            ("bogus=1", None),
            ("number=%zz", Some("query")),
        ] {
            let uri: Uri = format!("/api/v1/cdr?{q}").parse().expect("uri");
            match cdr_params(&uri, true) {
                Err(ApiError::BadRequest { field: f, .. }) => assert_eq!(f, field, "{q}"),
                other => panic!("{q}: {:?}", other.err()),
            }
        }
        // The CSV export has no paging parameters.
        let uri: Uri = "/api/v1/cdr.csv?limit=5".parse().expect("uri");
        assert!(cdr_params(&uri, false).is_err());
    }

    #[test]
    fn aor_user_part() {
        assert_eq!(aor_user("sip:101@pbx.local"), "101");
        assert_eq!(aor_user("sips:102@pbx.local"), "102");
        assert_eq!(aor_user("103"), "103");
    }
}
