#!/usr/bin/env bash
# 10,000 idle keep-alive connections against tinyserve: what they cost the
# server in memory, whether another client still gets full speed while they
# are held, and whether they are all still open at the end.
#
# Usage:
#   bash scripts/idle.sh
#   IDLE_COUNT=2000 bash scripts/idle.sh
#
# Environment (all optional):
#   IDLE_COUNT=10000          idle connections to hold
#   IDLE_MAX_CONNECTIONS=auto tinyserve --max-connections: "auto" = IDLE_COUNT+100,
#                             "default" = do not pass the flag (the server then
#                             takes (open-file limit - 32) / 2)
#   IDLE_TINYSERVE_ARGS=""    more flags for tinyserve
#   IDLE_SETUP_TIMEOUT=180    seconds the client may take to set them all up
#   IDLE_WRK_SECONDS=5        wrk -t1 -c10 -d<this>s, run before, during and after
#   IDLE_NOFILE=65536         wanted open-file limit (capped at the hard limit)
#   IDLE_BIN=path             tinyserve binary (default target/release/tinyserve)
#   IDLE_NO_BUILD=1           do not run `cargo build --release`
#   IDLE_KEEP=1               keep the temp dir
#   IDLE_PREOPEN=10000        then: this many pre-opened sockets (connected,
#                             nothing sent) against the default connection
#                             limit, and how long a new client waits (0: skip)
#
# Steps: start `tinyserve -q -b 127.0.0.1 --idle-timeout 300 --max-connections
# N+100`; one request to warm it; wrk (baseline); read VmRSS/VmHWM and the
# descriptor count from /proc/PID; scripts/idle_client.py opens the idle
# connections (one full keep-alive request and response each, then silence);
# read /proc again; wrk again with them held; count the server's descriptors;
# the client checks that every connection is still open; it closes them; wrk
# a third time. Loopback only, bounded in time; everything started is
# stopped on exit. Installs nothing: if wrk is missing it prints the apt-get
# line and exits 2.

set -euo pipefail

COUNT=${IDLE_COUNT:-10000}
MAXC=${IDLE_MAX_CONNECTIONS:-auto}
TS_ARGS=${IDLE_TINYSERVE_ARGS:-}
WRK_S=${IDLE_WRK_SECONDS:-5}
SETUP_TIMEOUT=${IDLE_SETUP_TIMEOUT:-180}
WANT_NOFILE=${IDLE_NOFILE:-65536}
PREOPEN=${IDLE_PREOPEN:-10000}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
BIN=${IDLE_BIN:-$REPO/target/release/tinyserve}

say() { printf '[idle] %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null 2>&1; then
    echo "wrk is missing; install it with:" >&2
    echo "    apt-get update && apt-get install -y wrk" >&2
    exit 2
fi
command -v python3 >/dev/null 2>&1 || { echo "python3 is required" >&2; exit 2; }

ulimit -Hn "$WANT_NOFILE" 2>/dev/null || true
hard=$(ulimit -Hn)
if [[ $hard == unlimited ]] || ((hard >= WANT_NOFILE)); then
    ulimit -n "$WANT_NOFILE"
else
    ulimit -n "$hard"
    say "hard open-file limit is $hard: using $hard, not $WANT_NOFILE"
fi
NOFILE=$(ulimit -n)
if ((NOFILE < COUNT + 64)); then
    echo "open-file limit $NOFILE is too low for $COUNT connections" >&2
    exit 1
fi

# ------------------------------------------------------------ clean-up

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_session idle "${IDLE_KEEP:-0}"

# ------------------------------------------------------------ build, server

cd "$REPO"
if [[ ${IDLE_NO_BUILD:-0} != 1 && -z ${IDLE_BIN:-} ]]; then
    say "cargo build --release"
    cargo build --release --quiet
fi
[[ -x $BIN ]] || { echo "no tinyserve binary at $BIN" >&2; exit 1; }

ROOT=$TMP/www
mkdir -p "$ROOT"
head -c 1024 /dev/urandom >"$ROOT/1k.bin"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
SERVER_ARGS=(-q -b 127.0.0.1 -d "$ROOT" --idle-timeout 300)
case $MAXC in
    auto) SERVER_ARGS+=(--max-connections $((COUNT + 100))) ;;
    default) ;;
    *) SERVER_ARGS+=(--max-connections "$MAXC") ;;
esac
# shellcheck disable=SC2206
SERVER_ARGS+=($TS_ARGS "$PORT")
"$BIN" "${SERVER_ARGS[@]}" >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER=$!
PIDS+=("$SERVER")
URL="http://127.0.0.1:$PORT/1k.bin"
get_once() {
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5).read()' "$URL"
}
for _ in $(seq 1 100); do
    get_once 2>/dev/null && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$TMP/server.err" >&2; exit 1; }
    sleep 0.1
