//! The registrar (RFC 3261 sec. 10.3) as a sans-IO core: a REGISTER comes in with the
//! flow it arrived on and the current time, the response comes out, and binding changes
//! are queued as events for the shell to write through to the store.
//!
//! Extension secrets are read through [`Directory`] on every request, so a password set
//! with `pbxctl` while the daemon runs is in effect for the next REGISTER.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use pbx_sip::auth::{self, Algorithm, Credentials, NonceCheck, NonceManager};
use pbx_sip::message::{Contacts, HeaderName, Message, MessageBuilder, NameAddr, Scheme, Uri};

use super::bindings::{Binding, Bindings, Flow};

/// What the registrar knows of an extension: its digest HA1s for our realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionSecrets {
    /// hex MD5(user:realm:password)
    pub ha1_md5: String,
    /// hex SHA-256(user:realm:password)
    pub ha1_sha256: String,
    /// A disabled (blocked) extension fails authentication like a wrong password.
    pub enabled: bool,
}

/// Where the registrar looks up extensions (the store in the daemon, a map in tests).
pub trait Directory {
    /// The secrets of extension `user`, or `None` if there is no such extension.
    fn secrets(&mut self, user: &str) -> Option<ExtensionSecrets>;
}

/// Registrar settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrarConfig {
    /// Digest realm, also the SIP domain of the AORs ("1001@realm").
    pub realm: String,
    /// Further host names that Request-URIs may carry for us (IP literals are always ours).
    pub domains: Vec<String>,
    /// Shortest registration accepted (423 below it).
    pub min_expires: u32,
    /// Longest registration granted (longer requests are shortened).
    pub max_expires: u32,
    /// Expiry when the phone names none.
    pub default_expires: u32,
    /// Contacts one AOR may hold (bounds memory per extension).
    pub max_contacts: usize,
    /// Lifetime of a digest nonce before it is stale.
    pub nonce_lifetime: Duration,
    /// Digest algorithms offered, in order of preference (RFC 8760: a challenge each,
    /// the preferred first). Many deployed phones answer only the first challenge and
    /// know only MD5, so the default is MD5 then SHA-256; some old user agents (libre
    /// 1.0, as in Debian's baresip) refuse any SHA-256 challenge, for which an installer
    /// can offer MD5 alone.
    pub algorithms: Vec<Algorithm>,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        Self {
            realm: "pbx.local".into(),
            domains: vec!["localhost".into()],
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 10,
            nonce_lifetime: Duration::from_secs(300),
            algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
        }
    }
}

/// Which digest exchange a request uses (RFC 3261 sec. 22.2 and 22.3): a registrar
/// challenges with 401, a B2BUA acting for its phones as a proxy would, with 407.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthKind {
    Www,
    Proxy,
}

impl AuthKind {
    fn credentials_header(self) -> HeaderName {
        match self {
            AuthKind::Www => HeaderName::Authorization,
            AuthKind::Proxy => HeaderName::ProxyAuthorization,
        }
    }

    fn mismatch_reason(self) -> &'static str {
        match self {
            AuthKind::Www => "Forbidden: user does not match To",
            AuthKind::Proxy => "Forbidden: user does not match From",
        }
    }
}

/// Why a REGISTER's contact list is refused before anything changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    IntervalTooBrief,
    OutOfOrder,
    TooManyContacts,
}

/// Why a binding went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalReason {
    /// The phone unregistered (expires 0 or `Contact: *`).
    Unregistered,
    /// Nobody refreshed it in time.
    Expired,
    /// The extension was removed or disabled.
    ExtensionGone,
}

