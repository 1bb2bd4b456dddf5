//! The sans-IO relay core: one [`RelaySession`] per call media bridge.
//!
//! # Latching (symmetric RTP, RFC 4961 style)
//! Each leg has one latch for RTP and one for RTCP. Until a latch is set, packets to that
//! peer go to the address from its SDP (RTCP: that port + 1). The latch is set by the first
//! *valid* packet from any source: for RTP, version 2 with one of the leg's payload types
//! (codec or telephone-event); for RTCP, a well-formed compound packet. After that, a
//! packet from another source is dropped, unless the latched source has been silent for at
//! least [`RelayConfig::relatch_after`] (2 s): then the new source takes over. An attacker
//! guessing our port cannot steal a live stream, while a phone whose NAT mapping changed
//! (silent on the old port) is followed within 2 s. A new `remote` in [`LegConfig`]
//! (re-INVITE to another address, transfer) clears both latches.
//!
//! RTCP multiplexed on the RTP port (RFC 5761: second byte 192..=223) is recognised; our
//! reports to that leg then go to its RTP address.
//!
//! # Stream continuity
//! What we send to a leg always carries our own SSRC for that leg. The sequence number is
//! the source's plus an offset, and so is the timestamp; both offsets are recomputed when
//! the source SSRC changes (or its sequence number jumps by more than 3000 forward or 100
//! back, a restarted sender) so that numbering continues from our last packet, with the
//! timestamp advanced by the wall time since then (at least one 20 ms frame) and the
//! marker bit set. The receiving phone sees one continuous stream across re-INVITEs,
//! NAT re-latches and transfers.
//!
//! # Playback
//! [`RelaySession::play`] gives a leg local audio ([`Playback`]). While it plays, nothing
//! from the other leg is forwarded to it (RTP and telephone-events alike); instead the
//! relay sends one packet per 20 ms, encoded in the leg's codec with its payload type, on
//! the leg's own output stream (same SSRC, next sequence numbers, timestamps continuing
//! from the last packet by the wall time since, at least one frame), the first one with
//! the marker bit. Packet k of a playback is due at exactly `start + k * 20 ms` (no drift
//! however late the shell wakes us); the first one goes out from `play` itself. If the
//! shell falls more than [`MAX_LATE`] behind (a stalled host), the missed packets are
//! skipped rather than sent in a burst: the timestamp still advances with the clock and the
//! audio resumes where it would have been. Nothing is sent while the leg has no address
//! (no SDP remote, nothing latched), has no configuration, or its peer does not want media
//! (`sendonly`/`inactive`); the playback clock runs on regardless, so a one-shot playback
//! still ends on time. When playback ends or is stopped, forwarding resumes on the same
//! stream with the marker bit set (the source is treated as new).
//!
//! # Media timeout
//! [`RelayEvent::Timeout`] fires once when [`RelayConfig::timeout`] has passed without RTP
//! on either leg, and only while the call is answered ([`RelaySession::set_active`]) and at
//! least one peer is expected to send (its direction is sendrecv or sendonly). Hold with
//! `sendonly` still carries RTP (RFC 3264 sec. 8.4: the holding side keeps sending, e.g.
//! music), so it times out as usual; when both peers are `inactive` or `recvonly`, nobody
//! owes us packets and the timer is suspended. Activation and every [`RelaySession::configure`]
//! restart the timer. A new packet after a timeout re-arms it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtcp_types::{
    Compound, Packet, ReceiverReport, ReportBlock, RtcpPacketWriterExt as _, SenderReport,
};
use rtp_rs::RtpReader;

use super::playback::{Player, FRAME};
use super::secure::LegSrtp;
use super::stats::{LegStats, RecvStats, RemoteReport, SessionReport, CLOCK_HZ};
use super::transcode::{Enc, Transcoder};
use super::{Codec, Leg, LegConfig, Playback, PlaybackError, RelayEvent, Socket, Transmit};
use crate::media::sdp::SrtpKeys;
use crate::media::srtp::SrtpError;

