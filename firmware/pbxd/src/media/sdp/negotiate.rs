//! Offer/answer (RFC 3264) for one audio stream per leg.

use super::crypto::{CryptoAttr, CryptoError, LocalSrtp, SrtpKeys, SrtpMode};
use super::{write_session, AudioStream, Codec, Direction, Sdp};
use crate::media::srtp::Suite;
use std::net::{IpAddr, SocketAddr};

/// Session name we write in `s=` (RFC 8866 allows any text; phones ignore it).
const SESSION_NAME: &str = "pbxd";

/// DTMF events we offer and accept: 0-9, *, #, A-D (0-15) and flash (16), as most
/// phones and providers write it.
const TELEPHONE_EVENT_FMTP: &str = "0-16";

/// Packetisation times we follow when the peer asks for them; anything else is ignored in
/// favour of our own (a 1 ms or 1 s ptime is a broken peer, not a wish to honour).
const PTIME_RANGE: std::ops::RangeInclusive<u32> = 10..=120;

/// What our side of a leg sends in its offers and answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Our RTP address on this leg (written in `o=` and `c=`).
    pub addr: IpAddr,
    /// Our RTP port on this leg (RTCP on `port + 1`; we do not offer rtcp-mux).
    pub port: u16,
    /// Codecs we accept on this leg, our preference first. Empty offers PCMU alone, the
    /// codec every SIP phone supports (RFC 3551 sec. 4.5.14).
    pub codecs: Vec<Codec>,
    /// Payload type we offer for telephone-event/8000, `None` to not offer RFC 4733 DTMF.
    /// In answers we always echo the peer's payload type instead.
    pub telephone_event: Option<u8>,
    /// Packetisation time we want to receive, in milliseconds (normally 20).
    pub ptime: u32,
    /// Our direction: `SendOnly` to put the peer on hold, `Inactive` for both on hold.
    pub direction: Direction,
    /// What SRTP we offer, and our key for offers and answers on this leg.
    pub srtp: LocalSrtp,
}

/// The `o=` line of one leg: the id stays, the version goes up on every changed re-offer or
/// changed answer (RFC 3264 sec. 8). Call [`Origin::bump`] before writing a changed SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    id: u64,
    version: u64,
}

impl Origin {
    /// A new origin with version 1. The id is cut to 63 bits: several phone stacks keep
    /// sess-id in a signed 64-bit integer.
    pub fn new(id: u64) -> Self {
        Origin {
            id: id & (i64::MAX as u64),
            version: 1,
        }
    }

    /// The next version, for a changed session description.
    pub fn bump(&mut self) {
        // 2^63 re-offers cannot happen; wrapping only avoids a panic path.
        self.version = self.version.wrapping_add(1);
    }

    /// The session id as written.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The current version.
    pub fn version(&self) -> u64 {
        self.version
    }
}

/// The outcome of offer/answer for the audio stream of one leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The one codec used on this leg.
    pub codec: Codec,
    /// Its payload type on this leg (the peer's, when the peer offered).
    pub pt: u8,
    /// Payload type of telephone-event on this leg, if both sides do RFC 4733.
    pub telephone_event: Option<u8>,
    /// Where the peer wants RTP (from its `c=` and `m=`). An unspecified address
    /// (`0.0.0.0`, old-style hold) means: send nothing; `direction` then has no send.
    pub remote: SocketAddr,
    /// Packetisation time to send with, in milliseconds: the peer's `a=ptime` when sensible,
    /// else ours.
    pub ptime: u32,
    /// Our direction on this leg (whether we send, receive, both or neither).
    pub direction: Direction,
    /// SRTP keys if the leg uses SRTP (SDES), `None` for plain RTP.
    pub srtp: Option<SrtpKeys>,
}

