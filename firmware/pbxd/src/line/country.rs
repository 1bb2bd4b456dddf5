//! Country tables: call-progress tones and ring cadences of the analog ports.
//!
//! Frequencies and cadences are those listed per country in ITU-T E.180 Supplement 2
//! ("Various tones used in national networks"), as tabulated in the widely used
//! `indications.conf` of Asterisk (not re-checked here against the ITU document itself).
//! Levels are ours: −10 dBm0 for a single tone, −13 dBm0 per component for a pair (the
//! North American precise-tone level).
//!
//! | | dial | ringback | busy | congestion | call waiting | ring |
//! |---|---|---|---|---|---|---|
//! | DE | 425 | 425 1.0/4.0 | 425 .48/.48 | 425 .24/.24 | 425 .2/.2/.2/5.0 | 1.0/4.0 |
//! | AT | 420 | 420 1.0/5.0 | 420 .4/.4 | 420 .2/.2 | 420 .04/1.96 | 1.0/5.0 |
//! | CH | 425 | 425 1.0/4.0 | 425 .5/.5 | 425 .25/.25 | 425 .15/.1/.15/4.0 | 1.0/4.0 |
//! | GB | 350+440 | 400+450 .4/.2/.4/2.0 | 400 .375/.375 | 400 .4/.35/.225/.525 | 400 .1/4.0 | .4/.2/.4/2.0 |
//! | FR | 440 | 440 1.5/3.5 | 440 .5/.5 | 440 .25/.25 | 440 .3/10.0 | 1.5/3.5 |
//! | NL | 425 | 425 1.0/4.0 | 425 .5/.5 | 425 .25/.25 | 425 .5/9.5 | 1.0/4.0 |
//! | US | 350+440 | 440+480 2.0/4.0 | 480+620 .5/.5 | 480+620 .25/.25 | 440 .3/10.0 | 2.0/4.0 |
//!
//! (Hz; seconds on/off.) The special-information tone is the same everywhere
//! ([`tone::SPECIAL_INFORMATION`], 950/1400/1800 Hz). The howler and the caller-ID alerting signals are the same
//! everywhere ([`tone::HOWLER`], [`tone::DT_AS`], [`tone::CAS`]).

use std::borrow::Cow;
use std::time::Duration;

use crate::media::dsp::tone::{self, Cadence, ToneSound, ToneSpec};

use super::Tone;

/// A country whose tones and ring cadence a port uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Country {
    /// Germany (the default).
    #[default]
    De,
    /// Austria.
    At,
    /// Switzerland.
    Ch,
    /// United Kingdom.
    Gb,
    /// France.
    Fr,
    /// Netherlands.
    Nl,
    /// United States (and NANP countries).
    Us,
}

/// An unknown country code in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown country {0:?} (one of DE, AT, CH, GB, FR, NL, US)")]
pub struct UnknownCountry(pub String);

const SINGLE: f32 = -10.0;
const PAIR: f32 = -13.0;

const fn single(hz: f32, cadence: Cadence) -> ToneSpec {
    ToneSpec {
        sound: ToneSound::Single(hz, SINGLE),
        cadence,
    }
}

const fn pair(a: f32, b: f32, cadence: Cadence) -> ToneSpec {
    ToneSpec {
        sound: ToneSound::Dual((a, PAIR), (b, PAIR)),
        cadence,
    }
}

const fn steps(s: &'static [(u32, u32)]) -> Cadence {
    Cadence::Repeat(Cow::Borrowed(s))
}

/// One country's tones.
#[derive(Debug, Clone, PartialEq)]
pub struct ToneTable {
    /// Dial tone.
    pub dial: ToneSpec,
    /// Ringback.
    pub ringback: ToneSpec,
    /// Busy.
    pub busy: ToneSpec,
    /// Congestion (reorder).
    pub congestion: ToneSpec,
    /// Call waiting.
    pub call_waiting: ToneSpec,
}

