//! Click-to-dial (`POST /api/v1/me/dial`): the box rings the user's own extension and,
//! once it answers, calls the number for it. The number goes through the call layer's
//! routing exactly as if the extension had dialled it; a refusal (blocked range,
//! outbound class, limits) comes back here with its reason and no phone rings.
//! Rate-limited per account, audited, CSRF-protected like every state change.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::api::{lock, parse_json, AppState, Authed};
use super::error::ApiError;
use crate::call::{CallId, CauseKind};
use crate::clock;
use crate::sip::{DialError, Dialer};

/// Click-to-dial requests per account in [`WINDOW`].
pub const MAX_DIALS: usize = 10;
/// The rate limit's sliding window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Longest number accepted (E.164 has at most 15 digits; prefixes add a few).
const MAX_DIGITS: usize = 32;

/// The routes of this module (appended to [`super::api::routes`]).
pub(super) fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![(Method::POST, "/api/v1/me/dial", post(dial))]
}

/// The web side's click-to-dial state: the SIP task's dialer (set by the daemon once
/// at start; absent in a web-only set-up) and the per-account rate limit.
#[derive(Debug, Default)]
pub struct ClickToDial {
    dialer: OnceLock<Dialer>,
    recent: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl ClickToDial {
    /// Connects the API to the SIP task (a second call is ignored).
    pub fn configure(&self, dialer: Dialer) {
        let _ = self.dialer.set(dialer);
    }

    /// Counts a request of `account`; `Err(retry_after_secs)` when over the limit.
    fn admit(&self, account: &str, now: Instant) -> Result<(), u64> {
        let mut recent = lock(&self.recent);
        // Accounts are few; dropping idle ones keeps the table small.
        recent.retain(|_, l| {
            while l.front().is_some_and(|t| *t + WINDOW <= now) {
                l.pop_front();
            }
            !l.is_empty()
        });
        let list = recent.entry(account.to_owned()).or_default();
        if list.len() >= MAX_DIALS {
            let wait = list
                .front()
                .map_or(WINDOW, |t| (*t + WINDOW).saturating_duration_since(now));
            return Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        }
        list.push_back(now);
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DialBody {
    number: String,
}

#[derive(Serialize)]
struct DialView {
    /// The call's number (its record has this id's call once it ends).
    call: CallId,
    /// The user's extension, ringing now.
    extension: String,
    /// The number dialled once it answers.
    number: String,
}

/// A number as people write it ("+49 (211) 123-456", "0211/123456") reduced to what
/// is dialled: digits with an optional leading `+`.
pub fn clean_number(raw: &str) -> Result<String, ApiError> {
    let kept: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '/' | '(' | ')' | '.'))
        .collect();
    let digits = kept.strip_prefix('+').unwrap_or(&kept);
    if digits.is_empty() {
        return Err(ApiError::field("number", "enter a number to call"));
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::field(
            "number",
            "a number may contain only digits, a leading + and separators",
        ));
    }
    if digits.len() > MAX_DIGITS {
        return Err(ApiError::field(
            "number",
            format!("a number has at most {MAX_DIGITS} digits"),
        ));
    }
    Ok(kept)
}

/// The call core's refusal as the client sees it: the reason a phone dialling the
/// number would be given.
fn refusal(e: DialError, extension: &str) -> ApiError {
    let cause = match e {
        DialError::Refused(c) => c,
        DialError::NotRunning => return ApiError::Conflict(e.to_string()),
        // Non-exhaustive: a new kind is at least not a success.
        #[allow(unreachable_patterns)]
        _ => return ApiError::Conflict(e.to_string()),
    };
    let why = |default: &str| cause.detail.clone().unwrap_or_else(|| default.to_owned());
    match cause.kind {
        CauseKind::Forbidden => ApiError::Forbidden {
            field: Some("number"),
            message: why("calls to this number are not allowed"),
        },
        CauseKind::Incomplete | CauseKind::Invalid => {
            ApiError::field("number", why("not a number that can be dialled"))
        }
        CauseKind::NotFound => ApiError::field("number", why("no such extension or number")),
        CauseKind::Unavailable => ApiError::Conflict(why(&format!(
            "no phone of extension {extension} is reachable"
        ))),
        CauseKind::Busy => ApiError::Conflict(why("busy")),
        _ => ApiError::Conflict(why("the call cannot be placed now")),
    }
}

async fn dial(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: DialBody = parse_json(&headers, &body)?;
    let Some(extension) = a.user.extension.clone() else {
        return Err(ApiError::Conflict(
            "your account has no extension to call from; an administrator can link one".into(),
        ));
    };
    let number = clean_number(&req.number)?;
    st.click_to_dial
        .admit(&a.user.username, clock::now())
        .map_err(ApiError::TooManyAttempts)?;
    let Some(dialer) = st.click_to_dial.dialer.get() else {
        return Err(ApiError::Conflict(
            "click-to-dial is not available: telephony is not running".into(),
        ));
    };
    let result = dialer.dial(&extension, &number).await;
    let outcome = match &result {
        Ok(call) => format!("{extension} -> {number}: ringing {extension} (call {call})"),
        Err(e) => format!("{extension} -> {number}: refused: {e}"),
    };
    st.audit(a.actor(), a.source, "click_to_dial", outcome)
        .await;
    match result {
        Ok(call) => Ok((
            StatusCode::ACCEPTED,
            Json(DialView {
                call,
                extension,
                number,
            }),
        )
            .into_response()),
        Err(e) => Err(refusal(e, &extension)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_cleaned_or_refused_naming_the_field() {
        struct Case {
            raw: &'static str,
            want: Option<&'static str>,
        }
        let cases = [
            Case {
                raw: "+49 (211) 123-456",
                want: Some("+49211123456"),
            },
            Case {
                raw: " 0211/123.456 ",
                want: Some("0211123456"),
            },
            Case {
                raw: "1002",
                want: Some("1002"),
            },
            Case {
                raw: "",
                want: None,
            },
            Case {
                raw: "+",
                want: None,
            },
            Case {
                raw: "12a4",
                want: None,
            },
            Case {
                raw: "*31#0211",
                want: None,
            },
            Case {
                raw: "1++2",
                want: None,
            },
            Case {
                raw: "sip:1002@example",
                want: None,
            },
            Case {
                raw: "123456789012345678901234567890123",
                want: None,
            },
        ];
        for c in &cases {
            match (clean_number(c.raw), c.want) {
                (Ok(n), Some(w)) => assert_eq!(n, w, "{:?}", c.raw),
                (Err(ApiError::BadRequest { field, .. }), None) => {
                    assert_eq!(field, Some("number"), "{:?}", c.raw)
                }
                (got, _) => panic!("{:?}: got {got:?}", c.raw),
            }
        }
    }

    #[test]
    fn ten_dials_a_minute_per_account_then_retry_after() {
        let c2d = ClickToDial::default();
        #[allow(clippy::disallowed_methods)] // the test owns its clock
        let t0 = Instant::now();
        for i in 0..MAX_DIALS {
            let at = t0 + Duration::from_secs(i as u64);
            assert_eq!(c2d.admit("anna", at), Ok(()), "dial {i}");
        }
        let at = t0 + Duration::from_secs(30);
        assert_eq!(c2d.admit("anna", at), Err(30));
        // Another account is not affected.
        assert_eq!(c2d.admit("ben", at), Ok(()));
        // The oldest leaves the window: one more.
        let at = t0 + WINDOW;
        assert_eq!(c2d.admit("anna", at), Ok(()));
        assert_eq!(c2d.admit("anna", at), Err(1));
    }
}
