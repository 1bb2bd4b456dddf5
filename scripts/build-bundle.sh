#!/usr/bin/env bash
# Builds a signed RAUC update bundle (verity format) from a root file system image.
#
#   scripts/build-bundle.sh [options] ROOTFS_IMAGE OUT.raucb
#   scripts/build-bundle.sh --gen-keys DIR        only create development keys in DIR
#
# Options:
#   --version V       bundle version (default: `git describe`, else 0.0.0-dev)
#   --compatible C    compatible string (default: the one in image/rauc/system.conf)
#   --cert PEM --key PEM   signing certificate and key (a key may also be a pkcs11: URI);
#                     default: the development keys in --keys-dir, generated if missing
#   --keys-dir DIR    development keys (default: image/dev-keys, git-ignored)
#   --description D   manifest description
#
# The rootfs image's file name extension is kept inside the bundle (rootfs.ext4, ...):
# RAUC picks the slot handler from it. After building, the bundle is checked with
# `rauc info --keyring` against the CA of the keys used, when that CA is known.
#
# Development keys: a throw-away CA (pbx-ca.cert.pem, the keyring a development image
# trusts) and a code-signing certificate it issued (pbx-signing.*). They are created here,
# at build time, and never committed. Production bundles are signed with --cert/--key
# pointing at the release signing certificate (or an HSM through a pkcs11: URI).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SYSTEM_CONF="$ROOT/image/rauc/system.conf"
MANIFEST_IN="$ROOT/image/rauc/manifest.raucm.in"
KEYS_DIR="$ROOT/image/dev-keys"

die() { printf 'build-bundle: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }

# Creates a CA and a code-signing certificate issued by it in $1 (kept if present).
gen_keys() {
  local dir=$1
  mkdir -p "$dir"
  chmod 700 "$dir"
  if [ -s "$dir/pbx-ca.cert.pem" ] && [ -s "$dir/pbx-signing.key.pem" ] && [ -s "$dir/pbx-signing.cert.pem" ]; then
    return 0
  fi
  command -v openssl >/dev/null || die "openssl missing"
  local tmp
  tmp=$(mktemp -d)
  cat > "$tmp/ca.ext" <<'EOF'
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
  cat > "$tmp/signing.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  (
    umask 077
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/pbx-ca.key.pem" 2>/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/pbx-signing.key.pem" 2>/dev/null
  )
  openssl req -new -x509 -key "$dir/pbx-ca.key.pem" -subj "/O=PBX development/CN=PBX development update CA" \
    -days 3650 -extensions v3_ca -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[v3_ca]\n'; cat "$tmp/ca.ext") \
    -out "$dir/pbx-ca.cert.pem"
  openssl req -new -key "$dir/pbx-signing.key.pem" -subj "/O=PBX development/CN=PBX development bundle signing" \
    -out "$tmp/signing.csr"
  openssl x509 -req -in "$tmp/signing.csr" -CA "$dir/pbx-ca.cert.pem" -CAkey "$dir/pbx-ca.key.pem" \
    -CAcreateserial -days 3650 -extfile "$tmp/signing.ext" -out "$dir/pbx-signing.cert.pem" 2>/dev/null
  rm -f "$dir/pbx-ca.cert.srl"
  rm -rf "$tmp"
  printf 'build-bundle: development keys created in %s (never commit them)\n' "$dir" >&2
}

VERSION="" COMPATIBLE="" CERT="" KEY="" DESCRIPTION="PBX firmware"
ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --gen-keys) [ $# -eq 2 ] || usage; gen_keys "$2"; exit 0 ;;
    --version) VERSION=${2:?}; shift 2 ;;
    --compatible) COMPATIBLE=${2:?}; shift 2 ;;
    --cert) CERT=${2:?}; shift 2 ;;
    --key) KEY=${2:?}; shift 2 ;;
    --keys-dir) KEYS_DIR=${2:?}; shift 2 ;;
    --description) DESCRIPTION=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    -*) die "unknown option $1" ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
[ ${#ARGS[@]} -eq 2 ] || usage
ROOTFS=${ARGS[0]}
OUT=${ARGS[1]}
[ -f "$ROOTFS" ] || die "no root file system image at $ROOTFS"
command -v rauc >/dev/null || die "rauc missing (Debian package rauc)"
command -v mksquashfs >/dev/null || die "mksquashfs missing (Debian package squashfs-tools)"

if [ -z "$COMPATIBLE" ]; then
  COMPATIBLE=$(sed -n 's/^compatible=//p' "$SYSTEM_CONF" | head -n1)
  [ -n "$COMPATIBLE" ] || die "no compatible= in $SYSTEM_CONF"
fi
if [ -z "$VERSION" ]; then
  VERSION=$(git -C "$ROOT" describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
fi
# The manifest is an ini file: a value must stay on one line.
for v in "$COMPATIBLE" "$VERSION" "$DESCRIPTION"; do
  case $v in *$'\n'*) die "values must not contain newlines" ;; esac
done

KEYRING=""
if [ -z "$CERT" ] && [ -z "$KEY" ]; then
  gen_keys "$KEYS_DIR"
  CERT="$KEYS_DIR/pbx-signing.cert.pem"
  KEY="$KEYS_DIR/pbx-signing.key.pem"
  KEYRING="$KEYS_DIR/pbx-ca.cert.pem"
elif [ -z "$CERT" ] || [ -z "$KEY" ]; then
  die "--cert and --key go together"
fi

# rauc wants a content directory that holds exactly the manifest and the images.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/content"
case $(basename "$ROOTFS") in
  *.*) EXT=${ROOTFS##*.} ;;
  *) EXT=img ;;
esac
IMAGE="rootfs.$EXT"
cp --reflink=auto "$ROOTFS" "$WORK/content/$IMAGE"
BUILD=$(date -u +%Y%m%d%H%M%S)
esc() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; } # for a sed replacement
sed -e "s|@COMPATIBLE@|$(esc "$COMPATIBLE")|" -e "s|@VERSION@|$(esc "$VERSION")|" -e "s|@BUILD@|$BUILD|" \
  -e "s|@DESCRIPTION@|$(esc "$DESCRIPTION")|" -e "s|@ROOTFS@|$IMAGE|" "$MANIFEST_IN" |
  grep -v '^#' > "$WORK/content/manifest.raucm"

mkdir -p "$(dirname "$OUT")"
rm -f "$OUT" # rauc refuses to overwrite
rauc bundle --cert="$CERT" --key="$KEY" "$WORK/content" "$OUT" >"$WORK/log" 2>&1 ||
  { cat "$WORK/log" >&2; die "rauc bundle failed"; }
if [ -n "$KEYRING" ]; then
  # Verify as the box would: its system.conf (check-purpose=codesign), with RAUC's state
  # directory moved out of /data.
  sed "s|^data-directory=.*|data-directory=$WORK/rauc-data|" "$SYSTEM_CONF" > "$WORK/system.conf"
  rauc info --conf="$WORK/system.conf" --keyring="$KEYRING" "$OUT" >"$WORK/log" 2>&1 ||
    { cat "$WORK/log" >&2; die "the new bundle does not verify against $KEYRING"; }
fi
printf 'build-bundle: %s (compatible=%s version=%s, %s bytes)\n' "$OUT" "$COMPATIBLE" "$VERSION" "$(stat -c %s "$OUT")"
