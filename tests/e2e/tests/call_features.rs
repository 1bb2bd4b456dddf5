//! Call features of pbxd's B2BUA with sipp phones as real peers (issue 3): BYE while
//! ringing, the CANCEL/200 race, hold and resume, blind and attended transfer, call pickup,
//! forwarding (busy, no answer, loops), ring groups and session timers.
//!
//! Each test starts its own pbxd with extensions 1001..1003, configures features with
//! `pbxctl` (while pbxd runs: the call layer reads the store per call), starts the called
//! phones (`call_callee.xml` + an out-of-call `call_uas*.xml` / `feat_uas*.xml`), then runs
//! the caller's `feat_uac*.xml` and checks both sides' sipp results and traces, the call
//! record (`pbxctl cdr list --csv`, by column name) and that the health API's count of
//! calls in progress returns to 0. Scenarios: `tests/sipp/feat_*.xml`, tests/README.md.

use std::time::Duration;

use pbx_e2e::{
    is_message, normalize_disposition, sip_body, sip_header, start_phone, Pbx, Sipp, SippHandle,
    SippRun,
};

const A: &str = "1001";
const B: &str = "1002";
const C: &str = "1003";

fn password(ext: &str) -> String {
    format!("s3cret-{ext}")
}

fn pbx_with(args: &[&str]) -> Pbx {
    let mut b = Pbx::builder();
    for ext in [A, B, C] {
        b = b.extension(ext, &password(ext));
    }
    for a in args {
        b = b.arg(a);
    }
    b.start()
}

/// A registered phone for `ext` that takes one call with `uas` (60 s at most).
fn phone(pbx: &Pbx, ext: &str, uas: &str, extra: &[&str]) -> SippHandle {
    start_phone(
        pbx,
        ext,
        &password(ext),
        uas,
        extra,
        Duration::from_secs(60),
    )
}

/// `ext` calls `dial` with a `feat_uac*.xml` scenario (bounded to 40 s, 20 s per receive).
fn caller(ext: &str, scenario: &str, dial: &str) -> Sipp {
    Sipp::new(scenario)
        .user(ext, &password(ext))
        .key("callee", dial)
        .bounded(Duration::from_secs(40), Duration::from_secs(20))
}

/// Every run succeeded; otherwise panics with the story of each failed one (a failure on
/// one phone is often explained by what another one saw).
fn check_all(pbx: &Pbx, runs: &[(&str, &SippRun)]) {
    let failed: Vec<String> = runs
        .iter()
        .filter(|(_, r)| !r.success())
        .map(|(what, r)| format!("=== {what}: sipp did not succeed\n{r}"))
        .collect();
    assert!(
        failed.is_empty(),
        "{}\n=== pbxd log:\n{}",
        failed.join("\n"),
        pbx.log()
    );
}

/// Messages sipp received that start with `start` and whose CSeq method is `method`.
fn received_all(run: &SippRun, start: &str, method: &str) -> Vec<String> {
    run.received()
        .into_iter()
        .filter(|m| is_message(m, start, method))
        .collect()
}

/// The first such message; panics with the run if there is none.
fn received(run: &SippRun, start: &str, method: &str) -> String {
    received_all(run, start, method)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("sipp received no {start:?} ({method}):\n{run}"))
}

/// When (second of the day) the phone got its first INVITE.
fn invite_time(run: &SippRun) -> f64 {
    run.received_timed()
        .into_iter()
        .find(|(_, m)| is_message(m, "INVITE ", "INVITE"))
        .map(|(t, _)| t)
        .unwrap_or_else(|| panic!("no INVITE received:\n{run}"))
}

/// Waits until pbxd counts `n` calls in progress (ringing counts), or panics.
fn wait_calls(pbx: &Pbx, n: u64) {
    let got = pbx.wait_health_calls(n, Duration::from_secs(10));
    assert_eq!(
        got,
        Some(n),
        "pbxd never counted {n} call(s)\n{}",
        pbx.log()
    );
}

