//! SDP offer/answer for the B2BUA (RFC 3264 on RFC 8866 SDP), sans-IO.
//!
//! Each leg of a call negotiates its own audio stream with the box (media is anchored in
//! pbxd), so this module only ever answers for one audio stream per leg:
//!
//! - [`Sdp::parse`] turns a body from the wire into a typed session ([`sdp_types::Session`])
//!   and extracts the first usable audio stream as an [`AudioStream`]. Bad SDP is an
//!   [`SdpError`] whose text is the reason phrase of the 400.
//! - [`offer`] writes our offer from [`LocalMedia`]; [`answer`] answers a peer's offer
//!   (one codec, the peer's payload types echoed, every other m-line rejected with port 0);
//!   [`accept_answer`] reads the answer to our offer. Both give a [`Negotiated`] stream, or a
//!   [`NegotiationError`] that becomes a 488 with the [`warning_header`].
//!
//! ```
//! use pbxd::media::sdp::{answer, Codec, Direction, LocalMedia, Origin, Sdp};
//! let body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
//!              m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
//! let offer = Sdp::parse(body).expect("valid SDP");
//! let local = LocalMedia {
//!     addr: "192.0.2.1".parse().unwrap(), port: 20000,
//!     codecs: vec![Codec::Pcma, Codec::Pcmu], telephone_event: Some(101),
//!     ptime: 20, direction: Direction::SendRecv, srtp: Default::default(),
//! };
//! let (body, negotiated) = answer(&offer, &local, &Origin::new(42)).expect("common codec");
//! assert_eq!(negotiated.codec, Codec::Pcmu); // the peer's first choice we support
//! assert_eq!(negotiated.remote.to_string(), "192.0.2.10:40000");
//! assert!(Sdp::parse(&body).is_ok());
//! ```

mod crypto;
mod negotiate;
#[cfg(test)]
mod srtp_tests;
#[cfg(test)]
mod tests;

pub use crypto::{CryptoAttr, CryptoError, LocalSrtp, SrtpKeys, SrtpMode};
pub use negotiate::{
    accept_answer, answer, offer, warning_header, LocalMedia, Negotiated, NegotiationError, Origin,
};

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// Largest SDP body we parse. A SIP message over UDP cannot be larger; over TCP this keeps
/// one peer from making us allocate without bound.
pub const MAX_SDP_LEN: usize = 65_535;

/// The audio codecs pbxd relays and transcodes. All use static RTP payload types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 mu-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// G.722 wideband, static payload type 9. Its RTP clock is 8000 although it samples
    /// at 16 kHz (an error in RFC 1890 kept by RFC 3551 sec. 4.5.2).
    G722,
}

impl Codec {
    /// Every codec, in pbxd's default preference order.
    pub const ALL: [Codec; 3] = [Codec::Pcma, Codec::Pcmu, Codec::G722];

    /// The static payload type (RFC 3551 table 4).
    pub fn static_pt(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::G722 => 9,
        }
    }

    /// The encoding name used in `a=rtpmap`.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
        }
    }

    /// The RTP clock rate (8000 for all three, see [`Codec::G722`]).
    pub fn clock_rate(self) -> u32 {
        8000
    }

    /// The codec of a static payload type, when no `a=rtpmap` describes it.
    pub fn from_static_pt(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            9 => Some(Codec::G722),
            _ => None,
        }
    }

    /// The codec of an `a=rtpmap` encoding (name case-insensitive, RFC 4855 sec. 3).
    /// Only mono at 8000 Hz RTP clock is accepted.
    fn from_rtpmap(name: &str, clock_rate: u32, channels: Option<&str>) -> Option<Codec> {
        if clock_rate != 8000 || !matches!(channels.map(str::trim), None | Some("1")) {
            return None;
        }
        Codec::ALL
            .into_iter()
            .find(|c| c.encoding_name().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encoding_name())
    }
}

/// A media direction attribute (RFC 3264 sec. 5.1), always from the point of view of the
/// side that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// `a=sendrecv` (the default when no direction is given).
    #[default]
    SendRecv,
    /// `a=sendonly`: the writer sends, does not want to receive (e.g. it puts us on hold).
    SendOnly,
    /// `a=recvonly`: the writer only receives.
    RecvOnly,
    /// `a=inactive`: no media either way.
    Inactive,
}

