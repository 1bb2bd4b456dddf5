#!/usr/bin/env bash
# Analog-port DSP cross-checks (issue 4), run by scripts/test.sh as the check "dsp":
# spandsp's ADSI receiver decodes our ETSI caller ID, spandsp's DTMF generator makes the
# digits our detector must find (and must not, outside the Q.24 limits), espeak-ng speech
# gives no false digits. The C programs in tests/dsp/ are compiled with gcc against
# libspandsp by the tests themselves; here a missing gcc, spandsp or espeak-ng is a
# failure, not a skip (PBX_DSP_CROSSCHECK=require).
# Then the ALSA backend against alsa-lib's null/file plugins (no sound card needed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
for tool in gcc espeak-ng; do
  command -v "$tool" >/dev/null || { echo "dsp.sh: $tool missing (apt-get install build-essential espeak-ng)" >&2; exit 1; }
done
[ -f /usr/include/spandsp.h ] || [ -f "/usr/include/$(gcc -dumpmachine)/spandsp.h" ] ||
  { echo "dsp.sh: spandsp headers missing (apt-get install libspandsp-dev)" >&2; exit 1; }
PBX_DSP_CROSSCHECK=require cargo test -p pbxd --lib --locked -- media::dsp::crosscheck --nocapture
cargo test -p pbx-hal --locked --test audio_alsa --test audio_alsa_asoundrc
