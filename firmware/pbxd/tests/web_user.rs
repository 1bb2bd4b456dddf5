//! A web user's own data against a real pbxd: notes on call-log entries (own calls only,
//! private per account, exported in CSV, audited without their text) and the personal
//! phonebook (CRUD, search, CSV import and export with per-line errors, names in the
//! call list for any form of a number, invisible to other accounts and admins).

mod web_support;

use pbxd::store::{AuditCtx, CallDirection, CallRecord, Disposition, Store};
use serde_json::{json, Value};
use web_support::{start, Daemon, Req, ANNA_PW, ROOT_PW};

type Session = (String, String);

const BOB_PW: &str = "bob-password-1";
const CARL_PW: &str = "carl-password-1";

fn send(d: &Daemon, s: &Session, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = Req::new(method, path).cookie(&s.0).csrf(&s.1);
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = d.https(req);
    let v = if r.body.is_empty() || r.header("content-type") != Some("application/json") {
        Value::Null
    } else {
        r.json()
    };
    (r.status, v)
}

fn text(d: &Daemon, s: &Session, path: &str) -> String {
    let r = d.https(Req::new("GET", path).cookie(&s.0));
    assert_eq!(r.status, 200, "{path}: {r:?}");
    String::from_utf8(r.body).expect("utf-8")
}

/// root (admin, no extension), anna (101), bob (102), carl (no extension).
fn accounts(d: &Daemon) -> [Session; 4] {
    d.setup("root", ROOT_PW);
    let root = d.login("root", ROOT_PW);
    for n in ["101", "102", "103"] {
        let (s, v) = send(
            d,
            &root,
            "POST",
            "/api/v1/extensions",
            Some(json!({"number": n, "password": format!("sip-secret-{n}")})),
        );
        assert_eq!(s, 201, "{v}");
    }
    for (name, pw, ext) in [
        ("anna", ANNA_PW, json!("101")),
        ("bob", BOB_PW, json!("102")),
        ("carl", CARL_PW, Value::Null),
    ] {
        let (s, v) = send(
            d,
            &root,
            "POST",
            "/api/v1/users",
            Some(json!({"username": name, "password": pw, "role": "user", "extension": ext})),
        );
        assert_eq!(s, 201, "{v}");
    }
    [
        root,
        d.login("anna", ANNA_PW),
        d.login("bob", BOB_PW),
        d.login("carl", CARL_PW),
    ]
}

fn record(
    id: &str,
    dir: CallDirection,
    caller: &str,
    dialled: &str,
    dest: Option<&str>,
) -> CallRecord {
    let t = i64::try_from(pbxd::clock::unix_now()).expect("secs") * 1000;
    CallRecord {
        call_id: id.into(),
        caller: caller.into(),
        caller_name: None,
        dialled: dialled.into(),
        normalised: (dir == CallDirection::Outbound).then(|| "+49211123456".to_owned()),
        destination: dest.map(str::to_owned),
        direction: dir,
        route: Some("internal".into()),
        source_ip: None,
        dest_ip: None,
        start_ms: t - 10_000,
        answer_ms: Some(t - 9000),
        end_ms: t - 5000,
        disposition: Disposition::Answered,
        reason: None,
        sip_status: None,
        hangup: None,
        quality_caller: None,
        quality_callee: None,
        forwarded_by: None,
    }
}

/// Calls as the SIP side writes them; returns their row ids.
fn insert_calls(d: &Daemon, calls: &[CallRecord]) -> Vec<i64> {
    let mut store = Store::open(&d.data).expect("store");
    let _ = AuditCtx {
        actor: "test",
        source: "test",
        now_unix: 0,
    };
    calls
        .iter()
        .map(|c| store.insert_call_record(c).expect("record"))
        .collect()
}

fn records(d: &Daemon, s: &Session) -> Vec<Value> {
    let (status, v) = send(d, s, "GET", "/api/v1/cdr", None);
    assert_eq!(status, 200, "{v}");
    v["records"].as_array().expect("records").clone()
}

fn by_id(rs: &[Value], id: i64) -> Option<&Value> {
    rs.iter().find(|r| r["id"] == id)
}