impl Direction {
    /// The direction as the other side sees it (sendonly <-> recvonly); what an answer
    /// starts from (RFC 3264 sec. 6.1).
    pub fn reverse(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// Whether the writer sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the writer receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// Both restrictions at once: sends only if both allow sending, receives only if both
    /// allow receiving.
    pub fn intersect(self, other: Direction) -> Direction {
        Direction::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    fn from_flags(send: bool, recv: bool) -> Direction {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// The attribute name (`sendrecv`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attribute(name: &str) -> Option<Direction> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first usable audio m-line of an SDP: `m=audio` with profile `RTP/AVP`, `RTP/AVPF`,
/// `RTP/SAVP` or `RTP/SAVPF`, preferring one with a non-zero port, and among those one we
/// can do: plain, or SRTP with a crypto suite we implement (phones offering "best effort
/// SRTP" may send an `RTP/SAVP` line first and a plain `RTP/AVP` one after it; the SAVP
/// one wins if its crypto is usable, else the plain one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioStream {
    /// RTP address: the media-level `c=`, else the session-level one.
    ///
    /// `0.0.0.0` (`::` for IPv6) is old-style hold (RFC 2543, RFC 3264 sec. 8.4): the peer
    /// does not want to receive. [`AudioStream::direction`] already accounts for it
    /// (sendrecv becomes sendonly, recvonly becomes inactive); nothing may be sent there.
    pub addr: IpAddr,
    /// RTP port; 0 means the stream is rejected or disabled.
    pub port: u16,
    /// The audio codecs we know, in the peer's preference order, with the peer's payload type.
    pub codecs: Vec<(u8, Codec)>,
    /// Payload type of `telephone-event/8000` (RFC 4733), whatever the peer chose.
    pub telephone_event: Option<u8>,
    /// `a=ptime` in milliseconds (media level, else session level).
    pub ptime: Option<u32>,
    /// The peer's direction, including the `c=0.0.0.0` hold rule above.
    pub direction: Direction,
    /// `a=rtcp-mux` (RFC 5761) was present.
    pub rtcp_mux: bool,
    /// The profile is `RTP/SAVP` or `RTP/SAVPF`: SRTP only.
    pub secure: bool,
    /// The `a=crypto` lines (RFC 4568) in order, each parsed or with the reason it is not
    /// usable. `RTP/AVP` with crypto lines is best-effort SRTP.
    pub crypto: Vec<Result<CryptoAttr, CryptoError>>,
}

impl AudioStream {
    /// The first crypto line we can use, if any.
    pub fn usable_crypto(&self) -> Option<&CryptoAttr> {
        self.crypto.iter().find_map(|c| c.as_ref().ok())
    }

    /// Whether the peer holds the call: it does not want to receive (`a=sendonly`,
    /// `a=inactive` or `c=0.0.0.0`).
    pub fn is_hold(&self) -> bool {
        !self.direction.receives()
    }
}

/// Why an SDP body was refused. The `Display` text is meant as the reason phrase of a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The body is empty.
    #[error("SDP: empty body")]
    Empty,
    /// The body is larger than [`MAX_SDP_LEN`].
    #[error("SDP: body too large ({0} bytes)")]
    TooLarge(usize),
    /// The body is not SDP syntax (the parser's message says where, reduced to characters
    /// allowed in a reason phrase).
    #[error("SDP: {0}")]
    Syntax(String),
    /// The audio stream has no `c=` line, neither at media nor at session level.
    #[error("SDP: missing c= line")]
    MissingConnection,
    /// A `c=` address we cannot send to (not an IP literal, or a network type other than IN).
    #[error("SDP: bad c= address {0}")]
    BadConnection(String),
    /// A multicast `c=` address: phones never send one and we do not join groups.
    #[error("SDP: multicast c= address {0} not supported")]
    Multicast(IpAddr),
}

/// A parsed SDP body: the typed session plus what the call core needs from it.
#[derive(Debug, Clone)]
pub struct Sdp {
    session: sdp_types::Session,
    audio: Option<AudioStream>,
    /// Index in `session.medias` of the m-line [`Sdp::audio`] describes.
    audio_index: Option<usize>,
    origin: (u64, u64),
}

impl Sdp {
    /// Parses an SDP body. Unknown attributes, media types and profiles are kept and ignored;
    /// a body without a usable audio stream parses (negotiation then fails with 488), but a
    /// syntax error or an audio stream without a usable `c=` address is an error (400).
    pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
        if body.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLarge(body.len()));
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(SdpError::Empty);
        }
        // Free-text fields (s=, i=) from some phones are Latin-1: they must not cost the call.
        // Replacing invalid UTF-8 cannot make a structural field valid, so nothing is lost.
        let text = String::from_utf8_lossy(body);
        let session = sdp_types::Session::parse(text.as_bytes())
            .map_err(|e| SdpError::Syntax(reason_safe(&e.to_string())))?;
        let audio_index = find_audio(&session.medias);
        let audio = match audio_index {
            Some(i) => Some(audio_stream(&session, &session.medias[i])?),
            None => None,
        };
        let origin = (
            numeric_or_hash(&session.origin.sess_id),
            session.origin.sess_version,
        );
        Ok(Sdp {
            session,
            audio,
            audio_index,
            origin,
        })
    }

    /// The first usable audio stream (see [`AudioStream`]), if any.
    pub fn audio(&self) -> Option<&AudioStream> {
        self.audio.as_ref()
    }

    /// The number of m-lines; an answer must have exactly as many (RFC 3264 sec. 6).
    pub fn media_count(&self) -> usize {
        self.session.medias.len()
    }

    /// `o=` session id and version. A re-offer with the same pair has not changed
    /// (RFC 3264 sec. 8). A non-numeric id (against RFC 8866) is hashed, so comparisons
    /// still work.
    pub fn origin_session(&self) -> (u64, u64) {
        self.origin
    }

    /// The typed session, for anything beyond the audio stream.
    pub fn session(&self) -> &sdp_types::Session {
        &self.session
    }

    /// Serialises the session again (CRLF line ends).
    pub fn to_bytes(&self) -> Vec<u8> {
        write_session(&self.session)
    }

    /// Index of the audio m-line in [`Sdp::session`]`.medias`.
    pub(crate) fn audio_index(&self) -> Option<usize> {
        self.audio_index
    }
}

