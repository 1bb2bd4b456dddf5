//! Line classification and typed parsing, one row per case.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use pbx_hal::modem::command::CommandKind as K;
use pbx_hal::modem::response::*;

struct Case {
    line: &'static str,
    in_flight: Option<K>,
    want: Classified,
    msg: &'static str,
}

fn urc(u: Urc) -> Classified {
    Classified::Urc(u)
}
fn fin(f: FinalResult) -> Classified {
    Classified::Final(f)
}
fn info(s: &str) -> Classified {
    Classified::Info(s.into())
}

#[test]
fn classification() {
    let reg = |status, area: Option<&str>, cell: Option<&str>, act| Registration {
        status,
        area: area.map(Into::into),
        cell: cell.map(Into::into),
        act,
    };
    let cases = [
        Case {
            line: "OK",
            in_flight: Some(K::At),
            want: fin(FinalResult::Ok),
            msg: "OK",
        },
        Case {
            line: "ERROR",
            in_flight: Some(K::At),
            want: fin(FinalResult::Error),
            msg: "ERROR",
        },
        Case {
            line: "+CME ERROR: 16",
            in_flight: Some(K::EnterPin),
            want: fin(FinalResult::Cme(CmeError::Code(16))),
            msg: "numeric CME",
        },
        Case {
            line: "+CME ERROR: incorrect password",
            in_flight: Some(K::EnterPin),
            want: fin(FinalResult::Cme(CmeError::Text(
                "incorrect password".into(),
            ))),
            msg: "verbose CME",
        },
        Case {
            line: "+CMS ERROR: 304",
            in_flight: Some(K::SendSms),
            want: fin(FinalResult::Cms(304)),
            msg: "CMS",
        },
        Case {
            line: "NO CARRIER",
            in_flight: Some(K::Dial),
            want: fin(FinalResult::NoCarrier),
            msg: "NO CARRIER ends ATD",
        },
        Case {
            line: "BUSY",
            in_flight: Some(K::Dial),
            want: fin(FinalResult::Busy),
            msg: "BUSY ends ATD",
        },
        Case {
            line: "NO ANSWER",
            in_flight: Some(K::Dial),
            want: fin(FinalResult::NoAnswer),
            msg: "NO ANSWER",
        },
        Case {
            line: "NO DIALTONE",
            in_flight: Some(K::Dial),
            want: fin(FinalResult::NoDialtone),
            msg: "NO DIALTONE",
        },
        Case {
            line: "CONNECT 150000000",
            in_flight: Some(K::Dial),
            want: fin(FinalResult::Connect(Some("150000000".into()))),
            msg: "CONNECT",
        },
        Case {
            line: "NO CARRIER",
            in_flight: Some(K::QuerySignal),
            want: urc(Urc::NoCarrier),
            msg: "NO CARRIER during CSQ is a hang-up",
        },
        Case {
            line: "NO CARRIER",
            in_flight: None,
            want: urc(Urc::NoCarrier),
            msg: "NO CARRIER idle",
        },
        Case {
            line: "NO ANSWER",
            in_flight: Some(K::QuerySignal),
            want: urc(Urc::NoAnswer),
            msg: "NO ANSWER after ATD returned OK",
        },
        Case {
            line: "NO DIALTONE",
            in_flight: None,
            want: urc(Urc::NoDialtone),
            msg: "NO DIALTONE idle",
        },
        Case {
            line: "BUSY",
            in_flight: None,
            want: urc(Urc::Busy),
            msg: "BUSY idle",
        },
        Case {
            line: "RING",
            in_flight: Some(K::QuerySignal),
            want: urc(Urc::Ring),
            msg: "RING mid-command",
        },
        Case {
            line: "+CRING: VOICE",
            in_flight: None,
            want: urc(Urc::Ring),
            msg: "CRING",
        },
        Case {
            line: "+CLIP: \"\",128,\"\",0,\"\",1",
            in_flight: None,
            want: urc(Urc::CallerId(CallerId {
                number: None,
                number_type: 128,
                validity: Some(1),
            })),
            msg: "withheld caller",
        },
        Case {
            line: "+CMTI: \"ME\",12",
            in_flight: Some(K::QueryOperator),
            want: urc(Urc::SmsReceived(SmsIndication {
                storage: "ME".into(),
                index: 12,
            })),
            msg: "CMTI",
        },
        Case {
            line: "+CREG: 0,5",
            in_flight: Some(K::QueryRegistration),
            want: info("+CREG: 0,5"),
            msg: "CREG answer",
        },
        Case {
            line: "+CREG: 1",
            in_flight: None,
            want: urc(Urc::Registration {
                eps: false,
                registration: reg(RegStatus::Home, None, None, None),
            }),
            msg: "CREG URC 1 param",
        },
        Case {
            line: "+CEREG: 5,\"00C3\",\"0A1B2C3D\",7",
            in_flight: Some(K::QueryRegistration),
            want: urc(Urc::Registration {
                eps: true,
                registration: reg(RegStatus::Roaming, Some("00C3"), Some("0A1B2C3D"), Some(7)),
            }),
            msg: "CEREG URC during a CREG query",
        },
        Case {
            line: "+CPIN: READY",
            in_flight: Some(K::QuerySimState),
            want: info("+CPIN: READY"),
            msg: "CPIN answer",
        },
        Case {
            line: "+CPIN: NOT INSERTED",
            in_flight: None,
            want: urc(Urc::SimState(SimState::NotInserted)),
            msg: "SIM removed",
        },
        Case {
            line: "+CLCC: 1,1,4,0,0,\"+4930123\",145",
            in_flight: None,
            want: urc(Urc::CallStatus(CallInfo {
                id: 1,
                direction: CallDirection::Incoming,
                state: CallState::Incoming,
                mode: CallMode::Voice,
                multiparty: false,
                number: Some("+4930123".into()),
                number_type: Some(145),
            })),
            msg: "CLCC URC",
        },
        Case {
            line: "+QIND: \"csq\",20,99",
            in_flight: None,
            want: urc(Urc::ModuleIndication("\"csq\",20,99".into())),
            msg: "QIND",
        },
        Case {
            line: "RDY",
            in_flight: None,
            want: urc(Urc::Other("RDY".into())),
            msg: "boot URC",
        },
        Case {
            line: "+CSQ: 20,99",
            in_flight: Some(K::QuerySignal),
            want: info("+CSQ: 20,99"),
            msg: "info",
        },
        Case {
            line: "+CLIP: 12",
            in_flight: None,
            want: Classified::Malformed(ParseError {
                what: "+CLIP",
                line: "+CLIP: 12".into(),
            }),
            msg: "broken CLIP",
        },
    ];
    for c in cases {
        assert_eq!(classify(c.line, c.in_flight), c.want, "{}", c.msg);
    }
}

