//! Number syntax and the German numbering plan: dialled network-form numbers to E.164,
//! and the classification of E.164 numbers (emergency, blocked ranges, service numbers,
//! mobile, local/national/international, length limits).

use super::{NumberKind, Refusal, Site};

/// Emergency numbers, checked before anything else. 124124 is mobile-only sea rescue.
pub(super) const EMERGENCY: [&str; 3] = ["110", "112", "124124"];

/// The sea-rescue number: reachable only through the GSM module.
pub(super) const SEA_RESCUE: &str = "124124";

/// German country code: blocked ranges and service numbers are German national numbers,
/// checked whenever a number is in +49, whatever the site's own country.
const GERMANY: &str = "49";

/// ITU-T E.164: at most 15 digits after the `+`.
pub(super) const E164_MAX_DIGITS: usize = 15;

/// Shortest international number accepted (country code included): Niue and a few
/// other small plans have 4-digit numbers behind a 3-digit country code.
const INTERNATIONAL_MIN_DIGITS: usize = 7;

/// Shortest German national significant number (area code without 0 + subscriber):
/// the shortest area codes have 2 digits, and no subscriber number is shorter than 3
/// digits in practice; city plans are longer, and the trunk rejects what does not exist.
const NATIONAL_MIN_NSN: usize = 5;

/// German mobile numbers (015x, 016x, 017x) have 10 or 11 digits after the 0.
const MOBILE_NSN: std::ops::RangeInclusive<usize> = 10..=11;

/// German blocked ranges (DOMAIN.md): national significant number prefix, the range as
/// written in the provider's list, and what it is.
const BLOCKED: [(&str, &str, &str); 10] = [
    ("137", "0137", "televoting and mass-call service"),
    ("138", "0138", "mass-call service"),
    ("1212", "01212", "innovative-services number"),
    ("181", "0181", "international virtual private network"),
    ("185", "0185", "closed user group"),
    ("188", "0188", "closed user group"),
    ("1807", "01807", "service number with time-dependent rate"),
    (
        "32",
        "032",
        "national subscriber number not offered by the provider",
    ),
    ("900", "0900", "premium-rate service"),
    ("118", "118xx", "directory enquiry service"),
];

/// Why a number is not (yet) routable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fail {
    /// More digits could still make it valid (for [`super::completeness`]: `NeedMore`).
    MayGrow(Refusal),
    /// No continuation helps.
    Final(Refusal),
}

impl Fail {
    pub(super) fn into_refusal(self) -> Refusal {
        match self {
            Fail::MayGrow(r) | Fail::Final(r) => r,
        }
    }

    /// After a `#` terminator nothing can grow any more.
    pub(super) fn finalise(self) -> Fail {
        Fail::Final(self.into_refusal())
    }
}

fn invalid(reason: &str) -> Fail {
    Fail::Final(Refusal::Invalid {
        reason: reason.to_owned(),
    })
}

fn incomplete() -> Fail {
    Fail::MayGrow(Refusal::Incomplete)
}

/// `s` without the prefix `p`; an empty prefix (unset site field) never matches.
pub(super) fn strip<'a>(s: &'a str, p: &str) -> Option<&'a str> {
    if p.is_empty() {
        None
    } else {
        s.strip_prefix(p)
    }
}

/// Whether `s` is a proper prefix of an emergency number ("1", "11", "124"...).
pub(super) fn is_emergency_prefix(s: &str) -> bool {
    EMERGENCY
        .iter()
        .any(|e| e.len() > s.len() && e.starts_with(s))
}

/// How local numbers (no national prefix, no area code) are treated.
#[derive(Debug, Clone, Copy)]
pub(super) struct LocalRule {
    /// Fewer digits than this are not a local number...
    pub(super) min_digits: usize,
    /// ...and are refused with this (`Incomplete` after the outside prefix, `Unknown`
    /// when short numbers are internal).
    pub(super) too_short: fn() -> Refusal,
}

/// A number in network form: `+` international, international prefix, national prefix,
/// or a local subscriber number. Returns the E.164 digits without `+`.
///
/// `num` holds only ASCII digits and possibly a leading `+` (checked by the caller).
pub(super) fn to_e164(num: &str, site: &Site, local: LocalRule) -> Result<String, Fail> {
    if let Some(d) = num.strip_prefix('+') {
        return international(d, site);
    }
    if let Some(d) = strip(num, &site.international_prefix) {
        return international(d, site);
    }
    if let Some(nsn) = strip(num, &site.national_prefix) {
        if nsn.is_empty() {
            return Err(incomplete());
        }
        return Ok(format!("{}{}", site.country_code, nsn));
    }
    local_number(num, site, local)
}

/// Digits after `+` or the international prefix.
fn international(d: &str, site: &Site) -> Result<String, Fail> {
    if d.is_empty() {
        return Err(incomplete());
    }
    if d.starts_with('0') {
        return Err(invalid("no country code starts with 0"));
    }
    // "+49 (0)211 ...": the national prefix written after the country code is dropped
    // for the site's own country and Germany (not in general: Italy keeps its 0).
    for cc in [site.country_code.as_str(), GERMANY] {
        if let Some(rest) = strip(d, cc) {
            if let Some(nsn) = strip(rest, &site.national_prefix) {
                return Ok(format!("{cc}{nsn}"));
            }
        }
    }
    Ok(d.to_owned())
}

