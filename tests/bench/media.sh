#!/usr/bin/env bash
# Media relay benchmark (issue 3, benchmark 2): N concurrent G.711 20 ms calls with RTP in
# both directions, relayed by pbxd's B2BUA, and by rtpengine (Debian rtpengine-daemon,
# userspace forwarding only: table = -1) driven by Kamailio 5.6's rtpengine module
# (tests/bench/kamailio-rtpengine.cfg) for the same calls, on the same machine in one run.
#
# Signalling is sipp: one callee sipp registers every callee and answers (media_callee.xml +
# -oocsf media_uas.xml), a caller sipp places N calls (media_uac.xml) and holds them. sipp
# sends no media: the SDP of each phone names a port that tests/bench/rtp_probe.py has bound
# (the phone's number, so the scenarios need no arithmetic), and the scenarios log the relay
# address each phone was given. The probe then sends 50 packets/s each way per call and
# timestamps send (just before sendto) and receive (the kernel's SO_TIMESTAMPNS) on one clock.
# Per measurement window it reports: packets sent/received (loss), one-way delay p50/p99,
# and the CPU time (/proc/PID/stat utime+stime) of the relay (pbxd; rtpengine) and of
# Kamailio (main process and its children) over the same window. "Added" latency subtracts
# the same probe path without a relay (phone to phone, `direct`). Both systems are up (and
# their phones registered) for the whole run and take turns: for each size, each repetition
# measures one then the other, so background load falls on both alike. Each size runs
# REPEAT times per system; the table shows medians.
#
# Usage: tests/bench/media.sh          (needs sipp, python3, kamailio, rtpengine: installs
#                                       kamailio and rtpengine-daemon if missing, as root)
# Environment:
#   CALLS="10 30 100"   concurrent calls per measurement (each call = 2 streams)
#   REPEAT=3            repetitions per size (median reported)
#   WARMUP=1 MEASURE=4  seconds of RTP before the window, and the window itself
#   RATE=100            call setup rate (calls/s) while the calls are placed
#   PHONES=100          at least this many registered phones (idle ones are added)
#   ONLY=pbxd|rtpengine run one side only
#   PBXD_BIN, PBXCTL_BIN  default: <workspace>/target/release/{pbxd,pbxctl}, built if missing
#   PBXD_ARGS="--sip-rate-limit 0"  extra pbxd arguments
#   PBXD_RTP=24000-25999 RTPENGINE_RTP=26000-27999  relay port ranges
#   PROBE_ARGS=--coarse  the probe sends in 1 ms bursts (less probe CPU) instead of pacing
#                       every packet to its own slot of the 20 ms
#   DUMP=1              write every packet's delay to WORK/<system>-<calls>-<rep>.delays
#                       ("seconds into the window, stream, delay in us"; use with KEEP=1)
#   KEEP=1              keep the work directory (sipp logs, server logs, results.jsonl)
# Exit status: 0 when every measurement ran with all calls set up, 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SIPP_DIR="$ROOT/tests/sipp"
BENCH_DIR="$ROOT/tests/bench"
PROBE="$BENCH_DIR/rtp_probe.py"
CALLS=${CALLS:-10 30 100}
REPEAT=${REPEAT:-3}
WARMUP=${WARMUP:-1}
MEASURE=${MEASURE:-4}
RATE=${RATE:-100}
PHONES=${PHONES:-100}
ONLY=${ONLY:-}
read -r -a PROBE_ARGS <<< "${PROBE_ARGS:-}"
PBXD_ARGS=${PBXD_ARGS---sip-rate-limit 0}
PBXD_RTP=${PBXD_RTP:-24000-25999}
RTPENGINE_RTP=${RTPENGINE_RTP:-26000-27999}
# Phone numbers; a phone's number is also its media port (below the ephemeral port range).
FIRST_CALLER=21000
FIRST_CALLEE=22000
FIRST_IDLE=23000
KAM_CHILDREN=${KAM_CHILDREN:-$(nproc)}

die() { echo "media.sh: $*" >&2; exit 1; }
PATH=$PATH:/usr/sbin:/usr/local/sbin

