//! The dial plan: a pure function from (caller, dialled string, site settings, number
//! directory snapshot) to a [`Route`] or a [`Refusal`]. No I/O, no clock.
//!
//! The numbering rules are German (the provider and its blocked ranges are German); the
//! [`Site`] sets country code, area code, prefixes and the outside-line prefix.
//!
//! # Input
//! A dialled string is a SIP URI user part or digits from an analog line: digits, `+`,
//! `*`, `#`. Visual separators `-`, space, `(`, `)`, `.`, `/` are dropped, and the
//! percent-escapes of allowed characters (`%23` for `#`, `%2A`, `%2B`, `%20`...) are
//! decoded; user-part parameters (`;phone-context=...`) are ignored (the site's own
//! codes apply). Anything else is [`Refusal::Invalid`]. More than 32 significant characters,
//! or an external number of more than 15 E.164 digits, is `Invalid`. `+` only at the
//! start of the number. A trailing `#` after a number ends dialling ("send now").
//!
//! # Order of rules
//! 1. `*31#` (suppress caller ID) or `#31#` (show it) at the start sets CLIR for this call;
//!    otherwise the extension's permanent setting applies. The rest must be a number.
//! 2. Feature codes (start with `*` or `#`), see [`FeatureCode`].
//! 3. Emergency: `110`, `112` and `124124` in every form: as is, after the outside
//!    prefix (`0112`), national (`0112`), `+49112`, `0049112`, with CLIR prefixes and
//!    separators. Never blocked by any class, never given an area code, and checked
//!    before extensions (an extension `112` can never shadow it). `0110`/`0112` mean
//!    emergency in every configuration: no German area code starts with 1. The
//!    [`Route::Emergency`] always has `clir: false`: German law (NotrufV) requires the
//!    caller's number to reach the emergency centre, so a CLIR request is ignored.
//!    `124124` (sea rescue) is mobile-only: `gsm_only: true`.
//! 4. Internal numbers: an exact extension or ring group (from [`NumberPlan`]) wins; a
//!    proper prefix of one is `Incomplete` (484).
//! 5. External numbers, `+...` always (no outside prefix needed), otherwise:
//!    - outside prefix `Some("0")` (the usual German PBX "Amtsholung"): the prefix then a
//!      number in network form: `0 0211 123456` national, `0 00 44...` international,
//!      `0 123456` local (at least 3 digits). A number without the prefix that is not
//!      internal or emergency is `Unknown` (404), except `118xx`, which is `Blocked`
//!      (it is dialled without prefixes, so it is blocked in every spelling). `0900...` under this prefix is the
//!      local number `900...`, not the premium range: that one is `0 0900...`.
//!    - no outside prefix: a leading national prefix `0` is national, `00`
//!      international; other digits are a local subscriber number if not internal.
//!      Local numbers then need at least 5 digits: shorter ones are the extension
//!      range, and a mistyped extension must not become a call to a stranger, so they
//!      are `Unknown` (404). Short local numbers can be dialled with the area code.
//!    - Local numbers starting `11` are national service codes and never get the area
//!      code: `115`, `116xxx` (e.g. 116117) are [`NumberKind::Service`]; `118xx` is
//!      blocked; other `11x` is `Unknown`. A local number that is a proper prefix of
//!      `124124` (`124`, `1241`, `12412`) is `Incomplete`.
//!    - With no area code configured (the [`Site::default`]), a local number is
//!      `Invalid` ("dial the area code"); national and international numbers work.
//!    - `+49 0211...` and `0049 0211...`: the national prefix written after the
//!      country code is dropped (for the site's country and Germany only).
//! 6. Blocked ranges (0137, 0138, 01212, 0181, 0185, 0188, 01807, 032, 0900, 118xx)
//!    are checked on the E.164 form, so they are caught in every spelling, from every
//!    class (also international), as soon as the range prefix is dialled. They are
//!    checked before the outbound class.
//! 7. Lengths: German national significant numbers need at least 5 digits, mobile ones
//!    (015x/016x/017x) 10 to 11; international numbers 7 to 15 digits with the country
//!    code. Shorter is `Incomplete` (484), longer `Invalid`.
//! 8. Outbound class ([`OutboundClass`]): `internal` allows internal numbers, features
//!    and emergency; `local` adds numbers in the site's area code and the service codes
//!    115/116xxx; `national` adds every +49 number (mobile included); `international`
//!    everything. Otherwise [`Refusal::NotAllowed`].
//!
//! CLIR on internal calls is ignored: phones on the PBX always see the extension.
//!
//! # Digit-by-digit dialling
//! [`completeness`] tells an analog line whether to collect more digits. German
//! numbers have variable length, so an external number is `NeedMore` until its
//! maximum length or a `#`: the line routes it after an inter-digit timeout. `Complete`
//! means no further digit changes the outcome (emergency numbers after 3 digits,
//! extensions that start no longer number); `Invalid` means no continuation can be
//! dialled (bad characters, unknown codes, a blocked range). On `Complete`, `Invalid`
//! or a timeout, the line calls [`route`], which gives the route or the reason.
//!
//! Feature-code targets (`*21*target#`) are checked as if the caller dialled the target
//! now (outside prefix included) and stored in canonical form: the internal number, or
//! E.164 with `+` for external ones (which [`route`] accepts without outside prefix).
//! Whether external forwarding is allowed at all is the site policy of the call core.
//!
//! # Example
//! ```
//! use pbxd::dialplan::{route, Caller, NumberKind, OutboundClass, Route, Site, StaticPlan};
//!
//! let site = Site { area_code: "211".into(), ..Site::default() };
//! let plan = StaticPlan::new(["201", "202"], ["600"]);
//! let alice = Caller { extension: "201", class: OutboundClass::National, clir_permanent: false };
//!
//! assert_eq!(
//!     route(&alice, "*31# 0211 123456", &site, &plan),
//!     Ok(Route::External {
//!         dialled: "*31#0211123456".into(),
//!         e164: "+49211123456".into(),
//!         kind: NumberKind::Local,
//!         clir: true,
//!     })
//! );
//! assert_eq!(route(&alice, "202", &site, &plan), Ok(Route::Extension { number: "202".into() }));
//! let refusal = route(&alice, "+49 900 123456", &site, &plan).unwrap_err();
//! assert_eq!((refusal.sip_status(), refusal.reason().as_str()),
//!            (403, "blocked number range 0900: premium-rate service"));
//! ```

