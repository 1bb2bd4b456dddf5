//! The tokio shell around [`Endpoint`]: owns the sockets, the clock and the store
//! connection, feeds the core and carries out what it asks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pbx_sip::message::Uri;
use pbx_sip::transaction::TimerConfig;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch, Mutex};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::dial::{DialRequest, Dialer};
use super::endpoint::{Endpoint, EndpointEvent, EndpointOutput};
use super::load::LoadMeter;
use super::records;
use super::services::StoreServices;
use super::services::{site_of, StorePlan};
use super::tcp::{accept_loop, ConnEvent};
use super::trunks::{TrunkShell, TrunkShellEvent};
use super::ua::SipCalls;
use crate::call::CallSummary;
use crate::call::Side;
use crate::clock;
use crate::config::Config;
use crate::gsm::legs::GsmLegs;
use crate::gsm::shell::GsmShell;
use crate::gsm::GsmLink;
use crate::line::legs::{PortLegs, PortOutput, PortSpec};
use crate::line::sim::{PortInput, SimPorts};
use crate::line::{Line, SitePlan};
use crate::media::relay::{spawn_media_runtime, Leg, MediaEvent, MediaService};
use crate::notify::{Liveness, LivenessRequests};
use crate::persist::{PersistCmd, Persister};
use crate::registrar::{contact_key, Binding, Flow, Registrar, RegistrarEvent, Transport};
use crate::store::Store;

/// Largest datagram we read; larger ones are truncated by the kernel and then refused
/// by the parser's size limit.
const MAX_DATAGRAM: usize = 65_535;
/// Datagrams handled per wake-up before yielding to timers and TCP.
const BATCH: usize = 64;
/// How often blocks lifted with `pbxctl` are picked up.
const HOUSEKEEPING: Duration = Duration::from_secs(5);

/// The bound SIP sockets (bound in `main` before anything is spawned).
#[derive(Clone)]
pub struct SipSockets {
    /// UDP socket.
    pub udp: Arc<UdpSocket>,
    /// TCP listener on the same port.
    pub tcp: Arc<TcpListener>,
    /// TLS listener and its acceptor, when SIP over TLS is enabled.
    pub tls: Option<(Arc<TcpListener>, TlsAcceptor)>,
}

impl std::fmt::Debug for SipSockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipSockets")
            .field("udp", &self.udp.local_addr().ok())
            .field("tcp", &self.tcp.local_addr().ok())
            .field(
                "tls",
                &self.tls.as_ref().and_then(|(l, _)| l.local_addr().ok()),
            )
            .finish()
    }
}

impl SipSockets {
    /// Binds UDP and TCP on `addr` (TCP first when the port is 0, so both share it).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        let tcp = TcpListener::bind(addr).await?;
        let port = tcp.local_addr()?.port();
        let udp = UdpSocket::bind(SocketAddr::new(addr.ip(), port)).await?;
        Ok(Self {
            udp: Arc::new(udp),
            tcp: Arc::new(tcp),
            tls: None,
        })
    }

    /// Adds a TLS listener on `addr` with the device identity.
    pub async fn bind_tls(
        &mut self,
        addr: SocketAddr,
        config: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        self.tls = Some((Arc::new(listener), TlsAcceptor::from(config)));
        Ok(local)
    }

    /// The address both sockets listen on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }
}

/// Everything the SIP task needs; survives restarts of the task.
#[derive(Debug, Clone)]
pub struct SipShell {
    cfg: Config,
    sockets: SipSockets,
    conn_rx: Arc<Mutex<mpsc::Receiver<ConnEvent>>>,
    conn_tx: mpsc::Sender<ConnEvent>,
    persist: Persister,
    media: MediaService,
    media_rx: Arc<Mutex<mpsc::UnboundedReceiver<MediaEvent>>>,
    /// Current number of bindings, for the status API.
    pub bindings: Arc<AtomicUsize>,
    /// Current number of calls, for the status API.
    pub calls: Arc<AtomicUsize>,
    /// Current number of emergency calls (the update policy refuses while one is up).
    pub emergency_calls: Arc<AtomicUsize>,
    /// Turns true once the SIP task has restored its state and serves requests.
    ready: watch::Sender<bool>,
    /// The analog ports, when there are any.
    ports: Option<PortsLink>,
    /// The GSM module (issue 7): its link and the audio bridge's relay-port channel.
    gsm: Option<GsmLinkParts>,
    /// The watchdog's "are you turning?" requests, answered by the event loop.
    liveness: Liveness,
    liveness_rx: Arc<Mutex<LivenessRequests>>,
    /// Click-to-dial requests from the web side.
    dialer: Dialer,
    dial_rx: Arc<Mutex<mpsc::Receiver<DialRequest>>>,
}

