#!/usr/bin/env python3
"""RTP probe for the media relay benchmark (tests/bench/media.sh).

`run`: plays both phones of N calls. It binds the phones' media ports (127.0.0.1, the ports
the sipp scenarios media_uac.xml / media_uas.xml put in their SDP), waits until the sipp logs
name the relay address each phone was given, then sends G.711 A-law 20 ms RTP (50 packets/s,
160-byte payload) in both directions of every call and receives what the relay forwards.
Every payload carries (stream, sequence, send time); the receive time is the kernel's
SO_TIMESTAMPNS stamp of the packet reaching the phone's socket, on the same clock
(CLOCK_REALTIME) as the send time taken just before sendto(). So the measured delay is the
relay's (wake-up, processing, its own sendto) plus one loopback send, and the probe's own
scheduling does not count; `--direct` measures the same path without a relay (each phone
sends straight to the other), which is the baseline subtracted as "added" latency.
Over the measurement window it reads the CPU time (utime+stime, /proc/PID/stat) of the given
processes, so CPU is taken over exactly the window the packets are counted in.

`report`: reads the JSON lines of `run` and prints the table of medians and the ratios.
"""

import argparse
import json
import os
import select
import socket
import statistics
import struct
import sys
import time

PTIME_NS = 20_000_000
PAYLOAD = 160  # G.711, 20 ms at 8 kHz
MAGIC = 0x50425852  # "PBXR": marks the probe's own payloads
HDR = struct.Struct("!BBHII")  # RTP: V/P/X/CC, M/PT, sequence, timestamp, SSRC
BODY = struct.Struct("!IIIq")  # magic, stream, sequence, send time (ns, CLOCK_REALTIME)
FILL = b"\xd5" * (PAYLOAD - BODY.size)  # A-law silence
TICKS = os.sysconf("SC_CLK_TCK")
# Python's socket module lacks the constant; 35 is SO_TIMESTAMPNS (= SCM_TIMESTAMPNS) in
# Linux's asm-generic socket.h (x86, arm, ...). Its cmsg is a struct timespec (two longs).
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
TIMESPEC = struct.Struct("@ll")


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                # Fields after the command name (which may contain spaces).
                rest = f.read().rsplit(")", 1)[1].split()
            total += int(rest[11]) + int(rest[12])  # utime, stime (fields 14, 15)
        except (OSError, IndexError, ValueError):
            pass
    return total / TICKS


def parse_cpu_args(items):
    groups = {}
    for item in items or []:
        name, _, pids = item.partition("=")
        groups[name] = [int(p) for p in pids.split(",") if p]
    return groups


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def log_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def wait_for_logs(caller_log, callee_log, calls, timeout, offsets):
    """Returns {caller port: (callee port, relay addr for the caller, relay addr for the callee)}.

    Reads each log from its offset: the callee sipp stays up across runs, so its log holds
    the relay addresses of earlier calls too."""
    deadline = time.monotonic() + timeout
    callers, callees = {}, {}
    while time.monotonic() < deadline:
        callers.clear()
        callees.clear()
        for path, into in ((caller_log, callers), (callee_log, callees)):
            try:
                with open(path, errors="replace") as f:
                    f.seek(offsets.get(path, 0))
                    for line in f:
                        w = line.split()
                        # sipp prefixes log lines with nothing; be lenient anyway.
                        if "caller" in w and into is callers:
                            w = w[w.index("caller") :]
                            if len(w) >= 6:
                                into[int(w[3])] = (int(w[2]), (w[4], int(w[5])))
                        elif "callee" in w and into is callees:
                            w = w[w.index("callee") :]
                            if len(w) >= 4:
                                into[int(w[1])] = (w[2], int(w[3]))
            except (OSError, ValueError):
                pass
        pairs = {
            cp: (ce, raddr, callees[ce])
            for cp, (ce, raddr) in callers.items()
            if ce in callees
        }
        if len(pairs) >= calls:
            return pairs
        time.sleep(0.05)
    sys.exit(
        f"rtp_probe: only {len(callers)} callers / {len(callees)} callees got their relay "
        f"address within {timeout}s (expected {calls})"
    )


