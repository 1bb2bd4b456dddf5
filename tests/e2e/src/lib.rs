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

pub mod alsa_file;
pub mod trunk;

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
    /// Extra environment variables for `pbxd`.
    envs: Vec<(String, String)>,
    /// `pbxctl` commands run after the extensions, before `pbxd` starts.
    setup: Vec<Vec<String>>,
}

impl PbxBuilder {
    /// Runs `pbxctl ARGS` on the data directory before `pbxd` starts (after the extensions).
    pub fn ctl(mut self, args: &[&str]) -> Self {
        self.setup
            .push(args.iter().map(|a| a.to_string()).collect());
        self
    }

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

    /// An environment variable for `pbxd` (e.g. `ALSA_CONFIG_PATH`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.into(), value.into()));
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
        for args in &self.setup {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ctl_in(data_dir.path(), &args);
        }
        let mut last_log = String::new();
        for _attempt in 0..3 {
            match spawn_pbxd(data_dir.path(), &self.args, &self.envs) {
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

fn spawn_pbxd(
    data_dir: &Path,
    extra: &[String],
    envs: &[(String, String)],
) -> Result<Spawned, SpawnError> {
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
        // Many daemons run at once: no fixed HTTPS port.
        .arg("--https-listen")
        .arg("127.0.0.1:0")
        .args(extra)
        .envs(envs.iter().map(|(k, v)| (k, v)))
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

    /// One command to the simulated analog ports (`DATA/sim.sock`, see
    /// `firmware/pbxd/src/line/sim.rs`); returns the answer line.
    pub fn sim(&self, command: &str) -> String {
        use std::io::{BufRead, BufReader, Write};
        let path = self.data_dir().join("sim.sock");
        let mut stream = std::os::unix::net::UnixStream::connect(&path)
            .unwrap_or_else(|e| panic!("connect {}: {e}\n{}", path.display(), self.log()));
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set a read timeout");
        writeln!(stream, "{command}").expect("write a sim command");
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .expect("read the sim answer");
        let line = line.trim().to_owned();
        assert!(!line.starts_with("error"), "sim {command:?}: {line}");
        line
    }

    /// Polls `sim(command)` until `want` holds for its answer; returns the last answer
    /// and whether it held within `timeout`.
    pub fn sim_until(
        &self,
        command: &str,
        timeout: Duration,
        want: impl Fn(&str) -> bool,
    ) -> (String, bool) {
        let deadline = now() + timeout;
        loop {
            let answer = self.sim(command);
            if want(&answer) {
                return (answer, true);
            }
            if now() >= deadline {
                return (answer, false);
            }
            thread::sleep(Duration::from_millis(50));
        }
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
            match spawn_pbxd(data_dir.path(), &args, &[]) {
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

// ---------------------------------------------------------------------------------------
// Calls (issue 3): sipp callees in the background, sipp keywords and globals, and the call
// records `pbxctl cdr list --csv` prints.
// ---------------------------------------------------------------------------------------

impl Sipp {
    /// `-key NAME VALUE`: a keyword the scenario uses as `[NAME]` (e.g. `[callee]`).
    pub fn key(self, name: &str, value: &str) -> Self {
        self.arg("-key").arg(name).arg(value)
    }

    /// `-set NAME VALUE`: a global variable the scenario reads as `$NAME` (e.g. `expect`).
    pub fn global(self, name: &str, value: &str) -> Self {
        self.arg("-set").arg(name).arg(value)
    }

    /// `-oocsf tests/sipp/SCENARIO`: the scenario for requests with a Call-ID sipp does not
    /// know, i.e. the calls pbxd sends to a registered callee (see `call_callee.xml`).
    pub fn out_of_call(self, scenario: &str) -> Self {
        let path = sipp_dir().join(scenario);
        assert!(path.is_file(), "no scenario {}", path.display());
        let path = path.to_string_lossy().into_owned();
        self.arg("-oocsf").arg(&path)
    }

    /// Starts [`Sipp::run`] on a thread (a callee that must be up before the caller dials);
    /// [`SippHandle::wait`] returns its result. The run's own timeout bounds it.
    pub fn spawn(&self, target: SocketAddr) -> SippHandle {
        let sipp = self.clone();
        SippHandle(thread::spawn(move || sipp.run(target)))
    }
}

/// A sipp run in the background, from [`Sipp::spawn`].
#[derive(Debug)]
pub struct SippHandle(thread::JoinHandle<SippRun>);

impl SippHandle {
    /// Whether sipp has exited (or was killed after its timeout).
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    /// Waits for the run to end and returns it.
    pub fn wait(self) -> SippRun {
        match self.0.join() {
            Ok(run) => run,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Parses RFC 4180 CSV (quoted fields, doubled quotes, CRLF or LF line ends) into rows of
/// fields. Blank lines are skipped.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if field.is_empty() => quoted = true,
            ',' if !quoted => row.push(std::mem::take(&mut field)),
            '\r' if !quoted && chars.peek() == Some(&'\n') => {}
            '\n' if !quoted => {
                row.push(std::mem::take(&mut field));
                if !(row.len() == 1 && row[0].is_empty()) {
                    rows.push(std::mem::take(&mut row));
                }
                row.clear();
            }
            c => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// A CSV export with a header line, read by column name (so new columns do not break
/// the tests).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CsvTable {
    /// The header line's names.
    pub header: Vec<String>,
    /// The data rows.
    pub rows: Vec<Vec<String>>,
}

impl CsvTable {
    /// Parses CSV text whose first row is the header.
    pub fn parse(text: &str) -> Self {
        let mut rows = parse_csv(text).into_iter();
        let header = rows.next().unwrap_or_default();
        CsvTable {
            header,
            rows: rows.collect(),
        }
    }

    /// Index of the column named `name` (case-insensitive).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    }

    /// The value of column `name` in row `row`; panics, listing the header, when there is
    /// no such column (a renamed column is a failed test, not a silent pass).
    pub fn get(&self, row: usize, name: &str) -> &str {
        let col = self
            .column(name)
            .unwrap_or_else(|| panic!("no column {name:?} in {:?}", self.header));
        self.rows
            .get(row)
            .and_then(|r| r.get(col))
            .map_or("", |v| v.as_str())
    }

    /// Every row's value of column `name` (see [`CsvTable::get`]).
    pub fn values(&self, name: &str) -> Vec<&str> {
        (0..self.rows.len()).map(|i| self.get(i, name)).collect()
    }
}

/// The dispositions a call record can have (`disposition` column).
pub const DISPOSITIONS: [&str; 6] = [
    "answered",
    "busy",
    "no_answer",
    "cancelled",
    "failed",
    "blocked",
];

/// A disposition as written in a call record, reduced to one of [`DISPOSITIONS`]:
/// case, `no answer` / `no-answer` spellings and a `: reason` or ` (reason)` suffix do not
/// matter. `None` if it is none of them.
pub fn normalize_disposition(value: &str) -> Option<&'static str> {
    let v = value
        .trim()
        .trim_start_matches('\'')
        .to_ascii_lowercase()
        .replace([' ', '-'], "_");
    DISPOSITIONS.into_iter().find(|d| {
        v == *d
            || v.strip_prefix(d)
                .is_some_and(|rest| rest.starts_with([':', '(', '_', ';']))
    })
}

impl Pbx {
    /// `pbxctl cdr list --csv`, parsed.
    pub fn cdr(&self) -> CsvTable {
        CsvTable::parse(&self.ctl(&["cdr", "list", "--csv"]))
    }

    /// Polls the call records until there are at least `rows` (a record is written when the
    /// call has ended, which may be just after the last SIP message) or `timeout` passes;
    /// returns the last table either way.
    pub fn wait_cdr(&self, rows: usize, timeout: Duration) -> CsvTable {
        let deadline = now() + timeout;
        loop {
            let table = self.cdr();
            if table.rows.len() >= rows || now() >= deadline {
                return table;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every call, dialog and media session is freed when a call ends: the count of
    /// calls in progress returns to zero within 5 s.
    pub fn assert_no_call_left(&self) {
        let left = self.wait_health_calls(0, Duration::from_secs(5));
        assert_eq!(
            left,
            Some(0),
            "call(s) still in progress after the call ended\npbxd log:\n{}",
            self.log()
        );
    }

    /// Exactly one call record, with one of `dispositions`, and no call left in
    /// progress; returns the table.
    pub fn one_record(&self, dispositions: &[&str]) -> CsvTable {
        let cdr = self.wait_cdr(1, Duration::from_secs(5));
        assert_eq!(
            cdr.rows.len(),
            1,
            "expected one call record, got {:?}\n{:?}",
            cdr.rows,
            cdr.header
        );
        let got = cdr.get(0, "disposition");
        assert!(
            normalize_disposition(got).is_some_and(|d| dispositions.contains(&d)),
            "disposition {got:?}, expected one of {dispositions:?}; record: {:?} {:?}",
            cdr.header,
            cdr.rows
        );
        self.assert_no_call_left();
        cdr
    }

    /// The sipp run succeeded, else panics with its story and pbxd's log.
    pub fn check(&self, what: &str, run: &SippRun) {
        run.assert_success(&format!("{what}\npbxd log:\n{}", self.log()));
    }
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

#[cfg(test)]
mod call_helper_tests {
    use super::*;

    #[test]
    fn parses_rfc4180_csv() {
        let text = "id,disposition,reason\r\n1,answered,\r\n2,blocked,\"range 0900, premium \"\"rate\"\"\"\r\n\r\n3,failed,\"two\nlines\"\n";
        let t = CsvTable::parse(text);
        assert_eq!(t.header, ["id", "disposition", "reason"]);
        assert_eq!(t.rows.len(), 3);
        assert_eq!(t.get(1, "reason"), "range 0900, premium \"rate\"");
        assert_eq!(t.get(2, "reason"), "two\nlines");
        assert_eq!(t.values("Disposition"), ["answered", "blocked", "failed"]);
        assert_eq!(t.column("nope"), None);
        assert!(CsvTable::parse("").rows.is_empty());
        assert_eq!(parse_csv("a,b")[0], ["a", "b"]);
    }

    #[test]
    #[should_panic(expected = "no column")]
    fn missing_column_fails() {
        CsvTable::parse("id\n1\n").get(0, "disposition");
    }

    #[test]
    fn normalizes_dispositions() {
        assert_eq!(normalize_disposition("answered"), Some("answered"));
        assert_eq!(normalize_disposition("No Answer"), Some("no_answer"));
        assert_eq!(normalize_disposition("no-answer"), Some("no_answer"));
        assert_eq!(normalize_disposition("blocked: 0900"), Some("blocked"));
        assert_eq!(normalize_disposition("answeredx"), None);
        assert_eq!(normalize_disposition(""), None);
    }
}

// --- audio helpers (helper F) ---
// Two headless baresip phones talking through pbxd: tone files as their microphones, the
// `sndfile` filter recording what each one received, the `ctrl_tcp` module for commands
// (dial, hangup, DTMF) and events; a WAV reader and a Goertzel filter to check the audio.

/// Where Debian's baresip (package `baresip-core`) keeps its modules.
pub const BARESIP_MODULES: &str = "/usr/lib/baresip/modules";

/// The baresip modules the audio tests load; all are in Debian's `baresip-core`.
const PHONE_MODULES: [&str; 7] = [
    "g711", "g722", "aufile", "sndfile", "account", "menu", "ctrl_tcp",
];

/// How long baresip may take to open its control port.
const CTRL_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes a mono 16-bit PCM WAV file holding a sine of `freq` Hz at `rate` samples/s,
/// `secs` seconds long, peak `amplitude`.
pub fn write_tone_wav(path: &Path, freq: f64, rate: u32, secs: f64, amplitude: f64) {
    let n = (f64::from(rate) * secs) as usize;
    let mut data = Vec::with_capacity(n * 2);
    for i in 0..n {
        let t = i as f64 / f64::from(rate);
        let s = (amplitude * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16;
        data.extend_from_slice(&s.to_le_bytes());
    }
    let mut wav = Vec::with_capacity(44 + data.len());
    let data_len = u32::try_from(data.len()).expect("a test tone is far below 4 GiB");
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    wav.extend_from_slice(&2u16.to_le_bytes()); // block align
    wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    wav.extend_from_slice(&data);
    std::fs::write(path, wav).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Mono 16-bit PCM audio read from a WAV file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wav {
    /// Samples per second.
    pub rate: u32,
    /// The samples (the first channel if there are several).
    pub samples: Vec<i16>,
}

impl Wav {
    /// Reads a 16-bit PCM WAV file. A `data` chunk whose length was never filled in (the
    /// writer did not close the file) is read to the end of the file.
    pub fn read(path: &Path) -> Result<Wav, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the bytes of a 16-bit PCM WAV file.
    pub fn parse(bytes: &[u8]) -> Result<Wav, String> {
        if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
            return Err("not a RIFF/WAVE file".into());
        }
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let mut pos = 12;
        let mut format: Option<(u16, u32, u16)> = None;
        while pos + 8 <= bytes.len() {
            let id = &bytes[pos..pos + 4];
            let len = u32_at(pos + 4) as usize;
            let body = pos + 8;
            if id == b"fmt " {
                if body + 16 > bytes.len() {
                    return Err("truncated fmt chunk".into());
                }
                let (tag, channels, rate, bits) = (
                    u16_at(body),
                    u16_at(body + 2),
                    u32_at(body + 4),
                    u16_at(body + 14),
                );
                // 0xFFFE is WAVE_FORMAT_EXTENSIBLE, which libsndfile may write.
                if !(tag == 1 || tag == 0xFFFE) || bits != 16 || channels == 0 {
                    return Err(format!(
                        "not 16-bit PCM (format {tag:#x}, {bits} bits, {channels} channels)"
                    ));
                }
                format = Some((channels, rate, bits));
            } else if id == b"data" {
                let (channels, rate, _) = format.ok_or("data chunk before fmt chunk")?;
                let end = if len == 0 || body + len > bytes.len() {
                    bytes.len()
                } else {
                    body + len
                };
                let frame = 2 * usize::from(channels);
                let samples = bytes[body..end]
                    .chunks_exact(frame)
                    .map(|f| i16::from_le_bytes([f[0], f[1]]))
                    .collect();
                return Ok(Wav { rate, samples });
            }
            pos = body + len + (len & 1);
        }
        Err("no data chunk".into())
    }

    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.rate.max(1))
    }
}

/// The amplitude (peak, in sample units) of the `freq` Hz component of `samples`, by the
/// Goertzel algorithm: a pure sine of peak `A` at `freq` gives about `A`.
pub fn goertzel_amplitude(samples: &[i16], rate: u32, freq: f64) -> f64 {
    if samples.is_empty() || rate == 0 {
        return 0.0;
    }
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * freq / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0);
    2.0 * power.sqrt() / samples.len() as f64
}

/// What a recording holds at two frequencies, block by block (40 ms blocks).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ToneReport {
    /// Length of the recording, seconds.
    pub seconds: f64,
    /// Blocks analysed.
    pub blocks: usize,
    /// Blocks where `expected` is present (amplitude ≥ the threshold) and dominates
    /// `unwanted` at least tenfold.
    pub expected_blocks: usize,
    /// Blocks where `unwanted` is present (amplitude ≥ the threshold).
    pub unwanted_blocks: usize,
    /// Largest block amplitude at the expected frequency.
    pub expected_peak: f64,
    /// Largest block amplitude at the unwanted frequency.
    pub unwanted_peak: f64,
}

impl ToneReport {
    /// Analyses `wav` for the tone at `expected` Hz against the one at `unwanted` Hz; a block
    /// counts as holding a tone when its amplitude is at least `threshold`.
    pub fn analyse(wav: &Wav, expected: f64, unwanted: f64, threshold: f64) -> Self {
        let block = (wav.rate as usize / 25).max(1);
        let mut r = ToneReport {
            seconds: wav.seconds(),
            ..ToneReport::default()
        };
        for chunk in wav.samples.chunks_exact(block) {
            let e = goertzel_amplitude(chunk, wav.rate, expected);
            let u = goertzel_amplitude(chunk, wav.rate, unwanted);
            r.blocks += 1;
            r.expected_peak = r.expected_peak.max(e);
            r.unwanted_peak = r.unwanted_peak.max(u);
            if e >= threshold && e >= 10.0 * u {
                r.expected_blocks += 1;
            }
            if u >= threshold {
                r.unwanted_blocks += 1;
            }
        }
        r
    }

    /// Seconds during which the expected tone was clearly heard.
    pub fn expected_seconds(&self) -> f64 {
        self.expected_blocks as f64 * 0.04
    }
}

/// Where a tone is present in a recording: runs of 20 ms blocks with and without
/// `freq` (amplitude at least `threshold` and ten times that at `unwanted`), as
/// `(present, seconds)` from the start.
pub fn tone_runs(wav: &Wav, freq: f64, unwanted: f64, threshold: f64) -> Vec<(bool, f64)> {
    let block = (wav.rate as usize / 50).max(1);
    let mut runs: Vec<(bool, f64)> = Vec::new();
    for chunk in wav.samples.chunks_exact(block) {
        let e = goertzel_amplitude(chunk, wav.rate, freq);
        let u = goertzel_amplitude(chunk, wav.rate, unwanted);
        let on = e >= threshold && e >= 10.0 * u;
        match runs.last_mut() {
            Some((o, secs)) if *o == on => *secs += 0.02,
            _ => runs.push((on, 0.02)),
        }
    }
    runs
}

/// Checks that `runs` (from [`tone_runs`]) hold a cadenced tone, `on` seconds of tone
/// and `off` of silence, within `tolerance` seconds: at least two bursts, every burst
/// but the last (which the answer may cut short) `on` long, every gap between bursts
/// `off` long. Returns the bursts' count, or what is wrong.
pub fn check_cadence(
    runs: &[(bool, f64)],
    on: f64,
    off: f64,
    tolerance: f64,
) -> Result<usize, String> {
    let first = runs.iter().position(|r| r.0);
    let last = runs.iter().rposition(|r| r.0);
    let (Some(first), Some(last)) = (first, last) else {
        return Err("the tone is never there".into());
    };
    // A run of up to three blocks (a lost or late packet, a block misjudged at a
    // burst's edge) is noise: it joins the run before it.
    let mut inner: Vec<(bool, f64)> = Vec::new();
    for &(on, secs) in &runs[first..=last] {
        match inner.last_mut() {
            Some(prev) if prev.0 == on || secs <= 0.065 => prev.1 += secs,
            _ => inner.push((on, secs)),
        }
    }
    let mut merged: Vec<(bool, f64)> = Vec::new();
    for (on, secs) in inner {
        match merged.last_mut() {
            Some(prev) if prev.0 == on => prev.1 += secs,
            _ => merged.push((on, secs)),
        }
    }
    let inner = merged;
    let bursts: Vec<f64> = inner.iter().filter(|r| r.0).map(|r| r.1).collect();
    let gaps: Vec<f64> = inner.iter().filter(|r| !r.0).map(|r| r.1).collect();
    if bursts.len() < 2 {
        return Err(format!(
            "{} burst(s), want at least 2: {inner:?}",
            bursts.len()
        ));
    }
    for b in &bursts[..bursts.len() - 1] {
        if (b - on).abs() > tolerance {
            return Err(format!("a burst of {b:.2} s, want {on} s: {inner:?}"));
        }
    }
    let lastb = bursts[bursts.len() - 1];
    if lastb > on + tolerance {
        return Err(format!(
            "the last burst is {lastb:.2} s, want at most {on} s: {inner:?}"
        ));
    }
    for g in &gaps {
        if (g - off).abs() > tolerance {
            return Err(format!("a gap of {g:.2} s, want {off} s: {inner:?}"));
        }
    }
    Ok(bursts.len())
}

/// An event or a command response baresip's `ctrl_tcp` module sent (JSON in a netstring).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaresipMessage {
    /// The JSON text.
    pub raw: String,
}

impl BaresipMessage {
    /// A top-level string (or plain scalar) field of the JSON object, unescaped.
    pub fn field(&self, key: &str) -> Option<String> {
        json_field(&self.raw, key)
    }

    /// The event type (`CALL_ESTABLISHED`, `CALL_DTMF_START`, ...), if this is an event.
    pub fn event_type(&self) -> Option<String> {
        if self.field("event").as_deref() == Some("true") {
            self.field("type")
        } else {
            None
        }
    }
}

/// The value of `"key":` in a flat JSON object: a string (unescaped) or the scalar text
/// (`true`, `12`). Enough for baresip's ctrl_tcp messages; nested objects are not searched
/// specially, so the first occurrence wins.
pub fn json_field(json: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\":");
    let start = json.find(&needle)? + needle.len();
    let rest = json[start..].trim_start();
    if let Some(body) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => match chars.next()? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        let code = u32::from_str_radix(&hex, 16).ok()?;
                        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    }
                    other => out.push(other),
                },
                c => out.push(c),
            }
        }
        None
    } else {
        let end = rest.find([',', '}', ']']).unwrap_or(rest.len());
        Some(rest[..end].trim().to_string())
    }
}

/// Splits complete netstrings (`LEN:DATA,`) off the front of `buf`.
pub fn take_netstrings(buf: &mut Vec<u8>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    loop {
        let Some(colon) = buf.iter().position(|&b| b == b':') else {
            if buf.len() > 10 {
                return Err(format!(
                    "no netstring length in {:?}",
                    String::from_utf8_lossy(buf)
                ));
            }
            return Ok(out);
        };
        let len: usize = std::str::from_utf8(&buf[..colon])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                format!(
                    "bad netstring length {:?}",
                    String::from_utf8_lossy(&buf[..colon])
                )
            })?;
        let end = colon + 1 + len;
        if buf.len() <= end {
            return Ok(out);
        }
        if buf[end] != b',' {
            return Err("netstring without its closing comma".into());
        }
        out.push(String::from_utf8_lossy(&buf[colon + 1..end]).into_owned());
        buf.drain(..=end);
    }
}

