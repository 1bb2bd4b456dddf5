//! Trunks and numbers over the API (administrators only): provider accounts with their
//! live registration status, the account's numbers (DID → destination, allowed caller-ID
//! extensions), the site's emergency caller ID and address, and the toll-fraud limits.
//!
//! Validation, sealing and storage are pbxctl's ([`crate::store::validate_trunk`],
//! [`crate::trunk::cli::seal_password`], the store's audited writes). A trunk's password
//! is write-only: no answer ever carries it, not even sealed.

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::api::{parse_json, unix_now, AppState, Authed};
use super::error::ApiError;
use crate::store::{
    AuditCtx, EmergencySettings, SrtpMode, StoreError, StoredTrunk, TollFraudSettings,
    TrunkAccount, TrunkNumber, TrunkStatusRow, TrunkTransport, DEFAULT_MAX_CALLS,
    DEFAULT_REGISTER_SECS,
};
use crate::trunk::cli::{default_domain, seal_password};

/// The routes of this module (appended to [`super::api::routes`]).
pub(super) fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/api/v1/trunks", get(list_trunks)),
        (Method::POST, "/api/v1/trunks", post(add_trunk)),
        (Method::PUT, "/api/v1/trunks/{name}", put(update_trunk)),
        (
            Method::DELETE,
            "/api/v1/trunks/{name}",
            delete(remove_trunk),
        ),
        (Method::GET, "/api/v1/trunk-numbers", get(list_numbers)),
        (Method::POST, "/api/v1/trunk-numbers", post(add_number)),
        (
            Method::DELETE,
            "/api/v1/trunk-numbers/{number}",
            delete(remove_number),
        ),
        (Method::GET, "/api/v1/trunk-settings", get(get_settings)),
        (Method::PUT, "/api/v1/trunk-settings", put(set_settings)),
    ]
}

/// The API field a store validation message is about (the store names fields in words).
fn field_of(what: &str) -> &'static str {
    match what {
        "trunk name" => "name",
        "registrar" => "registrar",
        "domain" => "domain",
        "outbound proxy" => "proxy",
        "SIP user" => "user",
        "auth user" => "auth_user",
        "transport" => "transport",
        "srtp" => "srtp",
        "registration interval" => "register_secs",
        "max calls" => "max_calls",
        "number" => "number",
        "destination" => "destination",
        "caller" => "callers",
        "emergency caller ID" => "emergency.caller_id",
        "emergency address" => "emergency.address",
        "calls per minute" => "toll_fraud.calls_per_minute",
        "concurrent calls per user" => "toll_fraud.user_concurrent",
        _ => "",
    }
}

/// A store error on this page as the client sees it (field-named, 404, 409).
fn store_err(fallback: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |e| match e {
        StoreError::InvalidValue { what, reason } => {
            let f = field_of(what);
            ApiError::field(
                if f.is_empty() { fallback } else { f },
                format!("invalid {what}: {reason}"),
            )
        }
        StoreError::UnknownTrunk(_) => ApiError::NotFound(e.to_string()),
        StoreError::DuplicateTrunk(_) => ApiError::Conflict(e.to_string()),
        other => ApiError::from_store(other, fallback),
    }
}

fn ctx<'a>(actor: &'a str, source: &'a str) -> AuditCtx<'a> {
    AuditCtx {
        actor,
        source,
        now_unix: unix_now(),
    }
}

/// A trunk's last reported registration state.
#[derive(Debug, Serialize)]
struct StatusView {
    state: String,
    reason: String,
    registered_until: Option<i64>,
    public_addr: Option<String>,
    since: i64,
    updated_at: i64,
}

impl From<TrunkStatusRow> for StatusView {
    fn from(r: TrunkStatusRow) -> Self {
        StatusView {
            state: r.state,
            reason: r.reason,
            registered_until: r.registered_until,
            public_addr: r.public_addr,
            since: r.since,
            updated_at: r.updated_at,
        }
    }
}

/// A trunk as the API shows it: never the password, only that one is stored.
#[derive(Debug, Serialize)]
struct TrunkView {
    name: String,
    enabled: bool,
    registrar: String,
    domain: String,
    proxy: Option<String>,
    user: String,
    auth_user: String,
    transport: &'static str,
    srtp: &'static str,
    register_secs: u32,
    max_calls: u32,
    password_set: bool,
    /// `null` while pbxd has not reported (or the trunk is disabled).
    status: Option<StatusView>,
    created_at: i64,
    updated_at: i64,
}

