//! The SIP task's side of the trunk registration clients: loads the accounts from the
//! store (and reloads them when they change), resolves registrars off the SIP loop,
//! writes each trunk's status and raises the "trunk down" alert.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use hickory_resolver::proto::rr::{RData, RecordType};
use pbx_sip::transaction::TimerConfig;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::endpoint::Endpoint;
use crate::persist::{PersistCmd, Persister};
use crate::registrar::Transport;
use crate::secret::DeviceKey;
use crate::store::{self, Severity, Store, StoredTrunk, TrunkStatusRow, TrunkTransport};
use crate::trunk::cli::password_purpose;
use crate::trunk::clients::TrunkEvent;
use crate::trunk::down_alert::{self, DownAlert};
use crate::trunk::register::{RegisterConfig, Registration, Resolved, Target, KEEPALIVE};
use crate::trunk::{TrunkAuth, TrunkState};

/// What the trunk shell's helper tasks report to the SIP loop.
#[derive(Debug)]
pub(crate) enum TrunkShellEvent {
    /// A trunk's registrar was resolved (or not).
    Resolved(String, Result<Resolved, String>),
    /// An outgoing connection could not be opened.
    ConnectFailed(SocketAddr, String),
}

/// An outgoing stream to a trunk's registrar.
#[derive(Debug)]
struct Stream {
    /// The name its certificate must carry (TLS).
    server_name: String,
    tls: bool,
    /// Messages waiting for the connection to open; `None` when none is being opened.
    queue: Option<Vec<Vec<u8>>>,
}

/// The file in DATA with extra CA certificates for providers' TLS certificates.
pub(crate) const TRUNK_CA_FILE: &str = "trunk-ca.pem";
/// The system's CA bundle (Debian, Yocto's ca-certificates).
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// What the shell keeps per trunk.
#[derive(Debug)]
struct Known {
    stored: StoredTrunk,
    /// The state last written, and since when (Unix seconds).
    written: Option<(String, i64)>,
    alerted: bool,
}

/// The trunks' shell state inside the SIP task.
#[derive(Debug)]
pub(crate) struct TrunkShell {
    key: Option<DeviceKey>,
    version: Option<String>,
    known: HashMap<String, Known>,
    persist: Persister,
    resolved_tx: mpsc::UnboundedSender<TrunkShellEvent>,
    timers: TimerConfig,
    streams: HashMap<SocketAddr, Stream>,
    data_dir: std::path::PathBuf,
    /// The site's down-alert threshold, read on every `sync`.
    down_after: Duration,
}

impl TrunkShell {
    /// A shell and the receiver of its resolutions (select on it in the SIP loop).
    pub(crate) fn new(
        data_dir: &Path,
        persist: Persister,
        timers: TimerConfig,
    ) -> (Self, mpsc::UnboundedReceiver<TrunkShellEvent>) {
        let key = match DeviceKey::load_or_create(data_dir) {
            Ok(k) => Some(k),
            Err(e) => {
                warn!("no device key ({e}): trunks cannot register");
                None
            }
        };
        let (resolved_tx, rx) = mpsc::unbounded_channel();
        (
            TrunkShell {
                key,
                version: None,
                known: HashMap::new(),
                persist,
                resolved_tx,
                timers,
                streams: HashMap::new(),
                data_dir: data_dir.to_path_buf(),
                down_after: down_alert::DOWN_ALERT_AFTER,
            },
            rx,
        )
    }

