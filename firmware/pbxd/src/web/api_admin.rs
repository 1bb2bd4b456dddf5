//! Administration over the API: alerts, configuration backup and restore, deleting web
//! accounts, the user's UI language, the System page and the support bundle. The archive
//! code is the store's ([`crate::store::BACKUP_TABLES`]), shared with `pbxctl backup`.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::api::{lock, parse_json, unix_now, AppState, Authed};
use super::error::ApiError;
use super::session::Sessions;
use crate::diag::{log_tail, tar::TarWriter};
use crate::store::{
    device_id, Alert, AuditCtx, BackupError, Language, RestoreOptions, StoreError, COMPATIBLE,
    MAX_BACKUP_BYTES, SCHEMA_VERSION,
};

/// Alerts of the history shown besides the open ones.
const RECENT_ALERTS: u32 = 50;
/// Longest text accepted in a support-request field.
const MAX_SUPPORT_FIELD: usize = 2000;

/// The routes of this module (appended to [`super::api::routes`]).
pub(super) fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/api/v1/alerts", get(list_alerts)),
        (
            Method::POST,
            "/api/v1/alerts/{id}/dismiss",
            post(dismiss_alert),
        ),
        (Method::GET, "/api/v1/backup", get(backup)),
        (
            Method::POST,
            "/api/v1/restore",
            // The only route with a large body; all others keep the small default.
            post(restore).layer(DefaultBodyLimit::max(MAX_BACKUP_BYTES)),
        ),
        (Method::DELETE, "/api/v1/users/{name}", delete(delete_user)),
        (Method::PUT, "/api/v1/users/me/language", put(set_language)),
        (Method::GET, "/api/v1/system", get(system)),
        (Method::POST, "/api/v1/support-bundle", post(support_bundle)),
    ]
}

fn store_err(field: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |e| ApiError::from_store(e, field)
}

/// An alert as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    /// Row id (for dismissing).
    pub id: i64,
    /// Stable condition key.
    pub key: String,
    /// "critical", "warning" or "info".
    pub severity: &'static str,
    /// What happened and what to do.
    pub message: String,
    /// Unix seconds.
    pub raised_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// Unix seconds; `null` while open.
    pub cleared_at: Option<i64>,
}

impl From<Alert> for AlertView {
    fn from(a: Alert) -> Self {
        AlertView {
            id: a.id,
            key: a.key,
            severity: a.severity.as_str(),
            message: a.message,
            raised_at: a.raised_at,
            updated_at: a.updated_at,
            cleared_at: a.cleared_at,
        }
    }
}

/// Open alerts, most severe first (also part of the live status).
pub async fn open_alerts(st: &AppState) -> Result<Vec<AlertView>, ApiError> {
    let open = st
        .db(|s| s.open_alerts())
        .await
        .map_err(store_err("alerts"))?;
    Ok(open.into_iter().map(AlertView::from).collect())
}

#[derive(Serialize)]
struct AlertsView {
    open: Vec<AlertView>,
    recent: Vec<AlertView>,
}

async fn list_alerts(State(st): State<AppState>, a: Authed) -> Result<Json<AlertsView>, ApiError> {
    a.require_admin()?;
    let (open, recent) = st
        .db(|s| Ok((s.open_alerts()?, s.recent_alerts(RECENT_ALERTS)?)))
        .await
        .map_err(store_err("alerts"))?;
    Ok(Json(AlertsView {
        open: open.into_iter().map(AlertView::from).collect(),
        recent: recent.into_iter().map(AlertView::from).collect(),
    }))
}

fn ctx<'a>(actor: &'a str, source: &'a str) -> AuditCtx<'a> {
    AuditCtx {
        actor,
        source,
        now_unix: unix_now(),
    }
}

async fn dismiss_alert(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(id): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    a.require_admin()?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::field("id", "alert id must be a number"))?;
    let (actor, source) = (a.actor(), a.source.to_string());
    let key = st
        .db(move |s| s.dismiss_alert(&ctx(&actor, &source), id))
        .await
        .map_err(store_err("id"))?;
    match key {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError::NotFound(format!("no open alert {id}"))),
    }
}

fn backup_error(e: BackupError) -> ApiError {
    match e {
        BackupError::Store(e) => ApiError::from_store(e, "file"),
        BackupError::Foreign { .. } => ApiError::Conflict(e.to_string()),
        other => ApiError::field("file", other.to_string()),
    }
}

