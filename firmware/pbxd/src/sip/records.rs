//! A finished call's summary from the core, with the relay's quality report, as the
//! store's call record.

use std::time::Instant;

use crate::call::CallSummary;
use crate::media::relay::{LegReport, SessionReport};
use crate::store::{CallRecord, LegQuality};

/// Maps the core's monotonic instants to Unix milliseconds through one reference pair
/// (`now`, `now_unix_ms`) read together by the shell.
pub(crate) fn call_record(
    s: &CallSummary,
    report: Option<&SessionReport>,
    now: Instant,
    now_unix_ms: i64,
) -> CallRecord {
    let wall = |t: Instant| -> i64 {
        let back = now.saturating_duration_since(t).as_millis();
        now_unix_ms.saturating_sub(i64::try_from(back).unwrap_or(i64::MAX))
    };
    let answered = s.answer.is_some();
    CallRecord {
        call_id: s.sip_call_id.clone(),
        caller: s.caller.clone(),
        caller_name: s.caller_name.clone(),
        dialled: s.dialled.clone(),
        normalised: s.normalised.clone(),
        destination: s.destination.clone(),
        direction: s.direction,
        route: s.route.clone(),
        source_ip: s.source_ip,
        dest_ip: s.dest_ip,
        start_ms: wall(s.start),
        answer_ms: s.answer.map(wall),
        end_ms: wall(s.end),
        disposition: s.disposition,
        reason: s.reason.clone(),
        sip_status: s.sip_status,
        hangup: s.hangup,
        forwarded_by: s.forwarded_by.clone(),
        // Quality means something only when media flowed.
        quality_caller: report.filter(|_| answered).map(|r| quality(&r.a)),
        quality_callee: report.filter(|_| answered).map(|r| quality(&r.b)),
    }
}

fn quality(l: &LegReport) -> LegQuality {
    LegQuality {
        loss_pct: l.loss_pct as f32,
        jitter_ms: l.jitter_ms as f32,
        rtt_ms: l.rtt_ms.map(|v| v as f32),
        mos: l.mos as f32,
    }
}