done
get_once

status_kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$SERVER/status"; }
# shellcheck disable=SC2012 # /proc fd names are numbers
fds() { ls "/proc/$SERVER/fd" | wc -l; }
sock_mem_pages() { awk '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "mem") print $(i + 1) }' /proc/net/sockstat; }

# wrk's Requests/sec and 99th percentile latency, as "RPS P99".
run_wrk() { # label
    local out=$TMP/wrk.$1
    wrk -t1 -c10 -d"${WRK_S}s" --latency "$URL" >"$out" 2>&1 || true
    local rps p99 errs
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    errs=$(awk '/Socket errors|Non-2xx/ {sub(/^ +/, ""); printf "%s; ", $0}' "$out")
    echo "${rps:-?} ${p99:-?} ${errs:-none}"
}

say "tinyserve ${SERVER_ARGS[*]} (pid $SERVER); open-file limit $NOFILE; load $(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------ measure

read -r RPS0 P99_0 ERR0 <<<"$(run_wrk before)"
sleep 1
say "wrk without idle connections: $RPS0 req/s, p99 $P99_0"
RSS0=$(status_kib VmRSS) HWM0=$(status_kib VmHWM) FD0=$(fds) SOCK0=$(sock_mem_pages)

READY=$TMP/ready
python3 "$SCRIPT_DIR/idle_client.py" --port "$PORT" --count "$COUNT" --path /1k.bin \
    --ready-file "$READY" --setup-timeout "$SETUP_TIMEOUT" --hold-seconds 600 \
    >"$TMP/client.out" 2>"$TMP/client.err" &
CLIENT=$!
PIDS+=("$CLIENT")
for _ in $(seq 1 $((SETUP_TIMEOUT * 10 + 200))); do
    [[ -s $READY ]] && break
    kill -0 "$CLIENT" 2>/dev/null || break
    sleep 0.1
done
[[ -s $READY ]] || { echo "the idle client did not get ready" >&2; cat "$TMP/client.err" >&2; exit 1; }
read -r IDLE SETUP_S SETUP_ERR < <(python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))
print(r["idle"], r["setup_s"], ",".join("%s:%s" % kv for kv in sorted(r["errors"].items())) or "none")' "$READY")
say "idle client: $IDLE connections held after ${SETUP_S}s (set-up errors: $SETUP_ERR)"
sleep 1
RSS1=$(status_kib VmRSS) HWM1=$(status_kib VmHWM) FD1=$(fds) SOCK1=$(sock_mem_pages)

read -r RPS1 P99_1 ERR1 <<<"$(run_wrk during)"
say "wrk with $IDLE idle connections: $RPS1 req/s, p99 $P99_1"
FD2=$(fds) RSS2=$(status_kib VmRSS) HWM2=$(status_kib VmHWM)
SERVER_ALIVE=yes
kill -0 "$SERVER" 2>/dev/null || SERVER_ALIVE=NO