# Install the peers if missing (Debian bookworm).
need=()
command -v sipp >/dev/null || need+=(sip-tester)
command -v python3 >/dev/null || need+=(python3)
command -v ss >/dev/null || need+=(iproute2)
if [ "$ONLY" != pbxd ]; then
  command -v kamailio >/dev/null || need+=(kamailio)
  command -v rtpengine >/dev/null || need+=(rtpengine-daemon)
fi
if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "installing ${need[*]}..." >&2
  # --no-install-recommends: no rtpengine kernel module (DKMS); its daemon is not started
  # by the package in a container, and this script runs its own.
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2 ||
    die "could not install ${need[*]}"
fi
if [ "$ONLY" != pbxd ]; then
  [ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/rtpengine.so ] ||
    find /usr/lib -path '*kamailio/modules/rtpengine.so' 2>/dev/null | grep -q . ||
    die "Kamailio's rtpengine module (rtpengine.so, package kamailio) not found"
fi

WORK=$(mktemp -d /tmp/pbx-media.XXXXXX)
RESULTS="$WORK/results.jsonl"
PIDS=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "work dir kept: $WORK" >&2; fi
}
trap cleanup EXIT

free_port() {
  python3 - <<'EOF'
import socket
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", port)); print(port); break
    except OSError:
        pass
    finally:
        t.close(); u.close()
EOF
}
max_calls=0
for n in $CALLS; do [ "$n" -gt "$max_calls" ] && max_calls=$n; done
if [ "$max_calls" -lt 1 ] || [ "$max_calls" -gt 999 ]; then die "CALLS must be 1..999 calls"; fi
idle=$((PHONES - 2 * max_calls))
[ "$idle" -lt 0 ] && idle=0

# Injection files (passwords "s3cret-<user>", as kamailio-rtpengine.cfg computes them).
{
  echo SEQUENTIAL
  for ((i = 0; i < max_calls; i++)); do
    c=$((FIRST_CALLER + i)) e=$((FIRST_CALLEE + i))
    echo "$c;[authentication username=$c password=s3cret-$c];$e;$c"
  done
} > "$WORK/calls.csv"
{
  echo SEQUENTIAL
  for ((i = 0; i < max_calls; i++)); do
    e=$((FIRST_CALLEE + i))
    echo "$e;[authentication username=$e password=s3cret-$e]"
  done
} > "$WORK/callees.csv"
{
  echo SEQUENTIAL
  for ((i = 0; i < max_calls; i++)); do
    c=$((FIRST_CALLER + i))
    echo "$c;[authentication username=$c password=s3cret-$c]"
  done
  for ((i = 0; i < idle; i++)); do
    c=$((FIRST_IDLE + i))
    echo "$c;[authentication username=$c password=s3cret-$c]"
  done
} > "$WORK/others.csv"
all_numbers() {
  seq "$FIRST_CALLER" $((FIRST_CALLER + max_calls - 1))
  seq "$FIRST_CALLEE" $((FIRST_CALLEE + max_calls - 1))
  [ "$idle" -eq 0 ] || seq "$FIRST_IDLE" $((FIRST_IDLE + idle - 1))
}

# Registers the callees (one sipp that stays and answers) and the other phones.
register_phones() { # name target
  local name=$1 target=$2 registered=0 n_others
  sipp -sf "$SIPP_DIR/media_callee.xml" -oocsf "$SIPP_DIR/media_uas.xml" \
    -inf "$WORK/callees.csv" -m "$max_calls" -r 500 -d 3600000 -t u1 -i 127.0.0.1 \
    -p "$(free_port)" -nostdin -trace_logs -log_file "$WORK/$name.callees.log" \
    -trace_err -error_file "$WORK/$name.callees.errors" \
    "$target" > "$WORK/$name.callees.out" 2>&1 &
  UAS_PID=$!
  PIDS+=("$UAS_PID")
  for _ in $(seq 200); do
    registered=$(grep -c '^registered' "$WORK/$name.callees.log" 2>/dev/null || true)
    [ "${registered:-0}" -ge "$max_calls" ] && break
    kill -0 "$UAS_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ "${registered:-0}" -lt "$max_calls" ]; then
    echo "  $name: only ${registered:-0} of $max_calls callees registered; see $WORK/$name.callees.*" >&2
    return 1
  fi
  n_others=$(($(wc -l < "$WORK/others.csv") - 1))
  if ! timeout 60 sipp -sf "$SIPP_DIR/register.xml" -inf "$WORK/others.csv" -m "$n_others" -r 500 \
      -t u1 -i 127.0.0.1 -p "$(free_port)" -nostdin -trace_err \
      -error_file "$WORK/$name.others.errors" "$target" > "$WORK/$name.others.out" 2>&1; then
    echo "  $name: the callers and idle phones did not all register; see $WORK/$name.others.*" >&2
    return 1
  fi
  echo "  $name: $((max_calls + n_others)) phones registered" >&2
}

