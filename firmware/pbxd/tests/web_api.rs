//! The HTTPS API end to end: the real `pbxd` on free ports with a fresh data directory,
//! a rustls client that trusts only the device certificate pbxd generated, and raw
//! HTTP/1.1 so every header is visible. Every HTTPS response is checked for the
//! security headers.

mod web_support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use rustls::pki_types::ServerName;
use serde_json::{json, Value};
use web_support::{start_hw, Daemon, Req, Resp, ANNA_PW, ROOT_PW};

/// pbxd with its default hardware (emulated ports and modem).
fn start(data: &Path) -> Daemon {
    start_on(data, "127.0.0.1:0")
}

fn start_on(data: &Path, https: &str) -> Daemon {
    start_hw(data, https, "sim", &[])
}

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
            if method == "parameters" {
                continue; // shared path parameters, not an operation
            }
            let path = path
                .replace("{name}", "somebody")
                .replace("{number}", "101")
                .replace("{ip}", "192.0.2.1")
                .replace("{id}", "1");
            let method = method.to_uppercase();
            let r = d.https(Req::new(&method, &path).json(json!({})));
            assert!(![404, 405].contains(&r.status), "{method} {path}: {r:?}");
            count += 1;
        }
    }
    // 45, then trunks (9), GSM and SMS (7), firmware (2), notes and phonebook (8), ports (2),
    // certificate (3), click-to-dial (1).
    assert_eq!(count, 77);
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

impl Daemon {
    /// Sends a GET and reads until `needle` appears in the answer (or 10 s pass): for
    /// the event stream, which never ends by itself.
    fn https_until(&self, path: &str, cookie: &str, needle: &str) -> String {
        let text = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nCookie: {cookie}\r\n\r\n",
            self.https
        );
        let name = ServerName::try_from("pbx.local").expect("name");
        let conn = rustls::ClientConnection::new(self.tls.clone(), name).expect("client");
        let tcp = TcpStream::connect(("127.0.0.1", self.https)).expect("connect");
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(text.as_bytes()).expect("send");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains(needle) {
            match tls.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }
}

/// Opens the event stream with `cookie` in a thread; the handle yields what was read and
/// whether the server ended the stream (false: still open after 15 s).
fn open_stream(d: &Daemon, cookie: &str) -> std::thread::JoinHandle<(String, bool)> {
    let text = format!(
        "GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nCookie: {cookie}\r\n\
         Connection: close\r\n\r\n",
        d.https
    );
    let (tls_cfg, port) = (d.tls.clone(), d.https);
    std::thread::spawn(move || {
        let name = ServerName::try_from("pbx.local").expect("name");
        let conn = rustls::ClientConnection::new(tls_cfg, name).expect("client");
        let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(15)))
            .expect("timeout");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(text.as_bytes()).expect("send");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let ended = loop {
            match tls.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                // A close without close_notify is an end too; a timeout is not.
                Err(e) => {
                    break e.kind() != std::io::ErrorKind::WouldBlock
                        && e.kind() != std::io::ErrorKind::TimedOut
                }
            }
        };
        (String::from_utf8_lossy(&got).into_owned(), ended)
    })
}

fn call(id: &str, caller: &str, dest: &str, start_ms: i64, busy: bool) -> CallRecord {
    CallRecord {
        call_id: id.into(),
        caller: caller.into(),
        caller_name: None,
        dialled: dest.into(),
        normalised: None,
        destination: Some(dest.into()),
        direction: CallDirection::Internal,
        route: Some("internal".into()),
        source_ip: None,
        dest_ip: None,
        start_ms,
        answer_ms: (!busy).then_some(start_ms + 1000),
        end_ms: start_ms + 5000,
        disposition: if busy {
            Disposition::Busy
        } else {
            Disposition::Answered
        },
        reason: None,
        sip_status: None,
        hangup: None,
        quality_caller: None,
        quality_callee: None,
        forwarded_by: None,
    }
}

use pbxd::store::{AuditCtx, CallDirection, CallRecord, Disposition, Store};

