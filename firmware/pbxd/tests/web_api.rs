//! The HTTPS API end to end: the real `pbxd` on free ports with a fresh data directory,
//! a rustls client that trusts only the device certificate pbxd generated, and raw
//! HTTP/1.1 so every header is visible. Every HTTPS response is checked for the
//! security headers.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};

struct Daemon {
    child: Child,
    http: u16,
    https: u16,
    data: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
    tls: Arc<rustls::ClientConfig>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port_after(line: &str, key: &str) -> u16 {
    let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len()..];
    let addr = rest.split_whitespace().next().expect("address");
    addr.rsplit(':')
        .next()
        .expect("port")
        .parse()
        .expect("port number")
}

fn start(data: &Path) -> Daemon {
    start_on(data, "127.0.0.1:0")
}

fn start_on(data: &Path, https: &str) -> Daemon {
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
        ])
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
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&self.body));
        })
    }
    /// The error message of a 4xx: always a JSON body with "error".
    fn error(&self) -> String {
        assert!((400..500).contains(&self.status), "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"));
        self.json()["error"]
            .as_str()
            .expect("error message")
            .to_owned()
    }
    /// `pbx_session=VALUE` from Set-Cookie.
    fn cookie(&self) -> String {
        let sc = self.header("set-cookie").expect("Set-Cookie");
        sc.split(';').next().expect("pair").trim().to_owned()
    }
}

