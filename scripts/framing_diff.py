#!/usr/bin/env python3
"""Differential request-framing tester: tinyserve (or any HTTP/1.1 server)
against h11, a strict independent parser.

    framing_diff.py --host 127.0.0.1 --port P [--count N] [--seed S]
                    [--verbose] [--json OUT] [--workers W] [--idle SEC]
                    [--only ID[,ID...]] [--stream ESCAPED] [--max-print K]

Each generated stream is one or more pipelined requests whose first request
has odd framing syntax.  The stream is framed by h11 (as a server) and sent,
on a fresh TCP connection, to the server under test; the answers are
compared.

Identifying which request was answered: every request targets /d?<tag>
(tags r1-<id>, second-<id>, third-<id>; a request hidden in a body is
smuggled-<id>).  The served root must contain a directory `d`: the server
then answers 301 with `Location: /d/?<tag>` and keeps the connection, which
names the request answered exactly.  (Without `d` every answer is a 404, and
a 404 closes the connection in Python and in tinyserve, so nothing after the
first request would be tested; the tool refuses to run unless --untagged-ok.)

    mkdir -p /tmp/framing-root/d

Each stream is also built in a "repaired" twin (each syntax defect fixed the
way a lenient parser would: bare CR or obs-fold -> SP, whitespace before a
colon stripped, a line with a bad field name dropped alone).  When h11
rejects the stream and the server accepts it, the server's framing is
compared with h11's framing of the twin: matching it is "h11 rejects,
server accepts" (lenient, a leniency to list); differing from it, or
answering a request written inside a body, is a disagreement (smuggling).

Buckets: agree / tinyserve-stricter (server 4xx-and-close where h11 accepts)
/ h11-rejects-server-accepts / disagree (misframed or smuggled).  The last
line is `streams: N, agree: A, tinyserve-stricter: S, disagree: D`, where D
counts both of the last two buckets; exit status 1 if D > 0.

Requires h11 (from PyPI; `scripts/test.sh` installs it into
`target/pydeps`).

With --argued, every stream that does not agree must fall in one of the
differences the README argues (ARGUED below, each checked on the stream
itself, not only on h11's verdict); the run fails on any other, and on any
misframed or smuggled stream whatever the flag.
"""

import argparse
import ast
import codecs
import concurrent.futures
import html
import json
import os
import random
import re
import socket
import sys
import time

try:
    import h11
except ImportError:  # pragma: no cover
    sys.exit("h11 is not installed: pip install h11 (scripts/test.sh installs it "
             "into target/pydeps; run with PYTHONPATH=target/pydeps)")


def esc(b):
    """Bytes as a Python-style escaped string (without the b'' wrapper)."""
    return repr(bytes(b))[2:-1]


# --------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------
#
# Every stream is built twice, element by element: `raw` is what is sent,
# `rep` is the same stream with each syntax defect repaired the way a lenient
# parser most plausibly would (the RFC's own repair where it names one: a
# bare CR or an obs-fold becomes SP, a whitespace-preceded first header line
# is dropped; otherwise: whitespace before a colon stripped, a line with an
# invalid field name dropped alone, as nginx's ignore_invalid_headers does).
# Framing-header values (Content-Length, Transfer-Encoding, chunk sizes) are
# never repaired.  h11 on `rep` is the "lenient reference": when h11 rejects
# `raw` and the server accepts it, the server's framing is compared with it.

def second_request(tag, nl=b"\r\n"):
    return b"GET /d?" + tag.encode() + b" HTTP/1.1" + nl + b"Host: x" + nl + nl


def smuggle_payload(sid):
    return b"GET /d?smuggled-%d HTTP/1.1\r\nHost: x\r\n\r\n" % sid


CL_NAMES = [b"Content-Length", b"content-length", b"CONTENT-LENGTH", b"Content-length"]
TE_NAMES = [b"Transfer-Encoding", b"transfer-encoding", b"TRANSFER-ENCODING"]
GOOD_SEPS = [b": ", b":", b":\t", b":  ", b": \t"]
BAD_SEPS = [b" : ", b" :", b"\t: ", b"\t:"]
TRAIL = [b"", b"", b"", b" ", b"\t", b"  "]


class Pair:
    """Two byte strings built side by side: raw and repaired."""

    def __init__(self):
        self.raw = bytearray()
        self.rep = bytearray()

    def add(self, raw, rep=None):
        self.raw += raw
        self.rep += raw if rep is None else rep


def header_line(r, name, value, feats, nl, sep_bad_p=0.12):
    """(raw, repaired) for one header line with its line ending."""
    trail = r.choice(TRAIL)
    if r.random() < sep_bad_p:
        sep = r.choice(BAD_SEPS)
        feats.append("ws-before-colon")
        return name + sep + value + trail + nl, name + b": " + value + trail + nl
    sep = r.choice(GOOD_SEPS)
    line = name + sep + value + trail + nl
    return line, line


def chunked_body(r, payload, feats):
    """payload chunked, with an edge case now and then."""
    variant = r.choice(
        ["plain"] * 6
        + ["upper", "lower", "zeros", "ext", "ext-quoted", "no-crlf-after-data",
           "overflow", "0x", "negative", "ws-before-crlf", "trailer",
           "bare-lf", "no-last-chunk", "huge-zeros", "size-plus", "empty-size"]
    )
    if variant != "plain":
        feats.append("chunk-" + variant)
    parts = []
    if len(payload) > 6 and r.random() < 0.5:
        cut = r.randrange(1, len(payload))
        pieces = [payload[:cut], payload[cut:]]
    else:
        pieces = [payload]
    nl = b"\n" if variant == "bare-lf" else b"\r\n"
    for k, piece in enumerate(pieces):
        n = len(piece)
        size = b"%x" % n
        if variant == "upper":
            size = b"%X" % n
        elif variant == "zeros":
            size = b"000" + size
        elif variant == "huge-zeros":
            size = b"0" * 25 + size
        elif variant == "ext" and k == 0:
            size += b";a=b"
        elif variant == "ext-quoted" and k == 0:
            size += b';a="x\r\n"'
        elif variant == "overflow" and k == 0:
            size = b"ffffffffffffffffff" if r.random() < 0.5 else b"1" + b"0" * 16 + size
        elif variant == "0x" and k == 0:
            size = b"0x" + size
        elif variant == "negative" and k == 0:
            size = b"-" + size
        elif variant == "size-plus" and k == 0:
            size = b"+" + size
        elif variant == "empty-size" and k == 0:
            size = b""
        elif variant == "ws-before-crlf" and k == 0:
            size += r.choice([b" ", b"\t"])
        end = b"" if (variant == "no-crlf-after-data" and k == 0) else nl
        parts.append(size + nl + piece + end)
    if variant != "no-last-chunk":
        if variant == "trailer":
            parts.append(b"0" + nl + b"X-Trailer: 1" + nl + nl)
        else:
            parts.append(b"0" + nl + nl)
    return b"".join(parts)


