//! The HTTPS certificate over the API (administrators only): what is served, an upload
//! of the installer's own chain and key ([`super::device_cert::check`]: parses, key
//! matches, valid now; nothing replaced on failure), and the way back to a generated
//! certificate. Both changes are audited and served to new connections at once.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method};
use axum::routing::{delete, get, put, MethodRouter};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::api::{parse_json, unix_now, AppState, Authed};
use super::device_cert::{check, CertInfo};
use super::error::ApiError;

/// Largest upload: a long chain and an RSA-4096 key fit with room to spare.
pub const MAX_UPLOAD: usize = 64 * 1024;

/// The routes of this module (appended to [`super::api::routes`]).
pub(super) fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/api/v1/certificate", get(show)),
        (
            Method::PUT,
            "/api/v1/certificate",
            put(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        ),
        (Method::DELETE, "/api/v1/certificate", delete(regenerate)),
    ]
}

#[derive(Debug, Serialize)]
struct CertView {
    /// `uploaded` or `generated`.
    source: &'static str,
    sha256: String,
    not_before: i64,
    not_after: i64,
    chain_len: usize,
    /// SIP over TLS reads the files at start: it serves a change after a restart.
    sip_tls_restart_needed: bool,
}

fn view(i: CertInfo, changed: bool) -> CertView {
    CertView {
        source: if i.uploaded { "uploaded" } else { "generated" },
        sha256: i.sha256,
        not_before: i.not_before,
        not_after: i.not_after,
        chain_len: i.chain_len,
        sip_tls_restart_needed: changed,
    }
}

fn live(st: &AppState) -> Result<&std::sync::Arc<super::device_cert::DeviceCert>, ApiError> {
    st.certificate.get().ok_or_else(|| {
        tracing::error!("the HTTPS certificate resolver is not configured");
        ApiError::Internal
    })
}

async fn show(State(st): State<AppState>, a: Authed) -> Result<Json<CertView>, ApiError> {
    a.require_admin()?;
    Ok(Json(view(live(&st)?.info(), false)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Upload {
    /// PEM chain, leaf first.
    certificate: String,
    /// PEM private key of the leaf.
    key: String,
}

async fn upload(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<CertView>, ApiError> {
    a.require_admin()?;
    let u: Upload = parse_json(&headers, &body)?;
    let checked = check(&u.certificate, &u.key, unix_now())
        .map_err(|e| ApiError::field(e.field(), e.to_string()))?;
    let dc = live(&st)?.clone();
    let info = tokio::task::spawn_blocking(move || dc.install(checked))
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|e| {
            tracing::error!("cannot store the uploaded certificate: {e}");
            ApiError::Internal
        })?;
    st.audit(
        a.actor(),
        a.source,
        "certificate.upload",
        format!("sha256 {} valid until {}", info.sha256, info.not_after),
    )
    .await;
    Ok(Json(view(info, true)))
}

async fn regenerate(State(st): State<AppState>, a: Authed) -> Result<Json<CertView>, ApiError> {
    a.require_admin()?;
    let dc = live(&st)?.clone();
    let info = tokio::task::spawn_blocking(move || dc.regenerate())
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|e| {
            tracing::error!("cannot generate a certificate: {e}");
            ApiError::Internal
        })?;
    st.audit(
        a.actor(),
        a.source,
        "certificate.generate",
        format!("back to a generated certificate, sha256 {}", info.sha256),
    )
    .await;
    Ok(Json(view(info, true)))
}
