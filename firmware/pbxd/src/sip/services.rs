//! What the SIP task lends the endpoint core: extension data from the store (read per
//! request, so `pbxctl` changes apply at once) and the RTP relay.

use std::collections::HashMap;
use std::path::Path;

use tokio::task::JoinHandle;
use tracing::warn;

use crate::call::trunk::EmergencyRoute;
use crate::call::trunk::ExternalLimits;
use crate::call::{CallDirectory, CallId, ExtensionProfile, MediaControl, Side, Sound};
use crate::clock;
use crate::dialplan::{FeatureCode, Site};
use crate::gsm::legs::GSM_TRUNK;
// Mobile numbers of the site's country go over the module with `--mobile on`.
use crate::gsm::mobile::is_mobile;
use crate::gsm::GsmLink;
use crate::line::country::Country;
use crate::media::relay::{
    self, Leg, LegConfig, MediaService, Playback, SessionHandle, SessionReport,
};
use crate::media::sdp::{self, Negotiated};
use crate::registrar::{Directory, ExtensionSecrets};
use crate::store::{
    AuditCtx, ForwardTarget, GsmSettings, OutboundPolicy, RingGroup, Severity, Store,
    TollFraudSettings,
};

/// The store and the relay, as the endpoint's services.
pub(crate) struct StoreServices {
    /// The SIP task's own connection (a `Connection` is Send but not Sync).
    pub(crate) store: Store,
    /// Realm the HA1s must be made for.
    realm: String,
    media: MediaService,
    /// Music on hold: `DATA/moh.wav` if it is a usable WAV, else the built-in loop.
    hold_music: Playback,
    sessions: HashMap<CallId, SessionHandle>,
    /// Extensions that are analog ports (known without a row in the store).
    ports: Vec<String>,
    /// Sessions being closed; their reports join the call record.
    closing: HashMap<CallId, JoinHandle<Option<SessionReport>>>,
    /// The GSM module, when the box has one (issue 7).
    gsm: Option<GsmLink>,
}

impl StoreServices {
    /// Services over `store` and `media`.
    pub(crate) fn new(store: Store, realm: String, media: MediaService, data_dir: &Path) -> Self {
        let path = data_dir.join("moh.wav");
        let hold_music = if path.exists() {
            match relay::load_wav_8k(&path) {
                Ok(samples) => {
                    tracing::info!(path = %path.display(), "music on hold from file");
                    Playback::Pcm(samples)
                }
                Err(e) => {
                    warn!(path = %path.display(), "music on hold file unusable, using the built-in music: {e}");
                    Playback::music_on_hold()
                }
            }
        } else {
            Playback::music_on_hold()
        };
        Self {
            store,
            realm,
            media,
            hold_music,
            sessions: HashMap::new(),
            ports: Vec::new(),
            closing: HashMap::new(),
            gsm: None,
        }
    }

    /// With a GSM module: its calls route by the GSM settings, and emergency calls fall
    /// back to it.
    pub(crate) fn with_gsm(mut self, gsm: GsmLink) -> Self {
        self.gsm = Some(gsm);
        self
    }

    /// The GSM settings, when the box has a module and they can be read.
    fn gsm_settings(&self) -> Option<GsmSettings> {
        self.gsm.as_ref()?;
        self.store
            .gsm_settings()
            .map_err(|e| warn!("GSM settings unreadable: {e}"))
            .ok()
    }

    /// With the analog ports' extension numbers.
    pub(crate) fn with_ports(mut self, ports: Vec<String>) -> Self {
        self.ports = ports;
        self
    }

    /// The quality report of a closed session, once (for the call record).
    pub(crate) fn take_report(&mut self, id: CallId) -> Option<JoinHandle<Option<SessionReport>>> {
        self.closing.remove(&id)
    }
}

impl Directory for StoreServices {
    fn secrets(&mut self, user: &str) -> Option<ExtensionSecrets> {
        match self.store.get_extension(user) {
            // HA1s made for another realm cannot verify: the password must be set again.
            Ok(Some(ext)) if ext.realm == self.realm => Some(ExtensionSecrets {
                ha1_md5: ext.ha1_md5,
                ha1_sha256: ext.ha1_sha256,
                enabled: ext.enabled,
            }),
            Ok(_) => None,
            Err(e) => {
                warn!(user, "extension lookup failed: {e}");
                None
            }
        }
    }
}

