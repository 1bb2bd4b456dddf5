//! Click-to-dial (issue 6) end to end: a user logged in to the web API (HTTPS, driven with
//! Debian's `curl`) clicks a number; pbxd rings the user's own phone (a headless baresip,
//! 1001, auto-answer) showing the number it is about to call, and once that answers
//! calls the number exactly as if 1001 had dialled it: 1002 (another baresip) rings,
//! answers, and the two hear each other's tone through the relay. The call record is
//! 1001's call to 1002. A number in a blocked range is refused over HTTPS with its
//! reason, and 1001 never rings. With an analog port as the user's extension
//! (`--hardware sim`), the port rings first with the number as caller ID. While the
//! number rings (a callee set to answer by hand) the user's recording holds the box's
//! German ringback, 425 Hz 1 s on / 4 s off, then the callee; a callee that rejects gives
//! the user the busy tone (0.48/0.48 s) before the box hangs up.
//!
//! ```sh
//! cargo build -p pbxd --bins && cargo test -p pbx-e2e --test click_to_dial -- --nocapture
//! ```
//!
//! Needs `baresip-core` and `curl`, and the built `pbxd`/`pbxctl` binaries.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use pbx_e2e::{
    check_cadence, json_field, normalize_disposition, require_tool, rtp_port_range, tone_runs, Pbx,
    Phone, PhoneConfig, ToneReport,
};

const USER_EXT: &str = "1001";
const USER_PW: &str = "s3cret-1001";
const CALLEE: &str = "1002";
const CALLEE_PW: &str = "s3cret-1002";
const USER_TONE: f64 = 440.0;
const CALLEE_TONE: f64 = 1400.0;
const PCMA: &str = "PCMA/8000/1";
const TALK: Duration = Duration::from_secs(4);
/// As in audio.rs: a tone counts as heard at a quarter of its peak in a 40 ms block.
const HEARD: f64 = 2000.0;
const MIN_HEARD_SECS: f64 = 3.0;

const ROOT_PW: &str = "root-password-1";
const ANNA_PW: &str = "anna-password-1";

/// A web session through curl: a cookie jar and the session's CSRF token.
struct Web {
    base: String,
    jar: PathBuf,
    csrf: String,
}

impl Web {
    /// The HTTPS address from pbxd's ready line.
    fn base(pbx: &Pbx) -> String {
        let log = pbx.log();
        let addr = log
            .lines()
            .find_map(|l| l.split(" https=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no https= in pbxd's ready line:\n{log}"));
        format!("https://{addr}")
    }

