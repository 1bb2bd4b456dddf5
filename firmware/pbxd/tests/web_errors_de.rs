//! Server errors of the newer pages (analog ports, certificate upload, phonebook, call
//! notes, click-to-dial) in German for a user whose language is German, as older pages'
//! errors are: the server answers in English with the field named, and the UI's
//! `trError` (ui/i18n.js, the very module pbxd serves) words it in the session's
//! language. Each error comes from a real pbxd; the module runs in Node.js as the
//! browser would run it.

mod web_support;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use web_support::{admin_and_user, send, Daemon, Req, Session};

/// The UI module as pbxd serves it.
fn served_i18n(d: &Daemon) -> String {
    let r = d.https(Req::new("GET", "/ui/i18n.js"));
    assert_eq!(r.status, 200);
    String::from_utf8(r.body).expect("utf-8")
}

/// `trError` of the served module for each message, in `lang`.
fn tr_errors(module: &str, lang: &str, messages: &[String]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("i18n.mjs");
    std::fs::write(&path, module).expect("module");
    let script = format!(
        "globalThis.document = {{ documentElement: {{}} }};
         const m = await import({path:?});
         m.setLanguage({lang:?});
         let input = '';
         for await (const chunk of process.stdin) input += chunk;
         console.log(JSON.stringify(JSON.parse(input).map(m.trError)));",
        path = path.display().to_string(),
    );
    let mut node = Command::new("node")
        .args(["--input-type=module", "-e", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node (Debian nodejs) runs");
    node.stdin
        .take()
        .expect("stdin")
        .write_all(json!(messages).to_string().as_bytes())
        .expect("write");
    let out = node.wait_with_output().expect("node output");
    assert!(out.status.success(), "node failed");
    serde_json::from_slice(&out.stdout).expect("JSON from node")
}

/// The session's language, as the UI reads it at start.
fn language(d: &Daemon, s: &Session) -> String {
    let (status, v) = send(d, s, "GET", "/api/v1/session", None);
    assert_eq!(status, 200, "{v}");
    v["language"].as_str().expect("language").to_owned()
}

fn german(d: &Daemon, s: &Session) {
    let (status, v) = send(
        d,
        s,
        "PUT",
        "/api/v1/users/me/language",
        Some(json!({"language": "de"})),
    );
    assert!(status < 300, "{status} {v}");
}

/// One refused request: status, field and the English message the server sent.
struct Refused {
    what: &'static str,
    status: u16,
    field: Option<String>,
    error: String,
}

fn refused(
    d: &Daemon,
    s: &Session,
    what: &'static str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Refused {
    let (status, v) = send(d, s, method, path, body);
    assert!((400..500).contains(&status), "{what}: {status} {v}");
    Refused {
        what,
        status,
        field: v["field"].as_str().map(str::to_owned),
        error: v["error"].as_str().expect("error text").to_owned(),
    }
}

#[test]
fn newer_pages_errors_read_in_german_for_a_german_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = web_support::start(dir.path());
    let (root, anna) = admin_and_user(&d);
    german(&d, &root);
    german(&d, &anna);
    assert_eq!(language(&d, &anna), "de");
    assert_eq!(language(&d, &root), "de");

    let long_name = "x".repeat(65);
    let mut errors = vec![
        // Phonebook (anna's own).
        refused(
            &d,
            &anna,
            "phonebook name",
            "POST",
            "/api/v1/me/phonebook",
            Some(json!({"name": long_name, "numbers": ["0301234567"]})),
        ),
        refused(
            &d,
            &anna,
            "phonebook entry",
            "DELETE",
            "/api/v1/me/phonebook/999",
            None,
        ),
        refused(
            &d,
            &anna,
            "phonebook import",
            "POST",
            "/api/v1/me/phonebook/import",
            Some(json!({"csv": "name,number1\n"})),
        ),
        // Call notes.
        refused(
            &d,
            &anna,
            "note",
            "PUT",
            "/api/v1/cdr/999/note",
            Some(json!({"note": "call back"})),
        ),
        // Click-to-dial.
        refused(
            &d,
            &anna,
            "dial",
            "POST",
            "/api/v1/me/dial",
            Some(json!({"number": "0".repeat(40)})),
        ),
        // A refusal of the dial plan, passed on with its reason.
        refused(
            &d,
            &anna,
            "dial refused",
            "POST",
            "/api/v1/me/dial",
            Some(json!({"number": "0"})),
        ),
        // Analog ports (administrator).
        refused(
            &d,
            &root,
            "port",
            "PUT",
            "/api/v1/ports/99",
            Some(json!({"country": "DE"})),
        ),
        refused(
            &d,
            &root,
            "port country",
            "PUT",
            "/api/v1/ports/1",
            Some(json!({"country": "XX"})),
        ),
        refused(
            &d,
            &root,
            "port number",
            "PUT",
            "/api/v1/ports/1",
            Some(json!({"number": "0123"})),
        ),
        // Certificate upload (administrator).
        refused(
            &d,
            &root,
            "certificate",
            "PUT",
            "/api/v1/certificate",
            Some(json!({"certificate": "not a certificate", "key": "no key"})),
        ),
    ];
    // The call-log filter of the same pages.
    errors.push(refused(
        &d,
        &anna,
        "call-log filter",
        "GET",
        "/api/v1/cdr?number=abc",
        None,
    ));

    let english: Vec<String> = errors.iter().map(|e| e.error.clone()).collect();
    let module = served_i18n(&d);
    let de = tr_errors(&module, &language(&d, &anna), &english);
    for (e, de) in errors.iter().zip(&de) {
        assert_ne!(
            de, &e.error,
            "{} ({} {:?}): no German wording for {:?}",
            e.what, e.status, e.field, e.error
        );
    }
    let by_what = |w: &str| -> &str {
        let i = errors.iter().position(|e| e.what == w).expect("case");
        &de[i]
    };
    assert_eq!(
        by_what("phonebook name"),
        "Der Name darf höchstens 64 Zeichen lang sein."
    );
    assert_eq!(by_what("port"), "99 ist keine Portnummer (1 bis 64).");
    assert_eq!(by_what("dial"), "Eine Rufnummer hat höchstens 32 Ziffern.");
    assert_eq!(by_what("dial refused"), "Die Rufnummer ist unvollständig.");
    assert_eq!(
        by_what("certificate"),
        "Kein Zertifikat im PEM-Format gefunden (erwartet: -----BEGIN CERTIFICATE-----)."
    );
    assert_eq!(by_what("note"), "Dieser Anruf existiert nicht.");
    // Fields stay named for the form to mark.
    let field = |w: &str| {
        errors
            .iter()
            .find(|e| e.what == w)
            .and_then(|e| e.field.clone())
    };
    assert_eq!(field("phonebook name").as_deref(), Some("name"));
    assert_eq!(field("certificate").as_deref(), Some("certificate"));
    assert_eq!(field("port country").as_deref(), Some("country"));

    // An English user gets the server's English text unchanged.
    let en = tr_errors(&module, "en", &english);
    assert_eq!(en, english);
}