impl CallDirectory for StoreServices {
    fn extension(&self, number: &str) -> Option<ExtensionProfile> {
        let ext = match self.store.get_extension(number) {
            Ok(Some(ext)) => ext,
            Ok(None) => return self.port_profile(number),
            Err(e) => {
                warn!(number, "extension lookup failed: {e}");
                return None;
            }
        };
        let settings = self.store.call_settings(number).unwrap_or_else(|e| {
            warn!(number, "call settings lookup failed, using defaults: {e}");
            Default::default()
        });
        Some(ExtensionProfile {
            name: ext.name,
            enabled: ext.enabled,
            class: settings.outbound_class,
            clir: settings.clir,
            dnd: settings.dnd,
            forward_always: settings.forward_always,
            forward_busy: settings.forward_busy,
            forward_noanswer: settings.forward_noanswer,
            noanswer_secs: settings.forward_noanswer_secs,
            pickup_group: settings.pickup_group,
        })
    }

    fn ring_group(&self, number: &str) -> Option<RingGroup> {
        self.store.ring_group(number).unwrap_or_else(|e| {
            warn!(number, "ring group lookup failed: {e}");
            None
        })
    }

    fn is_prefix_of_internal(&self, prefix: &str) -> bool {
        if self
            .ports
            .iter()
            .any(|n| n.len() > prefix.len() && n.starts_with(prefix))
        {
            return true;
        }
        self.store
            .is_prefix_of_internal_number(prefix)
            .unwrap_or_else(|e| {
                warn!(prefix, "number lookup failed: {e}");
                false
            })
    }

    fn external_forwarding_allowed(&self) -> bool {
        self.store
            .site_settings()
            .map(|s| s.allow_external_forwarding)
            .unwrap_or(false)
    }

    fn apply_feature(&mut self, extension: &str, code: &FeatureCode) -> Result<String, String> {
        let mut s = self
            .store
            .call_settings(extension)
            .map_err(|e| e.to_string())?;
        let target = |t: &str| ForwardTarget::parse(t).map_err(|e| e.to_string());
        let done = match code {
            FeatureCode::DndOn => {
                s.dnd = true;
                "do not disturb on".to_owned()
            }
            FeatureCode::DndOff => {
                s.dnd = false;
                "do not disturb off".to_owned()
            }
            FeatureCode::ForwardAlways { target: t } => {
                s.forward_always = Some(target(t)?);
                format!("forward always to {t}")
            }
            FeatureCode::ForwardAlwaysOff => {
                s.forward_always = None;
                "forward always off".to_owned()
            }
            FeatureCode::ForwardBusy { target: t } => {
                s.forward_busy = Some(target(t)?);
                format!("forward on busy to {t}")
            }
            FeatureCode::ForwardBusyOff => {
                s.forward_busy = None;
                "forward on busy off".to_owned()
            }
            FeatureCode::ForwardNoAnswer {
                target: t,
                timeout_secs,
            } => {
                s.forward_noanswer = Some(target(t)?);
                if let Some(secs) = timeout_secs {
                    s.forward_noanswer_secs = u32::from(*secs);
                }
                format!("forward on no answer to {t}")
            }
            FeatureCode::ForwardNoAnswerOff => {
                s.forward_noanswer = None;
                "forward on no answer off".to_owned()
            }
            FeatureCode::Pickup | FeatureCode::PickupExtension { .. } => {
                return Err("pickup is not a setting".into())
            }
        };
        let by = AuditCtx {
            actor: extension,
            source: "phone feature code",
            now_unix: i64::try_from(clock::unix_now()).unwrap_or(i64::MAX),
        };
        self.store
            .set_call_settings(&by, extension, &s)
            .map_err(|e| e.to_string())?;
        Ok(done)
    }

    fn site(&self) -> Site {
        site_of(&self.store)
    }

    fn external_forwarding_allowed_for(&self, extension: &str) -> bool {
        self.external_forwarding_allowed()
            || self
                .store
                .external_policy(extension)
                .is_ok_and(|p| p.allow_forwarding)
    }

    fn did_destination(&self, trunk: &str, e164: &str) -> Option<String> {
        if trunk == GSM_TRUNK {
            return self.gsm_settings()?.inbound_destination;
        }
        let numbers = self.store.trunk_numbers(Some(trunk)).unwrap_or_else(|e| {
            warn!(trunk, "number lookup failed: {e}");
            Vec::new()
        });
        numbers
            .into_iter()
            .find(|n| n.number == e164)
            .and_then(|n| n.destination)
    }

    fn emergency_fallbacks(&self) -> Vec<EmergencyRoute> {
        // Whether the module can dial now is its own answer: a refusal fails the route.
        self.gsm
            .as_ref()
            .map(|_| EmergencyRoute::Gsm)
            .into_iter()
            .collect()
    }