/// Settings of one [`Phone`].
#[derive(Clone, Debug)]
pub struct PhoneConfig {
    /// Extension number (SIP user).
    pub user: String,
    /// Its password.
    pub password: String,
    /// The codecs it offers and accepts, in baresip's `audio_codecs` form
    /// (`PCMA/8000/1`, `PCMU/8000/1`, `G722/16000/1`).
    pub codecs: Vec<String>,
    /// Frequency of the tone it plays as its microphone, Hz.
    pub tone_hz: f64,
    /// Length of the tone file, seconds (baresip ends the call when the file ends).
    pub tone_secs: f64,
    /// baresip's account `mediaenc` (`srtp`, `srtp-mand`, ...): loads its `srtp` module.
    /// `None`: plain RTP. (Only the loopback [`Phone`] uses it.)
    pub mediaenc: Option<String>,
    /// Incoming calls ring until [`Phone::command`]`("accept", "")` instead of being
    /// answered at once (baresip's `answermode=manual`).
    pub answer_manually: bool,
}

impl PhoneConfig {
    /// A phone for `user` playing `tone_hz` for 20 s, offering `codecs`.
    pub fn new(user: &str, password: &str, codecs: &[&str], tone_hz: f64) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
            codecs: codecs.iter().map(|c| c.to_string()).collect(),
            tone_hz,
            tone_secs: 20.0,
            mediaenc: None,
            answer_manually: false,
        }
    }

    /// Rings on incoming calls until told to accept ([`PhoneConfig::answer_manually`]).
    pub fn ringing_until_accepted(mut self) -> Self {
        self.answer_manually = true;
        self
    }

    /// With media encryption `mediaenc` (baresip's account parameter, e.g. `srtp-mand`).
    pub fn with_mediaenc(mut self, mediaenc: &str) -> Self {
        self.mediaenc = Some(mediaenc.into());
        self
    }

    /// The sample rate baresip runs the source at: that of the first codec (G.722: 16 kHz).
    fn source_rate(&self) -> u32 {
        self.codecs
            .first()
            .and_then(|c| c.split('/').nth(1))
            .and_then(|r| r.parse().ok())
            .unwrap_or(8000)
    }
}

