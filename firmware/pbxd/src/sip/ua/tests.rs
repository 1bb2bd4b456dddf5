//! Call scenarios through the whole endpoint core: raw SIP in, raw SIP out, on a
//! simulated clock, with an in-memory directory and a relay that only counts.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pbx_sip::auth::{self, Algorithm};
use pbx_sip::message::{parse, HeaderName, Message};
use pbx_sip::transaction::TimerConfig;

use super::SipCalls;
use crate::call::trunk::{EmergencyRoute, ExternalLimits, TrunkTarget};
use crate::call::*;
use crate::dialplan::{FeatureCode, Site};
use crate::media::sdp::Negotiated;
use crate::registrar::{Directory, ExtensionSecrets, Flow, Registrar, RegistrarConfig, Transport};
use crate::sip::{Endpoint, EndpointEvent, EndpointOutput, GuardConfig};
use crate::store::Severity;
use crate::store::{ForwardTarget, RingGroup, RingStrategy};

const UNIX: u64 = 1_800_000_000;
const PBX: &str = "192.0.2.1:5060";

/// Extensions 1001..1005 (password "pw-<n>"), 1004 on do-not-disturb, ring groups
/// as a test sets them; a relay that hands out ports and remembers what is open.
pub(super) struct Office {
    pub(super) profiles: HashMap<String, ExtensionProfile>,
    groups: HashMap<String, RingGroup>,
    pub(super) trunk: Option<TrunkTarget>,
    /// The account's numbers: E.164 -> destination.
    pub(super) dids: HashMap<String, String>,
    /// Caller IDs per extension.
    pub(super) caller_ids: HashMap<String, String>,
    pub(super) emergency_cid: Option<String>,
    pub(super) fallbacks: Vec<EmergencyRoute>,
    pub(super) limits: ExternalLimits,
    pub(super) locked: HashSet<String>,
    /// Alerts raised (severity) and cleared (None), in order.
    pub(super) alerts: Vec<(String, Option<Severity>, String)>,
    pub(super) external_forwarding: bool,
    /// The GSM prefix (issue 7), and whether GSM takes external calls no trunk can.
    pub(super) gsm_prefix: Option<String>,
    pub(super) gsm_fallback: bool,
    pub(super) gsm_confirmed: bool,
    /// Sounds started and stopped, in order: (call, side, Some(sound) | None for stop).
    sounds: Vec<(CallId, Side, Option<Sound>)>,
    open: HashSet<CallId>,
    pub(super) configured: Vec<(CallId, Side, Negotiated)>,
    active: HashSet<CallId>,
    opened_total: usize,
}

impl Default for Office {
    fn default() -> Self {
        let mut profiles = HashMap::new();
        for n in ["1001", "1002", "1003", "1004", "1005"] {
            let mut p = ExtensionProfile::plain(Some(format!("Phone {n}")));
            p.dnd = n == "1004";
            profiles.insert(n.to_owned(), p);
        }
        Office {
            profiles,
            groups: HashMap::new(),
            trunk: None,
            dids: HashMap::new(),
            caller_ids: HashMap::new(),
            emergency_cid: None,
            fallbacks: Vec::new(),
            limits: ExternalLimits::default(),
            locked: HashSet::new(),
            alerts: Vec::new(),
            external_forwarding: false,
            gsm_prefix: None,
            gsm_fallback: false,
            gsm_confirmed: false,
            sounds: Vec::new(),
            open: HashSet::new(),
            configured: Vec::new(),
            active: HashSet::new(),
            opened_total: 0,
        }
    }
}

impl Directory for Office {
    fn secrets(&mut self, user: &str) -> Option<ExtensionSecrets> {
        self.extension(user).map(|_| ExtensionSecrets {
            ha1_md5: auth::ha1(Algorithm::Md5, user, "pbx.local", &format!("pw-{user}")),
            ha1_sha256: auth::ha1(Algorithm::Sha256, user, "pbx.local", &format!("pw-{user}")),
            enabled: true,
        })
    }
}

impl CallDirectory for Office {
    fn extension(&self, number: &str) -> Option<ExtensionProfile> {
        self.profiles.get(number).cloned()
    }
    fn ring_group(&self, number: &str) -> Option<RingGroup> {
        self.groups.get(number).cloned()
    }
    fn is_prefix_of_internal(&self, prefix: &str) -> bool {
        self.profiles
            .keys()
            .chain(self.groups.keys())
            .any(|n| n.len() > prefix.len() && n.starts_with(prefix))
    }
    fn site(&self) -> Site {
        Site::default()
    }
    fn trunk_for(&self, _: &str, _: bool) -> Option<TrunkTarget> {
        self.trunk.clone()
    }
    fn external_forwarding_allowed(&self) -> bool {
        self.external_forwarding
    }
    fn did_destination(&self, _: &str, e164: &str) -> Option<String> {
        self.dids.get(e164).cloned()
    }
    fn caller_id(&self, _: &str, ext: &str) -> Option<String> {
        self.caller_ids.get(ext).cloned()
    }
    fn emergency_caller_id(&self) -> Option<String> {
        self.emergency_cid.clone()
    }
    fn emergency_fallbacks(&self) -> Vec<EmergencyRoute> {
        self.fallbacks.clone()
    }
    fn external_limits(&self, _: &str, _: &str) -> ExternalLimits {
        self.limits
    }
    fn gsm_prefix_route(&self, dialled: &str) -> Option<String> {
        let rest = dialled.strip_prefix(self.gsm_prefix.as_deref()?)?;
        (!rest.is_empty()).then(|| rest.to_owned())
    }
    fn gsm_gateway_confirmed(&self) -> bool {
        self.gsm_confirmed
    }
    fn gsm_takes_external(&self, _: &str, trunk_up: bool) -> bool {
        self.gsm_fallback && !trunk_up
    }
    fn external_locked(&self, ext: &str) -> bool {
        self.locked.contains(ext)
    }
    fn lock_external(&mut self, ext: &str, _: &str) {
        self.locked.insert(ext.to_owned());
    }
    fn raise_alert(&mut self, key: &str, severity: Severity, message: &str) {
        self.alerts
            .push((key.to_owned(), Some(severity), message.to_owned()));
    }
    fn clear_alert(&mut self, key: &str) {
        self.alerts.push((key.to_owned(), None, String::new()));
    }
    fn apply_feature(&mut self, ext: &str, code: &FeatureCode) -> Result<String, String> {
        let p = self.profiles.get_mut(ext).ok_or("no such extension")?;
        match code {
            FeatureCode::DndOn => p.dnd = true,
            FeatureCode::DndOff => p.dnd = false,
            FeatureCode::ForwardAlways { target } if target.starts_with('+') => {
                return Err("forwarding to external numbers is not allowed".into())
            }
            FeatureCode::ForwardAlways { target } => {
                p.forward_always = Some(ForwardTarget::Internal(target.clone()))
            }
            _ => return Err("unsupported".into()),
        }
        Ok(format!("{code:?}"))
    }
}

impl MediaControl for Office {
    fn play(&mut self, call: CallId, side: Side, sound: Sound) {
        self.sounds.push((call, side, Some(sound)));
    }
    fn stop_playback(&mut self, call: CallId, side: Side) {
        self.sounds.push((call, side, None));
    }
    fn open(&mut self, call: CallId) -> Result<(u16, u16), String> {
        self.open.insert(call);
        self.opened_total += 1;
        let base = 20_000 + 4 * (call as u16 % 1000);
        Ok((base, base + 2))
    }
    fn configure(&mut self, call: CallId, side: Side, n: &Negotiated) {
        self.configured.push((call, side, n.clone()));
    }
    fn set_active(&mut self, call: CallId, active: bool) {
        if active {
            self.active.insert(call);
        }
    }
    fn close(&mut self, call: CallId) {
        assert!(self.open.remove(&call), "closed twice or never opened");
        self.active.remove(&call);
    }
}

pub(super) struct Rig {
    pub(super) ep: Endpoint,
    pub(super) office: Office,
    pub(super) now: Instant,
    pub(super) records: Vec<CallSummary>,
    /// Extra headers for the INVITEs `invite_from` sends.
    pub(super) extra: String,
}

pub(super) fn flow_of(ip: &str) -> Flow {
    Flow {
        transport: Transport::Udp,
        remote: SocketAddr::new(ip.parse().expect("ip"), 5060),
        local: PBX.parse().expect("addr"),
    }
}

pub(super) fn sdp(ip: &str, port: u16, codecs: &str) -> String {
    let pts: Vec<&str> = codecs.split(' ').collect();
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {} 101\r\n",
        pts.join(" ")
    );
    for pt in pts {
        let name = match pt {
            "0" => "PCMU/8000",
            "8" => "PCMA/8000",
            "9" => "G722/8000",
            _ => "X/8000",
        };
        s.push_str(&format!("a=rtpmap:{pt} {name}\r\n"));
    }
    s.push_str("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n");
    s
}

#[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
fn epoch() -> Instant {
    Instant::now()
}

impl Rig {
    pub(super) fn new() -> Self {
        Self::with(CallConfig::default())
    }

    /// With the GSM module's leg (its audio bridge at 127.0.0.1:4100).
    pub(super) fn with_gsm() -> Self {
        let mut rig = Self::new();
        let reg = Registrar::new(RegistrarConfig::default(), [9; 32], 3);
        let calls = SipCalls::new(
            CallConfig {
                ring_timeout: Duration::from_secs(30),
                ..CallConfig::default()
            },
            11,
        )
        .with_gsm(crate::gsm::legs::GsmLegs::new(
            "127.0.0.1:4100".parse().expect("addr"),
        ));
        let guard = GuardConfig {
            rate_per_sec: 0,
            ..GuardConfig::default()
        };
        rig.ep = Endpoint::with_calls(reg, calls, guard, TimerConfig::default());
        rig
    }

    fn with(cfg: CallConfig) -> Self {
        let reg = Registrar::new(RegistrarConfig::default(), [9; 32], 3);
        let calls = SipCalls::new(
            CallConfig {
                ring_timeout: Duration::from_secs(30),
                ..cfg
            },
            11,
        );
        let guard = GuardConfig {
            rate_per_sec: 0,
            ..GuardConfig::default()
        };
        Rig {
            ep: Endpoint::with_calls(reg, calls, guard, TimerConfig::default()),
            office: Office::default(),
            now: epoch(),
            records: Vec::new(),
            extra: String::new(),
        }
    }

