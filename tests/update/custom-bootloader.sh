#!/bin/sh
# A stand-in for U-Boot's boot selection, as RAUC's `custom` bootloader backend
# (system.conf: bootloader=custom, [handlers] bootloader-custom-backend=THIS).
# State lives in `bootstate` beside this script: the boot order and the boot attempts
# left per slot, like U-Boot's BOOT_ORDER and BOOT_<x>_LEFT.
#
# RAUC calls: get-primary | set-primary SLOT | get-state SLOT | set-state SLOT good|bad
# The tests call: boot (what the bootloader does at power-on: the first slot in the
# order with attempts left, one attempt used up; prints its bootname).
set -eu
DIR=$(cd "$(dirname "$0")" && pwd)
F="$DIR/bootstate"
ATTEMPTS=3
[ -f "$F" ] || printf 'ORDER="A B"\nA_LEFT=%s\nB_LEFT=%s\n' $ATTEMPTS $ATTEMPTS > "$F"
. "$F"
save() {
  printf 'ORDER="%s"\nA_LEFT=%s\nB_LEFT=%s\n' "$ORDER" "$A_LEFT" "$B_LEFT" > "$F.tmp"
  mv "$F.tmp" "$F"
}
left() { eval "echo \${$1_LEFT}"; }
check_slot() { case "$1" in A|B) ;; *) echo "unknown slot $1" >&2; exit 2;; esac; }
echo "$*" >> "$F.log"
case "${1:-}" in
get-primary)
  for s in $ORDER; do [ "$(left "$s")" -gt 0 ] && { echo "$s"; exit 0; }; done
  echo "no bootable slot" >&2; exit 1;;
set-primary)
  check_slot "$2"; o="$2"
  for s in $ORDER; do [ "$s" = "$2" ] || o="$o $s"; done
  ORDER="$o"; eval "$2_LEFT=$ATTEMPTS"; save;;
get-state)
  check_slot "$2"
  if [ "$(left "$2")" -gt 0 ]; then echo good; else echo bad; fi;;
set-state)
  check_slot "$2"
  case "$3" in good) eval "$2_LEFT=$ATTEMPTS";; bad) eval "$2_LEFT=0";; *) exit 2;; esac
  save;;
boot)
  for s in $ORDER; do
    l=$(left "$s")
    if [ "$l" -gt 0 ]; then eval "${s}_LEFT=$((l - 1))"; save; echo "$s"; exit 0; fi
  done
  echo "no bootable slot" >&2; exit 1;;
*) echo "usage: $0 get-primary|set-primary|get-state|set-state|boot" >&2; exit 2;;
esac
