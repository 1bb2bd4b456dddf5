//! Helpers for the end-to-end tests: the real `pbxd` and `pbxctl` binaries driven by real SIP
//! peers (sipp, baresip, SIPVicious) over loopback.
//!
//! Every test owns one [`Pbx`]: a temporary data directory, extensions added with `pbxctl`
//! before start, and a `pbxd` listening on a free loopback port, killed when dropped. Peers
//! are external programs; a missing one fails the test with the Debian package to install
//! (`scripts/test.sh` installs them all).
//!
//! Binaries: `PBXD_BIN` / `PBXCTL_BIN` if set, else `$CARGO_TARGET_DIR/debug/<name>` if it
//! exists, else `<workspace>/target/debug/<name>`. Build them first
//! (`cargo build -p pbxd --bins`); these tests do not rebuild them.

#![warn(missing_docs)]

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long `pbxd` may take from spawn to its "ready:" line.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The harness measures real elapsed time (timeouts, time-to-ready); this is the one place
/// that reads the clock.
#[allow(clippy::disallowed_methods)]
pub fn now() -> Instant {
    Instant::now()
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    dir.canonicalize().unwrap_or(dir)
}

/// Directory holding the sipp scenarios (`tests/sipp`).
pub fn sipp_dir() -> PathBuf {
    workspace_root().join("tests/sipp")
}

fn workspace_bin(env_var: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return PathBuf::from(path);
    }
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("debug").join(name));
    }
    candidates.push(workspace_root().join("target/debug").join(name));
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!(
        "`{name}` binary not found (looked at {candidates:?}); build it with \
         `cargo build -p pbxd --bins` or point {env_var} at it"
    );
}

/// Path of the `pbxd` binary under test.
pub fn pbxd_bin() -> PathBuf {
    workspace_bin("PBXD_BIN", "pbxd")
}

/// Path of the `pbxctl` binary under test.
pub fn pbxctl_bin() -> PathBuf {
    workspace_bin("PBXCTL_BIN", "pbxctl")
}

