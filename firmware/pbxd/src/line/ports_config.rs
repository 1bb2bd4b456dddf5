//! Per-port settings as the lines and the port shells use them: the country (tones and
//! ring cadence) and how caller ID is sent. The store keeps them (`pbxctl port set`);
//! pbxd applies them at start and when they change.

use super::{Country, Line, LineConfig};
use crate::media::dsp::fsk::FskParams;
use crate::store::PortSettings;

/// How a port sends caller ID to its phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CidMode {
    /// None at all.
    Off,
    /// Bellcore/Telcordia MDMF, Bell 202 FSK (North America).
    FskBell202,
    /// ETSI EN 300 659-1 MDMF, ITU-T V.23 FSK (most of Europe).
    FskV23,
    /// DTMF CLIP (ETSI ES 200 778-1 annex B style: `A` number `C`).
    Dtmf,
}

/// An unknown caller-ID mode in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown caller-ID mode {0:?} (one of off, bell202, v23, dtmf)")]
pub struct UnknownCidMode(pub String);

impl CidMode {
    /// Every mode, in the order `pbxctl` lists them.
    pub const ALL: [CidMode; 4] = [
        CidMode::Off,
        CidMode::FskBell202,
        CidMode::FskV23,
        CidMode::Dtmf,
    ];

    /// The name in the store and on the command line.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CidMode::Off => "off",
            CidMode::FskBell202 => "bell202",
            CidMode::FskV23 => "v23",
            CidMode::Dtmf => "dtmf",
        }
    }

    /// The mode a country's phones expect when none is set: Bell 202 in the US, V.23
    /// (ETSI) elsewhere in our table.
    #[must_use]
    pub fn default_for(country: Country) -> Self {
        match country {
            Country::Us => CidMode::FskBell202,
            _ => CidMode::FskV23,
        }
    }

    /// The FSK modulation, for the FSK modes.
    #[must_use]
    pub fn fsk(self) -> Option<FskParams> {
        match self {
            CidMode::FskBell202 => Some(BELL202),
            CidMode::FskV23 => Some(FskParams::V23),
            CidMode::Off | CidMode::Dtmf => None,
        }
    }
}

impl std::str::FromStr for CidMode {
    type Err = UnknownCidMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        CidMode::ALL
            .into_iter()
            .find(|m| m.as_str() == t)
            .ok_or_else(|| UnknownCidMode(s.to_owned()))
    }
}

impl std::fmt::Display for CidMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bell 202 as Telcordia GR-30-CORE uses it: mark 1200 Hz, space 2200 Hz, 1200 baud, at
/// the same level as our V.23.
pub const BELL202: FskParams = FskParams {
    mark_hz: 1200.0,
    space_hz: 2200.0,
    baud: 1200.0,
    level_dbm0: -13.0,
};

/// What one port's shell and line need from its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortProfile {
    /// Tones and ring cadence.
    pub country: Country,
    /// How caller ID goes out.
    pub cid: CidMode,
    /// Call waiting allowed on this port (off: a second caller hears busy).
    pub call_waiting: bool,
}

impl Default for PortProfile {
    fn default() -> Self {
        PortProfile::from_settings(None)
    }
}

impl PortProfile {
    /// The profile of a port with these stored settings (`None`: all defaults).
    #[must_use]
    pub fn from_settings(s: Option<&PortSettings>) -> Self {
        let country = s.and_then(|s| s.country).unwrap_or_default();
        PortProfile {
            country,
            cid: s
                .and_then(|s| s.cid)
                .unwrap_or_else(|| CidMode::default_for(country)),
            call_waiting: s.is_none_or(|s| s.call_waiting),
        }
    }

    /// The line configuration: the country's defaults, caller ID on unless `Off`,
    /// call waiting as set.
    #[must_use]
    pub fn line_config(&self) -> LineConfig {
        LineConfig {
            caller_id: self.cid != CidMode::Off,
            call_waiting: self.call_waiting,
            ..LineConfig::for_country(self.country)
        }
    }
}

impl Line {
    /// Takes new settings (`pbxctl port set` while running). The next ring, tone or
    /// caller ID uses them; a call in progress keeps what it started with where the
    /// line already scheduled it.
    pub fn set_config(&mut self, config: LineConfig) {
        self.config = config;
    }

    /// The settings in force.
    #[must_use]
    pub fn config(&self) -> &LineConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_follow_the_country_by_default() {
        for m in CidMode::ALL {
            assert_eq!(m.as_str().parse::<CidMode>(), Ok(m));
        }
        assert_eq!(
            "fsk".parse::<CidMode>(),
            Err(UnknownCidMode("fsk".to_owned()))
        );
        let us = PortSettings {
            country: Some(Country::Us),
            ..PortSettings::new(1)
        };
        assert_eq!(
            PortProfile::from_settings(Some(&us)).cid,
            CidMode::FskBell202
        );
        assert_eq!(PortProfile::default().cid, CidMode::FskV23);
        assert_eq!(PortProfile::default().country, Country::De);
        let off = PortSettings {
            cid: Some(CidMode::Off),
            country: Some(Country::Gb),
            ..PortSettings::new(2)
        };
        let cfg = PortProfile::from_settings(Some(&off)).line_config();
        assert!(!cfg.caller_id);
        assert_eq!(cfg.country, Country::Gb);
        assert_eq!(
            (cfg.ring_on, cfg.ring_off),
            Country::Gb.ring_cadence()[0],
            "GB's double ring"
        );
        assert!(cfg.call_waiting, "on unless switched off");
        let no_cw = PortSettings {
            call_waiting: false,
            ..PortSettings::new(1)
        };
        assert!(
            !PortProfile::from_settings(Some(&no_cw))
                .line_config()
                .call_waiting
        );
    }
}