#[test]
fn bye_while_ringing_cancels_the_call() {
    let pbx = pbx_with(&[]);
    let callee = phone(&pbx, B, "call_uas_ring_cancel.xml", &[]);
    let run = caller(A, "feat_uac_bye_ringing.xml", B).run(pbx.sip_addr());
    pbx.check("caller: BYE on the early dialog -> 200 + 487", &run);
    let callee = callee.wait();
    pbx.check("callee: CANCEL -> 200 + 487 -> ACK", &callee);
    received(&callee, "CANCEL ", "CANCEL");
    received(&run, "SIP/2.0 487", "INVITE");
    pbx.one_record(&["cancelled"]);
}

/// The caller CANCELs 0-5 ms after pbxd's 100 Trying while the callee answers its INVITE
/// 0-3 ms after it came (no 180). Whichever wins, no call is left, every
/// 2xx was ACKed, a CANCEL that was sent got its answer, and the answering callee gets a
/// BYE.
#[test]
fn cancel_crossing_the_answer_leaves_no_call() {
    let mut outcomes = Vec::new();
    for (cancel_after, answer_after) in [("0", "0"), ("2", "0"), ("5", "0"), ("0", "3")] {
        let delay = format!(
            "CANCEL {cancel_after} ms after the 100, answer {answer_after} ms after the INVITE"
        );
        let pbx = pbx_with(&[]);
        let callee = phone(&pbx, B, "feat_uas_answer_now.xml", &["-d", answer_after]);
        let run = caller(A, "feat_uac_cancel_race.xml", B)
            .arg("-d")
            .arg(cancel_after)
            .run(pbx.sip_addr());
        pbx.check(&format!("caller, {delay}"), &run);
        let callee = callee.wait();
        pbx.check("callee: 200, then ACK and BYE", &callee);
        // The callee answered, so pbxd must have ACKed its 2xx and hung it up.
        received(&callee, "ACK ", "ACK");
        received(&callee, "BYE ", "BYE");
        let answered = !received_all(&run, "SIP/2.0 200", "INVITE").is_empty();
        let cancelled = !received_all(&run, "SIP/2.0 487", "INVITE").is_empty();
        assert!(
            answered != cancelled,
            "the INVITE got both (or neither of) a 200 and a 487:\n{run}"
        );
        if answered {
            // One 2xx: our ACK matched, pbxd did not retransmit it.
            assert_eq!(
                received_all(&run, "SIP/2.0 200", "INVITE").len(),
                1,
                "pbxd retransmitted the 2xx the caller ACKed:\n{run}"
            );
        }
        let cancel_sent = run.sent().iter().any(|m| m.starts_with("CANCEL "));
        if cancel_sent {
            let answers = received_all(&run, "SIP/2.0 200", "CANCEL").len()
                + received_all(&run, "SIP/2.0 481", "CANCEL").len();
            assert_eq!(answers, 1, "the CANCEL got {answers} answers:\n{run}");
        }
        let cdr = pbx.one_record(&["answered", "cancelled"]);
        assert_eq!(
            normalize_disposition(cdr.get(0, "disposition")),
            Some(if answered { "answered" } else { "cancelled" }),
            "the record does not say what the caller saw: {:?}",
            cdr.rows
        );
        outcomes.push(format!(
            "{delay}: {}{}",
            if answered { "answer won" } else { "CANCEL won" },
            if cancel_sent {
                ""
            } else {
                " (before the CANCEL left)"
            }
        ));
    }
    eprintln!("cancel race: {}", outcomes.join("; "));
}

