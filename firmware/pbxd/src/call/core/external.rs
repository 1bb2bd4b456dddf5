//! Calls to and from the world: which trunk takes an external call, the limits and
//! toll-fraud protection on them, calls the provider delivers to the account's
//! numbers, and emergency calls, which no limit refuses, which end the newest ordinary
//! external call when the trunk is full, and which try every route in turn.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::{
    Attempt, Call, CallControl, CallId, Cause, CauseKind, Disposition, End, Failure, Hangup, Io,
    LegId, RingTarget,
};
use crate::call::trunk::{EmergencyRoute, TrunkTarget};

use crate::dialplan;
use crate::store::Severity;

/// The window of the per-minute limit on outbound external calls.
const FRAUD_WINDOW: Duration = Duration::from_secs(60);

/// A call the provider delivers, as the SIP side read it.
pub(in crate::call) struct FromTrunk<'a> {
    pub(in crate::call) leg: LegId,
    pub(in crate::call) trunk: &'a str,
    pub(in crate::call) called: &'a [String],
    pub(in crate::call) caller: Option<&'a str>,
    pub(in crate::call) name: Option<String>,
    pub(in crate::call) reference: &'a str,
    pub(in crate::call) source: IpAddr,
}

/// The alert key of a trunk refusing calls for want of balance.
pub(super) fn balance_alert_key(trunk: &str) -> String {
    format!("trunk:{trunk}:balance")
}

/// The provider refused an outgoing call for want of balance: the dashboard says so
/// until a call succeeds again.
pub(super) fn balance_refused(trunk: &str, io: &mut Io<'_, '_>) {
    io.env.raise_alert(
        &balance_alert_key(trunk),
        Severity::Warning,
        "outgoing calls refused by provider: balance",
    );
}

impl CallControl {
    /// The trunk for an ordinary external call: the directory's choice, else the first
    /// registered trunk.
    pub(super) fn trunk_for(&self, number: &str, io: &Io<'_, '_>) -> Option<TrunkTarget> {
        io.env
            .trunk_for(number, false)
            .or_else(|| self.trunks.iter().find_map(TrunkTarget::of_link))
    }

    /// Where an emergency call may go, in order: the directory's trunk, every
    /// registered trunk, then the fallbacks (the GSM gateway).
    pub(super) fn emergency_routes(
        &self,
        number: &str,
        io: &Io<'_, '_>,
    ) -> VecDeque<EmergencyRoute> {
        let mut routes: VecDeque<EmergencyRoute> = VecDeque::new();
        let trunks = io
            .env
            .trunk_for(number, true)
            .into_iter()
            .chain(self.trunks.iter().filter_map(TrunkTarget::of_link));
        for t in trunks {
            if !routes.iter().any(|r| r.name() == t.name) {
                routes.push_back(EmergencyRoute::Trunk(t));
            }
        }
        routes.extend(io.env.emergency_fallbacks());
        routes
    }

    /// Channels of `trunk` in use by live calls, emergency calls included: one per
    /// leg on it, so a call that comes in on a trunk and is forwarded out through the
    /// same trunk takes two.
    fn trunk_load(&self, trunk: &str) -> usize {
        self.calls
            .values()
            .map(|c| {
                usize::from(c.external.as_ref().is_some_and(|(t, _)| t == trunk))
                    + usize::from(c.inbound.as_ref().is_some_and(|(t, _)| t == trunk))
            })
            .sum()
    }

    /// Live ordinary outbound external calls that count as `extension`'s: its own, and
    /// calls its forward sent out.
    fn user_load(&self, extension: &str) -> usize {
        self.calls
            .values()
            .filter(|c| c.external.is_some() && !c.emergency)
            .filter(|c| c.forwarded_by.as_deref().unwrap_or(&c.caller) == extension)
            .count()
    }

