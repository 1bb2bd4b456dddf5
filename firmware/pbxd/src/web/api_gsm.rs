//! The GSM module and SMS over the API. Administrators see the module (SIM,
//! registration, signal, PIN/PUK state and attempts left), enter the PIN or PUK (stored
//! sealed by pbxctl's code, [`crate::gsm::cli::store_pin`]; never shown back), read and
//! delete the inbox. Sending an SMS is web SMS, a user feature (DOMAIN.md), so every
//! logged-in account may send, under the store's rate limits shared with `pbxctl sms send`;
//! the inbox is the box's, so only administrators read it.

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::api::{parse_json, unix_now, AppState, Authed};
use super::error::ApiError;
use crate::gsm::cli::{send_sms, store_pin, store_puk, CliError};
use crate::store::{AuditCtx, Sms, SmsDirection, StoreError};

/// SMS listed at most.
const MAX_SMS: u32 = 500;

/// The routes of this module (appended to [`super::api::routes`]).
pub(super) fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/api/v1/gsm", get(gsm_status)),
        (Method::PUT, "/api/v1/gsm/pin", put(set_pin)),
        (Method::PUT, "/api/v1/gsm/puk", put(set_puk)),
        (Method::GET, "/api/v1/sms", get(list_sms)),
        (Method::POST, "/api/v1/sms", post(send)),
        (Method::POST, "/api/v1/sms/{id}/read", post(mark_read)),
        (Method::DELETE, "/api/v1/sms/{id}", delete(remove)),
    ]
}

fn cli_err(field: &'static str) -> impl Fn(CliError) -> ApiError {
    move |e| match e {
        CliError::Usage(m) => ApiError::field(field, m),
        CliError::NotFound(m) => ApiError::NotFound(m),
        CliError::Store(StoreError::InvalidValue {
            what: "SMS",
            reason,
        }) => {
            // The rate limit: no bulk sending.
            ApiError::Conflict(reason)
        }
        CliError::Store(e) => ApiError::from_store(e, field),
        CliError::Other(m) => {
            tracing::error!("gsm: {m}");
            ApiError::Internal
        }
    }
}

#[derive(Debug, Serialize)]
struct ModuleView {
    sim: String,
    registration: String,
    operator: Option<String>,
    signal_dbm: Option<i16>,
    pin_attempts_left: Option<u8>,
    puk_attempts_left: Option<u8>,
    last_error: Option<String>,
    updated_at: i64,
}

/// The module page: status as the modem task last wrote it, and the stored secrets'
/// state (never the secrets).
#[derive(Debug, Serialize)]
struct GsmView {
    /// `null`: no module, or pbxd has not reported.
    module: Option<ModuleView>,
    pin_stored: bool,
    /// The SIM refused the stored PIN: it is never sent again; enter the right one.
    pin_rejected: bool,
    puk_stored: bool,
    puk_rejected: bool,
    gateway_confirmed: bool,
    inbound_destination: Option<String>,
    outbound_policy: &'static str,
    outbound_prefix: Option<String>,
    sms_per_minute: u32,
    sms_per_day: u32,
    sms_retention_days: u32,
    unread_sms: usize,
}