fn parse(raw: &[u8]) -> Resp {
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
fn assert_security_headers(r: &Resp) {
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

struct Req<'a> {
    method: &'a str,
    path: &'a str,
    body: Option<String>,
    content_type: &'a str,
    cookie: Option<&'a str>,
    csrf: Option<&'a str>,
    origin: Option<&'a str>,
}

impl<'a> Req<'a> {
    fn new(method: &'a str, path: &'a str) -> Self {
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
    fn json(mut self, v: Value) -> Self {
        self.body = Some(v.to_string());
        self
    }
    fn raw(mut self, body: &str, content_type: &'a str) -> Self {
        self.body = Some(body.to_owned());
        self.content_type = content_type;
        self
    }
    fn cookie(mut self, c: &'a str) -> Self {
        self.cookie = Some(c);
        self
    }
    fn csrf(mut self, t: &'a str) -> Self {
        self.csrf = Some(t);
        self
    }
    fn origin(mut self, o: &'a str) -> Self {
        self.origin = Some(o);
        self
    }
}

impl Daemon {
    fn https(&self, req: Req<'_>) -> Resp {
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
        tls.write_all(text.as_bytes()).expect("send");
        let mut raw = Vec::new();
        // A peer closing without close_notify still delivered the whole response.
        let _ = tls.read_to_end(&mut raw);
        let resp = parse(&raw);
        assert_security_headers(&resp);
        resp
    }

    fn http(&self, path: &str) -> Resp {
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

    fn token(&self) -> String {
        std::fs::read_to_string(self.data.join("setup-token"))
            .expect("setup-token file")
            .trim()
            .to_owned()
    }

    fn setup(&self, user: &str, password: &str) {
        let token = self.token();
        let r = self.https(Req::new("POST", "/api/v1/setup").json(json!({
            "token": token, "username": user, "password": password
        })));
        assert_eq!(r.status, 201, "{r:?}");
    }

    /// Logs in; returns (cookie pair, CSRF token).
    fn login(&self, user: &str, password: &str) -> (String, String) {
        let r = self.https(
            Req::new("POST", "/api/v1/login").json(json!({"username": user, "password": password})),
        );
        assert_eq!(r.status, 200, "{r:?}");
        let csrf = r.json()["csrf_token"].as_str().expect("csrf").to_owned();
        (r.cookie(), csrf)
    }
}

const ROOT_PW: &str = "root-password-1";
const ANNA_PW: &str = "anna-password-1";

#[test]
fn first_boot_setup_token_is_single_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    let r = d.https(Req::new("GET", "/api/v1/setup"));
    assert_eq!(r.json(), json!({"setup_required": true}));

    // The token: 256 bits in hex, in a private file and in the log.
    let token = d.token();
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("setup-token"))
        .expect("file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        d.log
            .lock()
            .expect("log lock")
            .iter()
            .any(|l| l.contains(&token)),
        "the token is in the log"
    );

    let setup = |d: &Daemon, token: &str, user: &str, pw: &str| {
        d.https(Req::new("POST", "/api/v1/setup").json(json!({
            "token": token, "username": user, "password": pw
        })))
    };
    let wrong = setup(&d, &"0".repeat(64), "root", ROOT_PW);
    assert_eq!(wrong.status, 403);
    assert_eq!(wrong.error(), "wrong set-up token");
    assert_eq!(wrong.json()["field"], "token");
    let weak = setup(&d, &token, "root", "short");
    assert_eq!(weak.status, 400);
    assert_eq!(weak.json()["field"], "password");
    assert!(weak.error().contains("shorter than 10"), "{weak:?}");
    let bad_name = setup(&d, &token, "Root Admin", ROOT_PW);
    assert_eq!(bad_name.json()["field"], "username");

    let ok = setup(&d, &token, "root", ROOT_PW);
    assert_eq!(ok.status, 201, "{ok:?}");
    assert_eq!(ok.json()["role"], "admin");
    assert!(
        !dir.path().join("setup-token").exists(),
        "token file removed"
    );
    let again = setup(&d, &token, "evil", ROOT_PW);
    assert_eq!(again.status, 409);
    assert!(again.error().contains("already"), "{again:?}");
    let r = d.https(Req::new("GET", "/api/v1/setup"));
    assert_eq!(r.json(), json!({"setup_required": false}));
    d.login("root", ROOT_PW);
    drop(d);

    // A restart with an account makes no new token.
    let d = start(dir.path());
    assert!(!dir.path().join("setup-token").exists());
    assert_eq!(setup(&d, &token, "evil", ROOT_PW).status, 409);
}

#[test]
fn sessions_csrf_roles_and_password_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    d.setup("root", ROOT_PW);

    // Unknown user and wrong password look the same.
    let unknown = d.https(
        Req::new("POST", "/api/v1/login").json(json!({"username": "ghost", "password": ROOT_PW})),
    );
    let wrong = d.https(
        Req::new("POST", "/api/v1/login")
            .json(json!({"username": "root", "password": "nope-nope-nope"})),
    );
    assert_eq!((unknown.status, wrong.status), (401, 401));
    assert_eq!(unknown.body, wrong.body);
    assert_eq!(unknown.error(), "wrong user name or password");

    let r = d.https(
        Req::new("POST", "/api/v1/login").json(json!({"username": "root", "password": ROOT_PW})),
    );
    assert_eq!(r.status, 200);
    let set_cookie = r.header("set-cookie").expect("cookie").to_owned();
    let attrs: BTreeSet<&str> = set_cookie.split(';').skip(1).map(str::trim).collect();
    assert_eq!(
        attrs,
        BTreeSet::from(["HttpOnly", "Secure", "SameSite=Strict", "Path=/"]),
        "{set_cookie}"
    );
    let root = r.cookie();
    assert!(root.starts_with("pbx_session=") && root.len() == "pbx_session=".len() + 64);
    let root_csrf = r.json()["csrf_token"].as_str().expect("csrf").to_owned();

    let me = d.https(Req::new("GET", "/api/v1/session").cookie(&root));
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["username"], "root");
    assert_eq!(me.json()["role"], "admin");
    assert_eq!(me.json()["csrf_token"], root_csrf.as_str());
    assert_eq!(d.https(Req::new("GET", "/api/v1/session")).status, 401);

    // CSRF: a state-changing request needs the session's token, and a foreign Origin
    // is refused even with it.
    let anna = json!({"username": "anna", "password": ANNA_PW, "role": "user"});
    let no_csrf = d.https(
        Req::new("POST", "/api/v1/users")
            .cookie(&root)
            .json(anna.clone()),
    );
    assert_eq!(no_csrf.status, 403);
    assert_eq!(no_csrf.error(), "missing or wrong X-CSRF-Token header");
    let bad_csrf = d.https(
        Req::new("POST", "/api/v1/users")
            .cookie(&root)
            .csrf(&"f".repeat(64))
            .json(anna.clone()),
    );
    assert_eq!(bad_csrf.status, 403);
    let cross = d.https(
        Req::new("POST", "/api/v1/users")
            .cookie(&root)
            .csrf(&root_csrf)
            .origin("https://evil.example")
            .json(anna.clone()),
    );
    assert_eq!(cross.status, 403);
    assert!(cross.error().contains("Origin"), "{cross:?}");
    let same_origin = format!("https://127.0.0.1:{}", d.https);
    let created = d.https(
        Req::new("POST", "/api/v1/users")
            .cookie(&root)
            .csrf(&root_csrf)
            .origin(&same_origin)
            .json(anna.clone()),
    );
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.json()["role"], "user");
    assert!(created.json().get("password_hash").is_none());

    // Bad input: clear JSON errors, never a crash.
    let post_users = |body: Req<'_>| d.https(body.cookie(&root).csrf(&root_csrf));
    let dup = post_users(Req::new("POST", "/api/v1/users").json(anna.clone()));
    assert_eq!(
        (dup.status, dup.error()),
        (409, "user anna already exists".into())
    );
    let bad_json =
        post_users(Req::new("POST", "/api/v1/users").raw("{\"username\": ", "application/json"));
    assert_eq!(bad_json.status, 400);
    assert!(
        bad_json.error().starts_with("invalid JSON body"),
        "{bad_json:?}"
    );
    let form = post_users(
        Req::new("POST", "/api/v1/users").raw("username=x", "application/x-www-form-urlencoded"),
    );
    assert_eq!(form.status, 415);
    form.error();
    let bad_role = post_users(
        Req::new("POST", "/api/v1/users")
            .json(json!({"username": "bert", "password": ANNA_PW, "role": "root"})),
    );
    assert_eq!(
        (bad_role.status, bad_role.json()["field"].as_str()),
        (400, Some("role"))
    );
    let no_ext = post_users(Req::new("POST", "/api/v1/users").json(
        json!({"username": "bert", "password": ANNA_PW, "role": "user", "extension": "101"}),
    ));
    assert_eq!(
        (no_ext.status, no_ext.json()["field"].as_str()),
        (400, Some("extension"))
    );
    let huge =
        post_users(Req::new("POST", "/api/v1/users").raw(&"x".repeat(20_000), "application/json"));
    assert_eq!(huge.status, 413);
    huge.error();
    let not_found = d.https(Req::new("GET", "/api/v1/nothing"));
    assert_eq!(
        (not_found.status, not_found.error()),
        (404, "no such endpoint".into())
    );
    let wrong_method = d.https(Req::new("DELETE", "/api/v1/session").cookie(&root));
    assert_eq!(wrong_method.status, 405);
    wrong_method.error();

    // Roles: a user is refused every admin endpoint.
    let (anna1, anna1_csrf) = d.login("anna", ANNA_PW);
    let r = d.https(Req::new("GET", "/api/v1/users").cookie(&anna1));
    assert_eq!(
        (r.status, r.error()),
        (403, "administrator rights required".into())
    );
    let r = d.https(
        Req::new("POST", "/api/v1/users")
            .cookie(&anna1)
            .csrf(&anna1_csrf)
            .json(json!({"username": "mallory", "password": ANNA_PW, "role": "admin"})),
    );
    assert_eq!(r.status, 403);
    let r = d.https(
        Req::new("POST", "/api/v1/users/root/disable")
            .cookie(&anna1)
            .csrf(&anna1_csrf),
    );
    assert_eq!(r.status, 403);
    let list = d.https(Req::new("GET", "/api/v1/users").cookie(&root));
    let names: Vec<_> = list
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|u| u["username"].clone())
        .collect();
    assert_eq!(names, [json!("anna"), json!("root")]);

    // Rotation: logging in again with the old cookie gives a new id; the old one dies.
    let r = d.https(
        Req::new("POST", "/api/v1/login")
            .cookie(&anna1)
            .json(json!({"username": "anna", "password": ANNA_PW})),
    );
    let anna2 = r.cookie();
    let anna2_csrf = r.json()["csrf_token"].as_str().expect("csrf").to_owned();
    assert_ne!(anna2, anna1);
    assert_eq!(
        d.https(Req::new("GET", "/api/v1/session").cookie(&anna1))
            .status,
        401
    );
    let (anna3, _) = d.login("anna", ANNA_PW);

    // Own password: needs the current one; other sessions end, this one stays.
    let change = |current: &str, new: &str| {
        d.https(
            Req::new("PUT", "/api/v1/users/me/password")
                .cookie(&anna2)
                .csrf(&anna2_csrf)
                .json(json!({"current_password": current, "new_password": new})),
        )
    };
    let r = change("not-the-password", "anna-password-2");
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (403, Some("current_password"))
    );
    let r = change(ANNA_PW, "anna");
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (400, Some("new_password"))
    );
    assert_eq!(change(ANNA_PW, "anna-password-2").status, 204);
    assert_eq!(
        d.https(Req::new("GET", "/api/v1/session").cookie(&anna2))
            .status,
        200
    );
    assert_eq!(
        d.https(Req::new("GET", "/api/v1/session").cookie(&anna3))
            .status,
        401
    );
    let old = d.https(
        Req::new("POST", "/api/v1/login").json(json!({"username": "anna", "password": ANNA_PW})),
    );
    assert_eq!(old.status, 401);
    d.login("anna", "anna-password-2");

    // Blocking: sessions end at once and login is refused; not one's own account.
    let r = d.https(
        Req::new("POST", "/api/v1/users/anna/disable")
            .cookie(&root)
            .csrf(&root_csrf),
    );
    assert_eq!(
        (r.status, r.json()["disabled"].as_bool()),
        (200, Some(true))
    );
    assert_eq!(
        d.https(Req::new("GET", "/api/v1/session").cookie(&anna2))
            .status,
        401
    );
    let r = d.https(
        Req::new("POST", "/api/v1/login")
            .json(json!({"username": "anna", "password": "anna-password-2"})),
    );
    assert_eq!(r.status, 401);
    let r = d.https(
        Req::new("POST", "/api/v1/users/root/disable")
            .cookie(&root)
            .csrf(&root_csrf),
    );
    assert_eq!(r.status, 409);
    let r = d.https(
        Req::new("POST", "/api/v1/users/ghost/disable")
            .cookie(&root)
            .csrf(&root_csrf),
    );
    assert_eq!(r.status, 404);
    let r = d.https(
        Req::new("POST", "/api/v1/users/anna/enable")
            .cookie(&root)
            .csrf(&root_csrf),
    );
    assert_eq!(r.status, 200);
    d.login("anna", "anna-password-2");

    // Logout: CSRF needed; the cookie is cleared and the session is gone.
    assert_eq!(
        d.https(Req::new("POST", "/api/v1/logout").cookie(&root))
            .status,
        403
    );
    let r = d.https(
        Req::new("POST", "/api/v1/logout")
            .cookie(&root)
            .csrf(&root_csrf),
    );
    assert_eq!(r.status, 204);
    assert!(r
        .header("set-cookie")
        .expect("cleared")
        .contains("Max-Age=0"));
    assert_eq!(
        d.https(Req::new("GET", "/api/v1/session").cookie(&root))
            .status,
        401
    );

    // The audit log has who, what and from where, and no password.
    let store = pbxd::store::Store::open(dir.path()).expect("store");
    let entries = store.audit_entries(100).expect("audit");
    let actions: BTreeSet<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    for a in [
        "setup.admin",
        "login.ok",
        "login.fail",
        "logout",
        "user.add",
        "user.password",
        "user.disable",
        "user.enable",
    ] {
        assert!(actions.contains(a), "{a} in {actions:?}");
    }
    let disable = entries
        .iter()
        .find(|e| e.action == "user.disable")
        .expect("entry");
    assert_eq!(
        (
            disable.actor.as_str(),
            disable.source.as_str(),
            disable.detail.as_str()
        ),
        ("web:root", "127.0.0.1", "username=anna")
    );
    assert!(
        entries.iter().all(|e| !e.detail.contains("password-")),
        "no passwords"
    );
}