#[test]
fn csq_maps_to_dbm_per_27_007() {
    let rows = [
        ("+CSQ: 0,99", Some(-113), None),
        ("+CSQ: 1,0", Some(-111), Some(0)),
        ("+CSQ: 2,7", Some(-109), Some(7)),
        ("+CSQ: 30,99", Some(-53), None),
        ("+CSQ: 31,99", Some(-51), None),
        ("+CSQ: 99,99", None, None),
    ];
    for (line, dbm, ber) in rows {
        assert_eq!(
            parse_signal(line),
            Ok(SignalQuality { rssi_dbm: dbm, ber }),
            "{line}"
        );
    }
    for bad in [
        "+CSQ: 32,99",
        "+CSQ: 20,8",
        "+CSQ: 20",
        "+CSQ: -1,99",
        "+CSQ:",
    ] {
        assert!(parse_signal(bad).is_err(), "{bad}");
    }
}

#[test]
fn typed_parsers() {
    assert_eq!(parse_sim_state("+CPIN: SIM PUK"), Ok(SimState::PukRequired));
    assert_eq!(
        parse_sim_state("+CPIN: PH-NET PIN"),
        Ok(SimState::Other("PH-NET PIN".into()))
    );
    assert_eq!(
        parse_pin_counters("+QPINC: \"SC\",2,10"),
        Ok(PinCounters {
            pin_left: 2,
            puk_left: 10
        })
    );
    assert!(parse_pin_counters("+QPINC: \"P2\",3,10").is_err());
    assert_eq!(
        parse_registration_query("+CEREG: 2,1,\"1A2B\",\"01C3D4E5\",7"),
        Ok(Registration {
            status: RegStatus::Home,
            area: Some("1A2B".into()),
            cell: Some("01C3D4E5".into()),
            act: Some(7)
        })
    );
    assert_eq!(
        parse_registration_query("+CREG: 0,3").map(|r| r.status),
        Ok(RegStatus::Denied)
    );
    assert!(parse_registration_query("+CREG: 0").is_err());
    assert_eq!(
        parse_operator("+COPS: 0,0,\"Telekom.de\",7"),
        Ok(Operator {
            mode: 0,
            name: Some("Telekom.de".into()),
            act: Some(7)
        })
    );
    assert_eq!(
        parse_operator("+COPS: 0"),
        Ok(Operator {
            mode: 0,
            name: None,
            act: None
        })
    );
    assert_eq!(
        parse_call_end_reason("+CEER: \"Normal call clearing\""),
        Ok("Normal call clearing".into())
    );
    assert_eq!(
        parse_call_end_reason("+CEER: \"CC INFORM\",16,\"Normal call clearing\""),
        Ok("\"CC INFORM\",16,\"Normal call clearing\"".into())
    );
    assert_eq!(parse_sms_sent("+CMGS: 255"), Ok(255));
    assert!(parse_sms_sent("+CMGS: 256").is_err());
    assert_eq!(
        parse_cmgr_header("+CMGR: 1,,24"),
        Ok(CmgrHeader {
            stat: 1,
            alpha: None,
            length: 24
        })
    );
    assert_eq!(
        parse_cmgr_header("+CMGR: 0,\"Mum\",30"),
        Ok(CmgrHeader {
            stat: 0,
            alpha: Some("Mum".into()),
            length: 30
        })
    );
    assert_eq!(
        parse_call("+CLCC: 2,0,3,0,1"),
        Ok(CallInfo {
            id: 2,
            direction: CallDirection::Outgoing,
            state: CallState::Alerting,
            mode: CallMode::Voice,
            multiparty: true,
            number: None,
            number_type: None,
        })
    );
    assert!(parse_call("+CLCC: 1,2,0,0,0").is_err());
    assert!(parse_sms_indication("+CMTI: \"SM\"").is_err());
    assert!(parse_caller_id("+CLIP: \"unterminated,145").is_err());
}