    /// Starts, restarts (changed settings) or stops clients to match the store.
    pub(crate) fn sync(&mut self, store: &Store, endpoint: &mut Endpoint, now: Instant) {
        match store.trunk_down_alert_after() {
            Ok(after) if after != self.down_after => {
                info!("trunk down alert after {} s", after.as_secs());
                self.down_after = after;
            }
            Ok(_) => {}
            Err(e) => warn!("cannot read the trunk down alert threshold: {e}"),
        }
        let version = match store.trunks_version() {
            Ok(v) => v,
            Err(e) => {
                warn!("cannot read trunks: {e}");
                return;
            }
        };
        if self.version.as_ref() == Some(&version) {
            return;
        }
        let trunks = match store.list_trunks() {
            Ok(t) => t,
            Err(e) => {
                warn!("cannot read trunks: {e}");
                return;
            }
        };
        self.version = Some(version);
        let gone: Vec<String> = self
            .known
            .keys()
            .filter(|n| {
                !trunks
                    .iter()
                    .any(|t| &t.account.name == *n && t.account.enabled)
            })
            .cloned()
            .collect();
        for name in gone {
            info!(trunk = %name, "trunk removed or disabled: registration stopped");
            endpoint.registrations_mut().remove(now, &name);
            endpoint.trunks_mut().remove(&name);
            if let Some(k) = self.known.remove(&name) {
                if k.alerted {
                    self.alert(&name, None);
                }
            }
        }
        for t in trunks.into_iter().filter(|t| t.account.enabled) {
            let name = t.account.name.clone();
            if self.known.get(&name).is_some_and(|k| k.stored == t) {
                continue;
            }
            let Some(cfg) = self.config(&t) else {
                continue;
            };
            info!(trunk = %name, registrar = %t.account.registrar, transport = t.account.transport.as_str(), "trunk (re)configured: registering");
            let alerted = self.known.get(&name).is_some_and(|k| k.alerted);
            self.known.insert(
                name,
                Known {
                    stored: t,
                    written: None,
                    alerted,
                },
            );
            endpoint
                .registrations_mut()
                .insert(Registration::new(cfg, now, rand::random()));
        }
        endpoint.pump_registrations();
    }

    fn config(&self, t: &StoredTrunk) -> Option<RegisterConfig> {
        let a = &t.account;
        let password = self
            .key
            .as_ref()
            .ok_or_else(|| "no device key".to_owned())
            .and_then(|k| {
                k.open(&password_purpose(&a.name), &t.password_sealed)
                    .map_err(|e| e.to_string())
            });
        let password = match password {
            Ok(p) => p,
            Err(e) => {
                warn!(trunk = %a.name, "cannot decrypt the trunk password ({e}); set it again with pbxctl trunk set --password-stdin");
                return None;
            }
        };
        Some(RegisterConfig {
            name: a.name.clone(),
            domain: a.domain.clone(),
            user: a.user.clone(),
            auth: Some(TrunkAuth {
                user: a.auth_user.clone(),
                password,
            }),
            transport: transport_of(a.transport),
            expires: Duration::from_secs(u64::from(a.register_secs)),
            keepalive: KEEPALIVE,
            timers: self.timers,
            srtp: a.srtp,
        })
    }

    /// Carries out the endpoint's trunk events: resolutions (spawned) and status writes.
    pub(crate) fn handle_events(
        &mut self,
        endpoint: &mut Endpoint,
        local: SocketAddr,
        now: Instant,
        now_unix: i64,
    ) {
        while let Some(ev) = endpoint.poll_trunk_event() {
            match ev {
                TrunkEvent::Resolve(name) => {
                    let Some(k) = self.known.get(&name) else {
                        continue;
                    };
                    let a = k.stored.account.clone();
                    let tx = self.resolved_tx.clone();
                    tokio::spawn(async move {
                        let r = resolve(&a, local).await;
                        let _ = tx.send(TrunkShellEvent::Resolved(a.name, r));
                    });
                }
                TrunkEvent::Changed(name) => self.write_status(endpoint, &name, now, now_unix),
            }
        }
    }