#[test]
fn hold_and_resume_are_answered_by_pbxd() {
    let pbx = pbx_with(&[]);
    let callee = phone(&pbx, B, "call_uas.xml", &[]);
    let run = caller(A, "feat_uac_hold.xml", B)
        .arg("-d")
        .arg("500")
        .run(pbx.sip_addr());
    pbx.check("caller: hold, resume, hang up", &run);
    let callee = callee.wait();
    pbx.check("callee: one INVITE, BYE at the end", &callee);
    let oks = received_all(&run, "SIP/2.0 200", "INVITE");
    let hold = oks
        .iter()
        .find(|m| sip_header(m, "CSeq").starts_with("3 "))
        .unwrap_or_else(|| panic!("no 200 for the hold re-INVITE:\n{run}"));
    assert!(
        sip_body(hold).contains("a=recvonly"),
        "hold answered without a=recvonly:\n{hold}"
    );
    let resume = oks
        .iter()
        .find(|m| sip_header(m, "CSeq").starts_with("4 "))
        .unwrap_or_else(|| panic!("no 200 for the resume re-INVITE:\n{run}"));
    let resume_sdp = sip_body(resume);
    assert!(
        resume_sdp.contains("a=sendrecv"),
        "resume not answered sendrecv:\n{resume}"
    );
    assert_eq!(
        received_all(&callee, "INVITE ", "INVITE").len(),
        1,
        "the callee was disturbed by the caller's hold:\n{callee}"
    );
    pbx.one_record(&["answered"]);
}

#[test]
fn blind_transfer_connects_the_caller_to_the_target() {
    let pbx = pbx_with(&[]);
    let transferor = phone(&pbx, B, "feat_uas_refer.xml", &["-key", "transfer_to", C]);
    let target = phone(&pbx, C, "call_uas_bye.xml", &["-d", "1000"]);
    let run = caller(A, "feat_uac_hungup.xml", B).run(pbx.sip_addr());
    pbx.check("caller A: answered by B, hung up by C", &run);
    let transferor = transferor.wait();
    pbx.check("transferor B: REFER -> 202, NOTIFYs, BYE", &transferor);
    let target = target.wait();
    pbx.check("target C: answers, hangs up", &target);

    received(&transferor, "SIP/2.0 202", "REFER");
    // By CSeq (a NOTIFY pbxd had to retransmit arrives twice): 100 Trying first, 200 OK
    // last.
    let mut notifies = received_all(&transferor, "NOTIFY ", "NOTIFY");
    notifies.sort_by_key(|n| {
        sip_header(n, "CSeq")
            .split_whitespace()
            .next()
            .and_then(|c| c.parse::<u32>().ok())
    });
    let frags: Vec<&str> = notifies
        .iter()
        .map(|n| sip_body(n).lines().next().unwrap_or("").trim())
        .collect();
    assert!(
        frags.first().is_some_and(|f| f.starts_with("SIP/2.0 100"))
            && frags.last().is_some_and(|f| f.starts_with("SIP/2.0 200")),
        "NOTIFY sipfrags {frags:?} (want 100 first, 200 last)"
    );
    for n in &notifies {
        assert!(
            sip_header(n, "Event").starts_with("refer"),
            "NOTIFY without Event: refer:\n{n}"
        );
    }
    received(&transferor, "BYE ", "BYE");
    let invite = received(&target, "INVITE ", "INVITE");
    assert!(
        sip_header(&invite, "From").contains(&format!("sip:{A}@")),
        "the target's INVITE is not from the transferee {A}:\n{invite}"
    );
    received(&run, "BYE ", "BYE");

    let cdr = pbx.one_record(&["answered"]);
    assert_eq!(cdr.get(0, "reason"), format!("transferred to {C}"));
    assert_eq!(cdr.get(0, "destination"), C);
}

