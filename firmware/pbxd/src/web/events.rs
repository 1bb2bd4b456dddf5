//! Live status for the dashboard: `GET /api/v1/status` (one snapshot) and
//! `GET /api/v1/events` (server-sent events: a `status` event at once and every
//! [`EVENT_INTERVAL`]). Parts of the box that are not built yet (trunk, analog ports,
//! GSM) are reported as `"not_configured"`, never with made-up figures.
//!
//! The event stream checks its session at every tick without refreshing it: an open
//! dashboard does not keep a session alive, and the stream ends when the session does
//! (logout, idle expiry, account disabled) or the account loses its admin rights.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::Method;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::{get, MethodRouter};
use axum::Json;
use serde::Serialize;

use super::api::{lock, unix_now, AppState, Authed};
use super::error::ApiError;
use crate::clock;
use crate::store::Role;

/// How often the event stream sends a fresh status.
pub const EVENT_INTERVAL: Duration = Duration::from_secs(2);

/// The routes of this module.
pub(super) fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/api/v1/status", get(status)),
        (Method::GET, "/api/v1/events", get(events)),
    ]
}

/// One registered phone.
#[derive(Debug, Serialize)]
pub struct PhoneView {
    /// The extension (user part of the address of record).
    pub extension: String,
    /// The Contact URI.
    pub contact: String,
    /// "udp", "tcp", "tls".
    pub transport: String,
    /// Where its REGISTER came from.
    pub source: String,
    /// User-Agent, if sent.
    pub user_agent: Option<String>,
    /// Seconds until the binding lapses.
    pub expires_in: i64,
}

/// The dashboard's status snapshot.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// pbxd's version.
    pub version: &'static str,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// Registrar bindings now (live counter).
    pub registrations: usize,
    /// Calls in progress now.
    pub active_calls: usize,
    /// The registered phones (from the store, which the registrar writes through).
    pub phones: Vec<PhoneView>,
    /// Trunk state: not built yet.
    pub trunk: &'static str,
    /// Analog ports: not built yet.
    pub analog_ports: &'static str,
    /// GSM module: not built yet.
    pub gsm: &'static str,
    /// Open alerts, most severe first.
    pub alerts: Vec<super::api_admin::AlertView>,
}

/// Builds a snapshot.
pub async fn snapshot(st: &AppState) -> Result<Snapshot, ApiError> {
    let now = unix_now();
    let bindings = st
        .db(move |s| s.load_bindings(now))
        .await
        .map_err(|e| ApiError::from_store(e, "status"))?;
    let phones = bindings
        .into_iter()
        .map(|b| {
            let rest = b
                .aor
                .strip_prefix("sips:")
                .or_else(|| b.aor.strip_prefix("sip:"))
                .unwrap_or(&b.aor);
            PhoneView {
                extension: rest.split('@').next().unwrap_or(rest).to_owned(),
                expires_in: b.expires_at.saturating_sub(now),
                contact: b.contact,
                transport: b.transport,
                source: b.source.to_string(),
                user_agent: b.user_agent,
            }
        })
        .collect();
    Ok(Snapshot {
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: clock::now().saturating_duration_since(st.started).as_secs(),
        registrations: st.status().bindings.load(Ordering::Relaxed),
        active_calls: st.status().calls.load(Ordering::Relaxed),
        phones,
        trunk: "not_configured",
        analog_ports: "not_configured",
        gsm: "not_configured",
        alerts: super::api_admin::open_alerts(st).await?,
    })
}

async fn status(State(st): State<AppState>, a: Authed) -> Result<Json<Snapshot>, ApiError> {
    a.require_admin()?;
    Ok(Json(snapshot(&st).await?))
}

/// Whether the stream may go on: the session is live (not refreshed by this check) and
/// its account is still an enabled administrator (rights may be revoked meanwhile).
async fn still_admin(st: &AppState, session: &str, username: &str) -> bool {
    if !lock(&st.sessions).peek(session, clock::now()) {
        return false;
    }
    let name = username.to_owned();
    matches!(
        st.db(move |s| s.get_web_user(&name)).await,
        Ok(Some(u)) if u.role == Role::Admin && !u.disabled
    )
}

async fn events(State(st): State<AppState>, a: Authed) -> Result<impl IntoResponse, ApiError> {
    a.require_admin()?;
    let session = (a.session_id.clone(), a.user.username.clone());
    let stream =
        futures_util::stream::unfold((st, session, true), |(st, session, first)| async move {
            if !first {
                tokio::time::sleep(EVENT_INTERVAL).await;
            }
            if !still_admin(&st, &session.0, &session.1).await {
                return None;
            }
            let event = match snapshot(&st).await {
                Ok(snap) => Event::default()
                    .event("status")
                    .json_data(&snap)
                    .unwrap_or_else(|_| Event::default().event("error").data("status")),
                Err(_) => Event::default().event("error").data("status unavailable"),
            };
            Some((Ok::<_, Infallible>(event), (st, session, false)))
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
