//! The GSM and SMS page's API against a real pbxd (no modem: `--hardware none`; the
//! module's status and received SMS are written through the store as the modem task
//! writes them): PIN/PUK stored sealed and never shown, a rejected PIN refused, the
//! inbox (read, delete), sending under pbxctl's checks and rate limit, roles and CSRF.

mod web_support;

use pbxd::secret::DeviceKey;
use pbxd::store::{GsmStatusRow, Store};
use serde_json::{json, Value};
use web_support::{admin_and_user, send, start, Req};

#[test]
fn pin_and_puk_are_sealed_never_shown_and_a_rejected_pin_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    let (root, anna) = admin_and_user(&d);

    let (status, v) = send(&d, &root, "GET", "/api/v1/gsm", None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["module"], Value::Null, "no modem: no status");
    assert_eq!(v["pin_stored"], false);
    assert_eq!(send(&d, &anna, "GET", "/api/v1/gsm", None).0, 403);
    assert_eq!(
        send(
            &d,
            &anna,
            "PUT",
            "/api/v1/gsm/pin",
            Some(json!({"pin": "1234"}))
        )
        .0,
        403
    );
    let r = d.https(
        Req::new("PUT", "/api/v1/gsm/pin")
            .json(json!({"pin": "1234"}))
            .cookie(&root.0),
    );
    assert_eq!(r.status, 403, "no CSRF token");

    // The PIN's form is pbxctl's check; nothing is stored on a refusal.
    let (status, v) = send(
        &d,
        &root,
        "PUT",
        "/api/v1/gsm/pin",
        Some(json!({"pin": "12a4"})),
    );
    assert_eq!((status, v["field"].clone()), (400, json!("pin")), "{v}");
    let (status, _) = send(
        &d,
        &root,
        "PUT",
        "/api/v1/gsm/pin",
        Some(json!({"pin": "4711"})),
    );
    assert_eq!(status, 204);
    let key = DeviceKey::load_or_create(dir.path()).expect("key");
    let stored = Store::open(dir.path())
        .expect("store")
        .gsm_settings()
        .expect("settings");
    let sealed = stored.pin_sealed.expect("sealed PIN");
    assert_eq!(key.open("sim-pin", &sealed).expect("opens"), "4711");

    // The modem task found the PIN wrong: the page says so with the attempts left.
    {
        let mut s = Store::open(dir.path()).expect("store");
        s.mark_gsm_pin_rejected(1_700_000_000).expect("reject");
        s.write_gsm_status(&GsmStatusRow {
            sim: "PIN needed".into(),
            registration: "not registered".into(),
            operator: None,
            signal_dbm: Some(-71),
            pin_left: Some(2),
            puk_left: Some(10),
            last_error: Some("the SIM rejected the PIN".into()),
            updated_at: 1_700_000_000,
        })
        .expect("status");
    }
    let (_, v) = send(&d, &root, "GET", "/api/v1/gsm", None);
    assert_eq!(v["pin_rejected"], true, "{v}");
    assert_eq!(v["module"]["pin_attempts_left"], 2);
    assert_eq!(v["module"]["signal_dbm"], -71);
    let text = v.to_string();
    assert!(!text.contains("4711") && !text.contains(&sealed), "{text}");
    // The same wrong PIN is never sent again; another one is taken.
    let (status, v) = send(
        &d,
        &root,
        "PUT",
        "/api/v1/gsm/pin",
        Some(json!({"pin": "4711"})),
    );
    assert_eq!((status, v["field"].clone()), (400, json!("pin")), "{v}");
    assert!(
        v["error"].as_str().unwrap_or("").contains("rejected"),
        "{v}"
    );
    let (status, _) = send(
        &d,
        &root,
        "PUT",
        "/api/v1/gsm/pin",
        Some(json!({"pin": "0815"})),
    );
    assert_eq!(status, 204);
    let (_, v) = send(&d, &root, "GET", "/api/v1/gsm", None);
    assert_eq!(v["pin_rejected"], false);

    // PUK: each field named on its own error.
    let (status, v) = send(
        &d,
        &root,
        "PUT",
        "/api/v1/gsm/puk",
        Some(json!({"puk": "123", "new_pin": "1234"})),
    );
    assert_eq!((status, v["field"].clone()), (400, json!("puk")), "{v}");
    let (status, v) = send(
        &d,
        &root,
        "PUT",
        "/api/v1/gsm/puk",
        Some(json!({"puk": "12345678", "new_pin": "1"})),
    );
    assert_eq!((status, v["field"].clone()), (400, json!("new_pin")), "{v}");
    let (status, _) = send(
        &d,
        &root,
        "PUT",
        "/api/v1/gsm/puk",
        Some(json!({"puk": "12345678", "new_pin": "2468"})),
    );
    assert_eq!(status, 204);
    let (_, v) = send(&d, &root, "GET", "/api/v1/gsm", None);
    assert_eq!(v["puk_stored"], true);
    assert!(!v.to_string().contains("12345678"));

    let (_, audit) = send(&d, &root, "GET", "/api/v1/audit", None);
    let audit = audit.to_string();
    assert!(
        audit.contains("gsm.pin") && audit.contains("gsm.puk"),
        "{audit}"
    );
    for secret in ["4711", "0815", "12345678", "2468"] {
        assert!(!audit.contains(secret), "audit shows {secret}");
    }
}

