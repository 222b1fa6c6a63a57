#!/usr/bin/env python3
"""The "normal client" of scripts/abuse.sh.

For --seconds, each of --threads threads fetches --path from --host:--port on
a NEW connection every time (``Connection: close``), with a --timeout budget
per request (connect + send + whole response), pausing --interval-ms between
two of its requests. A request succeeds when the answer is ``200`` with
exactly --expect-bytes of body, read within the budget.

Prints one human line on stderr and one JSON object on stdout:
  {"requests": N, "ok": N, "success_pct": F, "p50_ms": F, "p99_ms": F,
   "max_ms": F, "errors": {"kind": count, ...},
   "slowest": [[seconds into the run, ms, ok], ...],
   "timeline_5s": [[succeeded, failed] per 5 s window of start time, ...]}
Percentiles are over ALL requests: a failed one counts with the time it took
to fail (a timeout counts as --timeout).

Standard library only; talks to loopback only (refuses any other host).
"""

import argparse
import ipaddress
import json
import socket
import sys
import threading
import time


def fetch(host, port, path, expect, timeout):
    """One request on a new connection; returns (ok, error_kind)."""
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.timeout:
        return False, "connect-timeout"
    except ConnectionRefusedError:
        return False, "connect-refused"
    except OSError as e:
        return False, "connect-" + (e.__class__.__name__ if e.errno is None else str(e.errno))
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        req = (
            "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: abuse-client\r\n"
            "Connection: close\r\n\r\n" % (path, host, port)
        ).encode()
        sock.sendall(req)
        buf = b""
        head_end = -1
        need = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, "read-timeout"
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
            if head_end < 0:
                head_end = buf.find(b"\r\n\r\n")
                if head_end >= 0:
                    need = head_end + 4 + expect
            if need is not None and len(buf) >= need:
                break
        if head_end < 0:
            return False, "no-head" if buf else "closed-empty"
        status = buf.split(b"\r\n", 1)[0].split(b" ")
        if len(status) < 2 or status[1] != b"200":
            return False, "status-" + (status[1].decode("latin-1") if len(status) > 1 else "?")
        if len(buf) - (head_end + 4) != expect:
            return False, "short-body"
        return True, None
    except socket.timeout:
        return False, "read-timeout"
    except ConnectionResetError:
        return False, "reset"
    except OSError as e:
        return False, "io-" + str(e.errno)
    finally:
        sock.close()


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    # nearest-rank
    k = max(0, min(len(sorted_values) - 1, int(-(-p * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/1k.bin")
    ap.add_argument("--expect-bytes", type=int, default=1024)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--interval-ms", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--max-requests", type=int, default=200000,
                    help="hard cap on requests over all threads")
    args = ap.parse_args()
    if not ipaddress.ip_address(args.host).is_loopback:
        sys.exit("abuse_client: refusing a non-loopback host %r" % args.host)

    lock = threading.Lock()
    lat = []  # (seconds, ok, start offset)
    errors = {}
    t_start = time.monotonic()
    stop_at = t_start + args.seconds

    def worker():
        while time.monotonic() < stop_at:
            with lock:
                if len(lat) >= args.max_requests:
                    return
            t0 = time.monotonic()
            ok, kind = fetch(args.host, args.port, args.path, args.expect_bytes, args.timeout)
            dt = time.monotonic() - t0
            with lock:
                lat.append((dt, ok, t0 - t_start))
                if not ok:
                    errors[kind] = errors.get(kind, 0) + 1
            if args.interval_ms > 0:
                time.sleep(args.interval_ms / 1000.0)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.seconds + args.timeout + 5)

    with lock:
        n = len(lat)
        ok = sum(1 for _, good, _ in lat if good)
        ms = sorted(d * 1000.0 for d, _, _ in lat)
        slowest = sorted(lat, reverse=True)[:5]
        buckets = {}
        for d, good, t in lat:
            b = buckets.setdefault(int(t // 5), [0, 0])
            b[0 if good else 1] += 1
        timeline = [buckets.get(i, [0, 0]) for i in range(int(args.seconds // 5) + 1)]
        errs = dict(errors)
    out = {
        "requests": n,
        "ok": ok,
        "success_pct": (100.0 * ok / n) if n else 0.0,
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "max_ms": ms[-1] if ms else float("nan"),
        "errors": errs,
        # the five slowest: [started at (s into the run), ms, ok]
        "slowest": [[round(t, 2), round(d * 1000.0, 1), good] for d, good, t in slowest],
        # [succeeded, failed] by the 5-second window in which they started
        "timeline_5s": timeline,
    }
    print(
        "abuse_client: %d requests, %.2f%% ok, p50 %.1f ms, p99 %.1f ms, max %.1f ms, errors %s"
        % (n, out["success_pct"], out["p50_ms"], out["p99_ms"], out["max_ms"], errs or "none"),
        file=sys.stderr,
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
