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
            // No emulated ports or modem: their own alerts (SIM PIN) would mix in.
            "--hardware",
            "none",
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
    let cert = CertificateDer::from_pem_file(data.join("tls/device.crt")).expect("device cert");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("trust the device cert");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Daemon {
        child,
        http: port_after(&ready, " http="),
        https: port_after(&ready, " https="),
        data: data.to_path_buf(),
        log,
        tls: Arc::new(tls),
    }
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
        let name = ServerName::try_from("pbx.local").expect("name");
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

pub const ROOT_PW: &str = "root-password-1";
pub const ANNA_PW: &str = "anna-password-1";
