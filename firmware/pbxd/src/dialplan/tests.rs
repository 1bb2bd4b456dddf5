//! Dial-plan table tests: one row per rule. Two sites: Düsseldorf (area code 211)
//! dialling external numbers directly, and the same with outside-line prefix `0`.

use proptest::prelude::*;

use super::number::blocked_range;
use super::*;

const CLASSES: [OutboundClass; 4] = [
    OutboundClass::InternalOnly,
    OutboundClass::Local,
    OutboundClass::National,
    OutboundClass::International,
];

fn direct() -> Site {
    Site {
        area_code: "211".to_owned(),
        ..Site::default()
    }
}

fn prefixed() -> Site {
    Site {
        outside_prefix: Some("0".to_owned()),
        ..direct()
    }
}

/// Extensions 20, 201, 202, 2100 and analog port 30; ring groups 600, 601.
fn plan() -> StaticPlan {
    StaticPlan::new(["20", "201", "202", "2100", "30"], ["600", "601"])
}

fn caller(class: OutboundClass) -> Caller<'static> {
    Caller {
        extension: "201",
        class,
        clir_permanent: false,
    }
}

fn intl() -> Caller<'static> {
    caller(OutboundClass::International)
}

fn ext(n: &str, kind: NumberKind) -> Route {
    Route::External {
        dialled: String::new(),
        e164: n.to_owned(),
        kind,
        clir: false,
    }
}

/// The route with `dialled` blanked, for tables that do not care about it.
fn route_of(c: &Caller<'_>, dialled: &str, site: &Site) -> Result<Route, Refusal> {
    route(c, dialled, site, &plan()).map(|r| match r {
        Route::External {
            e164, kind, clir, ..
        } => Route::External {
            dialled: String::new(),
            e164,
            kind,
            clir,
        },
        other => other,
    })
}

fn blocked(range: &str) -> Refusal {
    let nsn = range.trim_start_matches('0').trim_end_matches('x');
    blocked_range(nsn).unwrap_or_else(|| panic!("{range} is in the table"))
}

// ---------------------------------------------------------------- blocked ranges

/// (range as listed, a number in it as national significant number)
const BLOCKED_NUMBERS: [(&str, &str); 11] = [
    ("0137", "1371234567"),
    ("0138", "1381234567"),
    ("01212", "121212345678"),
    ("0181", "18112345"),
    ("0185", "18512345"),
    ("0188", "18812345"),
    ("01807", "1807123456"),
    ("032", "3212345678"),
    ("0900", "9001234567"),
    ("118xx", "11833"),
    ("118xx", "118800"),
];

/// Every spelling of national number `nsn` on each site.
fn spellings(nsn: &str) -> Vec<(Site, String)> {
    let mut v = Vec::new();
    for (site, out) in [(direct(), ""), (prefixed(), "0")] {
        for form in [
            format!("{out}0{nsn}"),
            format!("+49{nsn}"),
            format!("+49 (0) {nsn}"),
            format!("{out}0049{nsn}"),
            format!("{out}00490{nsn}"),
            format!("*31#{out}0{nsn}"),
            format!("#31#{out}0049{nsn}"),
            format!("*31#+49{nsn}"),
            format!("{out}0{nsn}#"),
            format!("%2B49-{nsn}"),
        ] {
            v.push((site.clone(), form));
        }
        // Separators inside the range prefix itself.
        let (a, b) = nsn.split_at(2);
        v.push((site.clone(), format!("{out}0 {a}/{b}")));
        v.push((site.clone(), format!("{out}(0{a}) {b}")));
    }
    v
}

#[test]
fn every_blocked_range_in_every_form_from_every_class() {
    for (range, nsn) in BLOCKED_NUMBERS {
        let mut forms = spellings(nsn);
        if range == "118xx" {
            // Directory enquiries are dialled without 0, so also as local numbers.
            forms.push((direct(), nsn.to_owned()));
            forms.push((prefixed(), format!("0{nsn}")));
            forms.push((prefixed(), nsn.to_owned()));
            forms.push((direct(), format!("*31#{nsn}")));
        }
        for (site, dialled) in forms {
            for class in CLASSES {
                let got = route_of(&caller(class), &dialled, &site);
                assert_eq!(
                    got,
                    Err(blocked(range)),
                    "{dialled:?} (outside prefix {:?}) from {class}",
                    site.outside_prefix
                );
                let refusal = got.expect_err("blocked");
                assert_eq!(refusal.sip_status(), 403);
                assert!(refusal.reason().contains(range), "{}", refusal.reason());
            }
        }
    }
}

