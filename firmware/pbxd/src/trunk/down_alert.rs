//! When `trunk:<name>:down` is raised and cleared: a trunk not registered for more than
//! the site's threshold (`pbxctl trunk down-alert`, 30 s to 1 h, default two minutes)
//! raises it (external calls cannot go out); registering again clears it.
//! Sans-IO: the SIP task's trunk shell asks every few seconds with the time and writes
//! the alert it is told to.

use std::time::{Duration, Instant};

use super::TrunkState;

/// A trunk not registered for this long raises `trunk:<name>:down` unless the site sets
/// another threshold.
pub const DOWN_ALERT_AFTER: Duration =
    Duration::from_secs(crate::store::DEFAULT_TRUNK_DOWN_ALERT_SECS as u64);

/// What to do with one trunk's alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownAlert {
    /// Raise it with this message.
    Raise(String),
    /// Clear it.
    Clear,
}

/// The alert's key for trunk `name`.
pub fn alert_key(name: &str) -> String {
    format!("trunk:{name}:down")
}

/// Raise or clear `name`'s alert: raised once the trunk has been down for longer than
/// `after` (the site's threshold), cleared once it is registered again.
pub fn decide(
    after: Duration,
    name: &str,
    state: &TrunkState,
    down_since: Option<Instant>,
    alerted: bool,
    why: &str,
    now: Instant,
) -> Option<DownAlert> {
    let down = down_since.is_some_and(|t| now.saturating_duration_since(t) > after);
    if down && !alerted {
        Some(DownAlert::Raise(format!(
            "trunk {name} is not registered: {why}; external calls cannot go out"
        )))
    } else if !down && alerted && state == &TrunkState::Registered {
        Some(DownAlert::Clear)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
    fn epoch() -> Instant {
        Instant::now()
    }

    #[test]
    fn raised_only_after_two_minutes_down_and_cleared_once_registered() {
        let t0 = epoch();
        let down = TrunkState::Unreachable("no answer from 192.0.2.10:5060".into());
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Two minutes exactly: not yet.
        assert_eq!(
            decide(
                DOWN_ALERT_AFTER,
                "main",
                &down,
                Some(t0),
                false,
                "no answer",
                at(120)
            ),
            None
        );
        let raised = decide(
            DOWN_ALERT_AFTER,
            "main",
            &down,
            Some(t0),
            false,
            "no answer",
            at(121),
        );
        assert_eq!(
            raised,
            Some(DownAlert::Raise(
                "trunk main is not registered: no answer; external calls cannot go out".into()
            ))
        );
        // Raised once: no repeat while still down.
        assert_eq!(
            decide(
                DOWN_ALERT_AFTER,
                "main",
                &down,
                Some(t0),
                true,
                "no answer",
                at(600)
            ),
            None
        );
        // Registered again: cleared; and nothing more after that.
        let up = TrunkState::Registered;
        assert_eq!(
            decide(DOWN_ALERT_AFTER, "main", &up, None, true, "", at(601)),
            Some(DownAlert::Clear)
        );
        assert_eq!(
            decide(DOWN_ALERT_AFTER, "main", &up, None, false, "", at(602)),
            None
        );
        assert_eq!(alert_key("main"), "trunk:main:down");
    }

    #[test]
    fn the_site_threshold_replaces_two_minutes() {
        let t0 = epoch();
        let down = TrunkState::Unreachable("no answer".into());
        let after = Duration::from_secs(45);
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(
            decide(after, "main", &down, Some(t0), false, "x", at(45)),
            None
        );
        assert!(matches!(
            decide(after, "main", &down, Some(t0), false, "x", at(46)),
            Some(DownAlert::Raise(_))
        ));
        // a long threshold holds the alert back past the default two minutes
        let hour = Duration::from_secs(3600);
        assert_eq!(
            decide(hour, "main", &down, Some(t0), false, "x", at(600)),
            None
        );
    }

    #[test]
    fn a_short_outage_raises_nothing() {
        let t0 = epoch();
        let down = TrunkState::Registering;
        assert_eq!(
            decide(
                DOWN_ALERT_AFTER,
                "main",
                &down,
                Some(t0),
                false,
                "registering",
                t0 + Duration::from_secs(90)
            ),
            None
        );
    }
}