mod feature;
mod number;
mod plan;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use self::number::{classify, to_e164, Classified, Fail, LocalRule};
pub use self::plan::{NumberPlan, StaticPlan};

/// Longest dialled string after separators are removed.
const MAX_DIALLED: usize = 32;
/// Longest raw input looked at (separators included).
const MAX_RAW: usize = 128;
/// Local numbers after the outside prefix: at least this many digits.
const LOCAL_MIN_WITH_PREFIX: usize = 3;
/// German directory enquiries, 118xx: dialled without national prefix.
const DIRECTORY_ENQUIRY: &str = "118";
/// Local numbers without any prefix: at least this many digits (shorter is internal).
const LOCAL_MIN_WITHOUT_PREFIX: usize = 5;

/// A site's numbering settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Country calling code without `+`, e.g. "49".
    pub country_code: String,
    /// Area code without the national prefix, e.g. "211"; empty when not set.
    pub area_code: String,
    /// National (trunk) prefix, "0" in Germany.
    pub national_prefix: String,
    /// International prefix, "00" in Germany.
    pub international_prefix: String,
    /// Digits dialled before an external number: `None` or `Some("0")`.
    pub outside_prefix: Option<String>,
}

impl Default for Site {
    /// Germany, no area code (local numbers then need the area code), no outside prefix.
    fn default() -> Self {
        Site {
            country_code: "49".to_owned(),
            area_code: String::new(),
            national_prefix: "0".to_owned(),
            international_prefix: "00".to_owned(),
            outside_prefix: None,
        }
    }
}