#[test]
fn blocked_as_soon_as_the_range_is_dialled() {
    for (range, nsn) in BLOCKED_NUMBERS {
        let prefix = range.trim_start_matches('0').trim_end_matches('x');
        assert!(nsn.starts_with(prefix));
        for (site, dialled) in [
            (direct(), format!("0{prefix}")),
            (direct(), format!("+49{prefix}")),
            (prefixed(), format!("00{prefix}")),
            (prefixed(), format!("00049{prefix}")),
        ] {
            assert_eq!(
                completeness(&dialled, &site, &plan()),
                Completeness::Invalid,
                "{dialled}"
            );
            assert_eq!(route_of(&intl(), &dialled, &site), Err(blocked(range)));
        }
    }
}

#[test]
fn blocked_ranges_also_apply_to_a_foreign_site() {
    let vienna = Site {
        country_code: "43".to_owned(),
        area_code: "1".to_owned(),
        ..Site::default()
    };
    assert_eq!(
        route_of(&intl(), "0049 900 1234567", &vienna),
        Err(blocked("0900"))
    );
    assert_eq!(
        route_of(&intl(), "+49 0137 1234567", &vienna),
        Err(blocked("0137"))
    );
    assert_eq!(
        route_of(&intl(), "+49 211 123456", &vienna),
        Ok(ext("+49211123456", NumberKind::International))
    );
}

#[test]
fn neighbours_of_blocked_ranges_are_not_blocked() {
    for (dialled, e164) in [
        ("0180 5 123456", "+491805123456"), // 01805 service number
        ("0800 1234567", "+498001234567"),  // freephone
        ("0136 1234567", "+491361234567"),  // not a listed range
        ("0331 123456", "+49331123456"),    // Potsdam, starts with 3 but not 32
        ("0211 900 1234", "+492119001234"), // 900 inside a local number
        ("0211 118 333", "+49211118333"),   // 118 inside a local number
        ("0121 1234567", "+491211234567"),  // 0121 but not 01212
    ] {
        let got = route_of(&intl(), dialled, &direct());
        assert!(
            matches!(&got, Ok(Route::External { e164: e, .. }) if e == e164),
            "{dialled}: {got:?}"
        );
    }
    // Under the outside prefix, "0900..." is the local number 900... (the premium
    // range is "0 0900..."), as on every German PBX with "Amtsholung" 0.
    assert_eq!(
        route_of(&intl(), "0900 123456", &prefixed()),
        Ok(ext("+49211900123456", NumberKind::Local))
    );
}

// ---------------------------------------------------------------- emergency

fn emergency(number: &str) -> Route {
    Route::Emergency {
        number: number.to_owned(),
        clir: false,
        gsm_only: number == "124124",
    }
}

/// Every spelling of emergency number `n` on each site.
fn emergency_spellings(n: &str) -> Vec<(Site, String)> {
    let mut v = Vec::new();
    for (site, out) in [(direct(), ""), (prefixed(), "0")] {
        for form in [
            n.to_owned(),
            format!("{out}{n}"),
            format!("0{n}"),
            format!("{out}0{n}"),
            format!("+49{n}"),
            format!("{out}0049{n}"),
            format!("*31#{n}"),
            format!("#31#{n}"),
            format!("*31#{out}{n}"),
            format!("*31#+49{n}"),
            format!("{n}#"),
            format!("{} {}", &n[..1], &n[1..]),
            format!("%2A31%23{n}"),
        ] {
            v.push((site.clone(), form));
        }
    }
    v
}

#[test]
fn emergency_from_every_class_in_every_form() {
    for n in ["110", "112", "124124"] {
        for (site, dialled) in emergency_spellings(n) {
            for class in CLASSES {
                for clir_permanent in [false, true] {
                    let c = Caller {
                        extension: "201",
                        class,
                        clir_permanent,
                    };
                    assert_eq!(
                        route(&c, &dialled, &site, &plan()),
                        Ok(emergency(n)),
                        "{dialled:?} (outside prefix {:?}) from {class}",
                        site.outside_prefix
                    );
                }
            }
        }
    }
}

