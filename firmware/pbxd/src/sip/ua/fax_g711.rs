//! Fax on a wideband leg: when a port hears a fax or modem tone and the call's SIP leg
//! (a phone or the trunk) runs G.722, the relay transcodes G.722 <-> A-law, which a fax
//! modem does not survive. We re-INVITE that leg offering G.711 only (A-law first, the
//! port's own codec, then µ-law; telephone-event kept), so the relay only copies or
//! converts A-law <-> µ-law. The leg towards the port is internal and always A-law.
//!
//! - One attempt per leg: a second fax tone, or one after a refusal, sends nothing.
//! - Glare (491, RFC 3261 sec. 14.1): try again after a random delay, 2.1–4 s when we
//!   made the dialog's Call-ID (our outgoing legs), 0–2 s otherwise; at most
//!   [`MAX_TRIES`] offers. A re-INVITE of ours already in flight counts as glare too.
//! - Any other failure (488, time-out) keeps the call as it was (codecs restored for
//!   later offers) and is logged with the status.
//! - On the 2xx we ACK and report [`LegEvent::Renegotiated`], which makes call control
//!   reconfigure the relay's encoder and decoder for the leg.
//!
//! The decision ([`decide`], [`glare_delay`]) is pure; the rest drives [`SipLegs`] like
//! the other in-dialog requests (`in_dialog::move_media`).

use std::time::{Duration, Instant};

use pbx_sip::message::{HeaderName, Message, Method};
use pbx_sip::transaction::TransactionKey;
use tracing::{info, warn};

use super::{CallOutput, ClientRole, Phase, Role, SipLegs};
use crate::call::{LegEvent, LegId};
use crate::media::sdp::{self, Codec, Sdp};

/// What we offer when a fax is heard: A-law first (no transcoding to the port at all).
pub const FAX_CODECS: [Codec; 2] = [Codec::Pcma, Codec::Pcmu];

/// Offers per leg, counting retries after glare.
pub const MAX_TRIES: u8 = 3;

/// Whether a fax passes a leg on `codec` (only as G.711 through the relay).
pub fn fax_safe(codec: Codec) -> bool {
    matches!(codec, Codec::Pcma | Codec::Pcmu)
}

/// Where a leg's switch to G.711 stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaxG711 {
    /// Our re-INVITE is out (offer number `tries`); `before`: the leg's codecs, put
    /// back if it is refused.
    Pending {
        /// Codecs before the offer.
        before: Vec<Codec>,
        /// Offers sent so far.
        tries: u8,
    },
    /// Glare: offer again at `at`.
    Retry {
        /// When.
        at: Instant,
        /// Codecs before the offer.
        before: Vec<Codec>,
        /// Offers sent so far.
        tries: u8,
    },
    /// The leg runs `codec` (G.711) now, or already did.
    Switched(Codec),
    /// Not switched, and not tried again; why.
    Failed(String),
}

/// What the final answer to our re-INVITE means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: take the answer.
    Accept,
    /// Glare: offer again then.
    RetryAt(Instant),
    /// Keep the call as it is; why.
    GiveUp(String),
}

/// RFC 3261 sec. 14.1: after a 491, the owner of the Call-ID waits 2.1–4 s, the other
/// side 0–2 s, both in units of 10 ms. `random`: any random bits.
pub fn glare_delay(call_id_owner: bool, random: u64) -> Duration {
    let ticks = if call_id_owner {
        210 + random % 191
    } else {
        random % 201
    };
    Duration::from_millis(ticks * 10)
}

/// The final `status` to offer number `tries`, at `now`.
pub fn decide(status: u16, tries: u8, now: Instant, call_id_owner: bool, random: u64) -> Verdict {
    match status {
        200..=299 => Verdict::Accept,
        491 if tries < MAX_TRIES => Verdict::RetryAt(now + glare_delay(call_id_owner, random)),
        491 => Verdict::GiveUp(format!("491 Request Pending after {tries} offers")),
        408 => Verdict::GiveUp("no answer to the re-INVITE (408)".into()),
        s => Verdict::GiveUp(format!("the peer refused G.711 ({s})")),
    }
}

impl SipLegs {
    /// Records the codec a leg negotiated (from its events and accepted offers).
    pub(super) fn note_codec(&mut self, leg: LegId, codec: Codec) {
        if self.legs.contains_key(&leg) {
            self.codecs.insert(leg, codec);
        }
    }

