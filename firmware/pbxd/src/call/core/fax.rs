//! Which leg a fax tone heard on one leg concerns: the other party of its call.

use super::CallControl;
use crate::call::LegId;

impl CallControl {
    /// The other answered leg of the call `leg` is in (`None`: no call, or the other
    /// side has not answered).
    pub fn far_leg(&self, leg: LegId) -> Option<LegId> {
        let &(id, side) = self.legs.get(&leg)?;
        self.calls.get(&id)?.leg(side.other())
    }
}
