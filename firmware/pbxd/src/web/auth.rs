//! Password hashing (argon2id) and secret comparison.
//!
//! Parameters: the OWASP Password Storage Cheat Sheet's first argon2id choice, m = 19 MiB,
//! t = 2, p = 1: about 30-60 ms per hash on a small ARM board, so hashing runs on a
//! blocking thread and at most [`HASH_SLOTS`] at once (memory: 19 MiB each).
//! Hashes are PHC strings: parameters travel with each hash, so raising them later only
//! needs a re-hash at the next login.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use subtle::ConstantTimeEq;

/// Memory cost in KiB (19 MiB).
pub const ARGON2_M_KIB: u32 = 19 * 1024;
/// Iterations.
pub const ARGON2_T: u32 = 2;
/// Lanes.
pub const ARGON2_P: u32 = 1;
/// Concurrent hash computations at most.
pub const HASH_SLOTS: usize = 2;

/// Why hashing failed (never because of the password's content).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

fn argon2() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .map_err(|e| HashError(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password with a fresh random 128-bit salt; returns the PHC string.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| HashError(e.to_string()))?;
    let hash = argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| HashError(e.to_string()))?;
    Ok(hash.to_string())
}

/// True if `password` matches the PHC string. A malformed stored hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(a) = argon2() else {
        return false;
    };
    // The parameters come from the PHC string itself.
    a.verify_password(password.as_bytes(), &parsed).is_ok()
}

/// A random 256-bit secret as 64 hex digits (URL-safe).
pub fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Compares two secrets without an early exit on the first differing byte.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify_with_the_documented_parameters() {
        let h = hash_password("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterz", &h));
        assert!(!verify_password("x", "not a phc string"));
        let h2 = hash_password("correct horse battery").expect("hash");
        assert_ne!(h, h2, "salted");
    }

    #[test]
    fn secrets_compare() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
        assert_eq!(random_token().len(), 64);
        assert_ne!(random_token(), random_token());
    }
}