/// Finds an external program on `PATH` (and the sbin directories, where Debian puts some
/// servers). Panics, naming the Debian package, when it is missing: a missing peer is a
/// failed test, not a skipped one.
pub fn require_tool(name: &str, debian_package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` is not installed: `apt-get install {debian_package}` \
         (scripts/test.sh installs every test peer)"
    );
}

/// Ports handed out in this process, so parallel tests never get the same one.
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A loopback port that is free for both UDP and TCP right now (bound, then released).
/// Another process can still take it before we use it; [`PbxBuilder::start`] retries.
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let Ok(udp) = UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = udp.local_addr() else { continue };
        let port = addr.port();
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let mut taken = handed_out().lock().unwrap_or_else(|e| e.into_inner());
        if taken.insert(port) {
            return port;
        }
    }
    panic!("no free loopback port for UDP and TCP after 200 tries");
}

/// Removes ANSI colour sequences (tracing colours its output even into a pipe).
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// A child process killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends a signal by name (`TERM`, `INT`) with `kill(1)`: the workspace forbids `unsafe`,
/// so no direct `libc::kill`.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
    match status {
        Ok(s) if s.success() => {}
        other => panic!("kill -{signal} {pid} failed: {other:?}"),
    }
}

/// Lines a child printed on stdout and stderr, interleaved as they arrived.
#[derive(Clone, Debug, Default)]
pub struct LogCapture(Arc<Mutex<Vec<String>>>);

impl LogCapture {
    /// Starts threads copying `child`'s stdout and stderr into the capture; every line is
    /// also sent on the returned channel.
    pub fn attach(child: &mut Child) -> (Self, mpsc::Receiver<String>) {
        let capture = Self::default();
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            capture.pump(out, tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            capture.pump(err, tx);
        }
        (capture, rx)
    }

    fn pump(&self, stream: impl Read + Send + 'static, tx: mpsc::Sender<String>) {
        let lines = Arc::clone(&self.0);
        thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = strip_ansi(String::from_utf8_lossy(&buf).trim_end());
                        lines
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(line.clone());
                        let _ = tx.send(line);
                    }
                }
            }
        });
    }

    /// Everything captured so far, one line each.
    pub fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
    }
}

/// Configures and starts a [`Pbx`].
#[derive(Debug, Default)]
pub struct PbxBuilder {
    extensions: Vec<(String, String)>,
    args: Vec<String>,
}

impl PbxBuilder {
    /// Adds an extension with `pbxctl extension add` before `pbxd` starts.
    pub fn extension(mut self, number: &str, password: &str) -> Self {
        self.extensions.push((number.into(), password.into()));
        self
    }

    /// An extra command-line argument for `pbxd`.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Creates the data directory, provisions the extensions and starts `pbxd`; returns once
    /// it printed its "ready:" line. Retries on another port if the port was taken meanwhile.
    pub fn start(self) -> Pbx {
        let data_dir = tempfile::Builder::new()
            .prefix("pbx-e2e-")
            .tempdir()
            .expect("create a temp dir (tmpfs full?)");
        for (number, password) in &self.extensions {
            ctl_in(
                data_dir.path(),
                &["extension", "add", number, "--password", password],
            );
        }
        let mut last_log = String::new();
        for _attempt in 0..3 {
            match spawn_pbxd(data_dir.path(), &self.args) {
                Ok((child, log, sip_port, http_port, time_to_ready)) => {
                    return Pbx {
                        child,
                        log,
                        sip_port,
                        http_port,
                        time_to_ready,
                        data_dir,
                    };
                }
                Err(SpawnError::PortTaken(log)) => last_log = log,
                Err(SpawnError::Failed(msg)) => panic!("{msg}"),
            }
        }
        panic!("pbxd could not bind a free port in 3 attempts; last log:\n{last_log}");
    }
}

enum SpawnError {
    PortTaken(String),
    Failed(String),
}

type Spawned = (KillOnDrop, LogCapture, u16, u16, Duration);

fn spawn_pbxd(data_dir: &Path, extra: &[String]) -> Result<Spawned, SpawnError> {
    let sip_port = free_port();
    let http_port = free_port();
    let bin = pbxd_bin();
    let started = now();
    let mut child = Command::new(&bin)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--sip-listen")
        .arg(format!("127.0.0.1:{sip_port}"))
        .arg("--http-listen")
        .arg(format!("127.0.0.1:{http_port}"))
        .args(extra)
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SpawnError::Failed(format!("cannot run {}: {e}", bin.display())))?;
    let (log, lines) = LogCapture::attach(&mut child);
    let mut child = KillOnDrop(child);
    let deadline = started + READY_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(now());
        match lines.recv_timeout(left.min(Duration::from_millis(100))) {
            Ok(line) => {
                if let Some(rest) = line.split("ready: sip=").nth(1) {
                    let time_to_ready = now() - started;
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    let expected = format!("127.0.0.1:{sip_port}");
                    if addr != expected {
                        return Err(SpawnError::Failed(format!(
                            "pbxd says ready on {addr:?}, asked for {expected}:\n{}",
                            log.text()
                        )));
                    }
                    return Ok((child, log, sip_port, http_port, time_to_ready));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Both pipes closed: the process is gone. Wait for it below.
                thread::sleep(Duration::from_millis(20));
            }
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            // Give the reader threads a moment to drain the pipes.
            thread::sleep(Duration::from_millis(100));
            let text = log.text();
            let lower = text.to_ascii_lowercase();
            if lower.contains("address already in use") || lower.contains("addrinuse") {
                return Err(SpawnError::PortTaken(text));
            }
            return Err(SpawnError::Failed(format!(
                "pbxd exited with {status} before printing \"ready:\":\n{text}"
            )));
        }
        if now() >= deadline {
            return Err(SpawnError::Failed(format!(
                "pbxd printed no \"ready: sip=\" line within {READY_TIMEOUT:?}:\n{}",
                log.text()
            )));
        }
    }
}

fn ctl_in(data_dir: &Path, args: &[&str]) -> String {
    let out = try_ctl_in(data_dir, args);
    if !out.status.success() {
        panic!(
            "pbxctl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn try_ctl_in(data_dir: &Path, args: &[&str]) -> Output {
    let bin = pbxctl_bin();
    Command::new(&bin)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()))
}

/// A running `pbxd` with its own data directory. Dropping it kills the process and removes
/// the directory.
#[derive(Debug)]
pub struct Pbx {
    // Field order matters: the process dies before its data directory is removed.
    child: KillOnDrop,
    log: LogCapture,
    sip_port: u16,
    http_port: u16,
    time_to_ready: Duration,
    data_dir: tempfile::TempDir,
}

impl Pbx {
    /// A builder; `Pbx::builder().extension("1001", "pw").start()`.
    pub fn builder() -> PbxBuilder {
        PbxBuilder::default()
    }

    /// SIP address (UDP and TCP) pbxd listens on.
    pub fn sip_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sip_port))
    }

    /// SIP port.
    pub fn sip_port(&self) -> u16 {
        self.sip_port
    }

    /// HTTP address pbxd listens on.
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http_port))
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// Process id of pbxd.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Time from spawn to the "ready:" line.
    pub fn time_to_ready(&self) -> Duration {
        self.time_to_ready
    }

    /// Everything pbxd logged so far.
    pub fn log(&self) -> String {
        self.log.text()
    }

    /// Runs `pbxctl --data-dir DIR ARGS...`, panicking (with its output) if it fails;
    /// returns stdout.
    pub fn ctl(&self, args: &[&str]) -> String {
        ctl_in(self.data_dir(), args)
    }

    /// Runs `pbxctl --data-dir DIR ARGS...` and returns whatever happened.
    pub fn try_ctl(&self, args: &[&str]) -> Output {
        try_ctl_in(self.data_dir(), args)
    }

    /// `pbxctl registrations` output.
    pub fn registrations(&self) -> String {
        self.ctl(&["registrations"])
    }

    /// Polls `pbxctl registrations` until `pred` holds or `timeout` passes; returns the last
    /// output and whether `pred` held.
    pub fn wait_registrations(
        &self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> (String, bool) {
        let deadline = now() + timeout;
        loop {
            let out = self.registrations();
            if pred(&out) {
                return (out, true);
            }
            if now() >= deadline {
                return (out, false);
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops pbxd with SIGTERM and starts a new one on the same data directory (new ports).
    pub fn restart(self, extra_args: &[&str]) -> Pbx {
        let Pbx {
            mut child,
            data_dir,
            ..
        } = self;
        send_signal(child.id(), "TERM");
        let deadline = now() + Duration::from_secs(10);
        while matches!(child.0.try_wait(), Ok(None)) && now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let args: Vec<String> = extra_args.iter().map(|a| a.to_string()).collect();
        let (child, log, sip_port, http_port, time_to_ready) =
            match spawn_pbxd(data_dir.path(), &args) {
                Ok(spawned) => spawned,
                Err(SpawnError::PortTaken(log) | SpawnError::Failed(log)) => {
                    panic!("pbxd did not restart:\n{log}")
                }
            };
        Pbx {
            child,
            log,
            sip_port,
            http_port,
            time_to_ready,
            data_dir,
        }
    }

    /// `GET path` on the HTTP port; returns the body (plain HTTP/1.1, no client library).
    pub fn http_get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.http_addr()).expect("connect to HTTP port");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .expect("send request");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read response");
        match out.split_once("\r\n\r\n") {
            Some((head, body)) if head.starts_with("HTTP/1.1 200") => body.to_owned(),
            _ => panic!("GET {path} failed:\n{out}"),
        }
    }

    /// Sends SIGTERM and waits up to `grace` for the exit; returns the exit status, or panics
    /// (with the log) if pbxd did not exit in time.
    pub fn terminate(mut self, grace: Duration) -> ExitStatus {
        send_signal(self.child.id(), "TERM");
        let deadline = now() + grace;
        loop {
            match self.child.0.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if now() < deadline => thread::sleep(Duration::from_millis(20)),
                Ok(None) => panic!(
                    "pbxd did not exit within {grace:?} of SIGTERM:\n{}",
                    self.log()
                ),
                Err(e) => panic!("waiting for pbxd: {e}"),
            }
        }
    }
}

/// SIP transport for sipp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `-t u1`: one UDP socket.
    Udp,
    /// `-t t1`: one TCP connection.
    Tcp,
}

impl Transport {
    fn sipp_flag(self) -> &'static str {
        match self {
            Transport::Udp => "u1",
            Transport::Tcp => "t1",
        }
    }
}

/// One sipp run: a scenario from `tests/sipp`, users in an injection file, a call count.
#[derive(Clone, Debug)]
pub struct Sipp {
    scenario: PathBuf,
    users: Vec<(String, String)>,
    transport: Transport,
    calls: u32,
    timeout: Duration,
    args: Vec<String>,
}

impl Sipp {
    /// Scenario by file name in `tests/sipp` (e.g. `"register.xml"`).
    pub fn new(scenario: &str) -> Self {
        Self {
            scenario: sipp_dir().join(scenario),
            users: Vec::new(),
            transport: Transport::Udp,
            calls: 1,
            timeout: Duration::from_secs(30),
            args: Vec::new(),
        }
    }

    /// Adds a line `user;[authentication username=user password=password]` to the injection
    /// file (field0, field1 in the scenarios). Calls take the lines in order, wrapping round.
    pub fn user(mut self, user: &str, password: &str) -> Self {
        for s in [user, password] {
            assert!(
                !s.contains([';', ']', ' ', '\n', '=']),
                "sipp injection fields cannot hold {s:?}"
            );
        }
        self.users.push((user.into(), password.into()));
        self
    }

    /// Transport (UDP by default).
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Number of calls (`-m`), 1 by default.
    pub fn calls(mut self, calls: u32) -> Self {
        self.calls = calls;
        self
    }

    /// Wall-clock limit; sipp is killed after it (30 s by default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// An extra sipp argument.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Runs sipp against `target` and waits for it. Retries on another local port when the
    /// one picked was taken meanwhile (sipp exits 254, "Unable to bind main socket").
    pub fn run(&self, target: SocketAddr) -> SippRun {
        let mut run = self.run_once(target);
        for _ in 0..3 {
            let bind_failed = run.status.and_then(|s| s.code()) == Some(254)
                && run.output.contains("Unable to bind");
            if !bind_failed {
                break;
            }
            run = self.run_once(target);
        }
        run
    }

    fn run_once(&self, target: SocketAddr) -> SippRun {
        let sipp = require_tool("sipp", "sip-tester");
        assert!(
            self.scenario.is_file(),
            "no scenario {}",
            self.scenario.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("sipp-")
            .tempdir()
            .expect("create a temp dir for sipp");
        let csv = dir.path().join("users.csv");
        let mut text = String::from("SEQUENTIAL\n");
        for (u, p) in &self.users {
            let _ = writeln!(text, "{u};[authentication username={u} password={p}]");
        }
        if self.users.is_empty() {
            text.push_str("nobody;\n");
        }
        std::fs::write(&csv, text).expect("write the sipp injection file");
        let messages = dir.path().join("messages.log");
        let errors = dir.path().join("errors.log");
        let local_port = free_port();
        let mut cmd = Command::new(&sipp);
        cmd.current_dir(dir.path())
            .arg("-sf")
            .arg(&self.scenario)
            .arg("-inf")
            .arg(&csv)
            .args(["-m", &self.calls.to_string()])
            .args(["-t", self.transport.sipp_flag()])
            .args(["-i", "127.0.0.1", "-p", &local_port.to_string()])
            .args(["-nostdin", "-trace_msg", "-trace_err"])
            .arg("-message_file")
            .arg(&messages)
            .arg("-error_file")
            .arg(&errors)
            .args(&self.args)
            .arg(target.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let command_line = format!("{cmd:?}");
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", sipp.display()));
        let (log, _lines) = LogCapture::attach(&mut child);
        let mut child = KillOnDrop(child);
        let deadline = now() + self.timeout;
        let (status, timed_out) = loop {
            match child.0.try_wait() {
                Ok(Some(status)) => break (Some(status), false),
                Ok(None) if now() < deadline => thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = child.0.kill();
                    break (child.0.wait().ok(), true);
                }
                Err(e) => panic!("waiting for sipp: {e}"),
            }
        };
        thread::sleep(Duration::from_millis(50));
        SippRun {
            command_line,
            status,
            timed_out,
            output: log.text(),
            messages: std::fs::read_to_string(&messages).unwrap_or_default(),
            errors: std::fs::read_to_string(&errors).unwrap_or_default(),
        }
    }
}

/// The result of a sipp run.
#[derive(Debug)]
pub struct SippRun {
    /// The command that ran.
    pub command_line: String,
    /// Exit status (sipp: 0 = every call succeeded, 1 = some failed, 255 = fatal error).
    pub status: Option<ExitStatus>,
    /// Killed after the timeout.
    pub timed_out: bool,
    /// stdout and stderr.
    pub output: String,
    /// The `-trace_msg` file: every message sent and received.
    pub messages: String,
    /// The `-trace_err` file: why calls failed.
    pub errors: String,
}

impl SippRun {
    /// Every call succeeded.
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }

    /// Panics with the whole story unless every call succeeded.
    pub fn assert_success(&self, what: &str) {
        assert!(self.success(), "{what}: sipp did not succeed\n{self}");
    }

    /// The SIP messages sipp received, in order, as text (CRLF kept).
    pub fn received(&self) -> Vec<String> {
        self.traced(" message received")
    }

    /// The SIP messages sipp sent, in order.
    pub fn sent(&self) -> Vec<String> {
        self.traced(" message sent")
    }

    fn traced(&self, marker: &str) -> Vec<String> {
        // Blocks start with a dashed line; then "UDP message received [N] bytes :", a blank
        // line, and the message.
        self.messages
            .split("-----------------------------------------------")
            .filter_map(|block| {
                let mut lines = block.splitn(3, '\n');
                let _timestamp = lines.next()?;
                let kind = lines.next()?;
                if !kind.contains(marker) {
                    return None;
                }
                Some(
                    lines
                        .next()?
                        .trim_start_matches(['\n', '\r'])
                        .trim_end()
                        .to_string(),
                )
            })
            .collect()
    }
}

impl std::fmt::Display for SippRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "command: {}", self.command_line)?;
        writeln!(f, "status: {:?} timed out: {}", self.status, self.timed_out)?;
        writeln!(f, "--- errors:\n{}", self.errors)?;
        writeln!(f, "--- messages:\n{}", self.messages)?;
        let tail: Vec<&str> = self.output.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        write!(f, "--- output (tail):\n{}", tail.join("\n"))
    }
}

/// A SIP message reduced to what must not differ between two answers to equivalent
/// requests: start line and headers, with per-transaction values (Via, tags, Call-ID, nonce,
/// opaque, the user part) masked. Used to check that an unknown user
/// and a known user with a wrong password get the same answers.
pub fn normalize_response(msg: &str, user: &str) -> String {
    let mut out = Vec::new();
    for line in msg.lines() {
        let line = line.trim_end_matches('\r');
        let (name, _) = line.split_once(':').unwrap_or((line, ""));
        let lname = name.trim().to_ascii_lowercase();
        let masked = match lname.as_str() {
            "call-id" | "i" => format!("{name}: <call-id>"),
            // Via carries sipp's (random) local port.
            "via" | "v" | "server" | "user-agent" | "date" => format!("{name}: <{lname}>"),
            _ => {
                let mut l = line.replace(user, "<user>");
                for key in [
                    "tag=",
                    "branch=",
                    "nonce=",
                    "opaque=",
                    "rport=",
                    "received=",
                ] {
                    l = mask_param(&l, key);
                }
                l
            }
        };
        out.push(masked);
    }
    out.join("\n")
}

fn mask_param(line: &str, key: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(pos) = rest.find(key) {
        let (head, tail) = rest.split_at(pos + key.len());
        out.push_str(head);
        out.push('*');
        let end = if let Some(quoted) = tail.strip_prefix('"') {
            quoted.find('"').map_or(tail.len(), |i| i + 2)
        } else {
            tail.find([';', ',', ' ', '>']).unwrap_or(tail.len())
        };
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Runs a program with a wall-clock limit, capturing its output. Returns (status, output,
/// timed_out); a timeout kills it.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> (Option<ExitStatus>, String, bool) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let program = cmd.get_program().to_owned();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", OsStr::to_string_lossy(&program)));
    let (log, _lines) = LogCapture::attach(&mut child);
    let mut child = KillOnDrop(child);
    let deadline = now() + timeout;
    let (status, timed_out) = loop {
        match child.0.try_wait() {
            Ok(Some(s)) => break (Some(s), false),
            Ok(None) if now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.0.kill();
                break (child.0.wait().ok(), true);
            }
            Err(e) => panic!("waiting for {}: {e}", OsStr::to_string_lossy(&program)),
        }
    };
    thread::sleep(Duration::from_millis(50));
    (status, log.text(), timed_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_per_transaction_values() {
        let a = "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 127.0.0.1:5000;rport=5000;branch=z9hG4bK-1\r\nTo: <sip:1001@pbx.local>;tag=abc\r\nCall-ID: 1-2@x\r\nWWW-Authenticate: Digest realm=\"pbx.local\", nonce=\"n1\", algorithm=MD5, qop=\"auth\"\r\n";
        let b = "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 127.0.0.1:5000;rport=5000;branch=z9hG4bK-2\r\nTo: <sip:1099@pbx.local>;tag=def\r\nCall-ID: 9-9@x\r\nWWW-Authenticate: Digest realm=\"pbx.local\", nonce=\"n2\", algorithm=MD5, qop=\"auth\"\r\n";
        assert_eq!(normalize_response(a, "1001"), normalize_response(b, "1099"));
        let c = b.replace("401 Unauthorized", "403 Forbidden");
        assert_ne!(
            normalize_response(a, "1001"),
            normalize_response(&c, "1099")
        );
        let d = b.replace("qop=\"auth\"", "stale=true, qop=\"auth\"");
        assert_ne!(
            normalize_response(a, "1001"),
            normalize_response(&d, "1099")
        );
    }

    #[test]
    fn strips_colours() {
        assert_eq!(
            strip_ansi("\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m ready: sip=1"),
            "2026  INFO ready: sip=1"
        );
    }

    #[test]
    fn parses_sipp_trace() {
        let run = SippRun {
            command_line: String::new(),
            status: None,
            timed_out: false,
            output: String::new(),
            messages: "----------------------------------------------- 2026-11-21 07:12:25.134600\nUDP message sent (3 bytes):\n\nREGISTER sip:x SIP/2.0\r\n\r\n\n----------------------------------------------- 2026-11-21 07:12:25.135140\nUDP message received [4] bytes :\n\nSIP/2.0 401 Unauthorized\r\nCSeq: 1 REGISTER\r\n\r\n\n".into(),
            errors: String::new(),
        };
        assert_eq!(
            run.received(),
            vec!["SIP/2.0 401 Unauthorized\r\nCSeq: 1 REGISTER".to_string()]
        );
        assert_eq!(run.sent(), vec!["REGISTER sip:x SIP/2.0".to_string()]);
    }
}