#[test]
fn cme_helpers() {
    assert!(CmeError::Code(16).is_incorrect_password());
    assert!(CmeError::Text("Incorrect password".into()).is_incorrect_password());
    assert!(!CmeError::Code(10).is_incorrect_password());
    assert!(CmeError::Code(12).is_puk_required());
}

proptest::proptest! {
    /// Any printable line classifies without panicking, in any context.
    #[test]
    fn classify_never_panics(line in "\\PC{0,80}", k in 0usize..4) {
        let ctx = [None, Some(K::QuerySignal), Some(K::QueryRegistration), Some(K::Dial)][k];
        let _ = classify(&line, ctx);
        for prefix in ["+CSQ: ", "+CLCC: ", "+CREG: ", "+CMGR: ", "+QPINC: ", "+COPS: "] {
            let l = format!("{prefix}{line}");
            let _ = (parse_signal(&l), parse_call(&l), parse_registration_urc(&l), parse_cmgr_header(&l), parse_pin_counters(&l), parse_operator(&l));
        }
    }
}

/// Found with the EC25 emulator: a module reset in the middle of a command announced
/// `RDY`, which was taken as the command's information and lost.
#[test]
fn boot_reports_are_unsolicited_even_while_a_command_is_in_flight() {
    use pbx_hal::modem::command::CommandKind;
    use pbx_hal::modem::response::{classify, Classified, Urc};
    for line in ["RDY", "POWERED DOWN", "+CFUN: 1", "+QUSIM: 1"] {
        assert_eq!(
            classify(line, Some(CommandKind::QuerySignal)),
            Classified::Urc(Urc::Other(line.to_owned())),
            "{line}"
        );
    }
}