#[test]
fn sms_inbox_read_delete_and_sending_under_the_shared_rate_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    let (root, anna) = admin_and_user(&d);
    let inbox = Store::open(dir.path())
        .expect("store")
        .insert_received_sms(
            "+491701234567",
            "Lieferung kommt um 10 Uhr",
            1,
            1_700_000_000,
        )
        .expect("received");

    let (status, v) = send(&d, &root, "GET", "/api/v1/sms", None);
    assert_eq!(status, 200);
    assert_eq!(v[0]["text"], "Lieferung kommt um 10 Uhr");
    assert_eq!(v[0]["read"], false);
    assert_eq!(
        send(&d, &root, "GET", "/api/v1/gsm", None).1["unread_sms"],
        1
    );
    assert_eq!(
        send(&d, &anna, "GET", "/api/v1/sms", None).0,
        403,
        "the box's inbox"
    );
    let (status, _) = send(
        &d,
        &root,
        "POST",
        &format!("/api/v1/sms/{inbox}/read"),
        None,
    );
    assert_eq!(status, 204);
    assert_eq!(
        send(&d, &root, "GET", "/api/v1/sms", None).1[0]["read"],
        true
    );
    assert_eq!(
        send(&d, &root, "POST", "/api/v1/sms/99999/read", None).0,
        404
    );

    // Sending: pbxctl's checks, each error naming its field.
    let (status, v) = send(
        &d,
        &root,
        "POST",
        "/api/v1/sms",
        Some(json!({"number": "abc", "text": "x"})),
    );
    assert_eq!((status, v["field"].clone()), (400, json!("number")), "{v}");
    let (status, v) = send(
        &d,
        &root,
        "POST",
        "/api/v1/sms",
        Some(json!({"number": "+491701234567", "text": ""})),
    );
    assert_eq!((status, v["field"].clone()), (400, json!("text")), "{v}");
    // Web SMS is a user feature: anna may send; 161 characters are two parts.
    let (status, v) = send(
        &d,
        &anna,
        "POST",
        "/api/v1/sms",
        Some(json!({"number": "+491701234567", "text": "a".repeat(161)})),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["parts"], 2);
    let queued = v["id"].as_i64().expect("id");
    // A queued SMS cannot be deleted under the modem task.
    let (status, v) = send(&d, &root, "DELETE", &format!("/api/v1/sms/{queued}"), None);
    assert_eq!(status, 409, "{v}");

    // The store's limit (default per minute) is the same for pbxctl and the web.
    let mut sent = 1;
    let refused = loop {
        let (status, v) = send(
            &d,
            &root,
            "POST",
            "/api/v1/sms",
            Some(json!({"number": "+491701234567", "text": format!("test {sent}")})),
        );
        if status != 201 {
            break (status, v);
        }
        sent += 1;
        assert!(sent <= 100, "no rate limit after 100 SMS");
    };
    assert_eq!(refused.0, 409, "{}", refused.1);
    assert!(
        refused.1["error"]
            .as_str()
            .unwrap_or("")
            .contains("rate limit"),
        "{}",
        refused.1
    );
    let limits = Store::open(dir.path())
        .expect("store")
        .gsm_settings()
        .expect("settings")
        .sms_limits;
    assert_eq!(sent, limits.per_minute, "refused exactly at the limit");

    // Delete from the inbox; audited.
    assert_eq!(
        send(&d, &anna, "DELETE", &format!("/api/v1/sms/{inbox}"), None).0,
        403
    );
    assert_eq!(
        send(&d, &root, "DELETE", &format!("/api/v1/sms/{inbox}"), None).0,
        204
    );
    assert_eq!(
        send(&d, &root, "DELETE", &format!("/api/v1/sms/{inbox}"), None).0,
        404
    );
    let (_, audit) = send(&d, &root, "GET", "/api/v1/audit", None);
    let audit = audit.to_string();
    assert!(
        audit.contains("sms.send") && audit.contains("sms.delete"),
        "{audit}"
    );
}