async fn backup(State(st): State<AppState>, a: Authed) -> Result<Response, ApiError> {
    a.require_admin()?;
    let (actor, source, key) = (a.actor(), a.source.to_string(), st.device_key.clone());
    let archive = st
        .db(move |s| {
            s.create_backup(&ctx(&actor, &source), &key)
                .map_err(|e| match e {
                    BackupError::Store(e) => e,
                    other => StoreError::BadValue {
                        what: "backup",
                        detail: other.to_string(),
                    },
                })
        })
        .await
        .map_err(store_err("backup"))?;
    let stamp = utc_stamp(unix_now());
    let disposition = format!("attachment; filename=\"pbx-backup-{stamp}.pbxbackup\"");
    let mut resp = archive.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::try_from(disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `20261121-150700` for file names.
fn utc_stamp(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}{:02}{:02}-{:02}{:02}{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => unix.to_string(),
    }
}

/// `?allow_foreign=true|false` (absent: false).
fn allow_foreign(uri: &Uri) -> Result<bool, ApiError> {
    let mut allow = false;
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        allow = match pair.split_once('=') {
            Some(("allow_foreign", "true" | "1")) => true,
            Some(("allow_foreign", "false" | "0")) => false,
            _ => {
                return Err(ApiError::field(
                    "allow_foreign",
                    "the only parameter is allow_foreign=true or false",
                ))
            }
        };
    }
    Ok(allow)
}

async fn restore(
    State(st): State<AppState>,
    a: Authed,
    uri: Uri,
    body: Bytes,
) -> Result<Json<crate::store::RestoreReport>, ApiError> {
    a.require_admin()?;
    let allow = allow_foreign(&uri)?;
    if body.is_empty() {
        return Err(ApiError::field("file", "no backup file was sent"));
    }
    let (actor, source, key) = (a.actor(), a.source.to_string(), st.device_key.clone());
    let report = tokio::task::spawn_blocking({
        let store = st.store.clone();
        let opts = RestoreOptions {
            allow_foreign: allow,
            require_accounts: true,
        };
        move || lock(&store).restore_backup(&ctx(&actor, &source), &key, &body, opts)
    })
    .await
    .map_err(|_| ApiError::Internal)?
    .map_err(backup_error)?;
    // Accounts and passwords may have changed: everyone logs in again.
    *lock(&st.sessions) = Sessions::default();
    tracing::info!(
        "configuration restored by {} (foreign={}, {} secrets dropped)",
        a.user.username,
        report.foreign,
        report.dropped_secrets.len()
    );
    Ok(Json(report))
}

