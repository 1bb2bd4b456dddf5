//! The HTTP side of the daemon; the only module that knows HTTP.
//!
//! - HTTPS ([`serve_https`], `--https-listen`): the JSON API under `/api/v1/` with
//!   accounts, sessions, CSRF protection, login throttling and roles ([`api`]), described
//!   by `/api/v1/openapi.json` ([`openapi`]). TLS uses the device identity ([`crate::tls`]).
//!   The PBX's configuration and records ([`api_pbx`]), live status by server-sent events
//!   ([`events`]), and the web UI itself at `/` ([`pages`]).
//! - Plain HTTP ([`serve_http`], `--http-listen`): `GET /api/v1/health` for test rigs;
//!   every other request is redirected (308) to the same path over HTTPS.

pub mod api;
pub mod api_admin;
pub mod api_certificate;
pub mod api_dial;
pub mod api_firmware;
pub mod api_gsm;
pub mod api_pbx;
pub mod api_ports;
pub mod api_trunks;
pub mod api_user;
pub mod auth;
pub mod device_cert;
pub mod error;
pub mod events;
pub mod openapi;
pub mod pages;
pub mod security;
pub mod session;
pub mod setup;
pub mod throttle;
pub mod tls_server;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use self::api::AppState;
use self::error::ApiError;

/// Largest request body accepted (JSON forms are small).
pub const MAX_BODY: usize = 16 * 1024;

/// Live figures the status API reports.
#[derive(Debug, Clone)]
pub struct Status {
    /// Where SIP listens.
    pub sip: SocketAddr,
    /// Current registrar bindings.
    pub bindings: Arc<AtomicUsize>,
    /// Calls in progress.
    pub calls: Arc<AtomicUsize>,
    /// Emergency calls in progress.
    pub emergency_calls: Arc<AtomicUsize>,
}

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    sip: String,
    registrations: usize,
    calls: usize,
    /// `pbxctl update install` refuses while this is not zero, even with `--force`.
    emergency_calls: usize,
}

/// The plain-HTTP router: `GET /api/v1/health`; everything else answers 308 with the
/// same path on HTTPS port `https_port`.
pub fn http_router(status: Status, https_port: u16) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .with_state(status)
        .fallback(move |req: Request| async move { redirect(&req, https_port) })
        .layer(from_fn(security::http_layer))
}

/// The HTTPS router: the API from [`api::routes`] and the UI's files from
/// [`pages::routes`].
pub fn https_router(state: AppState) -> Router {
    let mut router = Router::new();
    for (_, path, method_router) in api::routes() {
        router = router.route(path, method_router);
    }
    for (path, method_router) in pages::routes() {
        router = router.route(path, method_router);
    }
    router
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(from_fn(security::origin_check))
        .layer(from_fn(security::https_layer))
        .with_state(state)
}

/// The host part of a `Host` header (name, IPv4 or bracketed IPv6), if well-formed.
fn host_of(host: &str) -> Option<&str> {
    let name = if host.starts_with('[') {
        &host[..=host.find(']')?]
    } else {
        host.split(':').next()?
    };
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    ok.then_some(name)
}

fn redirect(req: &Request, https_port: u16) -> Response {
    let Some(host) = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(host_of)
    else {
        return ApiError::field("Host", "missing or invalid Host header").into_response();
    };
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = format!("https://{host}{port}{path}");
    match HeaderValue::try_from(location) {
        Ok(v) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, v)]).into_response(),
        Err(_) => ApiError::field("path", "invalid request path").into_response(),
    }
}

async fn health(State(s): State<Status>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        sip: s.sip.to_string(),
        registrations: s.bindings.load(Ordering::Relaxed),
        calls: s.calls.load(Ordering::Relaxed),
        emergency_calls: s.emergency_calls.load(Ordering::Relaxed),
    })
}

/// Serves plain HTTP (health and redirects) on `listener` until the task is stopped.
pub async fn serve_http(
    listener: Arc<tokio::net::TcpListener>,
    status: Status,
    https_port: u16,
) -> anyhow::Result<()> {
    let app = http_router(status, https_port);
    // axum wants to own the listener; it is re-created from the shared std socket so a
    // restarted task can serve on the same port.
    let std_listener = listener_clone(&listener)?;
    axum::serve(std_listener, app).await?;
    Ok(())
}

/// Serves the HTTPS API with `tls` until the task is stopped: on `listener`, or, if
/// binding failed at start, on a new socket bound to `addr` (an error if still busy, so
/// the supervisor retries with back-off).
pub async fn serve_https(
    listener: Option<Arc<tokio::net::TcpListener>>,
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    state: AppState,
) -> anyhow::Result<()> {
    let listener = match listener {
        Some(l) => listener_clone(&l)?,
        None => tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen for HTTPS on {addr}: {e}"))?,
    };
    tls_server::serve_tls(listener, tls, https_router(state)).await
}

/// The TLS configuration for HTTPS: the device identity (generated at first start if
/// missing) offering HTTP/1.1 by ALPN.
pub fn https_tls_config(
    data_dir: &std::path::Path,
    hostnames: &[String],
) -> Result<Arc<rustls::ServerConfig>, crate::tls::TlsError> {
    let paths = crate::tls::TlsPaths::in_data_dir(data_dir);
    let base = crate::tls::server_config(&paths, hostnames)?;
    let mut cfg = (*base).clone();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Like [`https_tls_config`], with the certificate served through a
/// [`device_cert::DeviceCert`] that an upload can swap while pbxd runs (hand it to
/// [`api::WebState::configure_certificate`]).
pub fn https_tls_reloadable(
    data_dir: &std::path::Path,
    hostnames: &[String],
) -> Result<(Arc<rustls::ServerConfig>, Arc<device_cert::DeviceCert>), crate::tls::TlsError> {
    let cert = device_cert::DeviceCert::load(data_dir, hostnames)?;
    Ok((cert.server_config()?, cert))
}

fn listener_clone(l: &tokio::net::TcpListener) -> std::io::Result<tokio::net::TcpListener> {
    let fd = socket2::SockRef::from(l).try_clone()?;
    let std: std::net::TcpListener = fd.into();
    std.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(std)
}