type Inbox = Arc<(Mutex<Vec<BaresipMessage>>, std::sync::Condvar)>;

/// A headless baresip registered to a [`Pbx`] as one extension: the tone file is its
/// microphone, `sndfile` records what it sends and receives in its directory, `ctrl_tcp`
/// takes commands and reports events. Killed when dropped.
#[derive(Debug)]
pub struct Phone {
    child: KillOnDrop,
    log: LogCapture,
    ctrl: Mutex<std::net::TcpStream>,
    inbox: Inbox,
    next_token: std::sync::atomic::AtomicU32,
    config: PhoneConfig,
    sip_local: SocketAddr,
    dir: tempfile::TempDir,
}

/// Where a test's RTP ports come from: a range of 100 ports for pbxd (`--rtp-ports`) and one
/// for each baresip (`rtp_ports`), below Linux's ephemeral range (32768-) and above pbxd's
/// default (10000-20000), spread by process id so that parallel test processes rarely share.
/// A collision is still harmless if pbxd and baresip skip ports in use.
pub fn rtp_port_range() -> (u16, u16) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let slot = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // 120 slots of 100 ports: 20000..32000.
    let slot = (std::process::id().wrapping_mul(7) + slot) % 120;
    let min = 20000 + u16::try_from(slot).expect("slot < 120") * 100;
    (min, min + 99)
}

/// What every baresip phone needs before it starts: the program and its modules, a
/// temporary directory with the tone file it plays and a folder for its recordings.
fn phone_files(config: &PhoneConfig) -> (PathBuf, tempfile::TempDir, PathBuf, PathBuf) {
    let bin = require_tool("baresip", "baresip-core");
    for m in PHONE_MODULES {
        let so = Path::new(BARESIP_MODULES).join(format!("{m}.so"));
        assert!(
            so.is_file(),
            "baresip module {} missing: apt-get install baresip-core",
            so.display()
        );
    }
    let dir = tempfile::Builder::new()
        .prefix(&format!("phone-{}-", config.user))
        .tempdir()
        .expect("create a temp dir for baresip");
    let tone = dir.path().join("tone.wav");
    write_tone_wav(
        &tone,
        config.tone_hz,
        config.source_rate(),
        config.tone_secs,
        8000.0,
    );
    let recordings = dir.path().join("rec");
    std::fs::create_dir(&recordings).expect("create the recordings dir");
    (bin, dir, tone, recordings)
}

impl Phone {
    /// Writes the tone file and configuration, starts baresip, connects to its control port
    /// and waits until pbxd lists its registration (panics with both logs otherwise).
    pub fn start(pbx: &Pbx, config: PhoneConfig) -> Phone {
        // A port found free can be taken by another test before baresip binds it (many
        // tests run at once): start again on fresh ports.
        for _ in 0..4 {
            if let Some(phone) = Self::start_once(pbx.sip_addr(), Some(pbx), config.clone()) {
                return phone;
            }
        }
        panic!("baresip found its ports taken in 4 attempts");
    }