async fn delete_user(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(name): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    a.require_admin()?;
    if name == a.user.username || name == "me" {
        return Err(ApiError::Conflict(
            "you cannot delete your own account".into(),
        ));
    }
    let (actor, source, who) = (a.actor(), a.source.to_string(), name.clone());
    st.db(move |s| s.delete_web_user(&ctx(&actor, &source), &who))
        .await
        .map_err(|e| match e {
            StoreError::InvalidValue { reason, .. } => ApiError::Conflict(reason),
            other => ApiError::from_store(other, "username"),
        })?;
    lock(&st.sessions).remove_user(&name, None);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LanguageChange {
    language: String,
}

async fn set_language(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let req: LanguageChange = parse_json(&headers, &body)?;
    let lang = Language::parse(&req.language).map_err(store_err("language"))?;
    let (actor, source, who) = (a.actor(), a.source.to_string(), a.user.username.clone());
    st.db(move |s| s.set_web_user_language(&ctx(&actor, &source), &who, lang))
        .await
        .map_err(store_err("language"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// One network address of the box.
#[derive(Debug, Serialize)]
struct AddressView {
    interface: String,
    address: IpAddr,
}

#[derive(Debug, Serialize)]
struct DiskView {
    path: String,
    total_bytes: u64,
    free_bytes: u64,
}

/// The System page.
#[derive(Debug, Serialize)]
struct SystemView {
    version: &'static str,
    schema_version: i64,
    compatible: &'static str,
    device_id: String,
    uptime_secs: u64,
    time_unix: i64,
    time_zone: String,
    country_code: String,
    tone_set: &'static str,
    addresses: Vec<AddressView>,
    data_partition: Option<DiskView>,
}

/// The analog ports' tone table for a country calling code (line/country.rs has DE,
/// AT, CH, GB, FR, NL, US; everything else uses Germany's, the default).
fn tone_set(country_code: &str) -> &'static str {
    match country_code {
        "49" => "DE",
        "43" => "AT",
        "41" => "CH",
        "44" => "GB",
        "33" => "FR",
        "31" => "NL",
        "1" => "US",
        _ => "DE (default)",
    }
}

fn addresses() -> Vec<AddressView> {
    let mut out: Vec<AddressView> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| AddressView {
            address: i.ip(),
            interface: i.name,
        })
        .collect();
    out.sort_by(|a, b| {
        (a.address.is_loopback(), &a.interface).cmp(&(b.address.is_loopback(), &b.interface))
    });
    out
}

// statvfs counts are u32 on 32-bit ARM and u64 here.
#[allow(clippy::useless_conversion)]
fn disk(path: &std::path::Path) -> Option<DiskView> {
    let v = nix::sys::statvfs::statvfs(path).ok()?;
    let frag = u64::from(v.fragment_size());
    Some(DiskView {
        path: path.display().to_string(),
        total_bytes: u64::from(v.blocks()).saturating_mul(frag),
        free_bytes: u64::from(v.blocks_available()).saturating_mul(frag),
    })
}

async fn system_view(st: &AppState) -> Result<SystemView, ApiError> {
    let (site, info) = st
        .db(|s| Ok((s.site_settings()?, s.site_info()?)))
        .await
        .map_err(store_err("system"))?;
    let data_dir = st.data_dir.clone();
    let (addresses, data_partition) =
        tokio::task::spawn_blocking(move || (addresses(), disk(&data_dir)))
            .await
            .map_err(|_| ApiError::Internal)?;
    Ok(SystemView {
        version: env!("CARGO_PKG_VERSION"),
        schema_version: SCHEMA_VERSION,
        compatible: COMPATIBLE,
        device_id: device_id(&st.device_key),
        uptime_secs: crate::clock::now()
            .saturating_duration_since(st.started)
            .as_secs(),
        time_unix: unix_now(),
        time_zone: info.time_zone,
        tone_set: tone_set(&site.country_code),
        country_code: site.country_code,
        addresses,
        data_partition,
    })
}

async fn system(State(st): State<AppState>, a: Authed) -> Result<Json<SystemView>, ApiError> {
    a.require_admin()?;
    Ok(Json(system_view(&st).await?))
}

/// The fields a provider's support asks for (see the domain brief).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct SupportRequest {
    affected_users: String,
    time: String,
    error_message: String,
    browser: String,
    #[serde(default)]
    plan: String,
    steps_tried: String,
}

impl SupportRequest {
    fn check(&self) -> Result<(), ApiError> {
        let fields: [(&'static str, &str, bool); 6] = [
            ("affected_users", &self.affected_users, true),
            ("time", &self.time, true),
            ("error_message", &self.error_message, true),
            ("browser", &self.browser, false),
            ("plan", &self.plan, false),
            ("steps_tried", &self.steps_tried, true),
        ];
        for (name, value, required) in fields {
            if required && value.trim().is_empty() {
                return Err(ApiError::field(name, "please fill in this field"));
            }
            if value.chars().count() > MAX_SUPPORT_FIELD {
                return Err(ApiError::field(
                    name,
                    format!("at most {MAX_SUPPORT_FIELD} characters"),
                ));
            }
        }
        Ok(())
    }
}

async fn support_bundle(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    a.require_admin()?;
    let req: SupportRequest = parse_json(&headers, &body)?;
    req.check()?;
    let system = system_view(&st).await?;
    let status = super::events::snapshot(&st).await?;
    let (config, open, recent) = st
        .db(|s| {
            Ok((
                s.config_without_secrets()?,
                s.open_alerts()?,
                s.recent_alerts(RECENT_ALERTS)?,
            ))
        })
        .await
        .map_err(store_err("support"))?;
    let alerts = serde_json::json!({
        "open": open.into_iter().map(AlertView::from).collect::<Vec<_>>(),
        "recent": recent.into_iter().map(AlertView::from).collect::<Vec<_>>(),
    });
    let now = unix_now();
    let stamp = utc_stamp(now);
    let dir = format!("pbx-support-{stamp}");
    let summary = format!(
        "PBX support request\n\
         created:        {stamp} UTC by {}\n\
         version:        pbxd {} (schema {}, {})\n\
         device:         {}\n\
         affected users: {}\n\
         time:           {}\n\
         error message:  {}\n\
         browser:        {}\n\
         plan:           {}\n\
         steps tried:    {}\n",
        a.user.username,
        system.version,
        system.schema_version,
        system.compatible,
        system.device_id,
        req.affected_users.trim(),
        req.time.trim(),
        req.error_message.trim(),
        req.browser.trim(),
        req.plan.trim(),
        req.steps_tried.trim(),
    );
    let mut log = log_tail::lines().join("\n");
    log.push('\n');
    let files: [(&str, Vec<u8>); 7] = [
        ("README.txt", summary.into_bytes()),
        ("request.json", pretty(&req)),
        ("system.json", pretty(&system)),
        ("status.json", pretty(&status)),
        ("alerts.json", pretty(&alerts)),
        ("config.json", pretty(&config)),
        ("log.txt", log.into_bytes()),
    ];
    let mtime = u64::try_from(now).unwrap_or(0);
    let mut tar = TarWriter::new();
    for (name, data) in &files {
        tar.add(&format!("{dir}/{name}"), data, mtime)
            .map_err(|e| {
                tracing::error!("support bundle: {e}");
                ApiError::Internal
            })?;
    }
    st.audit(
        a.actor(),
        a.source,
        "support.bundle",
        format!("file={dir}.tar"),
    )
    .await;
    let mut resp = tar.finish().into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    if let Ok(v) = HeaderValue::try_from(format!("attachment; filename=\"{dir}.tar\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Pretty JSON with a final newline, for the bundle's files.
fn pretty<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_default();
    out.push(b'\n');
    out
}
