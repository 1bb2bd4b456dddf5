//! Per-leg quality figures: loss and jitter of the received stream (RFC 3550 A.1 and A.8),
//! the peer's view from its RTCP reports, and an E-model MOS estimate (ITU-T G.107).

use std::time::Instant;

use super::Codec;

/// RTP clock rate of every codec the relay handles (G.722 too, RFC 3551).
pub(crate) const CLOCK_HZ: u64 = 8000;

const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;

/// Sequence and jitter tracking of the stream received from one peer.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecvStats {
    pub(crate) ssrc: Option<u32>,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u64,
    /// Expected/received of earlier sources (SSRC changes, restarts).
    prev_expected: u64,
    prev_received: u64,
    transit: Option<i64>,
    /// Interarrival jitter in timestamp units, scaled by 16 as in RFC 3550 A.8.
    jitter_x16: i64,
    /// Expected/received at the time of our last RTCP report (for "fraction lost").
    prior_expected: u64,
    prior_received: u64,
}

impl RecvStats {
    /// Records one packet. `arrival` is the arrival time in timestamp units on any fixed
    /// origin; `jitter` is false for packets whose timestamp does not follow the sampling
    /// clock (telephone-event repeats).
    pub(crate) fn update(&mut self, ssrc: u32, seq: u16, ts: u32, arrival: i64, jitter: bool) {
        if self.ssrc != Some(ssrc) {
            self.restart(ssrc, seq);
            self.transit = None;
        } else {
            let delta = seq.wrapping_sub(self.max_seq);
            if delta == 0 {
                // Duplicate: counted as received, as RFC 3550 does (loss may go negative).
            } else if delta < MAX_DROPOUT {
                if seq < self.max_seq {
                    self.cycles = self.cycles.wrapping_add(1 << 16);
                }
                self.max_seq = seq;
            } else if delta <= u16::MAX - MAX_MISORDER {
                // A big jump: the sender restarted its numbering. Start counting afresh
                // rather than booking thousands of packets as lost.
                self.restart(ssrc, seq);
            }
            // else: a late, reordered packet; it fills a gap already counted as expected.
        }
        self.received += 1;
        if jitter {
            let transit = arrival.wrapping_sub(i64::from(ts));
            if let Some(prev) = self.transit {
                let d = (transit - prev).abs();
                // J += (|D| - J) / 16, kept scaled by 16 (RFC 3550 A.8).
                self.jitter_x16 += d - ((self.jitter_x16 + 8) >> 4);
            }
            self.transit = Some(transit);
        }
    }

    fn restart(&mut self, ssrc: u32, seq: u16) {
        self.prev_expected += self.cur_expected();
        self.prev_received += self.received;
        self.ssrc = Some(ssrc);
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.cycles = 0;
        self.received = 0;
    }

    fn cur_expected(&self) -> u64 {
        if self.ssrc.is_none() {
            return 0;
        }
        u64::from(self.extended_max()).saturating_sub(u64::from(self.base_seq)) + 1
    }

    pub(crate) fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// Packets expected from the sequence numbers seen, all sources together.
    pub(crate) fn expected(&self) -> u64 {
        self.prev_expected + self.cur_expected()
    }

    /// Packets received, all sources together (duplicates included).
    pub(crate) fn received(&self) -> u64 {
        self.prev_received + self.received
    }

    /// Packets lost (never negative).
    pub(crate) fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received())
    }

    /// Interarrival jitter in timestamp units.
    pub(crate) fn jitter_ts(&self) -> u32 {
        u32::try_from(self.jitter_x16 >> 4).unwrap_or(u32::MAX)
    }

    /// "Fraction lost" since the previous call (8-bit fixed point, RFC 3550 A.3); moves the
    /// interval start.
    pub(crate) fn take_fraction_lost(&mut self) -> u8 {
        let exp = self.expected() - self.prior_expected.min(self.expected());
        let rec = self.received() - self.prior_received.min(self.received());
        self.prior_expected = self.expected();
        self.prior_received = self.received();
        if exp == 0 || rec >= exp {
            0
        } else {
            u8::try_from(((exp - rec) << 8) / exp).unwrap_or(u8::MAX)
        }
    }
}

/// What the peer last told us in an RTCP report block about the stream we send it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RemoteReport {
    pub(crate) fraction_lost: u8,
    pub(crate) cumulative_lost: u32,
    pub(crate) jitter_ts: u32,
}