async fn gsm_status(State(st): State<AppState>, a: Authed) -> Result<Json<GsmView>, ApiError> {
    a.require_admin()?;
    let (s, status, sms) = st
        .db(|s| Ok((s.gsm_settings()?, s.gsm_status()?, s.list_sms(MAX_SMS)?)))
        .await
        .map_err(|e| ApiError::from_store(e, "gsm"))?;
    Ok(Json(GsmView {
        module: status.map(|m| ModuleView {
            sim: m.sim,
            registration: m.registration,
            operator: m.operator,
            signal_dbm: m.signal_dbm,
            pin_attempts_left: m.pin_left,
            puk_attempts_left: m.puk_left,
            last_error: m.last_error,
            updated_at: m.updated_at,
        }),
        pin_stored: s.pin_sealed.is_some(),
        pin_rejected: s.pin_sealed.is_some() && s.pin_rejected,
        puk_stored: s.puk_sealed.is_some(),
        puk_rejected: s.puk_sealed.is_some() && s.puk_rejected,
        gateway_confirmed: s.gateway_confirmed_at.is_some(),
        inbound_destination: s.inbound_destination,
        outbound_policy: s.outbound_policy.as_str(),
        outbound_prefix: s.outbound_prefix,
        sms_per_minute: s.sms_limits.per_minute,
        sms_per_day: s.sms_limits.per_day,
        sms_retention_days: s.sms_retention_days,
        unread_sms: sms
            .iter()
            .filter(|m| m.direction == SmsDirection::In && !m.read)
            .count(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinForm {
    pin: String,
    #[serde(default)]
    last_attempt: bool,
}

async fn set_pin(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    a.require_admin()?;
    let f: PinForm = parse_json(&headers, &body)?;
    let key = st.device_key.clone();
    st.db(move |s| Ok(store_pin(s, &key, f.pin.trim(), f.last_attempt, unix_now())))
        .await
        .map_err(|e| ApiError::from_store(e, "pin"))?
        .map_err(cli_err("pin"))?;
    st.audit(
        a.actor(),
        a.source,
        "gsm.pin",
        "SIM PIN stored (not shown)".into(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PukForm {
    puk: String,
    new_pin: String,
}

async fn set_puk(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    a.require_admin()?;
    let f: PukForm = parse_json(&headers, &body)?;
    let key = st.device_key.clone();
    // Field-named errors: which of the two was refused.
    let field = if pbx_hal::modem::command::Puk::new(f.puk.trim()).is_err() {
        "puk"
    } else {
        "new_pin"
    };
    st.db(move |s| {
        Ok(store_puk(
            s,
            &key,
            f.puk.trim(),
            f.new_pin.trim(),
            unix_now(),
        ))
    })
    .await
    .map_err(|e| ApiError::from_store(e, "puk"))?
    .map_err(|e| match e {
        CliError::Usage(m) if m.contains("rejected this PUK") => ApiError::field("puk", m),
        other => cli_err(field)(other),
    })?;
    st.audit(
        a.actor(),
        a.source,
        "gsm.puk",
        "SIM PUK and new PIN stored (not shown)".into(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize)]
struct SmsView {
    id: i64,
    direction: &'static str,
    peer: String,
    at: i64,
    text: String,
    parts: u32,
    read: bool,
    status: &'static str,
    error: Option<String>,
}

impl From<Sms> for SmsView {
    fn from(s: Sms) -> Self {
        SmsView {
            id: s.id,
            direction: match s.direction {
                SmsDirection::In => "in",
                SmsDirection::Out => "out",
            },
            peer: s.peer,
            at: s.at,
            text: s.text,
            parts: s.parts,
            read: s.read,
            status: s.status.as_str(),
            error: s.error,
        }
    }
}

fn limit_of(uri: &Uri) -> Result<u32, ApiError> {
    let mut limit = 100;
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("limit", v)) => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_SMS).contains(l))
                    .ok_or_else(|| ApiError::field("limit", "limit must be 1 to 500"))?;
            }
            _ => {
                return Err(ApiError::BadRequest {
                    field: None,
                    message: format!("unknown query parameter {pair:?}"),
                })
            }
        }
    }
    Ok(limit)
}

async fn list_sms(
    State(st): State<AppState>,
    a: Authed,
    uri: Uri,
) -> Result<Json<Vec<SmsView>>, ApiError> {
    a.require_admin()?;
    let limit = limit_of(&uri)?;
    let list = st
        .db(move |s| s.list_sms(limit))
        .await
        .map_err(|e| ApiError::from_store(e, "sms"))?;
    Ok(Json(list.into_iter().map(SmsView::from).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendForm {
    number: String,
    text: String,
}

#[derive(Serialize)]
struct Queued {
    id: i64,
    parts: u32,
}

async fn send(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    let f: SendForm = parse_json(&headers, &body)?;
    let number = f.number.trim().to_owned();
    let field = if crate::gsm::sms::check(&number, "x").is_err() {
        "number"
    } else {
        "text"
    };
    let actor = a.actor();
    let (to, by) = (number.clone(), actor.clone());
    let (id, parts) = st
        .db(move |s| Ok(send_sms(s, &to, &f.text, &by, unix_now())))
        .await
        .map_err(|e| ApiError::from_store(e, field))?
        .map_err(cli_err(field))?;
    st.audit(
        actor,
        a.source,
        "sms.send",
        format!("id={id} to={number} parts={parts}"),
    )
    .await;
    Ok((StatusCode::CREATED, Json(Queued { id, parts })))
}

fn sms_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::field("id", "SMS id must be a number"))
}

async fn mark_read(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(id): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    a.require_admin()?;
    let id = sms_id(&id)?;
    let found = st
        .db(move |s| s.mark_sms_read(id))
        .await
        .map_err(|e| ApiError::from_store(e, "id"))?;
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no SMS {id}")))
    }
}

async fn remove(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(id): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    a.require_admin()?;
    let id = sms_id(&id)?;
    let (actor, source) = (a.actor(), a.source.to_string());
    let found = st
        .db(move |s| {
            let by = AuditCtx {
                actor: &actor,
                source: &source,
                now_unix: unix_now(),
            };
            s.delete_sms(&by, id)
        })
        .await
        .map_err(|e| match e {
            StoreError::InvalidValue {
                what: "SMS",
                reason,
            } => ApiError::Conflict(reason),
            other => ApiError::from_store(other, "id"),
        })?;
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no SMS {id}")))
    }
}
