//! Scenario tests on a simulated clock: the test owns `now` and jumps to the next
//! `poll_timeout()`.

use std::time::{Duration, Instant};

use super::*;
use crate::message::{parse, HeaderName, MessageBuilder};

/// An arbitrary origin for simulated time; only differences are asserted.
#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    Instant::now()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn request(method: &str, branch: &str) -> Message {
    let text = format!(
        "{method} sip:100@pbx.lan SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.9:5060;branch={branch}\r\n\
         Route: <sip:proxy.lan;lr>\r\n\
         From: \"Alice\" <sip:201@pbx.lan>;tag=ft1\r\n\
         To: <sip:100@pbx.lan>\r\n\
         Call-ID: call-1@192.0.2.9\r\n\
         CSeq: 1 {method}\r\n\
         Max-Forwards: 70\r\n\r\n"
    );
    parse(text.as_bytes()).expect("test request parses")
}

fn invite() -> Message {
    request("INVITE", "z9hG4bKinv1")
}

fn reply(req: &Message, status: u16) -> Message {
    MessageBuilder::response_to(req, status, "Reason")
        .set_to_tag("tt9")
        .build()
}

fn drain(tx: &mut Transaction) -> Vec<TransactionOutput> {
    std::iter::from_fn(|| tx.poll_output()).collect()
}

/// Runs the machine to termination by jumping to each deadline; returns the offsets at
/// which each output appeared.
fn run_to_end(tx: &mut Transaction, t0: Instant) -> Vec<(Duration, TransactionOutput)> {
    let mut log = Vec::new();
    while let Some(at) = tx.poll_timeout() {
        tx.handle(at, TransactionInput::Timeout);
        for o in drain(tx) {
            log.push((at - t0, o));
        }
    }
    log
}

fn transmit_times(log: &[(Duration, TransactionOutput)]) -> Vec<Duration> {
    log.iter()
        .filter(|(_, o)| matches!(o, TransactionOutput::Transmit(_)))
        .map(|(t, _)| *t)
        .collect()
}

fn events(log: &[(Duration, TransactionOutput)]) -> Vec<(Duration, TransactionEvent)> {
    log.iter()
        .filter_map(|(t, o)| match o {
            TransactionOutput::Event(e) => Some((*t, *e)),
            _ => None,
        })
        .collect()
}

fn client_invite(rel: Reliability, t0: Instant) -> Transaction {
    let tx = ClientInvite::new(invite(), TimerConfig::default(), rel, t0).expect("valid INVITE");
    Transaction::ClientInvite(Box::new(tx))
}

#[test]
fn invite_client_retransmits_doubling_until_timer_b() {
    let t0 = epoch();
    let mut tx = client_invite(Reliability::Unreliable, t0);
    assert_eq!(drain(&mut tx), [TransactionOutput::Transmit(invite())]);
    let log = run_to_end(&mut tx, t0);
    // Timer A: T1, then doubling: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s.
    assert_eq!(
        transmit_times(&log),
        [500, 1500, 3500, 7500, 15500, 31500].map(ms)
    );
    assert_eq!(
        events(&log),
        [
            (ms(32_000), TransactionEvent::TimedOut(Timer::B)),
            (ms(32_000), TransactionEvent::Terminated)
        ]
    );
    assert_eq!(tx.state(), State::Terminated);
}

#[test]
fn spurious_and_repeated_timeouts_are_noops() {
    let t0 = epoch();
    let mut tx = client_invite(Reliability::Unreliable, t0);
    let _ = drain(&mut tx);
    tx.handle(t0 + ms(499), TransactionInput::Timeout);
    assert_eq!(drain(&mut tx), []);
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(500)));
    tx.handle(t0 + ms(500), TransactionInput::Timeout);
    tx.handle(t0 + ms(500), TransactionInput::Timeout);
    assert_eq!(drain(&mut tx).len(), 1, "one retransmission, not two");
}

#[test]
fn invite_client_provisional_stops_retransmission_and_timer_b() {
    let t0 = epoch();
    let mut tx = client_invite(Reliability::Unreliable, t0);
    let _ = drain(&mut tx);
    let ringing = reply(&invite(), 180);
    tx.handle(t0 + ms(100), TransactionInput::Received(ringing.clone()));
    assert_eq!(drain(&mut tx), [TransactionOutput::ToTu(ringing)]);
    assert_eq!(tx.state(), State::Proceeding);
    assert_eq!(tx.poll_timeout(), None, "the TU times out a ringing INVITE");
}

