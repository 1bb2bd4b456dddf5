//! SRTP and SRTCP (RFC 3711) for SDES-keyed legs (RFC 4568), sans-IO.
//!
//! The two crypto suites every SDES phone and provider speaks: `AES_CM_128_HMAC_SHA1_80`
//! and `AES_CM_128_HMAC_SHA1_32` (AES-128 counter mode, HMAC-SHA1 tag of 80 or 32 bits on
//! SRTP; SRTCP always carries 80 bits, RFC 4568 sec. 6.2). Key derivation rate 0, no MKI.
//!
//! One [`SrtpContext`] per direction and master key: a relay leg has one for what it
//! receives (the peer's key from its `a=crypto`) and one for what it sends (our key).
//! Packets are changed in place in a `Vec`: protect appends the tag (and for SRTCP the
//! E-flag and index), unprotect checks the tag and the replay window, decrypts and cuts
//! them off again. A packet that fails is left for the caller to drop; it never changes
//! the context's state.
//!
//! ```
//! use pbxd::media::srtp::{MasterKey, SrtpContext, Suite};
//! let key = MasterKey::from_bytes(&[7; 30]).unwrap();
//! let (mut tx, mut rx) = (SrtpContext::new(Suite::AesCm128HmacSha1_80, &key),
//!                         SrtpContext::new(Suite::AesCm128HmacSha1_80, &key));
//! let plain = vec![0x80, 8, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4, 0xd5, 0xd5];
//! let mut pkt = plain.clone();
//! tx.protect_rtp(&mut pkt).unwrap();
//! assert_eq!(pkt.len(), plain.len() + 10);
//! rx.unprotect_rtp(&mut pkt).unwrap();
//! assert_eq!(pkt, plain);
//! ```

use std::fmt;

use aes::cipher::{BlockEncrypt, InnerIvInit, KeyInit, StreamCipher};
use aes::Aes128;
use hmac::{Hmac, Mac};
use sha1::Sha1;

type AesCtr = ctr::Ctr128BE<Aes128>;
type HmacSha1 = Hmac<Sha1>;

/// Master key length of the AES-128 suites (bytes).
pub const MASTER_KEY_LEN: usize = 16;
/// Master salt length (bytes).
pub const MASTER_SALT_LEN: usize = 14;
/// Key and salt together, as `inline:` carries them (RFC 4568 sec. 6.1).
pub const KEY_SALT_LEN: usize = MASTER_KEY_LEN + MASTER_SALT_LEN;
/// Tag length of SRTCP for both suites.
const RTCP_TAG_LEN: usize = 10;
/// The SRTCP trailer before the tag: E flag and 31-bit index.
const RTCP_INDEX_LEN: usize = 4;
/// Replay window (RFC 3711 sec. 3.3.2 asks for at least 64).
const REPLAY_WINDOW: u64 = 64;
/// SSRCs remembered per context (a leg has one or two; a few more for re-starts).
const MAX_STREAMS: usize = 8;

/// A crypto suite of RFC 4568 sec. 6.2 that pbxd implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// `AES_CM_128_HMAC_SHA1_80`: the default, mandatory to implement.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`: 32-bit SRTP tag (SRTCP keeps 80 bits).
    AesCm128HmacSha1_32,
}

impl Suite {
    /// Every suite, in our order of preference.
    pub const ALL: [Suite; 2] = [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32];

    /// The name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The suite of an `a=crypto` name (case-sensitive, as RFC 4568's grammar is).
    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Bytes of authentication tag on each SRTP packet.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A master key and salt (30 bytes). Its `Debug` never shows the bytes: keys are not
/// logged.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey([u8; KEY_SALT_LEN]);

impl MasterKey {
    /// Key and salt from `inline:` bytes; anything but 30 bytes is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey, SrtpError> {
        <[u8; KEY_SALT_LEN]>::try_from(bytes)
            .map(MasterKey)
            .map_err(|_| SrtpError::KeyLength(bytes.len()))
    }

    /// A fresh key from the operating system's CSPRNG (rand's thread generator, itself a
    /// CSPRNG seeded from the OS, if the OS source fails).
    pub fn random() -> MasterKey {
        use rand::{RngCore as _, TryRngCore as _};
        let mut k = [0u8; KEY_SALT_LEN];
        if rand::rngs::OsRng.try_fill_bytes(&mut k).is_err() {
            rand::rng().fill_bytes(&mut k);
        }
        MasterKey(k)
    }

    /// Key then salt, as written after `inline:`.
    pub fn as_bytes(&self) -> &[u8; KEY_SALT_LEN] {
        &self.0
    }

    fn key(&self) -> &[u8] {
        &self.0[..MASTER_KEY_LEN]
    }