#[test]
fn emergency_without_area_code_or_site_settings_and_over_extensions() {
    // Default site (no area code); a plan that has extensions 110 and 112.
    let sneaky = StaticPlan::new(["110", "112", "1100"], ["124124"]);
    for site in [Site::default(), direct(), prefixed()] {
        for n in ["110", "112", "124124"] {
            assert_eq!(
                route(&caller(OutboundClass::InternalOnly), n, &site, &sneaky),
                Ok(emergency(n))
            );
            assert_eq!(completeness(n, &site, &sneaky), Completeness::Complete);
        }
    }
}

#[test]
fn emergency_is_complete_after_three_digits() {
    for (site, dialled) in [
        (direct(), "110"),
        (direct(), "112"),
        (direct(), "0112"),
        (prefixed(), "112"),
        (prefixed(), "0110"),
        (prefixed(), "00112"),
        (direct(), "*31#112"),
        (Site::default(), "112"),
        (direct(), "124124"),
    ] {
        assert_eq!(
            completeness(dialled, &site, &plan()),
            Completeness::Complete,
            "{dialled}"
        );
        for end in 1..dialled.len() {
            let p = &dialled[..end];
            assert_eq!(
                completeness(p, &site, &plan()),
                Completeness::NeedMore,
                "prefix {p:?} of {dialled}"
            );
        }
    }
}

// ---------------------------------------------------------------- normalisation

#[test]
fn normalise_table() {
    let cases: [(&str, Site, Result<&str, Refusal>); 24] = [
        ("0211 123456", direct(), Ok("+49211123456")),
        ("0211/123456", Site::default(), Ok("+49211123456")),
        ("(0211) 12 34-56", direct(), Ok("+49211123456")),
        ("123456", direct(), Ok("+49211123456")),
        ("00441234567890", direct(), Ok("+441234567890")),
        ("+44 20 7946 0958", direct(), Ok("+442079460958")),
        ("+49 0211 123456", direct(), Ok("+49211123456")),
        ("+49 (0)211 123456", direct(), Ok("+49211123456")),
        ("0049 0211 123456", direct(), Ok("+49211123456")),
        ("0049211123456", direct(), Ok("+49211123456")),
        ("+39 06 1234 5678", direct(), Ok("+390612345678")), // Italy keeps its 0
        ("0151 12345678", direct(), Ok("+4915112345678")),
        ("116117", direct(), Ok("+49116117")),
        ("112", direct(), Ok("+49112")),
        ("0900 123456", direct(), Ok("+49900123456")), // caller IDs are not blocked
        // The outside prefix plays no part in normalising.
        ("0211 123456", prefixed(), Ok("+49211123456")),
        ("123456", Site::default(), Err(no_area())),
        ("", direct(), Err(Refusal::Incomplete)),
        ("+", direct(), Err(Refusal::Incomplete)),
        ("0", direct(), Err(Refusal::Incomplete)),
        ("anonymous", direct(), Err(bad_chars())),
        (
            "+0211",
            direct(),
            Err(invalid("no country code starts with 0")),
        ),
        ("*31#0211123456", direct(), Err(not_a_number())),
        ("0211 1234567890123456", direct(), Err(too_long())),
    ];
    for (input, site, want) in cases {
        assert_eq!(
            normalise(input, &site),
            want.map(str::to_owned),
            "{input:?}"
        );
    }
}

#[test]
fn national_and_dialable_format() {
    for (e164, national, dialable) in [
        ("+49211123456", "0211123456", "00211123456"),
        ("+4915112345678", "015112345678", "0015112345678"),
        ("+442079460958", "00442079460958", "000442079460958"),
        ("201", "201", "201"),
        ("anonymous", "anonymous", "anonymous"),
    ] {
        assert_eq!(national_format(e164, &prefixed()), national);
        assert_eq!(national_format(e164, &direct()), national);
        assert_eq!(dialable_format(e164, &prefixed()), dialable);
        assert_eq!(dialable_format(e164, &direct()), national);
        if e164.starts_with('+') {
            assert_eq!(
                normalise(national, &direct()),
                Ok(e164.to_owned()),
                "round trip"
            );
        }
    }
}

