//! The tokio shell: port allocation, sockets, and one task per [`RelaySession`].
//!
//! [`MediaService::open`] binds an even/odd RTP/RTCP port pair for each leg and spawns a
//! task that owns the four sockets and the core. The task waits on the sockets' readiness,
//! the command channel and the core's deadline; on readiness it drains the socket without
//! waiting (up to [`BATCH`] datagrams), then sends what the core queued with `try_send_to`
//! (a full socket buffer drops the packet, as a congested network would). The task ends
//! when the [`SessionHandle`] is closed or dropped; the ports are then free again.
//!
//! Ports are allocated sequentially through the range with wrap-around, skipping pairs
//! still held by an open session and pairs some other program has bound.

use std::collections::HashSet;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use super::playback::Player;
use super::session::{RelayConfig, RelaySession};
use super::stats::SessionReport;
use super::{Leg, LegConfig, Playback, PlaybackError, RelayEvent, Socket};
use crate::clock;
use crate::media::sdp::SrtpKeys;

/// Datagrams read from one socket per wake-up before looking at the others.
pub const BATCH: usize = 32;

/// Media settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaConfig {
    /// Address the RTP sockets bind to.
    pub bind_ip: IpAddr,
    /// Lowest RTP port (rounded up to even).
    pub port_min: u16,
    /// Highest port of the range (an RTCP port, odd, at most).
    pub port_max: u16,
    /// No RTP on either leg for this long ends the call.
    pub timeout: Duration,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port_min: 10000,
            port_max: 20000,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// Every port pair of the range is taken.
    #[error("no free RTP port pair in {min}-{max}")]
    NoPorts {
        /// Range start.
        min: u16,
        /// Range end.
        max: u16,
    },
    /// `open` was called outside a tokio runtime.
    #[error("media sessions need a tokio runtime")]
    NoRuntime,
    /// A socket operation failed.
    #[error("media socket: {0}")]
    Io(#[from] std::io::Error),
}

/// What the media layer reports to the call layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// Session `id` received no RTP for the configured timeout.
    Timeout {
        /// The id given to [`MediaService::open`].
        id: u64,
    },
    /// A playback on session `id` that ends by itself has finished
    /// ([`RelayEvent::PlaybackDone`]).
    PlaybackDone {
        /// The id given to [`MediaService::open`].
        id: u64,
        /// The leg that played.
        leg: Leg,
    },
}

#[derive(Debug)]
struct Ports {
    next: u16,
    in_use: HashSet<u16>,
}

#[derive(Debug)]
struct Inner {
    cfg: MediaConfig,
    /// Where session tasks run: a runtime of their own in the daemon (see
    /// [`spawn_media_runtime`]), else whichever runtime calls `open`.
    rt: Option<tokio::runtime::Handle>,
    ports: Mutex<Ports>,
    active: AtomicUsize,
    events_tx: mpsc::UnboundedSender<MediaEvent>,
    events_rx: Mutex<Option<mpsc::UnboundedReceiver<MediaEvent>>>,
}

impl Inner {
    fn lowest(&self) -> u16 {
        self.cfg.port_min.saturating_add(self.cfg.port_min % 2)
    }

