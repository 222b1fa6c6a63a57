#!/usr/bin/env bash
# Slow-client abuse test: slowhttptest (slowloris and slow read) against
# tinyserve and against `python3 -m http.server`, while a normal client keeps
# fetching a 1 KiB file on new connections. Prints one markdown table of the
# normal client's success rate and latency under each attack.
#
# Usage:
#   bash scripts/abuse.sh                         # 4 runs of 30 s
#   ABUSE_SECONDS=10 bash scripts/abuse.sh        # quicker
#   ABUSE_TINYSERVE_ARGS='--header-timeout 5' bash scripts/abuse.sh
#
# Environment (all optional):
#   ABUSE_SECONDS=30           seconds the normal client measures, per run
#                              (the attack runs ABUSE_WARMUP + ABUSE_SECONDS + 2)
#   ABUSE_WARMUP=1             seconds of attack before the client starts
#   ABUSE_SERVERS="tinyserve python"
#   ABUSE_MODES="slowloris slowread"
#   ABUSE_CONNS=4000           slowhttptest -c
#   ABUSE_RATE=1000            slowhttptest -r (new connections per second)
#   ABUSE_TINYSERVE_ARGS=""    extra flags for tinyserve (e.g. --header-timeout 5)
#   ABUSE_CLIENT_THREADS=2     normal client threads (each one sequential)
#   ABUSE_CLIENT_INTERVAL_MS=10  pause between two requests of one thread
#   ABUSE_CLIENT_TIMEOUT=5     per-request budget, seconds
#   ABUSE_NOFILE=65536         wanted open-file limit (capped at the hard limit)
#   ABUSE_BIN=path             tinyserve binary (default target/release/tinyserve)
#   ABUSE_NO_BUILD=1           do not run `cargo build --release`
#   ABUSE_KEEP=1               keep the temp dir (fixture, logs, CSVs)
#   ABUSE_STALLS=0             skip the stall probe (scripts/stall_probe.py) at the end
#
# Attacks (slowhttptest 1.8.2):
#   slowloris: -H -c 4000 -r 1000 -i 10 -s 8192 -l T -u http://127.0.0.1:P/1k.bin
#   slow read: -X -c 4000 -r 1000 -w 512 -y 1024 -n 5 -z 32 -k 3 -l T
#              -u http://127.0.0.1:P/1m.bin   (a 1 MiB file)
#
# Everything listens on and targets 127.0.0.1 only; every run is bounded by
# `timeout`; every process started is stopped on exit. Installs nothing: if
# slowhttptest is missing it prints the apt-get line and exits 2.
#
# Goal for tinyserve: 100% success and p99 < 100 ms under either attack.
#
# slowhttptest does not replace connections the server closes: when
# tinyserve's --header-timeout (10 s) closes the slowloris connections with
# 408 the attack is over ("No open connections left"), and the second table
# says when. The client's time offsets there count from ABUSE_WARMUP s into
# the attack.

set -euo pipefail

DUR=${ABUSE_SECONDS:-30}
WARMUP=${ABUSE_WARMUP:-1}
SERVERS=${ABUSE_SERVERS:-tinyserve python}
MODES=${ABUSE_MODES:-slowloris slowread}
CONNS=${ABUSE_CONNS:-4000}
RATE=${ABUSE_RATE:-1000}
TS_ARGS=${ABUSE_TINYSERVE_ARGS:-}
C_THREADS=${ABUSE_CLIENT_THREADS:-2}
C_INTERVAL=${ABUSE_CLIENT_INTERVAL_MS:-10}
C_TIMEOUT=${ABUSE_CLIENT_TIMEOUT:-5}
WANT_NOFILE=${ABUSE_NOFILE:-65536}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
BIN=${ABUSE_BIN:-$REPO/target/release/tinyserve}

say() { printf '[abuse] %s\n' "$*" >&2; }

# ------------------------------------------------------------ tools

if ! command -v slowhttptest >/dev/null 2>&1; then
    echo "slowhttptest is missing; install it with:" >&2
    echo "    apt-get update && apt-get install -y slowhttptest" >&2
    exit 2
fi
command -v python3 >/dev/null 2>&1 || { echo "python3 is required" >&2; exit 2; }

# The newest Python for the Python server: pyenv's newest 3.x, else python3.
PY=$(command -v python3)
if command -v pyenv >/dev/null 2>&1; then
    newest=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.[0-9]+\.[0-9]+$' | sort -V | tail -n 1 || true)
    if [[ -n $newest ]] && p=$(PYENV_VERSION=$newest pyenv which python3 2>/dev/null); then
        PY=$p
    fi
fi
PY_VERSION=$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')

