#!/usr/bin/env bash
# The web UI in a real browser (issue 6): builds pbxd, installs the pinned playwright-core
# from tests/web/package-lock.json (`npm ci`: only the npm registry, no browser download) and
# runs tests/web/ui.test.mjs with node:test against Debian's chromium (executablePath;
# scripts/test.sh installs it). Screenshots of every page, the browser console and pbxd's
# log are kept in $WEB_ARTIFACTS (default: $CARGO_TARGET_DIR/web-artifacts).
#
# Environment: CARGO_TARGET_DIR, WEB_ARTIFACTS.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# shellcheck source=/dev/null
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export WEB_ARTIFACTS=${WEB_ARTIFACTS:-$TARGET_DIR/web-artifacts}

for tool in /usr/bin/chromium node npm sipp sqlite3 openssl tar unshare ip; do
  command -v "$tool" >/dev/null || { echo "web-ui: $tool missing (scripts/test.sh installs it)" >&2; exit 1; }
done
# playwright-core 1.65 needs Node 20 (Debian bookworm's own nodejs is 18).
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  { echo "web-ui: Node.js >= 20 needed, found $(node --version)" >&2; exit 1; }

cargo build -p pbxd --bin pbxd --locked
export PBXD_BIN="$TARGET_DIR/debug/pbxd"

# Exactly the lock file's versions; never `playwright install` (the browser is Debian's).
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/web --no-audit --no-fund

rm -rf "$WEB_ARTIFACTS"
mkdir -p "$WEB_ARTIFACTS"
# In its own network namespace with only loopback: Chromium aborts requests in flight with
# ERR_NETWORK_CHANGED whenever an address changes in its namespace, and other suites add
# and remove veths and namespaces meanwhile (pbxd, sipp and the browser all use 127.0.0.1).
if [ "$(id -u)" -eq 0 ]; then ISOLATE=(unshare --net); else ISOLATE=(unshare --user --map-root-user --net); fi
"${ISOLATE[@]}" sh -c 'ip link set lo up && exec node --test tests/web/ui.test.mjs'
echo "web-ui: screenshots in $WEB_ARTIFACTS"
