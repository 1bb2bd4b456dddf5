#!/usr/bin/env bash
# Call-setup benchmark: sipp callers -> server -> sipp callees, INVITE...BYE without media,
# digest auth on every INVITE (407, ACK, INVITE with Proxy-Authorization) and on the
# REGISTERs. The server is Kamailio 5.6 as a transaction-stateful proxy with its registrar
# (tests/bench/kamailio-calls.cfg) and pbxd's B2BUA, on the same machine in the same run.
# For each server it steps the call rate up (RATES) and reports the highest rate at which
# every call succeeded, then the ratio pbxd/kamailio (issue 3's goal: >= 0.5).
#
# Usage: tests/bench/calls.sh            benchmark (needs sipp, kamailio, python3)
#        tests/bench/calls.sh --check    run the call scenarios of tests/sipp against
#                                        Kamailio (a known-good peer) instead, and exit
# Environment:
#   RATES="200 300 400 500 600 800 1000 1200 1600 2000 2400 3200"  call rates (calls/s)
#                     to try, in order; stops at the first one with a failed call
#   SECONDS_PER_STEP=5  calls per step = rate x this (sipp -m), so every step is bounded
#   PAIRS=50          caller/callee pairs: caller 2xxxx always calls callee 3xxxx, so no
#                     phone has two calls at once unless calls pile up
#   SETTLE=40         seconds to wait after pbxd's last step before reading its RSS again
#   ONLY=kamailio|pbxd  run one side only
#   KAM_CHILDREN=N    Kamailio UDP worker processes (default: the machine's cores)
#   PBXD_BIN, PBXCTL_BIN  default: <workspace>/target/release/{pbxd,pbxctl}, built if missing
#   PBXD_ARGS="--sip-rate-limit 0"  extra pbxd arguments (its per-address rate limit would
#                     otherwise throttle a benchmark that sends everything from 127.0.0.1)
#   KEEP=1            keep the work directory (sipp error logs, server logs)
# Exit status: 0 when both halves ran (and --check passed), 1 otherwise; a server that
# fails its first single test call is reported as such and its half is skipped.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SIPP_DIR="$ROOT/tests/sipp"
RATES=${RATES:-200 300 400 500 600 800 1000 1200 1600 2000 2400 3200}
SECONDS_PER_STEP=${SECONDS_PER_STEP:-5}
PAIRS=${PAIRS:-50}
SETTLE=${SETTLE:-40}
ONLY=${ONLY:-}
KAM_CHILDREN=${KAM_CHILDREN:-$(nproc)}
PBXD_ARGS=${PBXD_ARGS---sip-rate-limit 0}
FIRST_CALLER=20000
FIRST_CALLEE=30000
MODE=bench
case "${1:-}" in
  --check) MODE=check ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

die() { echo "calls.sh: $*" >&2; exit 1; }
command -v kamailio >/dev/null || PATH=$PATH:/usr/sbin
for tool in sipp python3 ss; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install sip-tester python3 iproute2)"
done

WORK=$(mktemp -d /tmp/pbx-calls.XXXXXX)
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


# CPU seconds (user+system) used so far by a process and its direct children (Kamailio's
# workers are children of the main process).
cpu_ticks() { # pid
  local pids p total=0
  pids="$1 $(ps -o pid= --ppid "$1" 2>/dev/null | tr '\n' ' ')"
  for p in $pids; do
    [ -r "/proc/$p/stat" ] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}
TICKS=$(getconf CLK_TCK)
# Resident memory of one process, kB (Kamailio's is its main process only: its workers
# share preallocated memory, so its figure says little).
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo "?"; }
per_call_ms() { # ticks_before ticks_after calls
  python3 -c "import sys; a,b,t,n=map(int,sys.argv[1:]); print(f'{(b-a)*1000/t/max(n,1):.3f}')" "$1" "$2" "$TICKS" "$3"
}

start_kamailio() { # name [extra kamailio args...]; sets KPID, KPORT
  local name=$1
  shift
  KPORT=$(free_port)
  mkdir -p "$WORK/$name"
  kamailio -f "$ROOT/tests/bench/kamailio-calls.cfg" -DD -E -l "udp:127.0.0.1:$KPORT" \
    -n "$KAM_CHILDREN" -Y "$WORK/$name" -w "$WORK/$name" -m 256 -M 16 "$@" \
    > "$WORK/$name/log" 2>&1 &
  KPID=$!
  PIDS+=("$KPID")
  for _ in $(seq 200); do
    ss -lnu | grep -q "127.0.0.1:$KPORT " && return 0
    kill -0 "$KPID" 2>/dev/null || { cat "$WORK/$name/log" >&2; die "kamailio exited"; }
    sleep 0.05
  done
  die "kamailio did not listen on 127.0.0.1:$KPORT within 10 s"
}