fn invalid(reason: &str) -> Refusal {
    Refusal::Invalid {
        reason: reason.to_owned(),
    }
}
fn bad_chars() -> Refusal {
    invalid("only digits, +, * and # can be dialled")
}
fn not_a_number() -> Refusal {
    invalid("* and # only in feature codes, + only at the start")
}
fn too_long() -> Refusal {
    invalid("number too long: E.164 numbers have at most 15 digits")
}
fn no_area() -> Refusal {
    invalid(
        "local number without area code: no area code is configured for this site, \
         dial the area code",
    )
}

// ---------------------------------------------------------------- routes

#[test]
fn external_numbers_table() {
    use NumberKind::*;
    let cases: [(Site, &str, &str, NumberKind); 22] = [
        (direct(), "123456", "+49211123456", Local),
        (direct(), "19222", "+4921119222", Local),
        (direct(), "0211 123456", "+49211123456", Local),
        (direct(), "+49 211 123456", "+49211123456", Local),
        (direct(), "030 12345678", "+493012345678", National),
        (direct(), "0800 1234567", "+498001234567", National),
        (direct(), "02111 12345", "+49211112345", Local), // 211 is a prefix: same area
        (direct(), "0151 12345678", "+4915112345678", Mobile),
        (direct(), "0171 1234567", "+491711234567", Mobile),
        (
            direct(),
            "0044 20 7946 0958",
            "+442079460958",
            International,
        ),
        (direct(), "+1 212 555 0100", "+12125550100", International),
        (direct(), "115", "+49115", Service),
        (direct(), "116117", "+49116117", Service),
        (direct(), "0116 116", "+49116116", Service),
        (prefixed(), "0 123456", "+49211123456", Local),
        (prefixed(), "0 123", "+49211123", Local),
        (prefixed(), "0 0211 123456", "+49211123456", Local),
        (prefixed(), "0 030 12345678", "+493012345678", National),
        (
            prefixed(),
            "0 00 44 20 7946 0958",
            "+442079460958",
            International,
        ),
        (
            prefixed(),
            "+44 20 7946 0958",
            "+442079460958",
            International,
        ),
        (prefixed(), "0 116117", "+49116117", Service),
        (Site::default(), "0211 123456", "+49211123456", National),
    ];
    for (site, dialled, e164, kind) in cases {
        assert_eq!(
            route_of(&intl(), dialled, &site),
            Ok(ext(e164, kind)),
            "{dialled:?} (outside prefix {:?})",
            site.outside_prefix
        );
    }
}

#[test]
fn clir_per_call_and_permanent() {
    for (permanent, dialled, clir) in [
        (false, "0211123456", false),
        (true, "0211123456", true),
        (false, "*31#0211123456", true),
        (true, "#31#0211123456", false),
        (true, "*31#0211123456", true),
        (false, "#31#0211123456", false),
        (false, "*31# 0211 123456#", true),
    ] {
        let c = Caller {
            extension: "201",
            class: OutboundClass::National,
            clir_permanent: permanent,
        };
        assert_eq!(
            route(&c, dialled, &direct(), &plan()),
            Ok(Route::External {
                dialled: dialled.replace(' ', ""),
                e164: "+49211123456".to_owned(),
                kind: NumberKind::Local,
                clir,
            }),
            "{dialled} permanent={permanent}"
        );
    }
    // User-part parameters are cut off.
    assert_eq!(
        route_of(&intl(), "0211123456;phone-context=+49211", &direct()),
        Ok(ext("+49211123456", NumberKind::Local))
    );
    // CLIR codes on internal calls are accepted and do not change the route.
    assert_eq!(
        route_of(&intl(), "*31#202", &direct()),
        Ok(Route::Extension {
            number: "202".to_owned()
        })
    );
}