impl Site {
    fn outside_prefix(&self) -> Option<&str> {
        self.outside_prefix.as_deref().filter(|p| !p.is_empty())
    }
}

/// Which external numbers an extension may dial. Ordered: each class includes the ones
/// before it. Emergency numbers are callable from every class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum OutboundClass {
    /// Internal numbers, feature codes and emergency only.
    InternalOnly,
    /// Plus numbers in the site's area code and national service codes (115, 116xxx).
    Local,
    /// Plus every number in the site's country, mobile included.
    #[default]
    National,
    /// Everything that is not blocked.
    International,
}

impl OutboundClass {
    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboundClass::InternalOnly => "internal",
            OutboundClass::Local => "local",
            OutboundClass::National => "national",
            OutboundClass::International => "international",
        }
    }

    fn allows(self, kind: NumberKind) -> bool {
        let needed = match kind {
            NumberKind::Local | NumberKind::Service => OutboundClass::Local,
            NumberKind::National | NumberKind::Mobile => OutboundClass::National,
            NumberKind::International => OutboundClass::International,
        };
        self >= needed
    }
}

impl fmt::Display for OutboundClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An outbound class name that is not one of "internal", "local", "national",
/// "international".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown outbound class (expected internal, local, national or international)")]
pub struct ParseClassError;

impl FromStr for OutboundClass {
    type Err = ParseClassError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "internal" => Ok(OutboundClass::InternalOnly),
            "local" => Ok(OutboundClass::Local),
            "national" => Ok(OutboundClass::National),
            "international" => Ok(OutboundClass::International),
            _ => Err(ParseClassError),
        }
    }
}

/// Who is dialling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller<'a> {
    /// The calling extension (a forward to itself is refused).
    pub extension: &'a str,
    /// What it may dial.
    pub class: OutboundClass,
    /// Caller ID suppressed on every external call unless `#31#` is dialled.
    pub clir_permanent: bool,
}

/// What kind of external number a route goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberKind {
    /// In the site's country and area code.
    Local,
    /// In the site's country, another area code or a non-geographic number.
    National,
    /// A German mobile number (015x, 016x, 017x); counts as national.
    Mobile,
    /// Another country.
    International,
    /// A German national service code without area code: 115, 116xxx.
    Service,
}

impl NumberKind {
    /// Name for records and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            NumberKind::Local => "local",
            NumberKind::National => "national",
            NumberKind::Mobile => "mobile",
            NumberKind::International => "international",
            NumberKind::Service => "service",
        }
    }
}

impl fmt::Display for NumberKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A feature code dialled from a phone (German/GSM-style codes as on most PBXs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureCode {
    /// `*8`: pick up a call ringing in the caller's pickup group.
    Pickup,
    /// `**<extension>`: pick up the call ringing at that extension.
    PickupExtension {
        /// The ringing extension.
        extension: String,
    },
    /// `*78`: do not disturb on.
    DndOn,
    /// `*79`: do not disturb off.
    DndOff,
    /// `*21*target#`: forward every call.
    ForwardAlways {
        /// Internal number, or E.164 with `+` for external targets.
        target: String,
    },
    /// `#21#`.
    ForwardAlwaysOff,
    /// `*67*target#`: forward when busy.
    ForwardBusy {
        /// Internal number, or E.164 with `+`.
        target: String,
    },
    /// `#67#`.
    ForwardBusyOff,
    /// `*61*target#` or `*61*target*seconds#` (5 to 300 s): forward on no answer.
    ForwardNoAnswer {
        /// Internal number, or E.164 with `+`.
        target: String,
        /// Ring time before forwarding; `None` keeps the configured one.
        timeout_secs: Option<u16>,
    },
    /// `#61#`.
    ForwardNoAnswerOff,
}

/// Where a dialled call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// An extension (analog ports are extensions too).
    Extension {
        /// Its number.
        number: String,
    },
    /// A ring group.
    RingGroup {
        /// Its number.
        number: String,
    },
    /// A feature code: handled by the call core, no call is set up.
    Feature(FeatureCode),
    /// A number reached through a trunk.
    External {
        /// What was dialled, separators removed (CLIR code and prefixes kept).
        dialled: String,
        /// E.164 with `+`, e.g. "+49211123456".
        e164: String,
        /// What kind of number it is.
        kind: NumberKind,
        /// Suppress the caller ID (`Privacy: id`).
        clir: bool,
    },
    /// An emergency call: pre-empts everything, never refused by the dial plan.
    Emergency {
        /// "110", "112" or "124124", as sent to the network (never with area code).
        number: String,
        /// Always false: the caller's number must reach the emergency centre.
        clir: bool,
        /// Only the GSM module can reach it (124124, sea rescue).
        gsm_only: bool,
    },
}