/// Why offer/answer failed. The `Display` text fits a SIP `Warning` header (`399` text);
/// the response to a failed offer is 488 (see [`NegotiationError::sip_status`]) with
/// [`warning_header`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// No audio codec in common (and the call core found no transcoding path).
    #[error("no common codec (offered: {})", offered.join(" "))]
    NoCommonCodec {
        /// The formats the other side listed, as `NAME/clock` or the bare payload type.
        offered: Vec<String>,
    },
    /// No `m=audio` line with an RTP/AVP(F) profile.
    #[error("no usable audio stream (RTP/AVP) in SDP")]
    NoAudio,
    /// The audio stream has port 0.
    #[error("audio stream rejected (port 0)")]
    Rejected,
    /// An `RTP/SAVP` stream without any `a=crypto` line.
    #[error("SRTP: no a=crypto in RTP/SAVP stream")]
    NoCrypto,
    /// No usable `a=crypto` line; the first one's reason.
    #[error("{0}")]
    Crypto(CryptoError),
    /// SRTP is mandatory on this leg and the other side's SDP is plain RTP.
    #[error("SRTP required, plain RTP refused")]
    SrtpRequired,
    /// The answer's `a=crypto` has a tag or suite we did not offer.
    #[error("SRTP: answer's a=crypto does not match our offer")]
    CryptoMismatch,
}

impl NegotiationError {
    /// The SIP status for an offer we cannot accept (RFC 3261 sec. 21.4.26).
    pub fn sip_status(&self) -> u16 {
        488
    }
}

/// A `Warning` header value (RFC 3261 sec. 20.43) for a failed negotiation:
/// `305 host "Incompatible media format"` for codecs, else `304 host "Media type not available"`.
/// `host` is our own host name or address (the warn-agent).
pub fn warning_header(err: &NegotiationError, host: &str) -> String {
    let (code, text) = match err {
        NegotiationError::NoCommonCodec { .. } => (305, "Incompatible media format"),
        NegotiationError::NoAudio | NegotiationError::Rejected => (304, "Media type not available"),
        // SRTP refusals: a miscellaneous warning whose text says what (reason-phrase safe,
        // so also safe in the quoted string).
        other => return format!("399 {host} \"{other}\""),
    };
    format!("{code} {host} \"{text}\"")
}

/// Our offer for a leg (initial or re-offer; bump `origin` first if anything changed).
pub fn offer(local: &LocalMedia, origin: &Origin) -> Vec<u8> {
    let mut codecs: Vec<Codec> = Vec::with_capacity(local.codecs.len());
    for &c in &local.codecs {
        if !codecs.contains(&c) {
            codecs.push(c);
        }
    }
    if codecs.is_empty() {
        codecs.push(Codec::Pcmu);
    }
    let formats: Vec<(u8, Codec)> = codecs.iter().map(|&c| (c.static_pt(), c)).collect();
    let (proto, crypto) = match local.srtp.mode {
        SrtpMode::Off => ("RTP/AVP", None),
        SrtpMode::Optional => ("RTP/AVP", Some(our_offer_crypto(&local.srtp))),
        SrtpMode::Mandatory => ("RTP/SAVP", Some(our_offer_crypto(&local.srtp))),
    };
    let media = audio_media(
        local.port,
        proto,
        &formats,
        local.telephone_event,
        local.ptime,
        local.direction,
        crypto.as_ref(),
    );
    let mut session = skeleton(local.addr, origin);
    session.medias.push(media);
    write_session(&session)
}

/// The one crypto line of our offers: tag 1, the mandatory-to-implement suite.
fn our_offer_crypto(srtp: &LocalSrtp) -> CryptoAttr {
    CryptoAttr {
        tag: 1,
        suite: Suite::AesCm128HmacSha1_80,
        key: srtp.key.clone(),
    }
}