# One measurement: N calls held while the probe streams. Appends a JSON line to RESULTS.
# $4.. are the probe's --cpu/--rss arguments.
measure() { # name target calls rep probe-args...
  local name=$1 target=$2 n=$3 rep=$4 hold rc=0 probe_rc=0 tag caller_pid
  shift 4
  tag="$name-$n-$rep"
  # Long enough for placing the calls, the probe's warm-up, window and drain, and slack.
  hold=$(python3 -c "import sys; n,r,w,m=map(float,sys.argv[1:]); print(int(1000*(n/r + w + m + 0.3 + 2.5)))" \
    "$n" "$RATE" "$WARMUP" "$MEASURE")
  rm -f "$WORK/$tag.ready"
  python3 "$PROBE" run --system "$name" --calls "$n" --caller-base "$FIRST_CALLER" \
    --callee-base "$FIRST_CALLEE" --caller-log "$WORK/$tag.callers.log" \
    --callee-log "$WORK/$name.callees.log" --wait $((n / RATE + 15)) --warmup "$WARMUP" \
    --measure "$MEASURE" --ready "$WORK/$tag.ready" --out "$RESULTS" "${PROBE_ARGS[@]}" \
    ${DUMP:+--dump "$WORK/$tag.delays"} "$@" \
    > "$WORK/$tag.probe.out" 2> "$WORK/$tag.probe.err" &
  local probe_pid=$!
  PIDS+=("$probe_pid")
  for _ in $(seq 100); do
    [ -e "$WORK/$tag.ready" ] && break
    kill -0 "$probe_pid" 2>/dev/null || break
    sleep 0.05
  done
  if [ ! -e "$WORK/$tag.ready" ]; then
    cat "$WORK/$tag.probe.err" >&2
    echo "  $tag: the probe could not bind its media ports" >&2
    return 1
  fi
  timeout $((hold / 1000 + 40)) sipp -sf "$SIPP_DIR/media_uac.xml" -inf "$WORK/calls.csv" \
    -m "$n" -l "$n" -r "$RATE" -d "$hold" -t u1 -i 127.0.0.1 -p "$(free_port)" -nostdin \
    -trace_logs -log_file "$WORK/$tag.callers.log" -trace_err -error_file "$WORK/$tag.errors" \
    "$target" > "$WORK/$tag.sipp.out" 2>&1 &
  caller_pid=$!
  PIDS+=("$caller_pid")
  wait "$probe_pid" || probe_rc=$?
  wait "$caller_pid" || rc=$?
  if [ "$probe_rc" -ne 0 ]; then
    echo "  $tag: probe failed: $(tail -3 "$WORK/$tag.probe.err")" >&2
    echo "    caller sipp exit $rc; first errors:" >&2
    head -c 800 "$WORK/$tag.errors" 2>/dev/null | sed 's/^/    /' >&2 || true
    echo >&2
    return 1
  fi
  python3 - "$WORK/$tag.probe.out" "$rc" <<'EOF' >&2
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
cpu = ", ".join(f"{k} {100 * v / r['window_s']:.1f}%" for k, v in r["cpu_s"].items())
rss = ", ".join(f"{k} {v} kB" for k, v in r.get("rss_kb", {}).items())
print(f"  {r['system']} {r['calls']} calls: {r['received']}/{r['sent']} packets"
      f" ({r['lost']} lost, {r['misrouted']} misrouted), delay p50 {r['delay_p50_us']:.0f} us"
      f" p99 {r['delay_p99_us']:.0f} us, CPU {cpu}, probe {100 * r['probe_cpu_s'] / r['window_s']:.0f}%"
      + (f", RSS {rss}" if rss else "") + f"; caller sipp exit {sys.argv[2]}")
EOF
  if [ "$rc" -ne 0 ]; then
    echo "    caller sipp exit $rc (a call failed): $WORK/$tag.errors" >&2
    return 1
  fi
}