/// Seconds between 1900 (NTP era 0) and 1970 (Unix).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// SRs we remember for matching the peer's LSR (one per 5 s is plenty).
const SENT_SR_MEMORY: usize = 8;
/// Minimum timestamp advance on a source change: one 20 ms frame at 8 kHz.
const MIN_TS_GAP: u32 = 160;
/// Sequence jumps beyond these (forward / backward) mean a restarted sender (RFC 3550 A.1).
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;
/// Packet interval of local playback.
const PTIME: Duration = Duration::from_millis(20);
/// How far playback may fall behind the clock before missed packets are skipped.
pub const MAX_LATE: Duration = Duration::from_millis(60);

/// Tunables of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// No RTP on either leg for this long ends the call (default 60 s).
    pub timeout: Duration,
    /// A latched source must be silent this long before another may take over (2 s).
    pub relatch_after: Duration,
    /// Interval of our RTCP reports to each leg (5 s, RFC 3550's minimum).
    pub rtcp_interval: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            relatch_after: Duration::from_secs(2),
            rtcp_interval: Duration::from_secs(5),
        }
    }
}

/// The learnt source address of one socket of one leg.
#[derive(Debug, Clone, Copy, Default)]
struct Latch {
    addr: Option<SocketAddr>,
    last: Option<Instant>,
}

impl Latch {
    /// Whether a valid packet from `from` is accepted; latches or re-latches as needed and
    /// returns `Some(true)` when the latch moved.
    fn accept(&mut self, now: Instant, from: SocketAddr, hold: Duration) -> Option<bool> {
        match (self.addr, self.last) {
            (Some(a), _) if a == from => {
                self.last = Some(now);
                Some(false)
            }
            (Some(_), Some(last)) if now.saturating_duration_since(last) < hold => None,
            _ => {
                self.addr = Some(from);
                self.last = Some(now);
                Some(true)
            }
        }
    }
}

/// The stream we send to one leg.
#[derive(Debug, Clone)]
struct OutStream {
    ssrc: u32,
    next_seq: u16,
    src_ssrc: Option<u32>,
    /// Highest sequence number seen from the current source.
    src_max_seq: u16,
    seq_offset: u16,
    ts_offset: u32,
    last_ts: u32,
    last_sent: Option<Instant>,
    packets: u32,
    octets: u32,
}

impl OutStream {
    fn new(seed: u64) -> Self {
        Self {
            ssrc: (seed >> 32) as u32 ^ seed as u32,
            next_seq: (seed >> 16) as u16,
            src_ssrc: None,
            src_max_seq: 0,
            seq_offset: 0,
            ts_offset: 0,
            last_ts: (seed >> 8) as u32,
            last_sent: None,
            packets: 0,
            octets: 0,
        }
    }

    /// Our timestamp for `now`, extrapolated from the last packet sent.
    fn ts_at(&self, now: Instant) -> u32 {
        match self.last_sent {
            Some(t) => self
                .last_ts
                .wrapping_add(ts_units(now.saturating_duration_since(t))),
            None => self.last_ts,
        }
    }

    /// Our timestamp for a new source starting at `now`: the clock since our last packet,
    /// at least one frame on.
    fn next_source_ts(&self, now: Instant) -> u32 {
        match self.last_sent {
            Some(t) => self
                .last_ts
                .wrapping_add(ts_units(now.saturating_duration_since(t)).max(MIN_TS_GAP)),
            None => self.last_ts,
        }
    }

    /// Maps a source packet's (ssrc, seq, ts) to ours; the bool asks for the marker bit.
    fn map(&mut self, now: Instant, ssrc: u32, seq: u16, ts: u32) -> (u16, u32, bool) {
        let mut mark = false;
        // Same SSRC but a sequence jump no reordering explains (RFC 3550 A.1's limits):
        // the sender restarted its numbering, as some phones do on re-INVITE.
        let jump = seq.wrapping_sub(self.src_max_seq);
        let restarted = (MAX_DROPOUT..=u16::MAX - MAX_MISORDER).contains(&jump);
        if self.src_ssrc != Some(ssrc) || restarted {
            let out_ts = self.next_source_ts(now);
            self.seq_offset = self.next_seq.wrapping_sub(seq);
            self.ts_offset = out_ts.wrapping_sub(ts);
            self.src_ssrc = Some(ssrc);
            self.src_max_seq = seq;
            mark = true;
        } else if jump < 0x8000 {
            self.src_max_seq = seq;
        }
        let oseq = seq.wrapping_add(self.seq_offset);
        let ots = ts.wrapping_add(self.ts_offset);
        // Only a newer packet moves the counters; a reordered one keeps its place.
        if oseq.wrapping_sub(self.next_seq) < 0x8000 {
            self.next_seq = oseq.wrapping_add(1);
        }
        if self.last_sent.is_none() || ots.wrapping_sub(self.last_ts) < 0x8000_0000 {
            self.last_ts = ots;
            self.last_sent = Some(now);
        }
        (oseq, ots, mark)
    }
}

