//! Media processing for the analog ports (issue 4).
//!
//! - [`dsp`]: sans-IO signal processing on 8 kHz linear PCM frames: DTMF generation and
//!   detection, call-progress tones, V.23 FSK and ETSI caller ID.
//! - [`jitter`]: adaptive jitter buffer with packet-loss concealment, fixed mode for fax.
//! - [`sdp`]: SDP offer/answer (RFC 3264) for the B2BUA legs: typed SDP, codec choice,
//!   hold, telephone-event payload types (issue 3).
//! - [`relay`]: the RTP/RTCP relay anchoring call media in the box (issue 3): symmetric-RTP
//!   latching, SSRC/sequence continuity, PCMA/PCMU/G.722 transcoding, per-leg quality stats.
//! - [`srtp`]: SRTP/SRTCP (RFC 3711, AES-CM-128 with HMAC-SHA1) for legs keyed with SDES
//!   (RFC 4568); [`SrtpMode`] is the policy of what the box offers.

pub mod dsp;
pub mod jitter;
pub mod relay;
pub mod sdp;
pub mod srtp;

pub use sdp::SrtpMode;