    /// `method path` with a JSON body; returns the status and the body.
    fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-k", "--max-time", "20", "-X", method])
            .arg("-c")
            .arg(&self.jar)
            .arg("-b")
            .arg(&self.jar)
            .args(["-H", "Content-Type: application/json", "-d", body])
            .args(["-w", "\n%{http_code}"]);
        if !self.csrf.is_empty() {
            cmd.args(["-H", &format!("X-CSRF-Token: {}", self.csrf)]);
        }
        let out = cmd
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        let status = status.trim().parse().unwrap_or_else(|_| {
            panic!(
                "curl {method} {path}: no status in {text:?}; stderr {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (status, body.to_owned())
    }

    /// Logs `user` in with a fresh cookie jar in `dir`.
    fn login(base: &str, dir: &Path, user: &str, password: &str) -> Web {
        let mut web = Web {
            base: base.to_owned(),
            jar: dir.join(format!("{user}.cookies")),
            csrf: String::new(),
        };
        let (status, body) = web.request(
            "POST",
            "/api/v1/login",
            &format!(r#"{{"username":"{user}","password":"{password}"}}"#),
        );
        assert_eq!(status, 200, "login {user}: {body}");
        web.csrf = json_field(&body, "csrf_token").expect("csrf_token");
        web
    }

    fn dial(&self, number: &str) -> (u16, String) {
        self.request(
            "POST",
            "/api/v1/me/dial",
            &format!(r#"{{"number":"{number}"}}"#),
        )
    }
}

/// Sets up pbxd's first administrator and anna, a web user on `extension`; returns
/// anna's session.
fn web_user(pbx: &Pbx, dir: &Path, extension: &str) -> Web {
    let base = Web::base(pbx);
    let token = std::fs::read_to_string(pbx.data_dir().join("setup-token"))
        .expect("setup-token")
        .trim()
        .to_owned();
    let setup = Web {
        base: base.clone(),
        jar: dir.join("setup.cookies"),
        csrf: String::new(),
    };
    let (status, body) = setup.request(
        "POST",
        "/api/v1/setup",
        &format!(r#"{{"token":"{token}","username":"root","password":"{ROOT_PW}"}}"#),
    );
    assert_eq!(status, 201, "setup: {body}");
    let root = Web::login(&base, dir, "root", ROOT_PW);
    let (status, body) = root.request(
        "POST",
        "/api/v1/users",
        &format!(
            r#"{{"username":"anna","password":"{ANNA_PW}","role":"user","extension":"{extension}"}}"#
        ),
    );
    assert_eq!(status, 201, "add anna on {extension}: {body}");
    Web::login(&base, dir, "anna", ANNA_PW)
}

/// pbxd with 1001 and 1002, both phones registered, and anna (a web user on 1001)
/// logged in.
struct Office {
    pbx: Pbx,
    user: Phone,
    callee: Phone,
    anna: Web,
    _dir: tempfile::TempDir,
}

impl Office {
    fn start() -> Office {
        Self::start_with(PhoneConfig::new(CALLEE, CALLEE_PW, &[PCMA], CALLEE_TONE))
    }

    /// As [`Office::start`] with the callee's phone set up as `callee`.
    fn start_with(callee: PhoneConfig) -> Office {
        require_tool("baresip", "baresip-core");
        require_tool("curl", "curl");
        let (min, max) = rtp_port_range();
        let pbx = Pbx::builder()
            .extension(USER_EXT, USER_PW)
            .extension(CALLEE, CALLEE_PW)
            // libre (baresip 1.0) gives up on a 401/407 that offers SHA-256.
            .arg("--digest-algorithms")
            .arg("md5")
            .arg("--rtp-ports")
            .arg(&format!("{min}-{max}"))
            .start();
        let dir = tempfile::tempdir().expect("tempdir");
        let anna = web_user(&pbx, dir.path(), USER_EXT);
        let callee = Phone::start(&pbx, callee);
        let user = Phone::start(
            &pbx,
            PhoneConfig::new(USER_EXT, USER_PW, &[PCMA], USER_TONE),
        );
        Office {
            pbx,
            user,
            callee,
            anna,
            _dir: dir,
        }
    }

    fn context(&self) -> String {
        format!(
            "--- user's phone {USER_EXT}:\n{}\n--- callee {CALLEE}:\n{}\n--- pbxd:\n{}",
            self.user.log(),
            self.callee.log(),
            self.pbx.log()
        )
    }

    /// Waits for `event` on `phone`, else panics with everything.
    fn expect_event(&self, who: &str, phone: &Phone, event: &str) -> pbx_e2e::BaresipMessage {
        phone
            .wait_event(event, Duration::from_secs(15))
            .unwrap_or_else(|| {
                panic!(
                    "{who} saw no {event}; events: {:?}\n{}",
                    phone.events(),
                    self.context()
                )
            })
    }
}

#[test]
fn the_users_phone_rings_first_then_the_number_with_audio_both_ways() {
    let office = Office::start();
    let (status, body) = office.anna.dial(CALLEE);
    assert_eq!(status, 202, "{body}\n{}", office.context());
    assert_eq!(json_field(&body, "extension").as_deref(), Some(USER_EXT));

    // The user's own phone rings first (it answers by itself), showing the number it
    // is about to call. (baresip 1.0 reports auto-answered calls from CALL_ESTABLISHED
    // on, with the peer's URI as its parameter.)
    let up = office.expect_event("the user's phone", &office.user, "CALL_ESTABLISHED");
    let shown = up.field("param").unwrap_or_default();
    assert!(
        shown.contains(&format!("sip:{CALLEE}@")),
        "the user's phone shows {shown:?}, not the number"
    );
    // Then the number, from the user's extension.
    let up = office.expect_event("the callee", &office.callee, "CALL_ESTABLISHED");
    let shown = up.field("param").unwrap_or_default();
    assert!(
        shown.contains(&format!("sip:{USER_EXT}@")),
        "the callee sees {shown:?}, not the user's extension"
    );
    for (who, phone) in [
        ("the user's phone", &office.user),
        ("the callee", &office.callee),
    ] {
        office.expect_event(who, phone, "CALL_RTPESTAB");
    }
    assert_eq!(office.pbx.health_calls(), Some(1), "{}", office.context());
    thread::sleep(TALK);
    if let Err(e) = office.user.command("hangup", "") {
        panic!("hangup refused: {e}\n{}", office.context());
    }
    for (who, phone) in [
        ("the user's phone", &office.user),
        ("the callee", &office.callee),
    ] {
        office.expect_event(who, phone, "CALL_CLOSED");
    }

    // Each heard the other's tone, not its own.
    for (who, phone, own, other) in [
        ("the user's phone", &office.user, USER_TONE, CALLEE_TONE),
        ("the callee", &office.callee, CALLEE_TONE, USER_TONE),
    ] {
        let got = phone
            .received_audio()
            .unwrap_or_else(|e| panic!("{who}: {e}\n{}", office.context()));
        let report = ToneReport::analyse(&got, other, own, HEARD);
        eprintln!("{who} received {:.1} s: {report:?}", got.seconds());
        assert!(
            report.expected_seconds() >= MIN_HEARD_SECS,
            "{who} did not hear the other's {other} Hz tone for {MIN_HEARD_SECS} s: {report:?}\n{}",
            office.context()
        );
        assert!(
            report.unwanted_blocks * 20 <= report.blocks,
            "{who} heard its own {own} Hz tone: {report:?}\n{}",
            office.context()
        );
    }

    // The record is 1001's call to 1002, answered, ended by 1001.
    let cdr = office.pbx.one_record(&["answered"]);
    assert_eq!(cdr.get(0, "caller"), USER_EXT, "{:?}", cdr.rows);
    assert_eq!(cdr.get(0, "dialled"), CALLEE, "{:?}", cdr.rows);
    assert_eq!(cdr.get(0, "destination"), CALLEE, "{:?}", cdr.rows);
    assert_eq!(cdr.get(0, "hangup"), "caller", "{:?}", cdr.rows);
}

/// The German ringback tone (site country code 49): 425 Hz, 1 s on, 4 s off.
const RINGBACK_HZ: f64 = 425.0;
/// How long the callee rings before it answers: two ringback bursts and the gap.
const RING: Duration = Duration::from_millis(7500);
/// Tolerance on the bursts and gaps as heard (packet timing, block edges).
const CADENCE_TOLERANCE: f64 = 0.3;

#[test]
fn the_user_hears_ringback_while_the_number_rings_then_the_callee() {
    let office = Office::start_with(
        PhoneConfig::new(CALLEE, CALLEE_PW, &[PCMA], CALLEE_TONE).ringing_until_accepted(),
    );
    let (status, body) = office.anna.dial(CALLEE);
    assert_eq!(status, 202, "{body}\n{}", office.context());
    office.expect_event("the user's phone", &office.user, "CALL_ESTABLISHED");
    office.expect_event("the callee", &office.callee, "CALL_INCOMING");
    // The number rings: no early media from baresip, so the box plays ringback.
    thread::sleep(RING);
    if let Err(e) = office.callee.command("accept", "") {
        panic!("accept refused: {e}\n{}", office.context());
    }
    office.expect_event("the callee", &office.callee, "CALL_ESTABLISHED");
    thread::sleep(TALK);
    if let Err(e) = office.user.command("hangup", "") {
        panic!("hangup refused: {e}\n{}", office.context());
    }
    office.expect_event("the callee", &office.callee, "CALL_CLOSED");

    let got = office
        .user
        .received_audio()
        .unwrap_or_else(|e| panic!("the user's phone: {e}\n{}", office.context()));
    let runs = tone_runs(&got, RINGBACK_HZ, CALLEE_TONE, HEARD);
    eprintln!("425 Hz runs (present, s): {runs:?}");
    let bursts = check_cadence(&runs, 1.0, 4.0, CADENCE_TOLERANCE)
        .unwrap_or_else(|e| panic!("ringback: {e}\n{}", office.context()));
    assert!(bursts >= 2, "{runs:?}");
    // After the answer: the callee's tone, and no ringback any more.
    let callee_runs = tone_runs(&got, CALLEE_TONE, RINGBACK_HZ, HEARD);
    eprintln!("{CALLEE_TONE} Hz runs (present, s): {callee_runs:?}");
    let ringback_end: f64 = {
        let last = runs.iter().rposition(|r| r.0).expect("bursts were found");
        runs[..=last].iter().map(|r| r.1).sum()
    };
    let mut t = 0.0;
    let mut callee_heard_after = 0.0;
    let mut callee_heard_before = 0.0;
    for (on, secs) in &callee_runs {
        if *on {
            if t >= ringback_end {
                callee_heard_after += secs;
            } else {
                callee_heard_before += secs;
            }
        }
        t += secs;
    }
    // Half the talk time: enough to tell the callee from silence on a loaded machine.
    assert!(
        callee_heard_after >= TALK.as_secs_f64() / 2.0,
        "the callee's {CALLEE_TONE} Hz heard for {callee_heard_after:.2} s after the ringback\n{}",
        office.context()
    );
    assert!(
        callee_heard_before < 0.1,
        "the callee heard during the ringback for {callee_heard_before:.2} s"
    );
    let cdr = office.pbx.one_record(&["answered"]);
    assert_eq!(cdr.get(0, "destination"), CALLEE, "{:?}", cdr.rows);
}

#[test]
fn a_busy_number_gives_the_user_the_busy_tone_then_the_box_hangs_up() {
    let office = Office::start_with(
        PhoneConfig::new(CALLEE, CALLEE_PW, &[PCMA], CALLEE_TONE).ringing_until_accepted(),
    );
    let (status, body) = office.anna.dial(CALLEE);
    assert_eq!(status, 202, "{body}\n{}", office.context());
    office.expect_event("the user's phone", &office.user, "CALL_ESTABLISHED");
    office.expect_event("the callee", &office.callee, "CALL_INCOMING");
    // Into the ringback's first pause, then the callee rejects (baresip: 486).
    thread::sleep(Duration::from_millis(2500));
    if let Err(e) = office.callee.command("hangup", "") {
        panic!("reject refused: {e}\n{}", office.context());
    }
    // The box hangs up the user's phone after the busy tone.
    office.expect_event("the user's phone", &office.user, "CALL_CLOSED");
    let got = office
        .user
        .received_audio()
        .unwrap_or_else(|e| panic!("the user's phone: {e}\n{}", office.context()));
    // The last 3 s: the German busy tone, 425 Hz 0.48 s on, 0.48 s off.
    let tail = got.samples.len().saturating_sub(3 * got.rate as usize);
    let end = pbx_e2e::Wav {
        rate: got.rate,
        samples: got.samples[tail..].to_vec(),
    };
    let runs = tone_runs(&end, RINGBACK_HZ, CALLEE_TONE, HEARD);
    eprintln!("425 Hz runs in the last 3 s (present, s): {runs:?}");
    // The runs at the window's edges may be cut short.
    let inner = &runs[1..runs.len().saturating_sub(1).max(1)];
    let bursts = check_cadence(inner, 0.48, 0.48, 0.15)
        .unwrap_or_else(|e| panic!("busy tone: {e}\n{}", office.context()));
    assert!(bursts >= 2, "{runs:?}");
    let cdr = office.pbx.one_record(&["busy"]);
    assert_eq!(cdr.get(0, "destination"), CALLEE, "{:?}", cdr.rows);
}

#[test]
fn a_blocked_number_is_refused_with_its_reason_and_the_phone_never_rings() {
    let office = Office::start();
    let (status, body) = office.anna.dial("0900123456");
    assert_eq!(status, 403, "{body}\n{}", office.context());
    let why = json_field(&body, "error").unwrap_or_default();
    assert!(why.contains("0900"), "reason {why:?}");
    assert_eq!(json_field(&body, "field").as_deref(), Some("number"));
    // Nothing rings, now or a little later.
    thread::sleep(Duration::from_secs(2));
    assert!(
        !office
            .user
            .events()
            .iter()
            .any(|(kind, _)| kind.starts_with("CALL_")),
        "the user's phone rang: {:?}\n{}",
        office.user.events(),
        office.context()
    );
    let cdr = office.pbx.one_record(&["blocked"]);
    assert_eq!(cdr.get(0, "caller"), USER_EXT, "{:?}", cdr.rows);
    assert_eq!(cdr.get(0, "dialled"), "0900123456", "{:?}", cdr.rows);
    assert!(
        normalize_disposition(cdr.get(0, "disposition")) == Some("blocked"),
        "{:?}",
        cdr.rows
    );

    // The same user can still place an allowed call afterwards: the refusal left nothing.
    let (status, body) = office.anna.dial(CALLEE);
    assert_eq!(status, 202, "{body}\n{}", office.context());
    office.expect_event("the user's phone", &office.user, "CALL_ESTABLISHED");
    office.expect_event("the callee", &office.callee, "CALL_ESTABLISHED");
    if let Err(e) = office.callee.command("hangup", "") {
        panic!("hangup refused: {e}\n{}", office.context());
    }
    office.expect_event("the user's phone", &office.user, "CALL_CLOSED");
    office.pbx.assert_no_call_left();
}

/// The user's extension is an analog port (21 on `--hardware sim`): the port rings with
/// the number as caller ID, the handset is lifted, the SIP phone 1002 is called from 21
/// and the port's earpiece hears it.
#[test]
fn an_analog_port_is_rung_first_when_it_is_the_users_extension() {
    require_tool("baresip", "baresip-core");
    require_tool("curl", "curl");
    let pbx = Pbx::builder()
        .extension(CALLEE, CALLEE_PW)
        // A web account links to a row of the extensions table: the port's number needs
        // one (the port still takes its calls: ringing 21 rings the port).
        .extension("21", "s3cret-0021")
        .arg("--digest-algorithms")
        .arg("md5")
        .start();
    assert!(
        pbx.log().contains("simulated analog ports started"),
        "{}",
        pbx.log()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let anna = web_user(&pbx, dir.path(), "21");
    let callee = Phone::start(
        &pbx,
        PhoneConfig::new(CALLEE, CALLEE_PW, &[PCMA], CALLEE_TONE),
    );
    let (status, body) = anna.dial(CALLEE);
    assert_eq!(status, 202, "{body}\n{}", pbx.log());
    // Port 1 rings, showing the number it is about to call.
    let (state, ok) = pbx.sim_until("status 1", Duration::from_secs(8), |a| {
        a.contains("cid=1002")
    });
    assert!(
        ok,
        "port 1 does not ring with caller ID 1002: {state}\n{}",
        pbx.log()
    );
    assert!(
        callee.events().is_empty(),
        "1002 was called before the port answered: {:?}",
        callee.events()
    );
    pbx.sim("offhook 1");
    let up = callee
        .wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("1002 not called: {:?}\n{}", callee.events(), pbx.log()));
    let shown = up.field("param").unwrap_or_default();
    assert!(shown.contains("sip:21@"), "1002 sees {shown:?}");
    // 1002's microphone (1400 Hz) comes out of the port's earpiece.
    let (level, ok) = pbx.sim_until("hear 1 1400", Duration::from_secs(5), |a| {
        a.strip_prefix("hear=")
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|db| db > -6.0)
    });
    assert!(ok, "port 1 does not hear 1002: {level}\n{}", pbx.log());
    pbx.sim("onhook 1");
    assert!(
        callee
            .wait_event("CALL_CLOSED", Duration::from_secs(10))
            .is_some(),
        "1002's call does not end"
    );
    let cdr = pbx.one_record(&["answered"]);
    assert_eq!(cdr.get(0, "caller"), "21", "{:?}", cdr.rows);
    assert_eq!(cdr.get(0, "dialled"), CALLEE, "{:?}", cdr.rows);
    assert_eq!(cdr.get(0, "hangup"), "caller", "{:?}", cdr.rows);
}
