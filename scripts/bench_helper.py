#!/usr/bin/env python3
"""Helpers for scripts/bench.sh (standard library only, any Python 3.7+).

    bench_helper.py freeport
    bench_helper.py waitport PORT SECONDS
    bench_helper.py probe URL [BODY]           -> "STATUS BODY_BYTES", "ERR reason"
                                                  or "BADBODY ..." (body is not BODY)
    bench_helper.py procstat PID               -> "cpu_ticks rss_kb hwm_kb nprocs"
    bench_helper.py startup RUNS CMD... {port} -> median ms from exec to accepting
    bench_helper.py keepalive PORT PATH COUNT  -> COUNT GETs on one connection
    bench_helper.py strace-summary FILE BASE_FILE COUNT
    bench_helper.py report RESULTS_DIR         -> the markdown table
"""

import http.client
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse


def freeport():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def connectable(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def waitport(port, seconds):
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        if connectable(int(port)):
            return 0
        time.sleep(0.02)
    return 1


def framing(host, port, path, close):
    """How a server ends one response: returns True when wrk will count a
    read error for each complete response, because the body runs to EOF or
    the server closes an HTTP/1.1 connection without saying
    `Connection: close` (wrk then sees EOF where it expects the next one).
    """
    s = socket.create_connection((host, port), timeout=5)
    try:
        req = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        if close:
            req += "Connection: close\r\n"
        s.sendall((req + "\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return False
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        version = lines[0].split(b" ", 1)[0]
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower()] = v.strip().lower()
        conn = headers.get(b"connection", b"")
        if b"content-length" in headers:
            need = int(headers[b"content-length"]) - len(body)
            sink = bytearray(1 << 20)
            while need > 0:
                got = s.recv_into(sink)
                if not got:
                    return True
                need -= got
        elif b"chunked" in headers.get(b"transfer-encoding", b""):
            while not body.endswith(b"0\r\n\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    return True
                body += chunk
        else:
            return True  # delimited by EOF
        s.settimeout(0.3)
        try:
            closed = s.recv(1) == b""
        except socket.timeout:
            closed = False
        signalled = b"close" in conn or (version == b"HTTP/1.0" and b"keep-alive" not in conn)
        return closed and not signalled
    finally:
        s.close()


def probe(url, expect="", close="0"):
    """One GET: "STATUS LEN EOF", where EOF=1 means wrk will count a benign
    read error per response (see `framing`); "BADBODY ..." if `expect` is
    given and the body differs; "ERR ..." on failure."""
    u = urllib.parse.urlsplit(url)
    try:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
        headers = {"Connection": "close"} if close == "1" else {}
        conn.request("GET", u.path or "/", headers=headers)
        r = conn.getresponse()
        head, size = b"", 0
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            if len(head) < 4096:
                head += chunk[:4096]
            size += len(chunk)
        conn.close()
        if expect and r.status == 200 and head != expect.encode():
            print("BADBODY", r.status, r.getheader("Content-Type"), repr(head[:24]))
            return
        eof = framing(u.hostname, u.port, u.path or "/", close == "1")
        print(r.status, size, int(eof))
    except socket.timeout:
        print("ERR no complete response within 5 s")
    except Exception as e:  # noqa: BLE001 - reported, not raised
        print("ERR", type(e).__name__, str(e).replace("\n", " ")[:80])


def children(pid):
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(rest[1]) == pid:
            out.append(int(name))
    return out


def procstat(pid):
    """CPU ticks (utime+stime+cutime+cstime) and RSS of a process tree."""
    pid = int(pid)
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(children(p))
    ticks = rss = hwm = n = 0
    for p in seen:
        try:
            with open(f"/proc/{p}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            # rest[0] is field 3 (state); utime is field 14.
            ticks += sum(int(x) for x in rest[11:15])
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        hwm += int(line.split()[1])
            n += 1
        except (OSError, IndexError, ValueError):
            continue
    print(ticks, rss, hwm, n)


def startup(runs, cmd):
    times = []
    for _ in range(int(runs)):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        argv = [a.replace("{port}", str(port)) for a in cmd]
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ok = False
        while time.perf_counter() - t0 < 10:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                ok = True
                break
            except OSError:
                if p.poll() is not None:
                    break
                time.sleep(0.0002)
        t1 = time.perf_counter()
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if ok:
            times.append((t1 - t0) * 1000)
    if not times:
        print("failed")
        return 1
    print(f"{statistics.median(times):.1f} {min(times):.1f} {max(times):.1f} {len(times)}")
    return 0


def keepalive(port, path, count):
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    bad = 0
    for _ in range(int(count)):
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            bad += 1
    conn.close()
    print(f"{count} requests, {bad} not 200")
    return 1 if bad else 0


def parse_strace(path):
    """{syscall: calls} from an `strace -c` summary."""
    calls = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            # % time, seconds, usecs/call, calls, [errors], syscall
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                try:
                    calls[parts[-1]] = int(parts[3])
                except ValueError:
                    pass
    return calls


def strace_summary(path, base_path, count):
    count = int(count)
    run, base = parse_strace(path), parse_strace(base_path)
    per = {k: (v - base.get(k, 0)) / count for k, v in run.items()}
    per = {k: v for k, v in per.items() if v >= 0.005}
    total = sum(per.values())
    detail = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]))
    print(f"{total:.2f} syscalls per keep-alive request ({detail})")


# ---------------------------------------------------------------- report

CASES = [
    ("ka1k", "keep-alive 1 KiB req/s", "rps"),
    ("ka100k", "keep-alive 100 KiB req/s", "rps"),
    ("close", "new conn/request 1 KiB req/s", "rps"),
    ("cpu", "CPU ms / 1000 keep-alive req", "cpu"),
    ("c500", "500 conns keep-alive req/s", "rps"),
    ("c500p99", "500 conns p99 ms", "p99"),
    ("big", "100 MiB file MB/s", "mbps"),
    ("list", "1000-entry listing req/s", "rps"),
    ("cgi", "sh CGI req/s", "rps"),
    ("rss", "RSS idle / peak MiB", "rss"),
]
HIGHER_IS_BETTER = {"rps", "mbps"}


def load(path):
    d = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                k, v = line.split("=", 1)
                d[k] = v
    return d


def num(d, key):
    try:
        return float(d[key])
    except (KeyError, ValueError):
        return None


def metric(d, col):
    """The number behind a column, or None."""
    if col == "cpu":
        t, n = num(d, "ka1k_cpu_ms"), num(d, "ka1k_requests")
        return t / n * 1000 if t is not None and n else None
    if col == "c500p99":
        v = num(d, "c500_p99_us")
        return v / 1000 if v is not None and num(d, "c500_requests") else None
    if col == "big":
        b, us = num(d, "big_bytes"), num(d, "big_duration_us")
        return b / 1e6 / (us / 1e6) if b is not None and us else None
    if col == "rss":
        return num(d, "rss_peak_kb")
    v = num(d, f"{col}_rps")
    return v if v is not None and num(d, f"{col}_requests") else None


def fmt_value(col, v):
    if col in ("cpu",):
        return f"{v:.1f}"
    if col == "c500p99":
        return f"{v:.2f}"
    if col == "big":
        return f"{v:.0f}"
    return f"{v:,.0f}"


def cell(d, col, base):
    case = "c500" if col == "c500p99" else ("ka1k" if col == "cpu" else col)
    note = d.get(f"{case}_note", "")
    if col == "rss":
        idle, peak = num(d, "rss_idle_kb"), num(d, "rss_peak_kb")
        if idle is None or peak is None:
            return "n.a."
        text = f"{idle / 1024:.1f} / {peak / 1024:.1f}"
    else:
        v = metric(d, col)
        if v is None:
            return note or "n.a."
        text = fmt_value(col, v)
    b = metric(base, col) if base is not None and base is not d else None
    v = metric(d, col)
    if b and v is not None:
        text += f" ({v / b:.2f}×)"
    err = errors_of(d, case)
    if (err or d.get(f"{case}_died")) and col not in ("cpu", "rss"):
        text += " ⚠"
    return text


def eof_reads(d, case):
    """Read errors that are only wrk seeing EOF after a complete response.

    wrk counts a read error when a response's body runs to EOF (CGI answers
    without Content-Length) or when the server closes an HTTP/1.1
    connection without saying `Connection: close` (Python does that after a
    request that asked for `Connection: close`, and so does tinyserve, which
    copies it); each such response was complete and is counted in req/s.
    The probe before each run finds out whether a server does this
    (`CASE_eofbenign`); then read errors up to the number of requests (plus
    the connections) are taken as that.
    """
    if d.get(f"{case}_eofbenign") != "1":
        return 0
    read = int(num(d, f"{case}_read") or 0)
    others = sum(int(num(d, f"{case}_{k}") or 0) for k in ("connect", "write", "timeout"))
    reqs = int(num(d, f"{case}_requests") or 0)
    return read if others == 0 and read <= reqs + 500 else 0


def errors_of(d, case):
    parts = []
    sock = sum(int(num(d, f"{case}_{k}") or 0) for k in ("connect", "read", "write", "timeout"))
    sock -= eof_reads(d, case)
    if sock:
        kinds = "/".join(
            f"{k} {int(num(d, f'{case}_{k}'))}"
            for k in ("connect", "read", "write", "timeout")
            if num(d, f"{case}_{k}")
        )
        parts.append(f"socket errors {kinds}")
    status = int(num(d, f"{case}_status") or 0)
    if status:
        parts.append(f"non-2xx {status}")
    return ", ".join(parts)


def report(results_dir):
    rows = []
    for name in sorted(os.listdir(results_dir)):
        if name.endswith(".env"):
            rows.append(load(os.path.join(results_dir, name)))
    rows.sort(key=lambda d: int(d.get("order", "99")))
    base = next((d for d in rows if d.get("id") == "tinyserve-quiet" and d.get("failed") is None), None)
    if base is None:
        base = next((d for d in rows if d.get("id", "").startswith("tinyserve") and d.get("failed") is None), None)
    header = ["server / mode"] + [c[1] for c in CASES] + ["errors (wrk)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * len(CASES) + ["---"]) + "|")
    for d in rows:
        label = d.get("label", d.get("id", "?"))
        busy = int(num(d, "busy_before") or 0)
        if busy > 10:
            label += f" [machine {busy}% busy before this row]"
        if d.get("failed"):
            print("| " + " | ".join([label, f"**failed**: {d['failed']}"] + [""] * len(CASES)) + " |")
            continue
        cells = [label] + [cell(d, c[0], base) for c in CASES]
        errs = []
        for case in ("ka1k", "ka100k", "close", "c500", "big", "list", "cgi"):
            e = errors_of(d, case)
            if e:
                errs.append(f"{case}: {e}")
        for case in ("ka1k", "ka100k", "close", "c500", "big", "list", "cgi"):
            if d.get(f"{case}_died"):
                errs.append(f"**{case}: server died** ({d[f'{case}_died']}); restarted for the rest")
        for case in ("ka1k", "ka100k", "close", "c500", "big", "list", "cgi"):
            eof = eof_reads(d, case)
            if eof:
                errs.append(f"{case}: {eof} EOF-after-response reads (benign, see note)")
        cells.append("; ".join(errs) or "none")
        print("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if base is not None:
        print()
        print(
            f"Ratios in parentheses are relative to the `{base.get('label')}` row "
            "(req/s and MB/s: higher is better; CPU ms, p99 and RSS: lower is better). "
            "⚠ marks a cell whose wrk run had socket errors or non-2xx answers. "
            "EOF-after-response reads: the server ended a complete response by closing the "
            "connection, either because the body had no length (CGI) or after `Connection: close` "
            "without answering `Connection: close`; wrk counts each as a read error, but the "
            "responses were complete and are counted in req/s."
        )


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "freeport":
        return freeport()
    if cmd == "waitport":
        return waitport(*args)
    if cmd == "probe":
        return probe(*args)
    if cmd == "procstat":
        return procstat(*args)
    if cmd == "startup":
        return startup(args[0], args[1:])
    if cmd == "keepalive":
        return keepalive(*args)
    if cmd == "strace-summary":
        return strace_summary(*args)
    if cmd == "report":
        return report(*args)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv) or 0)