fn view(s: StoredTrunk, status: Option<TrunkStatusRow>) -> TrunkView {
    let t = s.account;
    TrunkView {
        password_set: !s.password_sealed.is_empty(),
        status: status.map(StatusView::from),
        name: t.name,
        enabled: t.enabled,
        registrar: t.registrar,
        domain: t.domain,
        proxy: t.proxy,
        user: t.user,
        auth_user: t.auth_user,
        transport: t.transport.as_str(),
        srtp: t.srtp.as_str(),
        register_secs: t.register_secs,
        max_calls: t.max_calls,
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

async fn list_trunks(
    State(st): State<AppState>,
    a: Authed,
) -> Result<Json<Vec<TrunkView>>, ApiError> {
    a.require_admin()?;
    let (trunks, mut statuses) = st
        .db(|s| Ok((s.list_trunks()?, s.trunk_statuses()?)))
        .await
        .map_err(store_err("name"))?;
    let out = trunks
        .into_iter()
        .map(|t| {
            let status = statuses
                .iter()
                .position(|r| r.name == t.account.name)
                .map(|i| statuses.swap_remove(i))
                .filter(|_| t.account.enabled);
            view(t, status)
        })
        .collect();
    Ok(Json(out))
}

/// The form of a trunk. On add, omitted fields take pbxctl's defaults; on change, the
/// whole account is sent and a missing `password` keeps the stored one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrunkForm {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    registrar: String,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    proxy: Option<String>,
    user: String,
    #[serde(default)]
    auth_user: Option<String>,
    #[serde(default)]
    transport: Option<String>,
    #[serde(default)]
    srtp: Option<String>,
    #[serde(default)]
    register_secs: Option<u32>,
    #[serde(default)]
    max_calls: Option<u32>,
    #[serde(default)]
    password: Option<String>,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The account the form describes (validated by the store's shared check).
fn account(name: String, f: TrunkForm) -> Result<TrunkAccount, ApiError> {
    let registrar = f.registrar.trim().to_owned();
    let user = f.user.trim().to_owned();
    let domain = match non_empty(f.domain) {
        Some(d) => d,
        None => default_domain(&registrar).map_err(store_err("registrar"))?,
    };
    let t = TrunkAccount {
        name,
        enabled: f.enabled.unwrap_or(true),
        registrar,
        domain,
        proxy: non_empty(f.proxy),
        auth_user: non_empty(f.auth_user).unwrap_or_else(|| user.clone()),
        user,
        transport: match non_empty(f.transport) {
            Some(t) => TrunkTransport::parse(&t).map_err(store_err("transport"))?,
            None => TrunkTransport::Udp,
        },
        srtp: match non_empty(f.srtp) {
            Some(s) => crate::store::parse_srtp_mode(&s).map_err(store_err("srtp"))?,
            None => SrtpMode::Off,
        },
        register_secs: f.register_secs.unwrap_or(DEFAULT_REGISTER_SECS),
        max_calls: f.max_calls.unwrap_or(DEFAULT_MAX_CALLS),
    };
    crate::store::validate_trunk(&t).map_err(store_err("name"))?;
    Ok(t)
}

fn sealed(st: &AppState, name: &str, pw: &str) -> Result<String, ApiError> {
    seal_password(&st.device_key, name, pw).map_err(|e| {
        if e.code == 2 {
            ApiError::field("password", e.message)
        } else {
            tracing::error!("trunk {name}: {}", e.message);
            ApiError::Internal
        }
    })
}

async fn add_trunk(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<TrunkView>), ApiError> {
    a.require_admin()?;
    let mut f: TrunkForm = parse_json(&headers, &body)?;
    let name = f
        .name
        .take()
        .map(|n| n.trim().to_owned())
        .unwrap_or_default();
    let password = f
        .password
        .take()
        .ok_or_else(|| ApiError::field("password", "the provider's password is required"))?;
    let t = account(name, f)?;
    let pw = sealed(&st, &t.name, &password)?;
    let (actor, source) = (a.actor(), a.source.to_string());
    let stored = st
        .db(move |s| {
            s.add_trunk(&ctx(&actor, &source), &t, &pw)?;
            s.get_trunk(&t.name)
        })
        .await
        .map_err(store_err("name"))?
        .ok_or(ApiError::Internal)?;
    Ok((StatusCode::CREATED, Json(view(stored, None))))
}

async fn update_trunk(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<TrunkView>, ApiError> {
    a.require_admin()?;
    let mut f: TrunkForm = parse_json(&headers, &body)?;
    if f.name.as_ref().is_some_and(|n| n.trim() != name) {
        return Err(ApiError::field(
            "name",
            "a trunk cannot be renamed; remove it and add it again",
        ));
    }
    let password = non_empty(f.password.take());
    let t = account(name.clone(), f)?;
    let pw = password.map(|p| sealed(&st, &t.name, &p)).transpose()?;
    let (actor, source) = (a.actor(), a.source.to_string());
    let stored = st
        .db(move |s| {
            s.update_trunk(&ctx(&actor, &source), &t, pw.as_deref())?;
            s.get_trunk(&t.name)
        })
        .await
        .map_err(store_err("name"))?
        .ok_or(ApiError::Internal)?;
    Ok(Json(view(stored, None)))
}

async fn remove_trunk(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(name): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    a.require_admin()?;
    let (actor, source) = (a.actor(), a.source.to_string());
    st.db(move |s| s.remove_trunk(&ctx(&actor, &source), &name))
        .await
        .map_err(store_err("name"))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberView {
    trunk: String,
    number: String,
    #[serde(default)]
    destination: Option<String>,
    /// Extensions that may send it as caller ID; `"*"`: every extension.
    #[serde(default)]
    callers: Vec<String>,
    #[serde(default)]
    is_default: bool,
}

impl From<TrunkNumber> for NumberView {
    fn from(n: TrunkNumber) -> Self {
        NumberView {
            trunk: n.trunk,
            number: n.number,
            destination: n.destination,
            callers: n.callers,
            is_default: n.is_default,
        }
    }
}

async fn list_numbers(
    State(st): State<AppState>,
    a: Authed,
) -> Result<Json<Vec<NumberView>>, ApiError> {
    a.require_admin()?;
    let numbers = st
        .db(|s| s.trunk_numbers(None))
        .await
        .map_err(store_err("number"))?;
    Ok(Json(numbers.into_iter().map(NumberView::from).collect()))
}

async fn add_number(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<NumberView>), ApiError> {
    a.require_admin()?;
    let v: NumberView = parse_json(&headers, &body)?;
    let n = TrunkNumber {
        trunk: v.trunk.trim().to_owned(),
        number: v.number.trim().to_owned(),
        destination: non_empty(v.destination),
        callers: v
            .callers
            .iter()
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect(),
        is_default: v.is_default,
    };
    let (actor, source) = (a.actor(), a.source.to_string());
    let saved = st
        .db(move |s| {
            // A number belongs to an account that exists (pbxctl cannot check this
            // before the trunk is added; the page can).
            if s.get_trunk(&n.trunk)?.is_none() {
                return Err(StoreError::UnknownTrunk(n.trunk.clone()));
            }
            s.add_trunk_number(&ctx(&actor, &source), &n)?;
            Ok(n)
        })
        .await
        .map_err(|e| match e {
            StoreError::UnknownTrunk(t) => {
                ApiError::field("trunk", format!("there is no trunk named {t:?}"))
            }
            other => store_err("number")(other),
        })?;
    Ok((StatusCode::CREATED, Json(NumberView::from(saved))))
}

async fn remove_number(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(number): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    a.require_admin()?;
    let (actor, source, n) = (a.actor(), a.source.to_string(), number.clone());
    let removed = st
        .db(move |s| s.remove_trunk_number(&ctx(&actor, &source), &n))
        .await
        .map_err(store_err("number"))?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "{number} is not one of the account's numbers"
        )))
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmergencyView {
    caller_id: Option<String>,
    address: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FraudView {
    enabled: bool,
    calls_per_minute: u32,
    user_concurrent: u32,
}

/// Site-wide trunk settings: emergency caller ID and address, toll-fraud limits.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsView {
    emergency: EmergencyView,
    toll_fraud: FraudView,
}

fn settings_view(e: EmergencySettings, f: TollFraudSettings) -> SettingsView {
    SettingsView {
        emergency: EmergencyView {
            caller_id: e.caller_id,
            address: e.address,
        },
        toll_fraud: FraudView {
            enabled: f.enabled,
            calls_per_minute: f.calls_per_minute,
            user_concurrent: f.user_concurrent,
        },
    }
}

async fn get_settings(
    State(st): State<AppState>,
    a: Authed,
) -> Result<Json<SettingsView>, ApiError> {
    a.require_admin()?;
    let (e, f) = st
        .db(|s| Ok((s.emergency_settings()?, s.toll_fraud()?)))
        .await
        .map_err(store_err("emergency"))?;
    Ok(Json(settings_view(e, f)))
}

async fn set_settings(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<SettingsView>, ApiError> {
    a.require_admin()?;
    let v: SettingsView = parse_json(&headers, &body)?;
    let e = EmergencySettings {
        caller_id: non_empty(v.emergency.caller_id),
        address: non_empty(v.emergency.address),
    };
    let f = TollFraudSettings {
        enabled: v.toll_fraud.enabled,
        calls_per_minute: v.toll_fraud.calls_per_minute,
        user_concurrent: v.toll_fraud.user_concurrent,
    };
    let (actor, source) = (a.actor(), a.source.to_string());
    let (e, f) = st
        .db(move |s| {
            // Both or neither: check the limits before the emergency values are written.
            if !(1..=1000).contains(&f.calls_per_minute) {
                return Err(StoreError::InvalidValue {
                    what: "calls per minute",
                    reason: "must be 1 to 1000".into(),
                });
            }
            if !(1..=100).contains(&f.user_concurrent) {
                return Err(StoreError::InvalidValue {
                    what: "concurrent calls per user",
                    reason: "must be 1 to 100".into(),
                });
            }
            let by = ctx(&actor, &source);
            s.set_emergency_settings(&by, &e)?;
            s.set_toll_fraud(&by, &f)?;
            Ok((s.emergency_settings()?, s.toll_fraud()?))
        })
        .await
        .map_err(store_err("emergency"))?;
    Ok(Json(settings_view(e, f)))
}