/// Why a dialled string is not routed. [`Refusal::sip_status`] maps it to the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// More digits are needed (SIP 484).
    #[error("number incomplete")]
    Incomplete,
    /// No such number (SIP 404).
    #[error("unknown number")]
    Unknown,
    /// A blocked premium or special range (SIP 403).
    #[error("blocked number range {range}: {reason}")]
    Blocked {
        /// The range as the provider lists it, e.g. "0900", "118xx".
        range: String,
        /// What the range is.
        reason: String,
    },
    /// The caller's outbound class does not allow it (SIP 403).
    #[error("not allowed for outbound class {class}: {reason}")]
    NotAllowed {
        /// The caller's class.
        class: OutboundClass,
        /// What was refused.
        reason: String,
    },
    /// Not a number at all, or too long (SIP 484, so the phone lets the user correct it).
    #[error("invalid number: {reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
}

impl Refusal {
    /// The SIP final response status for this refusal.
    pub fn sip_status(&self) -> u16 {
        match self {
            Refusal::Incomplete | Refusal::Invalid { .. } => 484,
            Refusal::Unknown => 404,
            Refusal::Blocked { .. } | Refusal::NotAllowed { .. } => 403,
        }
    }

    /// A short ASCII reason for the SIP reason phrase or Warning and the call record.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

/// For analog phones dialling digit by digit: is the number complete yet?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// No further digit changes the outcome: call [`route`] now.
    Complete,
    /// Wait for more digits (or the inter-digit timeout, then call [`route`]).
    NeedMore,
    /// No continuation can be dialled: call [`route`] for the reason, play reorder.
    Invalid,
}

/// A route and whether a longer dialled string could mean something else.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Analysis {
    route: Route,
    can_grow: bool,
}

/// Routes a dialled string for `caller`.
pub fn route(
    caller: &Caller<'_>,
    dialled: &str,
    site: &Site,
    plan: &dyn NumberPlan,
) -> Result<Route, Refusal> {
    analyse(caller, dialled, site, plan)
        .map(|a| a.route)
        .map_err(Fail::into_refusal)
}

/// For analog phones dialling digit by digit: is `dialled` complete yet? Outbound
/// classes are not considered ([`route`] checks them).
pub fn completeness(dialled: &str, site: &Site, plan: &dyn NumberPlan) -> Completeness {
    let anyone = Caller {
        extension: "",
        class: OutboundClass::International,
        clir_permanent: false,
    };
    match analyse(&anyone, dialled, site, plan) {
        Ok(Analysis { can_grow: true, .. }) | Err(Fail::MayGrow(_)) => Completeness::NeedMore,
        Ok(Analysis {
            can_grow: false, ..
        }) => Completeness::Complete,
        Err(Fail::Final(_)) => Completeness::Invalid,
    }
}