/// The SIP task's link to the GSM module.
#[derive(Debug, Clone)]
struct GsmLinkParts {
    link: GsmLink,
    /// Where the module's audio bridge sends and receives RTP.
    media_addr: SocketAddr,
    media: Arc<watch::Sender<Option<u16>>>,
}

/// The SIP task's link to the analog ports' shell.
#[derive(Debug, Clone)]
struct PortsLink {
    specs: Vec<PortSpec>,
    inputs: Arc<Mutex<mpsc::UnboundedReceiver<PortInput>>>,
    outputs: mpsc::UnboundedSender<(usize, PortOutput)>,
}

impl SipShell {
    /// Prepares the shell; nothing runs until [`SipShell::run`] and
    /// [`SipShell::run_tcp_accept`].
    pub fn new(cfg: Config, sockets: SipSockets, persist: Persister) -> Self {
        let (conn_tx, conn_rx) = mpsc::channel(1024);
        let (ready, _) = watch::channel(false);
        let (liveness, liveness_rx) = Liveness::new();
        let (dialer, dial_rx) = Dialer::channel();
        // RTP gets a thread of its own: forwarding must not queue behind SIP or SQLite.
        let media = match spawn_media_runtime() {
            Ok(rt) => MediaService::new_on(cfg.media, rt),
            Err(e) => {
                warn!("no separate media thread ({e}); relaying on the main runtime");
                MediaService::new(cfg.media)
            }
        };
        // A fresh service always has its receiver; the fallback only keeps types simple.
        let media_rx = media
            .take_events()
            .unwrap_or_else(|| mpsc::unbounded_channel().1);
        Self {
            cfg,
            sockets,
            conn_rx: Arc::new(Mutex::new(conn_rx)),
            conn_tx,
            persist,
            media,
            media_rx: Arc::new(Mutex::new(media_rx)),
            bindings: Arc::new(AtomicUsize::new(0)),
            calls: Arc::new(AtomicUsize::new(0)),
            emergency_calls: Arc::new(AtomicUsize::new(0)),
            ready,
            ports: None,
            gsm: None,
            liveness,
            liveness_rx: Arc::new(Mutex::new(liveness_rx)),
            dialer,
            dial_rx: Arc::new(Mutex::new(dial_rx)),
        }
    }

    /// Where the web side sends click-to-dial requests.
    pub fn dialer(&self) -> Dialer {
        self.dialer.clone()
    }

    /// Asks the SIP event loop whether it turns (for the systemd watchdog).
    pub fn liveness(&self) -> Liveness {
        self.liveness.clone()
    }

    /// With analog ports: their lines run in this task as legs of calls.
    pub fn with_ports(mut self, ports: SimPorts) -> Self {
        self.ports = Some(PortsLink {
            specs: ports.specs,
            inputs: Arc::new(Mutex::new(ports.inputs)),
            outputs: ports.outputs,
        });
        self
    }

    /// With a GSM module: its call is a leg of calls; `media_addr` is its audio bridge,
    /// told the relay port of the module's call through `media`.
    pub fn with_gsm(
        mut self,
        link: GsmLink,
        media_addr: SocketAddr,
        media: watch::Sender<Option<u16>>,
    ) -> Self {
        self.gsm = Some(GsmLinkParts {
            link,
            media_addr,
            media: Arc::new(media),
        });
        self
    }

    /// Resolves once the SIP task serves requests (bindings and blocks restored).
    pub fn ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// Accepts TCP connections (a supervised task of its own).
    pub async fn run_tcp_accept(self, open: Arc<AtomicUsize>) -> anyhow::Result<()> {
        accept_loop(self.sockets.tcp.clone(), None, self.conn_tx.clone(), open).await?;
        Ok(())
    }

    /// Accepts TLS connections (a supervised task of its own); ends at once when TLS
    /// is not enabled.
    pub async fn run_tls_accept(self, open: Arc<AtomicUsize>) -> anyhow::Result<()> {
        let Some((listener, acceptor)) = self.sockets.tls.clone() else {
            return Ok(());
        };
        accept_loop(listener, Some(acceptor), self.conn_tx.clone(), open).await?;
        Ok(())
    }