    /// Feeds one datagram from `ip`; returns what the endpoint sent, per destination.
    pub(super) fn feed(&mut self, ip: &str, text: &str) -> Vec<(SocketAddr, Message)> {
        self.ep.handle_datagram(
            self.now,
            UNIX,
            flow_of(ip),
            text.as_bytes(),
            &mut self.office,
        );
        self.collect()
    }

    pub(super) fn collect(&mut self) -> Vec<(SocketAddr, Message)> {
        let mut out = Vec::new();
        while let Some(o) = self.ep.poll_output() {
            match o {
                EndpointOutput::Transmit { dest, data, .. } => {
                    out.push((dest, parse(&data).expect("our output parses")))
                }
                EndpointOutput::Event(EndpointEvent::CallEnded(s)) => self.records.push(*s),
                EndpointOutput::Event(_) | EndpointOutput::Close { .. } => {}
            }
        }
        out
    }

    pub(super) fn advance(&mut self, by: Duration) -> Vec<(SocketAddr, Message)> {
        let until = self.now + by;
        let mut out = Vec::new();
        loop {
            match self.ep.poll_timeout() {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.ep.handle_timeout(self.now, &mut self.office);
                    out.extend(self.collect());
                }
                _ => break,
            }
        }
        self.now = until;
        out
    }

    /// Registers `ext` from `ip` (two round trips with digest).
    pub(super) fn register(&mut self, ext: &str, ip: &str) {
        let reg = |auth: &str, cseq: u32| {
            format!(
                "REGISTER sip:pbx.local SIP/2.0\r\nVia: SIP/2.0/UDP {ip}:5060;branch=z9hG4bKr{ext}{cseq};rport\r\n\
                 From: <sip:{ext}@pbx.local>;tag=r{ext}\r\nTo: <sip:{ext}@pbx.local>\r\nCall-ID: reg-{ext}-{ip}\r\n\
                 CSeq: {cseq} REGISTER\r\nMax-Forwards: 70\r\nContact: <sip:{ext}@{ip}:5060>\r\nExpires: 3600\r\n\
                 {auth}Content-Length: 0\r\n\r\n"
            )
        };
        let out = self.feed(ip, &reg("", 1));
        let chal = out[0]
            .1
            .header(&HeaderName::WwwAuthenticate)
            .expect("challenge");
        let chal = auth::Challenge::parse(chal).expect("parses");
        let creds = auth::authorize(
            &chal,
            "REGISTER",
            "sip:pbx.local",
            ext,
            &format!("pw-{ext}"),
            "cn",
            1,
        )
        .expect("authorize");
        let out = self.feed(ip, &reg(&format!("Authorization: {creds}\r\n"), 2));
        assert_eq!(out[0].1.status(), Some(200));
    }

    /// Sends an authenticated INVITE from 1001 at 10.0.0.1 to `dialled`; returns what
    /// came out after the credentials.
    pub(super) fn invite(&mut self, dialled: &str, call: &str) -> Vec<(SocketAddr, Message)> {
        self.invite_with(dialled, call, &sdp("10.0.0.1", 4000, "8 0"))
    }

    fn invite_with(&mut self, dialled: &str, call: &str, body: &str) -> Vec<(SocketAddr, Message)> {
        self.invite_from("1001", "10.0.0.1", dialled, call, body)
    }

    /// An authenticated INVITE from extension `ext` at `ip` (From tag "t<ext>").
    pub(super) fn invite_from(
        &mut self,
        ext: &str,
        ip: &str,
        dialled: &str,
        call: &str,
        body: &str,
    ) -> Vec<(SocketAddr, Message)> {
        let extra = self.extra.clone();
        let inv = |branch: &str, cseq: u32, auth: &str| {
            format!(
                "INVITE sip:{dialled}@pbx.local SIP/2.0\r\nVia: SIP/2.0/UDP {ip}:5060;branch=z9hG4bK{branch};rport\r\n\
                 From: <sip:{ext}@pbx.local>;tag=t{ext}\r\nTo: <sip:{dialled}@pbx.local>\r\nCall-ID: {call}\r\n\
                 CSeq: {cseq} INVITE\r\nMax-Forwards: 70\r\nContact: <sip:{ext}@{ip}:5060>\r\n{auth}{extra}\
                 Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let out = self.feed(ip, &inv(&format!("{call}a"), 1, ""));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1.status(), Some(407), "{:?}", out[0].1);
        let chal = out[0]
            .1
            .header(&HeaderName::ProxyAuthenticate)
            .expect("challenge");
        let chal = auth::Challenge::parse(chal).expect("parses");
        // ACK for the 407 (same branch: part of the INVITE transaction).
        let ack = format!(
            "ACK sip:{dialled}@pbx.local SIP/2.0\r\nVia: SIP/2.0/UDP {ip}:5060;branch=z9hG4bK{call}a;rport\r\n\
             From: <sip:{ext}@pbx.local>;tag=t{ext}\r\nTo: {}\r\nCall-ID: {call}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            out[0].1.header(&HeaderName::To).expect("to")
        );
        assert!(self.feed(ip, &ack).is_empty());
        let uri = format!("sip:{dialled}@pbx.local");
        let creds = auth::authorize(&chal, "INVITE", &uri, ext, &format!("pw-{ext}"), "cn", 1)
            .expect("authorize");
        self.feed(
            ip,
            &inv(
                &format!("{call}b"),
                2,
                &format!("Proxy-Authorization: {creds}\r\n"),
            ),
        )
    }

    /// Waits out every transaction and checks nothing of the call is left.
    pub(super) fn assert_idle(&mut self) {
        self.advance(Duration::from_secs(70));
        assert_eq!(self.ep.calls().len(), 0, "calls left");
        assert_eq!(self.ep.calls().table_sizes(), [0; 6], "call tables");
        assert_eq!(self.ep.transactions(), 0, "transactions left");
        assert!(self.office.open.is_empty(), "media sessions left open");
    }
}

/// A response from a phone to a request the PBX sent it.
pub(super) fn reply(
    req: &Message,
    status: u16,
    reason: &str,
    to_tag: &str,
    body: Option<&str>,
) -> String {
    let mut s = format!("SIP/2.0 {status} {reason}\r\n");
    for v in req.header_all(&HeaderName::Via) {
        s.push_str(&format!("Via: {v}\r\n"));
    }
    s.push_str(&format!(
        "From: {}\r\nTo: {};tag={to_tag}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:1002@10.0.0.2:5060>\r\n",
        req.header(&HeaderName::From).expect("from"),
        req.header(&HeaderName::To).expect("to"),
        req.call_id().expect("call-id"),
        req.header(&HeaderName::CSeq).expect("cseq"),
    ));
    match body {
        Some(b) => s.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )),
        None => s.push_str("Content-Length: 0\r\n\r\n"),
    }
    s
}

pub(super) fn find(out: &[(SocketAddr, Message)], pred: impl Fn(&Message) -> bool) -> &Message {
    &out.iter()
        .find(|(_, m)| pred(m))
        .unwrap_or_else(|| panic!("not sent: {out:#?}"))
        .1
}

pub(super) fn is_req(m: &Message, method: &str) -> bool {
    m.method().is_some_and(|x| x.as_str() == method)
}

pub(super) fn is_status(m: &Message, status: u16) -> bool {
    m.status() == Some(status)
}

/// The caller's in-dialog request (BYE, ACK) towards the PBX.
pub(super) fn caller_request(method: &str, ok: &Message, cseq: u32, branch: &str) -> String {
    format!(
        "{method} sip:pbx@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{branch};rport\r\n\
         From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        ok.header(&HeaderName::From).expect("from"),
        ok.header(&HeaderName::To).expect("to"),
        ok.call_id().expect("call-id"),
    )
}

#[test]
fn call_is_answered_and_hung_up_by_the_caller() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    let out = rig.invite("1002", "c1");
    assert!(out.iter().any(|(_, m)| is_status(m, 100)));
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    assert_eq!(
        fork.request_uri().map(|u| u.to_string()),
        Some("sip:1002@10.0.0.2:5060".into())
    );
    // The callee sees the box's media address, never the caller's.
    let body = String::from_utf8_lossy(fork.body()).into_owned();
    assert!(body.contains("c=IN IP4 192.0.2.1"), "{body}");
    assert!(!body.contains("10.0.0.1"));
    assert!(fork
        .header(&HeaderName::From)
        .is_some_and(|f| f.contains("Phone 1001")));

    let out = rig.feed("10.0.0.2", &reply(&fork, 180, "Ringing", "bob", None));
    let ringing = find(&out, |m| is_status(m, 180));
    let our_tag = ringing.to_header().expect("to").tag().map(str::to_owned);
    assert!(our_tag.is_some());

    let answer = sdp("10.0.0.2", 5000, "8");
    let out = rig.feed("10.0.0.2", &reply(&fork, 200, "OK", "bob", Some(&answer)));
    let ack = find(&out, |m| is_req(m, "ACK"));
    assert_eq!(ack.cseq().expect("cseq").seq, 1);
    let ok = find(&out, |m| is_status(m, 200)).clone();
    assert_eq!(
        ok.to_header().expect("to").tag().map(str::to_owned),
        our_tag,
        "one dialog towards the caller"
    );
    assert!(String::from_utf8_lossy(ok.body()).contains("c=IN IP4 192.0.2.1"));
    // Both legs were configured with what they negotiated.
    let sides: Vec<Side> = rig.office.configured.iter().map(|c| c.1).collect();
    assert!(sides.contains(&Side::Caller) && sides.contains(&Side::Callee));
    let callee_leg = rig
        .office
        .configured
        .iter()
        .find(|c| c.1 == Side::Callee)
        .expect("callee leg");
    assert_eq!(callee_leg.2.remote, "10.0.0.2:5000".parse().expect("addr"));

    // Until the caller ACKs, the 2xx is retransmitted.
    let again = rig.advance(Duration::from_millis(600));
    assert!(again.iter().any(|(_, m)| is_status(m, 200)));
    assert!(rig
        .feed("10.0.0.1", &caller_request("ACK", &ok, 2, "ack1"))
        .is_empty());
    assert_eq!(rig.office.active.len(), 1, "media watched once answered");
    assert!(rig.advance(Duration::from_secs(5)).is_empty());

    let out = rig.feed("10.0.0.1", &caller_request("BYE", &ok, 3, "bye1"));
    assert!(out.iter().any(|(_, m)| is_status(m, 200)));
    let bye = find(&out, |m| is_req(m, "BYE")).clone();
    assert_eq!(bye.call_id().ok(), fork.call_id().ok());
    rig.feed("10.0.0.2", &reply(&bye, 200, "OK", "bob", None));

    assert_eq!(rig.records.len(), 1);
    let r = &rig.records[0];
    assert_eq!(r.disposition, Disposition::Answered);
    assert_eq!(r.hangup, Some(Hangup::Caller));
    assert_eq!(r.destination.as_deref(), Some("1002"));
    assert!(r.answer.is_some());
    rig.assert_idle();
}