/// A number in network form (`+...`, `00...`, `0...`, or a local number that gets the
/// area code) to E.164 with `+`. No outside prefix, no feature or CLIR codes, no
/// blocking: usable for inbound caller IDs. `110`/`112` and 11x service codes get the
/// country code but never the area code.
pub fn normalise(number: &str, site: &Site) -> Result<String, Refusal> {
    let cleaned = clean(number).map_err(Fail::into_refusal)?;
    check_number_chars(&cleaned).map_err(Fail::into_refusal)?;
    let rule = LocalRule {
        min_digits: 1,
        too_short: || Refusal::Incomplete,
    };
    let digits = to_e164(&cleaned, site, rule).map_err(Fail::into_refusal)?;
    if digits.len() > number::E164_MAX_DIGITS {
        return Err(Refusal::Invalid {
            reason: "number too long: E.164 numbers have at most 15 digits".to_owned(),
        });
    }
    if digits == site.country_code {
        return Err(Refusal::Incomplete);
    }
    Ok(format!("+{digits}"))
}

/// E.164 (`+49211123456`) to the national form for display: `0211123456`, and for
/// other countries `0044...`. Anything not starting with `+` is returned as is.
pub fn national_format(e164: &str, site: &Site) -> String {
    let Some(digits) = e164.strip_prefix('+') else {
        return e164.to_owned();
    };
    match number::strip(digits, &site.country_code) {
        Some(nsn) => format!("{}{}", site.national_prefix, nsn),
        None => format!("{}{}", site.international_prefix, digits),
    }
}

/// [`national_format`] with the site's outside prefix in front: what a user dials to
/// call the number back from this PBX.
pub fn dialable_format(e164: &str, site: &Site) -> String {
    let national = national_format(e164, site);
    match site.outside_prefix() {
        Some(p) if e164.starts_with('+') => format!("{p}{national}"),
        _ => national,
    }
}

/// Removes separators, decodes percent-escapes, checks the alphabet and length.
fn clean(dialled: &str) -> Result<String, Fail> {
    let too_long = || {
        Fail::Final(Refusal::Invalid {
            reason: "number too long".to_owned(),
        })
    };
    if dialled.len() > MAX_RAW {
        return Err(too_long());
    }
    let bad = || {
        Fail::Final(Refusal::Invalid {
            reason: "only digits, +, * and # can be dialled".to_owned(),
        })
    };
    // User-part parameters (";phone-context=...", RFC 3966) are not part of the number.
    let dialled = dialled.split(';').next().unwrap_or_default();
    let mut out = String::with_capacity(dialled.len());
    let mut bytes = dialled.bytes();
    while let Some(b) = bytes.next() {
        let c = if b == b'%' {
            let hi = bytes.next().and_then(|h| (h as char).to_digit(16));
            let lo = bytes.next().and_then(|l| (l as char).to_digit(16));
            match (hi, lo) {
                // Both are hex digits, so the value fits a byte.
                (Some(h), Some(l)) => u8::try_from(h * 16 + l).map_err(|_| bad())?,
                _ => return Err(bad()),
            }
        } else {
            b
        };
        match c {
            b'0'..=b'9' | b'+' | b'*' | b'#' => out.push(char::from(c)),
            b'-' | b' ' | b'(' | b')' | b'.' | b'/' => {}
            _ => return Err(bad()),
        }
    }
    if out.len() > MAX_DIALLED {
        return Err(too_long());
    }
    Ok(out)
}

/// A number part: ASCII digits with at most a leading `+`.
fn check_number_chars(num: &str) -> Result<(), Fail> {
    let digits = num.strip_prefix('+').unwrap_or(num);
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Fail::Final(Refusal::Invalid {
            reason: "* and # only in feature codes, + only at the start".to_owned(),
        }))
    }
}