    /// Binds `n` free even/odd pairs, walking the range from where the last call stopped.
    fn bind_pairs(&self, n: usize) -> Result<Vec<(u16, StdUdpSocket, StdUdpSocket)>, MediaError> {
        let (lo, hi) = (self.lowest(), self.cfg.port_max);
        let no_ports = || MediaError::NoPorts {
            min: self.cfg.port_min,
            max: hi,
        };
        if hi < lo.saturating_add(1) {
            return Err(no_ports());
        }
        let count = usize::from((hi - lo).div_ceil(2));
        let mut ports = self.ports.lock().unwrap_or_else(PoisonError::into_inner);
        let mut got = Vec::with_capacity(n);
        let mut p = if ports.next < lo || ports.next >= hi {
            lo
        } else {
            ports.next
        };
        for _ in 0..count {
            let cand = p;
            p = if cand >= hi.saturating_sub(2) {
                lo
            } else {
                cand + 2
            };
            if ports.in_use.contains(&cand) {
                continue;
            }
            let rtp = StdUdpSocket::bind(SocketAddr::new(self.cfg.bind_ip, cand));
            let rtcp = StdUdpSocket::bind(SocketAddr::new(self.cfg.bind_ip, cand + 1));
            if let (Ok(rtp), Ok(rtcp)) = (rtp, rtcp) {
                rtp.set_nonblocking(true)?;
                rtcp.set_nonblocking(true)?;
                got.push((cand, rtp, rtcp));
                if got.len() == n {
                    break;
                }
            }
        }
        ports.next = p;
        if got.len() < n {
            return Err(no_ports());
        }
        for (port, _, _) in &got {
            ports.in_use.insert(*port);
        }
        Ok(got)
    }
}

/// Holds a session's ports and its place in the session count until dropped.
#[derive(Debug)]
struct Lease {
    inner: Arc<Inner>,
    ports: Vec<u16>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut ports = self
            .inner
            .ports
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for p in &self.ports {
            ports.in_use.remove(p);
        }
        self.inner.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Opens relay sessions. Cheap to clone; all clones share the port range and counters.
#[derive(Debug, Clone)]
pub struct MediaService {
    inner: Arc<Inner>,
}

enum Command {
    Configure(Leg, LegConfig, Option<Box<SrtpKeys>>),
    SetActive(bool),
    Play(Leg, Box<Player>),
    Stop(Leg),
    Close(oneshot::Sender<SessionReport>),
}

impl MediaService {
    /// A service for the given range; nothing is bound until [`open`](Self::open).
    #[must_use]
    pub fn new(cfg: MediaConfig) -> Self {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        Self {
            inner: Arc::new(Inner {
                ports: Mutex::new(Ports {
                    next: 0,
                    in_use: HashSet::new(),
                }),
                cfg,
                rt: None,
                active: AtomicUsize::new(0),
                events_tx,
                events_rx: Mutex::new(Some(events_rx)),
            }),
        }
    }

    /// The same service, running its session tasks on `rt` (a runtime of their own,
    /// so RTP forwarding never waits behind SIP, timers or the database).
    pub fn new_on(cfg: MediaConfig, rt: tokio::runtime::Handle) -> Self {
        let mut svc = Self::new(cfg);
        if let Some(inner) = Arc::get_mut(&mut svc.inner) {
            inner.rt = Some(rt);
        }
        svc
    }