status=0
SYSTEMS=()
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

# Baseline: the probe's own path, phone to phone without a relay.
for n in $CALLS; do
  python3 "$PROBE" run --system direct --direct --calls "$n" --caller-base "$FIRST_CALLER" \
    --callee-base "$FIRST_CALLEE" --warmup "$WARMUP" --measure "$MEASURE" --out "$RESULTS" \
    "${PROBE_ARGS[@]}" > /dev/null || die "the probe failed without a relay (are ports $FIRST_CALLER+ / $FIRST_CALLEE+ free?)"
done

# ---------------------------------------------------------------------------------------
# rtpengine + Kamailio
# ---------------------------------------------------------------------------------------
if [ "$ONLY" != pbxd ]; then
  mkdir -p "$WORK/rtpengine" "$WORK/kamailio"
  NG_PORT=$(free_port)
  # Its own config (not /etc/rtpengine): loopback only, userspace forwarding (table = -1),
  # no kernel module, no recording, a port range of its own.
  cat > "$WORK/rtpengine/rtpengine.conf" <<EOF
[rtpengine]
table = -1
interface = 127.0.0.1
listen-ng = 127.0.0.1:$NG_PORT
port-min = ${RTPENGINE_RTP%-*}
port-max = ${RTPENGINE_RTP#*-}
timeout = 60
silent-timeout = 3600
tos = 184
log-level = 5
log-stderr = true
foreground = true
delete-delay = 0
EOF
  rtpengine --config-file="$WORK/rtpengine/rtpengine.conf" --pidfile="$WORK/rtpengine/pid" \
    > "$WORK/rtpengine/log" 2>&1 &
  RTPE_PID=$!
  PIDS+=("$RTPE_PID")
  up=""
  for _ in $(seq 100); do
    ss -lnu | grep -q "127.0.0.1:$NG_PORT " && { up=1; break; }
    kill -0 "$RTPE_PID" 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$up" ] || { tail -20 "$WORK/rtpengine/log" >&2; die "rtpengine did not start"; }
  KPORT=$(free_port)
  kamailio -f "$BENCH_DIR/kamailio-rtpengine.cfg" -DD -E -l "udp:127.0.0.1:$KPORT" \
    -n "$KAM_CHILDREN" -Y "$WORK/kamailio" -w "$WORK/kamailio" -m 256 -M 16 \
    -A "RTPENGINE_SOCK=\"udp:127.0.0.1:$NG_PORT\"" > "$WORK/kamailio/log" 2>&1 &
  KPID=$!
  PIDS+=("$KPID")
  up=""
  for _ in $(seq 200); do
    ss -lnu | grep -q "127.0.0.1:$KPORT " && { up=1; break; }
    kill -0 "$KPID" 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$up" ] || { tail -20 "$WORK/kamailio/log" >&2; die "kamailio did not start"; }
  sleep 0.5 # its workers fork after the socket is bound
  kam_pids="$KPID,$(ps -o pid= --ppid "$KPID" | tr -s ' \n' ',' | sed 's/^,//; s/,$//')"
  echo "rtpengine $(rtpengine -v 2>&1 | head -1 | awk '{print $NF}') (userspace, table -1," \
    "ports $RTPENGINE_RTP) + kamailio $(kamailio -v | awk '/^version/{print $3}')" \
    "($KAM_CHILDREN UDP workers, 127.0.0.1:$KPORT)" >&2
  if register_phones rtpengine "127.0.0.1:$KPORT"; then
    SYSTEMS+=(rtpengine)
  else
    status=1
  fi
fi

# ---------------------------------------------------------------------------------------
# pbxd
# ---------------------------------------------------------------------------------------
if [ "$ONLY" != rtpengine ]; then
  PBXD=${PBXD_BIN:-$ROOT/target/release/pbxd}
  PBXCTL=${PBXCTL_BIN:-$ROOT/target/release/pbxctl}
  if [ ! -x "$PBXD" ] || [ ! -x "$PBXCTL" ]; then
    echo "building release pbxd and pbxctl..." >&2
    (cd "$ROOT" && CARGO_TARGET_DIR="$ROOT/target" cargo build --release -p pbxd --bins) >&2 ||
      die "the release build of pbxd failed"
  fi
  DATA="$WORK/pbx-data"
  mkdir -p "$DATA"
  # The first one creates the database; the rest in parallel.
  all_numbers > "$WORK/numbers"
  head -1 "$WORK/numbers" | xargs -I{} "$PBXCTL" --data-dir "$DATA" extension add {} --password s3cret-{} > /dev/null
  tail -n +2 "$WORK/numbers" | xargs -P 4 -I{} "$PBXCTL" --data-dir "$DATA" extension add {} --password s3cret-{} > /dev/null
  PPORT=$(free_port)
  HPORT=$(free_port)
  # shellcheck disable=SC2086 # PBXD_ARGS is a list of words
  "$PBXD" --data-dir "$DATA" --sip-listen "127.0.0.1:$PPORT" --http-listen "127.0.0.1:$HPORT" \
    --rtp-ports "$PBXD_RTP" $PBXD_ARGS > "$WORK/pbxd.log" 2>&1 &
  PBXD_PID=$!
  PIDS+=("$PBXD_PID")
  ready=""
  for _ in $(seq 400); do
    grep -q 'ready: sip=' "$WORK/pbxd.log" 2>/dev/null && { ready=1; break; }
    kill -0 "$PBXD_PID" 2>/dev/null || break
    sleep 0.025
  done
  [ -n "$ready" ] || { tail -20 "$WORK/pbxd.log" >&2; die "pbxd did not get ready"; }
  sleep 0.5
  pbx_idle=$(awk '/^VmRSS:/{print $2}' "/proc/$PBXD_PID/status")
  echo "pbxd: 127.0.0.1:$PPORT (--rtp-ports $PBXD_RTP $PBXD_ARGS), idle RSS $pbx_idle kB" >&2
  if register_phones pbxd "127.0.0.1:$PPORT"; then
    pbx_registered=$(awk '/^VmRSS:/{print $2}' "/proc/$PBXD_PID/status")
    SYSTEMS+=(pbxd)
  else
    echo "  pbxd log tail:" >&2
    tail -15 "$WORK/pbxd.log" | sed 's/^/    /' >&2
    status=1
  fi
fi

# ---------------------------------------------------------------------------------------
# The measurements, the two systems taking turns (both stay up; the one not measured is
# idle), so that the machine's background load falls on both alike.
# ---------------------------------------------------------------------------------------
for n in $CALLS; do
  for rep in $(seq "$REPEAT"); do
    for system in "${SYSTEMS[@]}"; do
      case $system in
        rtpengine)
          measure rtpengine "127.0.0.1:$KPORT" "$n" "$rep" --cpu "relay=$RTPE_PID" \
            --cpu "kamailio=$kam_pids" --rss "rtpengine=$RTPE_PID" || status=1
          ;;
        pbxd)
          measure pbxd "127.0.0.1:$PPORT" "$n" "$rep" --cpu "relay=$PBXD_PID" \
            --rss "pbxd=$PBXD_PID" || status=1
          ;;
      esac
    done
  done
done
if [ -n "${PBXD_PID:-}" ]; then
  pbx_hwm=$(awk '/^VmHWM:/{print $2}' "/proc/$PBXD_PID/status")
fi

echo
echo "=== media relay benchmark: G.711 A-law 20 ms RTP both ways per call (2 streams, 50 packets/s each), UDP loopback, $(nproc) cores"
echo "    window ${MEASURE}s after ${WARMUP}s warm-up, median of $REPEAT; CPU = utime+stime over the window;"
echo "    CPU/stream = relay CPU time per second of one stream; streams/core = streams / relay CPU fraction;"
echo "    added p50/p99 = probe delay percentile minus the no-relay baseline's; load average at the start $LOAD0, at the end $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$PROBE" report "$RESULTS"
if [ -n "${pbx_idle:-}" ]; then
  echo "pbxd RSS: idle $pbx_idle kB; $(wc -l < "$WORK/numbers") phones registered ${pbx_registered:-?} kB; peak (VmHWM) ${pbx_hwm:-?} kB"
fi
exit "$status"