#[test]
fn invite_client_acks_non_2xx_itself() {
    let t0 = epoch();
    let mut tx = client_invite(Reliability::Unreliable, t0);
    let _ = drain(&mut tx);
    let busy = reply(&invite(), 486);
    tx.handle(t0 + ms(200), TransactionInput::Received(busy.clone()));
    let out = drain(&mut tx);
    let [TransactionOutput::Transmit(ack), TransactionOutput::ToTu(up)] = &out[..] else {
        panic!("expected ACK then 486 to the TU, got {out:?}");
    };
    assert_eq!(up, &busy);
    // 17.1.1.3: same Request-URI, branch, From, Call-ID, CSeq number; To of the response.
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(ack.request_uri(), invite().request_uri());
    assert_eq!(ack.top_via().expect("Via").branch(), Some("z9hG4bKinv1"));
    assert_eq!(ack.header_count(&HeaderName::Via), 1);
    assert_eq!(ack.to_header().expect("To").tag(), Some("tt9"));
    assert_eq!(ack.from_header().expect("From").tag(), Some("ft1"));
    assert_eq!(ack.call_id(), Ok("call-1@192.0.2.9"));
    assert_eq!(ack.header(&HeaderName::CSeq), Some("1 ACK"));
    assert_eq!(ack.header(&HeaderName::Route), Some("<sip:proxy.lan;lr>"));
    assert_eq!(tx.state(), State::Completed);
    // The same ACK key as the INVITE at the server side.
    assert_eq!(
        TransactionKey::for_request(ack),
        TransactionKey::for_request(&invite())
    );

    // A retransmitted 486 is ACKed again and not passed up.
    tx.handle(t0 + ms(300), TransactionInput::Received(busy));
    assert_eq!(drain(&mut tx), [TransactionOutput::Transmit(ack.clone())]);

    let log = run_to_end(&mut tx, t0);
    assert_eq!(
        events(&log),
        [(ms(32_200), TransactionEvent::Terminated)],
        "Timer D, 32 s"
    );
}

#[test]
fn invite_client_2xx_goes_to_accepted_until_timer_m() {
    let t0 = epoch();
    let mut tx = client_invite(Reliability::Unreliable, t0);
    let _ = drain(&mut tx);
    let ok = reply(&invite(), 200);
    tx.handle(t0 + ms(50), TransactionInput::Received(ok.clone()));
    assert_eq!(
        drain(&mut tx),
        [TransactionOutput::ToTu(ok.clone())],
        "no ACK: the TU ACKs 2xx"
    );
    assert_eq!(tx.state(), State::Accepted);
    // Retransmitted 2xx reach the TU (it re-sends its ACK); a stray 486 does not.
    tx.handle(t0 + ms(550), TransactionInput::Received(ok.clone()));
    tx.handle(
        t0 + ms(560),
        TransactionInput::Received(reply(&invite(), 486)),
    );
    assert_eq!(drain(&mut tx), [TransactionOutput::ToTu(ok)]);
    let log = run_to_end(&mut tx, t0);
    assert_eq!(events(&log), [(ms(32_050), TransactionEvent::Terminated)]);
}

#[test]
fn non_invite_client_timer_e_capped_at_t2_then_timer_f() {
    let t0 = epoch();
    let req = request("OPTIONS", "z9hG4bKopt");
    let tx = ClientNonInvite::new(req, TimerConfig::default(), Reliability::Unreliable, t0);
    let mut tx = Transaction::ClientNonInvite(Box::new(tx.expect("valid")));
    assert_eq!(drain(&mut tx).len(), 1);
    let log = run_to_end(&mut tx, t0);
    assert_eq!(
        transmit_times(&log),
        [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500].map(ms)
    );
    assert_eq!(
        events(&log),
        [
            (ms(32_000), TransactionEvent::TimedOut(Timer::F)),
            (ms(32_000), TransactionEvent::Terminated)
        ]
    );
}

#[test]
fn non_invite_client_proceeding_retransmits_every_t2() {
    let t0 = epoch();
    let req = request("REGISTER", "z9hG4bKreg");
    let tx = ClientNonInvite::new(
        req.clone(),
        TimerConfig::default(),
        Reliability::Unreliable,
        t0,
    );
    let mut tx = Transaction::ClientNonInvite(Box::new(tx.expect("valid")));
    let _ = drain(&mut tx);
    tx.handle(t0 + ms(100), TransactionInput::Received(reply(&req, 100)));
    assert_eq!(tx.state(), State::Proceeding);
    let _ = drain(&mut tx);
    // Timer E as armed (0.5 s), then reset to T2 each time.
    let mut times = Vec::new();
    while let Some(at) = tx.poll_timeout().filter(|&at| at < t0 + ms(10_000)) {
        tx.handle(at, TransactionInput::Timeout);
        let n = drain(&mut tx).len();
        times.extend(std::iter::repeat_n(at - t0, n));
    }
    assert_eq!(times, [500, 4500, 8500].map(ms));
    let ok = reply(&req, 200);
    tx.handle(t0 + ms(9_000), TransactionInput::Received(ok.clone()));
    assert_eq!(drain(&mut tx), [TransactionOutput::ToTu(ok.clone())]);
    assert_eq!(tx.state(), State::Completed);
    tx.handle(t0 + ms(9_100), TransactionInput::Received(ok));
    assert_eq!(
        drain(&mut tx),
        [],
        "Completed absorbs retransmitted responses"
    );
    let log = run_to_end(&mut tx, t0);
    assert_eq!(
        events(&log),
        [(ms(14_000), TransactionEvent::Terminated)],
        "Timer K = T4"
    );
}

