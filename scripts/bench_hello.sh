#!/usr/bin/env bash
# The library's `hello` handler against the static 1 KiB cached path, the
# Rust peers (tiny_http with one thread taking requests, may_minihttp with
# one worker) and Python's BaseHTTPRequestHandler under
# ThreadingHTTPServer, side by side in one run. Prints a markdown table.
#
# Usage:
#   bash scripts/bench_hello.sh                 # 10 s per run, 3 runs each
#   HELLO_SECONDS=3 HELLO_RUNS=1 bash scripts/bench_hello.sh
#
# Every server listens on 127.0.0.1, pinned to CPU 0 (`taskset -c 0`, all
# its threads); wrk runs on CPU 1 with one thread and 50 keep-alive
# connections (HELLO_CONNS). The median run of each row is reported, with
# its p99 latency and the server's CPU seconds per 100k requests. Builds
# tinyserve (release, with examples) and benches/peers (crates.io) first.
# Stops everything it started on exit.
set -euo pipefail
SECS=${HELLO_SECONDS:-10}
RUNS=${HELLO_RUNS:-3}
CONNS=${HELLO_CONNS:-50}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
HELPER=(python3 "$SCRIPT_DIR/bench_helper.py")
say() { printf '[hello] %s\n' "$*" >&2; }

for t in wrk taskset; do
    command -v $t >/dev/null || { echo "needs $t (apt-get install -y wrk util-linux)" >&2; exit 2; }
done
(($(nproc) >= 2)) || { echo "needs 2 CPUs: server on one, wrk on the other" >&2; exit 2; }

# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"
start_session bench-hello "${HELLO_KEEP:-0}"

cd "$REPO"
say "building tinyserve and the peers"
cargo build --release --quiet --bins --examples
(cd benches/peers && cargo build --release --quiet)
PY=python3
if command -v pyenv >/dev/null 2>&1; then
    newest=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.[0-9]+\.[0-9]+$' | sort -V | tail -n 1 || true)
    [[ -n $newest ]] && PY=$(PYENV_VERSION=$newest pyenv which python3)
fi
PY_VERSION=$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')

mkdir -p "$TMP/www" "$TMP/bin"
head -c 1024 /dev/zero | tr '\0' 'a' >"$TMP/www/f1k.txt"
for b in target/release/tinyserve target/release/examples/hello; do
    cp "$b" "$TMP/bin/" && strip "$TMP/bin/$(basename "$b")"
done
# Pipelined: each connection writes DEPTH requests at once, so wrk spends
# less per request and the server's own cost shows (wrk counts each
# response).
cat >"$TMP/pipeline.lua" <<LUA
init = function(args)
  local r = {}
  for i = 1, ${HELLO_DEPTH:-8} do r[i] = wrk.format(nil) end
  req = table.concat(r)
end
request = function() return req end
LUA
cat >"$TMP/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCHRESULT %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))
end
LUA

declare -A CMD=(
    [hello]="$REPO/target/release/examples/hello {port} --quiet"
    [static]="$REPO/target/release/tinyserve -q -b 127.0.0.1 -d $TMP/www {port}"
    [tiny_http]="$REPO/benches/peers/target/release/tiny_http_hello {port}"
    [may_minihttp]="$REPO/benches/peers/target/release/may_minihttp_hello {port}"
    [python]="$PY $REPO/examples/python/hello.py {port} --quiet"
)
declare -A PATHS=([static]=/f1k.txt)
declare -A LABEL=(
    [hello]="tinyserve examples/hello (library handler)"
    [static]="tinyserve -q, static 1 KiB file (cached path)"
    [tiny_http]="tiny_http 0.12, one thread taking requests"
    [may_minihttp]="may_minihttp 0.1, one worker"
    [python]="Python $PY_VERSION BaseHTTPRequestHandler, ThreadingHTTPServer, HTTP/1.1"
)
ROWS=(hello static tiny_http may_minihttp python)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

declare -A RPS P99 CPU PRPS PCPU
for row in "${ROWS[@]}"; do
    results=() piped=()
    for run in $(seq 1 "$RUNS"); do
        port=$("${HELPER[@]}" freeport)
        read -r -a cmd <<<"${CMD[$row]//\{port\}/$port}"
        taskset -c 0 "${cmd[@]}" >/dev/null 2>"$TMP/$row.err" &
        pid=$!
        PIDS+=("$pid")
        "${HELPER[@]}" waitport "$port" 10 || { say "$row did not start"; cat "$TMP/$row.err" >&2; exit 1; }
        url=http://127.0.0.1:$port${PATHS[$row]:-/}
        taskset -c 1 wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null # warm up
        before=$(cpu_ticks "$pid")
        out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$TMP/report.lua" "$url")
        after=$(cpu_ticks "$pid")
        before=$(cpu_ticks "$pid")
        pout=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$TMP/pipeline.lua" "$url" 2>&1)
        after=$(cpu_ticks "$pid")
        prps=$(awk '/^Requests\/sec/ {printf "%d", $2}' <<<"$pout")
        preqs=$(awk '/requests in/ {print $1}' <<<"$pout")
        pcpu=$(python3 -c "print('%.2f' % (($after - $before) / $(getconf CLK_TCK) / max(${preqs:-0}, 1) * 1e5))")
        stop_pid "$pid"
        read -r _ requests duration p99 errors < <(grep BENCHRESULT <<<"$out")
        rps=$(python3 -c "print(round($requests / ($duration / 1e6)))")
        cpu=$(python3 -c "print('%.2f' % (($after - $before) / $(getconf CLK_TCK) / max($requests, 1) * 1e5))")
        say "$row run $run: $rps req/s, p99 $((p99 / 1000)) ms, $errors errors; pipelined ${prps:-?} req/s"
        results+=("$rps $p99 $cpu")
        piped+=("${prps:-0} $pcpu")
    done
    median=$(printf '%s\n' "${results[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p")
    read -r RPS[$row] P99[$row] CPU[$row] <<<"$median"
    read -r PRPS[$row] PCPU[$row] < <(printf '%s\n' "${piped[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p")
done

echo
echo "hello on one core: server on CPU 0, \`wrk -t1 -c$CONNS -d${SECS}s\` on CPU 1, median of $RUNS runs"
echo
echo "| server | req/s | hello's ratio | p99 | CPU s per 100k req | pipelined x${HELLO_DEPTH:-8} req/s | hello's ratio | CPU s per 100k req |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for row in "${ROWS[@]}"; do
    ratio=$(python3 -c "print('%.2f' % (${RPS[hello]} / max(${RPS[$row]}, 1)))")
    pratio=$(python3 -c "print('%.2f' % (${PRPS[hello]} / max(${PRPS[$row]}, 1)))")
    p99=$(python3 -c "print('%.2f ms' % (${P99[$row]} / 1000))")
    echo "| ${LABEL[$row]} | ${RPS[$row]} | ${ratio}x | $p99 | ${CPU[$row]} | ${PRPS[$row]} | ${pratio}x | ${PCPU[$row]} |"
done
echo
echo "stripped sizes: tinyserve $(stat -c %s "$TMP/bin/tinyserve") bytes, examples/hello $(stat -c %s "$TMP/bin/hello") bytes"