/// A calls B; B consults C (a second call), then transfers with REFER + Replaces naming
/// the consultation: C gets a re-INVITE in its existing dialog and talks to A, B gets a
/// BYE in both calls, and C's hang-up reaches A.
#[test]
fn attended_transfer_replaces_the_consultation() {
    let pbx = pbx_with(&[]);
    let target = phone(&pbx, C, "feat_uas_reinvite.xml", &["-d", "1000"]);
    let transferor = Sipp::new("feat_attended_transferor.xml")
        .user(B, &password(B))
        .out_of_call("feat_uas_attended.xml")
        .key("callee", C)
        .bounded(Duration::from_secs(60), Duration::from_secs(20))
        .spawn(pbx.sip_addr());
    let contact = format!("sipp-callee-{B}@");
    let (out, ok) = pbx.wait_registrations(Duration::from_secs(10), |o| o.contains(&contact));
    assert!(ok, "the transferor did not register:\n{out}\n{}", pbx.log());
    let run = caller(A, "feat_uac_hungup.xml", B).run(pbx.sip_addr());
    let transferor = transferor.wait();
    let target = target.wait();
    check_all(
        &pbx,
        &[
            ("caller A: answered by B, hung up by C", &run),
            (
                "transferor B: consultation, REFER with Replaces",
                &transferor,
            ),
            ("target C: answered B, re-INVITE, hangs up", &target),
        ],
    );

    // C's second INVITE is a re-INVITE in the consultation's dialog.
    let invites = received_all(&target, "INVITE ", "INVITE");
    assert_eq!(invites.len(), 2, "target INVITEs:\n{target}");
    assert_eq!(
        sip_header(&invites[0], "Call-ID"),
        sip_header(&invites[1], "Call-ID"),
        "the target was not re-INVITEd in its dialog"
    );
    assert!(
        sip_header(&invites[1], "To").contains("tag="),
        "{}",
        invites[1]
    );
    // B: 202, sipfrag 100 ... 200, and a BYE in each of its two calls.
    received(&transferor, "SIP/2.0 202", "REFER");
    let frags: Vec<String> = received_all(&transferor, "NOTIFY ", "NOTIFY")
        .iter()
        .map(|n| sip_body(n).lines().next().unwrap_or("").trim().to_string())
        .collect();
    assert!(
        frags.iter().any(|f| f.starts_with("SIP/2.0 200")),
        "no NOTIFY with 200: {frags:?}"
    );
    let byes = received_all(&transferor, "BYE ", "BYE");
    let mut bye_calls: Vec<&str> = byes.iter().map(|b| sip_header(b, "Call-ID")).collect();
    bye_calls.sort_unstable();
    bye_calls.dedup();
    assert_eq!(bye_calls.len(), 2, "BYEs to the transferor: {bye_calls:?}");
    // A kept its dialog (no re-INVITE) and got C's hang-up.
    assert!(
        received_all(&run, "INVITE ", "INVITE").is_empty(),
        "the transferee was re-INVITEd:\n{run}"
    );
    received(&run, "BYE ", "BYE");

    let cdr = pbx.wait_cdr(2, Duration::from_secs(5));
    assert_eq!(cdr.rows.len(), 2, "records: {:?}", cdr.rows);
    for i in 0..2 {
        assert_eq!(
            normalize_disposition(cdr.get(i, "disposition")),
            Some("answered"),
            "records: {:?}",
            cdr.rows
        );
    }
    let first = (0..2)
        .find(|&i| cdr.get(i, "caller") == A)
        .unwrap_or_else(|| panic!("no record of A's call: {:?}", cdr.rows));
    assert_eq!(cdr.get(first, "destination"), C, "{:?}", cdr.rows);
    assert_eq!(cdr.get(first, "reason"), format!("transferred to {C}"));
    let consult = 1 - first;
    assert_eq!(cdr.get(consult, "caller"), B, "{:?}", cdr.rows);
    assert_eq!(cdr.get(consult, "reason"), "transferred (attended)");
    pbx.assert_no_call_left();
}

