//! Trunk accounts for the trunk tests: `pbxctl trunk add` as an installer runs it, the
//! password on stdin so it never shows in a process list.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::{pbxctl_bin, require_tool};

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

/// A test CA (`ca.crt`, `ca.key`) and a server certificate (`server.crt`, `server.key`)
/// for `ip` and the name `provider.test`, made with openssl in `dir`.
pub fn make_certs(dir: &Path, ip: &str) {
    let openssl = require_tool("openssl", "openssl");
    let run = |args: &[&str]| {
        let out = Command::new(&openssl)
            .current_dir(dir)
            .args(args)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=Trunk Test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=provider.test",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        format!("subjectAltName=IP:{ip},DNS:provider.test\n"),
    )
    .expect("write san.ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}