NOISE_KINDS = [
    "obs-fold", "obs-fold-first", "ctl-in-name", "ctl-in-value",
    "space-in-name", "bare-cr-in-value", "bare-cr-eol", "nul-in-value",
    "empty-name", "high-byte-value",
]


def noise_line(r, kind, nl):
    """(raw, repaired) for a harmless-looking header with one syntax defect,
    line ending(s) included."""
    if kind == "obs-fold":
        ws = r.choice([b" ", b"\t", b"  "])
        return b"X-Fold: a" + nl + ws + b"b" + nl, b"X-Fold: a b" + nl
    if kind == "obs-fold-first":  # placed right after the request line
        return r.choice([b" ", b"\t"]) + b"X-First: y" + nl, b""
    if kind == "ctl-in-name":
        c = r.choice([b"\x00", b"\x01", b"\x0b", b"\x7f"])
        return b"X-C" + c + b"t: v" + nl, b""
    if kind == "ctl-in-value":
        c = r.choice([b"\x01", b"\x0b", b"\x7f", b"\x0c"])
        return b"X-V: a" + c + b"b" + nl, b"X-V: a b" + nl
    if kind == "nul-in-value":
        return b"X-V: a\x00b" + nl, b"X-V: a b" + nl
    if kind == "space-in-name":
        return b"X Y: v" + nl, b""
    if kind == "bare-cr-in-value":
        return b"X-A: a\rb" + nl, b"X-A: a b" + nl
    if kind == "bare-cr-eol":
        return b"X-A: a\rX-B: b" + nl, b"X-A: a X-B: b" + nl
    if kind == "empty-name":
        return b": v" + nl, b""
    if kind == "high-byte-value":
        line = b"X-H: caf\xc3\xa9" + nl
        return line, line
    raise ValueError(kind)


