//! The HTTPS test harness of web_api.rs (a real pbxd, a rustls client trusting its device
//! certificate, raw HTTP/1.1), shared by the newer web test files.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};

pub struct Daemon {
    pub child: Child,
    pub http: u16,
    pub https: u16,
    pub data: PathBuf,
    pub log: Arc<Mutex<Vec<String>>>,
    pub tls: Arc<rustls::ClientConfig>,
    /// The name the client asks for and checks (`pbx.local` in the generated certificate).
    pub server_name: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn port_after(line: &str, key: &str) -> u16 {
    let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len()..];
    let addr = rest.split_whitespace().next().expect("address");
    addr.rsplit(':')
        .next()
        .expect("port")
        .parse()
        .expect("port number")
}

pub fn start(data: &Path) -> Daemon {
    start_on(data, "127.0.0.1:0")
}

pub fn start_on(data: &Path, https: &str) -> Daemon {
    start_with(data, https, &[])
}

/// Like [`start_on`], with more pbxd arguments (e.g. the update backend).
pub fn start_with(data: &Path, https: &str, extra: &[&str]) -> Daemon {
    // No emulated ports or modem: their own alerts (SIM PIN) would mix in.
    start_hw(data, https, "none", extra)
}

/// Like [`start_with`] on `--hardware HARDWARE` (`sim`: two emulated ports and a modem).
pub fn start_hw(data: &Path, https: &str, hardware: &str, extra: &[&str]) -> Daemon {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pbxd"))
        .arg("--data-dir")
        .arg(data)
        .args([
            "--sip-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--https-listen",
            https,
            "--hardware",
            hardware,
        ])
        .args(extra)
        .env("PBXD_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("pbxd starts");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut lines = BufReader::new(stderr).lines();
    let mut ready = None;
    for line in lines.by_ref().map_while(Result::ok) {
        log.lock().expect("log lock").push(line.clone());
        if line.contains("ready:") {
            ready = Some(line);
            break;
        }
    }
    let ready = ready.expect("pbxd prints its readiness line");
    {
        let log = log.clone();
        // keep draining so pbxd never blocks on a full pipe
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                log.lock().expect("log lock").push(line);
            }
        });
    }
    let cert = std::fs::read_to_string(data.join("tls/device.crt")).expect("device cert");
    Daemon {
        child,
        http: port_after(&ready, " http="),
        https: port_after(&ready, " https="),
        data: data.to_path_buf(),
        log,
        tls: client_trusting(&cert),
        server_name: "pbx.local".to_owned(),
    }
}

/// A TLS client configuration trusting only the certificates in `pem`.
pub fn client_trusting(pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(c.expect("PEM certificate")).expect("trust it");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(tls)
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&self.body));
        })
    }
    /// The error message of a 4xx: always a JSON body with "error".
    pub fn error(&self) -> String {
        assert!((400..500).contains(&self.status), "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"));
        self.json()["error"]
            .as_str()
            .expect("error message")
            .to_owned()
    }
    /// `pbx_session=VALUE` from Set-Cookie.
    pub fn cookie(&self) -> String {
        let sc = self.header("set-cookie").expect("Set-Cookie");
        sc.split(';').next().expect("pair").trim().to_owned()
    }
}

pub fn parse(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk size");
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..eol]).expect("ascii size"), 16)
                    .expect("hex size");
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 4 + size..];
        }
        body = out;
    }
    Resp {
        status,
        headers,
        body,
    }
}

/// Headers every HTTPS answer must carry.
pub fn assert_security_headers(r: &Resp) {
    let csp = r.header("content-security-policy").expect("CSP");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(
        r.header("strict-transport-security"),
        Some("max-age=31536000")
    );
}

pub struct Req<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub body: Option<String>,
    pub content_type: &'a str,
    pub cookie: Option<&'a str>,
    pub csrf: Option<&'a str>,
    pub origin: Option<&'a str>,
}

impl<'a> Req<'a> {
    pub fn new(method: &'a str, path: &'a str) -> Self {
        Req {
            method,
            path,
            body: None,
            content_type: "application/json",
            cookie: None,
            csrf: None,
            origin: None,
        }
    }
    pub fn json(mut self, v: Value) -> Self {
        self.body = Some(v.to_string());
        self
    }
    pub fn raw(mut self, body: &str, content_type: &'a str) -> Self {
        self.body = Some(body.to_owned());
        self.content_type = content_type;
        self
    }
    pub fn cookie(mut self, c: &'a str) -> Self {
        self.cookie = Some(c);
        self
    }
    pub fn csrf(mut self, t: &'a str) -> Self {
        self.csrf = Some(t);
        self
    }
    pub fn origin(mut self, o: &'a str) -> Self {
        self.origin = Some(o);
        self
    }
}