/// Serialises a session. `Session::write` only fails when the writer does, and a `Vec`
/// never does, so the result is ignored.
pub(crate) fn write_session(session: &sdp_types::Session) -> Vec<u8> {
    let mut buf = Vec::with_capacity(512);
    let _ = session.write(&mut buf);
    buf
}

/// Profiles we can carry: plain RTP, and AVPF (whose feedback we simply do not use), and
/// their SRTP forms.
fn is_rtp_profile(proto: &str) -> bool {
    ["RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF"]
        .iter()
        .any(|p| proto.eq_ignore_ascii_case(p))
}

/// `RTP/SAVP` or `RTP/SAVPF`.
pub(crate) fn is_secure_profile(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/SAVP") || proto.eq_ignore_ascii_case("RTP/SAVPF")
}

fn is_usable_audio(m: &sdp_types::Media) -> bool {
    m.media.eq_ignore_ascii_case("audio") && is_rtp_profile(&m.proto)
}

/// Plain RTP, or SRTP with at least one crypto line we implement.
fn can_do(m: &sdp_types::Media) -> bool {
    !is_secure_profile(&m.proto) || crypto_lines(m).any(|c| c.is_ok())
}

fn crypto_lines(
    m: &sdp_types::Media,
) -> impl Iterator<Item = Result<CryptoAttr, CryptoError>> + '_ {
    m.attributes
        .iter()
        .filter(|a| a.attribute.eq_ignore_ascii_case("crypto"))
        .map(|a| CryptoAttr::parse(a.value.as_deref().unwrap_or_default()))
}

fn find_audio(medias: &[sdp_types::Media]) -> Option<usize> {
    medias
        .iter()
        .position(|m| is_usable_audio(m) && m.port != 0 && can_do(m))
        .or_else(|| {
            medias
                .iter()
                .position(|m| is_usable_audio(m) && m.port != 0)
        })
        .or_else(|| medias.iter().position(is_usable_audio))
}