#[test]
fn internal_numbers() {
    let e = |n: &str| Route::Extension {
        number: n.to_owned(),
    };
    let g = |n: &str| Route::RingGroup {
        number: n.to_owned(),
    };
    for site in [direct(), prefixed(), Site::default()] {
        for class in CLASSES {
            let c = caller(class);
            assert_eq!(route_of(&c, "201", &site), Ok(e("201")));
            assert_eq!(route_of(&c, "20", &site), Ok(e("20")));
            assert_eq!(route_of(&c, "2100", &site), Ok(e("2100")));
            assert_eq!(route_of(&c, "30", &site), Ok(e("30")));
            assert_eq!(route_of(&c, "30#", &site), Ok(e("30")));
            assert_eq!(route_of(&c, "600", &site), Ok(g("600")));
            assert_eq!(route_of(&c, "6-0-1", &site), Ok(g("601")));
            // Proper prefixes of internal numbers: 484.
            assert_eq!(route_of(&c, "2", &site), Err(Refusal::Incomplete));
            assert_eq!(route_of(&c, "210", &site), Err(Refusal::Incomplete));
            assert_eq!(route_of(&c, "60", &site), Err(Refusal::Incomplete));
            // Short numbers that are not internal: 404.
            assert_eq!(route_of(&c, "99", &site), Err(Refusal::Unknown));
        }
    }
    // With the outside prefix every number without it is internal.
    assert_eq!(
        route_of(&intl(), "123456", &prefixed()),
        Err(Refusal::Unknown)
    );
    assert_eq!(
        route_of(&intl(), "2101", &prefixed()),
        Err(Refusal::Unknown)
    );
    // Without it, 5 digits or more that are not internal are a local number.
    assert_eq!(
        route_of(&intl(), "2101", &direct()),
        Err(Refusal::Unknown),
        "4 digits stay in the extension range"
    );
    assert_eq!(
        route_of(&intl(), "21011", &direct()),
        Ok(ext("+4921121011", NumberKind::Local))
    );
}

#[test]
fn classes_matrix() {
    use OutboundClass::*;
    // (dialled on the direct site, lowest class allowed)
    let rows: [(&str, OutboundClass); 12] = [
        ("201", InternalOnly),
        ("600", InternalOnly),
        ("*78", InternalOnly),
        ("110", InternalOnly),
        ("112", InternalOnly),
        ("123456", Local),
        ("0211 123456", Local),
        ("116117", Local),
        ("030 12345678", National),
        ("0151 12345678", National),
        ("+49 30 12345678", National),
        ("+44 20 7946 0958", International),
    ];
    for (dialled, lowest) in rows {
        for class in CLASSES {
            let got = route_of(&caller(class), dialled, &direct());
            if class >= lowest {
                assert!(got.is_ok(), "{dialled} from {class}: {got:?}");
            } else {
                let Err(Refusal::NotAllowed { class: c, reason }) = got else {
                    panic!("{dialled} from {class}: {got:?}");
                };
                assert_eq!(c, class);
                assert!(!reason.is_empty());
            }
        }
    }
    let refusal = route_of(&caller(Local), "0151 12345678", &direct()).expect_err("local");
    assert_eq!(refusal.sip_status(), 403);
    assert_eq!(
        refusal.reason(),
        "not allowed for outbound class local: mobile number"
    );
    // Without an area code nothing is local: a local-class caller reaches nothing external.
    assert!(matches!(
        route_of(&caller(Local), "0211 123456", &Site::default()),
        Err(Refusal::NotAllowed { .. })
    ));
}

#[test]
fn outbound_class_names() {
    assert_eq!(OutboundClass::default(), OutboundClass::National);
    for class in CLASSES {
        assert_eq!(class.to_string().parse::<OutboundClass>(), Ok(class));
    }
    assert_eq!(" Internal ".parse(), Ok(OutboundClass::InternalOnly));
    assert_eq!("world".parse::<OutboundClass>(), Err(ParseClassError));
    assert_eq!(
        CLASSES.map(|c| c.as_str()),
        ["internal", "local", "national", "international"]
    );
}

// ---------------------------------------------------------------- feature codes