/// Live figures for one leg.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LegStats {
    /// RTP packets accepted from the peer.
    pub packets_in: u64,
    /// RTP bytes (whole datagrams) accepted from the peer.
    pub bytes_in: u64,
    /// RTP packets sent to the peer.
    pub packets_out: u64,
    /// RTP bytes sent to the peer.
    pub bytes_out: u64,
    /// Datagrams dropped: not RTP/RTCP, wrong payload type, or from an unlatched source.
    pub dropped: u64,
    /// RTCP packets received from the peer.
    pub rtcp_in: u64,
    /// Packets the peer sent that never arrived (from sequence gaps).
    pub lost: u64,
    /// Packets expected from the peer's sequence numbers.
    pub expected: u64,
    /// Interarrival jitter of the peer's stream, ms.
    pub jitter_ms: f64,
    /// When the last RTP packet from the peer arrived.
    pub last_rtp: Option<Instant>,
    /// Loss the peer reports for our stream (its last RTCP "fraction lost"), %.
    pub remote_loss_pct: Option<f64>,
    /// Packets of ours the peer reports lost in total.
    pub remote_lost: Option<u32>,
    /// Jitter the peer reports for our stream, ms.
    pub remote_jitter_ms: Option<f64>,
    /// Round-trip time from the peer's LSR/DLSR, ms.
    pub rtt_ms: Option<f64>,
    /// SRTP/SRTCP packets that failed authentication (tampered, or another key); also
    /// counted in `dropped`.
    pub srtp_auth_failed: u64,
    /// SRTP/SRTCP packets refused as replays; also counted in `dropped`.
    pub srtp_replayed: u64,
}

impl LegStats {
    /// Loss of the peer's stream as seen by us, %.
    #[must_use]
    pub fn loss_pct(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            100.0 * self.lost as f64 / self.expected as f64
        }
    }

    /// The summary kept with the call record. Loss is the worse of the two directions;
    /// the MOS uses it with a one-way delay of RTT/2 plus a jitter buffer of twice the
    /// jitter (either direction's worst).
    #[must_use]
    pub fn report(&self, codec: Codec) -> LegReport {
        let loss_pct = self.loss_pct().max(self.remote_loss_pct.unwrap_or(0.0));
        let jitter_ms = self.jitter_ms.max(self.remote_jitter_ms.unwrap_or(0.0));
        let delay = self.rtt_ms.unwrap_or(0.0) / 2.0 + 2.0 * jitter_ms;
        LegReport {
            packets_in: self.packets_in,
            packets_out: self.packets_out,
            loss_pct,
            jitter_ms,
            rtt_ms: self.rtt_ms,
            mos: mos(codec, loss_pct, delay),
        }
    }
}

/// Final quality figures of one leg, as stored with the call record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LegReport {
    /// RTP packets received from the peer.
    pub packets_in: u64,
    /// RTP packets sent to the peer.
    pub packets_out: u64,
    /// Packet loss, %, the worse of both directions.
    pub loss_pct: f64,
    /// Interarrival jitter, ms, the worse of both directions.
    pub jitter_ms: f64,
    /// Round-trip time, ms, if the peer sent RTCP reports about our SRs.
    pub rtt_ms: Option<f64>,
    /// E-model MOS estimate (1.0 ..= 4.5).
    pub mos: f64,
}

/// Final figures of a session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionReport {
    /// Leg A.
    pub a: LegReport,
    /// Leg B.
    pub b: LegReport,
}