/// The PBX side of the API: extensions, ring groups, site, users' roles, blocks, the call
/// log and CSV; validation errors name their field; a `user` is refused every admin
/// endpoint and sees only own calls; every change is in the audit log.
#[test]
fn pbx_api_validates_enforces_roles_and_audits_every_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    d.setup("root", ROOT_PW);
    let (root, csrf) = d.login("root", ROOT_PW);
    let admin = |method: &'static str, path: &str, body: Option<Value>| {
        let mut r = Req::new(method, path).cookie(&root).csrf(&csrf);
        if let Some(b) = body {
            r = r.json(b);
        }
        d.https(r)
    };
    let field = |r: &Resp| r.json()["field"].as_str().map(str::to_owned);

    // Extensions: pbxctl's rules, answered as 4xx naming the field.
    let r = admin(
        "POST",
        "/api/v1/extensions",
        Some(json!({"number": "101", "name": "Anna", "password": "secret-101"})),
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json()["settings"]["outbound_class"], "national");
    let r = admin(
        "POST",
        "/api/v1/extensions",
        Some(json!({"number": "102", "password": "secret-102"})),
    );
    assert_eq!(r.status, 201);
    for (body, status, f) in [
        (
            json!({"number": "110", "password": "secret-110"}),
            400,
            Some("number"),
        ),
        (
            json!({"number": "103", "password": "short"}),
            400,
            Some("password"),
        ),
        (
            json!({"number": "103", "name": "\u{7}", "password": "secret-103"}),
            400,
            Some("name"),
        ),
        (
            json!({"number": "101", "password": "secret-101"}),
            409,
            None,
        ),
        (json!({"number": "103"}), 400, None),
    ] {
        let r = admin("POST", "/api/v1/extensions", Some(body.clone()));
        assert_eq!(
            (r.status, field(&r)),
            (status, f.map(str::to_owned)),
            "{body}: {r:?}"
        );
        r.error();
    }
    let r = admin(
        "PUT",
        "/api/v1/extensions/101",
        Some(json!({"name": "Anna M."})),
    );
    assert_eq!(
        (r.status, r.json()["name"].as_str()),
        (200, Some("Anna M."))
    );
    assert_eq!(
        admin("PUT", "/api/v1/extensions/999", Some(json!({"name": "x"}))).status,
        404
    );
    let settings = |class: &str, always: Value| {
        json!({"outbound_class": class, "clir": true, "dnd": false, "forward_always": always,
               "forward_busy": null, "forward_noanswer": "102", "forward_noanswer_secs": 25,
               "pickup_group": 3})
    };
    let r = admin(
        "PUT",
        "/api/v1/extensions/101/settings",
        Some(settings("local", json!("0049211123"))),
    );
    assert_eq!(
        (r.status, field(&r).as_deref()),
        (400, Some("forward_always")),
        "{r:?}"
    );
    assert!(r.error().contains("not allowed"), "{r:?}");
    let r = admin(
        "PUT",
        "/api/v1/extensions/101/settings",
        Some(settings("galactic", Value::Null)),
    );
    assert_eq!(field(&r).as_deref(), Some("outbound_class"));
    let r = admin(
        "PUT",
        "/api/v1/extensions/101/settings",
        Some(settings("local", Value::Null)),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["settings"]["forward_noanswer"], "102");
    let r = admin(
        "PUT",
        "/api/v1/extensions/101/password",
        Some(json!({"password": "101"})),
    );
    assert_eq!((r.status, field(&r).as_deref()), (400, Some("password")));
    let r = admin(
        "PUT",
        "/api/v1/extensions/101/password",
        Some(json!({"password": "new-secret-101"})),
    );
    assert_eq!(r.status, 204);
    let r = admin("POST", "/api/v1/extensions/102/disable", None);
    assert_eq!(
        (r.status, r.json()["enabled"].as_bool()),
        (200, Some(false))
    );
    let list = admin("GET", "/api/v1/extensions", None).json();
    assert_eq!(list[1]["enabled"], false);
    assert_eq!(
        admin("POST", "/api/v1/extensions/102/enable", None).json()["enabled"],
        true
    );

    // Ring groups.
    let r = admin(
        "POST",
        "/api/v1/ring-groups",
        Some(json!({"number": "600", "members": ["101", "102"], "strategy": "ordered"})),
    );
    assert_eq!((r.status, r.json()["ring_secs"].as_u64()), (201, Some(20)));
    let r = admin(
        "POST",
        "/api/v1/ring-groups",
        Some(json!({"number": "601", "members": ["109"]})),
    );
    assert_eq!((r.status, field(&r).as_deref()), (400, Some("members")));
    let r = admin(
        "POST",
        "/api/v1/ring-groups",
        Some(json!({"number": "101", "members": ["102"]})),
    );
    assert_eq!(r.status, 409);
    let r = admin(
        "PUT",
        "/api/v1/ring-groups/600",
        Some(json!({"members": ["102"], "ring_secs": 4})),
    );
    assert_eq!(r.status, 400);
    let r = admin(
        "PUT",
        "/api/v1/ring-groups/600",
        Some(json!({"members": ["102"], "ring_secs": 30})),
    );
    assert_eq!(
        (r.status, r.json()["members"].clone()),
        (200, json!(["102"]))
    );
    assert_eq!(
        admin("GET", "/api/v1/ring-groups", None).json()[0]["ring_secs"],
        30
    );
    assert_eq!(admin("DELETE", "/api/v1/ring-groups/600", None).status, 204);
    assert_eq!(admin("DELETE", "/api/v1/ring-groups/600", None).status, 404);

    // Site: nothing half-saved when one field is bad.
    let r = admin(
        "PUT",
        "/api/v1/site",
        Some(json!({"area_code": "211", "time_zone": "Mars/Olympus"})),
    );
    assert_eq!((r.status, field(&r).as_deref()), (400, Some("time_zone")));
    assert_eq!(admin("GET", "/api/v1/site", None).json()["area_code"], "");
    let r = admin(
        "PUT",
        "/api/v1/site",
        Some(json!({"area_code": "211", "emergency_address":
            {"street": "Königsallee 1", "postal_code": "x", "city": "Düsseldorf"}})),
    );
    assert_eq!(field(&r).as_deref(), Some("emergency_address.postal_code"));
    let r = admin(
        "PUT",
        "/api/v1/site",
        Some(
            json!({"area_code": "211", "time_zone": "Europe/Berlin", "emergency_address":
            {"street": "Königsallee 1", "postal_code": "40212", "city": "Düsseldorf"}}),
        ),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["emergency_address"]["city"], "Düsseldorf");
    assert_eq!(r.json()["country_code"], "49");

    // Users: a user linked to 101; roles granted and revoked, never one's own.
    let r = admin(
        "POST",
        "/api/v1/users",
        Some(json!({"username": "anna", "password": ANNA_PW, "role": "user", "extension": "101"})),
    );
    assert_eq!(r.status, 201);
    let r = admin(
        "PUT",
        "/api/v1/users/root/role",
        Some(json!({"role": "user"})),
    );
    assert_eq!(r.status, 409);
    let r = admin(
        "PUT",
        "/api/v1/users/anna/role",
        Some(json!({"role": "boss"})),
    );
    assert_eq!(field(&r).as_deref(), Some("role"));
    assert_eq!(
        admin(
            "PUT",
            "/api/v1/users/ghost/role",
            Some(json!({"role": "admin"}))
        )
        .status,
        404
    );
    let r = admin(
        "PUT",
        "/api/v1/users/anna/role",
        Some(json!({"role": "admin"})),
    );
    assert_eq!(r.json()["role"], "admin");
    let r = admin(
        "PUT",
        "/api/v1/users/anna/role",
        Some(json!({"role": "user"})),
    );
    assert_eq!(r.json()["role"], "user");

    // Blocks and call records as the SIP side writes them.
    {
        let mut store = Store::open(dir.path()).expect("store");
        let by = AuditCtx {
            actor: "pbxd",
            source: "sip",
            now_unix: i64::try_from(pbxd::clock::unix_now()).expect("secs"),
        };
        let ip = "198.51.100.7".parse().expect("ip");
        store
            .add_block(&by, ip, "5 failed authentications", by.now_unix + 3600)
            .expect("block");
        let t = by.now_unix * 1000;
        store
            .insert_call_records(&[
                call("c1", "101", "102", t - 3000, false),
                call("c2", "103", "104", t - 2000, true),
                call("c3", "102", "101", t - 1000, true),
            ])
            .expect("records");
    }
    let blocks = admin("GET", "/api/v1/blocks", None).json();
    assert_eq!(blocks[0]["ip"], "198.51.100.7");
    assert_eq!(
        admin("DELETE", "/api/v1/blocks/not-an-ip", None).status,
        400
    );
    assert_eq!(
        admin("DELETE", "/api/v1/blocks/198.51.100.7", None).status,
        204
    );
    assert_eq!(
        admin("DELETE", "/api/v1/blocks/198.51.100.7", None).status,
        404
    );
    assert_eq!(admin("GET", "/api/v1/blocks", None).json(), json!([]));

    let ids = |v: &Value| -> Vec<String> {
        v["records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| r["dialled"].as_str().expect("dialled").to_owned())
            .collect()
    };
    let page = admin("GET", "/api/v1/cdr?limit=2", None).json();
    assert_eq!(
        (ids(&page), page["has_more"].as_bool()),
        (vec!["101".to_owned(), "104".to_owned()], Some(true))
    );
    // Not forwarded: the kind is the direction, and no forwarder.
    assert_eq!(
        (
            page["records"][0]["kind"].clone(),
            page["records"][0]["forwarded_by"].clone()
        ),
        (page["records"][0]["direction"].clone(), Value::Null)
    );
    assert!(page["records"][0]["kind"].is_string());
    let page = admin("GET", "/api/v1/cdr?limit=2&offset=2", None).json();
    assert_eq!(
        (ids(&page), page["has_more"].as_bool()),
        (vec!["102".to_owned()], Some(false))
    );
    let busy = admin("GET", "/api/v1/cdr?disposition=busy&number=103", None).json();
    assert_eq!(ids(&busy), ["104"]);
    for bad in [
        "limit=0",
        "disposition=lost",
        "number=abc",
        "sort=asc",
        "since_ms=x",
    ] {
        let r = admin("GET", &format!("/api/v1/cdr?{bad}"), None);
        assert_eq!(r.status, 400, "{bad}");
        r.error();
    }
    let csv = admin("GET", "/api/v1/cdr.csv", None);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(csv
        .header("content-disposition")
        .is_some_and(|v| v.starts_with("attachment")));
    let text = String::from_utf8(csv.body.clone()).expect("utf-8");
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.starts_with("id,call_id,start,"), "{text}");

    // Live status: one snapshot and the event stream.
    let status = admin("GET", "/api/v1/status", None).json();
    assert_eq!(
        (status["registrations"].clone(), status["trunk"].clone()),
        (json!(0), json!("not_configured"))
    );
    let stream = d.https_until("/api/v1/events", &root, "\"gsm\"");
    assert!(stream.starts_with("HTTP/1.1 200"), "{stream}");
    assert!(stream.contains("text/event-stream"), "{stream}");
    assert!(stream.contains("event: status\ndata: {"), "{stream}");
    // The stream ends with its session (and does not keep it alive).
    let (other, other_csrf) = d.login("root", ROOT_PW);
    let reader = open_stream(&d, &other);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let r = d.https(
        Req::new("POST", "/api/v1/logout")
            .cookie(&other)
            .csrf(&other_csrf),
    );
    assert_eq!(r.status, 204);
    let (seen, ended) = reader.join().expect("reader");
    assert!(ended, "the stream outlived its session: {seen}");
    assert!(seen.contains("event: status"), "{seen}");

    // The user: own calls only, own settings only, 403 everywhere else.
    let (anna, anna_csrf) = d.login("anna", ANNA_PW);
    let user = |method: &'static str, path: &str, body: Option<Value>| {
        let mut r = Req::new(method, path).cookie(&anna).csrf(&anna_csrf);
        if let Some(b) = body {
            r = r.json(b);
        }
        d.https(r)
    };
    for (method, path) in [
        ("GET", "/api/v1/extensions"),
        ("POST", "/api/v1/extensions"),
        ("GET", "/api/v1/extensions/101"),
        ("PUT", "/api/v1/extensions/101/settings"),
        ("DELETE", "/api/v1/extensions/102"),
        ("POST", "/api/v1/extensions/102/disable"),
        ("GET", "/api/v1/ring-groups"),
        ("POST", "/api/v1/ring-groups"),
        ("GET", "/api/v1/blocks"),
        ("DELETE", "/api/v1/blocks/198.51.100.7"),
        ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/site"),
        ("PUT", "/api/v1/site"),
        ("PUT", "/api/v1/users/anna/role"),
        ("GET", "/api/v1/status"),
        ("GET", "/api/v1/events"),
    ] {
        let r = user(method, path, Some(json!({"role": "admin"})));
        assert_eq!(
            (r.status, r.error()),
            (403, "administrator rights required".into()),
            "{method} {path}"
        );
    }
    let own = user("GET", "/api/v1/cdr", None).json();
    assert_eq!(ids(&own), ["101", "102"]);
    let own_csv = String::from_utf8(user("GET", "/api/v1/cdr.csv", None).body).expect("utf-8");
    assert_eq!(own_csv.lines().count(), 3, "{own_csv}");
    assert!(!own_csv.contains(",103,"), "{own_csv}");
    let mine = user("GET", "/api/v1/me/settings", None).json();
    assert_eq!(
        (
            mine["extension"].clone(),
            mine["forward_noanswer_secs"].clone()
        ),
        (json!("101"), json!(25))
    );
    let change = |body: Value| user("PUT", "/api/v1/me/settings", Some(body));
    let r = change(
        json!({"dnd": true, "forward_always": "+4921155", "forward_busy": null,
                          "forward_noanswer": null, "forward_noanswer_secs": 20}),
    );
    assert_eq!(
        (r.status, field(&r).as_deref()),
        (400, Some("forward_always"))
    );
    let r = change(
        json!({"extension": "102", "dnd": true, "forward_always": null,
                          "forward_busy": null, "forward_noanswer": null,
                          "forward_noanswer_secs": 20}),
    );
    assert_eq!(r.status, 403);
    let r = change(
        json!({"dnd": true, "forward_always": null, "forward_busy": "102",
                          "forward_noanswer": null, "forward_noanswer_secs": 20}),
    );
    assert_eq!(
        (r.status, r.json()["dnd"].as_bool()),
        (200, Some(true)),
        "{r:?}"
    );
    // What only an administrator sets stays as it was.
    let ext = admin("GET", "/api/v1/extensions/101", None).json();
    assert_eq!(
        (
            ext["settings"]["outbound_class"].clone(),
            ext["settings"]["clir"].clone(),
            ext["settings"]["pickup_group"].clone(),
            ext["settings"]["forward_busy"].clone()
        ),
        (json!("local"), json!(true), json!(3), json!("102"))
    );

    // Removal, and the audit log holds every change with who and from where.
    assert_eq!(admin("DELETE", "/api/v1/extensions/102", None).status, 204);
    assert_eq!(admin("DELETE", "/api/v1/extensions/102", None).status, 404);
    let audit = admin("GET", "/api/v1/audit?limit=500", None).json();
    let entries = audit.as_array().expect("entries");
    for action in [
        "extension.add",
        "extension.rename",
        "extension.call_settings",
        "extension.set_password",
        "extension.disable",
        "extension.enable",
        "extension.remove",
        "ring_group.add",
        "ring_group.set",
        "ring_group.remove",
        "site.set",
        "user.add",
        "user.role",
        "block.remove",
    ] {
        let e = entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action} in the audit log"));
        assert_eq!(e["source"], "127.0.0.1", "{action}");
        assert!(
            e["actor"].as_str().is_some_and(|a| a.starts_with("web:")),
            "{e}"
        );
    }
    let by_anna = entries
        .iter()
        .find(|e| e["action"] == "extension.call_settings" && e["actor"] == "web:anna")
        .expect("anna's change is audited");
    assert!(by_anna["detail"]
        .as_str()
        .is_some_and(|d| d.contains("dnd=on")));
    let older = admin(
        "GET",
        &format!("/api/v1/audit?before_id={}&limit=1", entries[0]["id"]),
        None,
    )
    .json();
    assert_eq!(older[0]["id"], entries[1]["id"]);
}

