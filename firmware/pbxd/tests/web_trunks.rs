//! The Trunks and numbers page's API against a real pbxd: administrators only, CSRF,
//! pbxctl's validation with field-named errors, the password write-only and sealed as
//! pbxctl seals it, the live status pbxd writes, numbers and the site-wide settings.

mod web_support;

use pbxd::secret::DeviceKey;
use pbxd::store::{Store, TrunkStatusRow};
use serde_json::{json, Value};
use web_support::{admin_and_user, audit_text, send, start, Req};

const PW: &str = "Provider-Secret-77";

#[test]
fn trunks_are_admin_only_validated_like_pbxctl_and_never_show_the_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    let (root, anna) = admin_and_user(&d);

    // Roles and CSRF.
    for (m, p) in [
        ("GET", "/api/v1/trunks"),
        ("GET", "/api/v1/trunk-numbers"),
        ("GET", "/api/v1/trunk-settings"),
    ] {
        let (status, v) = send(&d, &anna, m, p, None);
        assert_eq!(status, 403, "{m} {p} as a user: {v}");
    }
    let (status, _) = send(
        &d,
        &anna,
        "POST",
        "/api/v1/trunks",
        Some(json!({"name": "x", "registrar": "sip.example.net", "user": "u", "password": PW})),
    );
    assert_eq!(status, 403);
    let r = d.https(
        Req::new("POST", "/api/v1/trunks")
            .json(json!({"name": "main", "registrar": "sip.example.net", "user": "u", "password": PW}))
            .cookie(&root.0),
    );
    assert_eq!(r.status, 403, "no CSRF token: {r:?}");
    assert_eq!(r.json()["field"], "X-CSRF-Token");

    // pbxctl's validation, each error naming its field.
    struct Case {
        body: Value,
        field: &'static str,
        msg: &'static str,
    }
    let cases = [
        Case {
            body: json!({"name": "Main!", "registrar": "sip.example.net", "user": "u", "password": PW}),
            field: "name",
            msg: "upper case and punctuation",
        },
        Case {
            body: json!({"name": "main", "registrar": "bad host name", "user": "u", "password": PW}),
            field: "registrar",
            msg: "spaces in the registrar",
        },
        Case {
            body: json!({"name": "main", "registrar": "sip.example.net", "user": "u", "password": PW, "max_calls": 0}),
            field: "max_calls",
            msg: "zero calls",
        },
        Case {
            body: json!({"name": "main", "registrar": "sip.example.net", "user": "u", "password": PW, "register_secs": 10}),
            field: "register_secs",
            msg: "interval too short",
        },
        Case {
            body: json!({"name": "main", "registrar": "sip.example.net", "user": "u", "password": PW, "transport": "sctp"}),
            field: "transport",
            msg: "unknown transport",
        },
        Case {
            body: json!({"name": "main", "registrar": "sip.example.net", "user": "u"}),
            field: "password",
            msg: "no password",
        },
        Case {
            body: json!({"name": "main", "registrar": "sip.example.net", "user": "u", "password": "a\nb"}),
            field: "password",
            msg: "line break in the password",
        },
        Case {
            body: json!({"name": "main", "registrar": "sip.example.net", "user": "u", "password": PW, "domain": "example.net:5060"}),
            field: "domain",
            msg: "a domain with a port",
        },
    ];
    for c in &cases {
        let (status, v) = send(&d, &root, "POST", "/api/v1/trunks", Some(c.body.clone()));
        assert_eq!(status, 400, "{}: {v}", c.msg);
        assert_eq!(v["field"], c.field, "{}: {v}", c.msg);
    }
    let (_, v) = send(&d, &root, "GET", "/api/v1/trunks", None);
    assert_eq!(v, json!([]), "nothing half-saved");

    // Add: defaults as pbxctl's (domain from the registrar, auth user = SIP-ID, udp).
    let (status, v) = send(
        &d,
        &root,
        "POST",
        "/api/v1/trunks",
        Some(
            json!({"name": "main", "registrar": "sip.example.net:5070", "user": "4921112345", "password": PW}),
        ),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["domain"], "sip.example.net");
    assert_eq!(v["auth_user"], "4921112345");
    assert_eq!(v["transport"], "udp");
    assert_eq!(v["srtp"], "off");
    assert_eq!(v["register_secs"], 600);
    assert_eq!(v["max_calls"], 2);
    assert_eq!(v["password_set"], true);
    let (status, _) = send(
        &d,
        &root,
        "POST",
        "/api/v1/trunks",
        Some(
            json!({"name": "main", "registrar": "other.example.net", "user": "u", "password": PW}),
        ),
    );
    assert_eq!(status, 409, "duplicate name");

    // Sealed as pbxctl seals it: the daemon's registration client can open it.
    let key = DeviceKey::load_or_create(dir.path()).expect("device key");
    let sealed = || {
        Store::open(dir.path())
            .expect("store")
            .get_trunk("main")
            .expect("read")
            .expect("stored")
            .password_sealed
    };
    let first = sealed();
    assert_eq!(key.open("trunk:main", &first).expect("opens"), PW);

    // Change without a password keeps it; with one replaces it. No rename.
    let change = json!({"registrar": "sip.example.net", "user": "4921112345", "auth_user": "auth-77",
        "transport": "tls", "srtp": "mandatory", "register_secs": 300, "max_calls": 4, "enabled": true});
    let (status, v) = send(
        &d,
        &root,
        "PUT",
        "/api/v1/trunks/main",
        Some(change.clone()),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["transport"], "tls");
    assert_eq!(v["auth_user"], "auth-77");
    assert_eq!(v["max_calls"], 4);
    assert_eq!(sealed(), first, "no password given: kept");
    let mut with_pw = change.clone();
    with_pw["password"] = json!("New-Provider-Secret");
    let (status, _) = send(&d, &root, "PUT", "/api/v1/trunks/main", Some(with_pw));
    assert_eq!(status, 200);
    assert_eq!(
        key.open("trunk:main", &sealed()).expect("opens"),
        "New-Provider-Secret"
    );
    let mut rename = change.clone();
    rename["name"] = json!("other");
    let (status, v) = send(&d, &root, "PUT", "/api/v1/trunks/main", Some(rename));
    assert_eq!((status, v["field"].clone()), (400, json!("name")));
    let (status, _) = send(&d, &root, "PUT", "/api/v1/trunks/nope", Some(change));
    assert_eq!(status, 404);

    // The password is never in an answer or the audit log, not even sealed.
    let (_, list) = send(&d, &root, "GET", "/api/v1/trunks", None);
    let text = list.to_string();
    for secret in [PW, "New-Provider-Secret", first.as_str(), sealed().as_str()] {
        assert!(!text.contains(secret), "list shows a secret: {text}");
    }
    assert!(list[0].get("password").is_none());
    let audit = audit_text(&d, &root);
    assert!(
        audit.contains("trunk.add") && audit.contains("trunk.set"),
        "{audit}"
    );
    assert!(audit.contains("password=changed"), "{audit}");
    assert!(!audit.contains(PW) && !audit.contains("New-Provider-Secret"));

    // Live status: what pbxd's registration client writes shows in the list.
    Store::open(dir.path())
        .expect("store")
        .set_trunk_status(&TrunkStatusRow {
            name: "main".into(),
            state: "auth-failed".into(),
            reason: "403 Forbidden from the registrar".into(),
            registered_until: None,
            public_addr: Some("203.0.113.7:5060".into()),
            since: 1_700_000_000,
            updated_at: 1_700_000_001,
        })
        .expect("status");
    let (_, list) = send(&d, &root, "GET", "/api/v1/trunks", None);
    assert_eq!(list[0]["status"]["state"], "auth-failed", "{list}");
    assert_eq!(list[0]["status"]["public_addr"], "203.0.113.7:5060");

    // Remove.
    let (status, _) = send(&d, &root, "DELETE", "/api/v1/trunks/main", None);
    assert_eq!(status, 204);
    let (status, _) = send(&d, &root, "DELETE", "/api/v1/trunks/main", None);
    assert_eq!(status, 404);
    assert!(audit_text(&d, &root).contains("trunk.remove"));
}