kill -USR1 "$CLIENT"
wait "$CLIENT" 2>/dev/null || true
read -r HELD STILL CLOSED UNEXP < <(python3 -c 'import json,sys
try:
    r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
    print(r["held"], r["still_open"], r["closed_during_hold"], r["unexpected_data"])
except Exception:
    print("? ? ? ?")' "$TMP/client.out")
sleep 1
FD3=$(fds)
read -r RPS2 P99_2 ERR2 <<<"$(run_wrk after)"
say "wrk after the idle connections closed: $RPS2 req/s, p99 $P99_2"

kib_per() { # delta_kib count
    python3 -c 'import sys; d, n = int(sys.argv[1]), int(sys.argv[2]); print("%.2f" % (d / n) if n else "?")' "$1" "$2"
}
PAGE_KIB=$(($(getconf PAGESIZE) / 1024))

echo
echo "tinyserve with $IDLE idle keep-alive connections (each sent one request and read its answer; wanted $COUNT), --idle-timeout 300."
echo
echo "| measure | without idle conns | with idle conns | difference |"
echo "|---|---:|---:|---:|"
echo "| server VmRSS (KiB) | $RSS0 | $RSS1 | $((RSS1 - RSS0)) = $(kib_per $((RSS1 - RSS0)) "$IDLE") KiB per connection |"
echo "| server VmHWM (KiB) | $HWM0 | $HWM1 | $((HWM1 - HWM0)) = $(kib_per $((HWM1 - HWM0)) "$IDLE") KiB per connection |"
echo "| kernel TCP memory, both ends (KiB, /proc/net/sockstat) | $((SOCK0 * PAGE_KIB)) | $((SOCK1 * PAGE_KIB)) | $(((SOCK1 - SOCK0) * PAGE_KIB)) |"
echo "| server open descriptors | $FD0 | $FD1 | $((FD1 - FD0)) |"
echo "| wrk -t1 -c10 -d${WRK_S}s req/s | $RPS0 (after: $RPS2) | $RPS1 | $(python3 -c 'import sys
try: print("%+.1f%%" % (100.0 * (float(sys.argv[2]) / float(sys.argv[1]) - 1)))
except Exception: print("?")' "$RPS0" "$RPS1") |"
echo "| wrk p99 latency | $P99_0 (after: $P99_2) | $P99_1 | |"
echo
echo "| end check | value |"
echo "|---|---:|"
echo "| idle connections held by the client | $HELD |"
echo "| still open at the end (client's MSG_PEEK check) | $STILL |"
echo "| closed by the server while held | $CLOSED |"
echo "| server descriptors after the wrk run, while held | $FD2 (baseline $FD0, so $((FD2 - FD0)) connections) |"
echo "| server descriptors after the client closed them | $FD3 |"
echo "| server RSS / HWM at the end of the hold (KiB) | $RSS2 / $HWM2 |"
echo "| held connections on which the server sent unasked bytes | $UNEXP |"
echo "| server alive | $SERVER_ALIVE |"
echo "| set-up time, set-up errors | ${SETUP_S} s, $SETUP_ERR |"
echo "| wrk errors before / during / after | $ERR0 / $ERR1 / $ERR2 |"
echo
echo "tinyserve ${SERVER_ARGS[*]}; open-file limit $NOFILE; $(nproc) CPUs; load average at end $(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------ pre-opened sockets

((PREOPEN > 0)) || exit 0
stop_pid "$SERVER"
# At 20,000 descriptors the default limit is (20000 - 32) / 2 = 9984
# connections: 10,000 sockets that send nothing are more than it takes.
ulimit -n 20000 2>/dev/null || true
PRE_ARGS=(-q -b 127.0.0.1 -d "$ROOT" "$PORT")
"$BIN" "${PRE_ARGS[@]}" >"$TMP/server2.out" 2>"$TMP/server2.err" &
SERVER=$!
PIDS+=("$SERVER")
for _ in $(seq 1 100); do get_once 2>/dev/null && break; sleep 0.1; done
READY2=$TMP/ready2
python3 "$SCRIPT_DIR/idle_client.py" --port "$PORT" --count "$PREOPEN" --preopen \
    --ready-file "$READY2" --setup-timeout "$SETUP_TIMEOUT" --hold-seconds 600 \
    >"$TMP/client2.out" 2>"$TMP/client2.err" &
CLIENT2=$!
PIDS+=("$CLIENT2")
for _ in $(seq 1 $((SETUP_TIMEOUT * 10 + 200))); do
    [[ -s $READY2 ]] && break
    kill -0 "$CLIENT2" 2>/dev/null || break
    sleep 0.1
done
[[ -s $READY2 ]] || { echo "the pre-opening client did not get ready" >&2; cat "$TMP/client2.err" >&2; exit 1; }
PRE_IDLE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["idle"])' "$READY2")
sleep 1
# A new client, 20 times on fresh connections: how long each waits.
read -r NEW_MED NEW_MAX NEW_FAIL < <(python3 - "$PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1]); waits = []; fails = 0
for _ in range(20):
    t = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=15)
        s.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b: break
            data += b
        s.close()
        fails += not data.startswith(b"HTTP/1.1 200")
    except OSError:
        fails += 1
    waits.append((time.monotonic() - t) * 1000)
    time.sleep(0.05)
waits.sort()
print("%.2f %.2f %d" % (waits[len(waits) // 2], waits[-1], fails))
PY
)
kill -USR1 "$CLIENT2"
wait "$CLIENT2" 2>/dev/null || true
read -r PRE_HELD PRE_STILL PRE_CLOSED < <(python3 -c 'import json,sys
try:
    r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
    print(r["held"], r["still_open"], r["closed_during_hold"])
except Exception:
    print("? ? ?")' "$TMP/client2.out")
echo
echo "Pre-opened sockets: $PRE_IDLE connected and sent nothing (wanted $PREOPEN), default connection limit at $(ulimit -n) descriptors."
echo
echo "| measure | value |"
echo "|---|---:|"
echo "| pre-opened sockets held | $PRE_HELD |"
echo "| of them still open at the end | $PRE_STILL |"
echo "| closed by the server to make room | $PRE_CLOSED |"
echo "| new client, 20 GETs on fresh connections: median / worst wait (ms) | $NEW_MED / $NEW_MAX |"
echo "| new client failures | $NEW_FAIL |"