#[test]
fn reliable_transport_never_retransmits_and_lingers_zero() {
    let t0 = epoch();
    let mut tx = client_invite(Reliability::Reliable, t0);
    let _ = drain(&mut tx);
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(32_000)), "only Timer B");
    tx.handle(
        t0 + ms(100),
        TransactionInput::Received(reply(&invite(), 603)),
    );
    let out = drain(&mut tx);
    assert!(
        matches!(out[0], TransactionOutput::Transmit(ref m) if m.method() == Some(&Method::Ack))
    );
    assert_eq!(
        out.last(),
        Some(&TransactionOutput::Event(TransactionEvent::Terminated)),
        "Timer D = 0"
    );

    let req = request("BYE", "z9hG4bKbye");
    let tx = ClientNonInvite::new(
        req.clone(),
        TimerConfig::default(),
        Reliability::Reliable,
        t0,
    );
    let mut tx = Transaction::ClientNonInvite(Box::new(tx.expect("valid")));
    let _ = drain(&mut tx);
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(32_000)), "only Timer F");
    tx.handle(t0 + ms(10), TransactionInput::Received(reply(&req, 200)));
    assert_eq!(
        drain(&mut tx).last(),
        Some(&TransactionOutput::Event(TransactionEvent::Terminated)),
        "Timer K = 0"
    );

    let mut tx = Transaction::ServerInvite(Box::new(
        ServerInvite::new(invite(), TimerConfig::default(), Reliability::Reliable, t0)
            .expect("valid"),
    ));
    let _ = drain(&mut tx);
    tx.handle(t0, TransactionInput::Send(reply(&invite(), 486)));
    assert_eq!(
        tx.poll_timeout(),
        Some(t0 + ms(32_000)),
        "only Timer H, no Timer G"
    );
    tx.handle(
        t0 + ms(10),
        TransactionInput::Received(request("ACK", "z9hG4bKinv1")),
    );
    assert_eq!(tx.state(), State::Terminated, "Timer I = 0");

    let req = request("OPTIONS", "z9hG4bKo");
    let mut tx = Transaction::ServerNonInvite(Box::new(
        ServerNonInvite::new(
            req.clone(),
            TimerConfig::default(),
            Reliability::Reliable,
            t0,
        )
        .expect("valid"),
    ));
    tx.handle(t0, TransactionInput::Send(reply(&req, 200)));
    assert_eq!(tx.state(), State::Terminated, "Timer J = 0");
}

#[test]
fn non_invite_server_absorbs_retransmissions_then_timer_j() {
    let t0 = epoch();
    let req = request("REGISTER", "z9hG4bKr1");
    let tx = ServerNonInvite::new(
        req.clone(),
        TimerConfig::default(),
        Reliability::Unreliable,
        t0,
    );
    let mut tx = Transaction::ServerNonInvite(Box::new(tx.expect("valid")));
    assert_eq!(drain(&mut tx), [TransactionOutput::ToTu(req.clone())]);
    // Trying: nothing to resend yet.
    tx.handle(t0 + ms(500), TransactionInput::Received(req.clone()));
    assert_eq!(drain(&mut tx), []);
    let trying = reply(&req, 100);
    tx.handle(t0 + ms(600), TransactionInput::Send(trying.clone()));
    tx.handle(t0 + ms(1_500), TransactionInput::Received(req.clone()));
    assert_eq!(
        drain(&mut tx),
        [
            TransactionOutput::Transmit(trying.clone()),
            TransactionOutput::Transmit(trying)
        ]
    );
    let unauthorized = reply(&req, 401);
    tx.handle(t0 + ms(2_000), TransactionInput::Send(unauthorized.clone()));
    assert_eq!(tx.state(), State::Completed);
    tx.handle(t0 + ms(2_100), TransactionInput::Send(reply(&req, 200)));
    tx.handle(t0 + ms(3_500), TransactionInput::Received(req));
    assert_eq!(
        drain(&mut tx),
        [
            TransactionOutput::Transmit(unauthorized.clone()),
            TransactionOutput::Transmit(unauthorized)
        ],
        "a second final response is discarded; the retransmission gets the 401 again"
    );
    let log = run_to_end(&mut tx, t0);
    assert_eq!(
        events(&log),
        [(ms(34_000), TransactionEvent::Terminated)],
        "Timer J = 64*T1"
    );
}

