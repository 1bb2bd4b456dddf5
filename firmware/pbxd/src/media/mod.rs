//! Media processing for the analog ports (issue 4).
//!
//! - [`dsp`]: sans-IO signal processing on 8 kHz linear PCM frames: DTMF generation and
//!   detection, call-progress tones, V.23 FSK and ETSI caller ID.

pub mod dsp;
