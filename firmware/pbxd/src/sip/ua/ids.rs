//! Identifiers the B2BUA makes up: tags, branches, Call-IDs and call numbers.
//!
//! Seeded with random bits by the shell, so the core needs no RNG of its own; the
//! values must be unique and hard to guess (a guessable tag or Call-ID lets an
//! outsider inject BYEs), which a splitmix64 stream over a 64-bit random seed gives.

/// The source of identifiers.
#[derive(Debug, Clone)]
pub struct Ids {
    state: u64,
    salt: u64,
}

impl Ids {
    /// A source seeded with random bits.
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed,
            salt: seed.rotate_left(29) ^ 0xA5A5_5A5A_C3C3_3C3C,
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state ^ self.salt;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Random bits (glare delays).
    pub fn random(&mut self) -> u64 {
        self.next()
    }

    /// A dialog tag.
    pub fn tag(&mut self) -> String {
        format!("{:016x}", self.next())
    }

    /// An RFC 3261 branch (with the magic cookie).
    pub fn branch(&mut self) -> String {
        format!("z9hG4bK{:016x}", self.next())
    }

    /// A Call-ID for a leg we start.
    pub fn call_id(&mut self) -> String {
        format!("{:016x}{:08x}@pbxd", self.next(), self.next() as u32)
    }

    /// An SDP session id (RFC 8866 sec. 5.2: a number; kept below 2^62 to be safe in
    /// peers that parse it as signed).
    pub fn sdp_session(&mut self) -> u64 {
        self.next() >> 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_distinct() {
        let mut ids = Ids::new(7);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(ids.tag()));
        }
        assert!(ids.branch().starts_with("z9hG4bK"));
        assert_ne!(Ids::new(1).tag(), Ids::new(2).tag());
    }
}