/// RFC 3261 sec. 12.1.1: our 180 and 200 carry the caller's proxies' Record-Route headers,
/// in order (a provider that bridges UDP to our TLS flow needs its ACK and BYE back).
#[test]
fn ringing_and_answer_copy_the_record_route_of_the_invite() {
    let mut rig = Rig::new();
    rig.extra = "Record-Route: <sip:10.9.9.9:5061;transport=tls;r2=on;lr>\r\n\
                 Record-Route: <sip:10.9.9.9;r2=on;lr>\r\n"
        .into();
    rig.register("1002", "10.0.0.2");
    let out = rig.invite("1002", "rr1");
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    assert!(
        fork.header(&HeaderName::RecordRoute).is_none(),
        "a B2BUA starts a new dialog towards the callee"
    );
    let rr = |m: &Message| -> Vec<String> {
        m.header_all(&HeaderName::RecordRoute)
            .map(str::to_owned)
            .collect()
    };
    let expected = vec![
        "<sip:10.9.9.9:5061;transport=tls;r2=on;lr>".to_owned(),
        "<sip:10.9.9.9;r2=on;lr>".to_owned(),
    ];
    let out = rig.feed("10.0.0.2", &reply(&fork, 180, "Ringing", "bob", None));
    assert_eq!(rr(find(&out, |m| is_status(m, 180))), expected);
    let answer = sdp("10.0.0.2", 5000, "8");
    let out = rig.feed("10.0.0.2", &reply(&fork, 200, "OK", "bob", Some(&answer)));
    assert_eq!(rr(find(&out, |m| is_status(m, 200))), expected);
}

#[test]
fn callee_hangs_up() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    let out = rig.invite("1002", "c2");
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    let out = rig.feed(
        "10.0.0.2",
        &reply(&fork, 200, "OK", "bob", Some(&sdp("10.0.0.2", 5000, "8"))),
    );
    let ok = find(&out, |m| is_status(m, 200)).clone();
    rig.feed("10.0.0.1", &caller_request("ACK", &ok, 2, "ack2"));
    // The callee's BYE: To is the box's From tag on the B leg.
    let bye = format!(
        "BYE sip:pbx@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKbb1;rport\r\n\
         From: {};tag=bob\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 7 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        fork.header(&HeaderName::To).expect("to"),
        fork.header(&HeaderName::From).expect("from"),
        fork.call_id().expect("call-id"),
    );
    let out = rig.feed("10.0.0.2", &bye);
    assert!(out.iter().any(|(_, m)| is_status(m, 200)));
    let to_caller = find(&out, |m| is_req(m, "BYE"));
    assert_eq!(to_caller.call_id().ok(), Some("c2"));
    assert_eq!(rig.records[0].hangup, Some(Hangup::Callee));
    // A second BYE for the same dialog finds nothing.
    let out = rig.feed(
        "10.0.0.2",
        &bye.replace("bb1", "bb2").replace("7 BYE", "8 BYE"),
    );
    assert!(is_status(&out[0].1, 481));
    rig.assert_idle();
}

#[test]
fn cancel_while_ringing_gives_487_and_cancels_the_callee() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    let out = rig.invite("1002", "c3");
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    rig.feed("10.0.0.2", &reply(&fork, 180, "Ringing", "bob", None));
    let cancel = "CANCEL sip:1002@pbx.local SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKc3b;rport\r\n\
         From: <sip:1001@pbx.local>;tag=t1001\r\nTo: <sip:1002@pbx.local>\r\nCall-ID: c3\r\n\
         CSeq: 2 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    let out = rig.feed("10.0.0.1", cancel);
    let statuses: Vec<u16> = out.iter().filter_map(|(_, m)| m.status()).collect();
    assert_eq!(statuses, vec![200, 487], "200 for the CANCEL, then 487");
    let tags: Vec<Option<String>> = out
        .iter()
        .filter(|(_, m)| m.status().is_some())
        .map(|(_, m)| m.to_header().ok().and_then(|t| t.tag().map(str::to_owned)))
        .collect();
    assert!(
        tags[0].is_some() && tags[0] == tags[1],
        "same To tag (sec. 9.2): {tags:?}"
    );
    let cancel_b = find(&out, |m| is_req(m, "CANCEL")).clone();
    assert_eq!(cancel_b.top_via().ok(), fork.top_via().ok(), "same branch");
    // The callee answers the CANCEL and its INVITE; the box ACKs the 487.
    rig.feed("10.0.0.2", &reply(&cancel_b, 200, "OK", "bob", None));
    let out = rig.feed(
        "10.0.0.2",
        &reply(&fork, 487, "Request Terminated", "bob", None),
    );
    assert!(out.iter().any(|(_, m)| is_req(m, "ACK")));
    assert_eq!(rig.records[0].disposition, Disposition::Cancelled);
    rig.assert_idle();
}

#[test]
fn busy_callee_gives_486_and_dnd_gives_busy_at_once() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    let out = rig.invite("1002", "c4");
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    let out = rig.feed("10.0.0.2", &reply(&fork, 486, "Busy Here", "bob", None));
    assert!(out.iter().any(|(_, m)| is_status(m, 486)));
    assert!(out.iter().any(|(_, m)| is_req(m, "ACK")));
    assert_eq!(rig.records[0].disposition, Disposition::Busy);

    rig.register("1004", "10.0.0.4");
    let out = rig.invite("1004", "c5");
    assert!(
        out.iter().all(|(_, m)| !is_req(m, "INVITE")),
        "DND rings nobody"
    );
    assert!(out.iter().any(|(_, m)| is_status(m, 486)));
    assert_eq!(rig.records[1].disposition, Disposition::Busy);
    rig.assert_idle();
}

#[test]
fn refusals_carry_a_status_and_a_record() {
    let mut rig = Rig::new();
    let cases = [
        ("1003", 480, Disposition::NoAnswer), // exists, not registered
        ("1099", 404, Disposition::Failed),   // no such extension
        ("10", 484, Disposition::Failed),     // prefix of extensions
        ("0900123456", 403, Disposition::Blocked),
        ("+49900123456", 403, Disposition::Blocked),
        ("112", 503, Disposition::Failed), // emergency: no trunk yet, says so
        ("02111234567", 503, Disposition::Failed),
    ];
    for (i, (dialled, status, disposition)) in cases.iter().enumerate() {
        let out = rig.invite(dialled, &format!("r{i}"));
        let m = &out.last().expect("an answer").1;
        assert_eq!(m.status(), Some(*status), "{dialled}: {m:?}");
        assert_eq!(
            rig.records.last().map(|r| r.disposition),
            Some(*disposition)
        );
        assert!(rig.records.last().is_some_and(|r| r.reason.is_some()));
        if *status == 403 {
            assert!(m.reason().is_some_and(|r| r.contains("0900")), "{m:?}");
        }
    }
    assert!(
        rig.office.open.is_empty(),
        "no media left open by refused calls"
    );
    rig.assert_idle();
}

#[test]
fn ring_timeout_gives_408_and_cancels() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    let out = rig.invite("1002", "c6");
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    rig.feed("10.0.0.2", &reply(&fork, 180, "Ringing", "bob", None));
    let out = rig.advance(Duration::from_secs(31));
    assert!(out.iter().any(|(_, m)| is_status(m, 408)));
    let cancel = find(&out, |m| is_req(m, "CANCEL")).clone();
    rig.feed("10.0.0.2", &reply(&cancel, 200, "OK", "bob", None));
    rig.feed(
        "10.0.0.2",
        &reply(&fork, 487, "Request Terminated", "bob", None),
    );
    assert_eq!(rig.records[0].disposition, Disposition::NoAnswer);
    rig.assert_idle();
}

#[test]
fn forked_call_cancels_the_losers_and_hangs_up_a_late_answer() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    rig.register("1002", "10.0.0.3");
    let out = rig.invite("1002", "c7");
    let forks: Vec<Message> = out
        .iter()
        .filter(|(_, m)| is_req(m, "INVITE"))
        .map(|(_, m)| m.clone())
        .collect();
    assert_eq!(forks.len(), 2, "both contacts ring");
    let (a, b) = (&forks[0], &forks[1]);
    rig.feed("10.0.0.2", &reply(a, 180, "Ringing", "ta", None));
    rig.feed("10.0.0.3", &reply(b, 180, "Ringing", "tb", None));
    let out = rig.feed(
        "10.0.0.2",
        &reply(a, 200, "OK", "ta", Some(&sdp("10.0.0.2", 5000, "8"))),
    );
    let cancel = find(&out, |m| is_req(m, "CANCEL")).clone();
    assert_eq!(cancel.top_via().ok(), b.top_via().ok());
    // The loser answers anyway (its 200 crossed the CANCEL): ACK and BYE it.
    rig.feed("10.0.0.3", &reply(&cancel, 200, "OK", "tb", None));
    let out = rig.feed(
        "10.0.0.3",
        &reply(b, 200, "OK", "tb", Some(&sdp("10.0.0.3", 5002, "8"))),
    );
    assert!(out.iter().any(|(_, m)| is_req(m, "ACK")));
    let bye = find(&out, |m| is_req(m, "BYE")).clone();
    rig.feed("10.0.0.3", &reply(&bye, 200, "OK", "tb", None));
    assert_eq!(rig.ep.calls().len(), 1, "the call itself goes on");
    rig.advance(Duration::from_secs(40));
    // No ACK from the caller in 64*T1: the box hangs up both sides.
    assert_eq!(rig.ep.calls().len(), 0);
    assert_eq!(rig.records[0].hangup, Some(Hangup::System));
    rig.assert_idle();
}