fn audio_stream(
    session: &sdp_types::Session,
    m: &sdp_types::Media,
) -> Result<AudioStream, SdpError> {
    let addr = match m.connections.first().or(session.connection.as_ref()) {
        Some(c) => connection_addr(c)?,
        // A disabled stream needs no address; RFC 8866 still wants c=, but no harm done.
        None if m.port == 0 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        None => return Err(SdpError::MissingConnection),
    };

    // Malformed rtpmaps are skipped, not fatal: the static table may still name the format.
    let rtpmaps: Vec<sdp_types::RtpMap> = m
        .attributes_typed::<sdp_types::RtpMap>()
        .filter_map(Result::ok)
        .collect();
    let mut codecs = Vec::new();
    let mut telephone_event = None;
    for pt in m
        .fmt
        .split_ascii_whitespace()
        .filter_map(|f| f.parse::<u8>().ok())
    {
        match rtpmaps.iter().find(|map| map.payload_type == pt) {
            Some(map) => {
                let channels = map.encoding_params.as_deref();
                if let Some(codec) =
                    Codec::from_rtpmap(&map.encoding_name, map.clock_rate, channels)
                {
                    codecs.push((pt, codec));
                } else if map
                    .encoding_name
                    .trim()
                    .eq_ignore_ascii_case("telephone-event")
                    && map.clock_rate == 8000
                    && telephone_event.is_none()
                {
                    telephone_event = Some(pt);
                }
            }
            None => {
                if let Some(codec) = Codec::from_static_pt(pt) {
                    codecs.push((pt, codec));
                }
            }
        }
    }

    let ptime = attribute(m, "ptime")
        .or_else(|| session_attribute(session, "ptime"))
        .and_then(parse_ptime);

    let media_dir = m
        .attributes
        .iter()
        .find_map(|a| Direction::from_attribute(&a.attribute));
    let session_dir = session
        .attributes
        .iter()
        .find_map(|a| Direction::from_attribute(&a.attribute));
    let mut direction = media_dir.or(session_dir).unwrap_or_default();
    if addr.is_unspecified() {
        // RFC 3264 sec. 8.4: c=0.0.0.0 means "send me nothing".
        direction = direction.intersect(Direction::SendOnly);
    }

    Ok(AudioStream {
        addr,
        port: m.port,
        codecs,
        telephone_event,
        ptime,
        direction,
        rtcp_mux: m.has_attribute("rtcp-mux"),
        secure: is_secure_profile(&m.proto),
        crypto: crypto_lines(m).collect(),
    })
}

fn attribute<'a>(m: &'a sdp_types::Media, name: &str) -> Option<&'a str> {
    m.attributes
        .iter()
        .find(|a| a.attribute.eq_ignore_ascii_case(name))
        .and_then(|a| a.value.as_deref())
}

fn session_attribute<'a>(s: &'a sdp_types::Session, name: &str) -> Option<&'a str> {
    s.attributes
        .iter()
        .find(|a| a.attribute.eq_ignore_ascii_case(name))
        .and_then(|a| a.value.as_deref())
}

/// `a=ptime:20`; some devices write `20.0` or add spaces. Zero is meaningless and dropped.
fn parse_ptime(v: &str) -> Option<u32> {
    let v = v.trim();
    let int = v.split('.').next().unwrap_or(v);
    int.parse::<u32>().ok().filter(|&p| p > 0)
}

fn connection_addr(c: &sdp_types::Connection) -> Result<IpAddr, SdpError> {
    let bad = || SdpError::BadConnection(reason_safe(&c.connection_address));
    if c.nettype != sdp_types::NetType::In {
        return Err(bad());
    }
    let ip = c.try_address().map_err(|_| bad())?.ip;
    // The address family must match the tag: "IN IP4 ::1" is a broken SDP.
    let family_ok = match c.addrtype {
        sdp_types::AddrType::Ip4 => ip.is_ipv4(),
        sdp_types::AddrType::Ip6 => ip.is_ipv6(),
        _ => false,
    };
    if !family_ok {
        return Err(bad());
    }
    if ip.is_multicast() {
        return Err(SdpError::Multicast(ip));
    }
    Ok(ip)
}

/// Text from the peer or the parser made fit for a SIP reason phrase (RFC 3261 sec. 25.1:
/// unreserved, reserved, space, non-ASCII): `"` becomes `'`, anything else unsafe `?`, and
/// at most 80 characters are kept.
pub(crate) fn reason_safe(text: &str) -> String {
    const MARKS_AND_RESERVED: &str = "-_.!~*'();/?:@&=+$, ";
    text.chars()
        .map(|c| match c {
            '"' => '\'',
            c if c.is_ascii_alphanumeric() || MARKS_AND_RESERVED.contains(c) => c,
            c if !c.is_ascii() && !c.is_control() => c,
            _ => '?',
        })
        .take(80)
        .collect()
}

/// A stable u64 for a session id: the number itself, else FNV-1a of its text.
fn numeric_or_hash(id: &str) -> u64 {
    id.parse::<u64>().unwrap_or_else(|_| {
        id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    })
}
