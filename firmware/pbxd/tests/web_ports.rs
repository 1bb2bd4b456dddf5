//! The Analog ports page's API against a real pbxd with emulated ports (`--hardware
//! sim`): administrators only, CSRF, `pbxctl port set`'s validation with field-named
//! errors and nothing saved on failure, live state from the ports themselves, changes
//! applied while pbxd runs (a US dial tone after switching the country), audited.

mod web_support;

use std::time::Duration;

use serde_json::{json, Value};
use web_support::{admin_and_user, audit_text, send, start_hw, Daemon, Req, Session};

fn ports(d: &Daemon, s: &Session) -> Value {
    let (status, v) = send(d, s, "GET", "/api/v1/ports", None);
    assert_eq!(status, 200, "{v}");
    v
}

fn port(v: &Value, n: u64) -> Value {
    v["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["port"] == n)
        .cloned()
        .unwrap_or_else(|| panic!("port {n} in {v}"))
}

/// Polls until `want` holds for port `n` (bounded: 100 tries, 100 ms apart); returns it.
fn port_until(d: &Daemon, s: &Session, n: u64, want: impl Fn(&Value) -> bool) -> Value {
    let mut p = Value::Null;
    for _ in 0..100 {
        p = port(&ports(d, s), n);
        if want(&p) {
            return p;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("port {n} never got there: {p}");
}

/// The level of `hz` in port `n`'s earpiece, in dB relative to all it hears.
fn hear(d: &Daemon, n: u32, hz: u32) -> f64 {
    let a = d.sim(&format!("hear {n} {hz}"));
    a.strip_prefix("hear=")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("hear answer {a:?}"))
}

#[test]
fn ports_are_admin_only_validated_like_pbxctl_live_and_applied_while_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start_hw(dir.path(), "127.0.0.1:0", "sim", &[]);
    let (root, anna) = admin_and_user(&d);

    // Roles and CSRF.
    let (status, _) = send(&d, &anna, "GET", "/api/v1/ports", None);
    assert_eq!(status, 403);
    let (status, _) = send(
        &d,
        &anna,
        "PUT",
        "/api/v1/ports/1",
        Some(json!({"name": "x"})),
    );
    assert_eq!(status, 403);
    let r = d.https(
        Req::new("PUT", "/api/v1/ports/1")
            .json(json!({"name": "x"}))
            .cookie(&root.0),
    );
    assert_eq!(r.status, 403, "no CSRF token");

    // Two emulated ports with their live state and the defaults in force.
    let v = ports(&d, &root);
    assert_eq!(
        v["countries"],
        json!(["DE", "AT", "CH", "GB", "FR", "NL", "US"])
    );
    assert_eq!(v["cid_modes"], json!(["off", "bell202", "v23", "dtmf"]));
    let p1 = port_until(&d, &root, 1, |p| p["live"]["hook"] == "on");
    assert_eq!(p1["country"], Value::Null);
    assert_eq!(p1["effective_country"], "DE");
    assert_eq!(p1["effective_cid"], "v23");
    assert_eq!(p1["call_waiting"], true);
    assert_eq!(p1["live"]["faulty"], Value::Null);
    let number1 = p1["live"]["number"].as_str().expect("number").to_owned();
    port(&ports(&d, &root), 2);

    // Lift the handset of port 1: the page shows it off hook with dial tone.
    d.sim("offhook 1");
    let p1 = port_until(&d, &root, 1, |p| p["live"]["hook"] == "off");
    assert_eq!(p1["live"]["call"], "dial tone", "{p1}");
    d.sim("onhook 1");
    port_until(&d, &root, 1, |p| p["live"]["hook"] == "on");

    // pbxctl's validation, each error naming its field; nothing saved.
    for (body, field, code) in [
        (json!({"country": "XX"}), "country", 400),
        (json!({"cid": "fsk"}), "cid", 400),
        (json!({"number": "12a"}), "number", 400),
        (json!({"name": "bad\u{7}name"}), "name", 400),
        (json!({"country": "US", "number": "101"}), "", 409),
    ] {
        let (status, v) = send(&d, &root, "PUT", "/api/v1/ports/1", Some(body.clone()));
        assert_eq!(status, code, "{body}: {v}");
        if !field.is_empty() {
            assert_eq!(v["field"], field, "{body}: {v}");
        }
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    assert!(v_error(&d, &root, "/api/v1/ports/0").contains("not a port number"));
    assert!(v_error(&d, &root, "/api/v1/ports/65").contains("not a port number"));
    let (status, _) = send(
        &d,
        &root,
        "PUT",
        "/api/v1/ports/1",
        Some(json!({"volume": 3})),
    );
    assert_eq!(status, 400, "unknown field");
    let p1 = port(&ports(&d, &root), 1);
    assert_eq!(p1["country"], Value::Null, "nothing half-saved: {p1}");
    assert_eq!(p1["number"], Value::Null);

    // A change: only the fields sent change; it is audited.
    let (status, v) = send(
        &d,
        &root,
        "PUT",
        "/api/v1/ports/1",
        Some(json!({"name": "Lager", "country": "us", "call_waiting": false})),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["name"], "Lager");
    assert_eq!(v["country"], "US");
    assert_eq!(v["effective_cid"], "bell202", "the country's caller ID");
    assert_eq!(v["call_waiting"], false);
    let (status, v) = send(
        &d,
        &root,
        "PUT",
        "/api/v1/ports/1",
        Some(json!({"cid": "dtmf"})),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["name"].as_str(), v["cid"].as_str()),
        (Some("Lager"), Some("dtmf"))
    );
    let audit = audit_text(&d, &root);
    assert!(audit.contains("port.set"), "{audit}");
    assert!(audit.contains("web:root"), "{audit}");
    assert!(audit.contains("country=US"), "{audit}");

    // Applied while pbxd runs: lifting port 1 now gives the US dial tone (350 + 440 Hz)
    // instead of Germany's 425 Hz (settings are polled every 2 s).
    let mut us = false;
    for _ in 0..15 {
        if us {
            break;
        }
        d.sim("offhook 1");
        std::thread::sleep(Duration::from_millis(400));
        us = hear(&d, 1, 350) > -6.0 && hear(&d, 1, 425) < -15.0;
        d.sim("onhook 1");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(us, "port 1 never played the US dial tone");

    // Back to the defaults; the number change is stored (used at the next start).
    let (status, v) = send(
        &d,
        &root,
        "PUT",
        "/api/v1/ports/1",
        Some(json!({"country": "", "cid": "default", "name": "", "number": "77"})),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["country"].clone(), v["cid"].clone(), v["name"].clone()),
        (Value::Null, Value::Null, Value::Null)
    );
    assert_eq!(v["number"], "77");
    assert_eq!(
        v["live"]["number"], number1,
        "the running port keeps its number"
    );
}

fn v_error(d: &Daemon, s: &Session, path: &str) -> String {
    let (status, v) = send(d, s, "PUT", path, Some(json!({"name": "x"})));
    assert_eq!(status, 404, "{v}");
    v["error"].as_str().expect("error").to_owned()
}