    /// Whether SIP over TLS is enabled.
    pub fn has_tls(&self) -> bool {
        self.sockets.tls.is_some()
    }

    /// The SIP task: runs the endpoint until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let store = Store::open(&self.cfg.data_dir)?;
        let local = self.sockets.local_addr()?;
        let mut endpoint = self.build_endpoint(&store, local)?;
        // The services own the connection (a `Connection` is Send but not Sync).
        let realm = endpoint.registrar().config().realm.clone();
        let port_numbers: Vec<String> = self
            .ports
            .iter()
            .flat_map(|p| p.specs.iter().map(|s| s.extension.clone()))
            .collect();
        let mut directory =
            StoreServices::new(store, realm, self.media.clone(), &self.cfg.data_dir)
                .with_ports(port_numbers);
        if let Some(g) = &self.gsm {
            directory = directory.with_gsm(g.link.clone());
        }
        let mut gsm = self
            .gsm
            .as_ref()
            .map(|g| GsmShell::new(g.link.clone(), Arc::clone(&g.media)));
        // Without ports, a channel that never yields keeps the select below simple.
        let (_no_ports_tx, no_ports_rx) = mpsc::unbounded_channel();
        let no_ports = Mutex::new(no_ports_rx);
        let mut port_inputs = match &self.ports {
            Some(p) => p.inputs.lock().await,
            None => no_ports.lock().await,
        };
        let mut media_events = self.media_rx.lock().await;
        let mut local_ips = LocalIps::default();
        let mut load = LoadMeter::new(clock::now());
        let mut conn_rx = self.conn_rx.lock().await;
        let mut liveness = self.liveness_rx.lock().await;
        let mut dial_rx = self.dial_rx.lock().await;
        self.ready.send_replace(true);
        let mut conns: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
        let udp = self.sockets.udp.clone();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        let (mut trunks, mut trunk_resolved) = TrunkShell::new(
            &self.cfg.data_dir,
            self.persist.clone(),
            TimerConfig::default(),
        );
        trunks.sync(&directory.store, &mut endpoint, clock::now());
        loop {
            let wake = endpoint
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = shutdown.changed() => break,
                r = udp.recv_from(&mut buf) => {
                    let (n, remote) = r?;
                    let flow = Flow { transport: Transport::Udp, remote, local: local_ips.toward(local, remote) };
                    endpoint.handle_datagram(clock::now(), clock::unix_now(), flow, &buf[..n], &mut directory);
                    // Drain what else is queued without going back through select.
                    let mut drained = 0;
                    for _ in 0..BATCH {
                        match udp.try_recv_from(&mut buf) {
                            Ok((n, remote)) => {
                                drained += 1;
                                let flow = Flow { transport: Transport::Udp, remote, local: local_ips.toward(local, remote) };
                                endpoint.handle_datagram(clock::now(), clock::unix_now(), flow, &buf[..n], &mut directory);
                                self.flush(&mut endpoint, &mut conns, &mut directory, &mut trunks).await;
                            }
                            Err(_) => break,
                        }
                    }
                    if let Some(on) = load.record(clock::now(), drained == BATCH) {
                        if on {
                            warn!("SIP receive backlog: turning new calls away with 503 until it clears");
                        } else {
                            info!("SIP receive backlog cleared: accepting new calls again");
                        }
                        endpoint.set_overloaded(on);
                    }
                }
                Some(ev) = conn_rx.recv() => match ev {
                    ConnEvent::Opened { remote, tx, .. } => {
                        trunks.opened(remote, &tx);
                        conns.insert(remote, tx);
                    }
                    // Only the current connection to `remote`: one closed by `Close` may
                    // report after its replacement opened.
                    ConnEvent::Closed { remote, tx } if is_current(&conns, remote, &tx) => {
                        conns.remove(&remote);
                        if trunks.closed(remote) {
                            endpoint.registrations_mut().handle_transport_error_at(clock::now(), remote, "connection closed");
                            endpoint.pump_registrations();
                        }
                    }
                    ConnEvent::Frame { remote, local, transport, frame } => {
                        let flow = Flow { transport, remote, local };
                        endpoint.handle_frame(clock::now(), clock::unix_now(), flow, frame, &mut directory);
                    }
                    ConnEvent::Closed { .. } => {}
                },
                _ = tokio::time::sleep_until(wake) => endpoint.handle_timeout(clock::now(), &mut directory),
                Some(ev) = media_events.recv() => match ev {
                    MediaEvent::Timeout { id } => {
                        info!(call = id, "no RTP on an answered call: hanging up");
                        endpoint.handle_media_timeout(clock::now(), id, &mut directory);
                    }
                    MediaEvent::PlaybackDone { id, leg } => {
                        let side = match leg {
                            Leg::A => Side::Caller,
                            Leg::B => Side::Callee,
                        };
                        endpoint.handle_playback_done(clock::now(), id, side, &mut directory);
                    }
                },
                Some(input) = port_inputs.recv() => match input {
                    PortInput::Hook(i, ev) => endpoint.handle_port_hook(clock::now(), i, ev, &mut directory),
                    PortInput::Audio(i, frame) => endpoint.handle_port_audio(clock::now(), i, &frame, &mut directory),
                    PortInput::Fax(i) => endpoint.handle_port_fax(clock::now(), i, &mut directory),
                },
                Some(reply) = liveness.recv() => { let _ = reply.send(()); }
                Some(req) = dial_rx.recv() => {
                    let r = endpoint.originate(clock::now(), &req.extension, &req.number, &mut directory);
                    match &r {
                        Ok(call) => info!(call, extension = %req.extension, number = %req.number, "click-to-dial: ringing the extension"),
                        Err(cause) => info!(extension = %req.extension, number = %req.number, ?cause, "click-to-dial refused"),
                    }
                    // The web request may have gone (client closed): nothing to tell.
                    let _ = req.reply.send(r);
                }
                input = async {
                    match gsm.as_mut() {
                        Some(g) => g.next().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Some(g) = gsm.as_mut() {
                        g.handle(input, &mut endpoint, &mut directory);
                    }
                }
                Some(ev) = trunk_resolved.recv() => {
                    match ev {
                        TrunkShellEvent::Resolved(name, resolved) => {
                            trunks.note_targets(&name, &resolved);
                            endpoint.registrations_mut().handle_targets(clock::now(), &name, resolved);
                        }
                        TrunkShellEvent::ConnectFailed(remote, why) => {
                            trunks.closed(remote);
                            endpoint.registrations_mut().handle_transport_error_at(clock::now(), remote, &why);
                        }
                    }
                    endpoint.pump_registrations();
                }
                _ = housekeeping.tick() => {
                    trunks.sync(&directory.store, &mut endpoint, clock::now());
                    trunks.check_alerts(&endpoint, clock::now());
                    sync_blocks(&directory.store, &mut endpoint, self.cfg.guard.block_time);
                    if let Some(legs) = endpoint.port_legs_mut() {
                        crate::line::ports_sync::apply_line_settings(&directory.store, legs);
                    }
                    endpoint.handle_housekeeping(clock::now(), &mut directory);
                }
            }
            trunks.handle_events(
                &mut endpoint,
                local,
                clock::now(),
                i64::try_from(clock::unix_now()).unwrap_or(i64::MAX),
            );
            self.flush(&mut endpoint, &mut conns, &mut directory, &mut trunks)
                .await;
            if let Some(g) = &gsm {
                g.carry_out(&mut endpoint);
            }
            while let Some(out) = endpoint.poll_port_output() {
                if let Some(p) = &self.ports {
                    let _ = p.outputs.send(out);
                }
            }
        }
        info!("SIP task stopped");
        Ok(())
    }

    fn build_endpoint(&self, store: &Store, local: SocketAddr) -> anyhow::Result<Endpoint> {
        let mut rcfg = self.cfg.registrar.clone();
        rcfg.realm = store.realm()?;
        // Fresh per start: nonces of an earlier run are answered `stale`, as they should be.
        let secret: [u8; 32] = rand::random();
        let registrar = Registrar::new(rcfg, secret, rand::random());
        let mut calls = SipCalls::new(self.cfg.calls.clone(), rand::random());
        if let Some(p) = &self.ports {
            let numbers: Vec<String> = p.specs.iter().map(|s| s.extension.clone()).collect();
            let mut lines = Vec::new();
            let settings = store.port_settings()?;
            let profiles = crate::line::ports_sync::profiles(&settings, p.specs.len());
            for (spec, profile) in p.specs.iter().zip(&profiles) {
                let plan = SitePlan {
                    site: site_of(store),
                    plan: StorePlan {
                        store: Store::open(&self.cfg.data_dir)?,
                        ports: numbers.clone(),
                    },
                };
                let line = Line::new(profile.line_config(), Box::new(plan))?;
                lines.push((spec.clone(), line));
            }
            calls = calls.with_ports(PortLegs::new(lines));
        }
        if let Some(g) = &self.gsm {
            calls = calls.with_gsm(GsmLegs::new(g.media_addr));
        }
        let mut endpoint = Endpoint::with_calls(
            registrar,
            calls,
            self.cfg.guard.clone(),
            TimerConfig::default(),
        );
        let now = clock::now();
        let now_unix = clock::unix_now();
        let now_i = i64::try_from(now_unix).unwrap_or(i64::MAX);
        let mut restored = 0usize;
        for b in store.load_bindings(now_i)? {
            let Ok(uri) = Uri::parse(&b.contact) else {
                warn!(contact = %b.contact, "skipping stored binding with unparseable contact");
                continue;
            };
            let left = u64::try_from(b.expires_at.saturating_sub(now_i)).unwrap_or(0);
            let binding = Binding {
                key: contact_key(&uri),
                contact: b.contact.clone(),
                expires_at: now + Duration::from_secs(left),
                call_id: b.call_id.clone(),
                cseq: b.cseq,
                q: b.q_milli.map(|q| format!("{}", f64::from(q) / 1000.0)),
                flow: Flow {
                    transport: Transport::parse(&b.transport).unwrap_or(Transport::Udp),
                    remote: b.source,
                    local,
                },
                user_agent: b.user_agent.clone(),
            };
            endpoint.registrar_mut().restore(&b.aor, binding);
            restored += 1;
        }
        for block in store.active_blocks(now_i)? {
            let left = u64::try_from(block.until.saturating_sub(now_i)).unwrap_or(0);
            endpoint
                .guard_mut()
                .restore_block(block.ip, now, Duration::from_secs(left));
        }
        // Rows that lapsed while pbxd was down are skipped above; remove them for good.
        self.persist
            .send(PersistCmd::PurgeExpired { now_unix: now_i });
        self.bindings.store(restored, Ordering::Relaxed);
        info!(restored, "registrar ready");
        Ok(endpoint)
    }

    /// Carries out the core's outputs.
    async fn flush(
        &self,
        endpoint: &mut Endpoint,
        conns: &mut HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
        services: &mut StoreServices,
        trunks: &mut TrunkShell,
    ) {
        while let Some(out) = endpoint.poll_output() {
            match out {
                EndpointOutput::Transmit { flow, dest, data } => match flow.transport {
                    Transport::Udp => {
                        if let Err(e) = self.sockets.udp.try_send_to(&data, dest) {
                            if e.kind() == std::io::ErrorKind::WouldBlock {
                                let _ = self.sockets.udp.send_to(&data, dest).await;
                            } else {
                                debug!(%dest, "UDP send failed: {e}");
                            }
                        }
                    }
                    Transport::Tcp | Transport::Tls => match conns.get(&flow.remote) {
                        Some(tx) => {
                            if tx.try_send(data).is_err() {
                                debug!(remote = %flow.remote, "TCP connection congested; reply dropped");
                            }
                        }
                        // A trunk's registrar: open the connection (queued until it is).
                        None => {
                            if !trunks.send_stream(flow.remote, data, &self.conn_tx) {
                                debug!(remote = %flow.remote, "TCP connection gone; reply dropped");
                            }
                        }
                    },
                },
                EndpointOutput::Event(EndpointEvent::CallEnded(summary)) => {
                    self.call_ended(*summary, services)
                }
                EndpointOutput::Event(ev) => self.on_event(ev),
                // Dropping the only sender ends the connection's writer and reader.
                EndpointOutput::Close { flow } => {
                    conns.remove(&flow.remote);
                    trunks.closed(flow.remote);
                    info!(remote = %flow.remote, "trunk connection closed: no keep-alive answer");
                }
            }
        }
        self.bindings
            .store(endpoint.registrar().bindings().len(), Ordering::Relaxed);
        self.calls.store(endpoint.calls().len(), Ordering::Relaxed);
        self.emergency_calls
            .store(endpoint.calls().emergency_len(), Ordering::Relaxed);
    }

    /// Writes a call's record once its media session has reported.
    fn call_ended(&self, summary: CallSummary, services: &mut StoreServices) {
        info!(
            call = summary.id,
            caller = %summary.caller,
            dialled = %summary.dialled,
            disposition = ?summary.disposition,
            reason = summary.reason.as_deref().unwrap_or(""),
            "call ended"
        );
        let persist = self.persist.clone();
        let report = services.take_report(summary.id);
        tokio::spawn(async move {
            let report = match report {
                Some(join) => join.await.ok().flatten(),
                None => None,
            };
            let record = records::call_record(
                &summary,
                report.as_ref(),
                clock::now(),
                clock::unix_now_ms(),
            );
            persist.send(PersistCmd::CallRecord(Box::new(record)));
        });
    }

    fn on_event(&self, ev: EndpointEvent) {
        match ev {
            EndpointEvent::Registrar(RegistrarEvent::BindingSaved { aor, binding }) => {
                debug!(%aor, contact = %binding.contact, source = %binding.flow.remote, "binding saved");
                self.persist.send(PersistCmd::save(
                    &aor,
                    &binding,
                    clock::now(),
                    clock::unix_now(),
                ));
            }
            EndpointEvent::Registrar(RegistrarEvent::BindingRemoved {
                aor,
                binding,
                reason,
            }) => {
                debug!(%aor, contact = %binding.contact, ?reason, "binding removed");
                self.persist.send(PersistCmd::Delete {
                    aor,
                    contact: binding.contact,
                });
            }
            EndpointEvent::Registrar(_) => {}
            EndpointEvent::SourceBlocked(block) => {
                warn!(ip = %block.ip, failures = block.failures, secs = block.duration.as_secs(),
                    "blocking source after repeated authentication failures");
                let now = clock::unix_now();
                let until = now.saturating_add(block.duration.as_secs());
                self.persist.send(PersistCmd::Block {
                    ip: block.ip,
                    reason: format!("{} failed authentications", block.failures),
                    now_unix: i64::try_from(now).unwrap_or(i64::MAX),
                    until: i64::try_from(until).unwrap_or(i64::MAX),
                });
            }
            EndpointEvent::Dropped { source, why } => debug!(%source, "dropped: {why}"),
            // Handled in `flush`, which has the media sessions.
            EndpointEvent::CallEnded(_) => {}
        }
    }
}

