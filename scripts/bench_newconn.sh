#!/usr/bin/env bash
# One request per connection, tinyserve against nginx, side by side in one
# run: `wrk -t1 -c50 -H 'Connection: close'` for a 1 KiB file, the server
# pinned to CPU 0 and wrk to CPU 1, rounds alternating between the servers
# so drift hits both. Reports median req/s, p50 and p99 latency, the ratio
# to nginx, wrk's own CPU per connection (on loopback much of the TCP work
# of both ends runs on the client's CPU), and for each tinyserve its
# syscalls per connection (`strace -c`) and user-space instructions per
# connection (`valgrind --tool=callgrind`, repeatable).
#
# Usage:
#   bash scripts/bench_newconn.sh
#   NEWCONN_BINS="before=/tmp/old/tinyserve after=target/release/tinyserve" bash scripts/bench_newconn.sh
#
# Environment: NEWCONN_SECONDS (5), NEWCONN_ROUNDS (5), NEWCONN_BINS
# (label=path ...; default: this tree's release build), NEWCONN_COUNT
# (2000 connections for strace and callgrind).
set -euo pipefail
SECS=${NEWCONN_SECONDS:-5}
ROUNDS=${NEWCONN_ROUNDS:-5}
COUNT=${NEWCONN_COUNT:-2000}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
HELPER=(python3 "$SCRIPT_DIR/bench_helper.py")
say() { printf '[newconn] %s\n' "$*" >&2; }
for t in wrk taskset strace valgrind; do
    command -v $t >/dev/null || { echo "needs $t (apt-get install -y wrk util-linux strace valgrind)" >&2; exit 2; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || { echo "needs nginx (apt-get install -y nginx-light)" >&2; exit 2; }
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"
start_session bench-newconn "${NEWCONN_KEEP:-0}"
cd "$REPO"
if [[ -z ${NEWCONN_BINS:-} ]]; then
    cargo build --release --quiet
    NEWCONN_BINS="tinyserve=$REPO/target/release/tinyserve"
fi
mkdir -p "$TMP/www" "$TMP/nginx"
head -c 1024 /dev/zero | tr '\0' a >"$TMP/www/f1k.txt"
chmod 755 "$TMP"
chmod -R a+rX "$TMP/www"

declare -A CMD
LABELS=(nginx)
for pair in $NEWCONN_BINS; do
    LABELS+=("${pair%%=*}")
    CMD[${pair%%=*}]="${pair#*=} -q -b 127.0.0.1 -d $TMP/www {port}"
done

start() { # LABEL -> PID, PORT
    PORT=$("${HELPER[@]}" freeport)
    if [[ $1 == nginx ]]; then
        cat >"$TMP/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    server { listen 127.0.0.1:$PORT; root $TMP/www; }
}
CONF
        taskset -c 0 "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >/dev/null 2>&1 &
    else
        read -r -a cmd <<<"${CMD[$1]//\{port\}/$PORT}"
        taskset -c 0 "${cmd[@]}" >/dev/null 2>&1 &
    fi
    PID=$!
    PIDS+=("$PID")
    "${HELPER[@]}" waitport "$PORT" 10
}

cat >"$TMP/report.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("BENCHRESULT %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99)))
end
LUA

declare -A RESULTS
for label in "${LABELS[@]}"; do
    start "$label"
    eval "PORT_$label=$PORT PID_$label=$PID"
done
for round in $(seq 1 "$ROUNDS"); do
    for label in "${LABELS[@]}"; do
        port_var=PORT_$label
        url=http://127.0.0.1:${!port_var}/f1k.txt
        /usr/bin/time -f "%U %S" -o "$TMP/time" taskset -c 1 wrk -t1 -c50 -d"${SECS}s" \
            -H 'Connection: close' -s "$TMP/report.lua" "$url" >"$TMP/out"
        read -r _ requests duration p50 p99 < <(grep BENCHRESULT "$TMP/out")
        read -r user sys <"$TMP/time"
        line=$(python3 -c "print(round($requests / ($duration / 1e6)), $p50, $p99, '%.1f' % (($user + $sys) / $requests * 1e6))")
        RESULTS[$label]+="$line"$'\n'
        say "round $round $label: $line (req/s p50_us p99_us wrk_us_per_conn)"
    done