def open_socket(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(("127.0.0.1", port))
    s.setblocking(False)
    return s


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def run(args):
    cpu_groups = parse_cpu_args(args.cpu)
    rss_groups = parse_cpu_args(args.rss)
    rss = {}
    caller_ports = [args.caller_base + i for i in range(args.calls)]
    callee_ports = [args.callee_base + i for i in range(args.calls)]
    offsets = {args.callee_log: log_size(args.callee_log)} if args.callee_log else {}
    socks = {p: open_socket(p) for p in caller_ports + callee_ports}
    if args.ready:
        open(args.ready, "w").close()

    # streams[k] = (socket, destination); stream 2i: caller i -> callee i, 2i+1 the reverse.
    streams = []
    if args.direct:
        for cp, ce in zip(caller_ports, callee_ports):
            streams.append((socks[cp], ("127.0.0.1", ce)))
            streams.append((socks[ce], ("127.0.0.1", cp)))
    else:
        pairs = wait_for_logs(args.caller_log, args.callee_log, args.calls, args.wait, offsets)
        for cp in caller_ports:
            if cp not in pairs:
                sys.exit(f"rtp_probe: no call for caller media port {cp}")
            ce, relay_for_caller, relay_for_callee = pairs[cp]
            if ce not in socks:
                sys.exit(f"rtp_probe: callee port {ce} is not one of ours")
            streams.append((socks[cp], relay_for_caller))
            streams.append((socks[ce], relay_for_callee))
    # Which stream a socket should receive: the other direction of its call.
    expect_on = {}
    for k, (s, _) in enumerate(streams):
        expect_on[s.fileno()] = k ^ 1

    n = len(streams)
    ep = select.epoll()
    by_fd = {}
    for s in socks.values():
        ep.register(s.fileno(), select.EPOLLIN)
        by_fd[s.fileno()] = s
    ssrc = [0x10000000 + k for k in range(n)]
    seq = [0] * n
    sent_in_window = [0] * n
    received = [0] * n
    delays = []
    misrouted = foreign = dup_or_late = send_errors = 0
    seen = [set() for _ in range(n)]
    cmsg_space = socket.CMSG_SPACE(TIMESPEC.size)
    dump = [] if args.dump else None

    step = PTIME_NS / n  # spread the streams' packets over the 20 ms
    t0 = time.monotonic_ns() + 50_000_000
    win_start = t0 + int(args.warmup * 1e9)
    win_end = win_start + int(args.measure * 1e9)
    stop_send = win_end
    drain_end = win_end + int(args.drain * 1e9)
    # Window bounds in CLOCK_REALTIME, for classifying packets by their send time.
    rt_off = time.time_ns() - time.monotonic_ns()
    rt_win_start, rt_win_end = win_start + rt_off, win_end + rt_off
    cpu0 = cpu1 = None
    own0 = own1 = None
    slot = 0  # packets sent so far, over all streams

    def drain(timeout):
        nonlocal misrouted, foreign, dup_or_late
        for fd, _ in ep.poll(timeout):
            s = by_fd[fd]
            while True:
                try:
                    data, anc, _, _ = s.recvmsg(2048, cmsg_space)
                except BlockingIOError:
                    break
                except OSError:
                    break
                rx = None
                for level, typ, cdata in anc:
                    if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                        sec, nsec = TIMESPEC.unpack(cdata[: TIMESPEC.size])
                        rx = sec * 1_000_000_000 + nsec
                if len(data) < HDR.size + BODY.size:
                    foreign += 1
                    continue
                magic, k, sq, tx = BODY.unpack_from(data, HDR.size)
                if magic != MAGIC or k >= n:
                    foreign += 1
                    continue
                if k != expect_on[fd]:
                    misrouted += 1
                    continue
                if not rt_win_start <= tx < rt_win_end:
                    continue  # warm-up or after the window
                if sq in seen[k]:
                    dup_or_late += 1
                    continue
                seen[k].add(sq)
                received[k] += 1
                if rx is not None:
                    delays.append(rx - tx)
                    if dump is not None:
                        dump.append((tx, k, rx - tx))

    while True:
        now = time.monotonic_ns()
        if cpu0 is None and now >= win_start:
            cpu0 = {g: cpu_seconds(p) for g, p in cpu_groups.items()}
            own0 = time.process_time()
        if cpu1 is None and now >= win_end:
            cpu1 = {g: cpu_seconds(p) for g, p in cpu_groups.items()}
            own1 = time.process_time()
            rss = {g: rss_kb(p[0]) for g, p in rss_groups.items()}
        if now >= drain_end:
            break
        # Send every packet that is due.
        while True:
            due = t0 + int(slot * step)
            if due > now or due >= stop_send:
                break
            k = slot % n
            s, dest = streams[k]
            sq = seq[k]
            tx = time.time_ns()
            pkt = (
                HDR.pack(0x80, 8, sq & 0xFFFF, (sq * 160) & 0xFFFFFFFF, ssrc[k])
                + BODY.pack(MAGIC, k, sq, tx)
                + FILL
            )
            try:
                s.sendto(pkt, dest)
                if rt_win_start <= tx < rt_win_end:
                    sent_in_window[k] += 1
            except OSError:
                send_errors += 1
            seq[k] = sq + 1
            slot += 1
        due = t0 + int(slot * step)
        wait_ns = (due if due < stop_send else drain_end) - time.monotonic_ns()
        if args.coarse:
            # epoll_wait counts whole milliseconds (Python rounds up): bursts every 1 ms.
            drain(max(0.0, min(wait_ns, 5_000_000) / 1e9))
        elif wait_ns >= 2_000_000:
            # Stop 1 ms short of the slot, as epoll_wait rounds up to whole milliseconds.
            drain(min(wait_ns - 1_000_000, 5_000_000) / 1e9)
        else:
            # Pace each packet to its own slot rather than in 1 ms bursts; what arrives
            # meanwhile waits in the socket, stamped by the kernel on arrival.
            drain(0)
            wait_ns = due - time.monotonic_ns()
            if wait_ns > 0:
                time.sleep(wait_ns / 1e9)

    sent = sum(sent_in_window)
    got = sum(received)
    delays.sort()
    window = args.measure
    result = {
        "system": args.system,
        "calls": args.calls,
        "streams": n,
        "window_s": window,
        "sent": sent,
        "received": got,
        "lost": sent - got,
        "loss_pct": 100.0 * (sent - got) / sent if sent else None,
        "streams_with_loss": sum(1 for k in range(n) if received[k] < sent_in_window[k]),
        "misrouted": misrouted,
        "foreign": foreign,
        "duplicates": dup_or_late,
        "send_errors": send_errors,
        "delay_p50_us": percentile(delays, 50) / 1000 if delays else None,
        "delay_p99_us": percentile(delays, 99) / 1000 if delays else None,
        "delay_max_us": delays[-1] / 1000 if delays else None,
        # Stalls of the whole machine show up here rather than in p50.
        "over_1ms_pct": 100.0 * sum(1 for d in delays if d > 1_000_000) / len(delays) if delays else None,
        "cpu_s": {g: cpu1[g] - cpu0[g] for g in cpu_groups},
        "probe_cpu_s": own1 - own0,
        "rss_kb": rss,
    }
    if dump:
        with open(args.dump, "w") as f:
            for tx, k, d in sorted(dump):
                f.write(f"{(tx - rt_win_start) / 1e9:.6f} {k} {d / 1000:.1f}\n")
    line = json.dumps(result)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")
    print(line)


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec):
    if v is None:
        width = spec.split(".")[0]
        return "-".rjust(int(width) if width.isdigit() else 0)
    return format(v, spec)


