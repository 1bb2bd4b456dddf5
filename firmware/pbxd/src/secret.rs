//! Secrets at rest (trunk passwords, the SIM PIN): sealed with a device key.
//!
//! The key is 32 random bytes in `DATA/device.key` (mode 0600), made at first start. The
//! database alone (a backup, a copied file) then does not give the secrets away; the board
//! can later take the key from a secure element instead of the data partition.
//! AES-256-GCM from `ring` (already in the tree through rustls); the purpose ("trunk:NAME",
//! "sim-pin") is the associated data, so a sealed value cannot be moved to another field.

use std::path::{Path, PathBuf};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// Prefix of sealed values: format version 1.
const PREFIX: &str = "v1:";
const KEY_LEN: usize = 32;

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key file could not be read or written.
    #[error("device key {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file has the wrong size.
    #[error("device key {0} is damaged (expected {KEY_LEN} bytes)")]
    BadKey(PathBuf),
    /// The system's random source failed.
    #[error("no randomness available")]
    Random,
    /// The sealed value is damaged, or sealed with another key or for another purpose.
    #[error("the stored secret cannot be opened (damaged, or from another device)")]
    Open,
}

/// The device's key for secrets at rest.
pub struct DeviceKey {
    key: LessSafeKey,
    /// HMAC-SHA256 keyed with the device key: the root of [`DeviceKey::mac_key`].
    mac_root: ring::hmac::Key,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(<redacted>)")
    }
}

impl DeviceKey {
    /// Reads `DATA/device.key`, making it at first use.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, SecretError> {
        let path = data_dir.join("device.key");
        let io = |source| SecretError::Io {
            path: path.clone(),
            source,
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut fresh = [0u8; KEY_LEN];
                SystemRandom::new()
                    .fill(&mut fresh)
                    .map_err(|_| SecretError::Random)?;
                match write_new_private(&path, &fresh) {
                    Ok(()) => fresh.to_vec(),
                    // Another process made it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::fs::read(&path).map_err(io)?
                    }
                    Err(e) => return Err(io(e)),
                }
            }
            Err(e) => return Err(io(e)),
        };
        Self::from_bytes(&bytes).ok_or(SecretError::BadKey(path))
    }

    /// A key from raw bytes (tests; a secure element later).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).ok()?;
        Some(Self {
            key: LessSafeKey::new(key),
            mac_root: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes),
        })
    }

    /// Seals `plain` for `purpose`: `v1:` + hex(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, purpose: &str, plain: &str) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretError::Random)?;
        let mut data = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut data,
            )
            .map_err(|_| SecretError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + data.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&data);
        Ok(format!("{PREFIX}{}", hex::encode(out)))
    }

    /// An HMAC-SHA256 key derived for `purpose` (HMAC(device key, purpose)), e.g. to mark
    /// backups made on this box. Different purposes give unrelated keys, and the device
    /// key itself never leaves this type.
    pub fn mac_key(&self, purpose: &str) -> ring::hmac::Key {
        let derived = ring::hmac::sign(&self.mac_root, purpose.as_bytes());
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref())
    }

    /// Opens a value sealed by [`DeviceKey::seal`] for the same `purpose`.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<String, SecretError> {
        let raw = sealed
            .strip_prefix(PREFIX)
            .and_then(|h| hex::decode(h).ok())
            .ok_or(SecretError::Open)?;
        if raw.len() < NONCE_LEN {
            return Err(SecretError::Open);
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Open)?;
        let mut data = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut data)
            .map_err(|_| SecretError::Open)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Open)
    }
}

/// Whether a stored text has the shape of a value from [`DeviceKey::seal`] (a backup
/// restored on another box drops these: they only open with this box's key).
pub fn looks_sealed(value: &str) -> bool {
    value.strip_prefix(PREFIX).is_some_and(|h| {
        h.len() >= 2 * (NONCE_LEN + 16)
            && h.len() % 2 == 0
            && h.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Writes a new file readable only by its owner, failing if it exists (keys must never be
/// world-readable, nor overwrite one another).
pub(crate) fn write_new_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_the_same_key_and_purpose_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = DeviceKey::load_or_create(dir.path()).expect("key");
        let sealed = key.seal("trunk:main", "pa55word").expect("seal");
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("pa55word"));
        assert_eq!(key.open("trunk:main", &sealed).expect("open"), "pa55word");
        assert!(matches!(
            key.open("sim-pin", &sealed),
            Err(SecretError::Open)
        ));
        // The same file gives the same key after a restart; another device's does not.
        let again = DeviceKey::load_or_create(dir.path()).expect("key");
        assert_eq!(again.open("trunk:main", &sealed).expect("open"), "pa55word");
        let other = DeviceKey::from_bytes(&[7u8; 32]).expect("key");
        assert!(other.open("trunk:main", &sealed).is_err());
    }

    #[test]
    fn damaged_values_and_keys_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = DeviceKey::load_or_create(dir.path()).expect("key");
        let sealed = key.seal("p", "x").expect("seal");
        let mut flipped = sealed.clone();
        let last = if flipped.ends_with('0') { "1" } else { "0" };
        flipped.replace_range(flipped.len() - 1.., last);
        for bad in ["", "v1:", "v1:zz", "plain", &flipped] {
            assert!(key.open("p", bad).is_err(), "{bad:?}");
        }
        std::fs::write(dir.path().join("device.key"), b"short").expect("write");
        assert!(matches!(
            DeviceKey::load_or_create(dir.path()),
            Err(SecretError::BadKey(_))
        ));
    }

    #[test]
    fn the_key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        DeviceKey::load_or_create(dir.path()).expect("key");
        let mode = std::fs::metadata(dir.path().join("device.key"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