#[test]
fn pickup_group_member_takes_a_ringing_call() {
    let pbx = pbx_with(&[]);
    for ext in [B, C] {
        pbx.ctl(&["extension", "set", ext, "--pickup-group", "1"]);
    }
    let rung = phone(&pbx, B, "call_uas_ring_cancel.xml", &[]);
    let a = caller(A, "feat_uac_hungup.xml", B).spawn(pbx.sip_addr());
    wait_calls(&pbx, 1);
    std::thread::sleep(Duration::from_millis(300));
    let picker = caller(C, "feat_uac.xml", "*8")
        .arg("-d")
        .arg("1000")
        .run(pbx.sip_addr());
    pbx.check("picker 1003 dials *8, talks, hangs up", &picker);
    let a = a.wait();
    pbx.check("caller: answered by the picker, BYE", &a);
    let rung = rung.wait();
    pbx.check("rung phone: CANCEL", &rung);
    let answer = received(&picker, "SIP/2.0 200", "INVITE");
    assert!(
        sip_body(&answer).contains("m=audio"),
        "pickup answered without SDP:\n{answer}"
    );
    received(&a, "SIP/2.0 200", "INVITE");
    received(&rung, "CANCEL ", "CANCEL");
    // The picker's *8 call is taken into the picked call: one record, answered by the
    // picker.
    let cdr = pbx.one_record(&["answered"]);
    assert_eq!(cdr.get(0, "caller"), A, "{:?}", cdr.rows);
    assert_eq!(cdr.get(0, "dialled"), B, "{:?}", cdr.rows);
    assert_eq!(cdr.get(0, "destination"), C, "{:?}", cdr.rows);
}

#[test]
fn busy_extension_forwards_to_its_target() {
    let pbx = pbx_with(&[]);
    pbx.ctl(&["extension", "set", B, "--forward-busy", C]);
    let busy = phone(&pbx, B, "call_uas_busy.xml", &[]);
    let target = phone(&pbx, C, "call_uas.xml", &[]);
    let run = caller(A, "feat_uac.xml", B)
        .arg("-d")
        .arg("500")
        .run(pbx.sip_addr());
    pbx.check("caller: answered by the forward target", &run);
    pbx.check("busy phone: 486, ACK", &busy.wait());
    pbx.check("target answers", &target.wait());
    let cdr = pbx.one_record(&["answered"]);
    assert_eq!(cdr.get(0, "destination"), C, "{:?}", cdr.rows);
    assert_eq!(cdr.get(0, "dialled"), B, "{:?}", cdr.rows);
}

#[test]
fn unanswered_extension_forwards_after_its_ring_time() {
    let pbx = pbx_with(&[]);
    pbx.ctl(&[
        "extension",
        "set",
        B,
        "--forward-noanswer",
        C,
        "--noanswer-secs",
        "5",
    ]);
    let rung = phone(&pbx, B, "call_uas_ring_cancel.xml", &[]);
    let target = phone(&pbx, C, "call_uas.xml", &[]);
    let run = caller(A, "feat_uac.xml", B)
        .arg("-d")
        .arg("500")
        .run(pbx.sip_addr());
    pbx.check("caller: answered by the forward target", &run);
    let rung = rung.wait();
    pbx.check("first phone: rings, CANCEL after 5 s", &rung);
    let target = target.wait();
    pbx.check("target answers", &target);
    let waited = invite_time(&target) - invite_time(&rung);
    assert!(
        (4.5..8.0).contains(&waited),
        "the forward target rang {waited:.2} s after the first phone (want ~5 s)"
    );
    let cdr = pbx.one_record(&["answered"]);
    assert_eq!(cdr.get(0, "destination"), C, "{:?}", cdr.rows);
    eprintln!("no-answer forward after {waited:.2} s");
}

#[test]
fn forwarding_loop_gives_482() {
    let pbx = pbx_with(&[]);
    pbx.ctl(&["extension", "set", B, "--forward-always", C]);
    pbx.ctl(&["extension", "set", C, "--forward-always", B]);
    let run = caller(A, "feat_uac_expect.xml", B)
        .global("expect", "482")
        .run(pbx.sip_addr());
    pbx.check("caller expects 482", &run);
    let cdr = pbx.one_record(&["failed"]);
    assert_eq!(cdr.get(0, "sip_status"), "482", "{:?}", cdr.rows);
    assert!(
        cdr.get(0, "reason").contains("oop"),
        "no loop reason: {:?}",
        cdr.rows
    );
}