    /// The receiver of [`MediaEvent`]s; `Some` only on the first call.
    #[must_use]
    pub fn take_events(&self) -> Option<mpsc::UnboundedReceiver<MediaEvent>> {
        self.inner
            .events_rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Sessions whose task is still running (for leak checks).
    #[must_use]
    pub fn active_sessions(&self) -> usize {
        self.inner.active.load(Ordering::Acquire)
    }

    /// Binds RTP+RTCP sockets for both legs and spawns the session's task. Must be called
    /// from within a tokio runtime.
    pub fn open(&self, id: u64) -> Result<SessionHandle, MediaError> {
        let rt = match &self.inner.rt {
            Some(h) => h.clone(),
            None => tokio::runtime::Handle::try_current().map_err(|_| MediaError::NoRuntime)?,
        };
        let mut pairs = self.inner.bind_pairs(2)?.into_iter();
        let (Some((pa, a_rtp, a_rtcp)), Some((pb, b_rtp, b_rtcp))) = (pairs.next(), pairs.next())
        else {
            return Err(MediaError::NoPorts {
                min: self.inner.cfg.port_min,
                max: self.inner.cfg.port_max,
            });
        };
        self.inner.active.fetch_add(1, Ordering::AcqRel);
        // From here on the lease frees the ports and the count on every path.
        let lease = Lease {
            inner: Arc::clone(&self.inner),
            ports: vec![pa, pb],
        };
        let local = [a_rtp.local_addr()?, b_rtp.local_addr()?];
        let (tx, rx) = mpsc::unbounded_channel();
        let relay_cfg = RelayConfig {
            timeout: self.inner.cfg.timeout,
            ..RelayConfig::default()
        };
        let core = RelaySession::new(
            relay_cfg,
            clock::now(),
            Duration::from_secs(clock::unix_now()),
            rand::random(),
        );
        let events = self.inner.events_tx.clone();
        rt.spawn(async move {
            let socks = (|| -> std::io::Result<_> {
                Ok([
                    [UdpSocket::from_std(a_rtp)?, UdpSocket::from_std(a_rtcp)?],
                    [UdpSocket::from_std(b_rtp)?, UdpSocket::from_std(b_rtcp)?],
                ])
            })();
            match socks {
                Ok(socks) => run(id, core, socks, rx, events, lease).await,
                Err(e) => tracing::warn!(id, error = %e, "media session sockets"),
            }
        });
        Ok(SessionHandle { local, tx })
    }
}

/// One open relay session. Dropping it closes the session (without a report).
#[derive(Debug)]
pub struct SessionHandle {
    local: [SocketAddr; 2],
    tx: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Configure(..) => "Configure",
            Command::SetActive(_) => "SetActive",
            Command::Play(..) => "Play",
            Command::Stop(_) => "Stop",
            Command::Close(_) => "Close",
        })
    }
}

impl SessionHandle {
    /// Our RTP address on `leg` (put it in the SDP sent to that leg's peer; RTCP is +1).
    #[must_use]
    pub fn local(&self, leg: Leg) -> SocketAddr {
        self.local[leg.idx()]
    }

    /// Sets or changes what SDP negotiated for a plain RTP `leg` (call again on every
    /// re-INVITE).
    pub fn configure(&self, leg: Leg, cfg: LegConfig) {
        self.configure_secure(leg, cfg, None);
    }

    /// [`configure`](Self::configure) with the leg's SRTP keys (`None`: plain RTP), as
    /// offer/answer gave them in [`Negotiated::srtp`](crate::media::sdp::Negotiated::srtp).
    pub fn configure_secure(&self, leg: Leg, cfg: LegConfig, srtp: Option<SrtpKeys>) {
        // The task only stops once this handle is gone or closed, so a send cannot fail
        // unless the task died; then there is nothing left to configure.
        let _ = self
            .tx
            .send(Command::Configure(leg, cfg, srtp.map(Box::new)));
    }

    /// Marks the call answered (arms the media timeout) or not.
    pub fn set_active(&self, on: bool) {
        let _ = self.tx.send(Command::SetActive(on));
    }

    /// Plays `source` into `leg` instead of the other leg's audio (see
    /// [`RelaySession::play`]); a one-shot source reports [`MediaEvent::PlaybackDone`]
    /// when it ends. The source is checked here, so an invalid one is refused at once.
    pub fn play(&self, leg: Leg, source: Playback) -> Result<(), PlaybackError> {
        let player = Player::new(&source)?;
        let _ = self.tx.send(Command::Play(leg, Box::new(player)));
        Ok(())
    }

    /// Stops playback on `leg` (if any): it hears the other leg again.
    pub fn stop_playback(&self, leg: Leg) {
        let _ = self.tx.send(Command::Stop(leg));
    }

    /// Stops the session and returns its final figures. When the future resolves, the
    /// ports are free and [`MediaService::active_sessions`] no longer counts it.
    pub fn close(self) -> impl Future<Output = Option<SessionReport>> {
        let (tx, rx) = oneshot::channel();
        let sent = self.tx.send(Command::Close(tx)).is_ok();
        async move {
            if sent {
                rx.await.ok()
            } else {
                None
            }
        }
    }
}

const SOCKETS: [(Leg, Socket); 4] = [
    (Leg::A, Socket::Rtp),
    (Leg::A, Socket::Rtcp),
    (Leg::B, Socket::Rtp),
    (Leg::B, Socket::Rtcp),
];

