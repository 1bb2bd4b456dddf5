//! The Firmware page's upload against a real pbxd: admin only, CSRF, the upload streamed
//! into DATA/tmp and always removed, `pbxctl update install`'s policy (maintenance window
//! unless forced), and the installer's failure shown as the job's last error.
//!
//! No RAUC service runs under this harness (tests/update_rauc.rs drives a real one with
//! real bundles): the install here fails at the D-Bus connection, which is the path an
//! unreachable or refusing RAUC takes too.

mod web_support;

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use web_support::{admin_and_user_on, start, start_with, Daemon, Req, Session};

fn admin_and_user(d: &Daemon) -> (Session, Session) {
    admin_and_user_on(d, None)
}

fn upload(d: &Daemon, s: &Session, query: &str, body: &str, ctype: &str) -> (u16, Value) {
    let path = format!("/api/v1/firmware{query}");
    let r = d.https(
        Req::new("POST", &path)
            .raw(body, ctype)
            .cookie(&s.0)
            .csrf(&s.1),
    );
    let v = if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    };
    (r.status, v)
}

fn firmware(d: &Daemon, s: &Session) -> Value {
    let r = d.https(Req::new("GET", "/api/v1/firmware").cookie(&s.0));
    assert_eq!(r.status, 200, "{r:?}");
    r.json()
}

fn leftovers(data: &Path) -> Vec<String> {
    std::fs::read_dir(data.join("tmp"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn upload_is_admin_only_and_refused_where_updates_are_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    let (root, anna) = admin_and_user(&d);

    let v = firmware(&d, &root);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["backend"], "none");
    assert_eq!(v["status_error"], "updates are disabled on this system");
    assert_eq!(v["job"]["state"], "");
    let r = d.https(Req::new("GET", "/api/v1/firmware").cookie(&anna.0));
    assert_eq!(r.status, 403);

    assert_eq!(
        upload(&d, &anna, "", "bundle", "application/octet-stream").0,
        403
    );
    let r = d.https(
        Req::new("POST", "/api/v1/firmware")
            .raw("bundle", "application/octet-stream")
            .cookie(&root.0),
    );
    assert_eq!(r.status, 403, "no CSRF token: {r:?}");
    let (status, v) = upload(&d, &root, "", "bundle", "text/plain");
    assert_eq!((status, v["field"].clone()), (400, json!("file")), "{v}");
    let (status, v) = upload(
        &d,
        &root,
        "?force=maybe",
        "bundle",
        "application/octet-stream",
    );
    assert_eq!(status, 400, "{v}");
    let (status, v) = upload(&d, &root, "", "bundle", "application/octet-stream");
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"], "updates are disabled on this system");
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn upload_follows_the_install_policy_and_shows_the_installers_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A one-minute window twelve hours away (the test rig runs in UTC): never now.
    let now = time::OffsetDateTime::now_utc() + time::Duration::hours(12);
    let end = now + time::Duration::minutes(1);
    let window = format!(
        "{:02}:{:02}-{:02}:{:02}",
        now.hour(),
        now.minute(),
        end.hour(),
        end.minute()
    );
    let bus = format!("unix:path={}", dir.path().join("no-bus").display());
    let d = start_with(
        dir.path(),
        "127.0.0.1:0",
        &[
            "--update-backend",
            "rauc",
            "--rauc-dbus-address",
            &bus,
            "--maintenance-window",
            &window,
            // The health gate cannot reach RAUC either: never reboot the test machine.
            "--reboot-command",
            "true",
            "--no-auto-switch",
        ],
    );
    let (root, _) = admin_and_user(&d);
    let v = firmware(&d, &root);
    assert_eq!(v["backend"], "rauc");
    assert_eq!(v["maintenance_window"], window.as_str());
    assert!(
        v["status_error"]
            .as_str()
            .unwrap_or("")
            .contains("update service"),
        "{v}"
    );

    // Outside the window: refused unless forced, as `pbxctl update install`.
    let (status, v) = upload(&d, &root, "", "not a bundle", "application/octet-stream");
    assert_eq!(status, 409, "{v}");
    let msg = v["error"].as_str().unwrap_or("");
    assert!(msg.starts_with("update refused:"), "{msg}");
    assert!(msg.contains("maintenance window"), "{msg}");
    assert!(leftovers(dir.path()).is_empty());

    let (status, v) = upload(
        &d,
        &root,
        "?force=true",
        "not a bundle",
        "application/octet-stream",
    );
    assert_eq!(status, 202, "{v}");
    assert_eq!(
        v["job"]["state"],
        Value::Null,
        "202 carries the job itself: {v}"
    );
    assert_eq!(v["state"], "installing");
    let mut job = Value::Null;
    for _ in 0..100 {
        job = firmware(&d, &root)["job"].clone();
        if job["state"] != "installing" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("update service"),
        "{job}"
    );
    assert!(job["finished_at"].is_i64());
    assert!(leftovers(dir.path()).is_empty(), "the upload is removed");
    let r = d.https(Req::new("GET", "/api/v1/audit").cookie(&root.0));
    assert!(r.json().to_string().contains("firmware.install"));
}