/// Answers a received offer: the first of the peer's codecs we support (one audio codec
/// only, with the peer's payload type), telephone-event with the peer's payload type if we do
/// RFC 4733, every other m-line rejected with port 0 in the same order (RFC 3264 sec. 6),
/// and our direction = the reverse of the offer's, restricted by `local.direction`.
///
/// SRTP (RFC 4568 sec. 7.1.2): the first crypto line we implement is answered with the
/// same tag and suite and our own key (`local.srtp.key`), whether the profile is
/// `RTP/SAVP` or best-effort `RTP/AVP` with crypto. An `RTP/SAVP` stream without such a
/// line is refused, and so is a plain one when `local.srtp.mode` is mandatory.
pub fn answer(
    offer: &Sdp,
    local: &LocalMedia,
    origin: &Origin,
) -> Result<(Vec<u8>, Negotiated), NegotiationError> {
    let (Some(audio), Some(index)) = (offer.audio(), offer.audio_index()) else {
        return Err(NegotiationError::NoAudio);
    };
    if audio.port == 0 {
        return Err(NegotiationError::Rejected);
    }
    let medias = &offer.session().medias;
    let Some(&(pt, codec)) = audio.codecs.iter().find(|(_, c)| local.codecs.contains(c)) else {
        return Err(NegotiationError::NoCommonCodec {
            offered: format_names(&medias[index]),
        });
    };
    let telephone_event = local.telephone_event.and(audio.telephone_event);
    let direction = audio.direction.reverse().intersect(local.direction);
    let theirs = audio.usable_crypto();
    if audio.secure && theirs.is_none() {
        return Err(match audio.crypto.first() {
            Some(Err(e)) => NegotiationError::Crypto(e.clone()),
            _ => NegotiationError::NoCrypto,
        });
    }
    if local.srtp.mode == SrtpMode::Mandatory && theirs.is_none() {
        return Err(NegotiationError::SrtpRequired);
    }
    let ours = theirs.map(|c| CryptoAttr {
        tag: c.tag,
        suite: c.suite,
        key: local.srtp.key.clone(),
    });

    let mut session = skeleton(local.addr, origin);
    for (i, m) in medias.iter().enumerate() {
        if i == index {
            session.medias.push(audio_media(
                local.port,
                &m.proto,
                &[(pt, codec)],
                telephone_event,
                local.ptime,
                direction,
                ours.as_ref(),
            ));
        } else {
            session.medias.push(rejected(m));
        }
    }
    let negotiated = Negotiated {
        codec,
        pt,
        telephone_event,
        remote: SocketAddr::new(audio.addr, audio.port),
        ptime: send_ptime(audio, local.ptime),
        direction,
        srtp: theirs.map(|c| SrtpKeys {
            suite: c.suite,
            send: local.srtp.key.clone(),
            recv: c.key.clone(),
        }),
    };
    Ok((write_session(&session), negotiated))
}

/// Reads the answer to the offer we made from `our_offer`. The codec is the first of the
/// answer's that we offered; the answer's payload types are used.
///
/// SRTP: if we offered crypto, an answer with a crypto line must echo our tag and suite
/// and brings the peer's key; an answer without one is plain RTP, refused when our mode
/// is mandatory. If we offered none, crypto in the answer is ignored.
pub fn accept_answer(our_offer: &LocalMedia, answer: &Sdp) -> Result<Negotiated, NegotiationError> {
    let (Some(audio), Some(index)) = (answer.audio(), answer.audio_index()) else {
        return Err(NegotiationError::NoAudio);
    };
    if audio.port == 0 {
        return Err(NegotiationError::Rejected);
    }
    // An empty offer list means we offered PCMU alone (see `LocalMedia::codecs`).
    let offered: &[Codec] = if our_offer.codecs.is_empty() {
        &[Codec::Pcmu]
    } else {
        &our_offer.codecs
    };
    let Some(&(pt, codec)) = audio.codecs.iter().find(|(_, c)| offered.contains(c)) else {
        return Err(NegotiationError::NoCommonCodec {
            offered: format_names(&answer.session().medias[index]),
        });
    };
    let srtp = answered_srtp(&our_offer.srtp, audio)?;
    Ok(Negotiated {
        codec,
        pt,
        telephone_event: our_offer.telephone_event.and(audio.telephone_event),
        remote: SocketAddr::new(audio.addr, audio.port),
        ptime: send_ptime(audio, our_offer.ptime),
        direction: our_offer.direction.intersect(audio.direction.reverse()),
        srtp,
    })
}

/// The SRTP outcome of an answer to our offer (see [`accept_answer`]).
fn answered_srtp(
    ours: &LocalSrtp,
    audio: &AudioStream,
) -> Result<Option<SrtpKeys>, NegotiationError> {
    if ours.mode == SrtpMode::Off {
        return Ok(None);
    }
    let offered = our_offer_crypto(ours);
    match audio.crypto.first() {
        None if ours.mode == SrtpMode::Mandatory => Err(NegotiationError::SrtpRequired),
        None => Ok(None),
        Some(Err(e)) => Err(NegotiationError::Crypto(e.clone())),
        Some(Ok(c)) if c.tag != offered.tag || c.suite != offered.suite => {
            Err(NegotiationError::CryptoMismatch)
        }
        Some(Ok(c)) => Ok(Some(SrtpKeys {
            suite: c.suite,
            send: offered.key,
            recv: c.key.clone(),
        })),
    }
}