stop() { # pid
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------
# --check: every caller/callee scenario pair against Kamailio, with the outcome expected.
# ---------------------------------------------------------------------------------------
if [ "$MODE" = check ]; then
  command -v kamailio >/dev/null || die "kamailio not found (apt-get install kamailio)"
  start_kamailio kam-check -A RING_MS=2000
  printf 'SEQUENTIAL\n1002;[authentication username=1002 password=s3cret-1002]\n' > "$WORK/callee.csv"
  printf 'SEQUENTIAL\n1001;[authentication username=1001 password=s3cret-1001]\n' > "$WORK/caller.csv"
  cat "$WORK/caller.csv" <(tail -n +2 "$WORK/callee.csv") > "$WORK/both.csv"
  failures=0
  n=0
  cat > "$WORK/unregister.xml" <<'EOF'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="unregister all">
  <send retrans="500"><![CDATA[

      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
      Max-Forwards: 70
      From: <sip:[field0]@pbx.local>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field0]@pbx.local>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: *
      Expires: 0
      Content-Length: 0

  ]]></send>
  <recv response="401" auth="true"/>
  <send retrans="500"><![CDATA[

      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
      Max-Forwards: 70
      From: <sip:[field0]@pbx.local>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field0]@pbx.local>
      Call-ID: [call_id]
      CSeq: 2 REGISTER
      Contact: *
      [field1]
      Expires: 0
      Content-Length: 0

  ]]></send>
  <recv response="200"/>