    /// Notes where a trunk's stream targets are (for TLS names and connection set-up).
    pub(crate) fn note_targets(&mut self, name: &str, r: &Result<Resolved, String>) {
        let (Some(k), Ok(r)) = (self.known.get(name), r) else {
            return;
        };
        let a = &k.stored.account;
        if a.transport == TrunkTransport::Udp {
            return;
        }
        let hop = a.proxy.as_deref().unwrap_or(&a.registrar);
        let host = store::validate_host("registrar", hop)
            .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']').to_owned())
            .unwrap_or_default();
        for t in &r.targets {
            self.streams.entry(t.remote).or_insert(Stream {
                server_name: host.clone(),
                tls: a.transport == TrunkTransport::Tls,
                queue: None,
            });
        }
    }

    /// Sends on a stream to a trunk's registrar that is not open (yet): opens it and
    /// queues `data` until it is. Returns false for a remote that is no trunk's.
    pub(crate) fn send_stream(
        &mut self,
        remote: SocketAddr,
        data: Vec<u8>,
        events: &mpsc::Sender<super::tcp::ConnEvent>,
    ) -> bool {
        let Some(stream) = self.streams.get_mut(&remote) else {
            return false;
        };
        if let Some(q) = stream.queue.as_mut() {
            q.push(data);
            return true;
        }
        let tls = if stream.tls {
            match tls_client(&self.data_dir, &stream.server_name) {
                Ok(t) => Some(t),
                Err(why) => {
                    let _ = self
                        .resolved_tx
                        .send(TrunkShellEvent::ConnectFailed(remote, why));
                    return true;
                }
            }
        } else {
            None
        };
        stream.queue = Some(vec![data]);
        let events = events.clone();
        let failed = self.resolved_tx.clone();
        tokio::spawn(async move {
            if let Err(e) = super::tcp::connect(remote, tls, events).await {
                let _ = failed.send(TrunkShellEvent::ConnectFailed(remote, e.to_string()));
            }
        });
        true
    }

    /// A connection opened: sends what waited for it.
    pub(crate) fn opened(&mut self, remote: SocketAddr, tx: &mpsc::Sender<Vec<u8>>) {
        if let Some(q) = self.streams.get_mut(&remote).and_then(|s| s.queue.take()) {
            for data in q {
                let _ = tx.try_send(data);
            }
        }
    }

    /// A connection to `remote` failed or closed; true when it was a trunk's.
    pub(crate) fn closed(&mut self, remote: SocketAddr) -> bool {
        match self.streams.get_mut(&remote) {
            Some(s) => {
                s.queue = None;
                true
            }
            None => false,
        }
    }

    fn write_status(&mut self, endpoint: &Endpoint, name: &str, now: Instant, now_unix: i64) {
        let (Some(reg), Some(k)) = (endpoint.registrations().get(name), self.known.get_mut(name))
        else {
            return;
        };
        let (state, reason) = describe(reg.state());
        let since = match &k.written {
            Some((s, since)) if *s == state => *since,
            _ => {
                info!(trunk = %name, state = %state, reason = %reason, "trunk state");
                now_unix
            }
        };
        k.written = Some((state.clone(), since));
        let registered_until = reg.registered_until().map(|t| {
            now_unix.saturating_add(
                i64::try_from(t.saturating_duration_since(now).as_secs()).unwrap_or(i64::MAX),
            )
        });
        let reason = match (reg.state(), reg.retry_at()) {
            (TrunkState::Registered, _) => reason,
            (_, Some(at)) => format!(
                "{reason}; next attempt in {} s",
                at.saturating_duration_since(now).as_secs()
            ),
            _ => reason,
        };
        self.persist
            .send(PersistCmd::TrunkStatus(Box::new(TrunkStatusRow {
                name: name.to_owned(),
                state,
                reason,
                registered_until,
                public_addr: reg.link().public.map(|p| p.to_string()),
                since,
                updated_at: now_unix,
            })));
    }

    /// Raises `trunk:<name>:down` for trunks unregistered for longer than the site's
    /// threshold (two minutes unless set) and
    /// clears it once they register (called every few seconds).
    pub(crate) fn check_alerts(&mut self, endpoint: &Endpoint, now: Instant) {
        let mut changes = Vec::new();
        for reg in endpoint.registrations().iter() {
            let name = &reg.config().name;
            let Some(k) = self.known.get_mut(name) else {
                continue;
            };
            let (state, reason) = describe(reg.state());
            let why = if reason.is_empty() { state } else { reason };
            match down_alert::decide(
                self.down_after,
                name,
                reg.state(),
                reg.down_since(),
                k.alerted,
                &why,
                now,
            ) {
                Some(DownAlert::Raise(m)) => {
                    k.alerted = true;
                    changes.push((name.clone(), Some(m)));
                }
                Some(DownAlert::Clear) => {
                    k.alerted = false;
                    changes.push((name.clone(), None));
                }
                None => {}
            }
        }
        for (name, message) in changes {
            self.alert(&name, message);
        }
    }

    fn alert(&self, name: &str, message: Option<String>) {
        match &message {
            Some(m) => warn!(trunk = %name, "{m}"),
            None => info!(trunk = %name, "trunk registered again: alert cleared"),
        }
        self.persist.send(PersistCmd::Alert {
            key: down_alert::alert_key(name),
            raise: message.map(|m| (Severity::Warning, m)),
            now_unix: i64::try_from(crate::clock::unix_now()).unwrap_or(i64::MAX),
        });
    }
}