fn analyse(
    caller: &Caller<'_>,
    dialled: &str,
    site: &Site,
    plan: &dyn NumberPlan,
) -> Result<Analysis, Fail> {
    let cleaned = clean(dialled)?;
    let (clir_code, rest) = if let Some(r) = cleaned.strip_prefix("*31#") {
        (Some(true), r)
    } else if let Some(r) = cleaned.strip_prefix("#31#") {
        (Some(false), r)
    } else {
        (None, cleaned.as_str())
    };
    if rest.starts_with('*') || rest.starts_with('#') {
        if clir_code.is_some() {
            return Err(Fail::Final(Refusal::Invalid {
                reason: "a CLIR code must be followed by a number".to_owned(),
            }));
        }
        return feature::feature(caller, rest, site, plan);
    }
    let (num, terminated) = match rest.strip_suffix('#') {
        Some(n) => (n, true),
        None => (rest, false),
    };
    let clir = clir_code.unwrap_or(caller.clir_permanent);
    let analysis = dial_number(caller, num, &cleaned, clir, site, plan);
    if terminated {
        analysis
            .map(|a| Analysis {
                can_grow: false,
                ..a
            })
            .map_err(Fail::finalise)
    } else {
        analysis
    }
}

/// Routes a number (no feature codes, CLIR already split off) and checks the class.
fn dial_number(
    caller: &Caller<'_>,
    num: &str,
    dialled: &str,
    clir: bool,
    site: &Site,
    plan: &dyn NumberPlan,
) -> Result<Analysis, Fail> {
    check_number_chars(num)?;
    if num.is_empty() {
        return Err(Fail::MayGrow(Refusal::Incomplete));
    }
    if let Some(e) = number::EMERGENCY.iter().find(|e| **e == num) {
        return Ok(emergency(e));
    }
    // An external number may also start with these digits (a site with extension "0").
    let external_start = match site.outside_prefix() {
        Some(p) => num.starts_with(p),
        None => number::strip(num, &site.national_prefix).is_some(),
    };
    let internal = |route| {
        Ok(Analysis {
            route,
            can_grow: plan.is_prefix_of_internal(num)
                || number::is_emergency_prefix(num)
                || external_start,
        })
    };
    if !num.starts_with('+') {
        if plan.is_extension(num) {
            return internal(Route::Extension {
                number: num.to_owned(),
            });
        }
        if plan.is_ring_group(num) {
            return internal(Route::RingGroup {
                number: num.to_owned(),
            });
        }
    }
    let with_prefix = LocalRule {
        min_digits: LOCAL_MIN_WITH_PREFIX,
        too_short: || Refusal::Incomplete,
    };
    let digits = if num.starts_with('+') {
        to_e164(num, site, with_prefix)?
    } else if let Some(p) = site.outside_prefix() {
        match num.strip_prefix(p) {
            Some(rest) => to_e164(rest, site, with_prefix)?,
            None if plan.is_prefix_of_internal(num)
                || number::is_emergency_prefix(num)
                || p.starts_with(num) =>
            {
                return Err(Fail::MayGrow(Refusal::Incomplete))
            }
            // 118xx is dialled without any prefix: blocked, not just unknown.
            None => {
                return Err(Fail::Final(
                    num.strip_prefix(DIRECTORY_ENQUIRY)
                        .and_then(|_| number::blocked_range(num))
                        .unwrap_or(Refusal::Unknown),
                ))
            }
        }
    } else if plan.is_prefix_of_internal(num) {
        return Err(Fail::MayGrow(Refusal::Incomplete));
    } else {
        let without_prefix = LocalRule {
            min_digits: LOCAL_MIN_WITHOUT_PREFIX,
            too_short: || Refusal::Unknown,
        };
        to_e164(num, site, without_prefix)?
    };
    match classify(&digits, site)? {
        Classified::Emergency(e) => Ok(emergency(e)),
        Classified::External {
            digits,
            kind,
            can_grow,
        } => {
            if !caller.class.allows(kind) {
                return Err(Fail::Final(Refusal::NotAllowed {
                    class: caller.class,
                    reason: format!("{kind} number"),
                }));
            }
            Ok(Analysis {
                route: Route::External {
                    dialled: dialled.to_owned(),
                    e164: format!("+{digits}"),
                    kind,
                    clir,
                },
                can_grow,
            })
        }
    }
}

fn emergency(number: &str) -> Analysis {
    Analysis {
        route: Route::Emergency {
            number: number.to_owned(),
            clir: false,
            gsm_only: number == number::SEA_RESCUE,
        },
        can_grow: false,
    }
}
