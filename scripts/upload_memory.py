#!/usr/bin/env python3
"""Memory of a server while it takes a large multipart upload.

    python3 scripts/upload_memory.py [SIZE_MIB] [SERVER...]

SERVER is `rust` (target/release/examples/http_server_post, built with
`cargo build --release --examples`) or `python` (examples/python/
http_server_POST.py under Python 3.12, the newest with cgi.FieldStorage).
Streams one file of SIZE_MIB (default 1024) in a multipart form, as
`curl -F` would, without holding it in memory, then prints the server's
resident memory before the upload, its peak during it (VmHWM), the answer's
last line, and the upload rate.
"""
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(kind):
    if kind == "rust":
        cmd = [os.path.join(ROOT, "target/release/examples/http_server_post"), "0"]
        env = dict(os.environ)
    else:
        cmd = ["python3", os.path.join(ROOT, "examples/python/http_server_POST.py"), "0"]
        env = dict(os.environ, PYENV_VERSION="3.12.1", PYTHONWARNINGS="ignore")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    line = p.stdout.readline()
    port = int(line.split(" port ")[1].split(",")[0])
    return p, port


def status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    return 0


def upload(port, size):
    boundary = "------------------------6350146384064063"
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nalvin\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"datafile\"; filename=\"big.bin\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + size + len(tail)
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(
        (
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: upload_memory\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {length}\r\n\r\n"
        ).encode()
        + head
    )
    block = bytes(range(256)) * 1024  # 256 KiB, no CR or boundary in it
    left = size
    while left:
        n = min(left, len(block))
        s.sendall(block[:n])
        left -= n
    s.sendall(tail)
    answer = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        answer += c
    return answer


def main():
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    kinds = sys.argv[2:] or ["rust", "python"]
    print(f"upload of one {size} MiB file in a multipart form")
    print(f"{'server':8} {'RSS before':>11} {'peak RSS':>10} {'MiB/s':>7}  answer")
    for kind in kinds:
        p, port = start(kind)
        try:
            time.sleep(0.3)
            before = status(p.pid, "VmRSS")
            t = time.time()
            answer = upload(port, size << 20)
            took = time.time() - t
            peak = status(p.pid, "VmHWM")
            last = answer.decode("utf-8", "replace").strip().splitlines()[-1].strip()
            print(f"{kind:8} {before / 1024:8.1f} MiB {peak / 1024:6.1f} MiB {size / took:7.0f}  {last}")
        finally:
            p.kill()
            p.wait()


main()
