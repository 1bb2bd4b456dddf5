#!/usr/bin/env bash
# shellcheck disable=SC2015 # ok() always succeeds: `A && ok .. || fail ..` is an if-then-else here
# CI check of the firmware image (issue 8): RAUC bundles, partition layout, Yocto layer.
#   1. image/rauc/system.conf loads in Debian's rauc (unknown keys are errors there).
#   2. A signed verity bundle built by scripts/build-bundle.sh from a small ext4 rootfs
#      verifies with `rauc info --keyring` and describes exactly that image.
#   3. Refused: a bundle signed by another CA, a bundle signed by a certificate without
#      the codeSigning purpose, truncated bundles, a plain-format bundle; bundles whose
#      payload was cut or changed are refused by the payload check (`rauc extract`).
#   4. image/genimage.cfg builds a disk image with boot, rootfsA, rootfsB and data.
#   5. yocto/meta-pbx: pbxd-crates.inc matches Cargo.lock, links resolve, the unit file is
#      valid, the bundle's compatible equals system.conf's, every recipe passes oelint-adv
#      (from PyPI, in a venv under the cache dir) without errors.
#   6. No private key is tracked by git.
# Prints "N passed, M failed" and exits non-zero on any failure.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
OELINT_VERSION=9.11.2
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/pbx-ci
LAYER=yocto/meta-pbx
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
PASSED=0
FAILED=()