#[test]
fn reinvite_for_hold_is_answered_by_the_box() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    let out = rig.invite("1002", "c8");
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    let out = rig.feed(
        "10.0.0.2",
        &reply(&fork, 200, "OK", "bob", Some(&sdp("10.0.0.2", 5000, "8"))),
    );
    let ok = find(&out, |m| is_status(m, 200)).clone();
    rig.feed("10.0.0.1", &caller_request("ACK", &ok, 2, "ack8"));
    let hold = sdp("10.0.0.1", 4000, "8").replace("a=sendrecv", "a=sendonly");
    let reinvite = caller_request("INVITE", &ok, 3, "re8").replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Contact: <sip:1001@10.0.0.1:5060>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{hold}",
            hold.len()
        ),
    );
    let out = rig.feed("10.0.0.1", &reinvite);
    let answer = find(&out, |m| is_status(m, 200));
    let body = String::from_utf8_lossy(answer.body()).into_owned();
    assert!(body.contains("a=recvonly"), "{body}");
    let last = rig.office.configured.last().expect("reconfigured");
    assert_eq!(last.1, Side::Caller);
    // Garbage SDP in a re-INVITE is a 400, and the call survives it.
    let bad = caller_request("INVITE", &ok, 4, "re9").replace(
        "Content-Length: 0\r\n\r\n",
        "Contact: <sip:1001@10.0.0.1:5060>\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nhello",
    );
    let out = rig.feed("10.0.0.1", &bad);
    assert!(out.iter().any(|(_, m)| is_status(m, 400)));
    assert_eq!(rig.ep.calls().len(), 1);
    let out = rig.feed("10.0.0.1", &caller_request("BYE", &ok, 5, "bye8"));
    let bye = find(&out, |m| is_req(m, "BYE")).clone();
    rig.feed("10.0.0.2", &reply(&bye, 200, "OK", "bob", None));
    rig.assert_idle();
}

#[test]
fn bad_sdp_is_400_and_no_common_codec_is_488_with_warning() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    let out = rig.invite_with("1002", "c9", "v=0\r\nthis is not sdp\r\n");
    let m = &out.last().expect("answer").1;
    assert_eq!(m.status(), Some(400), "{m:?}");
    assert!(m.reason().is_some_and(|r| r.contains("SDP")), "{m:?}");

    let g729 = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                m=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let out = rig.invite_with("1002", "c10", g729);
    let m = &out.last().expect("answer").1;
    assert_eq!(m.status(), Some(488), "{m:?}");
    assert!(
        m.header(&HeaderName::Other("Warning".into())).is_some(),
        "{m:?}"
    );
    assert!(out.iter().all(|(_, m)| !is_req(m, "INVITE")), "nobody rang");
    assert!(rig.office.open.is_empty());
    rig.assert_idle();
}

/// A response from the phone at `ip` (its Contact is its own address).
pub(super) fn reply_from(
    ip: &str,
    req: &Message,
    status: u16,
    tag: &str,
    body: Option<&str>,
) -> String {
    reply(req, status, "X", tag, body).replace("10.0.0.2:5060>", &format!("{ip}:5060>"))
}

#[test]
fn busy_forwards_to_the_busy_target_and_no_answer_to_the_no_answer_target() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    rig.register("1003", "10.0.0.3");
    rig.register("1005", "10.0.0.5");
    if let Some(p) = rig.office.profiles.get_mut("1002") {
        p.forward_busy = Some(ForwardTarget::Internal("1003".into()));
        p.forward_noanswer = Some(ForwardTarget::Internal("1005".into()));
        p.noanswer_secs = 10;
    }
    // Busy: 1002 answers 486, the call moves on to 1003, which answers.
    let out = rig.invite("1002", "f1");
    let first = find(&out, |m| is_req(m, "INVITE")).clone();
    let out = rig.feed("10.0.0.2", &reply(&first, 486, "Busy Here", "b2", None));
    assert!(
        out.iter().all(|(_, m)| m.status() != Some(486)),
        "caller not told"
    );
    let second = find(&out, |m| is_req(m, "INVITE")).clone();
    assert!(second.request_uri().is_some_and(|u| u.host() == "10.0.0.3"));
    let out = rig.feed(
        "10.0.0.3",
        &reply_from(
            "10.0.0.3",
            &second,
            200,
            "b3",
            Some(&sdp("10.0.0.3", 5000, "8")),
        ),
    );
    let ok = find(&out, |m| is_status(m, 200)).clone();
    rig.feed("10.0.0.1", &caller_request("ACK", &ok, 2, "fa1"));
    let out = rig.feed("10.0.0.1", &caller_request("BYE", &ok, 3, "fb1"));
    let bye = find(&out, |m| is_req(m, "BYE")).clone();
    assert!(bye.request_uri().is_some_and(|u| u.host() == "10.0.0.3"));
    assert_eq!(rig.records[0].destination.as_deref(), Some("1003"));

    // No answer within 10 s: CANCEL 1002, ring 1005.
    let out = rig.invite("1002", "f2");
    let first = find(&out, |m| is_req(m, "INVITE")).clone();
    rig.feed("10.0.0.2", &reply(&first, 180, "Ringing", "c2", None));
    let out = rig.advance(Duration::from_secs(11));
    assert!(out.iter().any(|(_, m)| is_req(m, "CANCEL")));
    let fwd = find(&out, |m| is_req(m, "INVITE"));
    assert!(fwd.request_uri().is_some_and(|u| u.host() == "10.0.0.5"));
    assert!(out.iter().all(|(_, m)| m.status() != Some(408)));
    rig.advance(Duration::from_secs(31));
    let last = rig.records.last().expect("record");
    assert_eq!(last.disposition, Disposition::NoAnswer);
    rig.assert_idle();
}

#[test]
fn forwarding_loops_are_refused() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    if let Some(p) = rig.office.profiles.get_mut("1002") {
        p.forward_always = Some(ForwardTarget::Internal("1003".into()));
    }
    if let Some(p) = rig.office.profiles.get_mut("1003") {
        p.forward_always = Some(ForwardTarget::Internal("1002".into()));
    }
    let out = rig.invite("1002", "l1");
    assert!(
        out.iter().all(|(_, m)| !is_req(m, "INVITE")),
        "nobody rings"
    );
    assert!(out.iter().any(|(_, m)| is_status(m, 482)));
    // External forwarding: forbidden by the site (checked per call), then allowed but
    // without a trunk, which does not exist yet.
    if let Some(p) = rig.office.profiles.get_mut("1003") {
        p.forward_always = Some(ForwardTarget::External("+4921155555".into()));
    }
    let out = rig.invite("1002", "l2");
    assert!(out.iter().any(|(_, m)| is_status(m, 403)));
    assert_eq!(
        rig.records.last().map(|r| r.disposition),
        Some(Disposition::Blocked)
    );
    rig.office.external_forwarding = true;
    let out = rig.invite("1002", "l3");
    assert!(out.iter().any(|(_, m)| is_status(m, 503)));
    rig.assert_idle();
}

#[test]
fn simultaneous_group_rings_everyone_and_ordered_group_one_after_the_other() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    rig.register("1003", "10.0.0.3");
    rig.register("1004", "10.0.0.4"); // on do-not-disturb: skipped
    let mut g = RingGroup::new("600", vec!["1002".into(), "1003".into(), "1004".into()]);
    g.ring_secs = 15;
    rig.office.groups.insert("600".into(), g.clone());
    let out = rig.invite("600", "g1");
    let hosts: HashSet<String> = out
        .iter()
        .filter(|(_, m)| is_req(m, "INVITE"))
        .filter_map(|(_, m)| m.request_uri().map(|u| u.host().to_owned()))
        .collect();
    assert_eq!(hosts, HashSet::from(["10.0.0.2".into(), "10.0.0.3".into()]));
    // Nobody answers: 480 after 15 s.
    let out = rig.advance(Duration::from_secs(16));
    assert!(out.iter().any(|(_, m)| is_status(m, 480)), "{out:#?}");
    assert_eq!(rig.records[0].disposition, Disposition::NoAnswer);

    g.number = "601".into();
    g.strategy = RingStrategy::Ordered;
    g.noanswer_target = Some(ForwardTarget::Internal("1005".into()));
    rig.office.groups.insert("601".into(), g);
    rig.register("1005", "10.0.0.5");
    let out = rig.invite("601", "g2");
    let invites: Vec<&Message> = out
        .iter()
        .filter(|(_, m)| is_req(m, "INVITE"))
        .map(|(_, m)| m)
        .collect();
    assert_eq!(invites.len(), 1);
    assert!(invites[0]
        .request_uri()
        .is_some_and(|u| u.host() == "10.0.0.2"));
    let first = invites[0].clone();
    rig.feed("10.0.0.2", &reply(&first, 180, "Ringing", "o2", None));
    let out = rig.advance(Duration::from_secs(16));
    assert!(out.iter().any(|(_, m)| is_req(m, "CANCEL")));
    let second = find(&out, |m| is_req(m, "INVITE")).clone();
    assert!(second.request_uri().is_some_and(|u| u.host() == "10.0.0.3"));
    // 1003 is busy: the group moves on (1004 is on DND) to its no-answer target.
    let out = rig.feed(
        "10.0.0.3",
        &reply_from("10.0.0.3", &second, 486, "o3", None),
    );
    let third = find(&out, |m| is_req(m, "INVITE")).clone();
    assert!(third.request_uri().is_some_and(|u| u.host() == "10.0.0.5"));
    let out = rig.feed(
        "10.0.0.5",
        &reply_from(
            "10.0.0.5",
            &third,
            200,
            "o5",
            Some(&sdp("10.0.0.5", 5000, "8")),
        ),
    );
    let ok = find(&out, |m| is_status(m, 200)).clone();
    rig.feed("10.0.0.1", &caller_request("ACK", &ok, 2, "ga"));
    let out = rig.feed("10.0.0.1", &caller_request("BYE", &ok, 3, "gb"));
    let bye = find(&out, |m| is_req(m, "BYE")).clone();
    rig.feed("10.0.0.5", &reply_from("10.0.0.5", &bye, 200, "o5", None));
    let r = rig.records.last().expect("record");
    assert_eq!(r.disposition, Disposition::Answered);
    assert_eq!(r.destination.as_deref(), Some("1005"));
    // The late 487 of the first member arrives after all that: nothing breaks.
    rig.feed(
        "10.0.0.2",
        &reply(&first, 487, "Request Terminated", "o2", None),
    );
    rig.assert_idle();
}