#[test]
fn failed_logins_are_throttled_per_account_and_per_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    d.setup("root", ROOT_PW);
    let login = |user: &str, pw: &str| {
        d.https(Req::new("POST", "/api/v1/login").json(json!({"username": user, "password": pw})))
    };
    for _ in 0..5 {
        assert_eq!(login("root", "wrong-password").status, 401);
    }
    // The sixth attempt is refused before the password is even checked.
    let r = login("root", ROOT_PW);
    assert_eq!(r.status, 429, "{r:?}");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("secs");
    assert!((1..=900).contains(&retry), "{retry}");
    assert!(r.error().starts_with("too many failed attempts"));
    // Other accounts still work from this source until it has 10 failures.
    for _ in 0..5 {
        assert_eq!(login("nobody", "wrong-password").status, 401);
    }
    assert_eq!(login("someone", "wrong-password").status, 429);
}

#[test]
fn plain_http_serves_health_and_redirects_the_rest_and_openapi_matches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    let h = d.http("/api/v1/health");
    assert_eq!(h.status, 200);
    assert_eq!(h.json()["status"], "ok");
    assert_eq!(h.header("x-content-type-options"), Some("nosniff"));
    for path in ["/", "/api/v1/users?x=1", "/api/v1/login"] {
        let r = d.http(path);
        assert_eq!(r.status, 308, "{path}");
        assert_eq!(
            r.header("location"),
            Some(format!("https://127.0.0.1:{}{path}", d.https).as_str())
        );
    }
    assert_eq!(
        d.https(Req::new("GET", "/api/v1/health")).json()["status"],
        "ok"
    );

    // The document is valid JSON; every operation in it exists (an undocumented one 404s).
    let doc = d.https(Req::new("GET", "/api/v1/openapi.json"));
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    let mut count = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            let path = path.replace("{name}", "somebody");
            let method = method.to_uppercase();
            let r = d.https(Req::new(&method, &path).json(json!({})));
            assert!(![404, 405].contains(&r.status), "{method} {path}: {r:?}");
            count += 1;
        }
    }
    assert_eq!(count, 12);
}

/// A busy HTTPS port does not stop the PBX: pbxd starts, says why the web UI is
/// missing, and its supervisor serves HTTPS as soon as the port is free.
#[test]
fn a_busy_https_port_is_retried_without_stopping_the_daemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let d = start_on(dir.path(), &addr);
    assert_eq!(d.http("/api/v1/health").status, 200, "telephony side is up");
    assert!(
        d.log
            .lock()
            .expect("log lock")
            .iter()
            .any(|l| l.contains(&format!("cannot listen for HTTPS on {addr}"))),
        "the reason is logged"
    );
    drop(busy);
    // The supervisor's back-off starts at 100 ms; give it up to 20 s.
    let up = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        TcpStream::connect(("127.0.0.1", d.https)).is_ok()
    });
    assert!(up, "HTTPS never came up");
    let r = d.https(Req::new("GET", "/api/v1/health"));
    assert_eq!(r.status, 200);
}
