//! The first-boot set-up token: while no web account exists, a random one-time token is
//! written to the log and to `DATA/setup-token` (mode 0600). Whoever can read either
//! (console or device access) creates the first administrator with it; it dies then.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tracing::warn;

use super::auth::random_token;

/// The token file's name inside the data directory.
pub const SETUP_TOKEN_FILE: &str = "setup-token";

/// A live set-up token.
#[derive(Debug)]
pub struct SetupToken {
    /// 64 hex digits (256 bits).
    pub token: String,
    path: PathBuf,
}

impl SetupToken {
    /// Creates a fresh token, replacing any old file, and logs where it is.
    pub fn create(data_dir: &Path) -> std::io::Result<SetupToken> {
        let path = data_dir.join(SETUP_TOKEN_FILE);
        // A new file each start: never reuse an old token, nor a file someone else made.
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let token = random_token();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(format!("{token}\n").as_bytes())?;
        f.sync_all()?;
        warn!(
            "no web account exists yet: open https://<this box>/ and create the first \
             administrator with the one-time set-up token {token} (also in {})",
            path.display()
        );
        Ok(SetupToken { token, path })
    }

    /// Removes a token file left from before (an account exists now).
    pub fn remove_stale(data_dir: &Path) {
        let _ = std::fs::remove_file(data_dir.join(SETUP_TOKEN_FILE));
    }

    /// The token is used: remove its file.
    pub fn consume(self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            warn!("cannot remove {}: {e}", self.path.display());
        }
    }
}