#[test]
fn numbers_and_site_settings_are_validated_and_saved_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    let (root, anna) = admin_and_user(&d);
    let (status, _) = send(
        &d,
        &root,
        "POST",
        "/api/v1/trunks",
        Some(
            json!({"name": "main", "registrar": "127.0.0.1:9", "user": "4921112345", "password": PW}),
        ),
    );
    assert_eq!(status, 201);

    struct Case {
        body: Value,
        field: &'static str,
        msg: &'static str,
    }
    let cases = [
        Case {
            body: json!({"trunk": "nope", "number": "+4921112345"}),
            field: "trunk",
            msg: "unknown trunk",
        },
        Case {
            body: json!({"trunk": "main", "number": "02112345"}),
            field: "number",
            msg: "not E.164",
        },
        Case {
            body: json!({"trunk": "main", "number": "+4921112345", "destination": "10a"}),
            field: "destination",
            msg: "destination not a number",
        },
        Case {
            body: json!({"trunk": "main", "number": "+4921112345", "callers": ["101", "x"]}),
            field: "callers",
            msg: "a caller that is no extension",
        },
    ];
    for c in &cases {
        let (status, v) = send(
            &d,
            &root,
            "POST",
            "/api/v1/trunk-numbers",
            Some(c.body.clone()),
        );
        assert_eq!(status, 400, "{}: {v}", c.msg);
        assert_eq!(v["field"], c.field, "{}: {v}", c.msg);
    }
    let (status, v) = send(
        &d,
        &root,
        "POST",
        "/api/v1/trunk-numbers",
        Some(
            json!({"trunk": "main", "number": "+4921112345", "destination": "101", "callers": ["101"], "is_default": true}),
        ),
    );
    assert_eq!(status, 201, "{v}");
    let (status, _) = send(
        &d,
        &root,
        "POST",
        "/api/v1/trunk-numbers",
        Some(json!({"trunk": "main", "number": "+4921112340", "callers": ["*"]})),
    );
    assert_eq!(status, 201);
    let (_, list) = send(&d, &root, "GET", "/api/v1/trunk-numbers", None);
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    assert_eq!(list[1]["number"], "+4921112345");
    assert_eq!(list[1]["destination"], "101");
    assert_eq!(list[1]["is_default"], true);
    // The daemon's routing reads the same rows: 101 shows its own number.
    let cid = Store::open(dir.path())
        .expect("store")
        .caller_id_for("main", "101")
        .expect("caller id");
    assert_eq!(cid.as_deref(), Some("+4921112345"));
    let (status, _) = send(
        &d,
        &anna,
        "DELETE",
        "/api/v1/trunk-numbers/+4921112340",
        None,
    );
    assert_eq!(status, 403);
    let (status, _) = send(
        &d,
        &root,
        "DELETE",
        "/api/v1/trunk-numbers/+4921112340",
        None,
    );
    assert_eq!(status, 204);
    let (status, _) = send(
        &d,
        &root,
        "DELETE",
        "/api/v1/trunk-numbers/+4921112340",
        None,
    );
    assert_eq!(status, 404);

    // Site-wide settings: defaults, a bad value names its field and saves nothing.
    let (status, v) = send(&d, &root, "GET", "/api/v1/trunk-settings", None);
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"emergency": {"caller_id": null, "address": null},
               "toll_fraud": {"enabled": true, "calls_per_minute": 5, "user_concurrent": 1}})
    );
    let good = json!({"emergency": {"caller_id": "+4921112340", "address": "Königsallee 1, 40212 Düsseldorf"},
                      "toll_fraud": {"enabled": true, "calls_per_minute": 3, "user_concurrent": 2}});
    let mut bad_limit = good.clone();
    bad_limit["toll_fraud"]["calls_per_minute"] = json!(0);
    let (status, v) = send(&d, &root, "PUT", "/api/v1/trunk-settings", Some(bad_limit));
    assert_eq!(
        (status, v["field"].clone()),
        (400, json!("toll_fraud.calls_per_minute")),
        "{v}"
    );
    let mut bad_cid = good.clone();
    bad_cid["emergency"]["caller_id"] = json!("112");
    let (status, v) = send(&d, &root, "PUT", "/api/v1/trunk-settings", Some(bad_cid));
    assert_eq!(
        (status, v["field"].clone()),
        (400, json!("emergency.caller_id")),
        "{v}"
    );
    let (_, v) = send(&d, &root, "GET", "/api/v1/trunk-settings", None);
    assert_eq!(
        v["emergency"]["caller_id"],
        Value::Null,
        "nothing half-saved"
    );
    assert_eq!(v["toll_fraud"]["calls_per_minute"], 5);
    let (status, v) = send(
        &d,
        &root,
        "PUT",
        "/api/v1/trunk-settings",
        Some(good.clone()),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, good);
    let e = Store::open(dir.path())
        .expect("store")
        .emergency_settings()
        .expect("settings");
    assert_eq!(e.caller_id.as_deref(), Some("+4921112340"));
    let audit = audit_text(&d, &root);
    for action in ["number.add", "number.remove", "site.emergency", "fraud.set"] {
        assert!(audit.contains(action), "{action} audited: {audit}");
    }
}