fn transport_of(t: TrunkTransport) -> Transport {
    match t {
        TrunkTransport::Udp => Transport::Udp,
        TrunkTransport::Tcp => Transport::Tcp,
        TrunkTransport::Tls => Transport::Tls,
    }
}

/// The status words for a state: (`state`, `reason`).
fn describe(s: &TrunkState) -> (String, String) {
    match s {
        TrunkState::Disabled => ("disabled".into(), String::new()),
        TrunkState::Registering => ("registering".into(), String::new()),
        TrunkState::Registered => ("registered".into(), String::new()),
        TrunkState::AuthFailed => (
            "auth-failed".into(),
            "the provider refused the user name or password".into(),
        ),
        TrunkState::Forbidden => (
            "forbidden".into(),
            "the provider answered 403 Forbidden".into(),
        ),
        TrunkState::Unreachable(why) => ("unreachable".into(), why.clone()),
        TrunkState::Failed(line) => ("failed".into(), line.clone()),
    }
}

/// Resolves the trunk's next hop (outbound proxy, else registrar) and all provider
/// addresses (RFC 3263, see [`lookup`]).
async fn resolve(a: &store::TrunkAccount, local: SocketAddr) -> Result<Resolved, String> {
    let hop = a.proxy.as_deref().unwrap_or(&a.registrar);
    let targets = lookup(hop, a.transport).await?;
    let mut peers: Vec<IpAddr> = targets.iter().map(SocketAddr::ip).collect();
    if a.proxy.is_some() {
        // The registrar's own addresses are the provider's too; failing to resolve them
        // does not stop registration through the proxy.
        if let Ok(more) = lookup(&a.registrar, a.transport).await {
            peers.extend(more.iter().map(SocketAddr::ip));
        }
    }
    peers.sort();
    peers.dedup();
    let targets = targets
        .into_iter()
        .map(|remote| Target {
            remote,
            local: local_toward(local, remote),
        })
        .collect();
    Ok(Resolved { targets, peers })
}