/// A request from the phone at `ip` in the dialog the PBX formed with `invite` (the
/// PBX's INVITE to it, answered with To tag `tag`).
pub(super) fn callee_request(
    ip: &str,
    invite: &Message,
    tag: &str,
    method: &str,
    cseq: u32,
    extra: &str,
) -> String {
    format!(
        "{method} sip:pbx@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {ip}:5060;branch=z9hG4bK{method}{cseq}{tag};rport\r\n\
         From: {};tag={tag}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n\
         Contact: <sip:x@{ip}:5060>\r\n{extra}Content-Length: 0\r\n\r\n",
        invite.header(&HeaderName::To).expect("to"),
        invite.header(&HeaderName::From).expect("from"),
        invite.call_id().expect("call-id"),
    )
}

/// 1001 calls `dialled`, the phone at `ip` answers with tag `tag` and the caller ACKs.
/// Returns the PBX's INVITE to the callee and its 200 to the caller.
pub(super) fn answered(
    rig: &mut Rig,
    dialled: &str,
    ip: &str,
    tag: &str,
    call: &str,
) -> (Message, Message) {
    let out = rig.invite(dialled, call);
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    let out = rig.feed(
        ip,
        &reply_from(ip, &fork, 200, tag, Some(&sdp(ip, 5000, "8"))),
    );
    let ok = find(&out, |m| is_status(m, 200)).clone();
    rig.feed(
        "10.0.0.1",
        &caller_request("ACK", &ok, 2, &format!("ack{call}")),
    );
    (fork, ok)
}

fn frag(m: &Message) -> String {
    String::from_utf8_lossy(m.body()).into_owned()
}

#[test]
fn blind_transfer_by_the_callee_connects_the_caller_to_the_target() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    rig.register("1003", "10.0.0.3");
    let (fork, ok) = answered(&mut rig, "1002", "10.0.0.2", "bob", "t1");
    let refer = callee_request(
        "10.0.0.2",
        &fork,
        "bob",
        "REFER",
        5,
        "Refer-To: <sip:1003@pbx.local>\r\nReferred-By: <sip:1002@pbx.local>\r\n",
    );
    let out = rig.feed("10.0.0.2", &refer);
    let pos = |p: &dyn Fn(&Message) -> bool| out.iter().position(|(_, m)| p(m));
    let accepted = pos(&|m| is_status(m, 202)).expect("202");
    assert!(
        accepted < pos(&|m| is_req(m, "NOTIFY")).expect("NOTIFY"),
        "202 first"
    );
    let notify = find(&out, |m| is_req(m, "NOTIFY"));
    assert!(frag(notify).starts_with("SIP/2.0 100"));
    let target = find(&out, |m| is_req(m, "INVITE")).clone();
    assert!(target.request_uri().is_some_and(|u| u.host() == "10.0.0.3"));
    assert!(target
        .header(&HeaderName::From)
        .is_some_and(|f| f.contains("1001")));
    let out = rig.feed(
        "10.0.0.3",
        &reply_from(
            "10.0.0.3",
            &target,
            200,
            "carol",
            Some(&sdp("10.0.0.3", 6000, "8")),
        ),
    );
    assert!(out
        .iter()
        .any(|(d, m)| is_req(m, "ACK") && d.ip().to_string() == "10.0.0.3"));
    let done = find(&out, |m| is_req(m, "NOTIFY"));
    assert!(frag(done).starts_with("SIP/2.0 200"), "{}", frag(done));
    let bye = find(&out, |m| is_req(m, "BYE")).clone();
    assert_eq!(
        bye.call_id().ok(),
        fork.call_id().ok(),
        "the transferor is let go"
    );
    rig.feed("10.0.0.2", &reply(&bye, 200, "OK", "bob", None));
    let last = rig.office.configured.last().expect("relay re-pointed");
    assert_eq!(
        (last.1, last.2.remote),
        (Side::Callee, "10.0.0.3:6000".parse().expect("addr"))
    );
    // The target hangs up: the caller gets the BYE.
    let out = rig.feed(
        "10.0.0.3",
        &callee_request("10.0.0.3", &target, "carol", "BYE", 2, ""),
    );
    assert!(out.iter().any(|(_, m)| is_status(m, 200)));
    let bye = find(&out, |m| is_req(m, "BYE"));
    assert_eq!(bye.call_id().ok(), ok.call_id().ok());
    let r = rig.records.last().expect("record");
    assert_eq!(r.destination.as_deref(), Some("1003"));
    assert_eq!(r.reason.as_deref(), Some("transferred to 1003"));
    rig.assert_idle();
}

#[test]
fn blind_transfer_to_a_busy_target_keeps_the_call() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    rig.register("1003", "10.0.0.3");
    let (fork, _ok) = answered(&mut rig, "1002", "10.0.0.2", "bob", "t2");
    let refer = callee_request(
        "10.0.0.2",
        &fork,
        "bob",
        "REFER",
        5,
        "Refer-To: <sip:1003@pbx.local>\r\n",
    );
    let out = rig.feed("10.0.0.2", &refer);
    let target = find(&out, |m| is_req(m, "INVITE")).clone();
    let out = rig.feed(
        "10.0.0.3",
        &reply_from("10.0.0.3", &target, 486, "carol", None),
    );
    let n = find(&out, |m| is_req(m, "NOTIFY"));
    assert!(frag(n).starts_with("SIP/2.0 486"), "{}", frag(n));
    assert!(out.iter().all(|(_, m)| !is_req(m, "BYE")));
    assert_eq!(rig.ep.calls().len(), 1);
    // A transfer to a blocked number is refused at once.
    let refer = callee_request(
        "10.0.0.2",
        &fork,
        "bob",
        "REFER",
        6,
        "Refer-To: <sip:0900123456@pbx.local>\r\n",
    );
    let out = rig.feed("10.0.0.2", &refer);
    assert!(out.iter().any(|(_, m)| is_status(m, 403)));
    let out = rig.feed(
        "10.0.0.2",
        &callee_request("10.0.0.2", &fork, "bob", "BYE", 7, ""),
    );
    let bye = find(&out, |m| is_req(m, "BYE")).clone();
    rig.feed("10.0.0.1", &reply(&bye, 200, "OK", "t1001", None));
    rig.assert_idle();
}

#[test]
fn attended_transfer_joins_the_held_caller_with_the_consulted_target() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    rig.register("1003", "10.0.0.3");
    // Call 1: 1001 -> 1002.
    let (fork1, ok1) = answered(&mut rig, "1002", "10.0.0.2", "bob", "a1");
    // Call 2: 1002 consults 1003.
    let out = rig.invite_from(
        "1002",
        "10.0.0.2",
        "1003",
        "a2",
        &sdp("10.0.0.2", 5002, "8"),
    );
    let fork2 = find(&out, |m| is_req(m, "INVITE")).clone();
    let out = rig.feed(
        "10.0.0.3",
        &reply_from(
            "10.0.0.3",
            &fork2,
            200,
            "carol",
            Some(&sdp("10.0.0.3", 6000, "8")),
        ),
    );
    let ok2 = find(&out, |m| is_status(m, 200)).clone();
    let ack2 = format!(
        "ACK sip:pbx@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKacka2;rport\r\n\
         From: {}\r\nTo: {}\r\nCall-ID: a2\r\nCSeq: 2 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        ok2.header(&HeaderName::From).expect("from"),
        ok2.header(&HeaderName::To).expect("to"),
    );
    rig.feed("10.0.0.2", &ack2);
    assert_eq!(rig.ep.calls().len(), 2);
    // 1002 transfers: REFER in call 1 naming its dialog in call 2.
    let our_tag = ok2
        .to_header()
        .expect("to")
        .tag()
        .map(str::to_owned)
        .expect("tag");
    let refer_to = format!(
        "Refer-To: <sip:1003@pbx.local?Replaces=a2%3Bto-tag%3D{our_tag}%3Bfrom-tag%3Dt1002>\r\n"
    );
    let out = rig.feed(
        "10.0.0.2",
        &callee_request("10.0.0.2", &fork1, "bob", "REFER", 5, &refer_to),
    );
    assert!(out.iter().any(|(_, m)| is_status(m, 202)), "{out:#?}");
    let reinvite = find(&out, |m| is_req(m, "INVITE")).clone();
    assert_eq!(
        reinvite.call_id().ok(),
        fork2.call_id().ok(),
        "in the target's dialog"
    );
    // Glare: the target re-INVITEs at the same moment: 491, our re-INVITE goes on.
    let body = sdp("10.0.0.3", 6000, "8");
    let theirs = callee_request("10.0.0.3", &fork2, "carol", "INVITE", 2, "").replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    let out = rig.feed("10.0.0.3", &theirs);
    assert!(out.iter().any(|(_, m)| is_status(m, 491)), "{out:#?}");
    let out = rig.feed(
        "10.0.0.3",
        &reply_from(
            "10.0.0.3",
            &reinvite,
            200,
            "carol",
            Some(&sdp("10.0.0.3", 6000, "8")),
        ),
    );
    assert!(out.iter().any(|(_, m)| is_req(m, "ACK")));
    let n = find(&out, |m| is_req(m, "NOTIFY"));
    assert!(frag(n).starts_with("SIP/2.0 200"));
    let byes: Vec<&Message> = out
        .iter()
        .filter(|(_, m)| is_req(m, "BYE"))
        .map(|(_, m)| m)
        .collect();
    assert_eq!(byes.len(), 2, "the transferor leaves both calls: {byes:#?}");
    for b in &byes {
        assert!(
            b.request_uri().is_some_and(|u| u.host() == "10.0.0.2"),
            "{b:#?}"
        );
        rig.feed("10.0.0.2", &reply(b, 200, "OK", "x", None));
    }
    assert_eq!(rig.ep.calls().len(), 1);
    // 1003 hangs up in its (moved) dialog: 1001 gets the BYE.
    let out = rig.feed(
        "10.0.0.3",
        &callee_request("10.0.0.3", &fork2, "carol", "BYE", 3, ""),
    );
    assert!(out.iter().any(|(_, m)| is_status(m, 200)));
    let bye = find(&out, |m| is_req(m, "BYE"));
    assert_eq!(bye.call_id().ok(), ok1.call_id().ok());
    rig.assert_idle();
}