fn ts_units(d: Duration) -> u32 {
    (d.as_micros() * u128::from(CLOCK_HZ) / 1_000_000) as u32
}

/// Everything about one leg.
#[derive(Debug)]
struct LegState {
    cfg: Option<LegConfig>,
    rtp: Latch,
    rtcp: Latch,
    rtcp_mux: bool,
    recv: RecvStats,
    out: OutStream,
    stats: LegStats,
    remote: Option<RemoteReport>,
    /// Middle 32 bits of the NTP time of the peer's last SR, and when it arrived.
    peer_sr: Option<(u32, Instant)>,
    /// Our SRs to this leg: (middle 32 bits of NTP, sent at).
    sent_srs: VecDeque<(u32, Instant)>,
    next_rtcp: Instant,
    /// Local playback replacing the other leg's audio, if any.
    play: Option<Box<PlayState>>,
    /// SRTP contexts if the leg is secure.
    srtp: Option<Box<LegSrtp>>,
}

/// A playback running on one leg.
#[derive(Debug)]
struct PlayState {
    player: Player,
    start: Instant,
    /// Packets (sent or not) since `start`; the next one is due at `start + ticks * PTIME`.
    ticks: u64,
    /// Our timestamp of packet 0.
    ts0: u32,
    /// The next packet sent carries the marker bit.
    mark: bool,
    /// Encoder for the leg's current codec (rebuilt if a re-INVITE changes it).
    enc: Option<(Codec, Enc)>,
    pcm: [i16; FRAME],
    wide: Vec<i16>,
}

impl PlayState {
    fn due(&self, k: u64) -> Instant {
        // 20 ms * k as microseconds: no overflow for any playback shorter than 584 000 years.
        self.start + Duration::from_micros(20_000u64.saturating_mul(k))
    }
}

impl LegState {
    fn new(seed: u64, next_rtcp: Instant) -> Self {
        Self {
            cfg: None,
            rtp: Latch::default(),
            rtcp: Latch::default(),
            rtcp_mux: false,
            recv: RecvStats::default(),
            out: OutStream::new(seed),
            stats: LegStats::default(),
            remote: None,
            peer_sr: None,
            sent_srs: VecDeque::new(),
            next_rtcp,
            play: None,
            srtp: None,
        }
    }

    /// Where RTP to this peer goes: the latched source, else the SDP address.
    fn rtp_dest(&self) -> Option<SocketAddr> {
        self.rtp.addr.or(self.cfg.and_then(|c| c.remote))
    }

    /// Where RTCP to this peer goes, and from which of our sockets.
    fn rtcp_dest(&self) -> Option<(Socket, SocketAddr)> {
        if self.rtcp_mux {
            return self.rtcp.addr.or(self.rtp_dest()).map(|a| (Socket::Rtp, a));
        }
        if let Some(a) = self.rtcp.addr {
            return Some((Socket::Rtcp, a));
        }
        let mut a = self.rtp_dest()?;
        a.set_port(a.port().checked_add(1)?);
        Some((Socket::Rtcp, a))
    }
}

/// The media bridge of one call: two legs, packets in, packets out. See the module docs.
#[derive(Debug)]
pub struct RelaySession {
    cfg: RelayConfig,
    legs: [LegState; 2],
    /// Converter for packets *from* leg index i, if the codecs differ.
    transcode: [Option<Transcoder>; 2],
    active: bool,
    epoch: Instant,
    /// Wall-clock time (since the Unix epoch) at `epoch`, for RTCP's NTP timestamps.
    wall_at_epoch: Duration,
    /// Start of the current media-timeout window.
    last_media: Instant,
    timed_out: bool,
    /// Packets to send, and whether each is RTCP (for SRTP/SRTCP on a secure leg).
    transmits: VecDeque<(Transmit, bool)>,
    events: VecDeque<RelayEvent>,
    /// Reused buffer for unprotecting SRTP packets.
    scratch: Vec<u8>,
}