/// RFC 3263 sec. 4 for one host: an IP literal or an explicit port skips NAPTR/SRV;
/// otherwise NAPTR (services for our transport), then SRV (`_sip._udp`, `_sip._tcp`,
/// `_sips._tcp`) in priority/weight order, then A/AAAA on the default port.
async fn lookup(host_port: &str, transport: TrunkTransport) -> Result<Vec<SocketAddr>, String> {
    let (host, port) = store::validate_host("registrar", host_port).map_err(|e| e.to_string())?;
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(
            ip,
            port.unwrap_or(transport.default_port()),
        )]);
    }
    let resolver = hickory_resolver::TokioResolver::builder_tokio()
        .and_then(|b| b.build())
        .map_err(|e| format!("no DNS resolver: {e}"))?;
    if let Some(port) = port {
        return addresses(&resolver, &bare, port).await;
    }
    let mut srv_names = naptr_services(&resolver, &bare, transport).await;
    if srv_names.is_empty() {
        srv_names.push(crate::trunk::dns::srv_name(&bare, transport));
    }
    for name in srv_names {
        let Ok(found) = resolver.lookup(name.as_str(), RecordType::SRV).await else {
            continue;
        };
        let records: Vec<crate::trunk::dns::Srv> = found
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(s) => Some(crate::trunk::dns::Srv {
                    priority: s.priority,
                    weight: s.weight,
                    port: s.port,
                    target: s.target.to_ascii().trim_end_matches('.').to_owned(),
                }),
                _ => None,
            })
            .collect();
        // A statement of its own: the thread-local RNG must not live across an await.
        let ordered = crate::trunk::dns::order_srv(records, &mut rand::rng());
        let mut out = Vec::new();
        for srv in ordered {
            if let Ok(mut a) = addresses(&resolver, &srv.target, srv.port).await {
                out.append(&mut a);
            }
        }
        if !out.is_empty() {
            return Ok(out);
        }
    }
    addresses(&resolver, &bare, transport.default_port()).await
}

/// SRV names from the host's NAPTR records for our transport, in order.
async fn naptr_services(
    resolver: &hickory_resolver::TokioResolver,
    host: &str,
    transport: TrunkTransport,
) -> Vec<String> {
    let Ok(found) = resolver.lookup(host, RecordType::NAPTR).await else {
        return Vec::new();
    };
    let records: Vec<crate::trunk::dns::Naptr> = found
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::NAPTR(n) => Some(crate::trunk::dns::Naptr {
                order: n.order,
                preference: n.preference,
                flags: String::from_utf8_lossy(&n.flags).into_owned(),
                services: String::from_utf8_lossy(&n.services).into_owned(),
                replacement: n.replacement.to_ascii().trim_end_matches('.').to_owned(),
            }),
            _ => None,
        })
        .collect();
    crate::trunk::dns::naptr_srv_names(records, transport)
}

/// A/AAAA records of `host` on `port`.
async fn addresses(
    resolver: &hickory_resolver::TokioResolver,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, String> {
    let ips = resolver
        .lookup_ip(host)
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let out: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::new(ip, port)).collect();
    if out.is_empty() {
        return Err(format!("{host} has no address"));
    }
    Ok(out)
}

/// Our address toward `remote` (a socket bound to a wildcard address does not know it;
/// the kernel's route choice does), with the SIP port.
fn local_toward(local: SocketAddr, remote: SocketAddr) -> SocketAddr {
    if !local.ip().is_unspecified() {
        return local;
    }
    let any = SocketAddr::new(local.ip(), 0);
    let ip = std::net::UdpSocket::bind(any)
        .and_then(|s| s.connect(remote).and_then(|()| s.local_addr()))
        .map(|a| a.ip())
        .unwrap_or(local.ip());
    SocketAddr::new(ip, local.port())
}

/// A TLS connector trusting the system's CAs plus `DATA/trunk-ca.pem`, and the name the
/// provider's certificate must carry.
fn tls_client(
    data_dir: &Path,
    host: &str,
) -> Result<
    (
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    ),
    String,
> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    let extra = data_dir.join(TRUNK_CA_FILE);
    for path in [Path::new(SYSTEM_CA_BUNDLE), extra.as_path()] {
        if !path.exists() {
            continue;
        }
        let certs =
            CertificateDer::pem_file_iter(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for cert in certs.flatten() {
            // A bundle may hold certificates rustls cannot use; skip those.
            let _ = roots.add(cert);
        }
    }
    if roots.is_empty() {
        return Err(format!(
            "no CA certificates ({SYSTEM_CA_BUNDLE} or {})",
            extra.display()
        ));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| format!("{host:?} is not a TLS server name: {e}"))?;
    Ok((
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)),
        name,
    ))
}
