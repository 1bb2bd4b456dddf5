//! Call control's causes in SIP's words (RFC 3261 sec. 21) and back: the status and
//! reason phrase a refused caller gets, and what a callee's final response means.

use crate::call::{Cause, CauseKind};

/// The status and reason phrase for `cause`: the standard phrase, with the cause's
/// words after a colon where they help the user ("486 Busy Here: do not disturb").
pub fn status_line(cause: &Cause) -> (u16, String) {
    let (status, phrase) = match cause.kind {
        CauseKind::Declined => (603, "Decline"),
        CauseKind::Busy => (486, "Busy Here"),
        CauseKind::Forbidden => (403, "Forbidden"),
        CauseKind::Balance => (402, "Payment Required"),
        CauseKind::NotFound => (404, "Not Found"),
        CauseKind::Unavailable => (480, "Temporarily Unavailable"),
        CauseKind::Incomplete => (484, "Address Incomplete"),
        CauseKind::Unacceptable => (488, "Not Acceptable Here"),
        CauseKind::Loop => (482, "Loop Detected"),
        CauseKind::Invalid => (400, "Bad Request"),
        CauseKind::Pending => (491, "Request Pending"),
        CauseKind::NoSuchCall => (481, "Call/Transaction Does Not Exist"),
        CauseKind::NoAnswer => (408, "Request Timeout"),
        CauseKind::Cancelled => (487, "Request Terminated"),
        CauseKind::Congestion => (503, "Service Unavailable"),
        CauseKind::Failed => (500, "Server Internal Error"),
    };
    // Phones show 404 and 484 well by themselves; the words go in a Warning.
    let plain = matches!(cause.kind, CauseKind::NotFound | CauseKind::Incomplete);
    match &cause.detail {
        Some(d) if !plain => (status, format!("{phrase}: {d}")),
        _ => (status, phrase.to_owned()),
    }
}

/// A `Warning` header (399, our host name "pbxd") carrying the cause's words.
pub fn warning(cause: &Cause) -> Option<String> {
    cause
        .detail
        .as_deref()
        .map(|d| format!("399 pbxd \"{}\"", super::quote(d)))
}

/// What a final non-2xx response from a callee means for call control.
pub fn of_status(status: u16) -> Cause {
    let kind = match status {
        600 | 603 => CauseKind::Declined,
        486 => CauseKind::Busy,
        403 => CauseKind::Forbidden,
        402 => CauseKind::Balance,
        404 | 604 => CauseKind::NotFound,
        // Authentication towards a phone is not the caller's business.
        401 | 407 | 410 | 480 => CauseKind::Unavailable,
        484 => CauseKind::Incomplete,
        415 | 488 | 606 => CauseKind::Unacceptable,
        482 | 483 => CauseKind::Loop,
        400 => CauseKind::Invalid,
        491 => CauseKind::Pending,
        481 => CauseKind::NoSuchCall,
        408 => CauseKind::NoAnswer,
        487 => CauseKind::Cancelled,
        500..=599 => CauseKind::Congestion,
        _ => CauseKind::Failed,
    };
    Cause::new(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_round_trip_through_their_status() {
        for kind in [
            CauseKind::Declined,
            CauseKind::Busy,
            CauseKind::Forbidden,
            CauseKind::Balance,
            CauseKind::NotFound,
            CauseKind::Unavailable,
            CauseKind::Incomplete,
            CauseKind::Unacceptable,
            CauseKind::Loop,
            CauseKind::Invalid,
            CauseKind::Pending,
            CauseKind::NoSuchCall,
            CauseKind::NoAnswer,
            CauseKind::Cancelled,
            CauseKind::Congestion,
        ] {
            let (status, _) = status_line(&Cause::new(kind));
            assert_eq!(of_status(status).kind, kind, "{status}");
        }
    }

    #[test]
    fn words_follow_the_phrase_except_where_phones_show_them_badly() {
        let busy = Cause::with(CauseKind::Busy, "do not disturb");
        assert_eq!(
            status_line(&busy),
            (486, "Busy Here: do not disturb".into())
        );
        let nf = Cause::with(CauseKind::NotFound, "unknown number");
        assert_eq!(status_line(&nf), (404, "Not Found".into()));
        assert_eq!(warning(&nf).as_deref(), Some("399 pbxd \"unknown number\""));
    }
}