</scenario>
EOF
  # pair EXPECT(pass|fail) CALLEE_OOC_SCENARIO|none CALLER_SCENARIO [caller sipp args...]
  pair() {
    local want=$1 uas=$2 uac=$3 dir uas_pid="" uac_rc=0 uas_rc=0 lport cport verdict t0=$SECONDS
    shift 3
    n=$((n + 1))
    dir="$WORK/check-$n"
    mkdir -p "$dir"
    if [ "$uas" != none ]; then
      cport=$(free_port)
      timeout 150 sipp -sf "$SIPP_DIR/call_callee.xml" -oocsf "$SIPP_DIR/$uas" -inf "$WORK/callee.csv" \
        -m 1 -t u1 -i 127.0.0.1 -p "$cport" -nostdin -trace_msg -message_file "$dir/callee.msg" \
        -trace_err -error_file "$dir/callee.err" "127.0.0.1:$KPORT" > "$dir/callee.out" 2>&1 &
      uas_pid=$!
      # Registered when its 200 for the REGISTER has come in.
      for _ in $(seq 100); do
        grep -q '^SIP/2.0 200' "$dir/callee.msg" 2>/dev/null && break
        sleep 0.05
      done
    fi
    lport=$(free_port)
    timeout 60 sipp -sf "$SIPP_DIR/$uac" -inf "$WORK/caller.csv" -m 1 -t u1 -i 127.0.0.1 -p "$lport" \
      -nostdin -trace_msg -message_file "$dir/caller.msg" -trace_err -error_file "$dir/caller.err" \
      "$@" "127.0.0.1:$KPORT" > "$dir/caller.out" 2>&1 || uac_rc=$?
    if [ -n "$uas_pid" ]; then wait "$uas_pid" || uas_rc=$?; fi
    if [ "$uac_rc" -eq 0 ] && [ "$uas_rc" -eq 0 ]; then
      verdict=pass
    elif grep -q '^Proxy-Authorization:' "$dir/caller.msg" 2>/dev/null; then
      verdict=fail
    else
      # Failed before its authenticated INVITE (registration, challenge): not the failure
      # a negative check is about.
      verdict="fail-before-the-call"
    fi
    if [ "$verdict" = "$want" ]; then
      printf 'ok    %-26s + %-21s %-34s expected %s (%s s)\n' "$uas" "$uac" "$*" "$want" $((SECONDS - t0))
    else
      printf 'WRONG %-26s + %-21s %-34s expected %s, caller rc %s, callee rc %s (%s)\n' \
        "$uas" "$uac" "$*" "$want" "$uac_rc" "$uas_rc" "$dir"
      failures=$((failures + 1))
    fi
    # Every run registers 1001 and 1002 from new ports: remove the bindings again, so later
    # calls are not forked to a sipp that has exited (and Kamailio's 10 contacts per AOR
    # are never reached).
    timeout 15 sipp -sf "$WORK/unregister.xml" -inf "$WORK/both.csv" -m 2 -t u1 -i 127.0.0.1 \
      -p "$(free_port)" -nostdin "127.0.0.1:$KPORT" > /dev/null 2>&1 || echo "  (unregister failed)" >&2
  }
  echo "kamailio $(kamailio -v | awk '/^version/{print $3}') on 127.0.0.1:$KPORT, ring timeout 2 s"
  pair pass call_uas.xml call_uac.xml -key callee 1002 -d 500
  pair pass call_uas_bye.xml call_uac_hungup.xml -key callee 1002
  pair pass call_uas_ring_cancel.xml call_uac_cancel.xml -key callee 1002
  pair pass call_uas_busy.xml call_uac_expect.xml -key callee 1002 -set expect 486
  pair pass call_uas_ring_cancel.xml call_uac_expect.xml -key callee 1002 -set expect 408
  pair pass none call_uac_expect.xml -key callee 9999 -set expect 404
  pair pass none call_uac_expect.xml -key callee 1003 -set expect 480
  pair pass none call_uac_expect.xml -key callee 100 -set expect 484
  pair pass none call_uac_expect.xml -key callee 0900123456 -set expect 403
  # The checks can fail: wrong status expected, a callee that answers what the caller
  # cancels, a busy callee for a caller that wants an answer.
  pair fail none call_uac_expect.xml -key callee 0900123456 -set expect 404
  pair fail call_uas.xml call_uac_cancel.xml -key callee 1002
  pair fail call_uas_busy.xml call_uac.xml -key callee 1002
  pair fail call_uas.xml call_uac_expect.xml -key callee 1002 -set expect 486
  # The benchmark's own scenarios, one call.
  printf 'SEQUENTIAL\n1001;[authentication username=1001 password=s3cret-1001];1002\n' > "$WORK/caller.csv"
  n=$((n + 1)); dir="$WORK/check-$n"; mkdir -p "$dir"
  cport=$(free_port)
  timeout 30 sipp -sf "$SIPP_DIR/call_bench_callee.xml" -oocsf "$SIPP_DIR/call_bench_uas.xml" \
    -inf "$WORK/callee.csv" -m 1 -d 20000 -t u1 -i 127.0.0.1 -p "$cport" -nostdin \
    -trace_logs -log_file "$dir/callee.log" "127.0.0.1:$KPORT" > "$dir/callee.out" 2>&1 &
  bench_uas=$!
  for _ in $(seq 100); do grep -q registered "$dir/callee.log" 2>/dev/null && break; sleep 0.05; done
  if timeout 30 sipp -sf "$SIPP_DIR/call_bench_uac.xml" -inf "$WORK/caller.csv" -m 20 -r 10 -t u1 \
      -i 127.0.0.1 -p "$(free_port)" -nostdin -trace_err -error_file "$dir/caller.err" \
      "127.0.0.1:$KPORT" > "$dir/caller.out" 2>&1; then
    echo "ok    call_bench_callee.xml/call_bench_uas.xml + call_bench_uac.xml: 20 calls"
  else
    echo "WRONG call_bench_uac.xml: 20 calls did not all succeed ($dir)"
    failures=$((failures + 1))
  fi
  stop "$bench_uas"
  stop "$KPID"
  [ "$failures" -eq 0 ] || { echo "$failures scenario check(s) went wrong"; exit 1; }
  echo "all scenario checks went as expected"
  exit 0
fi

# ---------------------------------------------------------------------------------------
# Benchmark.
# ---------------------------------------------------------------------------------------
# Injection files: callers call their own callee; passwords as in kamailio-calls.cfg.
{
  echo SEQUENTIAL
  for ((i = 0; i < PAIRS; i++)); do
    c=$((FIRST_CALLER + i)) e=$((FIRST_CALLEE + i))
    echo "$c;[authentication username=$c password=s3cret-$c];$e"
  done
} > "$WORK/calls.csv"
{
  echo SEQUENTIAL
  for ((i = 0; i < PAIRS; i++)); do
    e=$((FIRST_CALLEE + i))
    echo "$e;[authentication username=$e password=s3cret-$e]"
  done
} > "$WORK/callees.csv"

