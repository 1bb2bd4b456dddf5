//! The RTP relay that anchors call media in the box.
//!
//! A call's media bridge is one [`RelaySession`]: two legs, A and B, each facing one peer
//! (a phone, a trunk) through its own RTP and RTCP sockets. [`RelaySession`] is the sans-IO
//! core: it is fed packets and the current time and returns packets to send, events and the
//! next deadline. [`service::MediaService`] is the tokio shell that binds the sockets and
//! drives one core per session in its own task.
//!
//! What the core does, per packet from leg X towards the other leg Y:
//! - **Symmetric RTP latching**: it learns X's real address from X's packets (see
//!   [`session`] for the exact rule and its 2 s injection guard).
//! - **Stream continuity**: Y sees one stream, with our fixed SSRC for Y and a continuous
//!   sequence number and timestamp, across re-INVITEs, source changes and transfers.
//! - **Payload**: PT rewritten to Y's, transcoded if X and Y use different codecs
//!   ([`Codec`]: PCMA, PCMU, G.722); telephone-event (RFC 4733) only gets its PT translated
//!   (e.g. 101 -> 113), never transcoded, and is dropped if Y negotiated none.
//! - **Hold**: nothing is sent to a peer that declared `sendonly` or `inactive`.
//! - **Quality**: loss and jitter of what X sends us (RFC 3550 A.1, A.8); X's RTCP reports
//!   about what we send it (loss, jitter, round trip from LSR/DLSR); an E-model MOS estimate.
//! - **RTCP is terminated**, not forwarded: each leg gets our own SR/RR every 5 s about the
//!   stream we send it and the one we receive from it (the peers' reports refer to SSRCs and
//!   sequence numbers that only exist on their side of the relay).
//! - **Playback**: a leg can be given local audio instead ([`Playback`]: tones, music on
//!   hold, WAV clips); the other leg's packets are then not forwarded to it, and the relay
//!   generates one packet per 20 ms in the leg's codec on the same output stream.
//! - **SRTP** (RFC 3711, SDES keys): a leg configured with [`SrtpKeys`](crate::media::sdp::SrtpKeys)
//!   ([`RelaySession::configure_secure`]) has its packets authenticated, replay-checked and
//!   decrypted on arrival (failures are dropped and counted in [`LegStats`]) and everything
//!   sent to it, RTP and our RTCP reports (SRTCP), protected. Keys are never logged.
//! - **Media timeout**: [`RelayEvent::Timeout`] when no RTP arrived on either leg for the
//!   configured time once the call is answered (see [`session`]).
//!
//! Run loop (what the shell does):
//! ```
//! use std::time::{Duration, Instant};
//! use pbxd::media::relay::{Codec, Direction, Leg, LegConfig, RelayConfig, RelaySession, Socket};
//!
//! let now = Instant::now();
//! let mut s = RelaySession::new(RelayConfig::default(), now, Duration::ZERO, 42);
//! for leg in [Leg::A, Leg::B] {
//!     s.configure(now, leg, LegConfig {
//!         remote: Some("192.0.2.1:4000".parse().unwrap()),
//!         codec: Codec::Pcma, pt: 8, telephone_event: Some(101),
//!         direction: Direction::SendRecv,
//!     });
//! }
//! s.set_active(now, true);
//! // A packet arrived on leg A's RTP socket:
//! let pkt = [0x80, 8, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4, 0xd5, 0xd5];
//! s.handle_packet(now, Leg::A, Socket::Rtp, "198.51.100.7:5000".parse().unwrap(), &pkt);
//! let mut sent = 0;
//! while let Some(t) = s.poll_transmit() {
//!     // send t.data from the socket (t.leg, t.socket) to t.to
//!     assert_eq!((t.leg, t.to), (Leg::B, "192.0.2.1:4000".parse().unwrap()));
//!     sent += 1;
//! }
//! assert_eq!(sent, 1);
//! while let Some(_event) = s.poll_event() { /* report timeouts */ }
//! let _sleep_until = s.poll_timeout(); // then call s.handle_timeout(now) when it passes
//! ```