    fn salt(&self) -> &[u8] {
        &self.0[MASTER_KEY_LEN..]
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Why a packet was not protected or unprotected (it is dropped and counted), or a key
/// refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    /// A master key and salt of the wrong length.
    #[error("SRTP master key and salt must be {KEY_SALT_LEN} bytes, not {0}")]
    KeyLength(usize),
    /// Shorter than its header (with CSRCs and extension) and tag.
    #[error("SRTP packet too short")]
    TooShort,
    /// Not RTP version 2.
    #[error("not an RTP/RTCP version 2 packet")]
    BadVersion,
    /// The authentication tag does not match: tampered, or another key.
    #[error("SRTP authentication failed")]
    AuthFailed,
    /// The packet index was seen already or is older than the replay window.
    #[error("SRTP replayed packet")]
    Replayed,
    /// The SRTCP index is exhausted (2^31 packets): the key must be changed.
    #[error("SRTCP index exhausted")]
    IndexExhausted,
}

/// Session keys of one of SRTP or SRTCP (RFC 3711 sec. 4.3, key derivation rate 0).
#[derive(Clone)]
struct SessionKeys {
    cipher: Aes128,
    salt: [u8; MASTER_SALT_LEN],
    /// Keyed once; cloned per packet (the clone keeps the inner/outer pad state).
    auth: HmacSha1,
}

impl SessionKeys {
    /// Labels 0/1/2 for SRTP, 3/4/5 for SRTCP.
    fn derive(master: &MasterKey, first_label: u8) -> SessionKeys {
        let prf = Aes128::new(master.key().into());
        let mut enc = [0u8; MASTER_KEY_LEN];
        let mut auth = [0u8; 20];
        let mut salt = [0u8; MASTER_SALT_LEN];
        kdf(&prf, master.salt(), first_label, &mut enc);
        kdf(&prf, master.salt(), first_label + 1, &mut auth);
        kdf(&prf, master.salt(), first_label + 2, &mut salt);
        // HMAC pads a key shorter than the 64-byte block with zeros (RFC 2104 sec. 2):
        // padding it here gives the same MAC without a fallible constructor.
        let mut block = [0u8; 64];
        block[..auth.len()].copy_from_slice(&auth);
        let auth = <HmacSha1 as KeyInit>::new((&block).into());
        SessionKeys {
            cipher: Aes128::new((&enc).into()),
            salt,
            auth,
        }
    }

    /// XORs AES-CM keystream for (SSRC, index) into `data` (RFC 3711 sec. 4.1.1).
    fn crypt(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..MASTER_SALT_LEN].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        let core = ctr::CtrCore::inner_iv_init(self.cipher.clone(), (&iv).into());
        let mut ctr = AesCtr::from_core(core);
        ctr.apply_keystream(data);
    }