# Registers the callees (one sipp that stays up and answers the calls) and the callers.
# Sets UAS_PID. Fails (returns 1) with a message if they do not all register in 20 s.
start_phones() { # name target
  local name=$1 target=$2 uport registered=0
  uport=$(free_port)
  # -d: the callees stay registered and answering for up to an hour (killed at the end).
  sipp -sf "$SIPP_DIR/call_bench_callee.xml" -oocsf "$SIPP_DIR/call_bench_uas.xml" \
    -inf "$WORK/callees.csv" -m "$PAIRS" -r 200 -d 3600000 -t u1 -i 127.0.0.1 -p "$uport" \
    -nostdin -trace_logs -log_file "$WORK/$name.callees.log" \
    "$target" > "$WORK/$name.callees.out" 2>&1 &
  UAS_PID=$!
  PIDS+=("$UAS_PID")
  for _ in $(seq 200); do
    registered=$(grep -c '^registered' "$WORK/$name.callees.log" 2>/dev/null || true)
    [ "${registered:-0}" -ge "$PAIRS" ] && break
    kill -0 "$UAS_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ "${registered:-0}" -lt "$PAIRS" ]; then
    echo "  $name: only ${registered:-0} of $PAIRS callees registered; see $WORK/$name.callees.out" >&2
    return 1
  fi
  # The callers register too (a PBX may want its callers registered; harmless otherwise).
  awk -F';' 'NR==1{print; next} {print $1";"$2}' "$WORK/calls.csv" > "$WORK/callers.csv"
  if ! timeout 60 sipp -sf "$SIPP_DIR/register.xml" -inf "$WORK/callers.csv" -m "$PAIRS" -r 200 \
      -t u1 -i 127.0.0.1 -p "$(free_port)" -nostdin -trace_err \
      -error_file "$WORK/$name.callers.errors" "$target" > "$WORK/$name.callers.out" 2>&1; then
    echo "  $name: the callers did not all register; see $WORK/$name.callers.*" >&2
    return 1
  fi
}

# Prints "<ok> <failed> <seconds>" from a sipp statistics file (its last line): seconds
# between sipp's own start and end times, so the rate excludes sipp's start-up.
sipp_stats() { # stat.csv
  python3 -c '
import sys
try:
    lines = open(sys.argv[1]).read().splitlines()
    h, last = lines[0].split(";"), lines[-1].split(";")
    col = lambda n: last[h.index(n)]
    secs = float(col("CurrentTime").split()[-1]) - float(col("StartTime").split()[-1])
    print(int(col("SuccessfulCall(C)")), int(col("FailedCall(C)")), f"{secs:.3f}")
except (OSError, IndexError, ValueError):
    print("0 0 0")
' "$1"
}

