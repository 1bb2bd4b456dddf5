//! A phone behind NAT calls, and is called by, a phone on the box's LAN through pbxd, with
//! audio both ways (issue 3, "Tests (real peers)": NAT).
//!
//! Each test builds its own network namespaces (`NatLab` in the crate):
//!
//! ```text
//!  pbxpriv-ID                 pbxnat-ID                          pbxlan-ID
//!  1001 192.168.77.2 ----- 192.168.77.1 | 10.77.1.254 ----- pbxd 10.77.1.1, 1002 10.77.1.2
//!  (default route via .1)   MASQUERADE out of the LAN side      (no route to 192.168.77/24)
//! ```
//!
//! The router maps UDP source ports to 40000-49999, so the NATed phone's REGISTER, INVITE
//! and RTP reach pbxd from 10.77.1.254 and a port that is not in its Contact or SDP, which
//! carry its private 192.168.77.2:5060 and its private RTP port. The LAN has no route to
//! the private network: pbxd reaches 1001 only if it answers and sends requests (the
//! INVITE to it, the BYE to it) to the address and port it saw, and relays RTP to the
//! latched source, not to the SDP address. No SIP ALG: Linux only attaches conntrack
//! helpers when a rule asks for them, and the Contact check below would catch one.
//!
//! Both phones are headless baresip (`Phone::start_in`): 1001 plays 440 Hz, 1002 1400 Hz,
//! both PCMA. Each test checks the registrations, the call (each side hears the other's
//! tone, Goertzel over 40 ms blocks, as in `audio.rs`), the RTP coming from pbxd's relay,
//! the call record (answered, the NATed phone's IP as the router's), the health API back
//! to 0 calls, and that the router translated the flows.
//!
//! Needs root (or passwordless sudo), iproute2, iptables (nft backend is fine) and
//! baresip-core; `NAT_PCAP_DIR=/some/dir` also records the router's traffic with tcpdump.
//!
//! ```sh
//! cargo build -p pbxd --bins && cargo test -p pbx-e2e --test nat -- --nocapture
//! ```

use std::thread;
use std::time::Duration;

use pbx_e2e::{
    normalize_disposition, parse_registrations, rtp_port_range, NatLab, NsPbx, Phone, PhoneConfig,
    RegistrationRow, ToneReport, LAN_PBX_IP, LAN_PHONE_IP, NAT_UDP_PORTS, PRIVATE_PHONE_IP,
    ROUTER_LAN_IP,
};

/// The phone behind NAT.
const NATED: &str = "1001";
const NATED_PW: &str = "s3cret-1001";
/// The phone on the LAN, next to pbxd.
const LAN: &str = "1002";
const LAN_PW: &str = "s3cret-1002";

const NATED_TONE: f64 = 440.0;
const LAN_TONE: f64 = 1400.0;
const PCMA: &str = "PCMA/8000/1";

/// How long the phones talk once the call is up.
const TALK: Duration = Duration::from_secs(4);
/// A tone counts as heard at a quarter of its peak (8000) in a 40 ms block.
const HEARD: f64 = 2000.0;
/// Of the talk time, this much must carry the other phone's tone, clearly.
const MIN_HEARD_SECS: f64 = 3.0;

/// Which phone does something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Nated,
    Lan,
}

/// The topology, pbxd and both phones, registered. Field order is drop order: the
/// processes go before the namespaces they run in.
struct Office {
    nated: Phone,
    lan: Phone,
    pbx: NsPbx,
    rtp_ports: (u16, u16),
    net: NatLab,
}

impl Office {
    fn start() -> Office {
        let net = NatLab::build();
        net.assert_private_net_unreachable_from_lan();
        let (min, max) = rtp_port_range();
        let pbx = NsPbx::start(
            &net,
            &[(NATED, NATED_PW), (LAN, LAN_PW)],
            &[
                // libre (baresip 1.0) gives up on a 401/407 offering SHA-256.
                "--digest-algorithms",
                "md5",
                "--rtp-ports",
                &format!("{min}-{max}"),
            ],
        );
        let lan = Phone::start_in(
            &net.lan,
            LAN_PHONE_IP,
            net.lan_mgmt(),
            &pbx,
            PhoneConfig::new(LAN, LAN_PW, &[PCMA], LAN_TONE),
        );
        let nated = Phone::start_in(
            &net.private,
            PRIVATE_PHONE_IP,
            net.private_mgmt(),
            &pbx,
            PhoneConfig::new(NATED, NATED_PW, &[PCMA], NATED_TONE),
        );
        Office {
            nated,
            lan,
            pbx,
            rtp_ports: (min, max),
            net,
        }
    }

    fn phone(&self, who: Who) -> &Phone {
        match who {
            Who::Nated => &self.nated,
            Who::Lan => &self.lan,
        }
    }

