#!/usr/bin/env python3
"""Idle keep-alive connections for scripts/idle.sh.

Opens --count connections to --host:--port (at most --concurrency being set
up at once), sends one complete keep-alive ``GET --path`` on each, reads the
whole response (``200`` with a ``Content-Length`` body), and then holds every
connection idle, all in one process with ``selectors``.

With --preopen nothing is sent: each connection is held as it was opened,
like the sockets a browser opens ahead of time.

When the set-up is over (or --setup-timeout passed) it writes a JSON line to
--ready-file: {"wanted", "idle", "failed", "errors", "setup_s"}.
While holding it watches every idle socket: a server that closes one is
counted. On SIGUSR1 (or after --hold-seconds, or on SIGTERM/SIGINT) it checks
every held socket once more (a non-blocking MSG_PEEK: "would block" = still
open), prints {"held": N, "still_open": N, "closed_during_hold": N,
"unexpected_data": N} on stdout and exits.

Standard library only; loopback only.
"""

import argparse
import errno
import ipaddress
import json
import os
import resource
import selectors
import signal
import socket
import sys
import time

CONNECTING, SENDING, READING, IDLE = range(4)


class Conn:
    __slots__ = ("sock", "state", "buf", "need", "out")

    def __init__(self, sock, request):
        self.sock = sock
        self.state = CONNECTING
        self.buf = b""
        self.need = None
        self.out = request


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--path", default="/1k.bin")
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--setup-timeout", type=float, default=120.0)
    ap.add_argument("--hold-seconds", type=float, default=600.0)
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--preopen", action="store_true",
                    help="send nothing: hold connections as a browser's pre-opened sockets")
    args = ap.parse_args()
    if not ipaddress.ip_address(args.host).is_loopback:
        sys.exit("idle_client: refusing a non-loopback host %r" % args.host)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.count + 64
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < want:
            print("idle_client: open-file limit %d < %d needed" % (new, want), file=sys.stderr)

    stop = {"flag": False}

    def on_signal(_sig, _frame):
        stop["flag"] = True

    for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    request = (
        "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: idle-client\r\n\r\n"
        % (args.path, args.host, args.port)
    ).encode()
    sel = selectors.DefaultSelector()
    errors = {}
    idle = []
    in_flight = 0
    started = 0
    failed = 0

    def fail(conn, kind):
        nonlocal in_flight, failed
        errors[kind] = errors.get(kind, 0) + 1
        failed += 1
        in_flight -= 1
        try:
            sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def start_one():
        nonlocal in_flight, started, failed
        started += 1
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as e:
            # Out of descriptors (EMFILE...): start no more.
            kind = "socket-" + errno.errorcode.get(e.errno, str(e.errno))
            errors[kind] = errors.get(kind, 0) + 1 + (args.count - started)
            failed += args.count - started
            started = args.count
            return False
        s.setblocking(False)
        in_flight += 1
        conn = Conn(s, request)
        rc = s.connect_ex((args.host, args.port))
        if rc not in (0, errno.EINPROGRESS):
            in_flight -= 1
            failed_kind = "connect-" + errno.errorcode.get(rc, str(rc))
            errors[failed_kind] = errors.get(failed_kind, 0) + 1
            s.close()
            return False
        sel.register(s, selectors.EVENT_WRITE, conn)
        return True

    t0 = time.monotonic()
    setup_deadline = t0 + args.setup_timeout
    while (started < args.count or in_flight > 0) and time.monotonic() < setup_deadline and not stop["flag"]:
        while started < args.count and in_flight < args.concurrency:
            if not start_one():
                failed += 1
        for key, _mask in sel.select(timeout=0.5):
            conn = key.data
            s = conn.sock
            if conn.state == CONNECTING:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    fail(conn, "connect-" + errno.errorcode.get(err, str(err)))
                    continue
                conn.state = SENDING
                if args.preopen:
                    conn.state = IDLE
                    in_flight -= 1
                    idle.append(conn)
                    sel.modify(s, selectors.EVENT_READ, conn)
                    continue
            if conn.state == SENDING:
                try:
                    n = s.send(conn.out)
                except BlockingIOError:
                    continue
                except OSError as e:
                    fail(conn, "send-" + errno.errorcode.get(e.errno, str(e.errno)))
                    continue
                conn.out = conn.out[n:]
                if not conn.out:
                    conn.state = READING
                    sel.modify(s, selectors.EVENT_READ, conn)
                continue
            if conn.state == READING:
                try:
                    chunk = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as e:
                    fail(conn, "recv-" + errno.errorcode.get(e.errno, str(e.errno)))
                    continue
                if not chunk:
                    fail(conn, "closed-before-response")
                    continue
                conn.buf += chunk
                if conn.need is None:
                    end = conn.buf.find(b"\r\n\r\n")
                    if end < 0:
                        continue
                    head = conn.buf[:end].decode("latin-1")
                    lines = head.split("\r\n")
                    parts = lines[0].split(" ")
                    if len(parts) < 2 or parts[1] != "200":
                        fail(conn, "status-" + (parts[1] if len(parts) > 1 else "?"))
                        continue
                    length = None
                    for line in lines[1:]:
                        name, _, value = line.partition(":")
                        if name.strip().lower() == "content-length":
                            length = int(value.strip())
                        if name.strip().lower() == "connection" and "close" in value.lower():
                            length = -1
                    if length is None or length < 0:
                        fail(conn, "not-keep-alive")
                        continue
                    conn.need = end + 4 + length
                if len(conn.buf) >= conn.need:
                    if len(conn.buf) > conn.need:
                        fail(conn, "extra-bytes")
                        continue
                    conn.state = IDLE
                    conn.buf = b""
                    in_flight -= 1
                    idle.append(conn)
                    # Stay registered for reading: a close by the server shows up.
                continue
            if conn.state == IDLE:
                # Handled in the hold loop below; during set-up just note it.
                pass
    setup_s = time.monotonic() - t0
    # Whatever is still being set up has failed.
    for key in list(sel.get_map().values()):
        conn = key.data
        if conn.state != IDLE:
            fail(conn, "setup-timeout")

    ready = {
        "wanted": args.count,
        "idle": len(idle),
        "failed": failed,
        "errors": errors,
        "setup_s": round(setup_s, 2),
    }
    print("idle_client: ready %s" % json.dumps(ready), file=sys.stderr)
    with open(args.ready_file + ".tmp", "w") as f:
        f.write(json.dumps(ready) + "\n")
    os.replace(args.ready_file + ".tmp", args.ready_file)

    closed = 0
    unexpected = 0
    hold_deadline = time.monotonic() + args.hold_seconds
    while not stop["flag"] and time.monotonic() < hold_deadline:
        for key, _mask in sel.select(timeout=0.5):
            conn = key.data
            try:
                data = conn.sock.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                unexpected += 1
                continue
            closed += 1
            sel.unregister(conn.sock)
            conn.sock.close()
            conn.state = -1

    held = [c for c in idle if c.state == IDLE]
    still_open = 0
    for c in held:
        try:
            data = c.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            still_open += 1
            continue
        except OSError:
            continue
        if data:
            unexpected += 1  # open, but the server sent something unasked
            still_open += 1
    print(json.dumps({
        "held": len(idle),
        "still_open": still_open,
        "closed_during_hold": closed,
        "unexpected_data": unexpected,
    }))
    sys.stdout.flush()
    for c in held:
        c.sock.close()


if __name__ == "__main__":
    main()