#[test]
fn notes_only_on_own_calls_private_exported_and_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    let [root, anna, bob, carl] = accounts(&d);
    let ids = insert_calls(
        &d,
        &[
            record("c1", CallDirection::Internal, "101", "102", Some("102")),
            record("c2", CallDirection::Internal, "103", "102", Some("102")),
        ],
    );
    let (c1, c2) = (ids[0], ids[1]);
    let note = |s: &Session, id: i64, text: &str| {
        send(
            &d,
            s,
            "PUT",
            &format!("/api/v1/cdr/{id}/note"),
            Some(json!({"note": text})),
        )
    };

    let (s, v) = note(&anna, c1, "  Call back about the invoice, \"urgent\"  ");
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"id": c1, "note": "Call back about the invoice, \"urgent\""})
    );
    // Someone else's call, an unknown call, a bad id: all 404, nothing saved.
    for path in [
        format!("/api/v1/cdr/{c2}/note"),
        "/api/v1/cdr/99999/note".to_owned(),
        "/api/v1/cdr/abc/note".to_owned(),
    ] {
        let (s, v) = send(&d, &anna, "PUT", &path, Some(json!({"note": "x"})));
        assert_eq!(s, 404, "{path}: {v}");
        let (s, _) = send(&d, &anna, "DELETE", &path, None);
        assert_eq!(s, 404, "{path}");
    }
    let (s, _) = note(&carl, c1, "no extension, no calls");
    assert_eq!(s, 404);
    // Validation names the field; CSRF is required.
    for bad in ["", "   ", &"x".repeat(501), "bell\u{7}"] {
        let (s, v) = note(&anna, c1, bad);
        assert_eq!(
            (s, v["field"].as_str()),
            (400, Some("note")),
            "{bad:?}: {v}"
        );
    }
    let (s, _) = note(&anna, c1, &"ü".repeat(500));
    assert_eq!(s, 200, "500 characters are allowed");
    note(&anna, c1, "Call back about the invoice, \"urgent\"");
    let r = d.https(
        Req::new("PUT", &format!("/api/v1/cdr/{c1}/note"))
            .json(json!({"note": "forged"}))
            .cookie(&anna.0),
    );
    assert_eq!(r.status, 403);

    // Shown in the own call list only: notes are per account.
    let rs = records(&d, &anna);
    assert_eq!(
        by_id(&rs, c1).expect("c1")["note"],
        "Call back about the invoice, \"urgent\""
    );
    assert!(by_id(&rs, c2).is_none());
    let rs = records(&d, &bob);
    assert_eq!(
        by_id(&rs, c1).expect("c1 is bob's too")["note"],
        Value::Null
    );
    assert_eq!(note(&bob, c1, "bob's own").0, 200);
    assert_eq!(note(&bob, c2, "bob got this one").0, 200);
    // An administrator notes any call, privately too.
    assert_eq!(note(&root, c2, "checked by admin").0, 200);
    let rs = records(&d, &root);
    assert_eq!(by_id(&rs, c2).expect("c2")["note"], "checked by admin");
    assert_eq!(by_id(&rs, c1).expect("c1")["note"], Value::Null);
    assert_eq!(
        records(&d, &anna)[0]["note"],
        "Call back about the invoice, \"urgent\""
    );

    // CSV: two more columns, the note quoted as RFC 4180 says.
    let csv = text(&d, &anna, "/api/v1/cdr.csv");
    let mut lines = csv.lines();
    assert!(
        lines.next().expect("header").ends_with(",note,contact"),
        "{csv}"
    );
    let row = lines.next().expect("c1 row");
    assert!(
        row.ends_with(",\"Call back about the invoice, \"\"urgent\"\"\","),
        "{row}"
    );
    assert_eq!(lines.next(), None, "only anna's call: {csv}");

    // Delete, then it is gone; deleting again is 404.
    let (s, _) = send(&d, &anna, "DELETE", &format!("/api/v1/cdr/{c1}/note"), None);
    assert_eq!(s, 204);
    let (s, _) = send(&d, &anna, "DELETE", &format!("/api/v1/cdr/{c1}/note"), None);
    assert_eq!(s, 404);
    assert_eq!(
        by_id(&records(&d, &anna), c1).expect("c1")["note"],
        Value::Null
    );
    assert_eq!(
        by_id(&records(&d, &bob), c1).expect("c1")["note"],
        "bob's own"
    );

    // Audited (who, what), without the private text.
    let (s, audit) = send(&d, &root, "GET", "/api/v1/audit?limit=200", None);
    assert_eq!(s, 200);
    let audit = audit.to_string();
    assert!(
        audit.contains("call.note.set") && audit.contains("call.note.delete"),
        "{audit}"
    );
    assert!(audit.contains("web:anna"), "{audit}");
    assert!(!audit.contains("invoice"), "{audit}");
}