    fn context(&self) -> String {
        format!(
            "--- {NATED} (behind NAT, {}):\n{}\n--- {LAN} (LAN, {}):\n{}\n--- router:\n{}\
             {}\n--- pbxd:\n{}",
            self.net.private.name(),
            self.nated.log(),
            self.net.lan.name(),
            self.lan.log(),
            self.net.nat_rules(),
            self.net
                .pcap_path()
                .map(|p| format!("capture: {}\n", p.display()))
                .unwrap_or_default(),
            self.pbx.log()
        )
    }

    fn registration(&self, user: &str) -> RegistrationRow {
        let out = self.pbx.registrations();
        let rows: Vec<_> = parse_registrations(&out)
            .into_iter()
            .filter(|r| r.aor.starts_with(&format!("{user}@")))
            .collect();
        match rows.as_slice() {
            [row] => row.clone(),
            _ => panic!("expected one binding for {user}:\n{out}"),
        }
    }

    /// pbxd stored the NATed phone's private Contact, and saw its REGISTER come from the
    /// router's LAN address and a masqueraded port; the LAN phone is seen as itself.
    fn assert_registrations(&self) {
        let nated = self.registration(NATED);
        assert!(
            nated.contact.contains(&format!("@{PRIVATE_PHONE_IP}:5060")),
            "{NATED}'s Contact should be its private address (no SIP ALG rewrote it): \
             {nated:?}\n{}",
            self.context()
        );
        let port = nated
            .source
            .strip_prefix(&format!("udp:{ROUTER_LAN_IP}:"))
            .and_then(|p| p.parse::<u16>().ok());
        assert!(
            port.is_some_and(|p| (NAT_UDP_PORTS.0..=NAT_UDP_PORTS.1).contains(&p)),
            "{NATED}'s source should be the router {ROUTER_LAN_IP} with a port in \
             {NAT_UDP_PORTS:?}: {nated:?}\n{}",
            self.context()
        );
        // So its SDP offers and answers carry the private address too.
        let log = self.nated.log();
        assert!(
            log.lines().any(|l| l.contains("Local network address")
                && l.contains(&PRIVATE_PHONE_IP.to_string())),
            "{NATED} does not use {PRIVATE_PHONE_IP} as its media address\n{}",
            self.context()
        );
        let lan = self.registration(LAN);
        assert!(
            lan.contact.contains(&format!("@{LAN_PHONE_IP}:5060"))
                && lan.source == format!("udp:{LAN_PHONE_IP}:5060"),
            "{LAN}'s binding: {lan:?}\n{}",
            self.context()
        );
    }

    /// `caller` dials the other phone (auto answer); waits until both have the call up
    /// and receive RTP, from pbxd's relay ports, in PCMA.
    fn call(&self, caller: Who) {
        let callee_number = match caller {
            Who::Nated => LAN,
            Who::Lan => NATED,
        };
        if let Err(e) = self.phone(caller).command("dial", callee_number) {
            panic!("dial refused: {e}\n{}", self.context());
        }
        for (who, phone) in [(NATED, &self.nated), (LAN, &self.lan)] {
            for event in ["CALL_ESTABLISHED", "CALL_RTPESTAB"] {
                if phone.wait_event(event, Duration::from_secs(15)).is_none() {
                    panic!(
                        "{who} saw no {event}; events: {:?}\n{}",
                        phone.events(),
                        self.context()
                    );
                }
            }
        }
        for (who, phone) in [(NATED, &self.nated), (LAN, &self.lan)] {
            // The log comes through a pipe, maybe just after the ctrl_tcp event.
            let deadline = pbx_e2e::now() + Duration::from_secs(3);
            let (mut codecs, mut source) = (phone.codecs_in_use(), phone.rtp_source());
            while (codecs.1.is_none() || source.is_none()) && pbx_e2e::now() < deadline {
                thread::sleep(Duration::from_millis(50));
                (codecs, source) = (phone.codecs_in_use(), phone.rtp_source());
            }
            let pcma = Some("PCMA".to_string());
            assert_eq!(
                codecs,
                (pcma.clone(), pcma),
                "{who}: codecs (encoder, decoder)\n{}",
                self.context()
            );
            let (min, max) = self.rtp_ports;
            assert!(
                source.is_some_and(|a| a.ip() == LAN_PBX_IP && (min..=max).contains(&a.port())),
                "{who}: RTP from {source:?}, not from pbxd's relay {LAN_PBX_IP} ports \
                 {min}-{max}\n{}",
                self.context()
            );
        }
        let calls = self.pbx.health_calls();
        assert_eq!(
            calls,
            Some(1),
            "health API during the call: {calls:?}\n{}",
            self.context()
        );
    }

    /// `who` hangs up; waits until both phones closed the call.
    fn hang_up(&self, who: Who) {
        if let Err(e) = self.phone(who).command("hangup", "") {
            panic!("hangup refused: {e}\n{}", self.context());
        }
        for (name, phone) in [(NATED, &self.nated), (LAN, &self.lan)] {
            if phone
                .wait_event("CALL_CLOSED", Duration::from_secs(10))
                .is_none()
            {
                panic!(
                    "{name} saw no CALL_CLOSED; events: {:?}\n{}",
                    phone.events(),
                    self.context()
                );
            }
        }
    }