impl Daemon {
    pub fn https(&self, req: Req<'_>) -> Resp {
        let host = format!("127.0.0.1:{}", self.https);
        let mut text = format!(
            "{} {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n",
            req.method, req.path
        );
        if let Some(c) = req.cookie {
            text += &format!("Cookie: {c}\r\n");
        }
        if let Some(t) = req.csrf {
            text += &format!("X-CSRF-Token: {t}\r\n");
        }
        if let Some(o) = req.origin {
            text += &format!("Origin: {o}\r\n");
        }
        let body = req.body.unwrap_or_default();
        if !body.is_empty() || matches!(req.method, "POST" | "PUT") {
            text += &format!(
                "Content-Type: {}\r\nContent-Length: {}\r\n",
                req.content_type,
                body.len()
            );
        }
        text += "\r\n";
        text += &body;
        let name = ServerName::try_from(self.server_name.clone()).expect("name");
        let conn = rustls::ClientConnection::new(self.tls.clone(), name).expect("client");
        let tcp = TcpStream::connect(("127.0.0.1", self.https)).expect("connect");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        // A server refusing a too-large body answers and closes before reading it all:
        // the write then fails, and the answer is still there to read.
        let _ = tls.write_all(text.as_bytes());
        let mut raw = Vec::new();
        // A peer closing without close_notify still delivered the whole response.
        let _ = tls.read_to_end(&mut raw);
        let resp = parse(&raw);
        assert_security_headers(&resp);
        resp
    }

    pub fn http(&self, path: &str) -> Resp {
        let mut tcp = TcpStream::connect(("127.0.0.1", self.http)).expect("connect");
        write!(
            tcp,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.http
        )
        .expect("send");
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).expect("read");
        parse(&raw)
    }

    /// One command to the emulated ports (`--hardware sim`, `DATA/sim.sock`); the answer.
    pub fn sim(&self, command: &str) -> String {
        let path = self.data.join("sim.sock");
        let mut stream = std::os::unix::net::UnixStream::connect(&path)
            .unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("read timeout");
        writeln!(stream, "{command}").expect("sim command");
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .expect("sim answer");
        line.trim().to_owned()
    }

    /// From now on, trust only the certificates in `root_pem` and ask for `name`
    /// (after the device certificate was replaced).
    pub fn trust(&mut self, root_pem: &str, name: &str) {
        self.tls = client_trusting(root_pem);
        self.server_name = name.to_owned();
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data.join("setup-token"))
            .expect("setup-token file")
            .trim()
            .to_owned()
    }

    pub fn setup(&self, user: &str, password: &str) {
        let token = self.token();
        let r = self.https(Req::new("POST", "/api/v1/setup").json(json!({
            "token": token, "username": user, "password": password
        })));
        assert_eq!(r.status, 201, "{r:?}");
    }

    /// Logs in; returns (cookie pair, CSRF token).
    pub fn login(&self, user: &str, password: &str) -> (String, String) {
        let r = self.https(
            Req::new("POST", "/api/v1/login").json(json!({"username": user, "password": password})),
        );
        assert_eq!(r.status, 200, "{r:?}");
        let csrf = r.json()["csrf_token"].as_str().expect("csrf").to_owned();
        (r.cookie(), csrf)
    }
}

/// A logged-in session: (cookie pair, CSRF token).
pub type Session = (String, String);

/// Sets up root (admin) and, if `extension` is given, creates it and links user anna
/// (role user) to it; returns both sessions logged in.
pub fn admin_and_user_on(d: &Daemon, extension: Option<&str>) -> (Session, Session) {
    d.setup("root", ROOT_PW);
    let root = d.login("root", ROOT_PW);
    let mut user = json!({"username": "anna", "password": ANNA_PW, "role": "user"});
    if let Some(ext) = extension {
        let (status, v) = send(
            d,
            &root,
            "POST",
            "/api/v1/extensions",
            Some(json!({"number": ext, "name": "Anna", "password": "sip-secret-101"})),
        );
        assert_eq!(status, 201, "{v}");
        user["extension"] = json!(ext);
    }
    let (status, v) = send(d, &root, "POST", "/api/v1/users", Some(user));
    assert_eq!(status, 201, "{v}");
    (root, d.login("anna", ANNA_PW))
}

/// Root (admin) and anna (user, extension 101).
pub fn admin_and_user(d: &Daemon) -> (Session, Session) {
    admin_and_user_on(d, Some("101"))
}

/// Sends a request in session `s` (cookie and CSRF token); returns the status and the
/// JSON body (`null` when empty).
pub fn send(
    d: &Daemon,
    s: &Session,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = Req::new(method, path).cookie(&s.0).csrf(&s.1);
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = d.https(req);
    let v = if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    };
    (r.status, v)
}

/// The last 200 audit entries as JSON text.
pub fn audit_text(d: &Daemon, s: &Session) -> String {
    let (status, v) = send(d, s, "GET", "/api/v1/audit?limit=200", None);
    assert_eq!(status, 200, "{v}");
    v.to_string()
}

pub const ROOT_PW: &str = "root-password-1";
pub const ANNA_PW: &str = "anna-password-1";