fn send_ptime(peer: &AudioStream, ours: u32) -> u32 {
    peer.ptime
        .filter(|p| PTIME_RANGE.contains(p))
        .unwrap_or(ours)
}

fn skeleton(addr: IpAddr, origin: &Origin) -> sdp_types::Session {
    let mut o = sdp_types::Origin::with_ip_addr(origin.id, origin.version, addr);
    o.set_username("-");
    let mut s = sdp_types::Session::new(o, SESSION_NAME);
    s.connection = Some(sdp_types::Connection::from_ip_addr(addr));
    s.times = vec![sdp_types::Time::new(0, 0)];
    s
}

fn audio_media(
    port: u16,
    proto: &str,
    formats: &[(u8, Codec)],
    telephone_event: Option<u8>,
    ptime: u32,
    direction: Direction,
    crypto: Option<&CryptoAttr>,
) -> sdp_types::Media {
    let mut fmt: Vec<String> = formats.iter().map(|(pt, _)| pt.to_string()).collect();
    let mut attributes: Vec<sdp_types::Attribute> = formats
        .iter()
        .map(|&(pt, c)| {
            sdp_types::Attribute::with_value(
                "rtpmap",
                format!("{pt} {}/{}", c.encoding_name(), c.clock_rate()),
            )
        })
        .collect();
    if let Some(te) = telephone_event {
        fmt.push(te.to_string());
        attributes.push(sdp_types::Attribute::with_value(
            "rtpmap",
            format!("{te} telephone-event/8000"),
        ));
        attributes.push(sdp_types::Attribute::with_value(
            "fmtp",
            format!("{te} {TELEPHONE_EVENT_FMTP}"),
        ));
    }
    attributes.push(sdp_types::Attribute::with_value("ptime", ptime));
    attributes.push(sdp_types::Attribute::new(direction.as_str()));
    if let Some(c) = crypto {
        attributes.push(sdp_types::Attribute::with_value("crypto", c.to_value()));
    }
    sdp_types::Media {
        media: "audio".to_owned(),
        port,
        num_ports: None,
        proto: proto.to_owned(),
        fmt: fmt.join(" "),
        media_title: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes,
    }
}

/// An m-line refused in an answer: same media and proto, port 0, the offer's formats
/// (RFC 3264 sec. 6 wants at least one), no attributes.
fn rejected(m: &sdp_types::Media) -> sdp_types::Media {
    sdp_types::Media {
        media: m.media.clone(),
        port: 0,
        num_ports: None,
        proto: m.proto.clone(),
        fmt: m.fmt.clone(),
        media_title: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes: Vec::new(),
    }
}

/// The formats of an m-line for an error message: `NAME/clock` where known. Peer text is
/// reduced to visible ASCII without quotes and bounded, so it is safe in a quoted-string.
fn format_names(m: &sdp_types::Media) -> Vec<String> {
    const MAX_FORMATS: usize = 16;
    const MAX_NAME: usize = 32;
    m.fmt
        .split_ascii_whitespace()
        .take(MAX_FORMATS)
        .map(|f| {
            let from_rtpmap = f.parse::<u8>().ok().and_then(|pt| {
                m.attributes_typed::<sdp_types::RtpMap>()
                    .filter_map(Result::ok)
                    .find(|map| map.payload_type == pt)
                    .map(|map| format!("{}/{}", map.encoding_name, map.clock_rate))
            });
            let name = from_rtpmap
                .or_else(|| {
                    f.parse::<u8>()
                        .ok()
                        .and_then(static_name)
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| f.to_owned());
            name.chars()
                .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
                .take(MAX_NAME)
                .collect()
        })
        .collect()
}

/// Names of the static payload types phones still offer (RFC 3551 table 4).
fn static_name(pt: u8) -> Option<&'static str> {
    Some(match pt {
        0 => "PCMU/8000",
        3 => "GSM/8000",
        4 => "G723/8000",
        8 => "PCMA/8000",
        9 => "G722/8000",
        18 => "G729/8000",
        _ => return None,
    })
}