#[test]
fn phonebook_is_personal_searchable_imported_exported_and_names_calls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    let [root, anna, bob, _carl] = accounts(&d);
    let add = |s: &Session, body: Value| send(&d, s, "POST", "/api/v1/me/phonebook", Some(body));

    let (s, berg) = add(
        &anna,
        json!({"name": " Dr. Berg ", "numbers": ["0211 / 123 456", ""]}),
    );
    assert_eq!(s, 201, "{berg}");
    assert_eq!(
        (berg["name"].clone(), berg["numbers"].clone()),
        (json!("Dr. Berg"), json!(["0211123456"]))
    );
    let (s, v) = add(
        &anna,
        json!({"name": "Bob", "numbers": ["102", "+49 170 5551234"]}),
    );
    assert_eq!(s, 201, "{v}");
    for (body, field) in [
        (json!({"name": "", "numbers": ["0211"]}), Some("name")),
        (json!({"name": "X", "numbers": ["abc"]}), Some("numbers")),
        (json!({"name": "X", "numbers": []}), Some("numbers")),
        (
            json!({"name": "X", "numbers": ["11", "12", "13", "14", "15", "16"]}),
            Some("numbers"),
        ),
        (
            json!({"name": "X", "numbers": ["0211"], "email": "x"}),
            None,
        ),
    ] {
        let (s, v) = add(&anna, body.clone());
        assert_eq!((s, v["field"].as_str()), (400, field), "{body}: {v}");
    }

    // Search by name or number; sorted by name.
    let names = |s: &Session, q: &str| -> Vec<String> {
        let (st, v) = send(&d, s, "GET", &format!("/api/v1/me/phonebook{q}"), None);
        assert_eq!(st, 200, "{v}");
        v.as_array()
            .expect("list")
            .iter()
            .map(|e| e["name"].as_str().expect("name").to_owned())
            .collect()
    };
    assert_eq!(names(&anna, ""), ["Bob", "Dr. Berg"]);
    assert_eq!(names(&anna, "?q=berg"), ["Dr. Berg"]);
    assert_eq!(names(&anna, "?q=%2B4917"), ["Bob"]);
    assert_eq!(names(&anna, "?q=0211"), ["Dr. Berg"]);
    assert_eq!(names(&anna, "?q=%25"), Vec::<String>::new());
    assert_eq!(
        send(&d, &anna, "GET", "/api/v1/me/phonebook?sort=x", None).0,
        400
    );

    // Personal: nobody else sees or changes it, not even an administrator.
    assert_eq!(names(&root, ""), Vec::<String>::new());
    assert_eq!(names(&bob, ""), Vec::<String>::new());
    let id = berg["id"].as_i64().expect("id");
    let path = format!("/api/v1/me/phonebook/{id}");
    let change = json!({"name": "Mallory", "numbers": ["0211"]});
    assert_eq!(send(&d, &bob, "PUT", &path, Some(change.clone())).0, 404);
    assert_eq!(send(&d, &root, "DELETE", &path, None).0, 404);
    let r = d.https(Req::new("PUT", &path).json(change).cookie(&anna.0));
    assert_eq!(r.status, 403, "CSRF");
    assert_eq!(names(&anna, ""), ["Bob", "Dr. Berg"]);

    // The call list names the other party, whatever form the number came in.
    let ids = insert_calls(
        &d,
        &[
            record("out", CallDirection::Outbound, "101", "0211123456", None),
            record(
                "in",
                CallDirection::Inbound,
                "+49211123456",
                "101",
                Some("101"),
            ),
            record(
                "in2",
                CallDirection::Inbound,
                "0211123456",
                "101",
                Some("101"),
            ),
            record("int", CallDirection::Internal, "102", "101", Some("101")),
            record(
                "other",
                CallDirection::Inbound,
                "0301234",
                "101",
                Some("101"),
            ),
        ],
    );
    let rs = records(&d, &anna);
    let contact = |i: usize| by_id(&rs, ids[i]).expect("record")["contact"].clone();
    assert_eq!(
        (0..5).map(contact).collect::<Vec<_>>(),
        [
            json!("Dr. Berg"),
            json!("Dr. Berg"),
            json!("Dr. Berg"),
            json!("Bob"),
            Value::Null
        ]
    );
    // Bob's own list does not know anna's names.
    assert!(records(&d, &bob).iter().all(|r| r["contact"].is_null()));
    let csv = text(&d, &anna, "/api/v1/cdr.csv");
    assert_eq!(csv.matches(",Dr. Berg\r\n").count(), 3, "{csv}");

    // Update and delete.
    let (s, v) = send(
        &d,
        &anna,
        "PUT",
        &path,
        Some(json!({"name": "Dr. Ute Berg", "numbers": ["0211123456", "0211999"]})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["numbers"], json!(["0211123456", "0211999"]));
    let (s, _) = send(
        &d,
        &anna,
        "PUT",
        &path,
        Some(json!({"name": "\u{1}", "numbers": ["0211"]})),
    );
    assert_eq!(s, 400);
    assert_eq!(names(&anna, ""), ["Bob", "Dr. Ute Berg"]);

    // Export, then import into bob's book: the same entries.
    let exported = text(&d, &anna, "/api/v1/me/phonebook.csv");
    assert_eq!(
        exported,
        "name,number1,number2,number3,number4,number5\r\n\
         Bob,102,+491705551234\r\n\
         Dr. Ute Berg,0211123456,0211999\r\n"
    );
    let import = |s: &Session, csv: &str| {
        send(
            &d,
            s,
            "POST",
            "/api/v1/me/phonebook/import",
            Some(json!({"csv": csv})),
        )
    };
    let (s, v) = import(&bob, &exported);
    assert_eq!((s, v["imported"].as_u64()), (200, Some(2)), "{v}");
    assert_eq!(names(&bob, ""), ["Bob", "Dr. Ute Berg"]);

    // A file with bad lines: every bad line named, nothing imported.
    let bad = "name,number1\nGood One,0211 5\n,0211 6\n\"Unclosed,0211\nx\n";
    let (s, v) = import(
        &anna,
        "Good One,0211 5\n,0211 6\nBad Number,12ab\nToo Many,11,12,13,14,15,16\n",
    );
    assert_eq!((s, v["field"].as_str()), (400, Some("csv")), "{v}");
    let lines: Vec<u64> = v["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["line"].as_u64().expect("n"))
        .collect();
    assert_eq!(lines, [2, 3, 4], "{v}");
    assert!(
        v["error"]
            .as_str()
            .expect("error")
            .contains("line 3: invalid number: \"12ab\""),
        "{v}"
    );
    let (s, v) = import(&anna, bad);
    assert_eq!(s, 400, "{v}");
    assert_eq!(import(&anna, "name,number1\n").0, 400, "empty");
    assert_eq!(
        names(&anna, ""),
        ["Bob", "Dr. Ute Berg"],
        "nothing half-imported"
    );

    let (s, _) = send(&d, &anna, "DELETE", &path, None);
    assert_eq!(s, 204);
    assert_eq!(send(&d, &anna, "DELETE", &path, None).0, 404);
    assert_eq!(names(&anna, ""), ["Bob"]);

    let (_, audit) = send(&d, &root, "GET", "/api/v1/audit?limit=200", None);
    let audit = audit.to_string();
    for action in ["phonebook.add", "phonebook.update", "phonebook.delete"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
}

/// The call-log filter and the phonebook search find a number in any form (schema V14):
/// an inbound caller that came as `0301234567` is found by `+49301234567`,
/// `030 123 4567` and `0049...`, in the administrator's log and in the user's own list.
#[test]
fn number_search_matches_any_form_of_a_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    let [root, anna, bob, _carl] = accounts(&d);
    let ids = insert_calls(
        &d,
        &[
            record(
                "in-national",
                CallDirection::Inbound,
                "0301234567",
                "101",
                Some("101"),
            ),
            record(
                "in-bob",
                CallDirection::Inbound,
                "+49301234567",
                "102",
                Some("102"),
            ),
            record(
                "in-other",
                CallDirection::Inbound,
                "0301234568",
                "101",
                Some("101"),
            ),
        ],
    );
    let found = |s: &Session, q: &str| -> Vec<i64> {
        let (status, v) = send(&d, s, "GET", &format!("/api/v1/cdr?number={q}"), None);
        assert_eq!(status, 200, "{q}: {v}");
        v["records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| r["id"].as_i64().expect("id"))
            .collect()
    };
    for q in [
        "0301234567",
        "%2B49301234567",
        "030%20123%204567",
        "0049301234567",
        "030-123-4567",
    ] {
        assert_eq!(found(&root, q), [ids[1], ids[0]], "admin, {q}");
        assert_eq!(found(&anna, q), [ids[0]], "anna's own, {q}");
        assert_eq!(found(&bob, q), [ids[1]], "bob's own, {q}");
    }
    let (status, v) = send(&d, &anna, "GET", "/api/v1/cdr?number=030x", None);
    assert_eq!((status, v["field"].as_str()), (400, Some("number")), "{v}");

    // The phonebook: written one way, found by another.
    let (s, v) = send(
        &d,
        &anna,
        "POST",
        "/api/v1/me/phonebook",
        Some(json!({"name": "Berg", "numbers": ["+49 30 1234567"]})),
    );
    assert_eq!(s, 201, "{v}");
    for q in ["0301234567", "030%20123", "0049301234567"] {
        let (s, v) = send(
            &d,
            &anna,
            "GET",
            &format!("/api/v1/me/phonebook?q={q}"),
            None,
        );
        assert_eq!(s, 200, "{v}");
        let names: Vec<&str> = v
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|e| e["name"].as_str())
            .collect();
        assert_eq!(names, ["Berg"], "{q}");
    }
    // And names the call in the user's list.
    let rs = records(&d, &anna);
    assert_eq!(by_id(&rs, ids[0]).expect("call")["contact"], "Berg");
    assert!(by_id(&rs, ids[2]).expect("call")["contact"].is_null());
}