fn server_invite(t0: Instant) -> Transaction {
    let tx = ServerInvite::new(
        invite(),
        TimerConfig::default(),
        Reliability::Unreliable,
        t0,
    );
    let mut tx = Transaction::ServerInvite(Box::new(tx.expect("valid")));
    assert_eq!(drain(&mut tx), [TransactionOutput::ToTu(invite())]);
    tx
}

#[test]
fn invite_server_retransmits_final_on_timer_g_until_ack_then_timer_i() {
    let t0 = epoch();
    let mut tx = server_invite(t0);
    // Before any response a retransmitted INVITE gets nothing (100 is the TU's call).
    tx.handle(t0 + ms(100), TransactionInput::Received(invite()));
    assert_eq!(drain(&mut tx), []);
    let ringing = reply(&invite(), 180);
    tx.handle(t0 + ms(200), TransactionInput::Send(ringing.clone()));
    tx.handle(t0 + ms(300), TransactionInput::Received(invite()));
    assert_eq!(
        drain(&mut tx),
        [
            TransactionOutput::Transmit(ringing.clone()),
            TransactionOutput::Transmit(ringing)
        ]
    );
    let busy = reply(&invite(), 486);
    tx.handle(t0 + ms(1_000), TransactionInput::Send(busy.clone()));
    assert_eq!(drain(&mut tx), [TransactionOutput::Transmit(busy.clone())]);
    assert_eq!(tx.state(), State::Completed);
    let mut sent = Vec::new();
    while let Some(at) = tx.poll_timeout().filter(|&at| at < t0 + ms(20_000)) {
        tx.handle(at, TransactionInput::Timeout);
        sent.extend(drain(&mut tx).into_iter().map(|o| (at - t0, o)));
    }
    // Timer G from T1 doubling to T2: +0.5, +1, +2, +4, +4, ...
    assert_eq!(
        transmit_times(&sent),
        [1_500, 2_500, 4_500, 8_500, 12_500, 16_500].map(ms)
    );
    // An INVITE retransmission gets the 486 too.
    tx.handle(t0 + ms(16_600), TransactionInput::Received(invite()));
    assert_eq!(drain(&mut tx), [TransactionOutput::Transmit(busy)]);
    let ack = request("ACK", "z9hG4bKinv1");
    tx.handle(t0 + ms(17_000), TransactionInput::Received(ack.clone()));
    assert_eq!(tx.state(), State::Confirmed);
    tx.handle(t0 + ms(17_100), TransactionInput::Received(ack));
    assert_eq!(
        drain(&mut tx),
        [],
        "the ACK and its retransmission are absorbed"
    );
    let log = run_to_end(&mut tx, t0);
    assert_eq!(
        events(&log),
        [(ms(22_000), TransactionEvent::Terminated)],
        "Timer I = T4"
    );
}

#[test]
fn invite_server_without_ack_times_out_on_timer_h() {
    let t0 = epoch();
    let mut tx = server_invite(t0);
    tx.handle(t0, TransactionInput::Send(reply(&invite(), 404)));
    let _ = drain(&mut tx);
    let log = run_to_end(&mut tx, t0);
    assert_eq!(
        transmit_times(&log).len(),
        10,
        "G at 0.5, 1.5, 3.5, 7.5, 11.5 ... 31.5 s"
    );
    assert_eq!(
        events(&log),
        [
            (ms(32_000), TransactionEvent::TimedOut(Timer::H)),
            (ms(32_000), TransactionEvent::Terminated)
        ]
    );
}

#[test]
fn invite_server_2xx_goes_to_accepted_until_timer_l() {
    let t0 = epoch();
    let mut tx = server_invite(t0);
    let ok = reply(&invite(), 200);
    tx.handle(t0 + ms(1_000), TransactionInput::Send(ok.clone()));
    assert_eq!(drain(&mut tx), [TransactionOutput::Transmit(ok.clone())]);
    assert_eq!(tx.state(), State::Accepted);
    // INVITE retransmissions are absorbed; the TU's 2xx retransmissions go out.
    tx.handle(t0 + ms(1_400), TransactionInput::Received(invite()));
    assert_eq!(drain(&mut tx), []);
    tx.handle(t0 + ms(1_500), TransactionInput::Send(ok.clone()));
    assert_eq!(drain(&mut tx), [TransactionOutput::Transmit(ok)]);
    let ack = request("ACK", "z9hG4bKinv1");
    tx.handle(t0 + ms(1_600), TransactionInput::Received(ack.clone()));
    assert_eq!(drain(&mut tx), [TransactionOutput::ToTu(ack)]);
    let log = run_to_end(&mut tx, t0);
    assert_eq!(
        events(&log),
        [(ms(33_000), TransactionEvent::Terminated)],
        "Timer L = 64*T1"
    );
}