/// Something the shell must act on (persist, log, count).
#[derive(Debug, Clone, PartialEq)]
pub enum RegistrarEvent {
    /// A binding was created or refreshed.
    BindingSaved {
        /// Address of record.
        aor: String,
        /// The binding as it now stands.
        binding: Binding,
    },
    /// A binding was removed.
    BindingRemoved {
        /// Address of record.
        aor: String,
        /// The binding removed.
        binding: Binding,
        /// Why.
        reason: RemovalReason,
    },
    /// Credentials were presented and were wrong (or named an unknown user).
    AuthFailed {
        /// Source address (for the brute-force guard).
        ip: IpAddr,
        /// The user name claimed.
        user: String,
    },
    /// A source authenticated successfully (clears its failure count).
    AuthSucceeded {
        /// Source address.
        ip: IpAddr,
    },
}

/// The registrar core: bindings, nonces and the REGISTER procedure.
#[derive(Debug)]
pub struct Registrar {
    cfg: RegistrarConfig,
    bindings: Bindings,
    nonces: NonceManager,
    /// Secret for the decoy HA1 of unknown users (same work as a real check).
    decoy_secret: [u8; 32],
    tags: TagSource,
    events: VecDeque<RegistrarEvent>,
}

impl Registrar {
    /// A registrar with no bindings. `secret` must be random per process start: it
    /// keys the nonces and the decoy hashes; `seed` feeds the To-tag generator.
    pub fn new(cfg: RegistrarConfig, secret: [u8; 32], seed: u64) -> Self {
        let nonces = NonceManager::new(secret, cfg.nonce_lifetime);
        let mut decoy_secret = secret;
        decoy_secret.reverse();
        Self {
            cfg,
            bindings: Bindings::new(),
            nonces,
            decoy_secret,
            tags: TagSource::new(seed),
            events: VecDeque::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &RegistrarConfig {
        &self.cfg
    }

    /// The location service (read-only).
    pub fn bindings(&self) -> &Bindings {
        &self.bindings
    }

    /// Restores a binding loaded from the store at start.
    pub fn restore(&mut self, aor: &str, binding: Binding) {
        self.bindings.upsert(aor, binding);
    }

    /// Whether a Request-URI host is one this registrar serves.
    pub fn serves_host(&self, host: &str) -> bool {
        let h = host.trim_start_matches('[').trim_end_matches(']');
        h.parse::<IpAddr>().is_ok()
            || h.eq_ignore_ascii_case(&self.cfg.realm)
            || self.cfg.domains.iter().any(|d| d.eq_ignore_ascii_case(h))
    }

    /// Handles a REGISTER that passed message validation; returns the final response.
    pub fn handle_register(
        &mut self,
        now: Instant,
        now_unix: u64,
        req: &Message,
        flow: Flow,
        directory: &mut dyn Directory,
    ) -> Message {
        match self.register(now, now_unix, req, flow, directory) {
            Ok(resp) | Err(resp) => resp,
        }
    }

    /// Drops the bindings of every AOR whose user no longer has a usable extension
    /// (removed or disabled with `pbxctl` while the daemon runs).
    pub fn drop_unknown_users(&mut self, directory: &mut dyn Directory) {
        let mut aors: Vec<String> = self
            .bindings
            .iter()
            .map(|(aor, _)| aor.to_owned())
            .collect();
        aors.sort_unstable();
        aors.dedup();
        for aor in aors {
            let user = aor.split('@').next().unwrap_or("");
            if directory.secrets(user).is_some_and(|s| s.enabled) {
                continue;
            }
            for binding in self.bindings.remove_all(&aor) {
                self.events.push_back(RegistrarEvent::BindingRemoved {
                    aor: aor.clone(),
                    binding,
                    reason: RemovalReason::ExtensionGone,
                });
            }
        }
    }

    /// The earliest binding expiry.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.bindings.next_expiry()
    }

    /// Removes lapsed bindings.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (aor, binding) in self.bindings.expire(now) {
            self.events.push_back(RegistrarEvent::BindingRemoved {
                aor,
                binding,
                reason: RemovalReason::Expired,
            });
        }
    }

    /// The next event for the shell.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<RegistrarEvent> {
        self.events.pop_front()
    }

    // The error is the response itself, built once per request and sent: boxing it
    // would only add an allocation.
    #[allow(clippy::result_large_err)]
    fn register(
        &mut self,
        now: Instant,
        now_unix: u64,
        req: &Message,
        flow: Flow,
        directory: &mut dyn Directory,
    ) -> Result<Message, Message> {
        let host = req
            .request_uri()
            .map(|u| u.host().to_owned())
            .unwrap_or_default();
        if !self.serves_host(&host) {
            return Err(self.reply(req, 403, "Domain Not Served Here"));
        }
        let to = req
            .to_header()
            .map_err(|e| self.reply(req, 400, &format!("Bad Request: {e}")))?;
        let user = match (to.uri.scheme(), to.uri.user()) {
            (Scheme::Sip | Scheme::Sips, Some(u)) if !u.is_empty() => u.to_owned(),
            // No user part: there is no address of record to bind (sec. 10.3 step 5).
            _ => return Err(self.reply(req, 404, "Not Found")),
        };
        if !self.serves_host(to.uri.host()) {
            return Err(self.reply(req, 404, "Not Found"));
        }
        self.authenticate(
            now_unix,
            req,
            &user,
            flow.remote.ip(),
            directory,
            AuthKind::Www,
        )?;

        let aor = format!("{user}@{}", self.cfg.realm);
        let call_id = req
            .call_id()
            .map_err(|e| self.reply(req, 400, &format!("Bad Request: {e}")))?
            .to_owned();
        let cseq = req
            .cseq()
            .map_err(|e| self.reply(req, 400, &format!("Bad Request: {e}")))?
            .seq;
        let header_expires = req
            .expires()
            .map_err(|e| self.reply(req, 400, &format!("Bad Request: {e}")))?;
        let contacts = req
            .contacts()
            .map_err(|e| self.reply(req, 400, &format!("Bad Request: {e}")))?;
        match contacts {
            Contacts::Star => {
                // sec. 10.3 step 6: `*` only with Expires: 0 and as the only contact.
                if header_expires != Some(0) || req.header_count(&HeaderName::Contact) != 1 {
                    return Err(self.reply(req, 400, "Bad Request: Contact * needs Expires: 0"));
                }
                let stale = self
                    .bindings
                    .get(&aor, now)
                    .any(|b| b.call_id == call_id && b.cseq >= cseq);
                if stale {
                    return Err(self.reply(req, 500, "Out-of-order REGISTER"));
                }
                for binding in self.bindings.remove_all(&aor) {
                    self.events.push_back(RegistrarEvent::BindingRemoved {
                        aor: aor.clone(),
                        binding,
                        reason: RemovalReason::Unregistered,
                    });
                }
            }
            Contacts::List(list) => {
                let changes = self
                    .plan(now, &aor, &list, header_expires, &call_id, cseq)
                    .map_err(|e| self.refuse(req, e))?;
                self.apply(now, &aor, changes, flow, &call_id, cseq, req);
            }
        }
        Ok(self.ok_with_bindings(now, req, &aor))
    }

    /// Authenticates a request other than REGISTER (INVITE, REFER, ...) from extension
    /// `user` (its From user) with a 407 proxy challenge, under the same rules as
    /// REGISTER: decoy hashes for unknown users, failures and successes reported as
    /// events for the brute-force guard. `Err` carries the response to send.
    #[allow(clippy::result_large_err)]
    pub fn authenticate_request(
        &mut self,
        now_unix: u64,
        req: &Message,
        user: &str,
        ip: IpAddr,
        directory: &mut dyn Directory,
    ) -> Result<(), Message> {
        self.authenticate(now_unix, req, user, ip, directory, AuthKind::Proxy)
    }

    /// Checks the request's digest credentials; `Err` carries the response to send.
    #[allow(clippy::result_large_err)]
    fn authenticate(
        &mut self,
        now_unix: u64,
        req: &Message,
        user: &str,
        ip: IpAddr,
        directory: &mut dyn Directory,
        kind: AuthKind,
    ) -> Result<(), Message> {
        let ours = req
            .header_all(&kind.credentials_header())
            .map(Credentials::parse)
            .find(|c| !matches!(c, Ok(c) if c.realm != self.cfg.realm));
        let creds = match ours {
            None => return Err(self.challenge(now_unix, req, false, kind)),
            Some(Err(e)) => {
                return Err(self.reply(
                    req,
                    400,
                    &format!("Bad Request: {}: {e}", kind.credentials_header().as_str()),
                ))
            }
            Some(Ok(c)) => c,
        };
        if !self.cfg.algorithms.contains(&creds.algorithm) {
            // An answer to a challenge we did not send: challenge again, count nothing.
            return Err(self.challenge(now_unix, req, false, kind));
        }
        if creds.username != user {
            return Err(self.reply(req, 403, kind.mismatch_reason()));
        }
        // Unknown users get a decoy HA1: the same hashing work and the same answer as a
        // known user with a wrong password, so extensions cannot be enumerated.
        let secrets = directory.secrets(user).filter(|s| s.enabled);
        let ha1 = match (&secrets, creds.algorithm) {
            (Some(s), Algorithm::Md5) => s.ha1_md5.clone(),
            (Some(s), Algorithm::Sha256) => s.ha1_sha256.clone(),
            (None, alg) => self.decoy_ha1(alg, user),
        };
        let method = req.method().map(|m| m.to_string()).unwrap_or_default();
        if !auth::verify(&creds, &method, &ha1) || secrets.is_none() {
            self.events.push_back(RegistrarEvent::AuthFailed {
                ip,
                user: user.to_owned(),
            });
            return Err(self.reply(req, 403, "Forbidden"));
        }
        match self
            .nonces
            .check(&creds.nonce, creds.nc.unwrap_or(0), now_unix)
        {
            NonceCheck::Valid => {
                self.events.push_back(RegistrarEvent::AuthSucceeded { ip });
                Ok(())
            }
            NonceCheck::Stale => Err(self.challenge(now_unix, req, true, kind)),
            NonceCheck::Invalid | NonceCheck::Replay => {
                Err(self.challenge(now_unix, req, false, kind))
            }
        }
    }

    /// Decides every contact's fate before changing anything (a 423 or an out-of-order
    /// request must leave the bindings untouched).
    fn plan(
        &self,
        now: Instant,
        aor: &str,
        list: &[NameAddr],
        header_expires: Option<u32>,
        call_id: &str,
        cseq: u32,
    ) -> Result<Vec<(NameAddr, String, u32)>, Refusal> {
        let mut changes = Vec::with_capacity(list.len());
        for contact in list {
            let expires = match contact.param("expires") {
                Some(Some(v)) => v.trim().parse::<u32>().unwrap_or(self.cfg.default_expires),
                _ => header_expires.unwrap_or(self.cfg.default_expires),
            };
            if expires != 0 && expires < self.cfg.min_expires {
                return Err(Refusal::IntervalTooBrief);
            }
            let key = contact_key(&contact.uri);
            if let Some(existing) = self.bindings.find(aor, &key) {
                if existing.expires_at > now && existing.call_id == call_id && existing.cseq >= cseq
                {
                    return Err(Refusal::OutOfOrder);
                }
            }
            changes.push((contact.clone(), key, expires.min(self.cfg.max_expires)));
        }
        let added = changes
            .iter()
            .filter(|(_, key, exp)| *exp > 0 && self.bindings.find(aor, key).is_none())
            .count();
        if self.bindings.get(aor, now).count() + added > self.cfg.max_contacts {
            return Err(Refusal::TooManyContacts);
        }
        Ok(changes)
    }

    fn refuse(&mut self, req: &Message, why: Refusal) -> Message {
        match why {
            Refusal::IntervalTooBrief => {
                let min = self.cfg.min_expires.to_string();
                self.reply_builder(req, 423, "Interval Too Brief")
                    .header(HeaderName::MinExpires, min)
                    .build()
            }
            Refusal::OutOfOrder => self.reply(req, 500, "Out-of-order REGISTER"),
            Refusal::TooManyContacts => self.reply(req, 403, "Forbidden: too many contacts"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        now: Instant,
        aor: &str,
        changes: Vec<(NameAddr, String, u32)>,
        flow: Flow,
        call_id: &str,
        cseq: u32,
        req: &Message,
    ) {
        let user_agent = req.header(&HeaderName::UserAgent).map(str::to_owned);
        for (contact, key, expires) in changes {
            if expires == 0 {
                if let Some(binding) = self.bindings.remove(aor, &key) {
                    self.events.push_back(RegistrarEvent::BindingRemoved {
                        aor: aor.to_owned(),
                        binding,
                        reason: RemovalReason::Unregistered,
                    });
                }
                continue;
            }
            let binding = Binding {
                contact: contact.uri.to_string(),
                key,
                expires_at: now + Duration::from_secs(u64::from(expires)),
                call_id: call_id.to_owned(),
                cseq,
                q: contact.param("q").flatten().map(str::to_owned),
                flow,
                user_agent: user_agent.clone(),
            };
            self.bindings.upsert(aor, binding.clone());
            self.events.push_back(RegistrarEvent::BindingSaved {
                aor: aor.to_owned(),
                binding,
            });
        }
    }

    fn ok_with_bindings(&mut self, now: Instant, req: &Message, aor: &str) -> Message {
        let mut b = self.reply_builder(req, 200, "OK");
        for binding in self.bindings.get(aor, now) {
            let left = binding.expires_at.saturating_duration_since(now).as_secs();
            b = b.header(
                HeaderName::Contact,
                format!("<{}>;expires={left}", binding.contact),
            );
        }
        b.build()
    }

    fn challenge(&mut self, now_unix: u64, req: &Message, stale: bool, kind: AuthKind) -> Message {
        let nonce = self.nonces.issue(now_unix);
        let realm = self.cfg.realm.clone();
        // RFC 8760 sec. 2.3: the preferred algorithm first.
        let order = self.cfg.algorithms.clone();
        let (status, reason, header) = match kind {
            AuthKind::Www => (401, "Unauthorized", HeaderName::WwwAuthenticate),
            AuthKind::Proxy => (
                407,
                "Proxy Authentication Required",
                HeaderName::ProxyAuthenticate,
            ),
        };
        let mut b = self.reply_builder(req, status, reason);
        for alg in order {
            b = b.header(
                header.clone(),
                auth::challenge(&realm, alg, &nonce, None, stale),
            );
        }
        b.build()
    }

    fn decoy_ha1(&self, alg: Algorithm, user: &str) -> String {
        let secret = hex::encode(self.decoy_secret);
        auth::ha1(alg, user, &self.cfg.realm, &secret)
    }

    fn reply(&mut self, req: &Message, status: u16, reason: &str) -> Message {
        self.reply_builder(req, status, reason).build()
    }

    fn reply_builder(&mut self, req: &Message, status: u16, reason: &str) -> MessageBuilder {
        let tag = self.tags.next_tag();
        MessageBuilder::response_to(req, status, reason).set_to_tag(&tag)
    }
}

/// The comparison key of a contact URI: scheme, user, lowercased host, port and
/// transport, which is what makes two contacts the same device per sec. 19.1.4 in
/// practice (phones vary other parameters between refreshes).
pub fn contact_key(uri: &Uri) -> String {
    let transport = uri.transport().unwrap_or("").to_ascii_lowercase();
    format!(
        "{}:{}@{}:{}:{transport}",
        uri.scheme().as_str(),
        uri.user().unwrap_or(""),
        uri.host().to_ascii_lowercase(),
        uri.port().unwrap_or(0),
    )
}

/// To-tags for our responses: unique per response, unpredictable enough (seeded with
/// random bits by the shell), with no clock or RNG inside the core.
#[derive(Debug)]
struct TagSource {
    state: u64,
}

impl TagSource {
    fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next tag (splitmix64 step).
    fn next_tag(&mut self) -> String {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        format!("{:016x}", z ^ (z >> 31))
    }
}