# ------------------------------------------------------------ limits

# Raise the open-file limit for this shell and so for the servers and
# slowhttptest. Raising the hard limit needs privileges we may not have.
ulimit -Hn "$WANT_NOFILE" 2>/dev/null || true
hard=$(ulimit -Hn)
if [[ $hard == unlimited ]] || ((hard >= WANT_NOFILE)); then
    ulimit -n "$WANT_NOFILE"
else
    ulimit -n "$hard"
    say "hard open-file limit is $hard: using $hard, not $WANT_NOFILE"
fi
NOFILE=$(ulimit -n)

# ------------------------------------------------------------ clean-up

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_session abuse "${ABUSE_KEEP:-0}"

# ------------------------------------------------------------ build, fixture

cd "$REPO"
if [[ $SERVERS == *tinyserve* ]]; then
    if [[ ${ABUSE_NO_BUILD:-0} != 1 && -z ${ABUSE_BIN:-} ]]; then
        say "cargo build --release"
        cargo build --release --quiet
    fi
    [[ -x $BIN ]] || { echo "no tinyserve binary at $BIN" >&2; exit 1; }
fi

ROOT=$TMP/www
mkdir -p "$ROOT"
head -c 1024 /dev/urandom >"$ROOT/1k.bin"
head -c $((1024 * 1024)) /dev/urandom >"$ROOT/1m.bin"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # port, pid
    for _ in $(seq 1 100); do
        kill -0 "$2" 2>/dev/null || return 1
        if python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1).close()' "$1" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

SERVER_PID=""
start_server() { # name -> sets SERVER_PID, PORT
    local name=$1
    PORT=$(free_port)
    case $name in
        tinyserve)
            # shellcheck disable=SC2086
            "$BIN" -q -b 127.0.0.1 -d "$ROOT" $TS_ARGS "$PORT" \
                >"$TMP/$name.$MODE.out" 2>"$TMP/$name.$MODE.err" &
            ;;
        python)
            "$PY" -m http.server -b 127.0.0.1 -d "$ROOT" "$PORT" \
                >"$TMP/$name.$MODE.out" 2>"$TMP/$name.$MODE.err" &
            ;;
        *) echo "unknown server $name" >&2; exit 1 ;;
    esac
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    wait_port "$PORT" "$SERVER_PID" || { echo "$name did not start" >&2; cat "$TMP/$name.$MODE.err" >&2; exit 1; }
}

# Samples the server's open descriptors and threads every 0.5 s until
# $1.stop exists; writes "max_fds max_threads" to $1.
sample_server() { # outfile pid
    local out=$1 pid=$2 fds thr maxfd=0 maxthr=0
    while [[ ! -e $out.stop ]] && kill -0 "$pid" 2>/dev/null; do
        # shellcheck disable=SC2012 # /proc fd names are numbers
        fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l || true)
        thr=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        ((fds > maxfd)) && maxfd=$fds
        ((${thr:-0} > maxthr)) && maxthr=$thr
        sleep 0.5
    done
    echo "$maxfd $maxthr" >"$out"
}

# ------------------------------------------------------------ runs

ATTACK_LEN=$((WARMUP + DUR + 2))
ROWS=()
ATTACK_ROWS=()
say "python: $PY ($PY_VERSION); open-file limit $NOFILE; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"