    /// Where leg `leg`'s switch to G.711 stands (`None`: never asked).
    pub fn fax_g711(&self, leg: LegId) -> Option<&FaxG711> {
        self.fax.get(&leg)
    }

    /// A fax or modem tone was heard on the call leg `id` is in: re-INVITE it to G.711
    /// if it runs another codec (once per leg).
    pub(super) fn fax_to_g711(&mut self, now: Instant, id: LegId) {
        if self.fax.contains_key(&id) {
            return;
        }
        let Some(leg) = self.legs.get(&id) else {
            return;
        };
        let Some(&codec) = self.codecs.get(&id) else {
            info!(
                leg = id,
                "fax: the SIP leg's codec is not known yet; not re-INVITEd"
            );
            return;
        };
        if fax_safe(codec) {
            self.fax.insert(id, FaxG711::Switched(codec));
            return;
        }
        if leg.phase != Phase::Up || leg.dialog.is_none() {
            let why = "the leg is not established".to_owned();
            warn!(leg = id, %codec, "fax on a {codec} leg, no re-INVITE to G.711: {why}");
            self.fax.insert(id, FaxG711::Failed(why));
            return;
        }
        let before = leg.local.codecs.clone();
        if leg.reinvite.is_some() {
            // Our own re-INVITE (a transfer) is in flight: as after glare.
            let at = now + glare_delay(false, self.ids.random());
            self.fax.insert(
                id,
                FaxG711::Retry {
                    at,
                    before,
                    tries: 0,
                },
            );
            return;
        }
        info!(leg = id, %codec, "fax on a {codec} leg: re-INVITE offering G.711 only");
        self.send_fax_reinvite(id, before, 1);
    }