done
for label in "${LABELS[@]}"; do
    pid_var=PID_$label
    stop_pid "${!pid_var}"
done

median() { sort -n | sed -n "$(((ROUNDS + 1) / 2))p"; }
col() { awk -v c="$1" 'NF {print $c}' <<<"${RESULTS[$2]}" | median; }
nginx_rps=$(col 1 nginx)

# Syscalls and instructions per connection, each tinyserve alone.
declare -A SYSCALLS INSNS
for label in "${LABELS[@]}"; do
    [[ $label == nginx ]] && continue
    PORT=$("${HELPER[@]}" freeport)
    read -r -a cmd <<<"${CMD[$label]//\{port\}/$PORT}"
    strace -f -c -o "$TMP/strace.$label" "${cmd[@]}" >/dev/null 2>&1 &
    spid=$!
    "${HELPER[@]}" waitport "$PORT" 10
    python3 - "$PORT" "$COUNT" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /f1k.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    while s.recv(65536):
        pass
    s.close()
PY
    # (A background job ignores SIGINT: TERM the server, strace then ends.)
    pkill -TERM -P "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    SYSCALLS[$label]=$(awk -v n="$COUNT" '$NF ~ /^(accept4|accept|epoll_ctl|epoll_wait|recvfrom|read|sendto|write|writev|sendfile|close|shutdown|setsockopt|getsockopt)$/ {
        calls = ($4 ~ /^[0-9]+$/) ? $4 : $3; printf "%s %.2f, ", $NF, calls / n }' "$TMP/strace.$label")
    PORT=$("${HELPER[@]}" freeport)
    read -r -a cmd <<<"${CMD[$label]//\{port\}/$PORT}"
    valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.$label" "${cmd[@]}" >/dev/null 2>"$TMP/vg.$label" &
    vpid=$!
    "${HELPER[@]}" waitport "$PORT" 60
    python3 - "$PORT" 200 <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /f1k.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    while s.recv(65536):
        pass
    s.close()
PY
    # Start-up and 200 warm-up connections go into a first dump; the
    # second holds 1000 connections alone (a dump resets the counters).
    callgrind_control -d "$vpid" >/dev/null 2>&1 || true
    first=$(ls "$TMP"/cg."$label"* 2>/dev/null | sort | tail -1)
    python3 - "$PORT" 1000 <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /f1k.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    while s.recv(65536):
        pass
    s.close()
PY
    callgrind_control -d "$vpid" >/dev/null 2>&1 || true
    last=$(ls "$TMP"/cg."$label"* 2>/dev/null | sort | tail -1)
    kill -TERM "$vpid" 2>/dev/null || true
    wait "$vpid" 2>/dev/null || true
    if [[ -n $last && $last != "$first" ]]; then
        INSNS[$label]=$(awk '/^summary:|^totals:/ {print $2; exit}' "$last" | awk '{printf "%d", $1 / 1000}')
    else
        INSNS[$label]="n.a."
    fi
done

echo
echo "One request per connection, 1 KiB file: \`wrk -t1 -c50 -d${SECS}s -H 'Connection: close'\`, server on CPU 0, wrk on CPU 1; median of $ROUNDS alternating rounds"
echo
echo "| server | req/s | vs nginx | p50 ms | p99 ms | wrk CPU µs per connection |"
echo "|---|---:|---:|---:|---:|---:|"
for label in "${LABELS[@]}"; do
    rps=$(col 1 "$label")
    echo "| $label | $rps | $(python3 -c "print('%.2fx' % ($rps / $nginx_rps))") | $(python3 -c "print('%.2f' % ($(col 2 "$label") / 1000))") | $(python3 -c "print('%.2f' % ($(col 3 "$label") / 1000))") | $(col 4 "$label") |"
done
echo
for label in "${LABELS[@]}"; do
    [[ $label == nginx ]] && continue
    echo "- $label: syscalls per connection (strace -c, $COUNT connections): ${SYSCALLS[$label]%, }; user-space instructions per connection (callgrind, 1000 connections): ${INSNS[$label]}"
done