ok() { PASSED=$((PASSED + 1)); printf 'ok    %s\n' "$1"; }
fail() { FAILED+=("$1"); printf 'FAIL  %s\n' "$1" >&2; [ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/      /' >&2; return 0; }
need() { command -v "$1" >/dev/null || { echo "image.sh: $1 missing (Debian package $2; scripts/test.sh installs it)" >&2; exit 1; }; }

need rauc rauc
need mksquashfs squashfs-tools
need openssl openssl
need mke2fs e2fsprogs
need python3 python3
need genimage genimage
need mkfs.vfat dosfstools
need mcopy mtools
need sfdisk fdisk

# RAUC reads the box's system.conf with its state directory moved out of /data.
sed "s|^data-directory=.*|data-directory=$W/rauc-data|" image/rauc/system.conf > "$W/system.conf"
COMPATIBLE=$(sed -n 's/^compatible=//p' image/rauc/system.conf)
rinfo() { rauc info --conf="$W/system.conf" "$@"; }

# --- 1. system.conf ----------------------------------------------------------------------
# `rauc status` fails on a boot selection it cannot query here, so load the config through
# `info` on a missing file: a config error is reported before the file is opened.
out=$(rinfo "$W/missing.raucb" 2>&1)
if printf '%s' "$out" | grep -q 'Failed to load system config'; then
  fail "system.conf loads in rauc $(rauc --version | cut -d' ' -f2)" "$out"
else
  ok "system.conf loads in rauc $(rauc --version | cut -d' ' -f2)"
fi
for key in 'bootloader=uboot' 'boot-attempts=3' 'bundle-formats=-plain' 'check-purpose=codesign' \
  'bootname=A' 'bootname=B'; do
  grep -qx "$key" image/rauc/system.conf || fail "system.conf has $key"
done
grep -q '^\[slot.rootfs.0\]' image/rauc/system.conf && grep -q '^\[slot.rootfs.1\]' image/rauc/system.conf &&
  ! grep -q '^\[slot.data' image/rauc/system.conf && ok "slots rootfs.0/rootfs.1, data is no slot" ||
  fail "slots rootfs.0/rootfs.1, data is no slot"

# --- 2. a good bundle --------------------------------------------------------------------
mkdir -p "$W/rootfs/etc" "$W/rootfs/usr/bin" "$W/rootfs/boot"
printf 'ID=pbx\nVERSION_ID=test\n' > "$W/rootfs/etc/os-release"
head -c 65536 /dev/urandom > "$W/rootfs/usr/bin/payload" # random: the bundle cannot compress it away
mke2fs -q -t ext4 -L rootfs -d "$W/rootfs" "$W/rootfs.ext4" 8M > /dev/null
if scripts/build-bundle.sh --keys-dir "$W/keys" --version 1.2.3-test "$W/rootfs.ext4" "$W/good.raucb" > "$W/build.log" 2>&1; then
  ok "build-bundle.sh builds a signed bundle"
else
  fail "build-bundle.sh builds a signed bundle" "$(cat "$W/build.log")"
fi
KEYRING="$W/keys/pbx-ca.cert.pem"
[ -s "$KEYRING" ] && [ -s "$W/keys/pbx-signing.key.pem" ] && [ "$(stat -c %a "$W/keys/pbx-signing.key.pem")" = 600 ] &&
  ok "development keys generated, private key mode 600" || fail "development keys generated, private key mode 600"

if rinfo --keyring="$KEYRING" --output-format=json "$W/good.raucb" > "$W/good.json" 2> "$W/good.err"; then
  ok "rauc info --keyring verifies the bundle"
  text=$(rinfo --keyring="$KEYRING" "$W/good.raucb" 2>/dev/null)
  printf '%s' "$text" | grep -Eq 'Bundle Format:[[:space:]]+verity' &&
    ok "bundle format is verity" || fail "bundle format is verity"
  # The verified manifest must describe exactly our image.
  if python3 - "$W/good.json" "$W/rootfs.ext4" "$COMPATIBLE" <<'EOF'; then
import hashlib, json, os, sys
info = json.load(open(sys.argv[1]))
image = sys.argv[2]
want = hashlib.sha256(open(image, "rb").read()).hexdigest()
imgs = info["images"]
assert info["compatible"] == sys.argv[3], info["compatible"]
assert info["version"] == "1.2.3-test", info["version"]
assert len(imgs) == 1, imgs
(slot, img), = imgs[0].items()
assert slot == "rootfs", slot
assert img["filename"] == "rootfs.ext4", img
assert img["checksum"] == want, (img["checksum"], want)
assert img["size"] == os.path.getsize(image), img
EOF
    ok "manifest: compatible, version, verity, rootfs.ext4 with its sha256 and size"
  else
    fail "manifest: compatible, version, verity, rootfs.ext4 with its sha256 and size" "$(cat "$W/good.json")"
  fi
else
  fail "rauc info --keyring verifies the bundle" "$(cat "$W/good.err")"
fi

# --- 3. bundles that must be refused -------------------------------------------------------
# expect_refused NAME BUNDLE PATTERN: rauc info fails and says why (PATTERN in its output).
expect_refused() {
  local out
  if out=$(rinfo --keyring="$KEYRING" "$2" 2>&1); then
    fail "refused: $1" "rauc info accepted it:"$'\n'"$out"
  elif printf '%s' "$out" | grep -Eq "$3"; then
    ok "refused: $1 ($(printf '%s' "$out" | grep -Eo "$3" | head -n1))"
  else
    fail "refused: $1 (expected /$3/)" "$out"
  fi
}

scripts/build-bundle.sh --gen-keys "$W/other-keys" 2>/dev/null
scripts/build-bundle.sh --cert "$W/other-keys/pbx-signing.cert.pem" --key "$W/other-keys/pbx-signing.key.pem" \
  "$W/rootfs.ext4" "$W/foreign.raucb" > /dev/null
expect_refused "bundle signed by another CA" "$W/foreign.raucb" 'unable to get local issuer certificate|signature verification failed'

# Same CA, but a certificate without extendedKeyUsage=codeSigning (say, a TLS certificate).
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/tls.key" 2>/dev/null
openssl req -new -key "$W/tls.key" -subj /CN=not-for-firmware -out "$W/tls.csr"
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' > "$W/tls.ext"
openssl x509 -req -in "$W/tls.csr" -CA "$KEYRING" -CAkey "$W/keys/pbx-ca.key.pem" -CAcreateserial \
  -days 2 -extfile "$W/tls.ext" -out "$W/tls.crt" 2>/dev/null
scripts/build-bundle.sh --cert "$W/tls.crt" --key "$W/tls.key" "$W/rootfs.ext4" "$W/tls.raucb" > /dev/null
expect_refused "bundle signed by a non-code-signing certificate of our CA" "$W/tls.raucb" 'unsuitable certificate purpose'

size=$(stat -c %s "$W/good.raucb")
head -c $((size - 1)) "$W/good.raucb" > "$W/trunc-end.raucb"
expect_refused "bundle missing its last byte" "$W/trunc-end.raucb" 'signature|[Ii]nvalid|size|failed'
head -c $((size / 2)) "$W/good.raucb" > "$W/trunc-half.raucb"
expect_refused "bundle cut in half" "$W/trunc-half.raucb" 'signature|[Ii]nvalid|size|failed'
head -c 100 "$W/good.raucb" > "$W/trunc-head.raucb"
expect_refused "bundle of 100 bytes" "$W/trunc-head.raucb" 'signature|[Ii]nvalid|size|small|failed'

# Damage that keeps the signature trailer: `rauc info` checks only the signed manifest, so
# these pass it; the payload check (dm-verity on install, the same hash tree in
# `rauc extract`) must refuse them. A good bundle extracts to exactly our image.
# expect_bad_payload NAME BUNDLE
expect_bad_payload() {
  local out
  rm -rf "$W/extract"
  if out=$(rauc extract --conf="$W/system.conf" --keyring="$KEYRING" "$2" "$W/extract" 2>&1); then
    fail "payload refused: $1" "rauc extract accepted it"
  elif printf '%s' "$out" | grep -q 'payload is corrupted'; then
    ok "payload refused: $1 (bundle payload is corrupted)"
  else
    fail "payload refused: $1 (expected 'payload is corrupted')" "$out"
  fi
}
rm -rf "$W/extract"
if rauc extract --conf="$W/system.conf" --keyring="$KEYRING" "$W/good.raucb" "$W/extract" > "$W/extract.log" 2>&1 &&
  cmp -s "$W/extract/rootfs.ext4" "$W/rootfs.ext4"; then
  ok "good bundle: payload verifies and extracts to the exact rootfs image"
else
  fail "good bundle: payload verifies and extracts to the exact rootfs image" "$(cat "$W/extract.log")"
fi
(head -c 4096 "$W/good.raucb"; tail -c $((size - 8192)) "$W/good.raucb") > "$W/cut-middle.raucb"
expect_bad_payload "4 KiB cut out of the payload, trailer intact" "$W/cut-middle.raucb"
cp "$W/good.raucb" "$W/flipped.raucb"
printf '\xff' | dd of="$W/flipped.raucb" bs=1 seek=20000 conv=notrunc 2> /dev/null
expect_bad_payload "one payload byte changed" "$W/flipped.raucb"

# A plain-format bundle, correctly signed: system.conf accepts verity only.
mkdir "$W/plain"
cp "$W/rootfs.ext4" "$W/plain/rootfs.ext4"
printf '[update]\ncompatible=%s\nversion=1\n[bundle]\nformat=plain\n[image.rootfs]\nfilename=rootfs.ext4\n' "$COMPATIBLE" \
  > "$W/plain/manifest.raucm"
rauc bundle --cert="$W/keys/pbx-signing.cert.pem" --key="$W/keys/pbx-signing.key.pem" "$W/plain" "$W/plain.raucb" > /dev/null 2>&1
expect_refused "plain-format bundle" "$W/plain.raucb" 'plain.*not allowed|format'

# --- 4. partition layout ---------------------------------------------------------------------
mkdir -p "$W/gi/input" "$W/gi/root" "$W/gi/tmp" "$W/gi/out"
cp "$W/rootfs.ext4" "$W/gi/input/rootfs.ext4"
mkfs.vfat -n BOOT -C "$W/gi/input/boot.vfat" 32768 > /dev/null
mcopy -i "$W/gi/input/boot.vfat" image/uboot/boot.cmd ::boot.cmd
mke2fs -q -t ext4 -L data "$W/gi/input/data.ext4" 16M > /dev/null
if genimage --config image/genimage.cfg --inputpath "$W/gi/input" --outputpath "$W/gi/out" \
  --rootpath "$W/gi/root" --tmppath "$W/gi/tmp" > "$W/gi.log" 2>&1; then
  ok "genimage builds pbx-box.img from image/genimage.cfg"
  if python3 - "$W/gi/out/pbx-box.img" "$W/gi/input" <<'EOF' 2> "$W/gi.err"; then
import json, subprocess, sys
img, inp = sys.argv[1], sys.argv[2]
table = json.loads(subprocess.run(["sfdisk", "--json", img], check=True, capture_output=True, text=True).stdout)
parts = table["partitiontable"]["partitions"]
assert table["partitiontable"]["label"] == "gpt"
names = [p.get("name") for p in parts]
assert names == ["boot", "rootfsA", "rootfsB", "data"], names
sector = table["partitiontable"].get("sectorsize", 512)
def region(p, n):
    with open(img, "rb") as f:
        f.seek(p["start"] * sector)
        return f.read(n)
for p, src in zip(parts, ["boot.vfat", "rootfs.ext4", "rootfs.ext4", "data.ext4"]):
    data = open(f"{inp}/{src}", "rb").read()
    assert region(p, len(data)) == data, f"{p.get('name')} does not hold {src}"
    assert p["size"] * sector >= len(data)
a, b = parts[1], parts[2]
assert a["size"] == b["size"], "slots A and B differ in size"
EOF
    ok "layout: GPT boot, rootfsA, rootfsB (equal size, both hold the rootfs), data"
  else
    fail "layout: GPT boot, rootfsA, rootfsB (equal size, both hold the rootfs), data" "$(cat "$W/gi.err")"
  fi
else
  fail "genimage builds pbx-box.img from image/genimage.cfg" "$(tail -n 20 "$W/gi.log")"
fi
rm -rf "$W/gi"

# --- 5. the Yocto layer ------------------------------------------------------------------------
if out=$(python3 scripts/yocto-crates.py --check 2>&1); then
  ok "pbxd-crates.inc matches Cargo.lock"
else
  fail "pbxd-crates.inc matches Cargo.lock (run scripts/yocto-crates.py)" "$out"
fi
# --check must notice a change in the lock: feed it a lock with one checksum altered.
sed '0,/^checksum = "\(.\)/s//checksum = "X/' Cargo.lock > "$W/Cargo.lock"
if python3 scripts/yocto-crates.py --check --lock "$W/Cargo.lock" > /dev/null 2>&1; then
  fail "yocto-crates.py --check fails on a changed Cargo.lock"
else
  ok "yocto-crates.py --check fails on a changed Cargo.lock"
fi

for link in $LAYER/recipes-core/rauc/files/system.conf $LAYER/recipes-bsp/pbx-boot-script/files/boot.cmd; do
  [ -f "$link" ] || fail "layer link $link resolves"
done
cmp -s $LAYER/recipes-core/rauc/files/system.conf image/rauc/system.conf && ok "layer ships image/rauc/system.conf" ||
  fail "layer ships image/rauc/system.conf"
bundle_compat=$(sed -n 's/^RAUC_BUNDLE_COMPATIBLE = "\(.*\)"/\1/p' $LAYER/recipes-core/bundles/pbx-bundle.bb)
[ "$bundle_compat" = "$COMPATIBLE" ] && ok "pbx-bundle compatible = system.conf compatible ($COMPATIBLE)" ||
  fail "pbx-bundle compatible ($bundle_compat) = system.conf compatible ($COMPATIBLE)"
sqlite_ws=$(sed -n 's/^LIBSQLITE3_FLAGS = "\(.*\)"/\1/p' .cargo/config.toml)
sqlite_bb=$(sed -n 's/^export LIBSQLITE3_FLAGS = "\(.*\)"/\1/p' $LAYER/recipes-pbx/pbxd/pbxd_git.bb)
[ -n "$sqlite_ws" ] && [ "$sqlite_ws" = "$sqlite_bb" ] && ok "pbxd recipe's LIBSQLITE3_FLAGS = .cargo/config.toml's" ||
  fail "pbxd recipe's LIBSQLITE3_FLAGS ($sqlite_bb) = .cargo/config.toml's ($sqlite_ws)"
keyring_file=$(sed -n 's/^RAUC_KEYRING_FILE:pbx = "\(.*\)"/\1/p' $LAYER/recipes-core/rauc/rauc-conf.bbappend)
grep -qx "path=/etc/rauc/$keyring_file" image/rauc/system.conf && ok "keyring path = rauc-conf's RAUC_KEYRING_FILE ($keyring_file)" ||
  fail "keyring path = rauc-conf's RAUC_KEYRING_FILE ($keyring_file)"

if command -v systemd-analyze >/dev/null; then
  # Verify the unit as written, with a stand-in binary (pbxd is not installed here).
  sed 's|^ExecStart=/usr/bin/pbxd|ExecStart=/bin/true|' $LAYER/recipes-pbx/pbxd/files/pbxd.service > "$W/pbxd.service"
  out=$(systemd-analyze verify --man=no "$W/pbxd.service" 2>&1)
  [ -z "$out" ] && ok "systemd-analyze verify pbxd.service" || fail "systemd-analyze verify pbxd.service" "$out"
  # systemd's own hardening score (0 = locked down, 10 = exposed); keep it "OK" or better.
  score=$(systemd-analyze security --offline=true "$W/pbxd.service" 2>/dev/null |
    sed -n 's/.*Overall exposure level for pbxd.service: \([0-9.]*\).*/\1/p')
  if [ -n "$score" ] && awk -v s="$score" 'BEGIN {exit !(s <= 3.0)}'; then
    ok "systemd-analyze security: pbxd.service exposure $score <= 3.0"
  else
    fail "systemd-analyze security: pbxd.service exposure ${score:-?} <= 3.0"
  fi
fi

VENV="$CACHE/oelint-venv"
if [ "$("$VENV/bin/oelint-adv" --version 2>/dev/null)" != "oelint-adv $OELINT_VERSION" ]; then
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q "oelint-adv==$OELINT_VERSION" > "$W/pip.log" 2>&1 ||
    fail "install oelint-adv $OELINT_VERSION from PyPI" "$(tail -n 5 "$W/pip.log")"
fi
if [ -x "$VENV/bin/oelint-adv" ]; then
  mapfile -t recipes < <(find $LAYER \( -name '*.bb' -o -name '*.bbappend' -o -name '*.conf' \) -not -path '*/files/*' | sort)
  "$VENV/bin/oelint-adv" --quiet --exit-zero --release wrynose --extra-layer rauc --relpaths \
    --suppress oelint.vars.homepageping "${recipes[@]}" > "$W/oelint.out" 2>&1
  # pbxd-crates.inc has the exact format of oe-core's cargo-update-recipe-crates class
  # (`SRC_URI += " \`), which oelint's spacing rule flags: that one finding is expected.
  errors=$(grep ':error:' "$W/oelint.out" | grep -v 'pbxd-crates.inc:[0-9]*:error:oelint.vars.inconspaces:')
  warnings=$(grep -c ':warning:' "$W/oelint.out")
  if [ -n "$errors" ]; then
    fail "oelint-adv: no errors in ${#recipes[@]} recipes and confs" "$errors"
  elif [ ${#recipes[@]} -lt 7 ]; then
    fail "oelint-adv ran on the layer's recipes" "found only ${#recipes[@]}: ${recipes[*]}"
  else
    ok "oelint-adv $OELINT_VERSION: no errors in ${#recipes[@]} recipes and confs ($warnings warnings)"
  fi
fi

# --- 6. no private key in git --------------------------------------------------------------------
if command -v git >/dev/null && git rev-parse --git-dir > /dev/null 2>&1; then
  keys=$(git grep -l -e 'PRIVATE KEY-----' -- . ':!scripts/test.d/image.sh' 2>/dev/null)
  [ -z "$keys" ] && ok "no private key tracked by git" || fail "no private key tracked by git" "$keys"
  git check-ignore -q image/dev-keys/pbx-signing.key.pem && ok "image/dev-keys/ is git-ignored" ||
    fail "image/dev-keys/ is git-ignored"
fi

echo "image: ${PASSED} passed, ${#FAILED[@]} failed"
[ ${#FAILED[@]} -eq 0 ]