    /// Each phone sent its own tone and received the other's, clearly, and not its own.
    fn assert_each_hears_the_other(&self) {
        for (who, phone, own, other) in [
            (NATED, &self.nated, NATED_TONE, LAN_TONE),
            (LAN, &self.lan, LAN_TONE, NATED_TONE),
        ] {
            let sent = phone
                .sent_audio()
                .unwrap_or_else(|e| panic!("{who}: {e}\n{}", self.context()));
            let sent = ToneReport::analyse(&sent, own, other, HEARD);
            assert!(
                sent.expected_seconds() >= MIN_HEARD_SECS,
                "{who} did not even send its own tone: {sent:?}\n{}",
                self.context()
            );
            let got = phone
                .received_audio()
                .unwrap_or_else(|e| panic!("{who}: {e}\n{}", self.context()));
            let report = ToneReport::analyse(&got, other, own, HEARD);
            eprintln!(
                "{who} received {:.1} s at {} Hz: {report:?}",
                got.seconds(),
                got.rate
            );
            assert!(
                report.expected_seconds() >= MIN_HEARD_SECS,
                "{who} did not hear the other phone's {other} Hz tone for {MIN_HEARD_SECS} s: \
                 {report:?}\n{}",
                self.context()
            );
            assert!(
                report.unwanted_blocks * 20 <= report.blocks,
                "{who} heard its own {own} Hz tone (echo or crossed legs): {report:?}\n{}",
                self.context()
            );
        }
    }

    /// One answered call record from `caller`, ended by `hangup`, with the NATed phone's
    /// address as the router's; no call left in pbxd; the router translated at least the
    /// SIP flow and the RTP flow.
    fn assert_recorded_and_freed(&self, caller: Who, hangup: Who) {
        let cdr = self.pbx.wait_cdr(1, Duration::from_secs(5));
        assert_eq!(
            cdr.rows.len(),
            1,
            "expected one call record: {:?}\n{:?}\n{}",
            cdr.header,
            cdr.rows,
            self.context()
        );
        let disposition = cdr.get(0, "disposition");
        assert_eq!(
            normalize_disposition(disposition),
            Some("answered"),
            "disposition {disposition:?} in {:?}\n{:?}",
            cdr.header,
            cdr.rows
        );
        let (from, to, from_ip, to_ip) = match caller {
            Who::Nated => (NATED, LAN, ROUTER_LAN_IP, LAN_PHONE_IP),
            Who::Lan => (LAN, NATED, LAN_PHONE_IP, ROUTER_LAN_IP),
        };
        assert_eq!(cdr.get(0, "caller"), from, "{:?}", cdr.rows);
        assert_eq!(cdr.get(0, "dialled"), to, "{:?}", cdr.rows);
        let side = if hangup == caller { "caller" } else { "callee" };
        assert_eq!(cdr.get(0, "hangup"), side, "{:?}", cdr.rows);
        assert_eq!(
            cdr.get(0, "source_ip"),
            from_ip.to_string(),
            "{:?}",
            cdr.rows
        );
        assert_eq!(cdr.get(0, "dest_ip"), to_ip.to_string(), "{:?}", cdr.rows);
        let calls = self.pbx.wait_health_calls(0, Duration::from_secs(5));
        assert_eq!(
            calls,
            Some(0),
            "calls left in pbxd after both hung up (health API)\n{}",
            self.context()
        );
        let flows = self.net.masqueraded_udp_flows();
        assert!(
            flows >= 2,
            "the router masqueraded {flows} UDP flows (SIP and RTP expected)\n{}",
            self.context()
        );
    }
}

/// 1001, behind NAT, calls 1002 on the LAN; 1002 hangs up, so pbxd's BYE must reach 1001
/// through the NAT binding too.
#[test]
fn nated_phone_calls_lan_phone() {
    let office = Office::start();
    office.assert_registrations();
    office.call(Who::Nated);
    thread::sleep(TALK);
    office.hang_up(Who::Lan);
    office.assert_each_hears_the_other();
    office.assert_recorded_and_freed(Who::Nated, Who::Lan);
}

/// 1002 on the LAN calls 1001 behind NAT: pbxd must send the INVITE to the address the
/// REGISTER came from, not to the private Contact; 1002 hangs up (BYE to 1001 as well).
#[test]
fn lan_phone_calls_nated_phone() {
    let office = Office::start();
    office.assert_registrations();
    office.call(Who::Lan);
    thread::sleep(TALK);
    office.hang_up(Who::Lan);
    office.assert_each_hears_the_other();
    office.assert_recorded_and_freed(Who::Lan, Who::Lan);
}

/// 1001 behind NAT calls 1002 and hangs up itself: its BYE crosses the NAT like its INVITE.
#[test]
fn nated_phone_hangs_up() {
    let office = Office::start();
    office.call(Who::Nated);
    thread::sleep(TALK);
    office.hang_up(Who::Nated);
    office.assert_each_hears_the_other();
    office.assert_recorded_and_freed(Who::Nated, Who::Nated);
}