/// Blocks lifted in the store (by `pbxctl blocks unblock`) are lifted in memory too.
fn sync_blocks(store: &Store, endpoint: &mut Endpoint, block_time: Duration) {
    let now = clock::now();
    let now_unix = i64::try_from(clock::unix_now()).unwrap_or(i64::MAX);
    let active = match store.active_blocks(now_unix) {
        Ok(list) => list,
        Err(e) => {
            warn!("cannot read auth blocks: {e}");
            return;
        }
    };
    // A block the writer has not stored yet would look lifted: only blocks imposed
    // more than two rounds ago are compared with the store.
    let settled = now + block_time.saturating_sub(HOUSEKEEPING * 2);
    let lifted: Vec<_> = endpoint
        .guard_mut()
        .blocked(now)
        .filter(|(ip, until)| *until <= settled && !active.iter().any(|b| b.ip == *ip))
        .map(|(ip, _)| ip)
        .collect();
    for ip in lifted {
        if endpoint.lift_block(ip) {
            info!(%ip, "auth block lifted");
        }
    }
}

/// Our address as a peer sees it, for Via, Contact and SDP. A socket bound to a
/// wildcard address does not know it; the kernel's route choice (a connected UDP socket
/// sends nothing) does. Cached per peer address: phones are few.
#[derive(Debug, Default)]
struct LocalIps {
    cache: HashMap<std::net::IpAddr, std::net::IpAddr>,
}

impl LocalIps {
    fn toward(&mut self, local: SocketAddr, remote: SocketAddr) -> SocketAddr {
        if !local.ip().is_unspecified() {
            return local;
        }
        if self.cache.len() > 4096 {
            self.cache.clear();
        }
        let ip = *self.cache.entry(remote.ip()).or_insert_with(|| {
            let any = SocketAddr::new(local.ip(), 0);
            std::net::UdpSocket::bind(any)
                .and_then(|s| s.connect(remote).and_then(|()| s.local_addr()))
                .map(|a| a.ip())
                .unwrap_or(local.ip())
        });
        SocketAddr::new(ip, local.port())
    }
}

/// Whether `tx` (from a `Closed` event) belongs to the connection `conns` holds for `remote`.
fn is_current(
    conns: &HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    remote: SocketAddr,
    tx: &mpsc::WeakSender<Vec<u8>>,
) -> bool {
    let (Some(closed), Some(current)) = (tx.upgrade(), conns.get(&remote)) else {
        return false;
    };
    closed.same_channel(current)
}