static DE: ToneTable = ToneTable {
    dial: tone::DIAL_TONE_DE,
    ringback: tone::RINGBACK_DE,
    busy: tone::BUSY_DE,
    congestion: tone::CONGESTION_DE,
    call_waiting: tone::CALL_WAITING_DE,
};
static AT: ToneTable = ToneTable {
    dial: single(420.0, Cadence::Continuous),
    ringback: single(420.0, steps(&[(1000, 5000)])),
    busy: single(420.0, steps(&[(400, 400)])),
    congestion: single(420.0, steps(&[(200, 200)])),
    call_waiting: single(420.0, steps(&[(40, 1960)])),
};
static CH: ToneTable = ToneTable {
    dial: single(425.0, Cadence::Continuous),
    ringback: single(425.0, steps(&[(1000, 4000)])),
    busy: single(425.0, steps(&[(500, 500)])),
    congestion: single(425.0, steps(&[(250, 250)])),
    call_waiting: single(425.0, steps(&[(150, 100), (150, 4000)])),
};
static GB: ToneTable = ToneTable {
    dial: pair(350.0, 440.0, Cadence::Continuous),
    ringback: pair(400.0, 450.0, steps(&[(400, 200), (400, 2000)])),
    busy: single(400.0, steps(&[(375, 375)])),
    congestion: single(400.0, steps(&[(400, 350), (225, 525)])),
    call_waiting: single(400.0, steps(&[(100, 4000)])),
};
static FR: ToneTable = ToneTable {
    dial: single(440.0, Cadence::Continuous),
    ringback: single(440.0, steps(&[(1500, 3500)])),
    busy: single(440.0, steps(&[(500, 500)])),
    congestion: single(440.0, steps(&[(250, 250)])),
    call_waiting: single(440.0, steps(&[(300, 10_000)])),
};
static NL: ToneTable = ToneTable {
    dial: single(425.0, Cadence::Continuous),
    ringback: single(425.0, steps(&[(1000, 4000)])),
    busy: single(425.0, steps(&[(500, 500)])),
    congestion: single(425.0, steps(&[(250, 250)])),
    call_waiting: single(425.0, steps(&[(500, 9500)])),
};
static US: ToneTable = ToneTable {
    dial: pair(350.0, 440.0, Cadence::Continuous),
    ringback: pair(440.0, 480.0, steps(&[(2000, 4000)])),
    busy: pair(480.0, 620.0, steps(&[(500, 500)])),
    congestion: pair(480.0, 620.0, steps(&[(250, 250)])),
    call_waiting: single(440.0, steps(&[(300, 10_000)])),
};

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

impl Country {
    /// Every country in the table.
    pub const ALL: [Country; 7] = [
        Country::De,
        Country::At,
        Country::Ch,
        Country::Gb,
        Country::Fr,
        Country::Nl,
        Country::Us,
    ];

    /// ISO 3166 alpha-2 code, upper case.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Country::De => "DE",
            Country::At => "AT",
            Country::Ch => "CH",
            Country::Gb => "GB",
            Country::Fr => "FR",
            Country::Nl => "NL",
            Country::Us => "US",
        }
    }

    /// The country's tones.
    #[must_use]
    pub fn tones(self) -> &'static ToneTable {
        match self {
            Country::De => &DE,
            Country::At => &AT,
            Country::Ch => &CH,
            Country::Gb => &GB,
            Country::Fr => &FR,
            Country::Nl => &NL,
            Country::Us => &US,
        }
    }

    /// The country whose calling code (E.164, without `+`) is `code`; Germany for
    /// a code not in the table. SIP parties hear the site's tones from here.
    #[must_use]
    pub fn for_calling_code(code: &str) -> Country {
        match code.trim().trim_start_matches('+') {
            "43" => Country::At,
            "41" => Country::Ch,
            "44" => Country::Gb,
            "33" => Country::Fr,
            "31" => Country::Nl,
            "1" => Country::Us,
            _ => Country::De,
        }
    }

    /// Ring cadence: `(ring, pause)` steps, repeated.
    #[must_use]
    pub fn ring_cadence(self) -> &'static [(Duration, Duration)] {
        match self {
            Country::De | Country::Ch | Country::Nl => &RING_1_4,
            Country::At => &RING_1_5,
            Country::Gb => &RING_GB,
            Country::Fr => &RING_FR,
            Country::Us => &RING_US,
        }
    }
}

