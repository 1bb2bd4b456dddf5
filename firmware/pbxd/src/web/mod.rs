//! The HTTP side of the daemon. For now a status API for installers and test rigs;
//! the web UI (its own issue) grows here. The only module that knows HTTP.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

/// Live figures the status API reports.
#[derive(Debug, Clone)]
pub struct Status {
    /// Where SIP listens.
    pub sip: SocketAddr,
    /// Current registrar bindings.
    pub bindings: Arc<AtomicUsize>,
    /// Calls in progress.
    pub calls: Arc<AtomicUsize>,
}

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    sip: String,
    registrations: usize,
    calls: usize,
}

/// The router: `GET /api/v1/health`.
pub fn router(status: Status) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .with_state(status)
}

async fn health(State(s): State<Status>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        sip: s.sip.to_string(),
        registrations: s.bindings.load(Ordering::Relaxed),
        calls: s.calls.load(Ordering::Relaxed),
    })
}

/// Serves HTTP on `listener` until the task is stopped.
pub async fn serve(listener: Arc<tokio::net::TcpListener>, status: Status) -> anyhow::Result<()> {
    let app = router(status);
    // axum wants to own the listener; it is re-created from the shared std socket so a
    // restarted task can serve on the same port.
    let std_listener = listener_clone(&listener)?;
    axum::serve(std_listener, app).await?;
    Ok(())
}

fn listener_clone(l: &tokio::net::TcpListener) -> std::io::Result<tokio::net::TcpListener> {
    let fd = socket2::SockRef::from(l).try_clone()?;
    let std: std::net::TcpListener = fd.into();
    std.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(std)
}