    fn gsm_prefix_route(&self, dialled: &str) -> Option<String> {
        let s = self.gsm_settings()?;
        if s.outbound_policy == OutboundPolicy::Off {
            return None;
        }
        let rest = dialled.strip_prefix(s.outbound_prefix.as_deref()?)?;
        (!rest.is_empty()).then(|| rest.to_owned())
    }

    fn gsm_gateway_confirmed(&self) -> bool {
        self.gsm_settings()
            .is_some_and(|s| s.gateway_confirmed_at.is_some())
    }

    fn gsm_takes_external(&self, e164: &str, trunk_up: bool) -> bool {
        let Some(s) = self.gsm_settings() else {
            return false;
        };
        let ready = self.gsm.as_ref().is_some_and(GsmLink::can_take_call);
        if s.outbound_mobile && ready && is_mobile(e164, &site_of(&self.store).country_code) {
            return true;
        }
        match s.outbound_policy {
            OutboundPolicy::Off | OutboundPolicy::Prefix => false,
            OutboundPolicy::Fallback => !trunk_up,
            OutboundPolicy::All => ready || !trunk_up,
        }
    }

    fn caller_id(&self, trunk: &str, extension: &str) -> Option<String> {
        self.store
            .caller_id_for(trunk, extension)
            .unwrap_or_else(|e| {
                warn!(trunk, extension, "caller ID lookup failed: {e}");
                None
            })
    }

    fn emergency_caller_id(&self) -> Option<String> {
        match self.store.emergency_settings() {
            Ok(s) => s.caller_id,
            Err(e) => {
                warn!("emergency caller ID lookup failed: {e}");
                None
            }
        }
    }

    fn external_limits(&self, extension: &str, trunk: &str) -> ExternalLimits {
        let fraud = self.store.toll_fraud().unwrap_or_else(|e| {
            warn!("toll-fraud settings unreadable, using defaults: {e}");
            TollFraudSettings::default()
        });
        let policy = self.store.external_policy(extension).unwrap_or_default();
        let per_trunk = self.store.trunk_call_limit(trunk).unwrap_or_else(|e| {
            warn!(trunk, "trunk limit lookup failed: {e}");
            None
        });
        ExternalLimits {
            per_user: fraud
                .enabled
                .then(|| policy.max_concurrent.unwrap_or(fraud.user_concurrent)),
            per_trunk,
            per_minute: fraud.enabled.then_some(fraud.calls_per_minute),
        }
    }

    fn external_locked(&self, extension: &str) -> bool {
        self.store
            .external_policy(extension)
            .map(|p| p.locked.is_some())
            .unwrap_or_else(|e| {
                // Fail closed: a lock that cannot be read may be in force.
                warn!(extension, "external policy unreadable: {e}");
                true
            })
    }

    fn lock_external(&mut self, extension: &str, reason: &str) {
        let by = AuditCtx {
            actor: "pbxd",
            source: "toll-fraud protection",
            now_unix: i64::try_from(clock::unix_now()).unwrap_or(i64::MAX),
        };
        if let Err(e) = self.store.lock_external(&by, extension, reason) {
            warn!(extension, "cannot store the toll-fraud lock: {e}");
        }
    }

    fn raise_alert(&mut self, key: &str, severity: Severity, message: &str) {
        let now = i64::try_from(clock::unix_now()).unwrap_or(i64::MAX);
        if let Err(e) = self.store.raise_alert(key, severity, message, now) {
            warn!(key, "cannot raise alert: {e}");
        }
    }

    fn clear_alert(&mut self, key: &str) {
        let now = i64::try_from(clock::unix_now()).unwrap_or(i64::MAX);
        if let Err(e) = self.store.clear_alert(key, now) {
            warn!(key, "cannot clear alert: {e}");
        }
    }
}

impl MediaControl for StoreServices {
    fn open(&mut self, call: CallId) -> Result<(u16, u16), String> {
        let handle = self.media.open(call).map_err(|e| e.to_string())?;
        let ports = (handle.local(Leg::A).port(), handle.local(Leg::B).port());
        self.sessions.insert(call, handle);
        Ok(ports)
    }

    fn configure(&mut self, call: CallId, side: Side, n: &Negotiated) {
        if let Some(h) = self.sessions.get(&call) {
            h.configure_secure(leg_of(side), leg_config(n), n.srtp.clone());
        }
    }

    fn set_active(&mut self, call: CallId, active: bool) {
        if let Some(h) = self.sessions.get(&call) {
            h.set_active(active);
        }
    }