#[test]
fn transport_errors_reach_the_tu() {
    let t0 = epoch();
    let req = request("MESSAGE", "z9hG4bKm");
    let tx = ClientNonInvite::new(req, TimerConfig::default(), Reliability::Reliable, t0);
    let mut tx = Transaction::ClientNonInvite(Box::new(tx.expect("valid")));
    let _ = drain(&mut tx);
    tx.handle(t0, TransactionInput::TransportError);
    assert_eq!(
        drain(&mut tx),
        [
            TransactionOutput::Event(TransactionEvent::TransportFailed),
            TransactionOutput::Event(TransactionEvent::Terminated)
        ]
    );
    tx.handle(t0, TransactionInput::Received(invite()));
    tx.handle(t0 + ms(40_000), TransactionInput::Timeout);
    assert_eq!(drain(&mut tx), [], "terminated ignores everything");
}

#[test]
fn machines_refuse_wrong_requests() {
    let t0 = epoch();
    let cfg = TimerConfig::default();
    let u = Reliability::Unreliable;
    let bye = request("BYE", "z9hG4bKb");
    let ack = request("ACK", "z9hG4bKb");
    assert_eq!(
        ClientInvite::new(bye.clone(), cfg, u, t0).err(),
        Some(TransactionError::WrongMethod(Method::Bye))
    );
    assert_eq!(
        ClientNonInvite::new(invite(), cfg, u, t0).err(),
        Some(TransactionError::WrongMethod(Method::Invite))
    );
    assert_eq!(
        ClientNonInvite::new(ack.clone(), cfg, u, t0).err(),
        Some(TransactionError::AckStartsNothing)
    );
    assert_eq!(
        ServerNonInvite::new(ack, cfg, u, t0).err(),
        Some(TransactionError::AckStartsNothing)
    );
    assert_eq!(
        ClientNonInvite::new(request("BYE", "1234"), cfg, u, t0).err(),
        Some(TransactionError::NoBranch)
    );
    assert_eq!(
        ServerInvite::new(reply(&bye, 200), cfg, u, t0).err(),
        Some(TransactionError::WrongKind {
            expected: "request"
        })
    );
}

// ---- keys and matching ----

fn rfc2543(method: &str, to_tag: &str, via_branch: &str) -> Message {
    let text = format!(
        "{method} sip:100@pbx.lan SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.7{via_branch}\r\n\
         From: <sip:old@pbx.lan>;tag=oldf\r\n\
         To: <sip:100@pbx.lan>{to_tag}\r\n\
         Call-ID: legacy-1\r\n\
         CSeq: 5 {method}\r\n\r\n"
    );
    parse(text.as_bytes()).expect("test request parses")
}

#[test]
fn server_keys_match_per_17_2_3() {
    let k = |m: &Message| TransactionKey::for_request(m).expect("key");
    let inv = k(&invite());
    assert_eq!(
        inv,
        TransactionKey::Server {
            branch: "z9hG4bKinv1".into(),
            sent_by: "192.0.2.9:5060".into(),
            method: Method::Invite
        }
    );
    assert_eq!(
        k(&request("ACK", "z9hG4bKinv1")),
        inv,
        "ACK matches its INVITE"
    );
    let cancel = k(&request("CANCEL", "z9hG4bKinv1"));
    assert_ne!(cancel, inv, "CANCEL is its own transaction");
    assert_eq!(cancel.cancelled_invite(), Some(inv.clone()));
    assert_eq!(inv.cancelled_invite(), None);
    assert_ne!(
        k(&request("INVITE", "z9hG4bKINV1")),
        inv,
        "branches are case-sensitive"
    );
    let text = String::from_utf8(invite().to_bytes()).expect("ASCII");
    let other_host =
        parse(text.replace("192.0.2.9:5060", "192.0.2.8:5060").as_bytes()).expect("parses");
    assert_ne!(k(&other_host), inv, "same branch from another sent-by");
    assert_eq!(
        TransactionKey::for_request(&reply(&invite(), 200)),
        Err(TransactionError::WrongKind {
            expected: "request"
        })
    );
}

