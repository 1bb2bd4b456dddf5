//! HTTPS: accept TCP, TLS handshake with a time limit, then one HTTP/1.1 connection
//! per stream. Each connection runs in its own task, so a slow handshake never holds up
//! others; at most [`MAX_CONNECTIONS`] are open.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;
use tracing::{debug, warn};

/// Open HTTPS connections at most (the UI of one office, plus headroom).
pub const MAX_CONNECTIONS: usize = 64;
/// A TLS handshake must finish within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's headers must arrive within this (slowloris).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` over TLS on `listener` until the task is stopped.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // e.g. EMFILE: back off instead of spinning.
                warn!("https accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "https: too many connections; closing");
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            serve_connection(stream, peer, app).await;
        });
    }
}

async fn serve_connection<S>(stream: S, peer: SocketAddr, app: Router)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        // Router is always ready; `call` never fails (errors are responses).
        async move { app.call(req.map(axum::body::Body::new)).await }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), svc);
    if let Err(e) = conn.await {
        debug!(%peer, "https connection: {e}");
    }
}