#[test]
fn feature_codes() {
    use FeatureCode::*;
    let f = |code| Ok(Route::Feature(code));
    let t = |s: &str| s.to_owned();
    let cases: [(&str, Result<Route, Refusal>); 16] = [
        ("*8", f(Pickup)),
        (
            "**202",
            f(PickupExtension {
                extension: t("202"),
            }),
        ),
        ("**20#", f(PickupExtension { extension: t("20") })),
        ("*78", f(DndOn)),
        ("*79", f(DndOff)),
        ("*21*202#", f(ForwardAlways { target: t("202") })),
        ("*21*600#", f(ForwardAlways { target: t("600") })),
        (
            "*21*0211 123456#",
            f(ForwardAlways {
                target: t("+49211123456"),
            }),
        ),
        (
            "*21*+44 20 7946 0958#",
            f(ForwardAlways {
                target: t("+442079460958"),
            }),
        ),
        ("#21#", f(ForwardAlwaysOff)),
        ("*67*601#", f(ForwardBusy { target: t("601") })),
        ("#67#", f(ForwardBusyOff)),
        (
            "*61*202#",
            f(ForwardNoAnswer {
                target: t("202"),
                timeout_secs: None,
            }),
        ),
        (
            "*61*0151 12345678*20#",
            f(ForwardNoAnswer {
                target: t("+4915112345678"),
                timeout_secs: Some(20),
            }),
        ),
        ("#61#", f(ForwardNoAnswerOff)),
        ("%2A8", f(Pickup)),
    ];
    for (dialled, want) in cases {
        assert_eq!(route_of(&intl(), dialled, &direct()), want, "{dialled}");
    }
    // With the outside prefix the target is dialled as the user would dial it.
    assert_eq!(
        route_of(&intl(), "*21*00211123456#", &prefixed()),
        f(ForwardAlways {
            target: t("+49211123456")
        })
    );
}

#[test]
fn feature_code_refusals() {
    let cases: [(&str, OutboundClass, Refusal); 15] = [
        (
            "*21*201#",
            OutboundClass::National,
            invalid("an extension cannot forward to itself"),
        ),
        (
            "*21*112#",
            OutboundClass::National,
            invalid("calls cannot be forwarded to an emergency number"),
        ),
        (
            "*21*0900123456#",
            OutboundClass::International,
            blocked("0900"),
        ),
        (
            "*67*+4990012345#",
            OutboundClass::International,
            blocked("0900"),
        ),
        (
            "*21*0211123456#",
            OutboundClass::InternalOnly,
            Refusal::NotAllowed {
                class: OutboundClass::InternalOnly,
                reason: "local number".to_owned(),
            },
        ),
        ("*21*99#", OutboundClass::National, Refusal::Unknown),
        ("*21*#", OutboundClass::National, Refusal::Incomplete),
        ("*21*02#", OutboundClass::National, Refusal::Incomplete),
        ("*21*202", OutboundClass::National, Refusal::Incomplete),
        (
            "*61*202*2#",
            OutboundClass::National,
            invalid("no-answer timeout must be 5 to 300 seconds: *61*target*seconds#"),
        ),
        (
            "*21*202*5#",
            OutboundClass::National,
            invalid("forwarding target is not a number"),
        ),
        (
            "*31#*8",
            OutboundClass::National,
            invalid("a CLIR code must be followed by a number"),
        ),
        ("*5", OutboundClass::National, Refusal::Unknown),
        ("**999", OutboundClass::National, Refusal::Unknown),
        ("*7", OutboundClass::National, Refusal::Incomplete),
    ];
    for (dialled, class, want) in cases {
        assert_eq!(
            route_of(&caller(class), dialled, &direct()),
            Err(want),
            "{dialled} from {class}"
        );
    }
}

// ---------------------------------------------------------------- bad input

#[test]
fn invalid_input_is_refused() {
    let forty = "1".repeat(40);
    let long_sep = " ".repeat(200);
    let cases: [(&str, Refusal); 18] = [
        ("", Refusal::Incomplete),
        ("#", Refusal::Incomplete),
        ("##", Refusal::Unknown),
        ("###", Refusal::Unknown),
        ("*31#", Refusal::Incomplete),
        ("alice", bad_chars()),
        ("0211 12a456", bad_chars()),
        ("0211\r\n123", bad_chars()),
        ("%41", bad_chars()),
        ("%4", bad_chars()),
        ("02+11123456", not_a_number()),
        ("++49211123456", not_a_number()),
        ("0211*123456", not_a_number()),
        ("+0211123456", invalid("no country code starts with 0")),
        (forty.as_str(), invalid("number too long")),
        (long_sep.as_str(), invalid("number too long")),
        ("0049 0151 1234567890123", too_long()),
        ("0151 1234567890", invalid("mobile number too long")),
    ];
    for (dialled, want) in cases {
        assert_eq!(
            route_of(&intl(), dialled, &direct()),
            Err(want),
            "{dialled:?}"
        );
    }
    assert_eq!(
        route_of(&intl(), "123456", &Site::default()),
        Err(no_area()),
        "local number on a site without area code"
    );
    assert_eq!(
        route_of(&intl(), "0211", &direct()),
        Err(Refusal::Incomplete)
    );
    assert_eq!(
        route_of(&intl(), "0211#", &direct()),
        Err(Refusal::Incomplete)
    );
    assert_eq!(
        route_of(&intl(), "0151 123", &direct()),
        Err(Refusal::Incomplete)
    );
    assert_eq!(
        route_of(&intl(), "0044 123", &direct()),
        Err(Refusal::Incomplete)
    );
    assert_eq!(route_of(&intl(), "113", &direct()), Err(Refusal::Unknown));
    assert_eq!(
        route_of(&intl(), "0 113", &prefixed()),
        Err(Refusal::Unknown)
    );
    assert_eq!(
        route_of(&intl(), "12412", &direct()),
        Err(Refusal::Incomplete)
    );
}

