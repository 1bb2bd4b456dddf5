//! Administration over the HTTPS API against a real pbxd: alerts, backup and restore
//! (own box, damaged, foreign, body limit), deleting accounts, the UI language, the
//! System page and the support bundle (unpacked with the system's tar).

mod web_support;

use pbxd::secret::DeviceKey;
use pbxd::store::{AuditCtx, Severity, Store};
use ring::digest;
use serde_json::{json, Value};
use web_support::{admin_and_user, start, Daemon, Req, ANNA_PW, ROOT_PW};

const BY: AuditCtx<'static> = AuditCtx {
    actor: "test",
    source: "test",
    now_unix: 1_700_000_000,
};

fn audit_actions(d: &Daemon, root: &(String, String)) -> Vec<String> {
    let r = d.https(Req::new("GET", "/api/v1/audit").cookie(&root.0));
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    let items = v
        .get("entries")
        .or_else(|| v.get("items"))
        .cloned()
        .unwrap_or(v);
    items
        .as_array()
        .expect("audit entries")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn alerts_are_listed_most_severe_first_shown_live_and_dismissed_by_admins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    let (root, anna) = admin_and_user(&d);
    {
        // Raised the way features raise them: through the store, beside the daemon.
        let mut s = Store::open(dir.path()).expect("store");
        s.raise_alert(
            "trunk:main:balance",
            Severity::Warning,
            "prepaid balance exhausted",
            100,
        )
        .expect("raise");
        s.raise_alert(
            "gsm:no-sim",
            Severity::Critical,
            "no SIM: no mobile emergency fallback",
            90,
        )
        .expect("raise");
        s.raise_alert("old", Severity::Info, "gone", 50)
            .expect("raise");
        s.clear_alert("old", 60).expect("clear");
    }
    let r = d.https(Req::new("GET", "/api/v1/alerts").cookie(&root.0));
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    let keys: Vec<&str> = v["open"]
        .as_array()
        .expect("open")
        .iter()
        .map(|a| a["key"].as_str().expect("key"))
        .collect();
    assert_eq!(keys, ["gsm:no-sim", "trunk:main:balance"]);
    assert_eq!(v["open"][0]["severity"], "critical");
    assert_eq!(v["recent"].as_array().expect("recent").len(), 3);

    let status = d
        .https(Req::new("GET", "/api/v1/status").cookie(&root.0))
        .json();
    assert_eq!(status["alerts"][0]["key"], "gsm:no-sim");

    let r = d.https(Req::new("GET", "/api/v1/alerts").cookie(&anna.0));
    assert_eq!(r.status, 403);
    let id = v["open"][1]["id"].as_i64().expect("id");
    let path = format!("/api/v1/alerts/{id}/dismiss");
    let r = d.https(Req::new("POST", &path).cookie(&root.0));
    assert_eq!(r.status, 403, "no CSRF token");
    let r = d.https(Req::new("POST", &path).cookie(&anna.0).csrf(&anna.1));
    assert_eq!(r.status, 403, "users may not");
    let r = d.https(Req::new("POST", &path).cookie(&root.0).csrf(&root.1));
    assert_eq!(r.status, 204, "{r:?}");
    let r = d.https(Req::new("POST", &path).cookie(&root.0).csrf(&root.1));
    assert_eq!(r.status, 404);
    let r = d.https(
        Req::new("POST", "/api/v1/alerts/x/dismiss")
            .cookie(&root.0)
            .csrf(&root.1),
    );
    assert_eq!(r.status, 400);
    let v = d
        .https(Req::new("GET", "/api/v1/alerts").cookie(&root.0))
        .json();
    assert_eq!(v["open"].as_array().expect("open").len(), 1);
    assert!(audit_actions(&d, &root).contains(&"alert.dismiss".to_owned()));
}

/// Rewrites an archive's HMAC with another key: the same content "made on another box".
fn as_foreign(archive: &str) -> String {
    let (head, body) = archive.split_once("\n\n").expect("header");
    let other = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[7u8; 32]);
    let mac = hex::encode(ring::hmac::sign(&other, body.as_bytes()).as_ref());
    let head: Vec<String> = head
        .lines()
        .map(|l| {
            if l.starts_with("hmac-sha256: ") {
                format!("hmac-sha256: {mac}")
            } else {
                l.to_owned()
            }
        })
        .collect();
    let sha = hex::encode(digest::digest(&digest::SHA256, body.as_bytes()).as_ref());
    assert!(head[1].ends_with(&sha), "the checksum covers the body");
    format!("{}\n\n{body}", head.join("\n"))
}

