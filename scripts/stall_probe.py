#!/usr/bin/env python3
"""Stall probe: does any hostile scenario delay an ordinary request?

For each scenario a fresh tinyserve (release build) serves a scratch root;
a hostile load runs in its own processes while a probe fetches a small file
on a fresh connection every 10 ms. Printed: the probe's p50, p99 and worst
wait, its failures, and the server's peak RSS (VmHWM), as a markdown table.

    python3 scripts/stall_probe.py [--bin target/release/tinyserve]
        [--seconds 5] [--only NAME[,NAME...]]

Scenarios (the round-two issue's list):
  none          nothing hostile: the reference row
  fifo-twin     x.txt.br is a FIFO; 50 requests/s for /x.txt accepting br
  log-pipe      the server's stderr is a pipe nobody reads; a client makes
                requests as fast as it can (each one a log line)
  listing       a 100,000-entry directory (on /dev/shm), requested by 30
                clients that never read, 30 more every second
  heads         800 connections each holding 130 KB of a head that never ends
  cgi-targets   --cgi; 20 connections at a time send 65 KB targets of %252e/
  descriptors   ulimit -n 256; 2000 distinct files requested round-robin by
                8 clients, 100 idle connections held

Goals (README): p99 < 10 ms and worst < 100 ms, peak RSS < 32 MiB, in every
scenario. Everything listens on 127.0.0.1; every process is stopped at exit.
"""

import argparse
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def start(binary, root, extra=(), stderr=subprocess.DEVNULL, ulimit=None):
    args = [binary, "-b", "127.0.0.1", "-d", root] + list(extra) + ["0"]
    if ulimit:
        cmd = ["sh", "-c", "ulimit -n %d && exec \"$@\"" % ulimit, "sh"] + args
    else:
        cmd = args
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    port = int(line.split(" port ")[1].split()[0])
    return p, port


def peak_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def fetch(port, path=b"/small.txt", timeout=5.0):
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    finally:
        s.close()
    ok = data.startswith(b"HTTP/1.1 200") and data.endswith(b"small\n")
    return time.monotonic() - t0, ok


def probe(port, seconds):
    waits, failures = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            w, ok = fetch(port)
            waits.append(w)
            failures += not ok
        except OSError:
            failures += 1
        time.sleep(0.01)
    return waits, failures


# --------------------------------------------------------------- loads
# Each runs in its own process until killed.

def load_fifo_twin(port):
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /x.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br\r\nConnection: close\r\n\r\n")
            while s.recv(65536):
                pass
            s.close()
        except OSError:
            pass
        time.sleep(0.02)


def load_log_pipe(port):
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            for _ in range(1000):
                s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n" * 10)
                got = 0
                while got < 10:
                    b = s.recv(65536)
                    if not b:
                        raise OSError
                    got += b.count(b"HTTP/1.1 200")
            s.close()
        except OSError:
            time.sleep(0.01)


def load_listing(port):
    held = []
    while True:
        for _ in range(30):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.sendall(b"GET /big/ HTTP/1.1\r\nHost: x\r\n\r\n")
                held.append(s)
            except OSError:
                pass
        held = held[-300:]
        time.sleep(1)


def load_heads(port):
    line = b"X-Big: " + b"a" * (64 * 1024 - 20) + b"\r\n"
    held = []
    for _ in range(800):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + line + line)
            held.append(s)
        except OSError:
            pass
    while True:
        time.sleep(1)


def load_cgi_targets(port):
    target = b"/cgi-bin/" + b"%252e/" * 10900 + b"x.sh"
    req = b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    while True:
        conns = []
        for _ in range(20):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(req)
                conns.append(s)
            except OSError:
                pass
        for s in conns:
            try:
                while s.recv(65536):
                    pass
            except OSError:
                pass
            s.close()