#[test]
fn group_pickup_takes_the_ringing_call() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    rig.register("1003", "10.0.0.3");
    for n in ["1002", "1003"] {
        if let Some(p) = rig.office.profiles.get_mut(n) {
            p.pickup_group = Some(1);
        }
    }
    let out = rig.invite("1002", "p1");
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    rig.feed("10.0.0.2", &reply(&fork, 180, "Ringing", "bob", None));
    // Nothing rings for 1005 (no group): its pickup finds nothing.
    rig.register("1005", "10.0.0.5");
    let out = rig.invite_from("1005", "10.0.0.5", "*8", "p0", &sdp("10.0.0.5", 7000, "8"));
    assert!(out.iter().any(|(_, m)| is_status(m, 480)));
    let out = rig.invite_from("1003", "10.0.0.3", "*8", "p2", &sdp("10.0.0.3", 6000, "8"));
    let to_picker = find(&out, |m| {
        is_status(m, 200) && m.call_id().ok() == Some("p2")
    })
    .clone();
    assert!(String::from_utf8_lossy(to_picker.body()).contains("192.0.2.1"));
    let to_caller = find(&out, |m| {
        is_status(m, 200) && m.call_id().ok() == Some("p1")
    })
    .clone();
    assert!(out.iter().any(|(_, m)| is_req(m, "CANCEL")));
    rig.feed(
        "10.0.0.2",
        &reply(&fork, 487, "Request Terminated", "bob", None),
    );
    rig.feed("10.0.0.1", &caller_request("ACK", &to_caller, 2, "pa1"));
    let ack = format!(
        "ACK sip:pbx@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bKpa2;rport\r\n\
         From: {}\r\nTo: {}\r\nCall-ID: p2\r\nCSeq: 2 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        to_picker.header(&HeaderName::From).expect("from"),
        to_picker.header(&HeaderName::To).expect("to"),
    );
    rig.feed("10.0.0.3", &ack);
    let again = rig.advance(Duration::from_secs(3));
    assert!(
        again.iter().all(|(_, m)| m.status() != Some(200)),
        "both ACKed: no 2xx retransmissions: {again:#?}"
    );
    let bye = format!(
        "BYE sip:pbx@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bKpb2;rport\r\n\
         From: {}\r\nTo: {}\r\nCall-ID: p2\r\nCSeq: 3 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        to_picker.header(&HeaderName::From).expect("from"),
        to_picker.header(&HeaderName::To).expect("to"),
    );
    let out = rig.feed("10.0.0.3", &bye);
    let bye_caller = find(&out, |m| is_req(m, "BYE")).clone();
    assert_eq!(bye_caller.call_id().ok(), Some("p1"));
    rig.feed("10.0.0.1", &reply(&bye_caller, 200, "OK", "t1001", None));
    let r = rig
        .records
        .iter()
        .find(|r| r.sip_call_id == "p1")
        .expect("record");
    assert_eq!(r.destination.as_deref(), Some("1003"));
    assert_eq!(r.disposition, Disposition::Answered);
    rig.assert_idle();
}

#[test]
fn session_timer_ends_a_call_the_caller_stopped_refreshing() {
    // Pings would notice the silent phones first; this test is about the timer.
    let mut rig = Rig::with(CallConfig {
        ping_interval: None,
        ..CallConfig::default()
    });
    rig.register("1002", "10.0.0.2");
    rig.extra = "Session-Expires: 30\r\nSupported: timer\r\n".into();
    let out = rig.invite("1002", "s0");
    let m = &out.last().expect("answer").1;
    assert_eq!(m.status(), Some(422));
    assert_eq!(m.header(&HeaderName::Other("Min-SE".into())), Some("90"));

    rig.extra = "Session-Expires: 120\r\nSupported: timer\r\n".into();
    let (fork, ok) = answered(&mut rig, "1002", "10.0.0.2", "bob", "s1");
    assert_eq!(
        ok.header(&HeaderName::Other("Session-Expires".into())),
        Some("120;refresher=uac")
    );
    assert_eq!(ok.header(&HeaderName::Require), Some("timer"));
    // A refresh at 50 s keeps the call; nothing after that ends it at 170 s.
    rig.advance(Duration::from_secs(50));
    let refresh = caller_request("UPDATE", &ok, 3, "upd1");
    let out = rig.feed("10.0.0.1", &refresh);
    assert!(out.iter().any(|(_, m)| is_status(m, 200)));
    assert_eq!(rig.ep.calls().len(), 1);
    // The refresh at 50 s moved the end to 50 + 120 - 32 = 138 s (the non-refresher
    // hangs up min(32 s, SE/3) early).
    assert!(rig.advance(Duration::from_secs(80)).is_empty());
    let out = rig.advance(Duration::from_secs(10));
    let mut byes: Vec<String> = out
        .iter()
        .filter(|(_, m)| is_req(m, "BYE"))
        .filter_map(|(_, m)| m.call_id().ok().map(str::to_owned))
        .collect();
    byes.sort();
    byes.dedup();
    assert_eq!(byes.len(), 2, "both phones hung up by the box");
    assert_eq!(
        rig.records[1].reason.as_deref(),
        Some("session timer expired")
    );
    assert!(fork.call_id().is_ok());
    rig.assert_idle();
}

#[test]
fn unsupported_required_extension_is_420() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    rig.extra = "Require: precondition\r\n".into();
    let out = rig.invite("1002", "x1");
    let m = &out.last().expect("answer").1;
    assert_eq!(m.status(), Some(420));
    assert_eq!(m.header(&HeaderName::Unsupported), Some("precondition"));
    rig.assert_idle();
}

#[test]
fn pings_keep_a_live_call_and_find_a_phone_that_forgot_it() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    let (_fork, _ok) = answered(&mut rig, "1002", "10.0.0.2", "bob", "k1");
    // First round: both phones answer (one with 501: a sign of life too).
    let out = rig.advance(Duration::from_secs(61));
    let mut seen = HashSet::new();
    for (_, p) in out.iter().filter(|(_, m)| is_req(m, "OPTIONS")) {
        let host = p.request_uri().map(|u| u.host().to_owned()).expect("host");
        if seen.insert(host.clone()) {
            let status = if host == "10.0.0.1" { 200 } else { 501 };
            rig.feed(&host, &reply(p, status, "X", "x", None));
        }
    }
    assert_eq!(seen.len(), 2);
    assert_eq!(rig.ep.calls().len(), 1, "answered pings keep the call");
    let out = rig.advance(Duration::from_secs(60));
    let to_callee = find(&out, |m| {
        is_req(m, "OPTIONS") && m.request_uri().is_some_and(|u| u.host() == "10.0.0.2")
    })
    .clone();
    // The callee rebooted: it knows no such dialog.
    let out = rig.feed(
        "10.0.0.2",
        &reply(
            &to_callee,
            481,
            "Call/Transaction Does Not Exist",
            "bob",
            None,
        ),
    );
    // The caller is hung up; the callee, which forgot the call, gets no BYE.
    let byes: Vec<&str> = out
        .iter()
        .filter(|(_, m)| is_req(m, "BYE"))
        .filter_map(|(_, m)| m.request_uri().map(|u| u.host()))
        .collect();
    assert_eq!(byes, ["10.0.0.1"]);
    assert_eq!(rig.records[0].hangup, Some(Hangup::System));
    rig.assert_idle();
}

#[test]
fn external_and_emergency_calls_go_to_the_trunk_with_e164_and_privacy() {
    let mut rig = Rig::new();
    rig.office.trunk = Some(TrunkTarget::new(
        "cloud",
        "sip.provider.example",
        flow_of("203.0.113.5"),
    ));
    let out = rig.invite("0211123456", "e1");
    let inv = find(&out, |m| is_req(m, "INVITE")).clone();
    assert_eq!(
        inv.request_uri().map(|u| u.to_string()),
        Some("sip:+49211123456@sip.provider.example".into())
    );
    assert!(inv.header(&HeaderName::Other("Privacy".into())).is_none());
    rig.feed(
        "203.0.113.5",
        &reply_from("203.0.113.5", &inv, 486, "prov", None),
    );
    let r = rig.records.last().expect("record");
    assert_eq!(r.direction, CallDirection::Outbound);
    assert_eq!(r.normalised.as_deref(), Some("+49211123456"));
    assert_eq!(r.route.as_deref(), Some("cloud"));
    assert_eq!(r.disposition, Disposition::Busy);

    // *31#: caller ID suppressed for this call.
    let out = rig.invite("*31#0211123456", "e2");
    let inv = find(&out, |m| is_req(m, "INVITE")).clone();
    assert_eq!(inv.header(&HeaderName::Other("Privacy".into())), Some("id"));
    assert!(inv
        .header(&HeaderName::From)
        .is_some_and(|f| f.contains("anonymous") && !f.contains("1001")));
    rig.feed(
        "203.0.113.5",
        &reply_from("203.0.113.5", &inv, 480, "prov", None),
    );

    // 112 with *31#: the emergency call goes out as 112, caller ID shown.
    let out = rig.invite("*31#112", "e3");
    let inv = find(&out, |m| is_req(m, "INVITE")).clone();
    assert_eq!(
        inv.request_uri().map(|u| u.to_string()),
        Some("sip:112@sip.provider.example".into())
    );
    assert!(inv.header(&HeaderName::Other("Privacy".into())).is_none());
    // Emergency calls do not give up ringing.
    rig.feed(
        "203.0.113.5",
        &reply_from("203.0.113.5", &inv, 180, "prov", None),
    );
    rig.advance(Duration::from_secs(45));
    assert_eq!(
        rig.ep.calls().len(),
        1,
        "still ringing after the normal ring time"
    );
    let cancel =
        "CANCEL sip:*31#112@pbx.local SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKe3b;rport\r\n\
         From: <sip:1001@pbx.local>;tag=t1001\r\nTo: <sip:*31#112@pbx.local>\r\nCall-ID: e3\r\n\
         CSeq: 2 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    let out = rig.feed("10.0.0.1", cancel);
    let c = find(&out, |m| is_req(m, "CANCEL")).clone();
    rig.feed("203.0.113.5", &reply(&c, 200, "OK", "prov", None));
    rig.feed(
        "203.0.113.5",
        &reply_from("203.0.113.5", &inv, 487, "prov", None),
    );
    rig.assert_idle();
}