    fn send_fax_reinvite(&mut self, id: LegId, before: Vec<Codec>, tries: u8) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        let Some(flow) = leg.dialog.as_ref().map(|d| d.flow) else {
            return;
        };
        // Every later offer or answer on this leg stays G.711 too.
        leg.local.codecs = FAX_CODECS.to_vec();
        leg.origin.bump();
        let local = leg.local_on(flow);
        let Some(d) = leg.dialog.as_mut() else {
            return;
        };
        let mut reinvite = d.request(Method::Invite, &mut self.ids);
        reinvite.set_header(HeaderName::ContentType, "application/sdp");
        reinvite.set_body(sdp::offer(&local, &leg.origin));
        let Ok(key) = TransactionKey::for_client_request(&reinvite) else {
            leg.local.codecs = before;
            return;
        };
        leg.reinvite = Some(key.clone());
        self.by_client_key.insert(key, ClientRole::FaxReInvite(id));
        self.fax.insert(id, FaxG711::Pending { before, tries });
        self.out.push_back(CallOutput::Request {
            flow,
            request: reinvite,
        });
    }

    /// The answer to our fax re-INVITE (or 408 when there was none).
    pub(super) fn fax_reinvite_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        id: LegId,
        status: u16,
        resp: Option<&Message>,
    ) {
        if status < 200 {
            return;
        }
        self.by_client_key.remove(key);
        let Some(FaxG711::Pending { before, tries }) = self.fax.get(&id).cloned() else {
            return;
        };
        let random = self.ids.random();
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        leg.reinvite = None;
        let owner = matches!(leg.role, Role::Uac(_));
        let answer = match decide(status, tries, now, owner, random) {
            Verdict::Accept => resp,
            Verdict::RetryAt(at) => {
                info!(
                    leg = id,
                    "fax re-INVITE crossed one of the peer's (491): again later"
                );
                leg.local.codecs.clone_from(&before);
                self.fax.insert(id, FaxG711::Retry { at, before, tries });
                return;
            }
            Verdict::GiveUp(why) => {
                warn!(
                    leg = id,
                    "fax: no switch to G.711, the call stays as it is: {why}"
                );
                leg.local.codecs = before;
                self.fax.insert(id, FaxG711::Failed(why));
                return;
            }
        };
        let Some(d) = leg.dialog.as_ref() else {
            return;
        };
        let cseq = answer
            .and_then(|r| r.cseq().ok())
            .map_or(d.local_cseq, |c| c.seq);
        let ack = d.ack(cseq, &mut self.ids);
        let flow = d.flow;
        let local = leg.local_on(flow);
        self.out.push_back(CallOutput::Send { flow, message: ack });
        let neg = answer
            .and_then(|r| Sdp::parse(r.body()).ok())
            .and_then(|a| sdp::accept_answer(&local, &a).ok())
            .filter(|n| fax_safe(n.codec));
        match neg {
            Some(media) => {
                info!(leg = id, codec = %media.codec, "fax: the SIP leg switched to G.711");
                self.fax.insert(id, FaxG711::Switched(media.codec));
                self.codecs.insert(id, media.codec);
                self.events
                    .push_back(LegEvent::Renegotiated { leg: id, media });
            }
            None => {
                let why = "the 2xx carried no usable G.711 answer".to_owned();
                warn!(
                    leg = id,
                    "fax: no switch to G.711, the call stays as it is: {why}"
                );
                leg.local.codecs = before;
                self.fax.insert(id, FaxG711::Failed(why));
            }
        }
    }

    /// The earliest glare retry.
    pub(super) fn fax_next_timeout(&self) -> Option<Instant> {
        self.fax
            .values()
            .filter_map(|f| match f {
                FaxG711::Retry { at, .. } => Some(*at),
                _ => None,
            })
            .min()
    }

    /// Offers again where a glare delay ran out.
    pub(super) fn fax_timeout(&mut self, now: Instant) {
        let due: Vec<(LegId, Vec<Codec>, u8)> = self
            .fax
            .iter()
            .filter_map(|(id, f)| match f {
                FaxG711::Retry { at, before, tries } if *at <= now => {
                    Some((*id, before.clone(), *tries))
                }
                _ => None,
            })
            .collect();
        for (id, before, tries) in due {
            let busy = self.legs.get(&id).map(|l| l.reinvite.is_some());
            match busy {
                None => {
                    self.fax.remove(&id);
                }
                Some(true) => {
                    let at = now + glare_delay(false, self.ids.random());
                    self.fax.insert(id, FaxG711::Retry { at, before, tries });
                }
                Some(false) => self.send_fax_reinvite(id, before, tries + 1),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
    fn epoch() -> Instant {
        Instant::now()
    }

    #[test]
    fn glare_delays_follow_rfc_3261_section_14_1() {
        struct Case {
            owner: bool,
            random: u64,
            ms: u64,
        }
        let cases = [
            Case {
                owner: true,
                random: 0,
                ms: 2100,
            },
            Case {
                owner: true,
                random: 190,
                ms: 4000,
            },
            Case {
                owner: true,
                random: 191,
                ms: 2100,
            },
            Case {
                owner: false,
                random: 0,
                ms: 0,
            },
            Case {
                owner: false,
                random: 200,
                ms: 2000,
            },
            Case {
                owner: false,
                random: 201,
                ms: 0,
            },
        ];
        for c in cases {
            assert_eq!(glare_delay(c.owner, c.random), Duration::from_millis(c.ms));
        }
        for r in (0..100_000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) {
            let d = glare_delay(true, r).as_millis();
            assert!((2100..=4000).contains(&d) && d.is_multiple_of(10), "{d}");
            let d = glare_delay(false, r).as_millis();
            assert!(d <= 2000 && d.is_multiple_of(10), "{d}");
        }
    }

    #[test]
    fn verdicts_on_the_final_answer() {
        let now = epoch();
        assert_eq!(decide(200, 1, now, true, 5), Verdict::Accept);
        assert_eq!(
            decide(491, 1, now, true, 0),
            Verdict::RetryAt(now + Duration::from_millis(2100))
        );
        assert_eq!(
            decide(491, 2, now, false, 7),
            Verdict::RetryAt(now + Duration::from_millis(70))
        );
        assert!(
            matches!(decide(491, MAX_TRIES, now, true, 0), Verdict::GiveUp(w) if w.contains("491"))
        );
        assert!(matches!(decide(488, 1, now, true, 0), Verdict::GiveUp(w) if w.contains("488")));
        assert!(matches!(decide(408, 1, now, true, 0), Verdict::GiveUp(w) if w.contains("408")));
        assert!(fax_safe(Codec::Pcma) && fax_safe(Codec::Pcmu) && !fax_safe(Codec::G722));
    }
}