def load_descriptors(port):
    idle = []
    for _ in range(100):
        try:
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            pass
    i = os.getpid()
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            for _ in range(100):
                i = (i + 7) % 2000
                s.sendall(b"GET /f/%d.txt HTTP/1.1\r\nHost: x\r\n\r\n" % i)
                data = b""
                while b"\r\n\r\n" not in data:
                    b = s.recv(65536)
                    if not b:
                        raise OSError
                    data += b
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(body) < length:
                    body += s.recv(65536)
                if not head.startswith(b"HTTP/1.1 200") and not head.startswith(b"HTTP/1.1 503"):
                    print("descriptors: unexpected " + head.split(b"\r\n")[0].decode(), file=sys.stderr)
                if b"Connection: close" in head:
                    raise OSError
            s.close()
        except (OSError, ValueError, IndexError):
            time.sleep(0.01)


# --------------------------------------------------------------- scenarios

def scenario(name, binary, seconds):
    root = tempfile.mkdtemp(prefix="tinyserve-stall-%s-" % name,
                            dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.chmod(root, 0o755)
    with open(os.path.join(root, "small.txt"), "w") as f:
        f.write("small\n")
    extra, stderr, ulimit, load, workers = ["-q"], subprocess.DEVNULL, None, None, 1
    if name == "fifo-twin":
        with open(os.path.join(root, "x.txt"), "w") as f:
            f.write("plain\n")
        os.mkfifo(os.path.join(root, "x.txt.br"))
        load, workers = load_fifo_twin, 2
    elif name == "log-pipe":
        extra, stderr, load = [], subprocess.PIPE, load_log_pipe
    elif name == "listing":
        big = os.path.join(root, "big")
        os.mkdir(big)
        for i in range(100000):
            open(os.path.join(big, "entry-%06d-%s" % (i, "x" * (i % 40))), "w").close()
        load = load_listing
    elif name == "heads":
        extra, load = ["-q", "--max-connections", "2000"], load_heads
    elif name == "cgi-targets":
        os.makedirs(os.path.join(root, "cgi-bin"))
        extra, load = ["-q", "--cgi"], load_cgi_targets
    elif name == "descriptors":
        os.mkdir(os.path.join(root, "f"))
        for i in range(2000):
            with open(os.path.join(root, "f", "%d.txt" % i), "w") as f:
                f.write("file %d\n" % i)
        ulimit, load, workers = 256, load_descriptors, 8
    server, port = start(binary, root, extra, stderr, ulimit)
    procs = []
    try:
        if load:
            for _ in range(workers):
                p = mp.Process(target=load, args=(port,), daemon=True)
                p.start()
                procs.append(p)
            time.sleep(1.0)
        waits, failures = probe(port, seconds)
        rss = peak_rss_kib(server.pid)
    finally:
        for p in procs:
            p.kill()
        server.send_signal(signal.SIGKILL)
        server.wait()
        shutil.rmtree(root, ignore_errors=True)
    waits.sort()
    pct = lambda q: waits[min(len(waits) - 1, int(q * len(waits)))] * 1000 if waits else float("nan")
    return {
        "name": name,
        "n": len(waits),
        "failures": failures,
        "p50": pct(0.50),
        "p99": pct(0.99),
        "worst": waits[-1] * 1000 if waits else float("nan"),
        "rss": rss / 1024,
    }


SCENARIOS = ["none", "fifo-twin", "log-pipe", "listing", "heads", "cgi-targets", "descriptors"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, "target/release/tinyserve"))
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--only")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else SCENARIOS
    rows = [scenario(n, args.bin, args.seconds) for n in names]
    print("| scenario | probe requests | failures | p50 ms | p99 ms | worst ms | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    ok = True
    for r in rows:
        print("| %s | %d | %d | %.2f | %.2f | %.1f | %.1f |" % (
            r["name"], r["n"], r["failures"], r["p50"], r["p99"], r["worst"], r["rss"]))
        ok &= r["failures"] == 0 and r["p99"] < 10 and r["worst"] < 100 and r["rss"] < 32
    print("\ngoals (p99 < 10 ms, worst < 100 ms, peak RSS < 32 MiB, no failure): %s" % (
        "met" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