#[test]
fn hold_plays_music_to_the_other_side_until_resumed() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    let (fork, ok) = answered(&mut rig, "1002", "10.0.0.2", "bob", "h1");
    let reinvite = |dir: &str, cseq: u32| {
        let body = sdp("10.0.0.1", 4000, "8").replace("a=sendrecv", dir);
        caller_request("INVITE", &ok, cseq, &format!("hold{cseq}")).replace(
            "Content-Length: 0\r\n\r\n",
            &format!(
                "Contact: <sip:1001@10.0.0.1:5060>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    rig.feed("10.0.0.1", &reinvite("a=sendonly", 3));
    let id = rig
        .office
        .sounds
        .first()
        .map(|s| s.0)
        .expect("music started");
    assert_eq!(
        rig.office.sounds,
        vec![(id, Side::Callee, Some(Sound::Hold))]
    );
    rig.feed("10.0.0.1", &reinvite("a=sendrecv", 4));
    assert_eq!(rig.office.sounds.last(), Some(&(id, Side::Callee, None)));
    let out = rig.feed("10.0.0.1", &caller_request("BYE", &ok, 5, "hb"));
    let bye = find(&out, |m| is_req(m, "BYE")).clone();
    rig.feed("10.0.0.2", &reply(&bye, 200, "OK", "bob", None));
    assert!(fork.call_id().is_ok());
    rig.assert_idle();
}

#[test]
fn feature_code_is_stored_confirmed_with_a_tone_and_hung_up() {
    let mut rig = Rig::new();
    let out = rig.invite("*78", "fc1");
    let ok = find(&out, |m| is_status(m, 200)).clone();
    assert!(rig.office.profiles.get("1001").is_some_and(|p| p.dnd));
    let id = match rig.office.sounds.as_slice() {
        [(id, Side::Caller, Some(Sound::Confirmation))] => *id,
        other => panic!("{other:?}"),
    };
    rig.feed("10.0.0.1", &caller_request("ACK", &ok, 2, "fca"));
    let now = rig.now;
    rig.ep
        .handle_playback_done(now, id, Side::Caller, &mut rig.office);
    let out = rig.collect();
    let bye = find(&out, |m| is_req(m, "BYE")).clone();
    rig.feed("10.0.0.1", &reply(&bye, 200, "OK", "t1001", None));
    assert!(rig.records[0]
        .reason
        .as_deref()
        .is_some_and(|r| r.starts_with("feature code")));
    // Forwarding to a number the store refuses: 403 with its reason, nothing stored.
    let out = rig.invite("*21*0211123456#", "fc2");
    let m = &out.last().expect("answer").1;
    assert_eq!(m.status(), Some(403), "{m:?}");
    assert!(m.reason().is_some_and(|r| r.contains("external")));
    assert!(rig
        .office
        .profiles
        .get("1001")
        .is_some_and(|p| p.forward_always.is_none()));
    rig.assert_idle();
}

#[test]
fn reliable_provisionals_for_a_caller_that_asks_for_100rel() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    rig.extra = "Supported: 100rel\r\n".into();
    let out = rig.invite("1002", "r1");
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    assert!(
        fork.header(&HeaderName::Require).is_none(),
        "not asked of the callee"
    );
    // The callee's early media: our 183 with SDP goes out reliably.
    let out = rig.feed(
        "10.0.0.2",
        &reply(
            &fork,
            183,
            "Session Progress",
            "bob",
            Some(&sdp("10.0.0.2", 5000, "8")),
        ),
    );
    let p183 = find(&out, |m| is_status(m, 183)).clone();
    assert_eq!(p183.header(&HeaderName::Require), Some("100rel"));
    let rseq = p183
        .header(&HeaderName::Other("RSeq".into()))
        .expect("RSeq")
        .to_owned();
    assert!(!p183.body().is_empty());
    // No PRACK yet: retransmitted after T1, and a 180 meanwhile is held back.
    let again = rig.advance(Duration::from_millis(600));
    assert!(again.iter().any(|(_, m)| is_status(m, 183)));
    let out = rig.feed("10.0.0.2", &reply(&fork, 180, "Ringing", "bob", None));
    assert!(out.iter().all(|(_, m)| !is_status(m, 180)));
    let prack = caller_request("PRACK", &p183, 3, "pr1").replace(
        "Content-Length: 0",
        &format!("RAck: {rseq} 2 INVITE\r\nContent-Length: 0"),
    );
    let out = rig.feed("10.0.0.1", &prack);
    assert!(out.iter().any(|(_, m)| is_status(m, 200)), "{out:#?}");
    assert!(rig
        .advance(Duration::from_secs(2))
        .iter()
        .all(|(_, m)| !is_status(m, 183)));
    // A PRACK for something we never sent: 481.
    let bad = caller_request("PRACK", &p183, 4, "pr2")
        .replace("Content-Length: 0", "RAck: 7 2 INVITE\r\nContent-Length: 0");
    let out = rig.feed("10.0.0.1", &bad);
    assert!(out.iter().any(|(_, m)| is_status(m, 481)));
    // The answer went out in the 183: the 200 carries no SDP.
    let out = rig.feed(
        "10.0.0.2",
        &reply(&fork, 200, "OK", "bob", Some(&sdp("10.0.0.2", 5000, "8"))),
    );
    let ok = find(&out, |m| {
        is_status(m, 200) && m.call_id().ok() == Some("r1")
    })
    .clone();
    assert!(ok.body().is_empty());
    rig.feed("10.0.0.1", &caller_request("ACK", &ok, 2, "ra"));
    let out = rig.feed("10.0.0.1", &caller_request("BYE", &ok, 5, "rb"));
    let bye = find(&out, |m| is_req(m, "BYE")).clone();
    rig.feed("10.0.0.2", &reply(&bye, 200, "OK", "bob", None));
    rig.assert_idle();
}

#[test]
fn overload_turns_new_calls_away_except_emergency_calls() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    rig.ep.set_overloaded(true);
    let invite = |call: &str, dialled: &str| {
        let body = sdp("10.0.0.1", 4000, "8");
        format!(
            "INVITE sip:{dialled}@pbx.local SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{call};rport\r\n\
             From: <sip:1001@pbx.local>;tag=t1001\r\nTo: <sip:{dialled}@pbx.local>\r\nCall-ID: {call}\r\n\
             CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:1001@10.0.0.1:5060>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let out = rig.feed("10.0.0.1", &invite("o1", "1002"));
    let m = &out.last().expect("answer").1;
    assert_eq!(m.status(), Some(503), "{m:?}");
    assert_eq!(
        m.header(&HeaderName::Other("Retry-After".into())),
        Some("5")
    );
    assert!(rig.records.is_empty(), "no record work under overload");
    // 112 still gets its chance (challenged like any call, not shed).
    let out = rig.feed("10.0.0.1", &invite("o2", "112"));
    assert_eq!(out.last().and_then(|(_, m)| m.status()), Some(407));
    rig.ep.set_overloaded(false);
    let out = rig.feed("10.0.0.1", &invite("o3", "1002"));
    assert_eq!(out.last().and_then(|(_, m)| m.status()), Some(407));
    rig.assert_idle();
}

#[test]
fn late_offer_gets_our_offer_in_the_200_and_its_answer_from_the_ack() {
    let mut rig = Rig::new();
    rig.register("1002", "10.0.0.2");
    let out = rig.invite_with("1002", "lo1", "");
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    assert!(String::from_utf8_lossy(fork.body()).contains("m=audio"));
    let out = rig.feed(
        "10.0.0.2",
        &reply(&fork, 200, "OK", "bob", Some(&sdp("10.0.0.2", 5000, "8"))),
    );
    let ok = find(&out, |m| is_status(m, 200)).clone();
    let offer = String::from_utf8_lossy(ok.body()).into_owned();
    assert!(
        offer.contains("RTP/AVP 8 0 9"),
        "all our codecs offered: {offer}"
    );
    let configured_before = rig.office.configured.len();
    let answer = sdp("10.0.0.1", 4000, "0");
    let ack = caller_request("ACK", &ok, 2, "loa").replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        ),
    );
    rig.feed("10.0.0.1", &ack);
    let caller_leg = &rig.office.configured[configured_before..];
    assert!(
        caller_leg
            .iter()
            .any(|c| c.1 == Side::Caller && c.2.remote == "10.0.0.1:4000".parse().expect("addr")),
        "the ACK's answer configures the caller's leg: {caller_leg:?}"
    );
    let out = rig.feed("10.0.0.1", &caller_request("BYE", &ok, 3, "lob"));
    let bye = find(&out, |m| is_req(m, "BYE")).clone();
    rig.feed("10.0.0.2", &reply(&bye, 200, "OK", "bob", None));
    assert_eq!(rig.records[0].disposition, Disposition::Answered);

    // An ACK without the answer: nothing to relay, the box ends the call.
    let out = rig.invite_with("1002", "lo2", "");
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    let out = rig.feed(
        "10.0.0.2",
        &reply(&fork, 200, "OK", "bob", Some(&sdp("10.0.0.2", 5000, "8"))),
    );
    let ok = find(&out, |m| is_status(m, 200)).clone();
    let out = rig.feed("10.0.0.1", &caller_request("ACK", &ok, 2, "lo2ack"));
    assert_eq!(
        out.iter().filter(|(_, m)| is_req(m, "BYE")).count(),
        2,
        "{out:#?} {:?}",
        rig.records
    );
    assert_eq!(rig.records[1].disposition, Disposition::Failed);
    rig.assert_idle();
}

// --- analog ports as legs ---------------------------------------------------------