#[test]
fn sip_status_and_reasons() {
    let cases = [
        (Refusal::Incomplete, 484, "number incomplete"),
        (Refusal::Unknown, 404, "unknown number"),
        (
            blocked("0900"),
            403,
            "blocked number range 0900: premium-rate service",
        ),
        (
            Refusal::NotAllowed {
                class: OutboundClass::Local,
                reason: "national number".to_owned(),
            },
            403,
            "not allowed for outbound class local: national number",
        ),
        (
            invalid("number too long"),
            484,
            "invalid number: number too long",
        ),
    ];
    for (refusal, status, reason) in cases {
        assert_eq!(refusal.sip_status(), status);
        assert_eq!(refusal.reason(), reason);
        assert!(reason.is_ascii());
    }
}

// ---------------------------------------------------------------- digit by digit

#[test]
fn every_prefix_of_a_number_needs_more() {
    // (site, full number, completeness of the full number)
    let cases = [
        (direct(), "0211123456", Completeness::NeedMore), // could be longer
        (direct(), "0211123456#", Completeness::Complete),
        (direct(), "015112345678", Completeness::Complete), // mobile: 11 digits max
        (direct(), "01711234567", Completeness::NeedMore),
        (direct(), "004420794609581", Completeness::NeedMore),
        (direct(), "00442079460958123", Completeness::Complete), // 15 digits
        (direct(), "+442079460958", Completeness::NeedMore),
        (direct(), "123456", Completeness::NeedMore),
        (direct(), "116117", Completeness::Complete),
        (direct(), "115", Completeness::Complete),
        (direct(), "2100", Completeness::Complete),
        (direct(), "201", Completeness::Complete),
        (direct(), "30", Completeness::Complete),
        (direct(), "600", Completeness::Complete),
        (prefixed(), "00211123456", Completeness::NeedMore),
        (prefixed(), "0123456", Completeness::NeedMore),
        (prefixed(), "000442079460958", Completeness::NeedMore),
        (prefixed(), "201", Completeness::Complete),
        (direct(), "*31#0211123456#", Completeness::Complete),
        (direct(), "*78", Completeness::Complete),
        (direct(), "*8", Completeness::Complete),
        (direct(), "#21#", Completeness::Complete),
        (direct(), "*21*0211123456#", Completeness::Complete),
        (direct(), "*61*202*20#", Completeness::Complete),
        (direct(), "**201", Completeness::Complete),
    ];
    for (site, full, want) in cases {
        assert_eq!(completeness(full, &site, &plan()), want, "{full}");
        assert!(
            route(&intl(), full, &site, &plan()).is_ok(),
            "{full} routes"
        );
        for end in 1..full.len() {
            let p = &full[..end];
            let got = completeness(p, &site, &plan());
            // An exact extension or code on the way is complete only if nothing longer
            // starts with it; the numbers here are chosen so that none is.
            assert_eq!(got, Completeness::NeedMore, "prefix {p:?} of {full:?}");
        }
    }
}

#[test]
fn completeness_of_internal_prefixes_and_dead_ends() {
    let c = |s: &str, site: &Site| completeness(s, site, &plan());
    // 20 is an extension but 201 and 202 start with it: wait (inter-digit timeout).
    assert_eq!(c("20", &direct()), Completeness::NeedMore);
    assert_eq!(route_of(&intl(), "20", &direct()).map(|_| ()), Ok(()));
    assert_eq!(c("**20", &direct()), Completeness::NeedMore);
    for (site, dead) in [
        (direct(), "0900"),
        (direct(), "*5"),
        (direct(), "a"),
        (direct(), "113"),
        (direct(), "*21*999#"),
        (direct(), "0211#"),
        (prefixed(), "9"),
        (prefixed(), "123"),
        (Site::default(), "55555"),
    ] {
        assert_eq!(c(dead, &site), Completeness::Invalid, "{dead}");
    }
    // On the direct site a short unknown number may still become a local number.
    assert_eq!(c("9", &direct()), Completeness::NeedMore);
    assert_eq!(route_of(&intl(), "9", &direct()), Err(Refusal::Unknown));
}