/// A subscriber number dialled without area code.
fn local_number(sub: &str, site: &Site, rule: LocalRule) -> Result<String, Fail> {
    if sub.is_empty() {
        return Err(incomplete());
    }
    // Emergency and the national service codes 11x are never given an area code.
    if EMERGENCY.contains(&sub) || sub.starts_with("11") {
        return Ok(format!("{}{}", site.country_code, sub));
    }
    if is_emergency_prefix(sub) {
        return Err(incomplete());
    }
    if sub.len() < rule.min_digits {
        return Err(Fail::MayGrow((rule.too_short)()));
    }
    if site.area_code.is_empty() {
        return Err(invalid(
            "local number without area code: no area code is configured for this site, \
             dial the area code",
        ));
    }
    Ok(format!("{}{}{}", site.country_code, site.area_code, sub))
}

/// What an E.164 number is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Classified {
    /// An emergency number of the site's country (`110`, `112`, `124124`).
    Emergency(&'static str),
    /// A callable external number.
    External {
        /// E.164 digits without `+`.
        digits: String,
        kind: NumberKind,
        /// Whether more digits could still form a valid, longer number.
        can_grow: bool,
    },
}

/// The blocked range `nsn` (a German national significant number) falls in.
pub(super) fn blocked_range(nsn: &str) -> Option<Refusal> {
    BLOCKED
        .iter()
        .find(|(prefix, _, _)| nsn.starts_with(prefix))
        .map(|(_, range, reason)| Refusal::Blocked {
            range: (*range).to_owned(),
            reason: (*reason).to_owned(),
        })
}

/// Classifies E.164 digits (no `+`): emergency, blocked, length and kind.
pub(super) fn classify(digits: &str, site: &Site) -> Result<Classified, Fail> {
    if digits.len() > E164_MAX_DIGITS {
        return Err(invalid(
            "number too long: E.164 numbers have at most 15 digits",
        ));
    }
    if let Some(nsn) = strip(digits, &site.country_code) {
        return domestic(digits, nsn, site);
    }
    // Not the site's country: international. German blocked ranges still apply (the
    // provider's trunk is German and bills them whatever the caller's country).
    if let Some(nsn) = digits.strip_prefix(GERMANY) {
        if let Some(refusal) = blocked_range(nsn) {
            return Err(Fail::Final(refusal));
        }
    }
    if digits.len() < INTERNATIONAL_MIN_DIGITS {
        return Err(incomplete());
    }
    Ok(Classified::External {
        digits: digits.to_owned(),
        kind: NumberKind::International,
        can_grow: digits.len() < E164_MAX_DIGITS,
    })
}

/// A number in the site's own country; `nsn` is its national significant number.
fn domestic(digits: &str, nsn: &str, site: &Site) -> Result<Classified, Fail> {
    if nsn.is_empty() {
        return Err(incomplete());
    }
    if let Some(e) = EMERGENCY.iter().find(|e| **e == nsn) {
        return Ok(Classified::Emergency(e));
    }
    let german = site.country_code == GERMANY;
    if german {
        if let Some(refusal) = blocked_range(nsn) {
            return Err(Fail::Final(refusal));
        }
        if nsn.starts_with("11") {
            return service(digits, nsn);
        }
    }
    if nsn.starts_with('0') {
        return Err(invalid("national number starts with a second 0"));
    }
    let external = |kind, can_grow| {
        Ok(Classified::External {
            digits: digits.to_owned(),
            kind,
            can_grow,
        })
    };
    if german && ["15", "16", "17"].iter().any(|p| nsn.starts_with(p)) {
        if nsn.len() < *MOBILE_NSN.start() {
            return Err(incomplete());
        }
        if nsn.len() > *MOBILE_NSN.end() {
            return Err(invalid("mobile number too long"));
        }
        return external(NumberKind::Mobile, nsn.len() < *MOBILE_NSN.end());
    }
    if nsn.len() < NATIONAL_MIN_NSN {
        return Err(incomplete());
    }
    let local = !site.area_code.is_empty()
        && nsn.len() > site.area_code.len()
        && nsn.starts_with(&site.area_code);
    let kind = if local {
        NumberKind::Local
    } else {
        NumberKind::National
    };
    external(kind, digits.len() < E164_MAX_DIGITS)
}

/// German national service codes starting 11 (110/112 and 118xx are handled before):
/// 115 (public authorities) and the harmonised European 116xxx numbers (116116 card
/// blocking, 116117 medical on-call service, 116000 missing children...).
fn service(digits: &str, nsn: &str) -> Result<Classified, Fail> {
    let ok = |can_grow| {
        Ok(Classified::External {
            digits: digits.to_owned(),
            kind: NumberKind::Service,
            can_grow,
        })
    };
    match nsn.len() {
        2 => Err(incomplete()),
        3 if nsn == "115" => ok(false),
        3..=5 if nsn.starts_with("116") => Err(incomplete()),
        6 if nsn.starts_with("116") => ok(false),
        _ => Err(Fail::Final(Refusal::Unknown)),
    }
}