impl RelaySession {
    /// A session with unconfigured legs (their packets are dropped until
    /// [`configure`](Self::configure)). `wall_now` is the wall-clock time since the Unix
    /// epoch (only used in RTCP timestamps); `seed` picks our SSRCs and initial sequence
    /// numbers and timestamps (pass a random value).
    #[must_use]
    pub fn new(cfg: RelayConfig, now: Instant, wall_now: Duration, seed: u64) -> Self {
        let mix = |x: u64| {
            // splitmix64: two well-spread values from one seed.
            let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        // Offset the two legs' report times so they do not go out together.
        let first = now + cfg.rtcp_interval;
        Self {
            legs: [
                LegState::new(mix(seed), first),
                LegState::new(mix(seed ^ 0xA5A5_A5A5), first + cfg.rtcp_interval / 2),
            ],
            cfg,
            transcode: [None, None],
            active: false,
            epoch: now,
            wall_at_epoch: wall_now,
            last_media: now,
            timed_out: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            scratch: Vec::new(),
        }
    }

    /// Sets (or, on re-INVITE, changes) what SDP negotiated for a plain RTP `leg` (no
    /// SRTP: see [`configure_secure`](Self::configure_secure)). A new remote address
    /// clears that leg's latches; the media timer restarts.
    pub fn configure(&mut self, now: Instant, leg: Leg, cfg: LegConfig) {
        self.configure_secure(now, leg, cfg, None);
    }

    /// [`configure`](Self::configure) with the leg's SRTP keys, `None` for plain RTP.
    /// New keys for a direction start a new SRTP context for it; unchanged ones keep
    /// theirs (rollover counter, replay window).
    pub fn configure_secure(
        &mut self,
        now: Instant,
        leg: Leg,
        cfg: LegConfig,
        srtp: Option<SrtpKeys>,
    ) {
        let st = &mut self.legs[leg.idx()];
        match (st.srtp.as_deref_mut(), srtp) {
            (_, None) => st.srtp = None,
            (Some(s), Some(keys)) => s.rekey(keys),
            (None, Some(keys)) => st.srtp = Some(Box::new(LegSrtp::new(keys))),
        }
        if st.cfg.map(|c| c.remote) != Some(cfg.remote) {
            st.rtp = Latch::default();
            st.rtcp = Latch::default();
            st.rtcp_mux = false;
            // A new peer (transfer) hears playback start with a marked packet.
            if let Some(p) = st.play.as_deref_mut() {
                p.mark = true;
            }
        }
        st.cfg = Some(cfg);
        if let (Some(a), Some(b)) = (self.legs[0].cfg, self.legs[1].cfg) {
            self.transcode = [
                Transcoder::new(a.codec, b.codec),
                Transcoder::new(b.codec, a.codec),
            ];
        }
        self.last_media = now;
        self.timed_out = false;
    }

    /// Marks the call answered (starts the media timeout) or not.
    pub fn set_active(&mut self, now: Instant, on: bool) {
        if on && !self.active {
            self.last_media = now;
            self.timed_out = false;
        }
        self.active = on;
    }

    /// Feeds one datagram that arrived on `leg`'s `socket` from `from`. Anything that is
    /// not a packet we expect is dropped and counted in [`LegStats::dropped`].
    pub fn handle_packet(
        &mut self,
        now: Instant,
        leg: Leg,
        socket: Socket,
        from: SocketAddr,
        data: &[u8],
    ) {
        let is_rtcp = match socket {
            Socket::Rtcp => true,
            // RFC 5761 sec. 4: RTCP packet types 192..=223 never clash with RTP's PTs.
            // (SRTP and SRTCP leave these header bytes in the clear.)
            Socket::Rtp => data.len() >= 2 && (192..=223).contains(&data[1]),
        };
        let ok = if self.legs[leg.idx()].srtp.is_some() {
            self.handle_secure(now, leg, socket, from, data, is_rtcp)
        } else if is_rtcp {
            self.handle_rtcp(now, leg, socket, from, data)
        } else {
            self.handle_rtp(now, leg, from, data)
        };
        if !ok {
            self.legs[leg.idx()].stats.dropped += 1;
        }
    }

    /// Unprotects an SRTP/SRTCP packet of a secure leg, then handles it as a plain one.
    fn handle_secure(
        &mut self,
        now: Instant,
        leg: Leg,
        socket: Socket,
        from: SocketAddr,
        data: &[u8],
        is_rtcp: bool,
    ) -> bool {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.extend_from_slice(data);
        let st = &mut self.legs[leg.idx()];
        let result = match st.srtp.as_deref_mut() {
            Some(s) => s.unprotect(is_rtcp, &mut buf),
            None => Ok(()),
        };
        let ok = match result {
            Ok(()) if is_rtcp => self.handle_rtcp(now, leg, socket, from, &buf),
            Ok(()) => self.handle_rtp(now, leg, from, &buf),
            Err(e) => {
                match e {
                    SrtpError::AuthFailed => st.stats.srtp_auth_failed += 1,
                    SrtpError::Replayed => st.stats.srtp_replayed += 1,
                    _ => {}
                }
                false
            }
        };
        self.scratch = buf;
        ok
    }

    fn handle_rtp(&mut self, now: Instant, leg: Leg, from: SocketAddr, data: &[u8]) -> bool {
        let Ok(rtp) = RtpReader::new(data) else {
            return false;
        };
        let src = &mut self.legs[leg.idx()];
        let Some(cfg) = src.cfg else {
            return false;
        };
        let pt = rtp.payload_type();
        let is_event = cfg.telephone_event == Some(pt);
        if pt != cfg.pt && !is_event {
            return false;
        }
        match src.rtp.accept(now, from, self.cfg.relatch_after) {
            None => return false,
            Some(true) => self.events.push_back(RelayEvent::Latched {
                leg,
                socket: Socket::Rtp,
                addr: from,
            }),
            Some(false) => {}
        }
        let (ssrc, seq, ts) = (
            rtp.ssrc(),
            u16::from(rtp.sequence_number()),
            rtp.timestamp(),
        );
        src.stats.packets_in += 1;
        src.stats.bytes_in += data.len() as u64;
        src.stats.last_rtp = Some(now);
        let arrival = ts_units(now.saturating_duration_since(self.epoch));
        src.recv
            .update(ssrc, seq, ts, i64::from(arrival), !is_event);
        self.last_media = now;
        self.timed_out = false;

        // Forward to the other leg.
        let dst = &mut self.legs[leg.other().idx()];
        let Some(dcfg) = dst.cfg else {
            return true;
        };
        if !dcfg.direction.peer_receives() || dst.play.is_some() {
            return true;
        }
        let Some(to) = dst.rtp_dest() else {
            return true;
        };
        let out_pt = if is_event {
            match dcfg.telephone_event {
                Some(p) => p,
                None => return true,
            }
        } else {
            dcfg.pt
        };
        let (oseq, ots, mark) = dst.out.map(now, ssrc, seq, ts);
        let payload = rtp.payload();
        // 12-byte header, no CSRCs or extensions (we are the source now); the G.722
        // encoder wants one spare byte.
        let mut buf = Vec::with_capacity(13 + payload.len());
        let marker = rtp.mark() || mark;
        buf.extend_from_slice(&[0x80, (u8::from(marker) << 7) | (out_pt & 0x7f)]);
        buf.extend_from_slice(&oseq.to_be_bytes());
        buf.extend_from_slice(&ots.to_be_bytes());
        buf.extend_from_slice(&dst.out.ssrc.to_be_bytes());
        let converted = match &mut self.transcode[leg.idx()] {
            Some(t) if !is_event => t.convert(payload, &mut buf),
            _ => {
                buf.extend_from_slice(payload);
                true
            }
        };
        if converted {
            let payload_len = buf.len() - 12;
            dst.out.packets = dst.out.packets.wrapping_add(1);
            dst.out.octets = dst.out.octets.wrapping_add(payload_len as u32);
            dst.stats.packets_out += 1;
            dst.stats.bytes_out += buf.len() as u64;
            self.transmits.push_back((
                Transmit {
                    leg: leg.other(),
                    socket: Socket::Rtp,
                    to,
                    data: buf,
                },
                false,
            ));
        }
        true
    }

    fn handle_rtcp(
        &mut self,
        now: Instant,
        leg: Leg,
        socket: Socket,
        from: SocketAddr,
        data: &[u8],
    ) -> bool {
        let st = &mut self.legs[leg.idx()];
        if st.cfg.is_none() {
            return false;
        }
        let Ok(compound) = Compound::parse(data) else {
            return false;
        };
        let packets: Vec<_> = compound.collect();
        if packets.iter().any(Result::is_err) {
            return false;
        }
        match st.rtcp.accept(now, from, self.cfg.relatch_after) {
            None => return false,
            Some(true) => self.events.push_back(RelayEvent::Latched {
                leg,
                socket: Socket::Rtcp,
                addr: from,
            }),
            Some(false) => {}
        }
        st.rtcp_mux = socket == Socket::Rtp;
        st.stats.rtcp_in += 1;
        for p in packets.iter().flatten() {
            match p {
                Packet::Sr(sr) => {
                    st.peer_sr = Some(((sr.ntp_timestamp() >> 16) as u32, now));
                    for b in sr.report_blocks() {
                        Self::take_block(st, now, &b);
                    }
                }
                Packet::Rr(rr) => {
                    for b in rr.report_blocks() {
                        Self::take_block(st, now, &b);
                    }
                }
                _ => {}
            }
        }
        true
    }

    /// Takes in a report block if it is about the stream we send to this leg.
    fn take_block(st: &mut LegState, now: Instant, b: &ReportBlock<'_>) {
        if b.ssrc() != st.out.ssrc {
            return;
        }
        let r = RemoteReport {
            fraction_lost: b.fraction_lost(),
            cumulative_lost: b.cumulative_lost(),
            jitter_ts: b.interarrival_jitter(),
        };
        st.remote = Some(r);
        st.stats.remote_loss_pct = Some(f64::from(r.fraction_lost) * 100.0 / 256.0);
        st.stats.remote_lost = Some(r.cumulative_lost);
        st.stats.remote_jitter_ms = Some(f64::from(r.jitter_ts) * 1000.0 / CLOCK_HZ as f64);
        let lsr = b.last_sender_report_timestamp();
        if lsr == 0 {
            return;
        }
        if let Some(&(_, sent)) = st.sent_srs.iter().find(|(mid, _)| *mid == lsr) {
            // RTT = A - LSR - DLSR (RFC 3550 6.4.1), with A taken from our own clock.
            let dlsr = f64::from(b.delay_since_last_sender_report_timestamp()) / 65536.0;
            let rtt = now.saturating_duration_since(sent).as_secs_f64() - dlsr;
            st.stats.rtt_ms = Some((rtt * 1000.0).max(0.0));
        }
    }

    /// Processes timers due at `now`: our RTCP reports and the media timeout. A call
    /// before the deadline is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(d) = self.media_deadline() {
            if now >= d {
                self.timed_out = true;
                self.events.push_back(RelayEvent::Timeout);
            }
        }
        for i in 0..2 {
            self.run_playback(now, i);
            if now >= self.legs[i].next_rtcp {
                self.legs[i].next_rtcp = now + self.cfg.rtcp_interval;
                self.send_report(now, i);
            }
        }
    }

    fn media_deadline(&self) -> Option<Instant> {
        let expects = self
            .legs
            .iter()
            .any(|l| l.cfg.is_some_and(|c| c.direction.peer_sends()));
        (self.active && expects && !self.timed_out).then(|| self.last_media + self.cfg.timeout)
    }

    /// Builds our SR (or RR, if we sent nothing yet) with a report block about the peer's
    /// stream, for leg index `i`.
    fn send_report(&mut self, now: Instant, i: usize) {
        let ntp = self.ntp(now);
        let st = &mut self.legs[i];
        if st.cfg.is_none() || (st.out.packets == 0 && st.recv.ssrc.is_none()) {
            return;
        }
        let Some((socket, to)) = st.rtcp_dest() else {
            return;
        };
        let block = st.recv.ssrc.map(|ssrc| {
            let (lsr, dlsr) = match st.peer_sr {
                Some((mid, at)) => {
                    let d = now.saturating_duration_since(at).as_secs_f64() * 65536.0;
                    (mid, d.min(f64::from(u32::MAX)) as u32)
                }
                None => (0, 0),
            };
            ReportBlock::builder(ssrc)
                .fraction_lost(st.recv.take_fraction_lost())
                .cumulative_lost(
                    u32::try_from(st.recv.lost())
                        .unwrap_or(0x7f_ffff)
                        .min(0x7f_ffff),
                )
                .extended_sequence_number(st.recv.extended_max())
                .interarrival_jitter(st.recv.jitter_ts())
                .last_sender_report_timestamp(lsr)
                .delay_since_last_sender_report_timestamp(dlsr)
        });
        let mut buf = vec![0u8; 1500];
        let written = if st.out.packets > 0 {
            let mut sr = SenderReport::builder(st.out.ssrc)
                .ntp_timestamp(ntp)
                .rtp_timestamp(st.out.ts_at(now))
                .packet_count(st.out.packets)
                .octet_count(st.out.octets);
            if let Some(b) = block {
                sr = sr.add_report_block(b);
            }
            if st.sent_srs.len() == SENT_SR_MEMORY {
                st.sent_srs.pop_front();
            }
            st.sent_srs.push_back(((ntp >> 16) as u32, now));
            sr.write_into(&mut buf)
        } else {
            let mut rr = ReceiverReport::builder(st.out.ssrc);
            if let Some(b) = block {
                rr = rr.add_report_block(b);
            }
            rr.write_into(&mut buf)
        };
        // Writing one SR/RR with at most one block into 1500 bytes cannot fail; if it
        // somehow did, skipping one report is harmless.
        if let Ok(n) = written {
            buf.truncate(n);
            let leg = if i == 0 { Leg::A } else { Leg::B };
            self.transmits.push_back((
                Transmit {
                    leg,
                    socket,
                    to,
                    data: buf,
                },
                true,
            ));
        }
    }

    /// 64-bit NTP timestamp for `now`.
    fn ntp(&self, now: Instant) -> u64 {
        let t = self.wall_at_epoch
            + now.saturating_duration_since(self.epoch)
            + Duration::from_secs(NTP_UNIX_OFFSET);
        (t.as_secs() << 32) | ((u64::from(t.subsec_nanos()) << 32) / 1_000_000_000)
    }

    /// The next packet to send (protected with SRTP/SRTCP if its leg is secure).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        loop {
            let (mut t, rtcp) = self.transmits.pop_front()?;
            let Some(s) = self.legs[t.leg.idx()].srtp.as_deref_mut() else {
                return Some(t);
            };
            // Only an exhausted SRTCP index (2^31 reports) can fail: that report is
            // skipped rather than sent in the clear.
            if s.protect(rtcp, &mut t.data).is_ok() {
                return Some(t);
            }
        }
    }

    /// The next event for the call layer.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let rtcp = self.legs.iter().map(|l| l.next_rtcp).min();
        let play = self
            .legs
            .iter()
            .filter_map(|l| l.play.as_ref().map(|p| p.due(p.ticks)))
            .min();
        [self.media_deadline(), rtcp, play]
            .into_iter()
            .flatten()
            .min()
    }

    /// Starts playing `source` into `leg` (replacing what it played before, without a
    /// [`RelayEvent::PlaybackDone`] for that). The first packet is queued at once if the
    /// leg can receive; see the module documentation for timing and numbering. An invalid
    /// source changes nothing.
    pub fn play(&mut self, now: Instant, leg: Leg, source: Playback) -> Result<(), PlaybackError> {
        let player = Player::new(&source)?;
        self.start_playback(now, leg, player);
        Ok(())
    }

    /// [`play`](Self::play) with a source validated beforehand (by the service's handle).
    pub(crate) fn start_playback(&mut self, now: Instant, leg: Leg, player: Player) {
        let st = &mut self.legs[leg.idx()];
        // Forwarding resumes as a new source afterwards (fresh offsets, marker bit).
        st.out.src_ssrc = None;
        st.play = Some(Box::new(PlayState {
            player,
            start: now,
            ticks: 0,
            ts0: st.out.next_source_ts(now),
            mark: true,
            enc: None,
            pcm: [0; FRAME],
            wide: Vec::with_capacity(2 * FRAME),
        }));
        self.run_playback(now, leg.idx());
    }

    /// Stops playback on `leg`, if any; the other leg's audio is forwarded to it again.
    /// No [`RelayEvent::PlaybackDone`] is reported for a stopped playback.
    pub fn stop(&mut self, _now: Instant, leg: Leg) {
        let st = &mut self.legs[leg.idx()];
        if st.play.take().is_some() {
            st.out.src_ssrc = None;
        }
    }

    /// Whether `leg` is playing local audio.
    #[must_use]
    pub fn is_playing(&self, leg: Leg) -> bool {
        self.legs[leg.idx()].play.is_some()
    }

    /// Produces the playback packets of leg index `i` due by `now`.
    fn run_playback(&mut self, now: Instant, i: usize) {
        let leg = if i == 0 { Leg::A } else { Leg::B };
        let st = &mut self.legs[i];
        // Taken out while running so that the rest of the leg can be borrowed.
        let Some(mut p) = st.play.take() else {
            return;
        };
        let mut done = false;
        while !done && p.due(p.ticks) <= now {
            let late = now.saturating_duration_since(p.due(p.ticks));
            if late > MAX_LATE {
                // Skip to the last packet still within MAX_LATE.
                let skip = ((late - MAX_LATE).as_micros() / PTIME.as_micros() + 1) as u64;
                done = p.player.skip(skip * FRAME as u64);
                p.ticks += skip;
                continue;
            }
            let due = p.due(p.ticks);
            done = p.player.fill(&mut p.pcm);
            let ts = p
                .ts0
                .wrapping_add((p.ticks.wrapping_mul(FRAME as u64)) as u32);
            p.ticks += 1;
            let Some(cfg) = st.cfg else { continue };
            let Some(to) = st.rtp_dest() else { continue };
            if !cfg.direction.peer_receives() {
                continue;
            }
            let enc = match &mut p.enc {
                Some((c, e)) if *c == cfg.codec => e,
                slot => &mut slot.insert((cfg.codec, Enc::new(cfg.codec))).1,
            };
            // 12-byte header and one byte per sample (G.722 wants one spare byte).
            let mut buf = Vec::with_capacity(13 + FRAME);
            buf.extend_from_slice(&[0x80, (u8::from(p.mark) << 7) | (cfg.pt & 0x7f)]);
            buf.extend_from_slice(&st.out.next_seq.to_be_bytes());
            buf.extend_from_slice(&ts.to_be_bytes());
            buf.extend_from_slice(&st.out.ssrc.to_be_bytes());
            enc.encode(&p.pcm, &mut p.wide, &mut buf);
            p.mark = false;
            st.out.next_seq = st.out.next_seq.wrapping_add(1);
            st.out.last_ts = ts;
            st.out.last_sent = Some(due);
            st.out.packets = st.out.packets.wrapping_add(1);
            st.out.octets = st.out.octets.wrapping_add((buf.len() - 12) as u32);
            st.stats.packets_out += 1;
            st.stats.bytes_out += buf.len() as u64;
            self.transmits.push_back((
                Transmit {
                    leg,
                    socket: Socket::Rtp,
                    to,
                    data: buf,
                },
                false,
            ));
        }
        if done {
            st.out.src_ssrc = None;
            self.events.push_back(RelayEvent::PlaybackDone { leg });
        } else {
            st.play = Some(p);
        }
    }

    /// Live figures of one leg.
    #[must_use]
    pub fn stats(&self, leg: Leg) -> LegStats {
        let st = &self.legs[leg.idx()];
        let mut s = st.stats.clone();
        s.lost = st.recv.lost();
        s.expected = st.recv.expected();
        s.jitter_ms = f64::from(st.recv.jitter_ts()) * 1000.0 / CLOCK_HZ as f64;
        s
    }

    /// The summary for the call record (codec per leg as last configured; PCMA if never).
    #[must_use]
    pub fn report(&self) -> SessionReport {
        let leg = |l: Leg| {
            let codec = self.legs[l.idx()]
                .cfg
                .map_or(super::Codec::Pcma, |c| c.codec);
            self.stats(l).report(codec)
        };
        SessionReport {
            a: leg(Leg::A),
            b: leg(Leg::B),
        }
    }

    /// The address a leg's RTP is currently sent to (latched, else from SDP).
    #[must_use]
    pub fn rtp_destination(&self, leg: Leg) -> Option<SocketAddr> {
        self.legs[leg.idx()].rtp_dest()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod playback_tests;

#[cfg(test)]
mod srtp_tests;
