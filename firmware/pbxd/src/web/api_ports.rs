//! Analog ports over the API (administrators only): each port's settings with the values
//! in force, and its live state as pbxd last wrote it (`port_status`).
//!
//! A change goes through `pbxctl port set`'s code ([`crate::line::cli::apply_set`], then
//! the store's audited [`crate::store::Store::set_port_settings`]), so the running pbxd
//! picks it up the same way: country, caller ID and call waiting within seconds
//! ([`crate::line::ports_sync::POLL`]), the number at the next start.

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Method};
use axum::routing::{get, put, MethodRouter};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::api::{parse_json, unix_now, AppState, Authed};
use super::error::ApiError;
use crate::line::cli::{apply_set, listed_ports, PortSetArgs, Switch};
use crate::line::ports_config::{CidMode, PortProfile};
use crate::line::Country;
use crate::store::{AuditCtx, PortSettings, PortStatusRow, StoreError, MAX_PORTS};

/// The routes of this module (appended to [`super::api::routes`]).
pub(super) fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/api/v1/ports", get(list_ports)),
        (Method::PUT, "/api/v1/ports/{port}", put(set_port)),
    ]
}

/// The live state pbxd last wrote for a port.
#[derive(Debug, Serialize)]
struct LiveView {
    number: String,
    hook: String,
    linefeed: String,
    call: String,
    faulty: Option<String>,
    updated_at: i64,
}

/// A port: what is stored (`null`: the default) and what is in force.
#[derive(Debug, Serialize)]
struct PortView {
    port: u32,
    /// Stored number; `null`: pbxd's `--port-extensions`.
    number: Option<String>,
    name: Option<String>,
    /// Stored country code; `null`: DE.
    country: Option<&'static str>,
    /// Stored caller-ID mode; `null`: the country's.
    cid: Option<&'static str>,
    call_waiting: bool,
    /// The values in force: country and caller-ID mode after defaults.
    effective_country: &'static str,
    effective_cid: &'static str,
    /// `null` while pbxd has not reported this port (not running, or no such port).
    live: Option<LiveView>,
}

/// The page: its ports and the choices its form offers.
#[derive(Debug, Serialize)]
struct PortsView {
    ports: Vec<PortView>,
    countries: Vec<&'static str>,
    cid_modes: Vec<&'static str>,
}

fn view(s: PortSettings, live: Option<PortStatusRow>) -> PortView {
    let profile = PortProfile::from_settings(Some(&s));
    PortView {
        port: s.port,
        number: s.number,
        name: s.name,
        country: s.country.map(Country::code),
        cid: s.cid.map(CidMode::as_str),
        call_waiting: s.call_waiting,
        effective_country: profile.country.code(),
        effective_cid: profile.cid.as_str(),
        live: live.map(|r| LiveView {
            number: r.number,
            hook: r.hook,
            linefeed: r.linefeed,
            call: r.call,
            faulty: r.faulty,
            updated_at: r.updated_at,
        }),
    }
}

/// Every port that has settings or live state (as `pbxctl ports` lists them).
async fn list_ports(State(st): State<AppState>, a: Authed) -> Result<Json<PortsView>, ApiError> {
    a.require_admin()?;
    let (settings, mut status) = st
        .db(|s| Ok((s.port_settings()?, s.port_statuses()?)))
        .await
        .map_err(|e| ApiError::from_store(e, "port"))?;
    let out = listed_ports(&settings, &status)
        .into_iter()
        .map(|port| {
            let set = settings
                .iter()
                .find(|s| s.port == port)
                .cloned()
                .unwrap_or_else(|| PortSettings::new(port));
            let live = status
                .iter()
                .position(|r| r.port == port)
                .map(|i| status.swap_remove(i));
            view(set, live)
        })
        .collect();
    Ok(Json(PortsView {
        ports: out,
        countries: Country::ALL.iter().map(|c| c.code()).collect(),
        cid_modes: CidMode::ALL.iter().map(|m| m.as_str()).collect(),
    }))
}

/// A change: only the fields sent change. An empty `number`, `country` or `cid` (or
/// `"default"`) returns it to the default; an empty `name` removes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortForm {
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    cid: Option<String>,
    #[serde(default)]
    call_waiting: Option<bool>,
}

fn or_default(v: Option<String>, default: &str) -> Option<String> {
    v.map(|s| {
        let s = s.trim();
        if s.is_empty() {
            default.to_owned()
        } else {
            s.to_owned()
        }
    })
}

async fn set_port(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(port): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<PortView>, ApiError> {
    a.require_admin()?;
    let port = port
        .parse::<u32>()
        .ok()
        .filter(|p| (1..=MAX_PORTS).contains(p))
        .ok_or_else(|| {
            ApiError::NotFound(format!("{port} is not a port number (1 to {MAX_PORTS})"))
        })?;
    let f: PortForm = parse_json(&headers, &body)?;
    let args = PortSetArgs {
        port,
        number: or_default(f.number, "default"),
        name: or_default(f.name, "none"),
        country: or_default(f.country, "default"),
        cid: or_default(f.cid, "default"),
        call_waiting: f
            .call_waiting
            .map(|on| if on { Switch::On } else { Switch::Off }),
    };
    let (actor, source) = (a.actor(), a.source.to_string());
    let saved = st
        .db(move |s| {
            // Read, change and write under the one store lock, as pbxctl does in its
            // process: a concurrent change is never half-merged.
            let current = s.port_setting(port)?;
            let next = match apply_set(current, &args) {
                Ok(n) => n,
                Err(e) => return Ok(Err(e)),
            };
            let by = AuditCtx {
                actor: &actor,
                source: &source,
                now_unix: unix_now(),
            };
            s.set_port_settings(&by, &next)?;
            let live = s.port_statuses()?.into_iter().find(|r| r.port == port);
            Ok(Ok((next, live)))
        })
        .await
        .map_err(|e| match e {
            StoreError::InvalidValue { what, reason } => {
                ApiError::field(field_of(what), format!("invalid {what}: {reason}"))
            }
            other => ApiError::from_store(other, "number"),
        })?
        .map_err(|e| ApiError::field(e.field, e.message))?;
    Ok(Json(view(saved.0, saved.1)))
}

/// The API field a store validation message is about.
fn field_of(what: &str) -> &'static str {
    match what {
        "name" | "display name" => "name",
        "port" => "port",
        _ => "number",
    }
}