    /// Toll-fraud protection and limits for an ordinary outbound call of `extension`
    /// through `trunk`. Every attempt counts towards the per-minute limit; going over it
    /// locks the extension for external calls until an admin unlocks it.
    pub(super) fn external_allowed(
        &mut self,
        now: Instant,
        extension: &str,
        trunk: &str,
        io: &mut Io<'_, '_>,
    ) -> Result<(), Failure> {
        if io.env.external_locked(extension) {
            return Err((
                Cause::with(
                    CauseKind::Forbidden,
                    "external calls locked (toll-fraud protection): an admin must unlock",
                ),
                Disposition::Blocked,
            ));
        }
        let limits = io.env.external_limits(extension, trunk);
        if let Some(max) = limits.per_minute {
            let recent = self
                .recent_external
                .entry(extension.to_owned())
                .or_default();
            while recent.front().is_some_and(|t| *t + FRAUD_WINDOW <= now) {
                recent.pop_front();
            }
            recent.push_back(now);
            if recent.len() > max as usize {
                self.recent_external.remove(extension);
                let why = format!("more than {max} external calls in a minute");
                warn!(
                    extension,
                    "toll-fraud protection: {why}; external calls locked"
                );
                io.env.lock_external(extension, &why);
                io.env.raise_alert(
                    &format!("fraud:{extension}"),
                    Severity::Critical,
                    &format!("extension {extension} locked for external calls: {why}"),
                );
                return Err((
                    Cause::with(
                        CauseKind::Forbidden,
                        format!("external calls locked (toll-fraud protection): {why}"),
                    ),
                    Disposition::Blocked,
                ));
            }
        }
        if let Some(max) = limits.per_user {
            if self.user_load(extension) >= max as usize {
                return Err((
                    Cause::with(
                        CauseKind::Busy,
                        format!("limit of {max} external calls per user reached"),
                    ),
                    Disposition::Busy,
                ));
            }
        }
        if let Some(max) = limits.per_trunk {
            if self.trunk_load(trunk) >= max as usize {
                return Err((
                    Cause::with(
                        CauseKind::Congestion,
                        format!("all {max} channels of trunk {trunk} busy"),
                    ),
                    Disposition::Failed,
                ));
            }
        }
        Ok(())
    }

    /// Rings the next emergency route for call `id`; when none is left, the call fails
    /// with `last` (what the last route answered).
    pub(super) fn next_emergency_route(
        &mut self,
        now: Instant,
        id: CallId,
        number: &str,
        mut last: Option<Cause>,
        io: &mut Io<'_, '_>,
    ) {
        loop {
            let Some(call) = self.calls.get_mut(&id) else {
                return;
            };
            let Some(route) = call.routes.pop_front() else {
                let cause = last.unwrap_or_else(|| {
                    Cause::with(CauseKind::Congestion, "no emergency route left")
                });
                let disposition = super::failure(cause.clone()).1;
                return self.fail_call(now, id, (cause, disposition), io);
            };
            let caller = call.caller.clone();
            let target = match &route {
                EmergencyRoute::Trunk(t) => {
                    self.make_room(now, id, &caller, &t.name, io);
                    RingTarget::Trunk {
                        trunk: t.clone(),
                        number: number.to_owned(),
                        // The emergency centre must see who calls: CLIR never applies,
                        // and the number is the site's, never an extension's.
                        clir: false,
                        identity: io.env.emergency_caller_id(),
                    }
                }
                EmergencyRoute::Gsm => RingTarget::Gsm {
                    number: number.to_owned(),
                },
            };
            match self.try_ring_out(now, id, &target, route.name(), number, io) {
                Ok(()) => {
                    info!(
                        call = id,
                        number,
                        route = route.name(),
                        "emergency call routed"
                    );
                    return;
                }
                Err(cause) => {
                    warn!(
                        call = id,
                        number,
                        route = route.name(),
                        "emergency route unusable: {cause:?}"
                    );
                    last = Some(cause);
                }
            }
        }
    }

