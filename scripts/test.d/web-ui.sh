#!/usr/bin/env bash
# The web UI in a real browser (issue 6): builds pbxd, makes a Python venv with the pinned
# Selenium from tests/web/requirements.txt, and runs tests/web/test_ui.py with Debian's
# chromium and chromedriver (scripts/test.sh installs both; nothing else is downloaded).
# Screenshots of every page, the browser console and pbxd's log are kept in
# $WEB_ARTIFACTS (default: $CARGO_TARGET_DIR/web-artifacts).
#
# Environment: CARGO_TARGET_DIR, WEB_ARTIFACTS, WEB_VENV (default $CARGO_TARGET_DIR/web-venv).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# shellcheck source=/dev/null
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
VENV=${WEB_VENV:-$TARGET_DIR/web-venv}
export WEB_ARTIFACTS=${WEB_ARTIFACTS:-$TARGET_DIR/web-artifacts}

for tool in /usr/bin/chromium /usr/bin/chromedriver python3; do
  command -v "$tool" >/dev/null || { echo "web-ui: $tool missing (apt-get install chromium chromium-driver python3-venv)" >&2; exit 1; }
done

cargo build -p pbxd --bin pbxd --locked
export PBXD_BIN="$TARGET_DIR/debug/pbxd"

REQ=tests/web/requirements.txt
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$VENV/requirements.txt"; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$VENV/requirements.txt"
fi

rm -rf "$WEB_ARTIFACTS"
mkdir -p "$WEB_ARTIFACTS"
"$VENV/bin/python" tests/web/test_ui.py
echo "web-ui: screenshots in $WEB_ARTIFACTS"
