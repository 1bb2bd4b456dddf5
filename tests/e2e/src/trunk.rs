//! Trunk accounts for the trunk tests: `pbxctl trunk add` as an installer runs it, the
//! password on stdin so it never shows in a process list.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::pbxctl_bin;

/// One `pbxctl trunk add NAME` invocation; options the tests do not set keep pbxctl's
/// defaults.
#[derive(Debug, Clone)]
pub struct TrunkAdd<'a> {
    /// The trunk's name.
    pub name: &'a str,
    /// `--registrar` (host, host:port or ip:port).
    pub registrar: String,
    /// `--domain`.
    pub domain: &'a str,
    /// `--user` (the SIP-ID).
    pub user: &'a str,
    /// The password, written to `--password-stdin`.
    pub password: &'a str,
    /// `--interval` in seconds, if set.
    pub interval: Option<u32>,
    /// Any further options, e.g. `["--transport", "tls"]`.
    pub extra: Vec<String>,
}

impl TrunkAdd<'_> {
    /// Runs pbxctl on `data_dir`; panics with pbxctl's stderr if it refuses.
    pub fn run(&self, data_dir: &Path) {
        let mut cmd = Command::new(pbxctl_bin());
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(["trunk", "add", self.name, "--registrar"])
            .arg(&self.registrar)
            .args(["--domain", self.domain, "--user", self.user]);
        if let Some(secs) = self.interval {
            cmd.arg("--interval").arg(secs.to_string());
        }
        let mut child = cmd
            .arg("--password-stdin")
            .args(&self.extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run pbxctl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{}\n", self.password).as_bytes())
            .expect("write the password");
        let out = child.wait_with_output().expect("pbxctl");
        assert!(
            out.status.success(),
            "pbxctl trunk add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