    /// An emergency call needs a channel on `trunk`: if the trunk's limit is reached,
    /// the newest ordinary external call on it is ended.
    fn make_room(
        &mut self,
        now: Instant,
        id: CallId,
        caller: &str,
        trunk: &str,
        io: &mut Io<'_, '_>,
    ) {
        let Some(max) = io.env.external_limits(caller, trunk).per_trunk else {
            return;
        };
        // This call's previous route does not count.
        let load = self.trunk_load(trunk)
            - usize::from(
                self.calls
                    .get(&id)
                    .and_then(|c| c.external.as_ref())
                    .is_some_and(|(t, _)| t == trunk),
            );
        if load < max as usize {
            return;
        }
        let victim = self
            .calls
            .values()
            .filter(|c| c.id != id && !c.emergency)
            .filter(|c| {
                c.external.as_ref().is_some_and(|(t, _)| t == trunk)
                    || c.inbound.as_ref().is_some_and(|(t, _)| t == trunk)
            })
            .max_by_key(|c| (c.start, c.id))
            .map(|c| c.id);
        if let Some(v) = victim {
            warn!(
                call = v,
                emergency = id,
                trunk,
                "call ended to make room for an emergency call"
            );
            let why = "ended to make room for an emergency call";
            let end = End {
                disposition: Disposition::Answered,
                reason: Some(why.to_owned()),
                cause: Some(Cause::with(CauseKind::Congestion, why)),
                hangup: Some(Hangup::System),
                done: None,
            };
            self.end_call(now, v, end, io);
        }
    }

    /// An external call was answered: a balance refusal is over; an emergency call's
    /// success is on the dashboard.
    pub(super) fn external_connected(
        &mut self,
        route: &str,
        number: &str,
        emergency: bool,
        caller: &str,
        reference: &str,
        io: &mut Io<'_, '_>,
    ) {
        io.env.clear_alert(&balance_alert_key(route));
        if emergency {
            info!(caller, number, route, "emergency call connected");
            io.env.raise_alert(
                &format!("emergency:{reference}"),
                Severity::Info,
                &format!("emergency call {number} from {caller} connected via {route}"),
            );
        }
    }

    /// An emergency call could not be placed at all.
    pub(super) fn emergency_failed(
        &mut self,
        reference: &str,
        caller: &str,
        number: &str,
        why: &str,
        io: &mut Io<'_, '_>,
    ) {
        warn!(caller, number, "emergency call failed: {why}");
        io.env.raise_alert(
            &format!("emergency:{reference}"),
            Severity::Critical,
            &format!("emergency call {number} from {caller} failed: {why}"),
        );
    }

    /// An emergency call ended: logged with route and outcome; a failure is critical.
    pub(super) fn emergency_ended(&mut self, call: &Call, end: &End, io: &mut Io<'_, '_>) {
        let route = call.external.as_ref().map_or("none", |(r, _)| r.as_str());
        if call.answered.is_some() {
            info!(call = call.id, caller = %call.caller, number = %call.callee, route, "emergency call ended");
            return;
        }
        let why = end
            .cause
            .as_ref()
            .map(|c| match &c.detail {
                Some(d) => format!("{:?}: {d}", c.kind),
                None => format!("{:?}", c.kind),
            })
            .unwrap_or_else(|| "not answered".to_owned());
        let why = format!("{why} (last route {route})");
        self.emergency_failed(&call.reference, &call.caller, &call.callee, &why, io);
    }

    /// Forwards call `id` (being routed to `by`) out to the external number `number`
    /// as `by`'s own outbound call: the dial plan with `by`'s outbound class (blocked
    /// ranges included), `by`'s lock, toll-fraud count and concurrent-call limit, the
    /// trunk's channels, and `by`'s caller ID (a number of the account, never the
    /// original caller's). Emergency numbers are not forward targets: an outside caller
    /// would reach the emergency centre under the site's emergency identity.
    pub(super) fn forward_out(
        &mut self,
        now: Instant,
        id: CallId,
        by: &str,
        number: &str,
        io: &mut Io<'_, '_>,
    ) -> Result<(), Failure> {
        if let Some(call) = self.calls.get_mut(&id) {
            call.forwarded_by = Some(by.to_owned());
        }
        let (e164, clir) = forward_route(by, number, io)?;
        let Some(trunk) = self.trunk_for(&e164, io) else {
            return Err((
                Cause::with(
                    CauseKind::Congestion,
                    format!("no trunk to forward to {e164}"),
                ),
                Disposition::Failed,
            ));
        };
        self.external_allowed(now, by, &trunk.name, io)?;
        let name = trunk.name.clone();
        let target = RingTarget::Trunk {
            identity: io.env.caller_id(&name, by),
            trunk,
            number: e164.clone(),
            clir,
        };
        info!(call = id, by, number = %e164, trunk = %name, "call forwarded out");
        self.try_ring_out(now, id, &target, &name, &e164, io)
            .map_err(super::failure)
    }

