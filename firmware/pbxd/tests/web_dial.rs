//! Click-to-dial through the HTTPS API against a real pbxd (no phones: the refusals
//! and the API's own checks; the calls themselves are in tests/e2e/tests/click_to_dial.rs).
//! A refused number answers with its reason and is in the call list as the user's
//! blocked attempt; an extension with no phone registered is refused naming it; an
//! account without an extension, a missing CSRF token, a bad number and an eleventh
//! request in a minute are refused with clear errors; every attempt is audited.

mod web_support;

use std::time::Duration;

use serde_json::{json, Value};
use web_support::{admin_and_user, audit_text, send, start, Daemon, Req, Session};

fn dial(d: &Daemon, s: &Session, number: &str) -> (u16, Value) {
    send(
        d,
        s,
        "POST",
        "/api/v1/me/dial",
        Some(json!({ "number": number })),
    )
}

/// The session's call list once it has `n` records (written behind the call's end).
fn calls(d: &Daemon, s: &Session, n: usize) -> Vec<Value> {
    let until = pbxd::clock::now() + Duration::from_secs(10);
    loop {
        let (status, v) = send(d, s, "GET", "/api/v1/cdr", None);
        assert_eq!(status, 200, "{v}");
        let records = v["records"].as_array().expect("records").clone();
        if records.len() >= n || pbxd::clock::now() > until {
            return records;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn refusals_come_back_with_their_reason_and_every_attempt_is_recorded_and_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    let (root, anna) = admin_and_user(&d);

    // A premium-rate number: blocked by the dial plan before anything rings.
    let (status, v) = dial(&d, &anna, "0900 123456");
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["field"], "number");
    let why = v["error"].as_str().expect("error");
    assert!(why.contains("0900"), "{why}");
    // The same as +49 is the same range.
    let (status, v) = dial(&d, &anna, "+49 900 123456");
    assert_eq!(status, 403, "{v}");

    // No trunk configured: an external number has no way out, and says so.
    let (status, v) = dial(&d, &anna, "0211 123456");
    assert_eq!(status, 409, "{v}");
    let why = v["error"].as_str().expect("error");
    assert!(why.contains("no trunk"), "{why}");

    // An internal number, but anna's extension has no phone registered: nothing rings.
    let (status, v) = send(
        &d,
        &root,
        "POST",
        "/api/v1/extensions",
        Some(json!({"number": "102", "password": "sip-secret-102"})),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = dial(&d, &anna, "102");
    assert_eq!(status, 409, "{v}");
    let why = v["error"].as_str().expect("error");
    assert!(why.contains("no phone of extension 101"), "{why}");

    // The attempts are anna's calls, refused.
    let records = calls(&d, &anna, 4);
    assert_eq!(records.len(), 4, "{records:?}");
    let blocked: Vec<&Value> = records
        .iter()
        .filter(|r| r["disposition"] == "blocked")
        .collect();
    assert_eq!(blocked.len(), 2, "{records:?}");
    assert!(blocked.iter().all(|r| r["caller"] == "101"), "{blocked:?}");
    assert!(
        blocked.iter().any(|r| r["dialled"] == "0900123456"),
        "{blocked:?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["dialled"] == "0211123456" && r["disposition"] == "failed"),
        "{records:?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["dialled"] == "102" && r["answer_ms"].is_null()),
        "{records:?}"
    );

    // Not a number: named field, nothing recorded.
    for bad in ["", "12a4", "sip:102@example", "*31#0211"] {
        let (status, v) = dial(&d, &anna, bad);
        assert_eq!(status, 400, "{bad:?}: {v}");
        assert_eq!(v["field"], "number", "{bad:?}");
    }
    let (status, v) = send(
        &d,
        &anna,
        "POST",
        "/api/v1/me/dial",
        Some(json!({ "number": "102", "extra": 1 })),
    );
    assert_eq!(status, 400, "{v}");

    // Without the CSRF token: 403 before anything else.
    let r = d.https(
        Req::new("POST", "/api/v1/me/dial")
            .cookie(&anna.0)
            .json(json!({ "number": "0211123456" })),
    );
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["field"], "X-CSRF-Token");
    // Not logged in.
    let r = d.https(Req::new("POST", "/api/v1/me/dial").json(json!({ "number": "102" })));
    assert_eq!(r.status, 401, "{r:?}");

    // root has no extension to call from.
    let (status, v) = dial(&d, &root, "0211123456");
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"].as_str().expect("error").contains("no extension"),
        "{v}"
    );

    // Audited: who, what, the outcome.
    let audit = audit_text(&d, &root);
    assert!(audit.contains("click_to_dial"), "{audit}");
    assert!(audit.contains("101 -> 0900123456: refused"), "{audit}");
}

#[test]
fn ten_requests_a_minute_per_account_then_429_with_retry_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    let (_root, anna) = admin_and_user(&d);
    for i in 0..10 {
        let (status, v) = dial(&d, &anna, "0900123456");
        assert_eq!(status, 403, "request {i}: {v}");
    }
    let r = d.https(
        Req::new("POST", "/api/v1/me/dial")
            .cookie(&anna.0)
            .csrf(&anna.1)
            .json(json!({ "number": "0900123456" })),
    );
    assert_eq!(r.status, 429, "{r:?}");
    let secs: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&secs), "{secs}");
}