/// The UI is served over HTTPS under the strict CSP: the page, its modules, its icon.
#[test]
fn the_ui_is_served_with_the_strict_csp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    let page = d.https(Req::new("GET", "/"));
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").expect("CSP");
    assert!(csp.contains("script-src 'self'") && csp.contains("style-src 'self'"));
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = String::from_utf8(page.body).expect("utf-8");
    assert!(
        html.contains("<script type=\"module\" src=\"/ui/app.js\">"),
        "{html}"
    );
    for path in [
        "/ui/app.js",
        "/ui/api.js",
        "/ui/dom.js",
        "/ui/pages.js",
        "/ui/dashboard.js",
    ] {
        let r = d.https(Req::new("GET", path));
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(
            r.header("content-type"),
            Some("text/javascript; charset=utf-8")
        );
    }
    assert_eq!(d.https(Req::new("GET", "/ui/app.css")).status, 200);
    assert_eq!(d.https(Req::new("GET", "/ui/icon.svg")).status, 200);
    let missing = d.https(Req::new("GET", "/ui/nothing.js"));
    assert_eq!(
        (missing.status, missing.error()),
        (404, "no such endpoint".into())
    );
    // The whole dashboard (page, modules, styles) stays far below 150 KB.
    let total: usize = pbxd::web::pages::ASSETS.iter().map(|a| a.body.len()).sum();
    assert!(total < 150 * 1024, "{total} bytes");
}
