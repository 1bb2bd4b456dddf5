#!/usr/bin/env bash
# THE test command: installs what the tests need (Debian bookworm, as root or with sudo), builds
# the workspace, runs unit, integration and end-to-end tests against real SIP peers, checks
# formatting and lints, and fuzzes the SIP parser for 20 s. Idempotent; safe to rerun.
#
# Environment:
#   CARGO_TARGET_DIR  honoured (the e2e tests look for pbxd there, else in target/)
#   FUZZ_SECONDS=20   length of the fuzz run (0 skips it)
#   BENCH=1           also install Kamailio and run tests/bench/register.sh at the end
#   SKIP_INSTALL=1    do not touch system packages or toolchains
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
START=$SECONDS
NOTES=()
FAILED=()

step() { printf '\n=== %s (%ds)\n' "$*" $((SECONDS - START)); }
die() { printf '\ntest.sh: FAILED: %s\n' "$*" >&2; exit 1; }
# Runs a check; a failure is recorded and the remaining checks still run.
check() { # name command...
  local name=$1
  shift
  step "$name"
  "$@" || { FAILED+=("$name"); printf '\n*** FAILED: %s\n' "$name" >&2; }
}
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $*"
  fi
}

# The RAUC install tests need root (loop mounts): as root they must run, not skip.
[ "$(id -u)" -eq 0 ] && export PBX_REQUIRE_RAUC=1

# --- system packages -------------------------------------------------------------------
PACKAGES=(sip-tester nodejs sipvicious baresip-core tcpdump build-essential pkg-config ca-certificates curl procps iproute2 iptables python3
  python3-venv libasound2-dev alsa-utils libspandsp-dev espeak-ng chromium sqlite3 rauc squashfs-tools dbus
  genimage
  kamailio kamailio-tls-modules openssl dnsmasq-base
  dosfstools mtools fdisk gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross qemu-user)
[ -n "${BENCH:-}" ] && PACKAGES+=(kamailio)
if [ -z "${SKIP_INSTALL:-}" ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "apt-get install ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
  fi
fi
for tool in sipp svwar baresip; do
  command -v "$tool" >/dev/null || die "$tool missing (install sip-tester, sipvicious, baresip-core)"
done

# --- Rust toolchain --------------------------------------------------------------------
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
command -v cargo >/dev/null || die "cargo not found: install a Rust toolchain (rustup) first"
if command -v rustup >/dev/null && [ -z "${SKIP_INSTALL:-}" ]; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
  done
fi

# --- build, test, lint -----------------------------------------------------------------
step "cargo build --workspace --bins"
cargo build --workspace --bins --locked

# The end-to-end tests run the binaries just built (tests/e2e/src/lib.rs finds them).
if cargo nextest --version >/dev/null 2>&1; then
  check "cargo nextest run --workspace" cargo nextest run --workspace --locked --no-fail-fast
  check "cargo test --workspace --doc" cargo test --workspace --doc --locked
else
  check "cargo test --workspace" cargo test --workspace --locked --no-fail-fast
fi
# Hardware in the loop (tests/hil/README.md): only on a bench; otherwise skipped, and said so.
if [ -n "${PBX_HIL_BOARD:-}" ]; then
  check "HIL on $PBX_HIL_BOARD" cargo test -p pbx-e2e --test hil --locked -- --ignored --test-threads=1
else
  echo "HIL: SKIPPED (PBX_HIL_BOARD not set: no board on this machine; tests/hil/README.md) - counted as skipped, not passed"
fi
check "cargo fmt --all -- --check" cargo fmt --all -- --check
check "cargo clippy -D warnings" cargo clippy --workspace --all-targets --locked -- -D warnings

# --- fuzz ------------------------------------------------------------------------------
FUZZ_DIR=firmware/sip/fuzz
fuzz_result="fuzz: skipped"
if [ "$FUZZ_SECONDS" -gt 0 ] && [ -f "$FUZZ_DIR/Cargo.toml" ]; then
  step "fuzz pbx-sip parse for ${FUZZ_SECONDS}s"
  # cargo-fuzz builds from crates.io. It needs nightly flags: use the nightly toolchain if
  # there is one, else the stable one with RUSTC_BOOTSTRAP=1 (toolchains may not be fetchable).
  if ! cargo fuzz --version >/dev/null 2>&1 && [ -z "${SKIP_INSTALL:-}" ]; then
    cargo install cargo-fuzz --locked || true
  fi
  if command -v rustup >/dev/null && rustup toolchain list | grep -q '^nightly'; then
    fuzz_cargo=(cargo +nightly)
  else
    fuzz_cargo=(env RUSTC_BOOTSTRAP=1 cargo)
  fi
  if cargo fuzz --version >/dev/null 2>&1; then
    # cargo-fuzz keeps its own target dir under $FUZZ_DIR.
    if (cd firmware/sip && "${fuzz_cargo[@]}" fuzz run parse -- -max_total_time="$FUZZ_SECONDS"); then
      fuzz_result="fuzz: parse ${FUZZ_SECONDS}s clean"
    else
      FAILED+=("fuzz parse (see firmware/sip/fuzz/artifacts/parse)")
      fuzz_result="fuzz: FAILED"
    fi
  else
    NOTES+=("fuzz run skipped: cargo-fuzz could not be installed")
    fuzz_result="fuzz: SKIPPED (no cargo-fuzz)"
  fi
else
  NOTES+=("fuzz run skipped: no $FUZZ_DIR or FUZZ_SECONDS=0")
fi

# --- further checks: each scripts/test.d/*.sh is one named check (image, web UI, ...) ------
for extra in scripts/test.d/*.sh; do
  [ -e "$extra" ] || continue
  check "$(basename "$extra" .sh)" bash "$extra"
done

if [ -n "${BENCH:-}" ]; then
  step "benchmark"
  cargo build --release -p pbxd --bins --locked
  PBXD_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/pbxd" \
    PBXCTL_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/pbxctl" tests/bench/register.sh ||
    FAILED+=("benchmark")
fi

for n in "${NOTES[@]}"; do echo "note: $n"; done
if [ ${#FAILED[@]} -gt 0 ]; then
  printf 'test.sh: FAILED: %s (after %ds)\n' "$(IFS=,; echo "${FAILED[*]}")" $((SECONDS - START))
  exit 1
fi
echo "test.sh: ALL PASSED (build, tests incl. e2e, fmt, clippy, $fuzz_result) in $((SECONDS - START))s"