#[test]
fn backup_and_restore_round_trip_and_refuse_damaged_or_foreign_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    let (root, anna) = admin_and_user(&d);
    {
        // A sealed secret (as a trunk or the SIM PIN would store it).
        let key = DeviceKey::load_or_create(dir.path()).expect("device key");
        let sealed = key.seal("sim-pin", "1234").expect("seal");
        let s = Store::open(dir.path()).expect("store");
        s.audit(&BY, "test.seed", "-").expect("audit");
        drop(s);
        let conn = rusqlite::Connection::open(dir.path().join("pbx.db")).expect("db");
        conn.execute(
            "INSERT INTO settings (key, value) VALUES ('sim_pin', ?1)",
            [&sealed],
        )
        .expect("setting");
    }
    let r = d.https(Req::new("GET", "/api/v1/backup").cookie(&anna.0));
    assert_eq!(r.status, 403, "users may not download backups");
    let r = d.https(Req::new("GET", "/api/v1/backup").cookie(&root.0));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    let disp = r.header("content-disposition").expect("attachment");
    assert!(
        disp.starts_with("attachment; filename=\"pbx-backup-"),
        "{disp}"
    );
    let archive = String::from_utf8(r.body.clone()).expect("text archive");
    assert!(archive.starts_with("PBX-BACKUP 1\n"));
    assert!(
        archive.contains("$argon2id$"),
        "web users with their hashes"
    );
    assert!(!archive.contains("call_records"));

    // Change something, then restore: the change is gone, every session ended.
    let r = d.https(
        Req::new("POST", "/api/v1/extensions")
            .json(json!({"number": "150", "password": "sip-secret-150"}))
            .cookie(&root.0)
            .csrf(&root.1),
    );
    assert_eq!(r.status, 201);
    let restore = |body: &str, query: &str, s: &(String, String)| {
        d.https(
            Req::new("POST", &format!("/api/v1/restore{query}"))
                .raw(body, "application/octet-stream")
                .cookie(&s.0)
                .csrf(&s.1),
        )
    };
    let r = restore(&archive, "", &anna);
    assert_eq!(r.status, 403, "users may not restore");
    let r = d.https(
        Req::new("POST", "/api/v1/restore")
            .raw(&archive, "application/octet-stream")
            .cookie(&root.0),
    );
    assert_eq!(r.status, 403, "CSRF token required");

    // Damaged files are refused with a clear message, nothing written.
    let cut = &archive[..archive.len() - 40];
    let flipped = archive.replacen("\"Anna\"", "\"Anne\"", 1);
    let newer = archive.replacen("PBX-BACKUP 1", "PBX-BACKUP 9", 1);
    let junk = "x".repeat(100_000); // over the 16 KiB default: this route allows more
    for (body, want) in [
        (cut, "damaged or incomplete"),
        (flipped.as_str(), "damaged or incomplete"),
        (newer.as_str(), "format version 9 is not supported"),
        (junk.as_str(), "not a PBX configuration backup"),
    ] {
        let r = restore(body, "", &root);
        assert_eq!(r.status, 400, "{r:?}");
        assert!(r.error().contains(want), "{} (wanted {want})", r.error());
        assert_eq!(r.json()["field"], "file");
    }
    let huge = "x".repeat(9 * 1024 * 1024);
    assert_eq!(restore(&huge, "", &root).status, 413);
    let r = restore(&archive, "?allow_foreign=maybe", &root);
    assert_eq!(r.status, 400);
    let r = d.https(Req::new("GET", "/api/v1/extensions/150").cookie(&root.0));
    assert_eq!(r.status, 200, "nothing restored yet");

    let r = restore(&archive, "", &root);
    assert_eq!(r.status, 200, "{r:?}");
    let report = r.json();
    assert_eq!(report["foreign"], false);
    assert_eq!(report["tables"]["extensions"], 1);
    assert_eq!(report["tables"]["web_users"], 2);
    assert_eq!(report["dropped_secrets"], json!([]));
    let r = d.https(Req::new("GET", "/api/v1/session").cookie(&root.0));
    assert_eq!(r.status, 401, "sessions end at a restore");
    let root = d.login("root", ROOT_PW);
    let r = d.https(Req::new("GET", "/api/v1/extensions/150").cookie(&root.0));
    assert_eq!(r.status, 404, "the change after the backup is gone");
    let r = d.https(Req::new("GET", "/api/v1/extensions/101").cookie(&root.0));
    assert_eq!(r.status, 200);
    d.login("anna", ANNA_PW);

    // From another box: refused unless allowed, then the sealed secret is dropped.
    let foreign = as_foreign(&archive);
    let r = restore(&foreign, "", &root);
    assert_eq!(r.status, 409, "{r:?}");
    assert!(r.error().contains("made on another box"), "{}", r.error());
    let r = restore(&foreign, "?allow_foreign=true", &root);
    assert_eq!(r.status, 200, "{r:?}");
    let report = r.json();
    assert_eq!(report["foreign"], true);
    assert_eq!(report["dropped_secrets"], json!(["settings sim_pin"]));
    let s = Store::open(dir.path()).expect("store");
    assert_eq!(s.setting("sim_pin").expect("get"), None);
    let root = d.login("root", ROOT_PW);
    let actions = audit_actions(&d, &root);
    assert!(actions.contains(&"backup.create".to_owned()), "{actions:?}");
    assert!(
        actions.contains(&"backup.restore".to_owned()),
        "{actions:?}"
    );
}

