#!/usr/bin/env bash
# Registration benchmark: sipp registers N distinct users (REGISTER -> 401 -> REGISTER with
# digest -> 200) as fast as the server answers, against Kamailio 5.6 (reference) and pbxd, on
# the same machine in the same run. Prints registrations/s for both, the ratio, and pbxd's
# time-to-ready, idle RSS and peak RSS.
#
# Usage: tests/bench/register.sh            (from anywhere; needs sipp and kamailio)
# Environment:
#   N=2000            users (= registrations, each two REGISTER transactions)
#   REPEAT=5          sipp runs per server (run 1 creates the bindings, later runs refresh them
#                     with new Call-IDs); the median registrations/s is reported
#   RATE=50000        sipp new-call rate cap (calls/s); CONCURRENCY=50 caps calls in flight
#   PBXD_BIN, PBXCTL_BIN  default: <workspace>/target/release/{pbxd,pbxctl}, built if missing
#   PBXD_ARGS="--sip-rate-limit 0"  extra pbxd arguments (its per-address rate limit would
#                     otherwise throttle a benchmark that sends everything from 127.0.0.1)
#   ONLY=kamailio|pbxd  run one side only
#   KAM_CHILDREN=2    Kamailio UDP worker processes (the machine's cores by default)
#   KEEP=1            keep the work directory
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
N=${N:-2000}
RATE=${RATE:-50000}
CONCURRENCY=${CONCURRENCY:-50}
ONLY=${ONLY:-}
KAM_CHILDREN=${KAM_CHILDREN:-$(nproc)}
SIPP_TIMEOUT=${SIPP_TIMEOUT:-300}
REPEAT=${REPEAT:-5}
PBXD_ARGS=${PBXD_ARGS---sip-rate-limit 0}
SCENARIO="$ROOT/tests/sipp/register.xml"
FIRST_USER=20000

die() { echo "register.sh: $*" >&2; exit 1; }
for tool in sipp python3; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install sip-tester python3)"
done

WORK=$(mktemp -d /tmp/pbx-bench.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "work dir kept: $WORK"; fi
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

now_ms() { local t=$EPOCHREALTIME; echo $(( ${t/./} / 1000 )); }

# Injection file: user;[authentication username=user password=...]
make_users() { # prefix-or-fixed-password file
  local pw=$1 file=$2 i u
  echo SEQUENTIAL > "$file"
  for ((i = 0; i < N; i++)); do
    u=$((FIRST_USER + i))
    if [ "$pw" = per-user ]; then
      echo "$u;[authentication username=$u password=pw-$u]"
    else
      echo "$u;[authentication username=$u password=$pw]"
    fi
  done >> "$file"
}

# Runs the scenario N times; prints "<registrations/s> <ok> <failed> <seconds>".
run_sipp() { # name target users.csv
  local name=$1 target=$2 csv=$3 t0 t1 rc=0 ok failed
  local lport
  lport=$(free_port)
  t0=$(now_ms)
  timeout "$SIPP_TIMEOUT" sipp -sf "$SCENARIO" -inf "$csv" -m "$N" -r "$RATE" -l "$CONCURRENCY" \
    -t u1 -i 127.0.0.1 -p "$lport" -nostdin -trace_err -error_file "$WORK/$name.errors" \
    -trace_stat -stf "$WORK/$name.stat.csv" -fd 3600 \
    "$target" > "$WORK/$name.sipp.out" 2>&1 || rc=$?
  t1=$(now_ms)
  # Cumulative counters from the last line of the statistics file.
  ok=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++) h[$i]=i} END{print $h["SuccessfulCall(C)"]}' "$WORK/$name.stat.csv")
  failed=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++) h[$i]=i} END{print $h["FailedCall(C)"]}' "$WORK/$name.stat.csv")
  if [ "$rc" -ne 0 ]; then
    echo "  $name: sipp exit $rc ($failed failed); see $WORK/$name.errors" >&2
    echo "  (rerun with KEEP=1 to keep the logs)" >&2
  fi
  python3 -c "import sys; ok,ms=int(sys.argv[1]),int(sys.argv[2]); print(f'{ok/(ms/1000):.0f} {ok} {sys.argv[3]} {ms/1000:.2f}')" \
    "${ok:-0}" "$((t1 - t0))" "${failed:-0}"
}

# REPEAT sipp runs; sets MEDIAN (registrations/s) and FAILED (total failed calls).
bench() { # name target users.csv
  local name=$1 target=$2 csv=$3 r rate ok failed secs rates=()
  FAILED=0
  for ((r = 1; r <= REPEAT; r++)); do
    read -r rate ok failed secs < <(run_sipp "$name-$r" "$target" "$csv")
    local rss=""
    [ -n "${WATCH_PID:-}" ] && rss=", RSS $(awk '/^VmRSS:/{print $2}' "/proc/$WATCH_PID/status") kB"
    echo "  $name run $r: $ok ok, $failed failed in ${secs}s => $rate registrations/s$rss" >&2
    rates+=("$rate")
    FAILED=$((FAILED + failed))
  done
  MEDIAN=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
}

# Prefixes every line of stdin with the arrival time in ms.
stamp_lines() { local line; while IFS= read -r line; do echo "$(now_ms) $line"; done; }