    /// A phone registered at another registrar (a provider's Kamailio, say) instead of
    /// pbxd: returns once baresip logs the registrar's 200.
    pub fn start_at(registrar: SocketAddr, config: PhoneConfig) -> Phone {
        for _ in 0..4 {
            if let Some(phone) = Self::start_once(registrar, None, config.clone()) {
                return phone;
            }
        }
        panic!("baresip found its ports taken in 4 attempts");
    }

    /// One attempt of [`Phone::start`]; `None` when baresip could not bind its ports.
    fn start_once(registrar: SocketAddr, pbx: Option<&Pbx>, config: PhoneConfig) -> Option<Phone> {
        let (bin, dir, tone, recordings) = phone_files(&config);
        let sip_local = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let ctrl_port = free_port();
        let (rtp_min, rtp_max) = rtp_port_range();
        let mut text = format!(
            "poll_method epoll\n\
             sip_listen {sip_local}\n\
             sip_transports udp\n\
             module_path {BARESIP_MODULES}\n\
             audio_player aufile,/dev/null\n\
             audio_alert aufile,/dev/null\n\
             audio_source aufile,{}\n\
             rtp_ports {rtp_min}-{rtp_max}\n\
             snd_path {}\n\
             ctrl_tcp_listen 127.0.0.1:{ctrl_port}\n",
            tone.display(),
            recordings.display(),
        );
        for m in PHONE_MODULES {
            let kind = if matches!(m, "account" | "menu" | "ctrl_tcp") {
                "module_app"
            } else {
                "module"
            };
            let _ = writeln!(text, "{kind} {m}.so");
        }
        if config.mediaenc.is_some() {
            let so = Path::new(BARESIP_MODULES).join("srtp.so");
            assert!(
                so.is_file(),
                "baresip module {} missing: apt-get install baresip-core",
                so.display()
            );
            text.push_str("module srtp.so\n");
        }
        std::fs::write(dir.path().join("config"), text).expect("write baresip config");
        let mediaenc = config
            .mediaenc
            .as_deref()
            .map(|m| format!(";mediaenc={m}"))
            .unwrap_or_default();
        let answermode = if config.answer_manually {
            "manual"
        } else {
            "auto"
        };
        let account = format!(
            "<sip:{}@{};transport=udp>;auth_pass={};regint=600;answermode={answermode};audio_codecs={}{mediaenc}\n",
            config.user,
            registrar,
            config.password,
            config.codecs.join(",")
        );
        std::fs::write(dir.path().join("accounts"), account).expect("write baresip accounts");
        let mut child = Command::new(bin)
            .arg("-f")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn baresip");
        let (log, _lines) = LogCapture::attach(&mut child);
        let mut child = KillOnDrop(child);
        let deadline = now() + CTRL_CONNECT_TIMEOUT;
        let stream = loop {
            match std::net::TcpStream::connect(("127.0.0.1", ctrl_port)) {
                Ok(s) => break s,
                Err(e) => {
                    if let Ok(Some(status)) = child.0.try_wait() {
                        thread::sleep(Duration::from_millis(100));
                        if log.text().contains("Address already in use") {
                            return None;
                        }
                        panic!("baresip exited with {status}:\n{}", log.text());
                    }
                    if now() >= deadline {
                        panic!(
                            "baresip's ctrl_tcp port 127.0.0.1:{ctrl_port} did not open ({e}):\n{}",
                            log.text()
                        );
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            }
        };
        let inbox: Inbox = Arc::default();
        let reader = stream.try_clone().expect("clone the ctrl_tcp socket");
        let sink = Arc::clone(&inbox);
        thread::spawn(move || read_ctrl(reader, sink));
        let phone = Phone {
            child,
            log,
            ctrl: Mutex::new(stream),
            inbox,
            next_token: std::sync::atomic::AtomicU32::new(1),
            config,
            sip_local,
            dir,
        };
        let Some(pbx) = pbx else {
            // baresip prints "user@host: {0/UDP/v4} 200 OK (...) [1 binding]" (its
            // REGISTER_OK event may come before ctrl_tcp is connected).
            let deadline = now() + Duration::from_secs(15);
            while !phone.log().contains("} 200 OK") && now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
            assert!(
                phone.log().contains("} 200 OK"),
                "baresip {} did not register at {registrar}:\n{}",
                phone.config.user,
                phone.log()
            );
            return Some(phone);
        };
        let local = phone.sip_local.to_string();
        let (out, ok) = pbx.wait_registrations(Duration::from_secs(15), |o| o.contains(&local));
        assert!(
            ok,
            "baresip {} did not register:\n{out}\nbaresip:\n{}\npbxd:\n{}",
            phone.config.user,
            phone.log(),
            pbx.log()
        );
        Some(phone)
    }

    /// The phone's settings.
    pub fn config(&self) -> &PhoneConfig {
        &self.config
    }

    /// The address baresip's SIP stack listens on.
    pub fn sip_local(&self) -> SocketAddr {
        self.sip_local
    }

    /// Everything baresip printed so far (status-line noise dropped).
    pub fn log(&self) -> String {
        self.log
            .text()
            .lines()
            .map(|l| {
                // The call status line is rewritten in place with '\r'; keep its last state.
                l.rsplit('\r').next().unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every message received on the control connection so far.
    pub fn messages(&self) -> Vec<BaresipMessage> {
        self.inbox
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The events received so far, as (type, param).
    pub fn events(&self) -> Vec<(String, Option<String>)> {
        self.messages()
            .iter()
            .filter_map(|m| Some((m.event_type()?, m.field("param"))))
            .collect()
    }

    /// Waits until a message satisfies `pred`, or `timeout` passes.
    pub fn wait_message(
        &self,
        timeout: Duration,
        pred: impl Fn(&BaresipMessage) -> bool,
    ) -> Option<BaresipMessage> {
        let deadline = now() + timeout;
        let (lock, cvar) = &*self.inbox;
        let mut msgs = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(m) = msgs.iter().find(|m| pred(m)) {
                return Some(m.clone());
            }
            let left = deadline.saturating_duration_since(now());
            if left.is_zero() {
                return None;
            }
            msgs = cvar
                .wait_timeout(msgs, left.min(Duration::from_millis(200)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits for the first event of type `kind` (e.g. `CALL_ESTABLISHED`).
    pub fn wait_event(&self, kind: &str, timeout: Duration) -> Option<BaresipMessage> {
        self.wait_message(timeout, |m| m.event_type().as_deref() == Some(kind))
    }

    /// Runs a baresip command (`dial`, `hangup`, `sndcode`, ...) through ctrl_tcp and waits
    /// for its response: `Ok(data)` or `Err(what went wrong)`.
    pub fn command(&self, cmd: &str, params: &str) -> Result<String, String> {
        use std::io::Write;
        let token = format!(
            "t{}",
            self.next_token
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let json = format!(
            "{{\"command\":\"{}\",\"params\":\"{}\",\"token\":\"{token}\"}}",
            esc(cmd),
            esc(params)
        );
        {
            let mut s = self.ctrl.lock().unwrap_or_else(|e| e.into_inner());
            write!(s, "{}:{json},", json.len()).map_err(|e| format!("ctrl_tcp write: {e}"))?;
        }
        let reply = self
            .wait_message(Duration::from_secs(5), |m| {
                m.field("response").as_deref() == Some("true")
                    && m.field("token").as_deref() == Some(token.as_str())
            })
            .ok_or_else(|| format!("no response to {cmd} {params}"))?;
        let data = reply.field("data").unwrap_or_default();
        if reply.field("ok").as_deref() == Some("true") {
            Ok(data)
        } else {
            Err(data)
        }
    }

    /// The WAV files `sndfile` wrote: (received, sent), i.e. the `-dec` and `-enc` files of
    /// the most recent call. `None` if there is none yet.
    pub fn recordings(&self) -> Option<(PathBuf, PathBuf)> {
        let dir = self.dir.path().join("rec");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .ok()?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        // dump-YYYY-MM-DD-HH-MM-SS-{enc,dec}.wav: the name sorts by time.
        names.sort();
        let dec = names.iter().rev().find(|n| n.ends_with("-dec.wav"))?;
        let enc = dec.replace("-dec.wav", "-enc.wav");
        Some((dir.join(dec), dir.join(enc)))
    }

    /// The audio this phone received (decoded) during its most recent call.
    pub fn received_audio(&self) -> Result<Wav, String> {
        let (dec, _) = self
            .recordings()
            .ok_or_else(|| format!("no recording in {}", self.dir.path().display()))?;
        Wav::read(&dec)
    }

    /// The audio this phone sent (before encoding) during its most recent call.
    pub fn sent_audio(&self) -> Result<Wav, String> {
        let (_, enc) = self
            .recordings()
            .ok_or_else(|| format!("no recording in {}", self.dir.path().display()))?;
        Wav::read(&enc)
    }

    /// The codec names baresip last set up for sending and receiving, from its log lines
    /// `audio: Set audio encoder: PCMA 8000Hz 1ch` and `... decoder: ...`.
    pub fn codecs_in_use(&self) -> (Option<String>, Option<String>) {
        let log = self.log();
        let last = |what: &str| {
            let marker = format!("audio: Set audio {what}: ");
            log.lines()
                .filter_map(|l| l.split(&marker).nth(1))
                .filter_map(|rest| rest.split_whitespace().next())
                .next_back()
                .map(str::to_string)
        };
        (last("encoder"), last("decoder"))
    }

    /// Where the phone's RTP comes from (baresip's log line `stream: incoming rtp for
    /// 'audio' established, receiving from ADDR`): pbxd's relay when media is anchored.
    pub fn rtp_source(&self) -> Option<SocketAddr> {
        self.log()
            .lines()
            .filter_map(|l| l.split("established, receiving from ").nth(1))
            .filter_map(|a| a.trim().parse().ok())
            .next_back()
    }

    /// Stops baresip with SIGINT (it unregisters), waiting up to 5 s, then kills it.
    pub fn stop(mut self) -> String {
        send_signal(self.child.id(), "INT");
        let deadline = now() + Duration::from_secs(5);
        while matches!(self.child.0.try_wait(), Ok(None)) && now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        thread::sleep(Duration::from_millis(100));
        self.log()
    }
}

fn read_ctrl(mut stream: std::net::TcpStream, inbox: Inbox) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        let Ok(msgs) = take_netstrings(&mut buf) else {
            return;
        };
        if msgs.is_empty() {
            continue;
        }
        let (lock, cvar) = &*inbox;
        lock.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(msgs.into_iter().map(|raw| BaresipMessage { raw }));
        cvar.notify_all();
    }
}

impl Pbx {
    /// The `calls` figure of `GET /api/v1/health`.
    pub fn health_calls(&self) -> Option<u64> {
        json_field(&self.http_get("/api/v1/health"), "calls")?
            .parse()
            .ok()
    }

    /// Polls the health API until it reports `calls` calls in progress or `timeout` passes;
    /// returns the last figure.
    pub fn wait_health_calls(&self, calls: u64, timeout: Duration) -> Option<u64> {
        let deadline = now() + timeout;
        loop {
            let n = self.health_calls();
            if n == Some(calls) || now() >= deadline {
                return n;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod audio_helper_tests {
    use super::*;

    #[test]
    fn goertzel_finds_a_tone_in_a_wav_round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.wav");
        write_tone_wav(&path, 440.0, 8000, 1.0, 8000.0);
        let wav = Wav::read(&path).expect("read back");
        assert_eq!((wav.rate, wav.samples.len()), (8000, 8000));
        let at = |f| goertzel_amplitude(&wav.samples, 8000, f);
        assert!((at(440.0) - 8000.0).abs() < 100.0, "{}", at(440.0));
        assert!(at(1400.0) < 50.0, "{}", at(1400.0));
        let r = ToneReport::analyse(&wav, 440.0, 1400.0, 1000.0);
        assert_eq!(
            (r.blocks, r.expected_blocks, r.unwanted_blocks),
            (25, 25, 0)
        );
        let r = ToneReport::analyse(&wav, 1400.0, 440.0, 1000.0);
        assert_eq!((r.expected_blocks, r.unwanted_blocks), (0, 25));
    }

    #[test]
    fn wav_without_final_length_reads_to_the_end() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.wav");
        write_tone_wav(&path, 1000.0, 16000, 0.01, 100.0);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[40..44].copy_from_slice(&0u32.to_le_bytes());
        let wav = Wav::parse(&bytes).expect("parse");
        assert_eq!((wav.rate, wav.samples.len()), (16000, 160));
        assert!(Wav::parse(b"RIFF\0\0\0\0WAVE").is_err());
    }

    #[test]
    fn parses_ctrl_tcp_netstrings_and_json() {
        let mut buf = b"50:{\"response\":true,\"ok\":true,\"data\":\"\",\"token\":\"d1\"},12:{\"a\":\"x\\\"y\"".to_vec();
        let msgs = take_netstrings(&mut buf).expect("valid");
        assert_eq!(msgs.len(), 1);
        let m = BaresipMessage {
            raw: msgs[0].clone(),
        };
        assert_eq!(m.field("ok").as_deref(), Some("true"));
        assert_eq!(m.field("token").as_deref(), Some("d1"));
        assert_eq!(m.event_type(), None);
        buf.extend_from_slice(b"},");
        let msgs = take_netstrings(&mut buf).expect("valid");
        assert_eq!(json_field(&msgs[0], "a").as_deref(), Some("x\"y"));
        assert!(buf.is_empty());
        let ev = BaresipMessage {
            raw: r##"{"event":true,"type":"CALL_DTMF_START","param":"#"}"##.into(),
        };
        assert_eq!(ev.event_type().as_deref(), Some("CALL_DTMF_START"));
        assert_eq!(ev.field("param").as_deref(), Some("#"));
        assert!(take_netstrings(&mut b"x:abc,".to_vec()).is_err());
    }
}

// --- netns helpers (helper H) ---
// A phone behind NAT (issue 3): network namespaces joined by veth pairs, a router namespace
// that masquerades, and pbxd and baresip started inside them with `ip netns exec`. The
// test process stays in the host's namespace and reaches pbxd's HTTP API and the phones'
// ctrl_tcp ports over one management veth per namespace (a /30 each, no routes, so the
// management links cannot carry SIP or RTP around the NAT). Everything is named per test
// process and removed on drop, also when a test panics. Needs root (CI runs as root) or
// passwordless `sudo`; iproute2 and iptables (the nft backend is fine).

/// pbxd's address on the office LAN (namespace `pbxlan-*`).
pub const LAN_PBX_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 77, 1, 1);
/// The LAN phone's address (in the same namespace as pbxd).
pub const LAN_PHONE_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 77, 1, 2);
/// The NAT router's LAN-side ("public") address: what pbxd sees as the NATed phone's source.
pub const ROUTER_LAN_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 77, 1, 254);
/// The NAT router's address on the private network.
pub const ROUTER_PRIVATE_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(192, 168, 77, 1);
/// The NATed phone's private address (its Contact and SDP carry it).
pub const PRIVATE_PHONE_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(192, 168, 77, 2);
/// Source ports the router maps UDP to (`MASQUERADE --to-ports`): never the phone's own
/// port, so pbxd must use the port it saw, not the one in the Contact or SDP.
pub const NAT_UDP_PORTS: (u16, u16) = (40000, 49999);

/// How long one `ip`/`iptables` command may take.
const NET_CMD_TIMEOUT: Duration = Duration::from_secs(15);

/// What runs commands as root: nothing when we are root, `sudo -n` when passwordless sudo
/// works. Panics with what to do otherwise.
fn root_prefix() -> &'static [String] {
    static PREFIX: OnceLock<Result<Vec<String>, String>> = OnceLock::new();
    let prefix = PREFIX.get_or_init(|| {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        if uid == "0" {
            return Ok(Vec::new());
        }
        let sudo = Command::new("sudo")
            .args(["-n", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if sudo.is_ok_and(|s| s.success()) {
            return Ok(vec!["sudo".into(), "-n".into()]);
        }
        Err(format!(
            "the NAT tests build network namespaces and need root: run them as root (CI \
             does) or with passwordless sudo (uid is {uid:?} and `sudo -n true` failed)"
        ))
    });
    match prefix {
        Ok(p) => p,
        Err(msg) => panic!("{msg}"),
    }
}

/// A command run as root: `program args...`, behind `sudo -n` when we are not root.
pub fn root_command(program: impl AsRef<OsStr>, args: &[&str]) -> Command {
    let prefix = root_prefix();
    let mut cmd = match prefix.split_first() {
        None => Command::new(program),
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(program);
            c
        }
    };
    cmd.args(args);
    cmd
}

/// Runs a command as root with [`NET_CMD_TIMEOUT`]; its output, or what went wrong.
fn run_root(program: impl AsRef<OsStr>, args: &[&str]) -> Result<String, String> {
    let shown = format!("{} {}", program.as_ref().to_string_lossy(), args.join(" "));
    let (status, out, timed_out) = run_with_timeout(root_command(program, args), NET_CMD_TIMEOUT);
    match status {
        Some(s) if s.success() && !timed_out => Ok(out),
        _ if timed_out => Err(format!(
            "`{shown}` timed out after {NET_CMD_TIMEOUT:?}:\n{out}"
        )),
        other => Err(format!("`{shown}` failed ({other:?}):\n{out}")),
    }
}

/// [`run_root`], panicking on failure.
fn must_root(program: impl AsRef<OsStr>, args: &[&str]) -> String {
    run_root(program, args).unwrap_or_else(|e| panic!("{e}"))
}

/// A network namespace (`ip netns add`), deleted on drop. Processes started in it should
/// be dropped first (a namespace lives on while a process is inside).
#[derive(Debug)]
pub struct Netns {
    name: String,
    /// `ip`, found when the namespace was made (Drop must not panic looking for it).
    ip: PathBuf,
}

impl Netns {
    /// Creates the namespace `name` with its loopback up. A namespace left over with that
    /// name (an earlier, killed run with the same process id) is replaced.
    pub fn create(name: &str) -> Netns {
        let ip = require_tool("ip", "iproute2");
        let _ = run_root(&ip, &["netns", "del", name]);
        must_root(&ip, &["netns", "add", name]);
        let ns = Netns {
            name: name.into(),
            ip,
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NAME [env VARS...] program`, as root. The environment goes through
    /// `env` because sudo would drop it.
    pub fn command(&self, program: impl AsRef<OsStr>, envs: &[(&str, &str)]) -> Command {
        let mut cmd = root_command(&self.ip, &["netns", "exec", &self.name]);
        if !envs.is_empty() {
            cmd.arg("env");
            for (k, v) in envs {
                cmd.arg(format!("{k}={v}"));
            }
        }
        cmd.arg(program);
        cmd
    }

    /// Runs `program args...` in the namespace (bounded); its output, or what went wrong.
    pub fn try_run(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["netns", "exec", self.name.as_str(), program];
        all.extend_from_slice(args);
        run_root(&self.ip, &all)
    }

    /// [`Netns::try_run`], panicking on failure.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        self.try_run(program, args)
            .unwrap_or_else(|e| panic!("in {}: {e}", self.name))
    }

    /// `ip -n NAME args...`, panicking on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        must_root(&self.ip, &all)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run_root(&self.ip, &["netns", "del", &self.name]);
    }
}

/// A link in the host's namespace (the host end of a management veth), deleted on drop.
#[derive(Debug)]
struct HostLink(String, PathBuf);

impl Drop for HostLink {
    fn drop(&mut self) {
        let _ = run_root(&self.1, &["link", "del", &self.0]);
    }
}

/// The NAT topology, torn down on drop:
///
/// ```text
///  pbxpriv-ID                 pbxnat-ID                          pbxlan-ID
///  phone 192.168.77.2 ---- 192.168.77.1 | 10.77.1.254 ---- pbxd 10.77.1.1, phone 10.77.1.2
///  (default route via .1)   MASQUERADE out of the LAN side      (no route to 192.168.77/24)
/// ```
///
/// plus management veths from the host to `pbxlan-ID` and `pbxpriv-ID` (10.78.K.0/30 and
/// 10.78.K.4/30, K free on the host).
#[derive(Debug)]
pub struct NatLab {
    // Drop order: the packet capture, then the host links, then the namespaces.
    pcap: Option<(KillOnDrop, PathBuf)>,
    _host_links: Vec<HostLink>,
    /// The office LAN: pbxd and the LAN phone.
    pub lan: Netns,
    /// The NAT router.
    pub router: Netns,
    /// The private network behind the router: the NATed phone.
    pub private: Netns,
    lan_mgmt: std::net::Ipv4Addr,
    private_mgmt: std::net::Ipv4Addr,
}

/// A /24 under 10.78.0.0/16 with no address of the host in it, for the management links.
fn free_mgmt_subnet(ip: &Path) -> u8 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let used = must_root(ip, &["-4", "-o", "addr", "show"]);
    for _ in 0..250 {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let k = u8::try_from((std::process::id().wrapping_mul(13).wrapping_add(n)) % 250 + 1)
            .expect("1..=250 fits a u8");
        if !used.contains(&format!(" 10.78.{k}.")) {
            return k;
        }
    }
    panic!("no free 10.78.K.0/24 for the management links:\n{used}");
}

/// Removes namespaces an earlier test process left behind when it was killed (SIGKILL,
/// a CI timeout): `pbxlan-PID-N`, `pbxnat-PID-N`, `pbxpriv-PID-N` whose PID is gone. The
/// processes still inside them (that run's pbxd and baresip) are killed first, or the
/// namespaces would live on.
fn reap_stale_labs(ip: &Path) {
    let Ok(list) = run_root(ip, &["netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let owner = ["pbxlan-", "pbxnat-", "pbxpriv-"]
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(owner) = owner else { continue };
        if Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        if let Ok(pids) = run_root(ip, &["netns", "pids", name]) {
            for pid in pids.split_whitespace().filter(|p| p.parse::<u32>().is_ok()) {
                let _ = run_root("kill", &["-KILL", pid]);
            }
        }
        let _ = run_root(ip, &["netns", "del", name]);
    }
}

impl NatLab {
    /// Builds the topology (about 30 `ip`/`iptables` commands). Panics, naming the missing
    /// package or the failing command, if it cannot.
    pub fn build() -> NatLab {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        root_prefix();
        let ip = require_tool("ip", "iproute2");
        require_tool("iptables", "iptables");
        reap_stale_labs(&ip);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 100;
        let pid = std::process::id();
        let id = format!("{pid}-{n}");
        let lan = Netns::create(&format!("pbxlan-{id}"));
        let router = Netns::create(&format!("pbxnat-{id}"));
        let private = Netns::create(&format!("pbxpriv-{id}"));

        // Created directly in their namespaces, so the names only need to be unique there.
        must_root(
            &ip,
            &[
                "link",
                "add",
                "eth-r",
                "netns",
                lan.name(),
                "type",
                "veth",
                "peer",
                "name",
                "eth-lan",
                "netns",
                router.name(),
            ],
        );
        must_root(
            &ip,
            &[
                "link",
                "add",
                "eth-priv",
                "netns",
                router.name(),
                "type",
                "veth",
                "peer",
                "name",
                "eth-r",
                "netns",
                private.name(),
            ],
        );
        let cidr = |ip: std::net::Ipv4Addr, len: u8| format!("{ip}/{len}");
        lan.ip(&["addr", "add", &cidr(LAN_PBX_IP, 24), "dev", "eth-r"]);
        lan.ip(&["addr", "add", &cidr(LAN_PHONE_IP, 24), "dev", "eth-r"]);
        lan.ip(&["link", "set", "eth-r", "up"]);
        router.ip(&["addr", "add", &cidr(ROUTER_LAN_IP, 24), "dev", "eth-lan"]);
        router.ip(&["link", "set", "eth-lan", "up"]);
        router.ip(&[
            "addr",
            "add",
            &cidr(ROUTER_PRIVATE_IP, 24),
            "dev",
            "eth-priv",
        ]);
        router.ip(&["link", "set", "eth-priv", "up"]);
        private.ip(&["addr", "add", &cidr(PRIVATE_PHONE_IP, 24), "dev", "eth-r"]);
        private.ip(&["link", "set", "eth-r", "up"]);
        private.ip(&[
            "route",
            "add",
            "default",
            "via",
            &ROUTER_PRIVATE_IP.to_string(),
        ]);
        router.run("sh", &["-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
        let ports = format!("{}-{}", NAT_UDP_PORTS.0, NAT_UDP_PORTS.1);
        router.run(
            "iptables",
            &[
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                "eth-lan",
                "-p",
                "udp",
                "-j",
                "MASQUERADE",
                "--to-ports",
                &ports,
            ],
        );
        router.run(
            "iptables",
            &[
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                "eth-lan",
                "-j",
                "MASQUERADE",
            ],
        );

        // Management links: host <-> LAN, host <-> private network.
        let k = free_mgmt_subnet(&ip);
        let mgmt_ip = |last: u8| std::net::Ipv4Addr::new(10, 78, k, last);
        let mut host_links = Vec::new();
        for (ns, host_last, ns_last, suffix) in [(&lan, 1, 2, 'l'), (&private, 5, 6, 'p')] {
            let host_name = format!("pbxm{pid}{n}{suffix}");
            let _ = run_root(&ip, &["link", "del", &host_name]);
            must_root(
                &ip,
                &[
                    "link",
                    "add",
                    &host_name,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "mgmt",
                    "netns",
                    ns.name(),
                ],
            );
            host_links.push(HostLink(host_name.clone(), ip.clone()));
            must_root(
                &ip,
                &[
                    "addr",
                    "add",
                    &cidr(mgmt_ip(host_last), 30),
                    "dev",
                    &host_name,
                ],
            );
            must_root(&ip, &["link", "set", &host_name, "up"]);
            ns.ip(&["addr", "add", &cidr(mgmt_ip(ns_last), 30), "dev", "mgmt"]);
            ns.ip(&["link", "set", "mgmt", "up"]);
        }
        let mut lab = NatLab {
            pcap: None,
            _host_links: host_links,
            lan,
            router,
            private,
            lan_mgmt: mgmt_ip(2),
            private_mgmt: mgmt_ip(6),
        };
        lab.start_capture();
        lab
    }

    /// With `NAT_PCAP_DIR` set, tcpdump records everything the router forwards (both of
    /// its sides) into `NAT_PCAP_DIR/nat-<namespace>.pcap`.
    fn start_capture(&mut self) {
        let Some(dir) = std::env::var_os("NAT_PCAP_DIR") else {
            return;
        };
        let tcpdump = require_tool("tcpdump", "tcpdump");
        let path = PathBuf::from(dir).join(format!("nat-{}.pcap", self.router.name()));
        let mut child = self
            .router
            .command(&tcpdump, &[])
            .args(["-i", "any", "-U", "-n", "-w"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run tcpdump: {e}"));
        let (_log, lines) = LogCapture::attach(&mut child);
        // tcpdump says "listening on ..." once it captures.
        let _ = lines.recv_timeout(Duration::from_secs(5));
        self.pcap = Some((KillOnDrop(child), path));
    }

    /// The LAN namespace's management address (the host reaches pbxd's HTTP API there).
    pub fn lan_mgmt(&self) -> std::net::Ipv4Addr {
        self.lan_mgmt
    }

    /// The private namespace's management address.
    pub fn private_mgmt(&self) -> std::net::Ipv4Addr {
        self.private_mgmt
    }

    /// Where the capture goes, if `NAT_PCAP_DIR` is set.
    pub fn pcap_path(&self) -> Option<&Path> {
        self.pcap.as_ref().map(|(_, p)| p.as_path())
    }

    /// Panics unless the NAT is real: from the LAN there is no route to the private
    /// network, so only the router's mapping can carry packets to the NATed phone.
    pub fn assert_private_net_unreachable_from_lan(&self) {
        let probe = run_root(
            &self.lan.ip,
            &[
                "-n",
                self.lan.name(),
                "route",
                "get",
                &PRIVATE_PHONE_IP.to_string(),
            ],
        );
        assert!(
            probe.is_err(),
            "the LAN namespace has a route to {PRIVATE_PHONE_IP}: {probe:?}"
        );
    }

    /// Connections the router's UDP masquerading rule has translated so far (a NAT rule
    /// sees the first packet of each connection only).
    pub fn masqueraded_udp_flows(&self) -> u64 {
        let out = self.router.run(
            "iptables",
            &["-t", "nat", "-L", "POSTROUTING", "-n", "-v", "-x"],
        );
        // `pkts bytes target prot ...`; iptables-nft names the protocol by number.
        out.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() > 3 && f[2] == "MASQUERADE" && matches!(f[3], "udp" | "17"))
            .filter_map(|f| f[0].parse::<u64>().ok())
            .sum()
    }

    /// The router's NAT rules with their counters, for failure messages.
    pub fn nat_rules(&self) -> String {
        self.router
            .try_run(
                "iptables",
                &["-t", "nat", "-L", "POSTROUTING", "-n", "-v", "-x"],
            )
            .unwrap_or_else(|e| e)
    }
}

/// `GET path` from `addr`; the body of a 200 or what went wrong.
fn http_get_at(addr: SocketAddr, path: &str) -> Result<String, String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| format!("read timeout: {e}"))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    match out.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_owned()),
        _ => Err(format!("GET {path} from {addr}:\n{out}")),
    }
}

/// pbxd running in [`NatLab::lan`] on [`LAN_PBX_IP`]:5060, its HTTP API on the LAN
/// namespace's management address, its data directory on the host (so `pbxctl` needs no
/// namespace). Killed on drop.
#[derive(Debug)]
pub struct NsPbx {
    pbx: Pbx,
    sip: SocketAddr,
    http: SocketAddr,
}

impl NsPbx {
    /// Provisions `extensions` and starts pbxd in the LAN namespace with `extra` arguments;
    /// returns once it printed "ready:". `PBXD_LOG` (default `info,pbxd=debug`) sets its
    /// log level.
    pub fn start(lab: &NatLab, extensions: &[(&str, &str)], extra: &[&str]) -> NsPbx {
        let sip = SocketAddr::from((LAN_PBX_IP, 5060));
        let http = SocketAddr::from((lab.lan_mgmt(), 8080));
        Self::start_in(&lab.lan, sip, http, extensions, extra)
    }

    /// [`NsPbx::start`] in any namespace `ns`, on `sip` with its HTTP API on `http` (the
    /// trunk tests run pbxd in [`NatLab::private`], behind the NAT).
    pub fn start_in(
        ns: &Netns,
        sip: SocketAddr,
        http: SocketAddr,
        extensions: &[(&str, &str)],
        extra: &[&str],
    ) -> NsPbx {
        let data_dir = tempfile::Builder::new()
            .prefix("pbx-e2e-nat-")
            .tempdir()
            .expect("create a temp dir (tmpfs full?)");
        for (number, password) in extensions {
            ctl_in(
                data_dir.path(),
                &["extension", "add", number, "--password", password],
            );
        }
        let level = std::env::var("PBXD_LOG").unwrap_or_else(|_| "info,pbxd=debug".into());
        let started = now();
        let mut child = ns
            .command(
                pbxd_bin(),
                &[
                    ("NO_COLOR", "1"),
                    ("RUST_BACKTRACE", "1"),
                    ("PBXD_LOG", &level),
                ],
            )
            .arg("--data-dir")
            .arg(data_dir.path())
            .arg("--sip-listen")
            .arg(sip.to_string())
            .arg("--http-listen")
            .arg(http.to_string())
            .arg("--https-listen")
            .arg(std::net::SocketAddr::new(http.ip(), 0).to_string())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run pbxd in {}: {e}", ns.name()));
        let (log, lines) = LogCapture::attach(&mut child);
        let mut child = KillOnDrop(child);
        let deadline = started + READY_TIMEOUT;
        loop {
            if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
                if let Some(rest) = line.split("ready: sip=").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    assert_eq!(
                        addr,
                        sip.to_string(),
                        "pbxd ready on another address:\n{}",
                        log.text()
                    );
                    let pbx = Pbx {
                        child,
                        log,
                        sip_port: sip.port(),
                        http_port: http.port(),
                        time_to_ready: now() - started,
                        data_dir,
                    };
                    return NsPbx { pbx, sip, http };
                }
            }
            if let Ok(Some(status)) = child.0.try_wait() {
                thread::sleep(Duration::from_millis(100));
                panic!(
                    "pbxd exited with {status} before printing \"ready:\":\n{}",
                    log.text()
                );
            }
            if now() >= deadline {
                panic!(
                    "pbxd printed no \"ready: sip=\" line within {READY_TIMEOUT:?}:\n{}",
                    log.text()
                );
            }
        }
    }

    /// SIP address (UDP and TCP) in the LAN namespace.
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip
    }

    /// The data directory (on the host).
    pub fn data_dir(&self) -> &Path {
        self.pbx.data_dir()
    }

    /// HTTP address (reachable from the host).
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// Everything pbxd logged so far.
    pub fn log(&self) -> String {
        self.pbx.log()
    }

    /// `pbxctl --data-dir DIR ARGS...` (on the host: it works on the database file).
    pub fn ctl(&self, args: &[&str]) -> String {
        self.pbx.ctl(args)
    }

    /// `pbxctl registrations` output.
    pub fn registrations(&self) -> String {
        self.pbx.registrations()
    }

    /// See [`Pbx::wait_registrations`].
    pub fn wait_registrations(
        &self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> (String, bool) {
        self.pbx.wait_registrations(timeout, pred)
    }

    /// `pbxctl cdr list --csv`, parsed.
    pub fn cdr(&self) -> CsvTable {
        self.pbx.cdr()
    }

    /// See [`Pbx::wait_cdr`].
    pub fn wait_cdr(&self, rows: usize, timeout: Duration) -> CsvTable {
        self.pbx.wait_cdr(rows, timeout)
    }

    /// `GET path` on the HTTP API; the body, or what went wrong.
    pub fn http_get(&self, path: &str) -> Result<String, String> {
        http_get_at(self.http, path)
    }

    /// The `calls` figure of `GET /api/v1/health`.
    pub fn health_calls(&self) -> Option<u64> {
        json_field(&self.http_get("/api/v1/health").ok()?, "calls")?
            .parse()
            .ok()
    }

    /// Polls the health API until it reports `calls` calls or `timeout` passes; the last
    /// figure.
    pub fn wait_health_calls(&self, calls: u64, timeout: Duration) -> Option<u64> {
        let deadline = now() + timeout;
        loop {
            let n = self.health_calls();
            if n == Some(calls) || now() >= deadline {
                return n;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One row of `pbxctl registrations` (columns AOR, CONTACT, SOURCE, EXPIRES).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationRow {
    /// `user@domain`.
    pub aor: String,
    /// The Contact URI the phone registered.
    pub contact: String,
    /// `transport:ip:port` the REGISTER came from.
    pub source: String,
}

/// The rows of `pbxctl registrations` output (header skipped).
pub fn parse_registrations(text: &str) -> Vec<RegistrationRow> {
    text.lines()
        .skip_while(|l| !l.trim_start().starts_with("AOR"))
        .skip(1)
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            Some(RegistrationRow {
                aor: cols.next()?.to_string(),
                contact: cols.next()?.to_string(),
                source: cols.next()?.to_string(),
            })
        })
        .collect()
}

impl Phone {
    /// Like [`Phone::start`], but baresip runs in namespace `ns`, with SIP on `ip`:5060
    /// and RTP and SDP on `ip` (`net_interface`), its ctrl_tcp port on `ctrl_ip` (a
    /// management address the host reaches), registering to `pbx`. Waits until pbxd lists
    /// a binding with the Contact host `ip:5060`.
    pub fn start_in(
        ns: &Netns,
        ip: std::net::Ipv4Addr,
        ctrl_ip: std::net::Ipv4Addr,
        pbx: &NsPbx,
        config: PhoneConfig,
    ) -> Phone {
        let (bin, dir, tone, recordings) = phone_files(&config);
        let sip_local = SocketAddr::from((ip, 5060));
        let ctrl = SocketAddr::from((ctrl_ip, 4444));
        let (rtp_min, rtp_max) = rtp_port_range();
        let mut text = format!(
            "poll_method epoll\n\
             sip_listen {sip_local}\n\
             sip_transports udp\n\
             net_interface {ip}\n\
             module_path {BARESIP_MODULES}\n\
             audio_player aufile,/dev/null\n\
             audio_alert aufile,/dev/null\n\
             audio_source aufile,{}\n\
             rtp_ports {rtp_min}-{rtp_max}\n\
             snd_path {}\n\
             ctrl_tcp_listen {ctrl}\n",
            tone.display(),
            recordings.display(),
        );
        for m in PHONE_MODULES {
            let kind = if matches!(m, "account" | "menu" | "ctrl_tcp") {
                "module_app"
            } else {
                "module"
            };
            let _ = writeln!(text, "{kind} {m}.so");
        }
        std::fs::write(dir.path().join("config"), text).expect("write baresip config");
        let account = format!(
            "<sip:{}@{};transport=udp>;auth_pass={};regint=600;answermode=auto;audio_codecs={}\n",
            config.user,
            pbx.sip_addr(),
            config.password,
            config.codecs.join(",")
        );
        std::fs::write(dir.path().join("accounts"), account).expect("write baresip accounts");
        let mut child = ns
            .command(&bin, &[])
            .arg("-f")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run baresip in {}: {e}", ns.name()));
        let (log, _lines) = LogCapture::attach(&mut child);
        let mut child = KillOnDrop(child);
        let deadline = now() + CTRL_CONNECT_TIMEOUT;
        let stream = loop {
            match std::net::TcpStream::connect_timeout(&ctrl, Duration::from_secs(1)) {
                Ok(s) => break s,
                Err(e) => {
                    if let Ok(Some(status)) = child.0.try_wait() {
                        thread::sleep(Duration::from_millis(100));
                        panic!("baresip exited with {status}:\n{}", log.text());
                    }
                    if now() >= deadline {
                        panic!(
                            "baresip's ctrl_tcp port {ctrl} in {} did not open ({e}):\n{}",
                            ns.name(),
                            log.text()
                        );
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            }
        };
        let inbox: Inbox = Arc::default();
        let reader = stream.try_clone().expect("clone the ctrl_tcp socket");
        let sink = Arc::clone(&inbox);
        thread::spawn(move || read_ctrl(reader, sink));
        let phone = Phone {
            child,
            log,
            ctrl: Mutex::new(stream),
            inbox,
            next_token: std::sync::atomic::AtomicU32::new(1),
            config,
            sip_local,
            dir,
        };
        let contact = format!("@{sip_local}");
        let (out, ok) = pbx.wait_registrations(Duration::from_secs(15), |o| {
            parse_registrations(o)
                .iter()
                .any(|r| r.contact.contains(&contact))
        });
        assert!(
            ok,
            "baresip {} in {} did not register:\n{out}\nbaresip:\n{}\npbxd:\n{}",
            phone.config.user,
            ns.name(),
            phone.log(),
            pbx.log()
        );
        phone
    }
}

#[cfg(test)]
mod netns_helper_tests {
    use super::*;

    #[test]
    fn parses_registrations_output() {
        let text = "AOR             CONTACT                                    SOURCE                 EXPIRES\n\
                    1001@pbx.local  sip:1001-0x1@192.168.77.2:5060  udp:10.77.1.254:49285  596s\n\
                    1002@pbx.local  sip:1002-0x2@10.77.1.2:5060     udp:10.77.1.2:5060     585s\n";
        let rows = parse_registrations(text);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].aor, "1001@pbx.local");
        assert_eq!(rows[0].contact, "sip:1001-0x1@192.168.77.2:5060");
        assert_eq!(rows[0].source, "udp:10.77.1.254:49285");
        assert_eq!(rows[1].source, "udp:10.77.1.2:5060");
        assert!(parse_registrations("no registrations\n").is_empty());
    }
}

// --- call feature helpers (helper J) ---

impl Sipp {
    /// Bounds the run inside sipp as well as from outside: `-timeout` (the whole run; with
    /// `-timeout_error` running out is a failure), `-recv_timeout` for every receive that
    /// has no timeout of its own, and the wall-clock kill 10 s after `total`.
    pub fn bounded(mut self, total: Duration, recv: Duration) -> Self {
        self.timeout = total + Duration::from_secs(10);
        self.arg("-timeout")
            .arg(&format!("{}s", total.as_secs().max(1)))
            .arg("-timeout_error")
            .arg("-recv_timeout")
            .arg(&recv.as_millis().max(1).to_string())
    }
}

/// A sipp phone for extension `ext` that registers (`call_callee.xml`) and takes one call
/// with the out-of-call scenario `uas`, bounded to `total`; returns once
/// `pbxctl registrations` lists its binding (`sipp-callee-EXT`), or panics with both logs.
pub fn start_phone(
    pbx: &Pbx,
    ext: &str,
    password: &str,
    uas: &str,
    extra: &[&str],
    total: Duration,
) -> SippHandle {
    let mut sipp = Sipp::new("call_callee.xml")
        .user(ext, password)
        .out_of_call(uas)
        .bounded(total, Duration::from_secs(20));
    for a in extra {
        sipp = sipp.arg(a);
    }
    let phone = sipp.spawn(pbx.sip_addr());
    let contact = format!("sipp-callee-{ext}@");
    let (out, ok) = pbx.wait_registrations(Duration::from_secs(10), |o| o.contains(&contact));
    if !ok {
        let run = phone.wait();
        panic!(
            "phone {ext} did not register:\n{out}\nsipp:\n{run}\npbxd log:\n{}",
            pbx.log()
        );
    }
    phone
}

/// A SIP message's header value (first occurrence, case-insensitive name, compact forms
/// not expanded), trimmed; "" when absent.
pub fn sip_header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .map(|l| l.trim_end_matches('\r'))
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
        .unwrap_or("")
}

/// A SIP message's body (after the blank line); "" when there is none.
pub fn sip_body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n")
        .or_else(|| msg.split_once("\n\n"))
        .map_or("", |(_, body)| body)
}

/// Whether `msg` starts with `start` (e.g. `"SIP/2.0 200"`, `"NOTIFY "`) and its CSeq
/// method is `method`.
pub fn is_message(msg: &str, start: &str, method: &str) -> bool {
    msg.starts_with(start)
        && sip_header(msg, "CSeq")
            .split_whitespace()
            .nth(1)
            .is_some_and(|m| m.eq_ignore_ascii_case(method))
}

impl SippRun {
    /// The messages sipp received, each with the second of the day it was traced at
    /// (from the `-trace_msg` block's time stamp), for measuring delays between phones.
    pub fn received_timed(&self) -> Vec<(f64, String)> {
        self.messages
            .split("-----------------------------------------------")
            .filter_map(|block| {
                let mut lines = block.splitn(3, '\n');
                let stamp = lines.next()?;
                if !lines.next()?.contains(" message received") {
                    return None;
                }
                let time = stamp.split_whitespace().nth(1)?;
                let mut hms = time.split(':').map(|p| p.parse::<f64>().ok());
                let secs = hms.next()?? * 3600.0 + hms.next()?? * 60.0 + hms.next()??;
                let msg = lines.next()?.trim_start_matches(['\n', '\r']).trim_end();
                Some((secs, msg.to_string()))
            })
            .collect()
    }
}

#[cfg(test)]
mod call_feature_helper_tests {
    use super::*;

    #[test]
    fn reads_headers_bodies_and_trace_times() {
        let msg =
            "NOTIFY sip:x SIP/2.0\r\nCSeq: 2 NOTIFY\r\nEvent: refer\r\n\r\nSIP/2.0 100 Trying\r\n";
        assert_eq!(sip_header(msg, "event"), "refer");
        assert_eq!(sip_header(msg, "Refer-To"), "");
        assert_eq!(sip_body(msg), "SIP/2.0 100 Trying\r\n");
        assert!(is_message(msg, "NOTIFY ", "NOTIFY"));
        assert!(!is_message(msg, "NOTIFY ", "INVITE"));
        let run = SippRun {
            command_line: String::new(),
            status: None,
            timed_out: false,
            output: String::new(),
            messages: "----------------------------------------------- 2026-11-21 07:12:25.500000\nUDP message received [3] bytes :\n\nINVITE sip:x SIP/2.0\r\n\r\n\n----------------------------------------------- 2026-11-21 07:12:31.000000\nUDP message sent (3 bytes):\n\nSIP/2.0 180 Ringing\r\n\r\n\n".into(),
            errors: String::new(),
        };
        let got = run.received_timed();
        assert_eq!(got.len(), 1);
        assert!((got[0].0 - (7.0 * 3600.0 + 12.0 * 60.0 + 25.5)).abs() < 1e-6);
        assert_eq!(got[0].1, "INVITE sip:x SIP/2.0");
    }
}