def report(args):
    rows = []
    with open(args.results) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    base = {}
    for r in rows:
        if r["system"] == "direct":
            base.setdefault(r["calls"], []).append(r)
    base = {
        n: (med([r["delay_p50_us"] for r in rs]), med([r["delay_p99_us"] for r in rs]))
        for n, rs in base.items()
    }
    groups = {}
    for r in rows:
        if r["system"] != "direct":
            groups.setdefault((r["system"], r["calls"]), []).append(r)
    print(
        f"{'system':<10} {'calls':>5} {'streams':>7} {'relay CPU%':>10} {'kam CPU%':>8} "
        f"{'CPU/stream':>12} {'us/pkt':>7} {'streams/core':>12} {'loss %':>7} {'lost':>5} "
        f"{'added p50 us':>12} {'added p99 us':>12} {'>1ms %':>6} {'RSS kB':>7} {'reps':>4}"
    )
    summary = {}
    for (system, calls), rs in sorted(groups.items()):
        relay = med([r["cpu_s"].get("relay", 0) / r["window_s"] for r in rs])
        kam = med([r["cpu_s"]["kamailio"] / r["window_s"] for r in rs if "kamailio" in r["cpu_s"]])
        us_pkt = med([r["cpu_s"].get("relay", 0) * 1e6 / r["received"] for r in rs if r["received"]])
        streams = rs[0]["streams"]
        per_core = streams / relay if relay else None
        loss = med([r["loss_pct"] for r in rs])
        lost = med([r["lost"] for r in rs])
        b50, b99 = base.get(calls, (None, None))
        p50 = med([r["delay_p50_us"] for r in rs])
        p99 = med([r["delay_p99_us"] for r in rs])
        a50 = p50 - b50 if p50 is not None and b50 is not None else p50
        a99 = p99 - b99 if p99 is not None and b99 is not None else p99
        rss = med([next(iter(r.get("rss_kb", {}).values()), None) for r in rs])
        over = med([r.get("over_1ms_pct") for r in rs])
        summary[(system, calls)] = (per_core, us_pkt, loss, a50, a99)
        print(
            f"{system:<10} {calls:>5} {streams:>7} {fmt(relay and relay * 100, '10.1f')} "
            f"{fmt(kam and kam * 100, '8.1f') if kam is not None else '       -'} "
            f"{fmt(relay and relay * 1e6 / streams, '7.0f')} us/s {fmt(us_pkt, '7.2f')} {fmt(per_core, '12.0f')} {fmt(loss, '7.3f')} "
            f"{fmt(lost, '5.0f')} {fmt(a50, '12.0f')} {fmt(a99, '12.0f')} {fmt(over, '6.2f')} {fmt(rss, '7.0f')} {len(rs):>4}"
        )
    if base:
        print(
            "baseline (no relay, phone to phone, subtracted above): "
            + ", ".join(f"{n} calls p50 {b[0]:.0f} us p99 {b[1]:.0f} us" for n, b in sorted(base.items()))
        )
    print("ratios pbxd / rtpengine (streams per core: higher is better; us per packet: lower):")
    for calls in sorted({c for (_, c) in summary}):
        p, r = summary.get(("pbxd", calls)), summary.get(("rtpengine", calls))
        if not p or not r:
            continue
        spc = p[0] / r[0] if p[0] and r[0] else None
        upk = p[1] / r[1] if p[1] and r[1] else None
        print(
            f"  {calls:>3} calls: streams per core {fmt(spc, '.2f')}, CPU per packet {fmt(upk, '.2f')}, "
            f"added p99 pbxd {fmt(p[4], '.0f')} us vs rtpengine {fmt(r[4], '.0f')} us"
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--system", required=True, help="label: pbxd, rtpengine or direct")
    r.add_argument("--calls", type=int, required=True)
    r.add_argument("--caller-base", type=int, required=True, help="first caller media port")
    r.add_argument("--callee-base", type=int, required=True, help="first callee media port")
    r.add_argument("--caller-log", help="sipp -log_file of the callers")
    r.add_argument("--callee-log", help="sipp -log_file of the callees")
    r.add_argument("--direct", action="store_true", help="no relay: the baseline")
    r.add_argument("--wait", type=float, default=20, help="seconds to wait for all calls")
    r.add_argument("--warmup", type=float, default=1.0)
    r.add_argument("--measure", type=float, default=4.0)
    r.add_argument("--drain", type=float, default=0.3)
    r.add_argument(
        "--coarse",
        action="store_true",
        help="send in bursts at epoll's 1 ms granularity (less probe CPU) instead of pacing",
    )
    r.add_argument("--cpu", action="append", help="NAME=PID[,PID...] to account over the window")
    r.add_argument("--rss", action="append", help="NAME=PID: VmRSS at the end of the window")
    r.add_argument("--dump", help="write 'send time (s into the window) stream delay_us' lines here")
    r.add_argument("--ready", help="file created once the media ports are bound")
    r.add_argument("--out", help="append the JSON result line here")
    p = sub.add_parser("report")
    p.add_argument("results")
    args = ap.parse_args()
    if args.cmd == "run":
        run(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