def gen_stream(seed, sid):
    """Returns (raw stream, repaired stream, features)."""
    r = random.Random("%s:%d" % (seed, sid))
    feats = []
    bare_lf = r.random() < 0.07
    nl = b"\n" if bare_lf else b"\r\n"
    if bare_lf:
        feats.append("bare-lf-head")
    method = r.choice([b"GET", b"GET", b"GET", b"HEAD", b"POST"])
    version = r.choice([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"])
    feats.append(method.decode())
    feats.append(version.decode())
    target = b"/d?r1-%d" % sid
    out = Pair()

    # request line
    good = method + b" " + target + b" " + version + nl
    if r.random() < 0.06:
        kind = r.choice(["double-sp", "htab", "vt", "ff", "x1c", "trailing-sp", "leading-sp"])
        feats.append("reqline-" + kind)
        bad = {"double-sp": method + b"  " + target + b" " + version,
               "htab": method + b"\t" + target + b" " + version,
               "vt": method + b" " + target + b"\x0b" + version,
               "ff": method + b" " + target + b"\x0c" + version,
               "x1c": method + b"\x1c" + target + b" " + version,
               "trailing-sp": method + b" " + target + b" " + version + b" ",
               "leading-sp": b" " + method + b" " + target + b" " + version}[kind] + nl
        # RFC 9112 3 lets a recipient split on SP, HTAB, VT, FF (\x1c is
        # not whitespace there, only for Python's str.split(); it is
        # repaired all the same so that what follows can be compared)
        out.add(bad, good)
    else:
        out.add(good)

    # Host
    hv = r.random()
    if hv < 0.06:
        feats.append("host-missing")
        out.add(b"", b"Host: x" + nl)
    elif hv < 0.11:
        feats.append("host-duplicate")
        out.add(b"Host: x" + nl + b"Host: y" + nl, b"Host: x" + nl)
    elif hv < 0.15:
        feats.append("host-empty")
        out.add(b"Host:" + nl)
    else:
        out.add(b"Host: x" + nl)

    if version == b"HTTP/1.0" and r.random() < 0.75:
        out.add(b"Connection: keep-alive" + nl)
    elif version == b"HTTP/1.1" and r.random() < 0.04:
        feats.append("conn-close")
        out.add(b"Connection: close" + nl)

    payload = smuggle_payload(sid) if r.random() < 0.5 else r.choice(
        [b"hello", b"0123456789abcdef", b"x" * 40, b"GET /d?smuggled-%d" % sid])
    if b"smuggled" in payload:
        feats.append("smuggle-body")

    framing = r.choices(
        ["none", "cl", "cl-dup-same", "cl-dup-diff", "cl-list", "cl-invalid",
         "te", "te-dup", "te-cl", "chunk-edge", "fold-framing", "hidden-cr"],
        weights=[8, 18, 5, 7, 7, 14, 16, 5, 7, 10, 5, 4])[0]
    feats.append("F:" + framing)
    flines = []  # (raw, rep) pairs
    body = b""
    n = len(payload)

    def hl(name, value, p=0.12):
        flines.append(header_line(r, name, value, feats, nl, p))

    if framing == "cl":
        v = b"%d" % n
        if r.random() < 0.15:
            v = b"00" + v
            feats.append("cl-leading-zeros")
        hl(r.choice(CL_NAMES), v)
        body = payload
    elif framing == "cl-dup-same":
        for _ in range(2):
            hl(r.choice(CL_NAMES), b"%d" % n, 0.05)
        body = payload
    elif framing == "cl-dup-diff":
        vals = [b"%d" % n, r.choice([b"0", b"%d" % (n + 3), b"1"])]
        r.shuffle(vals)
        feats.append("cl-values-" + "/".join(v.decode() for v in vals))
        for v in vals:
            hl(r.choice(CL_NAMES), v, 0.05)
        body = payload
    elif framing == "cl-list":
        kind = r.choice(["same", "same-nospace", "n-0", "0-n", "trailing-comma", "leading-comma"])
        feats.append("cl-list-" + kind)
        v = {"same": b"%d, %d" % (n, n), "same-nospace": b"%d,%d" % (n, n),
             "n-0": b"%d, 0" % n, "0-n": b"0, %d" % n,
             "trailing-comma": b"%d," % n, "leading-comma": b", %d" % n}[kind]
        hl(r.choice(CL_NAMES), v, 0.05)
        body = payload
    elif framing == "cl-invalid":
        kind = r.choice(["plus", "minus", "abc", "hex", "overflow30", "vt", "empty",
                         "space-inside", "u64max+1", "20digits", "ff", "decimal", "nul"])
        feats.append("cl-invalid-" + kind)
        v = {"plus": b"+%d" % n, "minus": b"-5", "abc": b"abc", "hex": b"0x10",
             "overflow30": b"1" + b"0" * 29, "vt": b"\x0b%d" % n, "empty": b"",
             "space-inside": b"%d %d" % (n // 10 or 1, n % 10),
             "u64max+1": b"18446744073709551616", "20digits": b"%020d" % n,
             "ff": b"\x0c%d" % n, "decimal": b"%d.0" % n, "nul": b"%d\x00" % n}[kind]
        hl(r.choice(CL_NAMES), v, 0.05)
        body = payload
    elif framing in ("te", "te-dup", "te-cl", "chunk-edge"):
        if framing == "te":
            tv = r.choice([b"chunked", b"Chunked", b"CHUNKED", b"gzip, chunked",
                           b"chunked, gzip", b"identity", b" chunked", b"chunked\t",
                           b"chunked,", b", chunked", b"chunked;q=1", b"xchunked",
                           b"chunked chunked", b"\x0bchunked"])
            feats.append("te=" + esc(tv))
            hl(r.choice(TE_NAMES), tv)
        elif framing == "te-dup":
            pair = r.choice([(b"chunked", b"chunked"), (b"gzip", b"chunked"),
                             (b"chunked", b"gzip"), (b"identity", b"chunked"),
                             (b"chunked", b"identity")])
            feats.append("te-dup=" + "/".join(p.decode() for p in pair))
            for tv in pair:
                hl(r.choice(TE_NAMES), tv, 0.05)
        elif framing == "te-cl":
            hl(r.choice(TE_NAMES), b"chunked", 0.08)
        else:
            hl(b"Transfer-Encoding", b"chunked", 0.0)
        body = chunked_body(r, payload, feats) if (framing == "chunk-edge" or r.random() < 0.85) else payload
        if framing == "te-cl":
            clv = r.choice([len(body), n, 0, 3])
            feats.append("te-cl=%s" % ("body" if clv == len(body) else clv))
            line = header_line(r, r.choice(CL_NAMES), b"%d" % clv, feats, nl, 0.08)
            if r.random() < 0.5:
                flines.insert(0, line)
            else:
                flines.append(line)
    elif framing == "fold-framing":
        kind = r.choice(["cl-value-folded", "cl-extra-fold", "te-value-folded",
                         "te-extra-fold", "fold-hides-cl"])
        feats.append("fold-" + kind)
        fold = r.choice([b" ", b"\t"])
        # repaired: the obs-fold (line end + whitespace) becomes one SP
        if kind == "cl-value-folded":
            flines.append((b"Content-Length:" + nl + fold + b"%d" % n + nl,
                           b"Content-Length: %d" % n + nl))
            body = payload
        elif kind == "cl-extra-fold":
            flines.append((b"Content-Length: %d" % n + nl + fold + b"%d" % n + nl,
                           b"Content-Length: %d %d" % (n, n) + nl))
            body = payload
        elif kind == "te-value-folded":
            flines.append((b"Transfer-Encoding:" + nl + fold + b"chunked" + nl,
                           b"Transfer-Encoding: chunked" + nl))
            body = chunked_body(r, payload, feats)
        elif kind == "te-extra-fold":
            flines.append((b"Transfer-Encoding: chunked" + nl + fold + b"gzip" + nl,
                           b"Transfer-Encoding: chunked gzip" + nl))
            body = chunked_body(r, payload, feats)
        else:  # a folded line that looks like Content-Length
            flines.append((b"X-Fold: a" + nl + fold + b"Content-Length: %d" % n + nl,
                           b"X-Fold: a Content-Length: %d" % n + nl))
            body = payload
    elif framing == "hidden-cr":
        # a framing header that only a parser splitting on bare CR sees;
        # the RFC's repair (CR -> SP) hides it inside X-A's value
        kind = r.choice(["cl", "te"])
        feats.append("hidden-cr-" + kind)
        if kind == "cl":
            flines.append((b"X-A: a\rContent-Length: %d" % n + nl,
                           b"X-A: a Content-Length: %d" % n + nl))
            body = payload
        else:
            flines.append((b"X-A: a\rTransfer-Encoding: chunked" + nl,
                           b"X-A: a Transfer-Encoding: chunked" + nl))
            body = chunked_body(r, payload, feats)

    # noise lines, before or after the framing lines
    pre, post, first = [], [], []
    nnoise = 0
    x = r.random()
    if x < 0.28:
        nnoise = 1
    elif x < 0.33:
        nnoise = 2
    for _ in range(nnoise):
        kind = r.choice(NOISE_KINDS)
        if kind == "obs-fold-first":
            first.append(noise_line(r, kind, nl))
            feats.append("noise-obs-fold-first")
            continue
        where = "before" if r.random() < 0.5 else "after"
        feats.append("noise-%s-%s" % (kind, where if flines else "x"))
        (pre if where == "before" else post).append(noise_line(r, kind, nl))

    if (method != b"GET" or body) and r.random() < 0.05 and (body or framing != "none"):
        feats.append("expect-100")
        post.append((b"Expect: 100-continue" + nl,) * 2)

    # the obs-fold-first line goes right after the request line
    head = Pair()
    reqline_raw = out.raw[:out.raw.index(b"\n") + 1]
    reqline_rep = out.rep[:out.rep.index(b"\n") + 1]
    head.add(bytes(reqline_raw), bytes(reqline_rep))
    for a, b in first:
        head.add(a, b)
    head.add(bytes(out.raw[len(reqline_raw):]), bytes(out.rep[len(reqline_rep):]))
    for a, b in pre + flines + post:
        head.add(a, b)
    head.add(nl)
    head.add(body)

    # pipelined followers
    k = r.random()
    if k < 0.08:
        feats.append("single")
    else:
        head.add(second_request("second-%d" % sid, nl if r.random() < 0.5 else b"\r\n"))
        if k > 0.9:
            feats.append("third")
            head.add(second_request("third-%d" % sid))
    return bytes(head.raw), bytes(head.rep), feats


# --------------------------------------------------------------------------
# h11 reference framing
# --------------------------------------------------------------------------

TAG_RE = re.compile(rb"\?([A-Za-z0-9-]+)")


def target_tag(target):
    m = TAG_RE.search(bytes(target))
    return m.group(1).decode() if m else None


def intended_tags(data):
    """The tags of the requests the stream is written to hold, in order (a
    request written inside a body is not one of them)."""
    out = []
    for m in re.finditer(rb"/d\?([A-Za-z0-9]+-[0-9]+)", data):
        t = m.group(1).decode()
        if not t.startswith("smuggled"):
            out.append(t)
    return out


def h11_frame(data):
    """Frame `data` with h11 as a server.  Returns a dict:
    requests: [{method, target, tag, version, body, keep}]
    end: "clean" | "incomplete" | "reject"
    error: message when rejected
    stage: "head" or "body" (where h11 stopped, for reject/incomplete)
    partial: the request whose head h11 accepted but whose body did not end
    """
    reqs = []
    buf = bytes(data)
    while True:
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(buf)
        cur = None
        body = bytearray()
        restart = False
        while True:
            try:
                ev = conn.next_event()
            except h11.RemoteProtocolError as e:
                return {"requests": reqs, "end": "reject", "error": str(e),
                        "stage": "body" if cur else "head", "partial": cur}
            if ev is h11.NEED_DATA:
                pending = len(conn.trailing_data[0])
                if cur is None and pending == 0:
                    return {"requests": reqs, "end": "clean", "error": None,
                            "stage": None, "partial": None}
                return {"requests": reqs, "end": "incomplete", "error": None,
                        "stage": "body" if cur else "head", "partial": cur}
            if ev is h11.PAUSED:  # should not happen: we start each cycle
                return {"requests": reqs, "end": "reject", "error": "paused",
                        "stage": "head", "partial": cur}
            if isinstance(ev, h11.Request):
                cur = {"method": ev.method.decode("latin-1"),
                       "target": ev.target.decode("latin-1"),
                       "tag": target_tag(ev.target),
                       "version": ev.http_version.decode(),
                       "body": None, "keep": None}
                body = bytearray()
            elif isinstance(ev, h11.Data):
                body += ev.data
            elif isinstance(ev, h11.EndOfMessage):
                cur["body"] = esc(body)
                cur["keep"] = conn.their_state is not h11.MUST_CLOSE
                reqs.append(cur)
                cur = None
                try:
                    conn.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
                    conn.send(h11.EndOfMessage())
                except h11.LocalProtocolError as e:  # pragma: no cover
                    return {"requests": reqs, "end": "reject", "error": "send: %s" % e,
                            "stage": "head", "partial": None}
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    # h11 would close here (HTTP/1.0 or Connection: close).
                    # Framing is still defined for what follows: go on with a
                    # fresh connection over the remaining bytes.
                    buf = conn.trailing_data[0]
                    if not buf:
                        return {"requests": reqs, "end": "clean", "error": None,
                                "stage": None, "partial": None}
                    restart = True
                    break
                conn.start_next_cycle()
            elif isinstance(ev, h11.ConnectionClosed):  # not reached: no EOF fed
                return {"requests": reqs, "end": "clean", "error": None,
                        "stage": None, "partial": None}
        if not restart:  # pragma: no cover
            break


def h11_summary(h):
    s = "h11 frames %d request(s) [%s]" % (
        len(h["requests"]),
        ", ".join("%s %s body=%r" % (q["method"], q["target"], q["body"]) for q in h["requests"]))
    if h["end"] == "reject":
        s += "; h11 rejects after %d request(s) (in %s): %s" % (len(h["requests"]), h["stage"], h["error"])
    elif h["end"] == "incomplete":
        s += "; then h11 waits for more (%s incomplete%s)" % (
            h["stage"], (" for %s %s" % (h["partial"]["method"], h["partial"]["target"])) if h["partial"] else "")
    return s


# --------------------------------------------------------------------------
# Talking to the server
# --------------------------------------------------------------------------

def talk(host, port, data, idle, total=6.0):
    """Sends `data` on a fresh connection, reads until the server closes or
    `idle` seconds pass without a byte.  Returns (bytes, closed, note)."""
    note = []
    try:
        s = socket.create_connection((host, port), timeout=2.0)
    except OSError as e:
        return b"", False, "connect: %s" % e
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        s.sendall(data)
    except OSError as e:
        note.append("send: %s" % e)
    got = bytearray()
    closed = False
    deadline = time.monotonic() + total
    s.settimeout(idle)
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            note.append("reset")
            break
        except OSError as e:
            closed = True
            note.append("recv: %s" % e)
            break
        if not chunk:
            closed = True
            break
        got += chunk
        if time.monotonic() > deadline:
            note.append("total timeout")
            break
    s.close()
    return bytes(got), closed, "; ".join(note)


STATUS_RE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: ([^\r\n]*))?")


def parse_responses(data):
    """Splits a byte stream of responses.  Returns (responses, interim, garbage)
    where each response is {status, reason, tag, headers}."""
    out = []
    interim = 0
    pos = 0
    garbage = None
    while pos < len(data):
        if data.startswith(b"<!DOCTYPE", pos):
            # an error page with no status line: Python answers so when the
            # request line had no version (it takes it for HTTP/0.9)
            end = data.find(b"</html>", pos)
            end = len(data) if end < 0 else end + len(b"</html>")
            page = data[pos:end]
            pos = end + (1 if data[end:end + 1] == b"\n" else 0)
            code = re.search(rb"Error code: (\d{3})", page)
            msg = re.search(rb"Message: (.*?)\.</p>", page, re.S)
            out.append({"status": int(code.group(1)) if code else 0,
                        "reason": html.unescape((msg.group(1) if msg else b"").decode("latin-1")),
                        "tag": None, "close": True, "no_status_line": True})
            continue
        m = re.compile(rb"\r?\n\r?\n").search(data, pos)
        if not m:
            garbage = esc(data[pos:pos + 200])
            break
        head = data[pos:m.start()]
        pos = m.end()
        lines = re.split(rb"\r?\n", head)
        sm = STATUS_RE.match(lines[0])
        if not sm:
            garbage = esc(data[m.start() - len(head):][:200])
            break
        status = int(sm.group(3))
        headers = {}
        for line in lines[1:]:
            if b":" in line:
                k, v = line.split(b":", 1)
                headers.setdefault(k.strip().lower().decode("latin-1"), v.strip().decode("latin-1"))
        if 100 <= status < 200:
            interim += 1
            continue
        loc = headers.get("location")
        tag = loc.split("?", 1)[1] if loc and "?" in loc else None
        out.append({"status": status, "reason": (sm.group(4) or b"").decode("latin-1"),
                    "tag": tag, "close": "close" in headers.get("connection", "").lower()})
        rest = data[pos:]
        # HEAD answers (and 204/304) carry no body; since our bodies never
        # start with "HTTP/", a response directly after the head means that.
        if status in (204, 304) or rest.startswith(b"HTTP/") or not rest:
            continue
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                e = data.find(b"\r\n", pos)
                if e < 0:
                    pos = len(data)
                    break
                try:
                    size = int(data[pos:e].split(b";")[0], 16)
                except ValueError:
                    garbage = esc(data[pos:pos + 200])
                    pos = len(data)
                    break
                pos = e + 2 + size + 2
                if size == 0:
                    break
            continue
        cl = headers.get("content-length")
        if cl is not None and cl.isdigit():
            pos += int(cl)
        else:
            pos = len(data)  # delimited by close
    return out, interim, garbage


# --------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------

REJECT_STATUSES = {400, 405, 408, 411, 413, 414, 417, 431, 501, 505}

# outcome -> bucket used in the summary line
AGREE, STRICTER, LENIENT, DISAGREE = "agree", "tinyserve-stricter", "h11-rejects-server-accepts", "disagree"


def is_reject(resp):
    return resp["status"] in REJECT_STATUSES or 400 <= resp["status"] < 500 and resp["status"] != 404


def reject_subject(resp):
    """What a rejection is about: Python and tinyserve quote the offending
    request line (or method) in the reason phrase: "Bad request syntax
    ('...')", "Unsupported method ('...')".  Returns "smuggled" when the
    quote holds a request written inside a body, "garbage" when it holds no
    request target of ours (so body bytes were read as a request line), else
    None."""
    m = re.search(r"\('(.*)'\)", resp["reason"])
    if not m:
        return None
    q = m.group(1)
    if "smuggled" in q:
        return "smuggled"
    if "/d?" in q or re.fullmatch(r"GET|HEAD|POST|HTTP/\S*", q):
        return None
    return "garbage"


def matches(resp, req, tagged):
    """Is `resp` plausibly the answer to h11's request `req`?"""
    if req["method"] not in ("GET", "HEAD"):
        # a static server refuses other methods (501), with no Location
        return resp["status"] in (501, 405) and resp["tag"] is None
    if tagged:
        return resp["tag"] is not None and resp["tag"] == req["tag"]
    return resp["status"] == 404


def compare(h, resps, closed, tagged):
    """The server's answers against one reference framing `h`.
    Returns (kind, detail); kind "accepts-rejected" means the server
    answered, as a normal request, the request at which `h` stops with a
    rejection (the caller then looks for a lenient reading)."""
    H = h["requests"]
    m, n = len(H), len(resps)
    for i in range(min(n, m)):
        if matches(resps[i], H[i], tagged):
            continue
        tag = resps[i]["tag"] or ""
        subj = reject_subject(resps[i])
        if tag.startswith("smuggled") or subj == "smuggled":
            return "smuggled", "answer #%d (%d%s) is for a request h11 reads as body bytes" % (
                i + 1, resps[i]["status"], " ->" + tag if tag else " " + resps[i]["reason"])
        if subj == "garbage":
            return "misframed", "answer #%d (%d %s) treats body bytes as a request line" % (
                i + 1, resps[i]["status"], resps[i]["reason"])
        if is_reject(resps[i]) and i == n - 1 and closed:
            return "stricter", "server rejects request #%d (%d %s) that h11 accepts" % (
                i + 1, resps[i]["status"], resps[i]["reason"])
        return "misframed", "answer #%d (%d%s) is not for h11's request #%d (%s %s)" % (
            i + 1, resps[i]["status"], " ->" + tag if tag else " " + resps[i]["reason"], i + 1,
            H[i]["method"], H[i]["target"])
    if n > m:
        extra = resps[m:]
        first = extra[0]
        tag = first["tag"] or ""
        part = h["partial"]
        subjects = [reject_subject(x) for x in extra]
        if h["end"] == "reject":
            # (whether what follows is misframed is judged by the caller,
            # against a lenient reading of the stream)
            if part and matches(first, part, tagged):
                # h11 took the head, then refused the body
                if len(extra) == 1 and closed:
                    return "body-unread-close", "h11 rejects the body of #%d; server answered the head and closed without reading it" % (m + 1)
                return "accepts-rejected", "h11 rejects the body of #%d; the server goes on" % (m + 1)
            quoted = re.search(r"\('(.*)'\)", first["reason"])
            if first["status"] == 501 and quoted and quoted.group(1) in ("POST", "PUT", "DELETE") \
                    and len(extra) == 1 and closed:
                # a static server refuses the method and closes: it never
                # reads the body, so its framing is not tested
                return "method-refused-close", "server refuses %s (501) and closes" % quoted.group(1)
            if is_reject(first) and (subjects[0] is None or (
                    quoted and h["stage"] == "head" and quoted.group(1) in (h["error"] or ""))):
                # (a quote of the very line h11 refuses is about that request)
                if len(extra) == 1 and closed:
                    return "both-reject", "both reject request #%d (%d %s)" % (m + 1, first["status"], first["reason"])
                return "reject-no-close", "server rejects #%d but goes on" % (m + 1)
            return "accepts-rejected", "server answers request #%d that h11 rejects (%s)" % (m + 1, h["error"])
        if "smuggled" in subjects or any((x["tag"] or "").startswith("smuggled") for x in extra):
            return "smuggled", "server answers a request h11 reads as body bytes (%s)" % ", ".join(
                "%d%s" % (x["status"], " ->" + x["tag"] if x["tag"] else " " + x["reason"]) for x in extra)
        if "garbage" in subjects:
            x = extra[subjects.index("garbage")]
            return "misframed", "server reads body bytes as a request line (%d %s)" % (x["status"], x["reason"])
        if h["end"] == "incomplete":
            if part and matches(first, part, tagged) and len(extra) == 1:
                return "answered-before-body", "server answered #%d before its body ended%s" % (
                    m + 1, ", then closed" if closed else "")
            if is_reject(first) and len(extra) == 1 and closed:
                return "stricter-incomplete", "server rejects #%d (%d %s), which h11 still waits for" % (
                    m + 1, first["status"], first["reason"])
            if tag.startswith("smuggled") or any((x["tag"] or "").startswith("smuggled") for x in extra):
                return "smuggled", "server answers a request h11 reads as body bytes"
            return "extra-answers", "server answered %d request(s) where h11 still waits for %s" % (
                len(extra), "a body" if part else "a complete head")
        if any((x["tag"] or "").startswith("smuggled") for x in extra):
            return "smuggled", "server answers a request h11 reads as body bytes"
        return "extra-answers", "server answered %d more request(s) than h11 framed" % (n - m)
    if n == m:
        if h["end"] == "reject":
            if closed:
                return "silent-close-on-reject", "h11 rejects #%d; server closed without answering it" % (m + 1)
            return "waits-on-reject", "h11 rejects #%d; server answered nothing for it and waits" % (m + 1)
        return "agree", ""
    if not closed:
        return "server-waits", "server answered %d of the %d requests h11 framed and waits for more" % (n, m)
    if n == 0:
        return "silent-close", "server closed without answering; h11 framed %d request(s)" % m
    return "closed-early", "server answered %d of %d requests, then closed (after %s %s, keep=%s)" % (
        n, m, H[n - 1]["method"], H[n - 1]["version"], H[n - 1]["keep"])


AGREE_KINDS = {"agree", "closed-early", "method-refused-close", "answered-before-body", "body-unread-close", "both-reject",
               "silent-close-on-reject", "waits-on-reject"}
STRICT_KINDS = {"stricter", "stricter-incomplete"}


def classify(h, lenient, resps, closed, intended, tagged):
    """(bucket, outcome, detail) for the server's answers.  `h` is h11 on the
    stream, `lenient` h11 on its repaired twin (or None)."""
    kind, detail = compare(h, resps, closed, tagged)
    if kind in AGREE_KINDS:
        return AGREE, kind, detail
    if kind in STRICT_KINDS:
        return STRICTER, kind, detail
    if kind != "accepts-rejected":
        return DISAGREE, kind, detail
    m = len(h["requests"])
    extra = resps[m:]
    how = "close" if closed and len(extra) == 1 else "continue"
    if lenient is not None and not (lenient["end"] == "reject" and len(lenient["requests"]) <= m):
        kind2, detail2 = compare(lenient, resps, closed, tagged)
        if kind2 in AGREE_KINDS or kind2 in STRICT_KINDS or kind2 == "accepts-rejected":
            return LENIENT, "lenient-consistent-" + how, detail + "; framing matches the lenient reading" + (
                " (%s)" % detail2 if detail2 else "")
        return DISAGREE, "lenient-" + kind2, detail + "; and frames it unlike the lenient reading: " + detail2
    # no lenient reading (the defect is in the framing itself): compare with
    # what the stream was written to mean
    got = [x["tag"] for x in extra]
    subjects = [reject_subject(x) for x in extra]
    if any((t or "").startswith("smuggled") for t in got) or "smuggled" in subjects:
        return DISAGREE, "invalid-smuggled", detail + "; and answers a request written inside a body"
    if "garbage" in subjects:
        return DISAGREE, "invalid-misframed", detail + "; and reads body bytes as a request line (%s)" % (
            extra[subjects.index("garbage")]["reason"])
    if tagged and [t for t in got if t] != intended[m:m + len([t for t in got if t])]:
        return DISAGREE, "invalid-misframed", detail + "; and its answers %s are not the requests written %s" % (
            got, intended[m:])
    return LENIENT, "accepts-invalid-" + how, detail


def h11_error_class(h):
    """A short, stable name for h11's reason to reject."""
    if h["end"] != "reject":
        return h["end"]
    e = h["error"]
    m = re.match(r"illegal header line: (bytearray\()?(b['\"].*['\"])\)?$", e, re.S)
    if m:
        try:
            line = ast.literal_eval(m.group(2))
        except Exception:
            line = b""
        kinds = []
        name = line.split(b":", 1)[0]
        if b":" not in line:
            kinds.append("no colon")
        elif name != name.rstrip(b" \t"):
            kinds.append("whitespace before colon")
        elif not name:
            kinds.append("empty name")
        elif b" " in name or b"\t" in name:
            kinds.append("space in name")
        elif re.search(rb"[\x00-\x1f\x7f]", name):
            kinds.append("control byte in name")
        if b"\r" in line:
            kinds.append("bare CR")
        if re.search(rb"[\x00\x0b\x0c]", line.split(b":", 1)[-1]):
            kinds.append("NUL/VT/FF in value")
        return "illegal header line (%s)" % (", ".join(kinds) or "other")
    m = re.match(r"(illegal request line|illegal chunk header|malformed chunk footer)", e)
    if m:
        return m.group(1)
    return re.sub(r"[:(].*", "", e).strip() or e


def run_one(args, sid, data, rep, feats, tagged, idle):
    h = h11_frame(data)
    lenient = h11_frame(rep) if rep is not None and rep != data else None
    raw, closed, note = talk(args.host, args.port, data, idle)
    resps, interim, garbage = parse_responses(raw)
    intended = intended_tags(data)
    if note.startswith("connect:"):
        bucket, outcome, detail = DISAGREE, "connect-failed", note
    elif garbage is not None:
        bucket, outcome, detail = DISAGREE, "unparseable-response", "garbage: %s" % garbage
    else:
        bucket, outcome, detail = classify(h, lenient, resps, closed, intended, tagged)
    rec = {
        "id": sid, "stream": esc(data), "features": feats,
        "h11": {"end": h["end"], "error": h["error"], "stage": h["stage"],
                "requests": h["requests"], "partial": h["partial"],
                "class": h11_error_class(h)},
        "server": {"responses": resps, "interim": interim, "closed": closed, "note": note,
                   "raw_head": esc(raw[:600])},
        "bucket": bucket, "outcome": outcome, "detail": detail,
    }
    if lenient is not None:
        rec["repaired"] = esc(rep)
        rec["h11_repaired"] = {"end": lenient["end"], "error": lenient["error"],
                               "requests": lenient["requests"], "summary": h11_summary(lenient)}
    return rec


def server_summary(s):
    parts = []
    for x in s["responses"]:
        parts.append("%d%s%s" % (x["status"], (" ->" + x["tag"]) if x["tag"] else "",
                                  " [%s]" % x["reason"] if x["status"] >= 400 and x["status"] != 404 else ""))
    return "server answers %d: [%s]%s, %s%s" % (
        len(s["responses"]), ", ".join(parts),
        " (+%d interim 1xx)" % s["interim"] if s["interim"] else "",
        "closed" if s["closed"] else "still open",
        (" (" + s["note"] + ")") if s["note"] else "")


def print_record(rec, out=sys.stdout):
    print("#%s %s/%s: %s" % (rec["id"], rec["bucket"], rec["outcome"], rec["detail"]), file=out)
    print("  features: %s" % " ".join(rec["features"]), file=out)
    print("  stream:   b'%s'" % rec["stream"], file=out)
    print("  h11:      %s" % h11_summary(rec["h11"]), file=out)
    if rec.get("repaired") and rec["h11"]["end"] == "reject":
        print("  repaired: b'%s'" % rec["repaired"], file=out)
        print("  lenient:  %s" % rec["h11_repaired"]["summary"], file=out)
    print("  server:   %s" % server_summary(rec["server"]), file=out)


def probe_tagged(host, port, idle):
    raw, closed, note = talk(host, port, b"GET /d?probe-0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", max(idle, 1.0))
    resps, _, _ = parse_responses(raw)
    if not resps:
        sys.exit("no answer from %s:%d (%s)" % (host, port, note or "nothing received"))
    return resps[0]["tag"] == "probe-0"


# The differences with h11 that the README argues, by key: what the server
# does, and why. Every non-agreeing stream must be one of them (--argued).
ARGUED = {
    "no-host": "answers an HTTP/1.1 request without Host, as Python does "
               "(CPython's own tests send such requests)",
    "request-line-whitespace": "splits the request line on Python's whitespace "
               "(VT, FF, \\x1c-\\x1f, \\x85, NBSP, repeated or leading spaces), as Python does; "
               "where the head ends does not depend on it",
    "te-empty-element": "ignores empty elements in the Transfer-Encoding list "
               "(`, chunked` is chunked: RFC 9110 5.6.1 says a recipient MUST)",
    "stricter-obs-fold": "refuses an obs-fold continuation line with 400 (RFC 9112 5.2 allows it)",
    "stricter-te-and-cl": "refuses Transfer-Encoding beside Content-Length with 400 "
               "(RFC 9112 6.1 allows it)",
    "stricter-te-in-http10": "refuses Transfer-Encoding in an HTTP/1.0 request with 400 "
               "(RFC 9112 6.1: its framing is faulty)",
    "stricter-cl-overflow": "refuses a Content-Length beyond 2^64-1 with 400 (no such body can be read)",
    "stricter-ctl-in-value": "refuses a control byte in a field value with 400 "
               "(RFC 9110 5.5: not a field-vchar)",
}

PY_SPACE = set(b" \t\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0")


def first_head(stream):
    end = stream.find(b"\n\n")
    crlf = stream.find(b"\r\n\r\n")
    cuts = [c for c in (end, crlf) if c >= 0]
    return stream[:min(cuts)] if cuts else stream


def header_values(head, name):
    out = []
    for line in head.split(b"\n")[1:]:
        line = line.rstrip(b"\r")
        if b":" in line:
            k, v = line.split(b":", 1)
            if k.strip().lower() == name:
                out.append(v)
    return out


def argued(rec):
    """The ARGUED key this non-agreeing record falls under, or None."""
    stream = codecs.escape_decode(rec["stream"].encode("latin-1"))[0]
    head = first_head(stream)
    line = head.split(b"\n")[0].rstrip(b"\r")
    hclass = rec["h11"].get("class") or ""
    reasons = [r.get("reason") or "" for r in rec["server"]["responses"]]
    if rec["bucket"] == LENIENT:
        if hclass.startswith("Missing mandatory Host"):
            return "no-host" if not header_values(head, b"host") else None
        if hclass.startswith("illegal request line"):
            words = line.split(b" ")
            odd = any(b in PY_SPACE - {0x20} for b in line) or len(words) != 3 or b"" in words
            return "request-line-whitespace" if odd else None
        if hclass.startswith("Only Transfer-Encoding"):
            codings = [c.strip(b" \t").lower() for v in header_values(head, b"transfer-encoding")
                       for c in v.split(b",")]
            codings = [c for c in codings if c]
            return "te-empty-element" if codings == [b"chunked"] else None
        return None
    if rec["bucket"] == STRICTER:
        if not rec["server"]["closed"] or len(reasons) != 1:
            return None
        reason = reasons[0]
        if reason == "Bad header name" and re.search(rb"\n[ \t]", head):
            return "stricter-obs-fold"
        if reason == "Both Transfer-Encoding and Content-Length":
            return "stricter-te-and-cl"
        if reason == "Transfer-Encoding in an HTTP/1.0 request":
            return "stricter-te-in-http10"
        if reason == "Bad Content-Length":
            values = [c.strip(b" \t") for v in header_values(head, b"content-length") for c in v.split(b",")]
            if any(v.isdigit() and int(v) >= 2 ** 64 for v in values):
                return "stricter-cl-overflow"
            return None
        if reason == "Bad header value" and re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", head.replace(b"\r\n", b"\n").replace(b"\n", b"")):
            return "stricter-ctl-in-value"
        return None
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--seed", default="1")
    ap.add_argument("--verbose", action="store_true", help="print every stream, not only disagreements")
    ap.add_argument("--json", help="write every record to this file")
    ap.add_argument("--workers", type=int, default=16, help="parallel connections (default 16)")
    ap.add_argument("--idle", type=float, default=0.3,
                    help="stop reading this long after the last byte if the server has not closed (default 0.3 s)")
    ap.add_argument("--confirm-idle", type=float, default=1.5,
                    help="re-run each non-agreeing stream the server left open with this idle time (0: no re-run; default 1.5 s)")
    ap.add_argument("--only", help="comma-separated stream ids to run (same seed)")
    ap.add_argument("--stream", action="append",
                    help="run this stream instead (Python escapes, e.g. 'GET /d?r1-0 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'); repeatable")
    ap.add_argument("--max-print", type=int, default=0, help="print at most this many disagreements (0: all)")
    ap.add_argument("--untagged-ok", action="store_true",
                    help="run even if the root has no directory d (counts and statuses only)")
    ap.add_argument("--quiet-stricter", action="store_true", help="do not print tinyserve-stricter records")
    ap.add_argument("--argued", action="store_true",
                    help="pass only if every non-agreeing stream is one of the ARGUED differences")
    args = ap.parse_args()

    t0 = time.monotonic()
    tagged = probe_tagged(args.host, args.port, args.idle)
    if not tagged:
        msg = ("the served root has no directory `d` (GET /d?x is not a 301 with Location).  "
               "Without it every answer is a 404, which closes the connection (Python's "
               "send_error, mirrored by tinyserve), so nothing after the first request would "
               "be tested.  mkdir ROOT/d, or pass --untagged-ok to compare counts anyway.")
        if not args.untagged_ok:
            sys.exit("error: " + msg)
        print("warning: " + msg, file=sys.stderr)

    if args.stream:
        jobs = [(i, codecs.escape_decode(s.encode("latin-1"))[0], None, ["custom"])
                for i, s in enumerate(args.stream)]
    else:
        ids = [int(x) for x in args.only.split(",")] if args.only else range(args.count)
        jobs = [(sid,) + gen_stream(args.seed, sid) for sid in ids]

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.workers)) as ex:
        futs = [ex.submit(run_one, args, sid, data, rep, feats, tagged, args.idle)
                for sid, data, rep, feats in jobs]
        records = [f.result() for f in futs]

    # Timing can make a slow answer look like silence: re-run, with patience,
    # every non-agreeing stream the server left open; keep the second verdict.
    if args.confirm_idle > 0:
        by_id = {sid: (data, rep, feats) for sid, data, rep, feats in jobs}
        redo = [k for k, rec in enumerate(records)
                if rec["bucket"] != AGREE and not rec["server"]["closed"]]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.workers)) as ex:
            futs = {k: ex.submit(run_one, args, records[k]["id"], *by_id[records[k]["id"]],
                                 tagged=tagged, idle=args.confirm_idle) for k in redo}
            for k, f in futs.items():
                again, rec = f.result(), records[k]
                if (again["bucket"], again["outcome"]) != (rec["bucket"], rec["outcome"]):
                    again["detail"] += " (first run: %s/%s)" % (rec["bucket"], rec["outcome"])
                records[k] = again

    counts = {AGREE: 0, STRICTER: 0, LENIENT: 0, DISAGREE: 0}
    outcomes = {}
    classes = {}
    printed = 0
    for rec in records:
        counts[rec["bucket"]] += 1
        outcomes[(rec["bucket"], rec["outcome"])] = outcomes.get((rec["bucket"], rec["outcome"]), 0) + 1
        show = args.verbose or rec["bucket"] in (DISAGREE, LENIENT) or (
            rec["bucket"] == STRICTER and not args.quiet_stricter)
        if rec["bucket"] != AGREE:
            key = (rec["bucket"], rec["outcome"], rec["h11"]["class"])
            c = classes.setdefault(key, {"n": 0, "example": rec})
            c["n"] += 1
            if len(rec["stream"]) < len(c["example"]["stream"]):
                c["example"] = rec
        if show and (args.max_print == 0 or printed < args.max_print or args.verbose):
            print_record(rec)
            printed += 1

    print()
    print("outcomes:")
    for (b, o), v in sorted(outcomes.items()):
        print("  %-28s %-24s %5d" % (b, o, v))
    if classes:
        print("non-agreeing classes (bucket / outcome / h11 verdict: count; shortest example):")
        for (b, o, hc), c in sorted(classes.items(), key=lambda kv: (kv[0][0], -kv[1]["n"])):
            print("  [%s / %s / %s] x%d" % (b, o, hc, c["n"]))
            ex = c["example"]
            print("      #%s b'%s'" % (ex["id"], ex["stream"]))
            print("      %s" % server_summary(ex["server"]))
    d = counts[DISAGREE] + counts[LENIENT]
    print("time: %.1f s; disagree = %d misframed/smuggled + %d h11-rejects-server-accepts" % (
        time.monotonic() - t0, counts[DISAGREE], counts[LENIENT]))
    print("streams: %d, agree: %d, tinyserve-stricter: %d, disagree: %d" % (
        len(records), counts[AGREE], counts[STRICTER], d))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seed": args.seed, "tagged": tagged, "counts": counts, "records": records}, f, indent=1)
    if not args.argued:
        sys.exit(1 if d > 0 else 0)
    by_key = {}
    unargued = []
    for rec in records:
        if rec["bucket"] in (LENIENT, STRICTER):
            key = argued(rec)
            if key is None:
                unargued.append(rec)
            else:
                by_key[key] = by_key.get(key, 0) + 1
    print("argued differences:")
    for key, n in sorted(by_key.items(), key=lambda kv: -kv[1]):
        print("  %-26s %5d  %s" % (key, n, ARGUED[key]))
    for rec in unargued:
        print("UNARGUED:")
        print_record(rec)
    print("argued: %d, unargued: %d, misframed: %d" % (sum(by_key.values()), len(unargued), counts[DISAGREE]))
    sys.exit(1 if unargued or counts[DISAGREE] else 0)


if __name__ == "__main__":
    main()