#[test]
fn rfc2543_keys_fall_back_to_dialog_fields() {
    let k = |m: &Message| TransactionKey::for_request(m).expect("key");
    let inv = k(&rfc2543("INVITE", "", ""));
    assert!(matches!(
        &inv,
        TransactionKey::ServerRfc2543 {
            cseq: 5,
            method: Method::Invite,
            ..
        }
    ));
    assert_eq!(
        k(&rfc2543("INVITE", "", "")),
        inv,
        "a retransmission matches"
    );
    // A branch without the magic cookie is RFC 2543 too.
    assert!(matches!(
        k(&rfc2543("INVITE", "", ";branch=123")),
        TransactionKey::ServerRfc2543 { .. }
    ));
    assert_ne!(
        k(&rfc2543("INVITE", "", ";branch=123")),
        inv,
        "top Via differs"
    );
    assert_ne!(k(&rfc2543("INVITE", ";tag=x", "")), inv, "To tag differs");
    assert_ne!(k(&rfc2543("BYE", "", "")), inv);
}

#[test]
fn client_keys_match_per_17_1_3() {
    let inv = TransactionKey::for_client_request(&invite()).expect("key");
    let resp = TransactionKey::for_response(&reply(&invite(), 180)).expect("key");
    assert_eq!(inv, resp);
    let cancel = request("CANCEL", "z9hG4bKinv1");
    assert_ne!(
        TransactionKey::for_response(&reply(&cancel, 200)).expect("key"),
        inv,
        "the 200 to CANCEL shares the branch but not the method"
    );
    assert_eq!(
        TransactionKey::for_response(&reply(&request("BYE", "x1"), 200)),
        Err(TransactionError::NoBranch)
    );
}

// ---- the table ----

fn outputs(t: &mut Transactions) -> Vec<TransactionOutput> {
    std::iter::from_fn(|| t.poll_output())
        .map(|(_, o)| o)
        .collect()
}

#[test]
fn table_runs_client_and_server_through_a_lossy_link() {
    let t0 = epoch();
    let mut uac = Transactions::new(TimerConfig::default(), Reliability::Unreliable);
    let mut uas = Transactions::new(TimerConfig::default(), Reliability::Unreliable);
    let req = request("OPTIONS", "z9hG4bKlink");
    let ckey = uac.send_request(t0, req.clone()).expect("starts");
    assert_eq!(
        uac.send_request(t0, req.clone()),
        Err(TransactionError::Duplicate)
    );
    // The first transmission is lost.
    assert_eq!(
        outputs(&mut uac),
        [TransactionOutput::Transmit(req.clone())]
    );
    let t1 = uac.poll_timeout().expect("Timer E");
    uac.handle_timeout(t1);
    let [TransactionOutput::Transmit(again)] = &outputs(&mut uac)[..] else {
        panic!("one retransmission");
    };
    let Dispatch::Created(skey) = uas.handle_message(t1, again.clone()).expect("ok") else {
        panic!("new server transaction");
    };
    assert_eq!(outputs(&mut uas), [TransactionOutput::ToTu(req.clone())]);
    let ok = reply(&req, 200);
    uas.send_response(t1, &skey, ok.clone()).expect("live");
    assert_eq!(outputs(&mut uas), [TransactionOutput::Transmit(ok.clone())]);
    assert_eq!(
        uac.handle_message(t1, ok.clone()).expect("ok"),
        Dispatch::Matched(ckey.clone())
    );
    assert_eq!(outputs(&mut uac), [TransactionOutput::ToTu(ok.clone())]);
    // A late duplicate of the request is answered from the server transaction.
    assert_eq!(
        uas.handle_message(t1 + ms(10), req.clone()).expect("ok"),
        Dispatch::Matched(skey.clone())
    );
    assert_eq!(outputs(&mut uas), [TransactionOutput::Transmit(ok)]);
    // Both sides terminate on their own timers and drop the transactions.
    let end = t0 + ms(60_000);
    for table in [&mut uac, &mut uas] {
        while let Some(at) = table.poll_timeout().filter(|&at| at <= end) {
            table.handle_timeout(at);
        }
        assert!(table.is_empty());
        assert_eq!(
            outputs(table).last(),
            Some(&TransactionOutput::Event(TransactionEvent::Terminated))
        );
    }
    assert_eq!(
        uas.send_response(end, &skey, reply(&req, 200)),
        Err(TransactionError::NoSuchTransaction)
    );
}

#[test]
fn table_matches_cancel_and_hands_back_strays() {
    let t0 = epoch();
    let mut uas = Transactions::new(TimerConfig::default(), Reliability::Unreliable);
    let Dispatch::Created(inv) = uas.handle_message(t0, invite()).expect("ok") else {
        panic!("created");
    };
    let Dispatch::Created(cancel) = uas
        .handle_message(t0, request("CANCEL", "z9hG4bKinv1"))
        .expect("ok")
    else {
        panic!("CANCEL gets its own server transaction");
    };
    assert_eq!(uas.invite_for_cancel(&cancel), Some(inv.clone()));
    assert_eq!(uas.len(), 2);
    // ACK for a 2xx has a new branch: the TU's.
    let ack2xx = request("ACK", "z9hG4bKnew");
    assert_eq!(
        uas.handle_message(t0, ack2xx.clone()),
        Ok(Dispatch::Stray(ack2xx))
    );
    let stray = reply(&request("BYE", "z9hG4bKgone"), 200);
    assert_eq!(
        uas.handle_message(t0, stray.clone()),
        Ok(Dispatch::Stray(stray))
    );
}