kam_rate=""
if [ "$ONLY" != pbxd ]; then
  command -v kamailio >/dev/null || PATH=$PATH:/usr/sbin
  command -v kamailio >/dev/null || die "kamailio not found (apt-get install kamailio)"
  KPORT=$(free_port)
  mkdir -p "$WORK/kamailio"
  kamailio -f "$ROOT/tests/bench/kamailio.cfg" -DD -E -l "udp:127.0.0.1:$KPORT" -l "tcp:127.0.0.1:$KPORT" \
    -n "$KAM_CHILDREN" -Y "$WORK/kamailio" -w "$WORK/kamailio" -m 256 -M 16 \
    > "$WORK/kamailio/log" 2>&1 &
  KPID=$!
  PIDS+=("$KPID")
  for _ in $(seq 200); do
    ss -lnu | grep -q "127.0.0.1:$KPORT " && break
    kill -0 "$KPID" 2>/dev/null || { cat "$WORK/kamailio/log"; die "kamailio exited"; }
    sleep 0.05
  done
  make_users password "$WORK/kam-users.csv"
  sleep 1
  echo "kamailio $(kamailio -v | awk '/^version/{print $3}'): $N registrations, $KAM_CHILDREN UDP workers, 127.0.0.1:$KPORT" >&2
  bench kamailio "127.0.0.1:$KPORT" "$WORK/kam-users.csv"
  kam_rate=$MEDIAN kam_failed=$FAILED
  kill -TERM "$KPID"; wait "$KPID" 2>/dev/null || true
fi

pbx_rate=""
if [ "$ONLY" != kamailio ]; then
  PBXD=${PBXD_BIN:-$ROOT/target/release/pbxd}
  PBXCTL=${PBXCTL_BIN:-$ROOT/target/release/pbxctl}
  if [ ! -x "$PBXD" ] || [ ! -x "$PBXCTL" ]; then
    echo "building release pbxd and pbxctl..." >&2
    (cd "$ROOT" && CARGO_TARGET_DIR="$ROOT/target" cargo build --release -p pbxd --bins) >&2
  fi
  DATA="$WORK/pbx-data"
  mkdir -p "$DATA"
  t0=$(now_ms)
  # The first add creates the database; the rest run 4 at a time (SQLite serialises writers).
  "$PBXCTL" --data-dir "$DATA" extension add "$FIRST_USER" --password "pw-$FIRST_USER" > /dev/null 2>&1
  seq $((FIRST_USER + 1)) $((FIRST_USER + N - 1)) |
    xargs -P 4 -I{} "$PBXCTL" --data-dir "$DATA" extension add {} --password pw-{} > /dev/null
  echo "provisioned $N extensions with pbxctl in $(( $(now_ms) - t0 )) ms" >&2
  make_users per-user "$WORK/pbx-users.csv"

  PPORT=$(free_port)
  HPORT=$(free_port)
  t_spawn=$(now_ms)
  # shellcheck disable=SC2086 # PBXD_ARGS is a list of words
  "$PBXD" --data-dir "$DATA" --sip-listen "127.0.0.1:$PPORT" --http-listen "127.0.0.1:$HPORT" \
    $PBXD_ARGS > >(stamp_lines > "$WORK/pbxd.log") 2>&1 &
  PPID_=$!
  PIDS+=("$PPID_")
  t_ready=""
  for _ in $(seq 400); do
    if line=$(grep -m1 'ready: sip=' "$WORK/pbxd.log" 2>/dev/null); then
      t_ready=${line%% *}
      break
    fi
    kill -0 "$PPID_" 2>/dev/null || { cat "$WORK/pbxd.log"; die "pbxd exited"; }
    sleep 0.025
  done
  [ -n "$t_ready" ] || { cat "$WORK/pbxd.log"; die "pbxd printed no ready line in 10 s"; }
  ready_ms=$((t_ready - t_spawn))
  sleep 1
  idle_kb=$(awk '/^VmRSS:/{print $2}' "/proc/$PPID_/status")
  echo "pbxd: ready in ${ready_ms} ms, idle RSS ${idle_kb} kB, 127.0.0.1:$PPORT" >&2
  WATCH_PID=$PPID_ bench pbxd "127.0.0.1:$PPORT" "$WORK/pbx-users.csv"
  pbx_rate=$MEDIAN pbx_failed=$FAILED
  peak_kb=$(awk '/^VmHWM:/{print $2}' "/proc/$PPID_/status")
  kill -TERM "$PPID_"
  wait "$PPID_" 2>/dev/null || true
fi

echo
echo "=== REGISTER benchmark: $N users x $REPEAT runs (median), digest auth (401 + authenticated REGISTER), UDP, loopback, $(nproc) cores"
[ -n "$kam_rate" ] && printf '%-28s %8s registrations/s  (%s REGISTER requests/s)\n' "kamailio 5.6:" "$kam_rate" "$((kam_rate * 2))"
if [ -n "$pbx_rate" ]; then
  printf '%-28s %8s registrations/s  (%s REGISTER requests/s)\n' "pbxd:" "$pbx_rate" "$((pbx_rate * 2))"
  [ -n "$kam_rate" ] && python3 -c "import sys; print(f'ratio pbxd/kamailio:         {int(sys.argv[1])/max(int(sys.argv[2]),1):.2f}')" "$pbx_rate" "$kam_rate"
  echo "pbxd time-to-ready:          ${ready_ms} ms"
  echo "pbxd idle RSS:               ${idle_kb} kB"
  echo "pbxd peak RSS (VmHWM):       ${peak_kb} kB"
  [ "${pbx_failed:-0}" = 0 ] || { echo "pbxd: $pbx_failed registrations FAILED"; exit 1; }
fi
[ "${kam_failed:-0}" = 0 ] || { echo "kamailio: $kam_failed registrations FAILED"; exit 1; }