    /// A call the provider delivers: the called number must be one of the account's
    /// numbers (else 404); the caller is shown in national format, or as anonymous.
    pub(super) fn incoming_trunk(
        &mut self,
        now: Instant,
        from: FromTrunk<'_>,
        io: &mut Io<'_, '_>,
    ) {
        let site = io.env.site();
        let caller_e164 = from.caller.and_then(|c| dialplan::normalise(c, &site).ok());
        let shown = caller_e164.as_deref().map_or_else(
            || "anonymous".to_owned(),
            |e| dialplan::national_format(e, &site),
        );
        let found = from
            .called
            .iter()
            .filter_map(|c| dialplan::normalise(c, &site).ok())
            .find_map(|e| io.env.did_destination(from.trunk, &e).map(|d| (e, d)))
            // A trunk that sends no called number (the GSM module: its SIM has one
            // number) has one destination, asked for with an empty number.
            .or_else(|| {
                from.called
                    .is_empty()
                    .then(|| io.env.did_destination(from.trunk, ""))
                    .flatten()
                    .map(|d| (String::new(), d))
            });
        let dialled = found
            .as_ref()
            .map(|(e, _)| e.clone())
            .or_else(|| from.called.first().cloned())
            .unwrap_or_default();
        let at = Attempt {
            leg: from.leg,
            caller: &shown,
            dialled: &dialled,
            reference: from.reference,
            source: from.source,
            trunk: Some(from.trunk),
        };
        let refuse = |this: &mut Self, io: &mut Io<'_, '_>, (cause, disposition): Failure| {
            io.legs.reject(at.leg, &cause);
            this.record_refusal(now, &at, disposition, cause);
        };
        let Some((_, dest)) = found else {
            let cause = Cause::with(CauseKind::NotFound, "not a number of this office");
            return refuse(self, io, (cause, Disposition::Failed));
        };
        if let Some(max) = io.env.external_limits("", from.trunk).per_trunk {
            if self.trunk_load(from.trunk) >= max as usize {
                let cause = Cause::with(CauseKind::Busy, "all trunk channels busy");
                return refuse(self, io, (cause, Disposition::Busy));
            }
        }
        let Some(id) = self.open_call(now, &at, from.name, dest.clone(), io) else {
            return;
        };
        if let Some(call) = self.calls.get_mut(&id) {
            call.inbound = Some((from.trunk.to_owned(), caller_e164));
        }
        self.route_to(now, id, &dest, io);
    }
}

/// The external number (E.164) and CLIR of a forward by `by` to `number`: routed by the
/// dial plan as if `by` had dialled it (in the site's dialable form, so the outside
/// prefix and every spelling of a blocked range are handled as for a dialled call).
/// A ring group has no class of its own and forwards with the default class.
fn forward_route(by: &str, number: &str, io: &Io<'_, '_>) -> Result<(String, bool), Failure> {
    let site = io.env.site();
    let emergency = || {
        (
            Cause::with(
                CauseKind::Forbidden,
                "emergency numbers cannot be forwarding targets",
            ),
            Disposition::Blocked,
        )
    };
    if super::is_emergency(number) {
        return Err(emergency());
    }
    let e164 = dialplan::normalise(number, &site).map_err(|r| super::refused(&r))?;
    let dialable = dialplan::dialable_format(&e164, &site);
    let profile = io.env.extension(by);
    let who = dialplan::Caller {
        extension: by,
        class: profile.as_ref().map_or_else(Default::default, |p| p.class),
        clir_permanent: profile.as_ref().is_some_and(|p| p.clir),
    };
    let route = dialplan::route(&who, &dialable, &site, &super::PlanView(&*io.env));
    match route {
        Ok(dialplan::Route::External { e164, clir, .. }) => Ok((e164, clir)),
        Ok(dialplan::Route::Emergency { .. }) => Err(emergency()),
        Ok(_) => Err((
            Cause::with(
                CauseKind::Invalid,
                format!("forwarding target {number} is not an external number"),
            ),
            Disposition::Failed,
        )),
        Err(r) => Err(super::refused(&r)),
    }
}