    /// The full 20-byte HMAC-SHA1 over `parts`.
    fn mac(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut m = self.auth.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
}

/// AES-CM PRF of RFC 3711 sec. 4.3.3: IV = (salt XOR label << 48) * 2^16, keystream out.
fn kdf(prf: &Aes128, salt: &[u8], label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..MASTER_SALT_LEN].copy_from_slice(salt);
    iv[7] ^= label;
    for (i, chunk) in out.chunks_mut(16).enumerate() {
        let mut block = iv;
        // At most two blocks per key: the counter stays in the last byte.
        block[15] = i as u8;
        let mut b = block.into();
        prf.encrypt_block(&mut b);
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// Constant-time comparison of a received tag.
fn tag_ok(computed: &[u8], received: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    computed.len() == received.len() && bool::from(computed.ct_eq(received))
}

/// A sliding replay window over 48-bit (SRTP) or 31-bit (SRTCP) indices.
#[derive(Debug, Clone, Copy, Default)]
struct Replay {
    /// Highest index accepted so far.
    max: u64,
    /// Bit k set: index `max - k` was accepted.
    mask: u64,
}

impl Replay {
    fn check(&self, index: u64) -> Result<(), SrtpError> {
        if index > self.max {
            return Ok(());
        }
        let age = self.max - index;
        if age >= REPLAY_WINDOW || self.mask & (1 << age) != 0 {
            return Err(SrtpError::Replayed);
        }
        Ok(())
    }

    fn accept(&mut self, index: u64) {
        if index > self.max {
            let shift = index - self.max;
            self.mask = if shift >= REPLAY_WINDOW {
                0
            } else {
                self.mask << shift
            };
            self.mask |= 1;
            self.max = index;
        } else {
            self.mask |= 1 << (self.max - index);
        }
    }
}

/// What is remembered per SSRC of an SRTP stream.
#[derive(Debug, Clone, Copy)]
struct RtpStream {
    ssrc: u32,
    /// Rollover counter and highest sequence number (RFC 3711 sec. 3.3.1).
    roc: u32,
    s_l: u16,
    replay: Replay,
}

impl RtpStream {
    /// The index of `seq` (RFC 3711 appendix A) and the ROC it implies.
    /// `None` for a packet from before the stream's first rollover period (an old
    /// packet reordered across the start), which cannot be placed.
    fn estimate(&self, seq: u16) -> Option<(u32, u64)> {
        let v = if self.s_l < 0x8000 {
            if seq > self.s_l && seq - self.s_l > 0x8000 {
                self.roc.checked_sub(1)?
            } else {
                self.roc
            }
        } else if self.s_l - 0x8000 > seq {
            // The ROC is 32 bits: 2^48 packets cannot happen on one key.
            self.roc.wrapping_add(1)
        } else {
            self.roc
        };
        Some((v, (u64::from(v) << 16) | u64::from(seq)))
    }

    fn update(&mut self, roc: u32, seq: u16, index: u64) {
        if index > self.replay.max {
            self.roc = roc;
            self.s_l = seq;
        }
        self.replay.accept(index);
    }
}

/// What is remembered per SSRC of an SRTCP stream: our next index (sending) or the
/// replay window (receiving).
#[derive(Debug, Clone, Copy)]
struct RtcpStream {
    ssrc: u32,
    next_index: u32,
    replay: Replay,
}

/// Finds the state of `ssrc`, making one (and forgetting the oldest beyond
/// [`MAX_STREAMS`]) with `new` if there is none.
fn stream<T: Copy>(
    list: &mut Vec<T>,
    ssrc: u32,
    key: impl Fn(&T) -> u32,
    new: impl FnOnce() -> T,
) -> usize {
    if let Some(i) = list.iter().position(|s| key(s) == ssrc) {
        return i;
    }
    if list.len() == MAX_STREAMS {
        list.remove(0);
    }
    list.push(new());
    list.len() - 1
}

/// Length of an RTP header with its CSRCs and extension, if the packet holds it.
fn rtp_header_len(pkt: &[u8]) -> Result<usize, SrtpError> {
    if pkt.len() < 12 {
        return Err(SrtpError::TooShort);
    }
    if pkt[0] >> 6 != 2 {
        return Err(SrtpError::BadVersion);
    }
    let mut len = 12 + 4 * usize::from(pkt[0] & 0x0f);
    if pkt[0] & 0x10 != 0 {
        let ext = pkt.get(len + 2..len + 4).ok_or(SrtpError::TooShort)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    if len > pkt.len() {
        return Err(SrtpError::TooShort);
    }
    Ok(len)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// SRTP and SRTCP state for one master key in one direction. `Debug` shows no keys.
#[derive(Clone)]
pub struct SrtpContext {
    suite: Suite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    rtp_streams: Vec<RtpStream>,
    rtcp_streams: Vec<RtcpStream>,
}

impl fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpContext")
            .field("suite", &self.suite)
            .field("streams", &self.rtp_streams.len())
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    /// Derives the session keys of `master` for `suite`.
    pub fn new(suite: Suite, master: &MasterKey) -> SrtpContext {
        SrtpContext {
            suite,
            rtp: SessionKeys::derive(master, 0),
            rtcp: SessionKeys::derive(master, 3),
            rtp_streams: Vec::new(),
            rtcp_streams: Vec::new(),
        }
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Encrypts an RTP packet in place and appends its tag.
    pub fn protect_rtp(&mut self, pkt: &mut Vec<u8>) -> Result<(), SrtpError> {
        let hdr = rtp_header_len(pkt)?;
        let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
        let ssrc = be32(&pkt[8..12]);
        let i = stream(
            &mut self.rtp_streams,
            ssrc,
            |s| s.ssrc,
            || RtpStream {
                ssrc,
                roc: 0,
                s_l: seq,
                replay: Replay::default(),
            },
        );
        let st = &mut self.rtp_streams[i];
        // A sender going back before its first packet stays in ROC 0 (as libsrtp and
        // webrtc-rs do); the relay's own numbering never does.
        let (roc, index) = st
            .estimate(seq)
            .unwrap_or((st.roc, (u64::from(st.roc) << 16) | u64::from(seq)));
        st.update(roc, seq, index);
        self.rtp.crypt(ssrc, index, &mut pkt[hdr..]);
        let tag = self.rtp.mac(&[pkt, &roc.to_be_bytes()]);
        pkt.extend_from_slice(&tag[..self.suite.rtp_tag_len()]);
        Ok(())
    }

    /// Checks an SRTP packet's tag and replay window, decrypts it in place and removes
    /// the tag. On error `pkt` and the context are unchanged.
    pub fn unprotect_rtp(&mut self, pkt: &mut Vec<u8>) -> Result<(), SrtpError> {
        let tag_len = self.suite.rtp_tag_len();
        let Some(body_len) = pkt.len().checked_sub(tag_len) else {
            return Err(SrtpError::TooShort);
        };
        let hdr = rtp_header_len(&pkt[..body_len])?;
        let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
        let ssrc = be32(&pkt[8..12]);
        // A new SSRC starts at its first packet's sequence number (sec. 3.3.1); it is
        // only remembered once the packet authenticates.
        let st = self
            .rtp_streams
            .iter()
            .find(|s| s.ssrc == ssrc)
            .copied()
            .unwrap_or(RtpStream {
                ssrc,
                roc: 0,
                s_l: seq,
                replay: Replay::default(),
            });
        let (roc, index) = st.estimate(seq).ok_or(SrtpError::Replayed)?;
        let fresh = !self.rtp_streams.iter().any(|s| s.ssrc == ssrc);
        if !fresh {
            st.replay.check(index)?;
        }
        let (body, tag) = pkt.split_at(body_len);
        let computed = self.rtp.mac(&[body, &roc.to_be_bytes()]);
        if !tag_ok(&computed[..tag_len], tag) {
            return Err(SrtpError::AuthFailed);
        }
        pkt.truncate(body_len);
        self.rtp.crypt(ssrc, index, &mut pkt[hdr..]);
        let i = stream(&mut self.rtp_streams, ssrc, |s| s.ssrc, || st);
        self.rtp_streams[i].update(roc, seq, index);
        Ok(())
    }

    /// Encrypts an RTCP compound packet in place and appends E flag, index and tag.
    pub fn protect_rtcp(&mut self, pkt: &mut Vec<u8>) -> Result<(), SrtpError> {
        if pkt.len() < 8 {
            return Err(SrtpError::TooShort);
        }
        if pkt[0] >> 6 != 2 {
            return Err(SrtpError::BadVersion);
        }
        let ssrc = be32(&pkt[4..8]);
        let i = stream(
            &mut self.rtcp_streams,
            ssrc,
            |s| s.ssrc,
            // Index 0 is valid, but libsrtp and webrtc-rs start at 1; so do we.
            || RtcpStream {
                ssrc,
                next_index: 1,
                replay: Replay::default(),
            },
        );
        let st = &mut self.rtcp_streams[i];
        let index = st.next_index;
        if index >= 0x8000_0000 {
            return Err(SrtpError::IndexExhausted);
        }
        st.next_index += 1;
        self.rtcp.crypt(ssrc, u64::from(index), &mut pkt[8..]);
        pkt.extend_from_slice(&(index | 0x8000_0000).to_be_bytes());
        let tag = self.rtcp.mac(&[pkt]);
        pkt.extend_from_slice(&tag[..RTCP_TAG_LEN]);
        Ok(())
    }

    /// Checks an SRTCP packet's tag and replay window, decrypts it in place (if its E
    /// flag says it is encrypted) and removes index and tag. On error `pkt` and the
    /// context are unchanged.
    pub fn unprotect_rtcp(&mut self, pkt: &mut Vec<u8>) -> Result<(), SrtpError> {
        if pkt.len() < 8 + RTCP_INDEX_LEN + RTCP_TAG_LEN {
            return Err(SrtpError::TooShort);
        }
        if pkt[0] >> 6 != 2 {
            return Err(SrtpError::BadVersion);
        }
        let auth_len = pkt.len() - RTCP_TAG_LEN;
        let body_len = auth_len - RTCP_INDEX_LEN;
        let ssrc = be32(&pkt[4..8]);
        let e_index = be32(&pkt[body_len..auth_len]);
        let (encrypted, index) = (e_index & 0x8000_0000 != 0, e_index & 0x7fff_ffff);
        let known = self.rtcp_streams.iter().find(|s| s.ssrc == ssrc).copied();
        if let Some(st) = known {
            st.replay.check(u64::from(index))?;
        }
        let (authed, tag) = pkt.split_at(auth_len);
        let computed = self.rtcp.mac(&[authed]);
        if !tag_ok(&computed[..RTCP_TAG_LEN], tag) {
            return Err(SrtpError::AuthFailed);
        }
        pkt.truncate(body_len);
        if encrypted {
            self.rtcp.crypt(ssrc, u64::from(index), &mut pkt[8..]);
        }
        let i = stream(
            &mut self.rtcp_streams,
            ssrc,
            |s| s.ssrc,
            || RtcpStream {
                ssrc,
                next_index: 0,
                replay: Replay {
                    max: u64::from(index),
                    mask: 0,
                },
            },
        );
        self.rtcp_streams[i].replay.accept(u64::from(index));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