pub mod g711;
pub mod playback;
mod secure;
pub mod service;
pub mod session;
pub mod stats;
pub(crate) mod transcode;
pub mod wav;

use std::net::SocketAddr;

pub use playback::{Playback, PlaybackError, CONFIRMATION};
pub use service::{
    spawn_media_runtime, MediaConfig, MediaError, MediaEvent, MediaService, SessionHandle,
};
pub use session::{RelayConfig, RelaySession};
pub use stats::{mos, LegReport, LegStats, SessionReport};
pub use wav::{load_wav_8k, parse_wav_8k, WavError};

/// One side of the bridge. Which peer is A and which is B is the call layer's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The first leg (usually the caller).
    A,
    /// The second leg (usually the callee).
    B,
}

impl Leg {
    /// The leg on the other side of the bridge.
    #[must_use]
    pub fn other(self) -> Leg {
        match self {
            Leg::A => Leg::B,
            Leg::B => Leg::A,
        }
    }

    pub(crate) fn idx(self) -> usize {
        match self {
            Leg::A => 0,
            Leg::B => 1,
        }
    }
}

/// Which of a leg's two sockets a packet came in on or goes out from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Socket {
    /// The RTP socket (even port); also carries RTCP when the peer multiplexes (RFC 5761).
    Rtp,
    /// The RTCP socket (RTP port + 1).
    Rtcp,
}

/// The codecs the relay can forward and transcode between. The lead maps the SDP module's
/// codec type onto this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// G.722 at 64 kbit/s (8 kHz RTP clock, RFC 3551).
    G722,
}

/// The media direction the peer of a leg declared in its SDP (its own point of view:
/// `SendOnly` means the peer sends and does not want to receive, as when it puts us on hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Both ways.
    #[default]
    SendRecv,
    /// The peer only sends (it holds the call): we send nothing to it.
    SendOnly,
    /// The peer only receives.
    RecvOnly,
    /// No media either way: we send nothing and expect nothing.
    Inactive,
}

impl Direction {
    /// Whether the peer wants media from us.
    #[must_use]
    pub fn peer_receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// Whether the peer is expected to send media to us.
    #[must_use]
    pub fn peer_sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
}

/// What the SDP negotiation decided for one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegConfig {
    /// The peer's RTP address from its SDP (`c=` and `m=`), used until we latch onto the
    /// address its packets really come from. `None` if the SDP had none (or `0.0.0.0`).
    pub remote: Option<SocketAddr>,
    /// The negotiated audio codec.
    pub codec: Codec,
    /// The payload type the peer uses for that codec.
    pub pt: u8,
    /// The payload type of telephone-event (RFC 4733) on this leg, if negotiated.
    pub telephone_event: Option<u8>,
    /// The direction the peer declared.
    pub direction: Direction,
}

/// A packet for the shell to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The leg whose socket sends it.
    pub leg: Leg,
    /// Which of that leg's sockets.
    pub socket: Socket,
    /// The destination.
    pub to: SocketAddr,
    /// The datagram.
    pub data: Vec<u8>,
}

/// Something the call layer should know about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEvent {
    /// No RTP arrived on either leg for the configured media timeout: the call is dead.
    Timeout,
    /// We learnt (or, after the 2 s guard, changed) a peer's real address.
    Latched {
        /// The leg.
        leg: Leg,
        /// Which socket's latch.
        socket: Socket,
        /// The address packets now go to.
        addr: SocketAddr,
    },
    /// A playback that ends by itself ([`Playback::Once`], [`Playback::For`], a
    /// [`Cadence::Once`](crate::media::dsp::tone::Cadence::Once) tone) has finished; the leg
    /// hears the other leg again. Not reported for [`RelaySession::stop`] or a playback
    /// replaced by another.
    PlaybackDone {
        /// The leg that played.
        leg: Leg,
    },
}