/// E-model MOS estimate (ITU-T G.107, simplified to the terms a relay can measure).
///
/// `R = 93.2 - Id - Ie_eff`, where 93.2 is `R0 - Is` with every other G.107 default, and
/// - `Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)` for a one-way delay of `d` ms (the usual
///   simplification of G.107's delay impairment, Cole & Rosenbluth 2001),
/// - `Ie_eff = Ie + (95 - Ie) Ppl / (Ppl + Bpl)` for random loss (`BurstR = 1`) of `Ppl` %,
///   with `Ie = 0` and `Bpl = 25.1` for G.711 with packet-loss concealment (G.113
///   Appendix I). G.722 is put on the same narrowband scale with the same values: its
///   wideband advantage is not credited, so its MOS is conservative.
///
/// `MOS = 1 + 0.035 R + R (R - 60) (100 - R) 7e-6`, clamped to 1.0 ..= 4.5.
#[must_use]
pub fn mos(codec: Codec, loss_pct: f64, one_way_delay_ms: f64) -> f64 {
    let (ie, bpl) = match codec {
        Codec::Pcma | Codec::Pcmu | Codec::G722 => (0.0, 25.1),
    };
    let ppl = loss_pct.clamp(0.0, 100.0);
    let d = one_way_delay_ms.max(0.0);
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let ie_eff = ie + (95.0 - ie) * ppl / (ppl + bpl);
    let r = 93.2 - id - ie_eff;
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        (1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6).clamp(1.0, 4.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 100 packets at 20 ms; packets 10, 11 and 50 missing: 3 of 100 lost.
    #[test]
    fn loss_from_sequence_gaps_across_wrap() {
        let mut s = RecvStats::default();
        let start = 65500u16; // wraps after 36 packets
        for i in 0..100u16 {
            if [10, 11, 50].contains(&i) {
                continue;
            }
            let seq = start.wrapping_add(i);
            s.update(7, seq, u32::from(i) * 160, i64::from(i) * 160, true);
        }
        assert_eq!(s.expected(), 100);
        assert_eq!(s.received(), 97);
        assert_eq!(s.lost(), 3);
        assert_eq!(
            s.extended_max(),
            (1 << 16) + u32::from(start.wrapping_add(99))
        );
        assert_eq!(s.take_fraction_lost(), (3 * 256 / 100) as u8);
        // No new loss in the next interval.
        s.update(7, start.wrapping_add(100), 16000, 16000, true);
        assert_eq!(s.take_fraction_lost(), 0);
    }

    /// Arrival alternates 10 ms early and late around a perfect 20 ms clock: |D| is
    /// 160 timestamp units on every packet after the first, so J converges to 160
    /// (J_n = 160 (1 - (15/16)^(n-1))).
    #[test]
    fn jitter_converges_per_rfc3550() {
        let mut s = RecvStats::default();
        for i in 0..400i64 {
            let ts = i * 160;
            let arrival = ts + if i % 2 == 0 { 80 } else { -80 };
            s.update(1, i as u16, ts as u32, arrival, true);
        }
        assert!(
            (s.jitter_ts() as i64 - 160).abs() <= 1,
            "jitter {}",
            s.jitter_ts()
        );
        // After 5 packets, the exact recurrence value (integer arithmetic, +-1).
        let mut s = RecvStats::default();
        for i in 0..5i64 {
            let ts = i * 160;
            let arrival = ts + if i % 2 == 0 { 80 } else { -80 };
            s.update(1, i as u16, ts as u32, arrival, true);
        }
        let expect = 160.0 * (1.0 - (15.0f64 / 16.0).powi(4));
        assert!(
            (f64::from(s.jitter_ts()) - expect).abs() <= 1.0,
            "{} vs {expect}",
            s.jitter_ts()
        );
    }

    #[test]
    fn perfect_stream_has_no_jitter_and_no_loss() {
        let mut s = RecvStats::default();
        for i in 0..50u16 {
            s.update(1, i, u32::from(i) * 160, 1000 + i64::from(i) * 160, true);
        }
        assert_eq!((s.lost(), s.jitter_ts()), (0, 0));
    }

    /// A new SSRC starts its own sequence space; earlier counts are kept.
    #[test]
    fn ssrc_change_keeps_totals() {
        let mut s = RecvStats::default();
        for i in 0..10u16 {
            s.update(1, 100 + i, 0, 0, false);
        }
        for i in [0u16, 1, 3] {
            s.update(2, 40000 + i, 0, 0, false);
        }
        assert_eq!((s.expected(), s.received(), s.lost()), (14, 13, 1));
    }

    #[test]
    fn mos_reference_points_and_monotone_in_loss() {
        // No impairment: R = 93.2 -> MOS 4.41.
        assert!((mos(Codec::Pcma, 0.0, 0.0) - 4.41).abs() < 0.01);
        // 150 ms one-way: Id = 3.6, R = 89.6.
        assert!((mos(Codec::Pcmu, 0.0, 150.0) - 4.33).abs() < 0.01);
        let mut prev = f64::INFINITY;
        for tenth in 0..=300 {
            let m = mos(Codec::Pcma, f64::from(tenth) / 10.0, 40.0);
            assert!(m < prev, "MOS must fall with loss: {m} at {tenth}");
            assert!((1.0..=4.5).contains(&m));
            prev = m;
        }
        // 5 % loss: Ie_eff = 95 * 5 / 30.1 = 15.8, R = 77.4.
        assert!((mos(Codec::Pcma, 5.0, 0.0) - 3.92).abs() < 0.01);
        // Delay hurts too, and more past 177 ms.
        assert!(mos(Codec::G722, 1.0, 300.0) < mos(Codec::G722, 1.0, 100.0));
    }
}