# One sipp run of CALLS calls at RATE; prints "<ok> <failed> <seconds> <achieved cps>".
run_calls() { # name target rate calls
  local name=$1 target=$2 rate=$3 calls=$4 rc=0 ok failed secs limit
  limit=$((SECONDS_PER_STEP * 3 + 30))
  timeout "$limit" sipp -sf "$SIPP_DIR/call_bench_uac.xml" -inf "$WORK/calls.csv" -m "$calls" \
    -r "$rate" -t u1 -i 127.0.0.1 -p "$(free_port)" -nostdin -trace_err \
    -error_file "$WORK/$name.errors" -trace_stat -stf "$WORK/$name.stat.csv" -fd 3600 \
    "$target" > "$WORK/$name.sipp.out" 2>&1 || rc=$?
  read -r ok failed secs < <(sipp_stats "$WORK/$name.stat.csv")
  # Calls that never ended (sipp killed by the timeout) count as failed, and so does a
  # sipp that exits with an error but no failed call.
  [ $((ok + failed)) -lt "$calls" ] && failed=$((calls - ok))
  [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
  python3 -c "import sys; ok,s=int(sys.argv[1]),float(sys.argv[2]); print(f'{ok} {sys.argv[3]} {s:.2f} {ok/s if s > 0 else 0:.0f}')" \
    "$ok" "$secs" "$failed"
}

# Steps through RATES; sets BEST (the highest rate with 0 failed calls that sipp also
# achieved to within 10%, 0 if none) and BEST_CPU (server CPU ms per call at that rate).
# $3 is the server's pid, for the CPU accounting.
bench() { # name target server_pid
  local name=$1 target=$2 spid=$3 rate calls ok failed secs achieved c0 c1 u0 u1 cpu_ms uas_ms
  BEST=0 BEST_CPU=""
  # One call first: a server that cannot complete a single call is not benchmarked.
  read -r ok failed secs achieved < <(run_calls "$name-probe" "$target" 10 1)
  if [ "$ok" -ne 1 ]; then
    echo "  $name: a single test call failed; first errors ($WORK/$name-probe.errors):" >&2
    head -c 1500 "$WORK/$name-probe.errors" 2>/dev/null | sed 's/^/    /' >&2 || true
    echo >&2
    return 1
  fi
  for rate in $RATES; do
    calls=$((rate * SECONDS_PER_STEP))
    c0=$(cpu_ticks "$spid") u0=$(cpu_ticks "$UAS_PID")
    read -r ok failed secs achieved < <(run_calls "$name-$rate" "$target" "$rate" "$calls")
    c1=$(cpu_ticks "$spid") u1=$(cpu_ticks "$UAS_PID")
    cpu_ms=$(per_call_ms "$c0" "$c1" "$ok")
    uas_ms=$(per_call_ms "$u0" "$u1" "$ok")
    echo "  $name at $rate calls/s: $ok ok, $failed failed in ${secs}s (achieved $achieved calls/s)," \
      "CPU per call: server $cpu_ms ms, callee sipp $uas_ms ms; server RSS $(rss_kb "$spid") kB" >&2
    if [ "$failed" -ne 0 ]; then
      echo "    first errors: $WORK/$name-$rate.errors" >&2
      break
    fi
    # Calls that queue up in sipp also end without failure: a step only counts when the
    # calls went through at (nearly) the rate asked for.
    if [ $((achieved * 10)) -lt $((rate * 9)) ]; then
      echo "    below 90% of the rate asked for: stop" >&2
      break
    fi
    BEST=$rate BEST_CPU=$cpu_ms
    sleep 1
  done
}

kam_best="" pbx_best="" status=0 PBXD=""
if [ "$ONLY" != pbxd ]; then
  command -v kamailio >/dev/null || die "kamailio not found (apt-get install kamailio)"
  start_kamailio kamailio
  echo "kamailio $(kamailio -v | awk '/^version/{print $3}'): $KAM_CHILDREN UDP workers, 127.0.0.1:$KPORT" >&2
  if start_phones kamailio "127.0.0.1:$KPORT" && bench kamailio "127.0.0.1:$KPORT" "$KPID"; then
    kam_best=$BEST kam_cpu=$BEST_CPU
  else
    status=1
  fi
  stop "$UAS_PID"
  stop "$KPID"
fi

if [ "$ONLY" != kamailio ]; then
  PBXD=${PBXD_BIN:-$ROOT/target/release/pbxd}
  PBXCTL=${PBXCTL_BIN:-$ROOT/target/release/pbxctl}
  if [ ! -x "$PBXD" ] || [ ! -x "$PBXCTL" ]; then
    echo "building release pbxd and pbxctl..." >&2
    if ! (cd "$ROOT" && CARGO_TARGET_DIR="$ROOT/target" cargo build --release -p pbxd --bins) >&2; then
      echo "  pbxd: the release build failed; its half is skipped" >&2
      PBXD=""
      status=1
    fi
  fi
fi
if [ "$ONLY" != kamailio ] && [ -n "$PBXD" ]; then
  DATA="$WORK/pbx-data"
  mkdir -p "$DATA"
  "$PBXCTL" --data-dir "$DATA" extension add "$FIRST_CALLER" --password "s3cret-$FIRST_CALLER" > /dev/null 2>&1
  { seq $((FIRST_CALLER + 1)) $((FIRST_CALLER + PAIRS - 1)); seq "$FIRST_CALLEE" $((FIRST_CALLEE + PAIRS - 1)); } |
    xargs -P 4 -I{} "$PBXCTL" --data-dir "$DATA" extension add {} --password s3cret-{} > /dev/null
  PPORT=$(free_port)
  HPORT=$(free_port)
  # shellcheck disable=SC2086 # PBXD_ARGS is a list of words
  "$PBXD" --data-dir "$DATA" --sip-listen "127.0.0.1:$PPORT" --http-listen "127.0.0.1:$HPORT" \
    $PBXD_ARGS > "$WORK/pbxd.log" 2>&1 &
  PBXD_PID=$!
  PIDS+=("$PBXD_PID")
  ready=""
  for _ in $(seq 400); do
    grep -q 'ready: sip=' "$WORK/pbxd.log" 2>/dev/null && { ready=1; break; }
    kill -0 "$PBXD_PID" 2>/dev/null || break
    sleep 0.025
  done
  if [ -z "$ready" ]; then
    tail -20 "$WORK/pbxd.log" >&2
    echo "  pbxd: not ready (see above)" >&2
    status=1
  else
    sleep 1
    pbx_idle=$(rss_kb "$PBXD_PID")
    echo "pbxd: 127.0.0.1:$PPORT ($PBXD_ARGS), idle RSS $pbx_idle kB" >&2
    if start_phones pbxd "127.0.0.1:$PPORT" && bench pbxd "127.0.0.1:$PPORT" "$PBXD_PID"; then
      pbx_best=$BEST pbx_cpu=$BEST_CPU
      pbx_rss=$(awk '/^VmHWM:/{print $2}' "/proc/$PBXD_PID/status")
      # Transactions linger up to 32 s (RFC 3261 Timer D/J) after a call: what is still
      # held after that is per-call memory that was not given back.
      echo "  pbxd: RSS $(rss_kb "$PBXD_PID") kB at the end; waiting ${SETTLE}s..." >&2
      sleep "$SETTLE"
      pbx_settled=$(rss_kb "$PBXD_PID")
      pbx_left=$(python3 -c "import json, urllib.request as u; print(json.load(u.urlopen('http://127.0.0.1:$HPORT/api/v1/health', timeout=5)).get('calls', '?'))" 2>/dev/null || echo "?")
      # The same load again: memory that is reused does not grow; a leak does.
      first_rate=${RATES%% *}
      read -r again_ok again_failed _ _ < <(run_calls pbxd-again "127.0.0.1:$PPORT" "$first_rate" $((first_rate * SECONDS_PER_STEP)))
      pbx_again=$(rss_kb "$PBXD_PID")
    else
      echo "  pbxd: benchmark not run: pbxd could not complete a call (is the B2BUA of issue 3 in?)" >&2
      echo "  pbxd log tail:" >&2
      tail -15 "$WORK/pbxd.log" | sed 's/^/    /' >&2
      status=1
    fi
    stop "${UAS_PID:-}"
    stop "$PBXD_PID"
  fi
fi

echo
echo "=== call-setup benchmark: INVITE (407, auth) ... 200/ACK ... BYE, no media, UDP, loopback, $(nproc) cores"
echo "    rates tried: $RATES calls/s, $SECONDS_PER_STEP s each, $PAIRS caller/callee pairs"
if [ -n "$kam_best" ]; then
  printf '%-34s %8s calls/s with 0 failed  (kamailio CPU %s ms/call)\n' "kamailio 5.6 (tm + rr, registrar):" "$kam_best" "$kam_cpu"
elif [ "$ONLY" != pbxd ]; then
  echo "kamailio: no result"
fi
if [ -n "$pbx_best" ]; then
  printf '%-34s %8s calls/s with 0 failed  (pbxd CPU %s ms/call)\n' "pbxd (B2BUA):" "$pbx_best" "$pbx_cpu"
  echo "pbxd RSS: idle $pbx_idle kB, peak (VmHWM) $pbx_rss kB, ${SETTLE} s after the last call $pbx_settled kB" \
    "(calls in progress then: $pbx_left), after $again_ok more calls ($again_failed failed) $pbx_again kB"
  if [ -n "$kam_best" ]; then
    python3 -c "import sys; k=int(sys.argv[2]); print(f'ratio pbxd/kamailio:               {int(sys.argv[1])/k:.2f}' if k else 'ratio: n/a')" "$pbx_best" "$kam_best"
  fi
elif [ "$ONLY" != kamailio ]; then
  echo "pbxd: no result (see above)"
fi
exit "$status"
