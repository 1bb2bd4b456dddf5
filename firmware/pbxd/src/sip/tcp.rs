//! TCP and TLS connections: each accepted stream gets a task that frames messages with
//! [`StreamDecoder`] and hands them to the SIP task; replies come back on a channel.

use std::net::SocketAddr;
use std::time::Duration;

use pbx_sip::message::{Frame, Limits, ParseError, StreamDecoder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::registrar::Transport;
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// Most simultaneous TCP connections; more are refused (a phone needs one).
pub(crate) const MAX_CONNECTIONS: usize = 1024;
/// A connection silent this long is closed (phones send keep-alives far more often).
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// A TLS handshake that takes longer than this is abandoned (slowloris protection).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A write that takes longer than this means the peer stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What connection tasks tell the SIP task.
// Frames dominate the traffic and are moved once; boxing them would add an allocation
// per message to save bytes in the rare Opened/Closed events.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum ConnEvent {
    /// A connection opened; replies for `remote` go to `tx`.
    Opened {
        remote: SocketAddr,
        tx: mpsc::Sender<Vec<u8>>,
    },
    /// A frame (message, keep-alive or framing error) arrived.
    Frame {
        remote: SocketAddr,
        local: SocketAddr,
        transport: Transport,
        frame: Result<Frame, ParseError>,
    },
    /// The connection is gone. `tx` tells it from a newer connection to the same
    /// remote (the SIP task closes a trunk's dead flow and opens another at once):
    /// it upgrades to a sender of the same channel only for the one that closed.
    Closed {
        remote: SocketAddr,
        tx: mpsc::WeakSender<Vec<u8>>,
    },
}

/// Accepts connections until the listener fails; each gets its own task. With `tls`,
/// each connection is a TLS server session first.
pub(crate) async fn accept_loop(
    listener: std::sync::Arc<TcpListener>,
    tls: Option<TlsAcceptor>,
    events: mpsc::Sender<ConnEvent>,
    open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> std::io::Result<()> {
    use std::sync::atomic::Ordering;
    loop {
        let (stream, remote) = listener.accept().await?;
        if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            warn!(%remote, "refusing TCP connection: {MAX_CONNECTIONS} open");
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let events = events.clone();
        let open = open.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let local = stream.local_addr();
            let _ = stream.set_nodelay(true);
            let result = match (local, tls) {
                (Err(e), _) => Err(e),
                (Ok(local), None) => {
                    serve(stream, remote, local, Transport::Tcp, false, events.clone()).await
                }
                (Ok(local), Some(acceptor)) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            serve(tls, remote, local, Transport::Tls, false, events.clone()).await
                        }
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "TLS handshake timed out",
                        )),
                    }
                }
            };
            if let Err(e) = result {
                debug!(%remote, "connection ended: {e}");
            }
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// How long an outgoing connection (to a trunk's registrar) may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens an outgoing connection (a trunk's registrar over TCP, or TLS with `tls`: the
/// connector and the name the certificate must carry) and serves it like an accepted
/// one (its decoder reports the registrar's CRLF pongs). Returns when it closes;
/// `Closed` is sent only if it had opened.
pub(crate) async fn connect(
    remote: SocketAddr,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    events: mpsc::Sender<ConnEvent>,
) -> std::io::Result<()> {
    let timed_out = |what: &str| std::io::Error::new(std::io::ErrorKind::TimedOut, what.to_owned());
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(remote))
        .await
        .map_err(|_| timed_out("connect timed out"))??;
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr()?;
    let result = match tls {
        None => serve(stream, remote, local, Transport::Tcp, true, events.clone()).await,
        Some((connector, name)) => {
            let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, stream))
                .await
                .map_err(|_| timed_out("TLS handshake timed out"))??;
            serve(tls, remote, local, Transport::Tls, true, events.clone()).await
        }
    };
    result
}

async fn serve<S>(
    stream: S,
    remote: SocketAddr,
    local: SocketAddr,
    transport: Transport,
    client: bool,
    events: mpsc::Sender<ConnEvent>,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    let weak = tx.downgrade();
    if events.send(ConnEvent::Opened { remote, tx }).await.is_err() {
        return Ok(());
    }
    // The writer ends when the SIP task drops its sender (after `Closed`, or to close a
    // dead flow), so replies queued before a close still go out; a peer that stops
    // reading cannot hold it. Its end also ends the reader (`writer_done`).
    let (writer_end, mut writer_done) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            match tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(&data)).await {
                Ok(Ok(())) => {}
                _ => break,
            }
        }
        drop(writer_end);
        let _ = tokio::time::timeout(WRITE_TIMEOUT, wr.shutdown()).await;
    });
    let result = read_frames(
        &mut rd,
        &mut writer_done,
        remote,
        local,
        transport,
        client,
        &events,
    )
    .await;
    let _ = events.send(ConnEvent::Closed { remote, tx: weak }).await;
    result
}

/// Reads and frames until the peer closes, goes idle, breaks framing, or the writer ends.
async fn read_frames<R: AsyncRead + Unpin>(
    rd: &mut R,
    writer_done: &mut tokio::sync::oneshot::Receiver<()>,
    remote: SocketAddr,
    local: SocketAddr,
    transport: Transport,
    client: bool,
    events: &mpsc::Sender<ConnEvent>,
) -> std::io::Result<()> {
    let mut decoder = if client {
        StreamDecoder::client(Limits::default())
    } else {
        StreamDecoder::new(Limits::default())
    };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            r = tokio::time::timeout(IDLE_TIMEOUT, rd.read(&mut buf)) => r,
            _ = &mut *writer_done => return Ok(()),
        };
        let n = match read {
            Err(_) => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(n)) => n,
        };
        decoder.push(&buf[..n]);
        let mut broken = false;
        while let Some(frame) = decoder.next() {
            broken |= frame.is_err();
            if events
                .send(ConnEvent::Frame {
                    remote,
                    local,
                    transport,
                    frame,
                })
                .await
                .is_err()
            {
                broken = true;
                break;
            }
        }
        // A framing error leaves the stream without message boundaries: close it
        // (RFC 3261 sec. 18.3) after the 400 has been queued.
        if broken {
            return Ok(());
        }
    }
}