#[test]
fn an_extension_0_does_not_end_external_dialling() {
    // Reception on "0" with direct dialling: "0" alone rings it (en bloc or after the
    // inter-digit timeout), "0211..." is still a national number.
    let reception = StaticPlan::new(["0", "201"], Vec::<String>::new());
    let site = direct();
    assert_eq!(
        route(&intl(), "0", &site, &reception),
        Ok(Route::Extension {
            number: "0".to_owned()
        })
    );
    assert_eq!(completeness("0", &site, &reception), Completeness::NeedMore);
    assert!(matches!(
        route(&intl(), "0211123456", &site, &reception),
        Ok(Route::External { .. })
    ));
    // Same with the outside prefix: extension "0" vs the outside prefix.
    assert_eq!(
        completeness("0", &prefixed(), &reception),
        Completeness::NeedMore
    );
    // Without the conflict, an extension is complete at once.
    assert_eq!(
        completeness("201", &site, &reception),
        Completeness::Complete
    );
}

#[test]
fn static_plan_prefixes() {
    let p = plan();
    for (prefix, longer) in [
        ("", true),
        ("2", true),
        ("20", true),
        ("201", false),
        ("21", true),
        ("2100", false),
        ("3", true),
        ("30", false),
        ("6", true),
        ("60", true),
        ("600", false),
        ("7", false),
        ("1", false),
    ] {
        assert_eq!(p.is_prefix_of_internal(prefix), longer, "{prefix:?}");
    }
}

// ---------------------------------------------------------------- properties

fn sites() -> impl Strategy<Value = Site> {
    prop_oneof![Just(direct()), Just(prefixed()), Just(Site::default())]
}

proptest! {
    #[test]
    fn never_panics_on_any_string(s in ".{0,200}", site in sites()) {
        let _ = route(&intl(), &s, &site, &plan());
        let _ = completeness(&s, &site, &plan());
        let _ = normalise(&s, &site);
        let _ = national_format(&s, &site);
    }

    /// Over the dial alphabet: every external route is valid E.164 and never in a
    /// blocked range; `Complete` never routes to "incomplete".
    #[test]
    fn external_routes_are_e164_and_never_blocked(
        s in "[0-9+*#() -]{0,36}",
        site in sites(),
    ) {
        let r = route(&intl(), &s, &site, &plan());
        if let Ok(Route::External { e164, .. }) = &r {
            let digits = e164.strip_prefix('+').expect("E.164 starts with +");
            prop_assert!((7..=15).contains(&digits.len()), "{e164}");
            prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()));
            prop_assert!(!digits.starts_with('0'));
            if let Some(nsn) = digits.strip_prefix("49") {
                prop_assert!(blocked_range(nsn).is_none(), "{s:?} -> {e164}");
            }
        }
        if completeness(&s, &site, &plan()) == Completeness::Complete {
            prop_assert!(r.is_ok(), "{s:?} complete but {r:?}");
        }
    }

    /// Any number in a blocked range, in any spelling, is blocked.
    #[test]
    fn blocked_whatever_follows(
        i in 0..BLOCKED_NUMBERS.len(),
        tail in "[0-9]{0,8}",
        form in 0..5usize,
        site in sites(),
    ) {
        let (range, nsn) = BLOCKED_NUMBERS[i];
        let prefix = range.trim_start_matches('0').trim_end_matches('x');
        let number = format!("{prefix}{tail}");
        let out = site.outside_prefix.clone().unwrap_or_default();
        let dialled = match form {
            0 => format!("{out}0{number}"),
            1 => format!("+49{number}"),
            2 => format!("{out}0049{number}"),
            3 => format!("*31#{out}0{number}"),
            _ => format!("#31#+49 {number}"),
        };
        let _ = nsn;
        prop_assert_eq!(route(&intl(), &dialled, &site, &plan()), Err(blocked(range)));
    }
}