for server in $SERVERS; do
    for MODE in $MODES; do
        label="$server $( [[ $MODE == slowread ]] && echo 'slow read' || echo slowloris )"
        start_server "$server"
        case $MODE in
            slowloris)
                ATTACK=(slowhttptest -H -c "$CONNS" -r "$RATE" -i 10 -s 8192 -l "$ATTACK_LEN"
                    -u "http://127.0.0.1:$PORT/1k.bin") ;;
            slowread)
                ATTACK=(slowhttptest -X -c "$CONNS" -r "$RATE" -w 512 -y 1024 -n 5 -z 32 -k 3 -l "$ATTACK_LEN"
                    -u "http://127.0.0.1:$PORT/1m.bin") ;;
            *) echo "unknown mode $MODE" >&2; exit 1 ;;
        esac
        say "$label: port $PORT, ${ATTACK[*]}"
        sample_server "$TMP/$server.$MODE.sample" "$SERVER_PID" &
        SAMPLER=$!
        PIDS+=("$SAMPLER")
        timeout -k 5 $((ATTACK_LEN + 30)) "${ATTACK[@]}" -g -o "$TMP/$server.$MODE.attack" \
            >"$TMP/$server.$MODE.attack.log" 2>&1 &
        ATTACK_PID=$!
        PIDS+=("$ATTACK_PID")
        sleep "$WARMUP"
        python3 "$SCRIPT_DIR/abuse_client.py" --port "$PORT" --path /1k.bin --expect-bytes 1024 \
            --seconds "$DUR" --threads "$C_THREADS" --interval-ms "$C_INTERVAL" \
            --timeout "$C_TIMEOUT" >"$TMP/$server.$MODE.client.json" 2>"$TMP/$server.$MODE.client.err" || true
        cat "$TMP/$server.$MODE.client.err" >&2
        # Server state at the end of the measurement, attack still on.
        alive=yes
        kill -0 "$SERVER_PID" 2>/dev/null || alive=NO
        wait "$ATTACK_PID" 2>/dev/null || true
        touch "$TMP/$server.$MODE.sample.stop"
        wait "$SAMPLER" 2>/dev/null || true
        stop_pid "$SERVER_PID"
        read -r maxfd maxthr <"$TMP/$server.$MODE.sample" || { maxfd="?"; maxthr="?"; }
        # slowhttptest's CSV: Seconds,Closed,Pending,Connected,Service Available
        attack=$(awk -F, 'NR>1 { if ($4+0 > m) m = $4+0; c = $2 } END { printf "%d %d", m, c }' \
            "$TMP/$server.$MODE.attack.csv" 2>/dev/null || echo "? ?")
        read -r maxconn closed <<<"$attack"
        row=$(python3 - "$label" "$TMP/$server.$MODE.client.json" <<'EOF'
import json, sys
label, path = sys.argv[1], sys.argv[2]
try:
    r = json.load(open(path))
except Exception:
    print("| %s | - | - | - | - | - |" % label); sys.exit()
print("| %s | %d | %.2f | %.1f | %.1f | %.1f |" % (
    label, r["requests"], r["success_pct"], r["p50_ms"], r["p99_ms"], r["max_ms"]))
EOF
)
        ROWS+=("$row")
        errs=$(python3 -c 'import json,sys
try: e=json.load(open(sys.argv[1]))["errors"]
except Exception: e={"client":"crashed"}
print(", ".join("%s %s" % kv for kv in sorted(e.items())) or "none")' "$TMP/$server.$MODE.client.json")
        slow=$(python3 -c 'import json,sys
try: s=json.load(open(sys.argv[1]))["slowest"][:3]
except Exception: s=[]
print(", ".join("%.0f ms @%.1fs%s" % (ms, t, "" if ok else " (failed)") for t, ms, ok in s) or "-")' "$TMP/$server.$MODE.client.json")
        ended=$(sed 's/\x1b\[[0-9;]*m//g' "$TMP/$server.$MODE.attack.log" 2>/dev/null | awk '
            /^Test ended on/ { s = $4 }
            /^Exit status:/ { sub(/^Exit status: */, ""); r = $0 }
            END { printf "%s, %s", (s == "" ? "?" : s), (r == "" ? "?" : r) }')
        ATTACK_ROWS+=("| $label | $maxconn | $closed | $ended | $maxfd | $maxthr | $alive | $errs | $slow |")
        # Let the kernel finish closing the attack's sockets before the next run.
        sleep 2
    done
done

echo
echo "Normal client under attack: $C_THREADS sequential threads, a new connection per GET of a 1 KiB file, ${C_INTERVAL} ms pause, ${C_TIMEOUT} s budget, ${DUR} s each. Percentiles over all requests (a failure counts with its time to fail)."
echo
echo "| run | requests | success % | p50 ms | p99 ms | max ms |"
echo "|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
echo
echo "| run | attack conns (max connected) | attack conns closed by the server | attack ended (second, why) | server max fds | server max threads | server alive | client errors | client's 3 slowest (time into client run) |"
echo "|---|---:|---:|---|---:|---:|---|---|---|"
printf '%s\n' "${ATTACK_ROWS[@]}"
echo
echo "slowhttptest -c $CONNS -r $RATE for ${ATTACK_LEN} s; tinyserve: $BIN -q ${TS_ARGS:-(default flags)}; python: $PY_VERSION -m http.server; open-file limit $NOFILE; $(nproc) CPUs; load average at end $(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------ stall probe
# The hostile scenarios of the round-two issue (FIFO twin, unread stderr,
# huge listing, oversized heads, long CGI targets, few descriptors), each
# with a probe on fresh connections: scripts/stall_probe.py.
if [[ ${ABUSE_STALLS:-1} == 1 ]]; then
    echo
    echo "Stall probe (python3 scripts/stall_probe.py --bin $BIN):"
    echo
    python3 "$SCRIPT_DIR/stall_probe.py" --bin "$BIN" || true
fi