#[test]
fn accounts_can_be_deleted_but_not_your_own_and_each_user_has_a_language() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    let (root, anna) = admin_and_user(&d);
    assert_eq!(
        d.https(Req::new("GET", "/api/v1/session").cookie(&anna.0))
            .json()["language"],
        "en"
    );
    let lang = |s: &(String, String), l: &str| {
        d.https(
            Req::new("PUT", "/api/v1/users/me/language")
                .json(json!({ "language": l }))
                .cookie(&s.0)
                .csrf(&s.1),
        )
    };
    assert_eq!(lang(&anna, "de").status, 204);
    let r = lang(&anna, "fr");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "language");
    let me = d
        .https(Req::new("GET", "/api/v1/session").cookie(&anna.0))
        .json();
    assert_eq!(me["language"], "de");
    let again = d.login("anna", ANNA_PW);
    let me = d
        .https(Req::new("GET", "/api/v1/session").cookie(&again.0))
        .json();
    assert_eq!(me["language"], "de", "kept per user");

    let del = |s: &(String, String), who: &str| {
        d.https(
            Req::new("DELETE", &format!("/api/v1/users/{who}"))
                .cookie(&s.0)
                .csrf(&s.1),
        )
    };
    assert_eq!(del(&anna, "root").status, 403, "users may not");
    let r = del(&root, "root");
    assert_eq!(r.status, 409);
    assert!(r.error().contains("your own account"), "{}", r.error());
    assert_eq!(del(&root, "ghost").status, 404);
    assert_eq!(del(&root, "anna").status, 204);
    assert_eq!(
        d.https(Req::new("GET", "/api/v1/session").cookie(&anna.0))
            .status,
        401,
        "the deleted user's sessions end"
    );
    let r = d.https(
        Req::new("POST", "/api/v1/login").json(json!({"username": "anna", "password": ANNA_PW})),
    );
    assert_eq!(r.status, 401);
    assert!(audit_actions(&d, &root).contains(&"user.delete".to_owned()));
}

#[test]
fn system_page_and_support_bundle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    let (root, anna) = admin_and_user(&d);
    assert_eq!(
        d.https(Req::new("GET", "/api/v1/system").cookie(&anna.0))
            .status,
        403
    );
    let r = d.https(Req::new("GET", "/api/v1/system").cookie(&root.0));
    assert_eq!(r.status, 200, "{r:?}");
    let sys = r.json();
    assert_eq!(sys["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(sys["country_code"], "49");
    assert_eq!(sys["tone_set"], "DE");
    assert!(sys["addresses"]
        .as_array()
        .expect("addresses")
        .iter()
        .any(|a| a["address"] == "127.0.0.1"));
    assert!(
        sys["data_partition"]["total_bytes"]
            .as_u64()
            .expect("total")
            > 0
    );

    let form = json!({
        "affected_users": "anna (101)",
        "time": "2026-11-21 09:40",
        "error_message": "403 Forbidden on outgoing calls",
        "browser": "Chromium 131",
        "steps_tried": "rebooted the phone"
    });
    let post = |body: Value| {
        d.https(
            Req::new("POST", "/api/v1/support-bundle")
                .json(body)
                .cookie(&root.0)
                .csrf(&root.1),
        )
    };
    let mut missing = form.clone();
    missing["error_message"] = json!("  ");
    let r = post(missing);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "error_message");
    let r = post(form);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/x-tar"));
    let out = tempfile::tempdir().expect("tempdir");
    let file = out.path().join("bundle.tar");
    std::fs::write(&file, &r.body).expect("write");
    let tar = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&file)
        .arg("-C")
        .arg(out.path())
        .output()
        .expect("tar");
    assert!(tar.status.success(), "{tar:?}");
    let top = std::fs::read_dir(out.path())
        .expect("dir")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("pbx-support-"))
        .expect("bundle directory")
        .path();
    let read = |name: &str| std::fs::read_to_string(top.join(name)).expect(name);
    let readme = read("README.txt");
    assert!(
        readme.contains("403 Forbidden on outgoing calls"),
        "{readme}"
    );
    assert!(readme.contains("anna (101)") && readme.contains("rebooted the phone"));
    let config = read("config.json");
    assert!(config.contains("\"Anna\""), "{config}");
    assert!(!config.contains("argon2id") && config.contains("<redacted>"));
    assert!(read("log.txt").contains("ready: sip="), "recent log lines");
    let status: Value = serde_json::from_str(&read("status.json")).expect("status json");
    assert!(status["alerts"].is_array());
    serde_json::from_str::<Value>(&read("system.json")).expect("system json");
}