fn sock_idx(s: Socket) -> usize {
    match s {
        Socket::Rtp => 0,
        Socket::Rtcp => 1,
    }
}

async fn run(
    id: u64,
    mut core: RelaySession,
    socks: [[UdpSocket; 2]; 2],
    mut rx: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<MediaEvent>,
    lease: Lease,
) {
    let mut buf = vec![0u8; 2048];
    // `try_send_to` on a fresh tokio socket fails with WouldBlock until the reactor has
    // seen it writable once; wait for that (immediate) so that a packet produced before
    // any other event, like the first one of a playback, is not lost.
    for s in socks.iter().flatten() {
        let _ = s.writable().await;
    }
    let reply = loop {
        while let Some(t) = core.poll_transmit() {
            let s = &socks[t.leg.idx()][sock_idx(t.socket)];
            if let Err(e) = s.try_send_to(&t.data, t.to) {
                tracing::trace!(id, to = %t.to, error = %e, "rtp send dropped");
            }
        }
        while let Some(e) = core.poll_event() {
            match e {
                RelayEvent::Timeout => {
                    tracing::info!(id, "media timeout");
                    let _ = events.send(MediaEvent::Timeout { id });
                }
                RelayEvent::Latched { leg, socket, addr } => {
                    tracing::debug!(id, ?leg, ?socket, %addr, "media latched");
                }
                RelayEvent::PlaybackDone { leg } => {
                    let _ = events.send(MediaEvent::PlaybackDone { id, leg });
                }
            }
        }
        let deadline = core.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let ready = tokio::select! {
            // Commands first: a packet that arrives with its leg's configuration already
            // queued must meet that configuration, not be dropped as unexpected.
            biased;
            cmd = rx.recv() => {
                match cmd {
                    None => break None,
                    Some(Command::Close(tx)) => break Some(tx),
                    Some(Command::Configure(leg, cfg, srtp)) => {
                        core.configure_secure(clock::now(), leg, cfg, srtp.map(|k| *k))
                    }
                    Some(Command::SetActive(on)) => core.set_active(clock::now(), on),
                    Some(Command::Play(leg, p)) => core.start_playback(clock::now(), leg, *p),
                    Some(Command::Stop(leg)) => core.stop(clock::now(), leg),
                }
                None
            }
            // Then due timers (playback ticks, RTCP, time-out): cheap, and never due
            // again at once, so they cannot starve the sockets.
            () = sleep => {
                core.handle_timeout(clock::now());
                None
            }
            r = socks[0][0].readable() => r.ok().map(|()| 0),
            r = socks[0][1].readable() => r.ok().map(|()| 1),
            r = socks[1][0].readable() => r.ok().map(|()| 2),
            r = socks[1][1].readable() => r.ok().map(|()| 3),
        };
        if let Some(i) = ready {
            let (leg, socket) = SOCKETS[i];
            let s = &socks[leg.idx()][sock_idx(socket)];
            let now = clock::now();
            for _ in 0..BATCH {
                match s.try_recv_from(&mut buf) {
                    Ok((n, from)) => core.handle_packet(now, leg, socket, from, &buf[..n]),
                    // WouldBlock: drained. Other errors (ICMP port unreachable reported on
                    // the socket) are not fatal for a relay.
                    Err(_) => break,
                }
            }
        }
    };
    let report = core.report();
    drop(socks);
    drop(lease);
    if let Some(tx) = reply {
        let _ = tx.send(report);
    }
}

/// Starts a single-threaded runtime on a thread of its own ("media") for the relay's
/// session tasks and returns its handle; it runs until the process exits.
pub fn spawn_media_runtime() -> std::io::Result<tokio::runtime::Handle> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = rt.handle().clone();
    std::thread::Builder::new()
        .name("media".into())
        .spawn(move || rt.block_on(std::future::pending::<()>()))?;
    Ok(handle)
}