#[test]
fn simultaneous_ring_group_first_answer_wins() {
    let pbx = pbx_with(&[]);
    pbx.ctl(&[
        "ringgroup",
        "add",
        "600",
        "--members",
        &format!("{B},{C}"),
        "--strategy",
        "simultaneous",
    ]);
    let answers = phone(&pbx, B, "call_uas.xml", &[]);
    let rings = phone(&pbx, C, "call_uas_ring_cancel.xml", &[]);
    let run = caller(A, "feat_uac.xml", "600")
        .arg("-d")
        .arg("500")
        .run(pbx.sip_addr());
    pbx.check("caller: answered through the group", &run);
    let answers = answers.wait();
    pbx.check("member 1002 answers", &answers);
    let rings = rings.wait();
    pbx.check("member 1003 rings, CANCEL", &rings);
    let together = (invite_time(&rings) - invite_time(&answers)).abs();
    assert!(
        together < 1.0,
        "members not rung together: {together:.2} s apart"
    );
    received(&rings, "CANCEL ", "CANCEL");
    let cdr = pbx.one_record(&["answered"]);
    assert_eq!(cdr.get(0, "destination"), B, "{:?}", cdr.rows);
    assert_eq!(cdr.get(0, "dialled"), "600", "{:?}", cdr.rows);
}

#[test]
fn ordered_ring_group_rings_the_next_member_after_its_time() {
    let pbx = pbx_with(&[]);
    pbx.ctl(&[
        "ringgroup",
        "add",
        "600",
        "--members",
        &format!("{B},{C}"),
        "--strategy",
        "ordered",
        "--ring-secs",
        "5",
    ]);
    let first = phone(&pbx, B, "call_uas_ring_cancel.xml", &[]);
    let second = phone(&pbx, C, "call_uas.xml", &[]);
    let run = caller(A, "feat_uac.xml", "600")
        .arg("-d")
        .arg("500")
        .run(pbx.sip_addr());
    pbx.check("caller: answered by the second member", &run);
    let first = first.wait();
    pbx.check("first member rings 5 s, CANCEL", &first);
    let second = second.wait();
    pbx.check("second member answers", &second);
    let waited = invite_time(&second) - invite_time(&first);
    assert!(
        (4.5..8.0).contains(&waited),
        "the second member rang {waited:.2} s after the first (want ~5 s)"
    );
    let cdr = pbx.one_record(&["answered"]);
    assert_eq!(cdr.get(0, "destination"), C, "{:?}", cdr.rows);
    eprintln!("ordered group: next member after {waited:.2} s");
}

/// RFC 4028: the caller asks for 90 s and never refreshes; pbxd hangs up both sides
/// when the interval runs out. Takes ~95 s.
#[test]
fn session_timer_ends_an_unrefreshed_call() {
    let pbx = pbx_with(&["--media-timeout", "600"]);
    let callee = start_phone(
        &pbx,
        B,
        &password(B),
        "feat_uas_long.xml",
        &[],
        Duration::from_secs(150),
    );
    let run = Sipp::new("feat_uac_timer.xml")
        .user(A, &password(A))
        .key("callee", B)
        .bounded(Duration::from_secs(150), Duration::from_secs(20))
        .run(pbx.sip_addr());
    pbx.check("caller: timer agreed, BYE from pbxd", &run);
    let callee = callee.wait();
    pbx.check("callee: BYE from pbxd", &callee);
    let ok = received(&run, "SIP/2.0 200", "INVITE");
    assert_eq!(sip_header(&ok, "Session-Expires"), "90;refresher=uac");
    assert!(sip_header(&ok, "Require").contains("timer"), "{ok}");
    let timed = run.received_timed();
    let answered = timed
        .iter()
        .find(|(_, m)| is_message(m, "SIP/2.0 200", "INVITE"))
        .map(|(t, _)| *t)
        .expect("200 traced");
    let bye = timed
        .iter()
        .find(|(_, m)| is_message(m, "BYE ", "BYE"))
        .map(|(t, _)| *t)
        .expect("BYE traced");
    let after = bye - answered;
    assert!(
        (55.0..95.0).contains(&after),
        "pbxd hung up {after:.1} s after the answer (session interval 90 s)"
    );
    pbx.one_record(&["answered"]);
    eprintln!("session timer: BYE {after:.1} s after the answer");
}