static RING_1_4: [(Duration, Duration); 1] = [(ms(1000), ms(4000))];
static RING_1_5: [(Duration, Duration); 1] = [(ms(1000), ms(5000))];
static RING_GB: [(Duration, Duration); 2] = [(ms(400), ms(200)), (ms(400), ms(2000))];
static RING_FR: [(Duration, Duration); 1] = [(ms(1500), ms(3500))];
static RING_US: [(Duration, Duration); 1] = [(ms(2000), ms(4000))];

impl std::str::FromStr for Country {
    type Err = UnknownCountry;

    /// Case-insensitive ISO code; `UK` is accepted for GB.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let code = s.trim().to_ascii_uppercase();
        if code == "UK" {
            return Ok(Country::Gb);
        }
        Country::ALL
            .into_iter()
            .find(|c| c.code() == code)
            .ok_or_else(|| UnknownCountry(s.to_owned()))
    }
}

impl std::fmt::Display for Country {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl Tone {
    /// The tone to generate in `country`, `None` for silence.
    #[must_use]
    pub fn spec_for(self, country: Country) -> Option<ToneSpec> {
        let t = country.tones();
        match self {
            Tone::Silence => None,
            Tone::Dial => Some(t.dial.clone()),
            Tone::Ringback => Some(t.ringback.clone()),
            Tone::Busy => Some(t.busy.clone()),
            Tone::Congestion => Some(t.congestion.clone()),
            Tone::Howler => Some(tone::HOWLER),
            Tone::CallWaiting => Some(t.call_waiting.clone()),
            // The country's dial tone, interrupted.
            Tone::SpecialDial => Some(ToneSpec {
                sound: t.dial.sound,
                cadence: steps(&[(400, 40)]),
            }),
            // International (ITU-T E.180): the same in every country.
            Tone::SpecialInformation => Some(tone::SPECIAL_INFORMATION),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dsp::tone::ToneGenerator;
    use crate::media::dsp::{dbm0_to_peak, goertzel_power};

    /// Runs of sound and silence (in ms) of a rendered tone, from its first sample.
    fn runs(x: &[i16]) -> Vec<(bool, u32)> {
        let mut out: Vec<(bool, u32)> = Vec::new();
        // 1 ms resolution: a millisecond is "on" if any sample in it is non-zero.
        for chunk in x.chunks(8) {
            let on = chunk.iter().any(|&s| s != 0);
            match out.last_mut() {
                Some((o, n)) if *o == on => *n += 1,
                _ => out.push((on, 1)),
            }
        }
        out
    }

    fn render(spec: &ToneSpec, seconds: usize) -> Vec<i16> {
        let mut g = ToneGenerator::new(spec).expect("valid table entry");
        let mut x = vec![0i16; 8000 * seconds];
        for f in x.chunks_mut(160) {
            g.fill(f);
        }
        x
    }

    /// Country, tone, frequencies (Hz), on/off steps (ms).
    type Row = (Country, &'static str, &'static [f32], &'static [(u32, u32)]);

    /// Table rows as written in the module docs.
    #[rustfmt::skip]
    const ROWS: &[Row] = &[
        (Country::De, "ringback", &[425.0], &[(1000, 4000)]),
        (Country::De, "busy", &[425.0], &[(480, 480)]),
        (Country::At, "dial", &[420.0], &[]),
        (Country::At, "busy", &[420.0], &[(400, 400)]),
        (Country::At, "call waiting", &[420.0], &[(40, 1960)]),
        (Country::Ch, "congestion", &[425.0], &[(250, 250)]),
        (Country::Ch, "call waiting", &[425.0], &[(150, 100), (150, 4000)]),
        (Country::Gb, "dial", &[350.0, 440.0], &[]),
        (Country::Gb, "ringback", &[400.0, 450.0], &[(400, 200), (400, 2000)]),
        (Country::Gb, "busy", &[400.0], &[(375, 375)]),
        (Country::Gb, "congestion", &[400.0], &[(400, 350), (225, 525)]),
        (Country::Fr, "dial", &[440.0], &[]),
        (Country::Fr, "ringback", &[440.0], &[(1500, 3500)]),
        (Country::Nl, "call waiting", &[425.0], &[(500, 9500)]),
        (Country::Us, "dial", &[350.0, 440.0], &[]),
        (Country::Us, "ringback", &[440.0, 480.0], &[(2000, 4000)]),
        (Country::Us, "busy", &[480.0, 620.0], &[(500, 500)]),
        (Country::Us, "congestion", &[480.0, 620.0], &[(250, 250)]),
        (Country::Us, "call waiting", &[440.0], &[(300, 10_000)]),
    ];

    fn pick(country: Country, name: &str) -> ToneSpec {
        let tone = match name {
            "dial" => Tone::Dial,
            "ringback" => Tone::Ringback,
            "busy" => Tone::Busy,
            "congestion" => Tone::Congestion,
            "call waiting" => Tone::CallWaiting,
            _ => unreachable!("test table"),
        };
        tone.spec_for(country).expect("a tone")
    }

    #[test]
    fn generated_tones_have_the_table_frequencies_and_cadences() {
        for &(country, name, freqs, cadence) in ROWS {
            let spec = pick(country, name);
            let x = render(&spec, 21);
            // Cadence: the runs of the first two cycles, exact to the millisecond.
            let r = runs(&x);
            if cadence.is_empty() {
                assert_eq!(r, vec![(true, 21_000)], "{country} {name}");
            } else {
                let want: Vec<(bool, u32)> = cadence
                    .iter()
                    .chain(cadence)
                    .flat_map(|&(on, off)| [(true, on), (false, off)])
                    .collect();
                assert_eq!(&r[..want.len()], &want[..], "{country} {name}");
            }
            // Frequencies: each component at its level over the first sound period (at
            // most 1 s).
            let len = cadence
                .first()
                .map_or(8000, |&(on, _)| on.min(1000) as usize * 8);
            let on = &x[..len];
            let level = if freqs.len() == 1 { SINGLE } else { PAIR };
            let expect = (dbm0_to_peak(level) * len as f32 / 2.0).powi(2);
            for &f in freqs {
                let p = goertzel_power(on, f);
                let db = 10.0 * (p / expect).log10();
                assert!(db.abs() < 1.0, "{country} {name} {f} Hz: {db:.1} dB");
            }
            // And nothing at the other countries' frequencies (where the window resolves
            // 40 Hz: at least 100 ms).
            for f in [350.0, 400.0, 425.0, 440.0, 480.0, 620.0] {
                if len >= 800 && freqs.iter().all(|&g| (g - f).abs() > 20.0) {
                    assert!(
                        goertzel_power(on, f) < expect * 0.05,
                        "{country} {name} {f}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_country_has_every_tone_and_a_ring_cadence() {
        for c in Country::ALL {
            for t in [
                Tone::Dial,
                Tone::Ringback,
                Tone::Busy,
                Tone::Congestion,
                Tone::CallWaiting,
                Tone::SpecialDial,
                Tone::Howler,
            ] {
                let spec = t.spec_for(c).expect("a tone");
                ToneGenerator::new(&spec).expect("valid");
            }
            assert_eq!(Tone::Silence.spec_for(c), None);
            let cadence = c.ring_cadence();
            assert!(!cadence.is_empty());
            assert!(cadence
                .iter()
                .all(|(on, off)| !on.is_zero() && !off.is_zero()));
        }
        // Germany is the default, and its table is the one `Tone::spec` plays.
        assert_eq!(Country::default(), Country::De);
        for t in [Tone::Dial, Tone::Busy, Tone::CallWaiting, Tone::SpecialDial] {
            assert_eq!(t.spec_for(Country::De), t.spec());
        }
    }

    #[test]
    fn calling_codes_pick_the_tone_country() {
        for (code, c) in [
            ("49", Country::De),
            ("43", Country::At),
            ("41", Country::Ch),
            ("44", Country::Gb),
            ("33", Country::Fr),
            ("+31", Country::Nl),
            ("1", Country::Us),
            ("39", Country::De),
            ("", Country::De),
        ] {
            assert_eq!(Country::for_calling_code(code), c, "{code:?}");
        }
    }

    #[test]
    fn country_codes_parse() {
        for c in Country::ALL {
            assert_eq!(c.code().parse::<Country>(), Ok(c));
            assert_eq!(c.code().to_lowercase().parse::<Country>(), Ok(c));
            assert_eq!(c.to_string(), c.code());
        }
        assert_eq!("uk".parse::<Country>(), Ok(Country::Gb));
        assert_eq!(
            "XX".parse::<Country>(),
            Err(UnknownCountry("XX".to_owned()))
        );
    }
}
