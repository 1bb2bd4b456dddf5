//! Call pickup: a phone dials a feature code and takes over a call ringing elsewhere,
//! for its pickup group (`*8`) or for a named extension (`**<ext>`).

use std::time::Instant;

use pbx_sip::message::{HeaderName, Message, MessageBuilder};
use pbx_sip::transaction::TransactionKey;

use super::{CallContext, CallControl, CallId, Early, ForkState, Phase, Side, ALLOW};
use crate::call::dialog::{host_of, our_contact, Dialog};
use crate::media::sdp::{self, Sdp};
use crate::registrar::{Flow, Transport};

impl CallControl {
    /// Answers the picker's INVITE with the call ringing at `extension` (directed)
    /// or at a member of the picker's pickup group.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn pickup(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        req: &Message,
        flow: Flow,
        offer: &Sdp,
        picker: &str,
        extension: Option<&str>,
        ctx: &mut CallContext<'_>,
    ) -> Result<(), Early> {
        let group = ctx.services.extension(picker).and_then(|p| p.pickup_group);
        let rings_for = |ext: &str| match extension {
            Some(e) => e == ext,
            None => {
                group.is_some() && ctx.services.extension(ext).and_then(|p| p.pickup_group) == group
            }
        };
        // The longest-ringing call first.
        let mut candidates: Vec<(Instant, CallId)> = self
            .calls
            .values()
            .filter(|c| c.phase == Phase::Ringing && c.caller != picker)
            .filter(|c| {
                c.forks.iter().any(|f| {
                    f.round == c.b_cseq
                        && matches!(f.state, ForkState::Calling | ForkState::Ringing)
                        && rings_for(&f.ext)
                })
            })
            .map(|c| (c.start, c.id))
            .collect();
        candidates.sort();
        let Some(&(_, id)) = candidates.first() else {
            return Err(Early::new(
                480,
                "Temporarily Unavailable: no call to pick up",
            ));
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return Err(Early::new(
                480,
                "Temporarily Unavailable: no call to pick up",
            ));
        };
        let mut local = call.b_local.clone();
        local.addr = flow.local.ip();
        let (body, neg) = match sdp::answer(offer, &local, &call.b_origin) {
            Ok(x) => x,
            Err(e) => {
                let mut early = Early::new(488, "Not Acceptable Here");
                early.warning = Some(sdp::warning_header(&e, &host_of(flow.local.ip())));
                return Err(early);
            }
        };
        let tag = self.ids.tag();
        let Some(dialog) = Dialog::as_uas(req, &tag, flow) else {
            return Err(Early::new(400, "Bad Request: cannot form a dialog"));
        };
        ctx.services.configure(id, Side::Callee, &neg);
        self.by_dialog
            .insert((dialog.call_id.clone(), tag.clone()), (id, Side::Callee));
        self.by_server_key.insert(key.clone(), id);
        call.b = Some(dialog);
        call.callee = picker.to_owned();
        call.dest_ip = Some(flow.remote.ip());
        call.transferred_to = None;
        let ok = MessageBuilder::response_to(req, 200, "OK")
            .set_to_tag(&tag)
            .header(HeaderName::Contact, our_contact(flow))
            .header(HeaderName::Allow, ALLOW)
            .body("application/sdp", body)
            .build();
        // The phones that rang stop; the caller is answered.
        let n = call.forks.len();
        for i in 0..n {
            self.cancel_fork(id, i);
        }
        self.answer_caller(now, id);
        self.send_ok(
            now,
            id,
            Side::Callee,
            key.clone(),
            ok,
            flow.transport != Transport::Udp,
        );
        Ok(())
    }
}