#[test]
fn table_matches_rfc2543_ack_by_response_to_tag() {
    let t0 = epoch();
    let mut uas = Transactions::new(TimerConfig::default(), Reliability::Unreliable);
    let inv = rfc2543("INVITE", "", "");
    let Dispatch::Created(key) = uas.handle_message(t0, inv.clone()).expect("ok") else {
        panic!("created");
    };
    uas.send_response(t0, &key, reply(&inv, 486)).expect("live");
    let _ = outputs(&mut uas);
    // An ACK with another To tag is not ours.
    let wrong = rfc2543("ACK", ";tag=zz", "");
    assert_eq!(
        uas.handle_message(t0, wrong.clone()),
        Ok(Dispatch::Stray(wrong))
    );
    let ack = rfc2543("ACK", ";tag=tt9", "");
    assert_eq!(
        uas.handle_message(t0, ack),
        Ok(Dispatch::Matched(key.clone()))
    );
    assert!(matches!(
        uas.get(&key).map(Transaction::state),
        Some(State::Confirmed)
    ));
}

/// Drains the table's outputs and returns the keys that produced any.
fn output_keys(t: &mut Transactions) -> std::collections::HashSet<TransactionKey> {
    std::iter::from_fn(|| t.poll_output())
        .map(|(k, _)| k)
        .collect()
}

/// The earliest deadline among `keys` still live, computed by brute force.
fn brute_min(t: &Transactions, keys: &[TransactionKey]) -> Option<Instant> {
    keys.iter().filter_map(|k| t.get(k)?.poll_timeout()).min()
}

#[test]
fn table_with_10000_live_fires_exactly_the_due_transactions() {
    let t0 = epoch();
    let n: u64 = 10_000;
    let mut t = Transactions::new(TimerConfig::default(), Reliability::Unreliable);
    let mut answered = Vec::new();
    // Each answered at a distinct millisecond in a scrambled order (7919 is coprime
    // to n), so Timer J deadlines are distinct and not inserted in order.
    for i in 0..n {
        let req = request("OPTIONS", &format!("z9hG4bKload{i}"));
        let Dispatch::Created(key) = t.handle_message(t0, req.clone()).expect("ok") else {
            panic!("new server transaction");
        };
        let off = (i * 7919) % n;
        t.send_response(t0 + ms(off), &key, reply(&req, 200))
            .expect("live");
        answered.push((t0 + ms(off) + ms(32_000), key));
    }
    // Unanswered transactions arm no timer and must never fire.
    let mut idle = Vec::new();
    for i in 0..100 {
        let req = request("OPTIONS", &format!("z9hG4bKidle{i}"));
        let Dispatch::Created(key) = t.handle_message(t0, req.clone()).expect("ok") else {
            panic!("new server transaction");
        };
        idle.push((key, req));
    }
    let _ = output_keys(&mut t);
    assert_eq!(t.len(), 10_100);
    assert_eq!(t.poll_timeout(), Some(t0 + ms(32_000)));

    let now = t0 + ms(32_000 + 2_500) + Duration::from_micros(500);
    let due: std::collections::HashSet<TransactionKey> = answered
        .iter()
        .filter(|(at, _)| *at <= now)
        .map(|(_, k)| k.clone())
        .collect();
    assert_eq!(due.len(), 2_501);
    t.handle_timeout(now);
    assert_eq!(output_keys(&mut t), due);
    assert_eq!(t.len(), 10_100 - 2_501);
    assert!(due.iter().all(|k| t.get(k).is_none()));
    assert_eq!(t.poll_timeout(), Some(t0 + ms(32_000 + 2_501)));
    // A repeated call fires nothing.
    t.handle_timeout(now);
    assert!(output_keys(&mut t).is_empty());

    // Answer the idle ones too, then run everything to the end.
    for (key, req) in &idle {
        t.send_response(now, key, reply(req, 200)).expect("live");
    }
    let _ = output_keys(&mut t);
    assert_eq!(t.poll_timeout(), Some(t0 + ms(32_000 + 2_501)));
    let mut calls = 0;
    while let Some(at) = t.poll_timeout() {
        t.handle_timeout(at);
        calls += 1;
    }
    assert!(t.is_empty());
    assert_eq!(t.index_len(), 0);
    // One call per remaining distinct deadline: the answered ones, then the idle ones
    // (all due at `now + 32 s`).
    assert_eq!(calls, n - 2_501 + 1);
}

