//! Feature codes (`*...`, `#...#`) dialled from a phone.

use super::number::Fail;
use super::{dial_number, Analysis, Caller, FeatureCode, NumberPlan, Refusal, Route, Site};

/// The fixed start of every feature code (CLIR codes included, as they are prefixes
/// of a dialled string too): a proper prefix of one of these may still become a code.
const STARTS: [&str; 12] = [
    "*8", "*78", "*79", "**", "*21*", "*67*", "*61*", "#21#", "#67#", "#61#", "*31#", "#31#",
];

/// Longest accepted no-answer timeout, and the shortest (as GSM networks allow).
const NO_ANSWER_SECS: std::ops::RangeInclusive<u16> = 5..=300;

#[derive(Clone, Copy)]
enum Forward {
    Always,
    Busy,
    NoAnswer,
}

fn final_invalid(reason: &str) -> Fail {
    Fail::Final(Refusal::Invalid {
        reason: reason.to_owned(),
    })
}

fn done(code: FeatureCode, can_grow: bool) -> Result<Analysis, Fail> {
    Ok(Analysis {
        route: Route::Feature(code),
        can_grow,
    })
}

/// `s` starts with `*` or `#` and is not a CLIR prefix.
pub(super) fn feature(
    caller: &Caller<'_>,
    s: &str,
    site: &Site,
    plan: &dyn NumberPlan,
) -> Result<Analysis, Fail> {
    let fixed = match s {
        "*8" => Some(FeatureCode::Pickup),
        "*78" => Some(FeatureCode::DndOn),
        "*79" => Some(FeatureCode::DndOff),
        "#21#" => Some(FeatureCode::ForwardAlwaysOff),
        "#67#" => Some(FeatureCode::ForwardBusyOff),
        "#61#" => Some(FeatureCode::ForwardNoAnswerOff),
        _ => None,
    };
    if let Some(code) = fixed {
        return done(code, false);
    }
    if let Some(ext) = s.strip_prefix("**") {
        return directed_pickup(ext, plan);
    }
    for (start, kind) in [
        ("*21*", Forward::Always),
        ("*67*", Forward::Busy),
        ("*61*", Forward::NoAnswer),
    ] {
        if let Some(body) = s.strip_prefix(start) {
            return forward(caller, kind, body, site, plan);
        }
    }
    if STARTS.iter().any(|c| c.len() > s.len() && c.starts_with(s)) {
        Err(Fail::MayGrow(Refusal::Incomplete))
    } else {
        Err(Fail::Final(Refusal::Unknown))
    }
}

/// `**<extension>`: pick up the call ringing at that extension.
fn directed_pickup(ext: &str, plan: &dyn NumberPlan) -> Result<Analysis, Fail> {
    let (ext, terminated) = match ext.strip_suffix('#') {
        Some(e) => (e, true),
        None => (ext, false),
    };
    if ext.is_empty() {
        return Err(if terminated {
            Fail::Final(Refusal::Incomplete)
        } else {
            Fail::MayGrow(Refusal::Incomplete)
        });
    }
    if !ext.bytes().all(|b| b.is_ascii_digit()) {
        return Err(final_invalid(
            "pickup needs an extension number: **<extension>",
        ));
    }
    let longer = !terminated && plan.is_prefix_of_internal(ext);
    if plan.is_extension(ext) {
        return done(
            FeatureCode::PickupExtension {
                extension: ext.to_owned(),
            },
            longer,
        );
    }
    if longer {
        Err(Fail::MayGrow(Refusal::Incomplete))
    } else {
        Err(Fail::Final(Refusal::Unknown))
    }
}

/// `*21*target#`, `*67*target#`, `*61*target#` or `*61*target*seconds#`.
fn forward(
    caller: &Caller<'_>,
    kind: Forward,
    body: &str,
    site: &Site,
    plan: &dyn NumberPlan,
) -> Result<Analysis, Fail> {
    let Some(inner) = body.strip_suffix('#') else {
        return if body
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'+' || b == b'*')
        {
            Err(Fail::MayGrow(Refusal::Incomplete))
        } else {
            Err(final_invalid("a forwarding code ends with #"))
        };
    };
    let (target, secs) = match (kind, inner.split_once('*')) {
        (Forward::NoAnswer, Some((t, secs))) => (t, Some(secs)),
        (_, Some(_)) => return Err(final_invalid("forwarding target is not a number")),
        (_, None) => (inner, None),
    };
    let timeout_secs = match secs {
        None => None,
        Some(secs) => match secs.parse::<u16>() {
            Ok(n) if secs.bytes().all(|b| b.is_ascii_digit()) && NO_ANSWER_SECS.contains(&n) => {
                Some(n)
            }
            _ => {
                return Err(final_invalid(
                    "no-answer timeout must be 5 to 300 seconds: *61*target*seconds#",
                ))
            }
        },
    };
    if target.is_empty() {
        return Err(Fail::Final(Refusal::Incomplete));
    }
    if target.contains('#') {
        return Err(final_invalid("forwarding target is not a number"));
    }
    // The target is checked as if the caller dialled it now (class, blocked ranges),
    // then stored in canonical form: the internal number, or E.164 for external ones.
    let routed = dial_number(caller, target, target, false, site, plan).map_err(Fail::finalise)?;
    let target = match routed.route {
        Route::Extension { number } | Route::RingGroup { number } => number,
        Route::External { e164, .. } => e164,
        Route::Emergency { .. } => {
            return Err(final_invalid(
                "calls cannot be forwarded to an emergency number",
            ))
        }
        Route::Feature(_) => return Err(final_invalid("forwarding target is not a number")),
    };
    if target == caller.extension {
        return Err(final_invalid("an extension cannot forward to itself"));
    }
    let code = match kind {
        Forward::Always => FeatureCode::ForwardAlways { target },
        Forward::Busy => FeatureCode::ForwardBusy { target },
        Forward::NoAnswer => FeatureCode::ForwardNoAnswer {
            target,
            timeout_secs,
        },
    };
    done(code, false)
}