    fn play(&mut self, call: CallId, side: Side, sound: Sound) {
        let source = match sound {
            Sound::Hold => self.hold_music.clone(),
            Sound::Confirmation => Playback::confirmation(),
            Sound::Ringback | Sound::Busy | Sound::Congestion => {
                // The site's country picks the table the analog ports use too.
                let country = Country::for_calling_code(&site_of(&self.store).country_code);
                let tones = country.tones();
                Playback::Tone(match sound {
                    Sound::Busy => tones.busy.clone(),
                    Sound::Congestion => tones.congestion.clone(),
                    _ => tones.ringback.clone(),
                })
            }
        };
        if let Some(h) = self.sessions.get(&call) {
            if let Err(e) = h.play(leg_of(side), source) {
                warn!(call, "cannot play {sound:?}: {e}");
            }
        }
    }

    fn stop_playback(&mut self, call: CallId, side: Side) {
        if let Some(h) = self.sessions.get(&call) {
            h.stop_playback(leg_of(side));
        }
    }

    fn close(&mut self, call: CallId) {
        if let Some(h) = self.sessions.remove(&call) {
            self.closing.insert(call, tokio::spawn(h.close()));
        }
    }
}

fn leg_of(side: Side) -> Leg {
    match side {
        Side::Caller => Leg::A,
        Side::Callee => Leg::B,
    }
}

/// The relay's view of a negotiated leg. The relay wants the peer's direction, the
/// negotiation gives ours.
fn leg_config(n: &Negotiated) -> LegConfig {
    let codec = match n.codec {
        sdp::Codec::Pcmu => relay::Codec::Pcmu,
        sdp::Codec::Pcma => relay::Codec::Pcma,
        sdp::Codec::G722 => relay::Codec::G722,
    };
    let direction = match n.direction.reverse() {
        sdp::Direction::SendRecv => relay::Direction::SendRecv,
        sdp::Direction::SendOnly => relay::Direction::SendOnly,
        sdp::Direction::RecvOnly => relay::Direction::RecvOnly,
        sdp::Direction::Inactive => relay::Direction::Inactive,
    };
    LegConfig {
        remote: (!n.remote.ip().is_unspecified() && n.remote.port() != 0).then_some(n.remote),
        codec,
        pt: n.pt,
        telephone_event: n.telephone_event,
        direction,
    }
}

impl StoreServices {
    /// An analog port's extension without a row in the store: enabled, named after
    /// the port, with the call settings stored for its number (defaults otherwise).
    fn port_profile(&self, number: &str) -> Option<ExtensionProfile> {
        let i = self.ports.iter().position(|n| n == number)?;
        let settings = self.store.call_settings(number).unwrap_or_default();
        let mut p = ExtensionProfile::plain(Some(format!("Analog {}", i + 1)));
        p.class = settings.outbound_class;
        p.clir = settings.clir;
        p.dnd = settings.dnd;
        p.forward_always = settings.forward_always;
        p.forward_busy = settings.forward_busy;
        p.forward_noanswer = settings.forward_noanswer;
        p.noanswer_secs = settings.forward_noanswer_secs;
        p.pickup_group = settings.pickup_group;
        Some(p)
    }
}

/// The numbering plan for analog lines while digits arrive: the store's extensions
/// and ring groups and the ports' own numbers (a connection of its own: the line
/// logic asks on every digit).
pub(crate) struct StorePlan {
    pub(crate) store: Store,
    pub(crate) ports: Vec<String>,
}

impl crate::dialplan::NumberPlan for StorePlan {
    fn is_extension(&self, n: &str) -> bool {
        self.ports.iter().any(|p| p == n) || matches!(self.store.get_extension(n), Ok(Some(_)))
    }

    fn is_ring_group(&self, n: &str) -> bool {
        matches!(self.store.ring_group(n), Ok(Some(_)))
    }

    fn is_prefix_of_internal(&self, prefix: &str) -> bool {
        self.ports
            .iter()
            .any(|n| n.len() > prefix.len() && n.starts_with(prefix))
            || self
                .store
                .is_prefix_of_internal_number(prefix)
                .unwrap_or(false)
    }
}

/// The site's numbering settings from the store (defaults when unreadable).
pub(crate) fn site_of(store: &Store) -> Site {
    match store.site_settings() {
        Ok(s) => Site {
            country_code: s.country_code,
            area_code: s.area_code,
            outside_prefix: s.outside_prefix,
            ..Site::default()
        },
        Err(e) => {
            warn!("site settings unreadable, using defaults: {e}");
            Site::default()
        }
    }
}
