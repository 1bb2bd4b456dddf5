//! A GSM module's voice through ALSA without a sound card: alsa-lib's `file` plugin,
//! named in an asoundrc that the process using ALSA loads through `ALSA_CONFIG_PATH`.
//! Shared by pbxd's `gsm_alsa_pcm` test (the PCM in the test process) and the e2e
//! `gsm_calls` test (the PCM in pbxd, `--modem-pcm`).

use std::path::Path;

/// `secs` of a sine at `hz` (amplitude 8000), as the 8 kHz S16_LE bytes a PCM carries.
pub fn tone_bytes(hz: f64, secs: f64) -> Vec<u8> {
    let n = (8000.0 * secs) as usize;
    (0..n)
        .flat_map(|i| {
            let s = (2.0 * std::f64::consts::PI * hz * i as f64 / 8000.0).sin() * 8000.0;
            (s as i16).to_le_bytes()
        })
        .collect()
}

/// An asoundrc defining the PCM `name`: what is played goes to the file `hears` (raw),
/// what is captured comes from the file `says` (raw, then silence).
pub fn file_pcm_asoundrc(name: &str, hears: &Path, says: &Path) -> String {
    format!(
        "pcm.{name} {{\n  type asym\n\
         \x20 playback.pcm {{ type file slave.pcm {{ type null }} file \"{}\" format raw }}\n\
         \x20 capture.pcm {{ type file slave.pcm {{ type null }} file \"/dev/null\" infile \"{}\" format raw }}\n}}\n",
        hears.display(),
        says.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tone_has_its_frequency_and_the_asoundrc_names_both_files() {
        let bytes = tone_bytes(1000.0, 0.5);
        assert_eq!(bytes.len(), 8000);
        let samples: Vec<i16> = bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert!(crate::goertzel_amplitude(&samples, 8000, 1000.0) > 2000.0);
        assert!(crate::goertzel_amplitude(&samples, 8000, 600.0) < 200.0);
        let rc = file_pcm_asoundrc("gsm_module", Path::new("/h.raw"), Path::new("/s.raw"));
        assert!(rc.starts_with("pcm.gsm_module {"), "{rc}");
        assert!(
            rc.contains("file \"/h.raw\"") && rc.contains("infile \"/s.raw\""),
            "{rc}"
        );
    }
}