/// A rig whose extension 1005 is analog port 0 (its audio bridge at 127.0.0.1:7000).
pub(super) fn rig_with_port() -> Rig {
    use crate::dialplan::StaticPlan;
    use crate::line::legs::{PortLegs, PortSpec};
    use crate::line::{Line, LineConfig, SitePlan};
    let mut rig = Rig::new();
    let plan = SitePlan {
        site: Site::default(),
        plan: StaticPlan::new(["1001", "1002", "1003", "1004", "1005"], Vec::<&str>::new()),
    };
    let line = Line::new(LineConfig::default(), Box::new(plan)).expect("line config");
    let spec = PortSpec {
        extension: "1005".into(),
        media: "127.0.0.1:7000".parse().expect("addr"),
    };
    let reg = Registrar::new(RegistrarConfig::default(), [9; 32], 3);
    let calls = SipCalls::new(
        CallConfig {
            ring_timeout: Duration::from_secs(30),
            ..CallConfig::default()
        },
        11,
    )
    .with_ports(PortLegs::new(vec![(spec, line)]));
    let guard = GuardConfig {
        rate_per_sec: 0,
        ..GuardConfig::default()
    };
    rig.ep = Endpoint::with_calls(reg, calls, guard, TimerConfig::default());
    rig
}

impl Rig {
    pub(super) fn port_hook(&mut self, hook: crate::line::Hook) -> Vec<(SocketAddr, Message)> {
        let ev = crate::line::HookEvent { hook, at: self.now };
        self.ep.handle_port_hook(self.now, 0, ev, &mut self.office);
        self.collect()
    }

    /// Dials `digits` on port 0 by DTMF (60 ms tone, 80 ms pause each), 20 ms frames.
    pub(super) fn port_dtmf(&mut self, digits: &str) -> Vec<(SocketAddr, Message)> {
        use crate::media::dsp::dtmf::DtmfGenerator;
        let mut out = Vec::new();
        for d in digits.chars() {
            let mut s = DtmfGenerator::new(d, -10.0, Duration::from_millis(60))
                .expect("digit")
                .samples();
            s.resize(s.len() + 640, 0);
            for frame in s.chunks(160) {
                out.extend(self.advance(Duration::from_millis(20)));
                self.ep
                    .handle_port_audio(self.now, 0, frame, &mut self.office);
                out.extend(self.collect());
            }
        }
        out
    }

    /// What the port's shell was told since the last call.
    fn port_outputs(&mut self) -> Vec<crate::line::LineOutput> {
        use crate::line::legs::PortOutput;
        std::iter::from_fn(|| self.ep.poll_port_output())
            .filter_map(|(_, o)| match o {
                PortOutput::Line(l) => Some(l),
                PortOutput::Media(_) => None,
            })
            .collect()
    }
}

#[test]
fn an_analog_port_calls_a_sip_phone_and_hears_ringback_then_busy() {
    use crate::line::{Hook, LineOutput, Tone};
    let mut rig = rig_with_port();
    rig.register("1002", "10.0.0.2");
    rig.port_outputs();
    rig.port_hook(Hook::OffHook);
    assert!(rig.port_outputs().contains(&LineOutput::Play(Tone::Dial)));
    // Dialling 1002 on the port's keypad: the SIP phone gets an INVITE from 1005.
    let out = rig.port_dtmf("1002");
    let invite = find(&out, |m| is_req(m, "INVITE")).clone();
    assert!(invite
        .header(&HeaderName::From)
        .is_some_and(|f| f.contains("sip:1005@")));
    rig.feed(
        "10.0.0.2",
        &reply_from("10.0.0.2", &invite, 180, "p2", None),
    );
    assert!(rig
        .port_outputs()
        .contains(&LineOutput::Play(Tone::Ringback)));
    let out = rig.feed(
        "10.0.0.2",
        &reply_from(
            "10.0.0.2",
            &invite,
            200,
            "p2",
            Some(&sdp("10.0.0.2", 5000, "8")),
        ),
    );
    assert!(out.iter().any(|(_, m)| is_req(m, "ACK")));
    assert!(rig
        .port_outputs()
        .contains(&LineOutput::Play(Tone::Silence)));
    // The relay sends the caller side's audio to the port's bridge.
    let port_media: SocketAddr = "127.0.0.1:7000".parse().expect("addr");
    assert!(rig
        .office
        .configured
        .iter()
        .any(|(_, side, n)| *side == Side::Caller && n.remote == port_media));
    // The SIP phone hangs up: the port hears busy; then its phone hangs up too.
    rig.feed(
        "10.0.0.2",
        &callee_request("10.0.0.2", &invite, "p2", "BYE", 2, ""),
    );
    assert!(rig.port_outputs().contains(&LineOutput::Play(Tone::Busy)));
    rig.port_hook(Hook::OnHook);
    rig.advance(Duration::from_secs(1));
    let r = &rig.records[0];
    assert_eq!(
        (r.caller.as_str(), r.destination.as_deref()),
        ("1005", Some("1002"))
    );
    assert_eq!(r.disposition, Disposition::Answered);
    assert_eq!(r.hangup, Some(Hangup::Callee));
    rig.assert_idle();
    assert_eq!(rig.ep.calls().ports().map(|p| p.calls()), Some(0));
}

#[test]
fn a_sip_phone_calls_an_analog_port_which_rings_and_answers_by_lifting() {
    use crate::line::{Hook, LineOutput, Linefeed, Tone};
    let mut rig = rig_with_port();
    rig.port_outputs();
    // 1001 calls 1005: no SIP goes anywhere, the port rings, the caller hears 180.
    let out = rig.invite("1005", "an1");
    assert!(!out.iter().any(|(_, m)| is_req(m, "INVITE")));
    assert!(out.iter().any(|(_, m)| is_status(m, 180)));
    assert!(rig
        .port_outputs()
        .contains(&LineOutput::Linefeed(Linefeed::Ringing)));
    // Lifting the handset answers: 200 with our SDP to the caller, media to the port.
    let out = rig.port_hook(Hook::OffHook);
    let ok = find(&out, |m| is_status(m, 200)).clone();
    assert!(!ok.body().is_empty());
    rig.feed("10.0.0.1", &caller_request("ACK", &ok, 2, "ackan1"));
    let port_media: SocketAddr = "127.0.0.1:7000".parse().expect("addr");
    assert!(rig
        .office
        .configured
        .iter()
        .any(|(_, side, n)| *side == Side::Callee && n.remote == port_media));
    assert!(rig.office.active.contains(&1), "call up");
    // The caller hangs up: the port hears busy tone.
    rig.feed("10.0.0.1", &caller_request("BYE", &ok, 3, "byean1"));
    assert!(rig.port_outputs().contains(&LineOutput::Play(Tone::Busy)));
    rig.port_hook(Hook::OnHook);
    rig.advance(Duration::from_secs(1));
    assert_eq!(rig.records[0].hangup, Some(Hangup::Caller));
    assert_eq!(rig.records[0].destination.as_deref(), Some("1005"));
    rig.assert_idle();
}

#[test]
fn an_analog_port_flashes_dials_a_second_sip_phone_and_hangs_up_to_transfer() {
    use crate::line::{Hook, LineOutput, Tone};
    let mut rig = rig_with_port();
    rig.register("1002", "10.0.0.2");
    rig.register("1003", "10.0.0.3");
    rig.port_hook(Hook::OffHook);
    let out = rig.port_dtmf("1002");
    let inv1 = find(&out, |m| is_req(m, "INVITE")).clone();
    rig.feed(
        "10.0.0.2",
        &reply_from(
            "10.0.0.2",
            &inv1,
            200,
            "p2",
            Some(&sdp("10.0.0.2", 5000, "8")),
        ),
    );
    rig.port_outputs();
    // Flash: 1002 hears music on hold from the box, the port the special dial tone.
    rig.port_hook(Hook::OnHook);
    rig.advance(Duration::from_millis(150));
    rig.port_hook(Hook::OffHook);
    assert!(rig
        .port_outputs()
        .contains(&LineOutput::Play(Tone::SpecialDial)));
    assert!(
        matches!(
            rig.office.sounds.as_slice(),
            [(_, Side::Callee, Some(Sound::Hold))]
        ),
        "{:?}",
        rig.office.sounds
    );
    // Enquiry to 1003, which answers.
    let out = rig.port_dtmf("1003");
    let inv2 = find(&out, |m| is_req(m, "INVITE")).clone();
    assert!(inv2.request_uri().is_some_and(|u| u.host() == "10.0.0.3"));
    rig.feed(
        "10.0.0.3",
        &reply_from(
            "10.0.0.3",
            &inv2,
            200,
            "p3",
            Some(&sdp("10.0.0.3", 6000, "8")),
        ),
    );
    assert_eq!(rig.ep.calls().len(), 2);
    // The port hangs up: 1003 is re-INVITEd to 1002's call, where the port was.
    rig.port_hook(Hook::OnHook);
    let out = rig.advance(Duration::from_secs(1));
    let reinvite = find(&out, |m| is_req(m, "INVITE")).clone();
    assert_eq!(reinvite.call_id().ok(), inv2.call_id().ok());
    let out = rig.feed(
        "10.0.0.3",
        &reply_from(
            "10.0.0.3",
            &reinvite,
            200,
            "p3",
            Some(&sdp("10.0.0.3", 6000, "8")),
        ),
    );
    assert!(out.iter().any(|(_, m)| is_req(m, "ACK")));
    assert!(
        !out.iter().any(|(_, m)| is_req(m, "BYE")),
        "no SIP party leaves: {out:#?}"
    );
    assert_eq!(rig.ep.calls().len(), 1, "the enquiry call ended");
    assert_eq!(rig.ep.calls().ports().map(|p| p.calls()), Some(0));
    // The music stopped; 1002 and 1003 talk until 1002 hangs up.
    assert!(matches!(
        rig.office.sounds.last(),
        Some((_, Side::Callee, None))
    ));
    let out = rig.feed(
        "10.0.0.2",
        &callee_request("10.0.0.2", &inv1, "p2", "BYE", 2, ""),
    );
    let bye = find(&out, |m| is_req(m, "BYE")).clone();
    assert!(bye.request_uri().is_some_and(|u| u.host() == "10.0.0.3"));
    rig.feed("10.0.0.3", &reply(&bye, 200, "OK", "x", None));
    rig.advance(Duration::from_secs(1));
    assert!(rig
        .records
        .iter()
        .any(|r| r.reason.as_deref() == Some("transferred (attended)")));
    rig.assert_idle();
}