#[test]
fn table_deadline_index_tracks_rearming_and_empties() {
    let t0 = epoch();
    let mut t = Transactions::new(TimerConfig::default(), Reliability::Unreliable);
    let mut keys = Vec::new();
    let mut clients = Vec::new();
    for i in 0..300u64 {
        // Clients retransmit on Timer E (re-arming on every firing) until Timer F.
        let req = request("OPTIONS", &format!("z9hG4bKc{i}"));
        let key = t
            .send_request(t0 + ms(i * 37), req.clone())
            .expect("starts");
        keys.push(key);
        clients.push(req);
        // Servers linger on Timer J.
        let req = request("OPTIONS", &format!("z9hG4bKs{i}"));
        let Dispatch::Created(key) = t.handle_message(t0 + ms(i * 53), req.clone()).expect("ok")
        else {
            panic!("new server transaction");
        };
        t.send_response(t0 + ms(i * 53), &key, reply(&req, 200))
            .expect("live");
        keys.push(key);
    }
    let _ = output_keys(&mut t);
    let mut step = 0;
    while let Some(at) = t.poll_timeout() {
        assert_eq!(Some(at), brute_min(&t, &keys));
        assert!(t.index_len() <= 2 * t.len() + 64);
        let due: std::collections::HashSet<TransactionKey> = keys
            .iter()
            .filter(|k| {
                t.get(k)
                    .and_then(Transaction::poll_timeout)
                    .is_some_and(|d| d <= at)
            })
            .cloned()
            .collect();
        t.handle_timeout(at);
        assert_eq!(output_keys(&mut t), due);
        // Now and then a client gets its answer: Timer E/F give way to Timer K.
        step += 1;
        if step % 5 == 0 {
            if let Some(req) = clients.pop() {
                let _ = t.handle_message(at, reply(&req, 200)).expect("ok");
                let _ = output_keys(&mut t);
            }
        }
        keys.retain(|k| t.get(k).is_some());
    }
    assert!(t.is_empty());
    assert_eq!(t.index_len(), 0);
    assert_eq!(t.poll_timeout(), None);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn machine(kind: u8, rel: Reliability, t0: Instant) -> Transaction {
        let cfg = TimerConfig::default();
        let made = match kind {
            0 => ClientInvite::new(invite(), cfg, rel, t0)
                .map(|t| Transaction::ClientInvite(Box::new(t))),
            1 => ClientNonInvite::new(request("BYE", "z9hG4bKp"), cfg, rel, t0)
                .map(|t| Transaction::ClientNonInvite(Box::new(t))),
            2 => ServerInvite::new(invite(), cfg, rel, t0)
                .map(|t| Transaction::ServerInvite(Box::new(t))),
            _ => ServerNonInvite::new(request("BYE", "z9hG4bKp"), cfg, rel, t0)
                .map(|t| Transaction::ServerNonInvite(Box::new(t))),
        };
        made.expect("valid test requests")
    }

    fn input(op: u8, status: u16) -> TransactionInput {
        let inv = invite();
        match op {
            0 => TransactionInput::Timeout,
            1 => TransactionInput::Received(reply(&inv, status)),
            2 => TransactionInput::Send(reply(&inv, status)),
            3 => TransactionInput::Received(inv),
            4 => TransactionInput::Received(request("ACK", "z9hG4bKinv1")),
            5 => TransactionInput::Received(request("BYE", "z9hG4bKp")),
            _ => TransactionInput::TransportError,
        }
    }

    proptest! {
        /// Any input sequence at any times: no panic, every due timer fires on
        /// `Timeout`, and a terminated machine has no timers and stays silent.
        #[test]
        fn machines_keep_their_invariants(
            kind in 0u8..4,
            reliable in any::<bool>(),
            steps in proptest::collection::vec((0u64..40_000, 0u8..8, 100u16..700), 0..40),
        ) {
            let t0 = epoch();
            let rel = if reliable { Reliability::Reliable } else { Reliability::Unreliable };
            let mut tx = machine(kind, rel, t0);
            let mut now = t0;
            let mut terminated = false;
            for (dt, op, status) in steps {
                now += ms(dt);
                let is_timeout = op == 0 || op == 7;
                tx.handle(now, if is_timeout { TransactionInput::Timeout } else { input(op, status) });
                let out = drain(&mut tx);
                if terminated {
                    prop_assert!(out.is_empty());
                }
                if is_timeout {
                    prop_assert!(tx.poll_timeout().is_none_or(|at| at > now));
                }
                let ended = out.contains(&TransactionOutput::Event(TransactionEvent::Terminated));
                prop_assert_eq!(ended || terminated, tx.state() == State::Terminated);
                terminated |= ended;
                if terminated {
                    prop_assert_eq!(tx.poll_timeout(), None);
                }
            }
        }
    }
}
