#!/usr/bin/env bash
# Benchmark tinyserve against python3 -m http.server, nginx, lighttpd and
# busybox httpd, all on loopback, and print one markdown table.
#
# Usage:
#   bash scripts/bench.sh                          # everything, 10 s per run
#   BENCH_SECONDS=2 bash scripts/bench.sh          # quick look
#   BENCH_ONLY=tinyserve,nginx bash scripts/bench.sh
#   BENCH_STRACE=1 bash scripts/bench.sh           # also syscalls per request
#
# Environment (all optional):
#   BENCH_SECONDS=10         seconds per wrk run (7 runs per server)
#   BENCH_ONLY=...           comma-separated rows, matched as prefixes of:
#                            tinyserve-log tinyserve-quiet python-1.0
#                            python-1.1 nginx lighttpd busybox
#                            (so "tinyserve" or "python" pick both modes)
#   BENCH_CONNS=50           connections for the keep-alive, new-connection,
#                            listing and CGI runs
#   BENCH_PY_CONNS=4         the same for Python (its listen backlog is 5)
#   BENCH_PY_C500=500        connections for Python's "500 conns" run
#   BENCH_STRACE=1           run tinyserve under `strace -c -f` for
#                            BENCH_STRACE_REQUESTS (10000) keep-alive requests
#   BENCH_STARTUP_RUNS=21    start-ups timed for the start-up median
#   BENCH_NO_BUILD=1         skip `cargo build --release`
#   BENCH_KEEP=1             keep the temp dir (fixture, configs, logs, wrk output)
#
# What it does: builds the release binary; makes a fixture (1 KiB, 100 KiB
# and 100 MiB files, a 1000-entry directory, cgi-bin/hello.sh) in a temp dir;
# starts each server on 127.0.0.1 pinned to CPU 0 and runs wrk pinned to CPU 1
# (`taskset`); reads each server's CPU time and memory from /proc; stops
# everything it started on exit (Ctrl-C included). The table goes to stdout,
# progress to stderr. A full run takes about 50 x BENCH_SECONDS plus a
# minute (about 9 minutes at the default).
#
# Needs cargo, python3 (scripts/bench_helper.py does the probing, /proc
# reading and the table), wrk and taskset; nginx, lighttpd, busybox and
# strace are optional. It installs nothing: it prints the apt-get line for
# what is missing and benchmarks the rest. A server that fails to start, or
# a case that fails, gives a row or cell saying what failed.
#
# Reading the table:
# - Numbers are only comparable within one run on a quiet machine. The CPU
#   load is measured before each row; a row whose machine was busy is
#   labelled "[machine N% busy before this row]" - rerun then.
# - Python runs with fewer connections (BENCH_PY_CONNS): `http.server`
#   listens with a backlog of 5. With -p HTTP/1.1 it sends the head and the
#   body in separate writes, so small keep-alive responses wait for delayed
#   ACKs (about 40 ms each): that is Python, not the benchmark.
# - Python's --cgi with -p HTTP/1.1 sends no Content-Length and keeps the
#   connection open, so the client never sees the end: "failed".
# - busybox httpd has no keep-alive and no directory listing.

set -euo pipefail

SECONDS_PER_RUN=${BENCH_SECONDS:-10}
ONLY=${BENCH_ONLY:-}
CONNS=${BENCH_CONNS:-50}
PY_CONNS=${BENCH_PY_CONNS:-4}
PY_C500=${BENCH_PY_C500:-500}
STRACE=${BENCH_STRACE:-0}
STRACE_REQUESTS=${BENCH_STRACE_REQUESTS:-10000}
STARTUP_RUNS=${BENCH_STARTUP_RUNS:-21}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
HELPER=(python3 "$SCRIPT_DIR/bench_helper.py")

say() { printf '[bench] %s\n' "$*" >&2; }

# ------------------------------------------------------------ clean-up

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tinyserve-bench.XXXXXX")
PIDFILE=$TMP/pids
: >"$PIDFILE"

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# run_isolated FUNCTION ARGS...: runs it in a background subshell with
# errexit on, so that a failure ends only that step, waits for it and sets
# STEP_RC. `wait` returns at once when INT or TERM arrive, and cleanup then
# stops the step. Never call it as `run_isolated ... || ...`: in such a
# context bash ignores errexit in everything called, subshells included.
STEP_PID="" STEP_RC=0
run_isolated() {
    set +e
    (
        set -e
        "$@"
    ) &
    STEP_PID=$!
    wait "$STEP_PID"
    STEP_RC=$?
    STEP_PID=""
    set -e
}

cleanup() {
    local pid
    if [[ -n $STEP_PID ]]; then
        # The step's own children (wrk, the helper) by parent id, then it.
        pkill -TERM -P "$STEP_PID" 2>/dev/null || true
        kill -TERM "$STEP_PID" 2>/dev/null || true
    fi
    while read -r pid; do
        [[ -n $pid ]] && stop_pid "$pid"
    done <"$PIDFILE"
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        say "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ tools

declare -A PKG=([wrk]=wrk [nginx]=nginx-light [lighttpd]=lighttpd [busybox]=busybox
    [strace]=strace [taskset]=util-linux [python3]=python3 [cargo]=cargo)
MISSING_PKGS=()
have() {
    if command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 ]]; then
        return 0
    fi
    MISSING_PKGS+=("${PKG[$1]:-$1}")
    return 1
}
tool() { command -v "$1" 2>/dev/null || echo "/usr/sbin/$1"; }

HAVE_WRK=0 HAVE_NGINX=0 HAVE_LIGHTTPD=0 HAVE_BUSYBOX=0 HAVE_STRACE=0
have python3 || { echo "python3 is required (apt-get install -y python3)" >&2; exit 1; }
have wrk && HAVE_WRK=1
have nginx && HAVE_NGINX=1
have lighttpd && HAVE_LIGHTTPD=1
have busybox && HAVE_BUSYBOX=1
if [[ $STRACE == 1 ]]; then have strace && HAVE_STRACE=1; fi
PIN_SERVER=() PIN_CLIENT=()
if have taskset; then
    if (($(nproc) >= 2)); then
        PIN_SERVER=(taskset -c 0) PIN_CLIENT=(taskset -c 1)
    else
        say "only one CPU: not pinning"
    fi
fi
if ((${#MISSING_PKGS[@]})); then
    say "missing tools; to install them run:"
    echo "    apt-get update && apt-get install -y ${MISSING_PKGS[*]}" >&2
    say "continuing with what is installed"
fi

# The newest Python: pyenv's newest 3.x if there is pyenv, else python3.
PY=$(command -v python3)
if command -v pyenv >/dev/null 2>&1; then
    newest=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.[0-9]+\.[0-9]+$' | sort -V | tail -n 1 || true)
    if [[ -n $newest ]] && p=$(PYENV_VERSION=$newest pyenv which python3 2>/dev/null); then
        PY=$p
    fi
fi
PY_VERSION=$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')

# ------------------------------------------------------------ build

cd "$REPO"
BUILD_NOTE=""
if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
    say "cargo build --release"
    if ! cargo build --release --quiet; then
        BUILD_NOTE="cargo build --release FAILED: benchmarked the existing, possibly stale, target/release/tinyserve"
        say "$BUILD_NOTE"
    fi
else
    BUILD_NOTE="BENCH_NO_BUILD=1: benchmarked the existing target/release/tinyserve"
fi
mkdir -p "$TMP/bin"
TS=$TMP/bin/tinyserve
SIZE_RAW=0 SIZE_STRIPPED=0
if [[ -x target/release/tinyserve ]]; then
    # Benchmark a copy, so a rebuild during the run cannot change the binary.
    cp target/release/tinyserve "$TS"
    cp "$TS" "$TMP/bin/tinyserve.stripped"
    strip "$TMP/bin/tinyserve.stripped"
    SIZE_RAW=$(stat -c %s "$TS")
    SIZE_STRIPPED=$(stat -c %s "$TMP/bin/tinyserve.stripped")
    BUILT_AT=$(date -r target/release/tinyserve '+%F %T')
else
    say "no target/release/tinyserve: tinyserve rows will fail"
    BUILT_AT=never
fi

# ------------------------------------------------------------ fixture

FIX=$TMP/www
say "fixture in $FIX"
mkdir -p "$FIX/dir1000" "$FIX/cgi-bin" "$TMP/logs" "$TMP/wrk" "$TMP/results"
head -c 1024 /dev/zero | tr '\0' 'a' >"$FIX/f1k.txt"
head -c $((100 * 1024)) /dev/urandom >"$FIX/f100k.bin"
dd if=/dev/zero of="$FIX/f100m.bin" bs=1M count=100 status=none
(cd "$FIX/dir1000" && seq -f 'file-%04g.txt' 0 999 | xargs touch)
cat >"$FIX/cgi-bin/hello.sh" <<'EOF'
#!/bin/sh
echo "Content-Type: text/plain"
echo
echo "hello"
EOF
chmod 755 "$FIX/cgi-bin/hello.sh"
# nginx's worker runs as nobody: let it read the fixture.
chmod 755 "$TMP"
chmod -R a+rX "$FIX"
cat "$FIX"/f100m.bin >/dev/null # into the page cache

cat >"$TMP/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHRESULT requests=%d bytes=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
EOF

# ------------------------------------------------------------ servers

NGINX_VERSION=n.a. LIGHTTPD_VERSION=n.a. BUSYBOX_VERSION=n.a. WRK_VERSION=n.a.
# (wrk -v and busybox exit non-zero: hence the `|| true`.)
((HAVE_NGINX)) && NGINX_VERSION=$({ "$(tool nginx)" -v 2>&1 || true; } | sed 's|.*nginx/||')
((HAVE_LIGHTTPD)) && LIGHTTPD_VERSION=$({ "$(tool lighttpd)" -v 2>&1 || true; } | head -n 1 | sed 's|lighttpd/\([^ ]*\).*|\1|')
((HAVE_BUSYBOX)) && BUSYBOX_VERSION=$({ busybox 2>&1 || true; } | head -n 1 | awk '{print $2}')
((HAVE_WRK)) && WRK_VERSION=$({ wrk -v 2>&1 || true; } | head -n 1 | awk '{print $2}')

ROWS=(tinyserve-log tinyserve-quiet python-1.0 python-1.1 nginx lighttpd busybox)
declare -A LABEL=(
    [tinyserve-log]="tinyserve (access log to file)"
    [tinyserve-quiet]="tinyserve -q"
    [python-1.0]="python $PY_VERSION http.server (HTTP/1.0, c=$PY_CONNS, c500=$PY_C500)"
    [python-1.1]="python $PY_VERSION http.server -p HTTP/1.1 (c=$PY_CONNS, c500=$PY_C500)"
    [nginx]="nginx $NGINX_VERSION (1 worker, sendfile)"
    [lighttpd]="lighttpd $LIGHTTPD_VERSION"
    [busybox]="busybox $BUSYBOX_VERSION httpd (no keep-alive)"
)

selected() {
    local id=$1 tok
    [[ -z $ONLY ]] && return 0
    IFS=, read -r -a toks <<<"$ONLY"
    for tok in "${toks[@]}"; do
        tok=${tok// /}
        [[ -n $tok && $id == "$tok"* ]] && return 0
    done
    return 1
}

write_nginx_conf() { # DIR PORT
    local d=$1 port=$2
    mkdir -p "$d"
    cat >"$d/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    types { text/plain txt; text/html html; }
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000000;
    keepalive_timeout 75s;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    server {
        listen 127.0.0.1:$port;
        root $FIX;
        location /dir1000/ { autoindex on; }
    }
}
EOF
}

write_lighttpd_conf() { # DIR PORT
    local d=$1 port=$2
    mkdir -p "$d"
    cat >"$d/lighttpd.conf" <<EOF
server.modules = ("mod_dirlisting", "mod_cgi")
server.document-root = "$FIX"
server.bind = "127.0.0.1"
server.port = $port
server.errorlog = "$d/error.log"
server.max-connections = 2048
server.max-fds = 8192
server.max-keep-alive-requests = 65535
server.max-keep-alive-idle = 75
dir-listing.activate = "enable"
mimetype.assign = (".txt" => "text/plain", ".html" => "text/html", "" => "application/octet-stream")
\$HTTP["url"] =~ "^/cgi-bin/" { cgi.assign = ("" => "") }
EOF
}

# start_server ID VARIANT: starts a server (VARIANT main, or cgi for the
# separate --cgi instance of tinyserve and Python) on a free port; sets
# SRV_PID and SRV_PORT, or SRV_ERR and returns 1.
start_server() {
    local id=$1 variant=$2 port cmd=() log
    port=$("${HELPER[@]}" freeport)
    log=$TMP/logs/$id-$variant.log
    case $id in
    tinyserve-log | tinyserve-quiet)
        cmd=("$TS" -b 127.0.0.1 -d "$FIX")
        [[ $id == tinyserve-quiet ]] && cmd+=(-q)
        [[ $variant == cgi ]] && cmd+=(--cgi)
        cmd+=("$port")
        ;;
    python-1.0 | python-1.1)
        cmd=("$PY" -m http.server -b 127.0.0.1 -d "$FIX" -p "HTTP/${id#python-}")
        [[ $variant == cgi ]] && cmd+=(--cgi)
        cmd+=("$port")
        ;;
    nginx)
        write_nginx_conf "$TMP/nginx" "$port"
        cmd=("$(tool nginx)" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log")
        ;;
    lighttpd)
        write_lighttpd_conf "$TMP/lighttpd" "$port"
        cmd=("$(tool lighttpd)" -D -f "$TMP/lighttpd/lighttpd.conf")
        ;;
    busybox)
        cmd=(busybox httpd -f -p "127.0.0.1:$port" -h "$FIX")
        ;;
    esac
    # exec, so that $! is the server itself (taskset execs too).
    (cd "$FIX" && exec "${PIN_SERVER[@]}" "${cmd[@]}") >"$log.stdout" 2>"$log" </dev/null &
    SRV_PID=$!
    SRV_PORT=$port
    echo "$SRV_PID" >>"$PIDFILE"
    if ! "${HELPER[@]}" waitport "$port" 10 || ! kill -0 "$SRV_PID" 2>/dev/null; then
        SRV_ERR="did not start: $(tail -n 2 "$log" "$log.stdout" 2>/dev/null | grep -v '^==>' | tr '\n|' '  ' | cut -c1-160)"
        stop_pid "$SRV_PID"
        return 1
    fi
    return 0
}

# run_case RESULTS CASE PID PORT CONNS PATH [wrk args...]: probes the URL,
# then runs wrk and appends CASE_* results (and server CPU time) to RESULTS.
run_case() {
    local res=$1 case=$2 pid=$3 port=$4 conns=$5 path=$6 expect="" close=0 eof
    shift 6
    # The CGI answer must be the script's output, not the script itself.
    if [[ $case == cgi ]]; then expect="hello"$'\n'; fi
    if [[ $case == close ]]; then close=1; fi
    local url="http://127.0.0.1:$port$path" probe out t0 t1 line kv timeout=5
    [[ $case == big ]] && timeout=60
    if ((!HAVE_WRK)); then
        echo "${case}_note=wrk missing" >>"$res"
        return 0
    fi
    probe=$("${HELPER[@]}" probe "$url" "$expect" "$close")
    if [[ $probe != "200 "* ]]; then
        case $probe in
        ERR*) echo "${case}_note=failed (${probe#ERR })" | cut -c1-100 >>"$res" ;;
        BADBODY*) echo "${case}_note=failed (wrong body: ${probe#BADBODY 200 })" | cut -c1-100 >>"$res" ;;
        *) echo "${case}_note=n.a. (HTTP ${probe%% *})" >>"$res" ;;
        esac
        say "  $case: $probe"
        return 0
    fi
    # "STATUS LEN EOF": EOF=1 when wrk will count a (benign) read error for
    # each complete response; the report then does not count those.
    read -r _ _ eof <<<"$probe"
    echo "${case}_eofbenign=${eof:-0}" >>"$res"
    out=$TMP/wrk/$(basename "$res" .env)-$case.txt
    read -r t0 _ <<<"$("${HELPER[@]}" procstat "$pid")"
    "${PIN_CLIENT[@]}" wrk -t1 -c"$conns" -d"${SECONDS_PER_RUN}s" --timeout "${timeout}s" \
        -s "$TMP/report.lua" "$@" "$url" >"$out" 2>&1 || true
    read -r t1 _ <<<"$("${HELPER[@]}" procstat "$pid")"
    line=$(grep '^BENCHRESULT' "$out" || true)
    if [[ -z $line ]]; then
        echo "${case}_note=failed (wrk: $(head -c 60 "$out" | tr '\n|' '  '))" >>"$res"
        say "  $case: wrk failed: $(head -n 3 "$out")"
        return 0
    fi
    for kv in ${line#BENCHRESULT }; do
        echo "${case}_$kv" >>"$res"
    done
    if alive "$pid" && ((t1 >= t0)); then
        echo "${case}_cpu_ms=$(((t1 - t0) * 1000 / $(getconf CLK_TCK)))" >>"$res"
    fi
    awk -v l="$line" -v c="$case" 'BEGIN {
        n = split(l, a, /[ =]/); for (i = 2; i < n; i += 2) v[a[i]] = a[i + 1];
        if (v["duration_us"] > 0) printf "%s_rps=%.1f\n", c, v["requests"] / (v["duration_us"] / 1e6) }' >>"$res"
    say "  $case: $(grep -E '^ +[0-9]+ requests in|Requests/sec|Socket errors|Non-2xx' "$out" | tr -s ' ' | tr '\n' ';')"
}

alive() { # PID: running, and not a zombie
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $st && $st != Z ]]
}

# main_case CASE CONNS PATH [wrk args...]: run_case on the row's main server
# (CUR_PID, CUR_PORT); if the server is gone afterwards, record how it ended
# and start it again for the remaining cases.
main_case() {
    local case=$1 conns=$2 path=$3 rc=0 how
    shift 3
    run_case "$RES" "$case" "$CUR_PID" "$CUR_PORT" "$conns" "$path" "$@"
    alive "$CUR_PID" && return 0
    wait "$CUR_PID" 2>/dev/null || rc=$?
    how="exit status $rc"
    ((rc > 128)) && how="killed by signal $((rc - 128)) (exit status $rc)"
    RESTARTS=$((RESTARTS + 1))
    echo "${case}_died=$how; last stderr line: $(tail -n 1 "$TMP/logs/$ID-$CUR_VARIANT.log" 2>/dev/null | tr '|' ' ' | cut -c1-100)" >>"$RES"
    say "  $case: the server is gone ($how); starting it again"
    CUR_VARIANT=restart$RESTARTS
    if start_server "$ID" "$CUR_VARIANT"; then
        CUR_PID=$SRV_PID CUR_PORT=$SRV_PORT
    else
        say "  could not start it again: $SRV_ERR"
    fi
}

# bench_row ID ORDER: runs in a subshell; writes $TMP/results/ID.env.
bench_row() {
    local id=$1 order=$2 res=$TMP/results/$1.env conns=$CONNS c500=500
    local rss hwm cgi_pid cgi_port
    {
        echo "id=$id"
        echo "order=$order"
        echo "label=${LABEL[$id]}"
    } >"$res"
    case $id in
    nginx) ((HAVE_NGINX)) || { echo "failed=not installed (apt-get install -y nginx-light)" >>"$res"; return 0; } ;;
    lighttpd) ((HAVE_LIGHTTPD)) || { echo "failed=not installed (apt-get install -y lighttpd)" >>"$res"; return 0; } ;;
    busybox) ((HAVE_BUSYBOX)) || { echo "failed=not installed (apt-get install -y busybox)" >>"$res"; return 0; } ;;
    python-*) conns=$PY_CONNS c500=$PY_C500 ;;
    esac
    if ((!HAVE_WRK)); then
        echo "failed=wrk not installed (apt-get install -y wrk)" >>"$res"
        return 0
    fi
    say "$id: starting"
    if ! start_server "$id" main; then
        echo "failed=$SRV_ERR" >>"$res"
        say "$id: $SRV_ERR"
        return 0
    fi
    ID=$id RES=$res CUR_PID=$SRV_PID CUR_PORT=$SRV_PORT CUR_VARIANT=main RESTARTS=0
    sleep 0.5
    read -r _ rss hwm _ <<<"$("${HELPER[@]}" procstat "$CUR_PID")"
    echo "rss_idle_kb=$rss" >>"$res"
    main_case ka1k "$conns" /f1k.txt
    main_case ka100k "$conns" /f100k.bin
    main_case close "$conns" /f1k.txt -H 'Connection: close'
    main_case c500 "$c500" /f1k.txt --latency
    read -r _ rss hwm _ <<<"$("${HELPER[@]}" procstat "$CUR_PID")"
    echo "rss_peak_kb=$hwm" >>"$res"
    main_case big 1 /f100m.bin
    main_case list "$conns" /dir1000/
    case $id in
    nginx) echo "cgi_note=n.a. (no CGI)" >>"$res" ;;
    lighttpd | busybox) main_case cgi "$conns" /cgi-bin/hello.sh ;;
    *)
        stop_pid "$CUR_PID"
        if start_server "$id" cgi; then
            cgi_pid=$SRV_PID cgi_port=$SRV_PORT
            run_case "$res" cgi "$cgi_pid" "$cgi_port" "$conns" /cgi-bin/hello.sh
            if ! alive "$cgi_pid"; then
                echo "cgi_died=the --cgi server exited during the run" >>"$res"
            fi
            stop_pid "$cgi_pid"
        else
            echo "cgi_note=failed (--cgi $SRV_ERR)" | cut -c1-100 >>"$res"
        fi
        ;;
    esac
    stop_pid "$CUR_PID"
    say "$id: done"
}

any=0
for id in "${ROWS[@]}"; do selected "$id" && any=1; done
((any)) || say "BENCH_ONLY=$ONLY matches no row (rows: ${ROWS[*]})"

# Other work on the machine skews everything: measure how busy it is now.
cpu_busy_pct() { # percent of all CPUs busy over one second
    local a b
    read -r -a a < <(head -n 1 /proc/stat)
    sleep 1
    read -r -a b < <(head -n 1 /proc/stat)
    local idle=$((b[4] + b[5] - a[4] - a[5])) total=0 i
    for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
    echo $((total > 0 ? 100 * (total - idle) / total : 0))
}
BUSY_BEFORE=$(cpu_busy_pct)
if ((BUSY_BEFORE > 10)); then
    say "WARNING: the CPUs are already ${BUSY_BEFORE}% busy ($(ps -eo pcpu=,comm= --sort=-pcpu | head -n 3 | awk '{printf "%s %s%%; ", $2, $1}')): numbers will be noisy"
fi
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
order=0
for id in "${ROWS[@]}"; do
    order=$((order + 1))
    selected "$id" || continue
    # Other work on the machine (a build, a test suite) skews a row: note it.
    busy=$(cpu_busy_pct)
    ((busy > 10)) && say "$id: WARNING: CPUs ${busy}% busy just before this row"
    # A subshell with errexit on: a failure ends only this server's row.
    run_isolated bench_row "$id" "$order"
    rc=$STEP_RC
    echo "busy_before=$busy" >>"$TMP/results/$id.env"
    if ((rc != 0)); then
        say "$id: benchmark script failed (exit $rc)"
        if ! grep -q '^failed=' "$TMP/results/$id.env" 2>/dev/null; then
            echo "failed=benchmark script failed (exit $rc); see stderr" >>"$TMP/results/$id.env"
        fi
    fi
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------ start-up time

STARTUP="n.a."
if out=$("${HELPER[@]}" startup "$STARTUP_RUNS" "$TS" -q -b 127.0.0.1 -d "$FIX" '{port}'); then
    read -r med min max n <<<"$out"
    STARTUP="median $med ms (min $min, max $max, $n runs)"
fi
PY_STARTUP="n.a."
if out=$("${HELPER[@]}" startup 5 "$PY" -m http.server -b 127.0.0.1 -d "$FIX" '{port}'); then
    read -r med _ <<<"$out"
    PY_STARTUP="$med ms"
fi

# ------------------------------------------------------------ strace

SYSCALLS=""
strace_run() { # COUNT OUTFILE
    local count=$1 outf=$2 port spid tpid
    port=$("${HELPER[@]}" freeport)
    "${PIN_SERVER[@]}" strace -c -f -o "$outf" "$TS" -q -b 127.0.0.1 -d "$FIX" "$port" \
        >/dev/null 2>"$TMP/logs/strace-$count.log" </dev/null &
    spid=$!
    echo "$spid" >>"$PIDFILE"
    "${HELPER[@]}" waitport "$port" 10
    if ((count > 0)); then
        "${PIN_CLIENT[@]}" "${HELPER[@]}" keepalive "$port" /f1k.txt "$count" >&2
    fi
    tpid=$(pgrep -P "$spid" | head -n 1)
    kill -TERM "$tpid"
    wait "$spid" || true
}
if [[ $STRACE == 1 ]]; then
    if ((HAVE_STRACE)); then
        say "strace -c -f: $STRACE_REQUESTS keep-alive requests on one connection"
        strace_both() {
            strace_run 0 "$TMP/strace-base.txt"
            strace_run "$STRACE_REQUESTS" "$TMP/strace-run.txt"
        }
        run_isolated strace_both
        rc=$STEP_RC
        if ((rc == 0)); then
            SYSCALLS=$("${HELPER[@]}" strace-summary "$TMP/strace-run.txt" "$TMP/strace-base.txt" "$STRACE_REQUESTS" || echo "failed to parse strace output")
        else
            SYSCALLS="failed (exit $rc)"
        fi
    else
        SYSCALLS="n.a. (apt-get install -y strace)"
    fi
fi

# ------------------------------------------------------------ report

echo
echo "## tinyserve benchmark"
echo
echo "wrk $WRK_VERSION, -t1, ${SECONDS_PER_RUN}s per run, $CONNS connections (Python $PY_CONNS) unless stated;" \
    "server pinned to CPU 0, wrk to CPU 1; $(nproc) CPUs, $(uname -r); CPUs ${BUSY_BEFORE}% busy before the runs" \
    "(load average before $LOAD_BEFORE, after $LOAD_AFTER)."
echo
"${HELPER[@]}" report "$TMP/results"
echo
[[ -n $BUILD_NOTE ]] && echo "- **$BUILD_NOTE** (built $BUILT_AT)"
echo "- release binary after \`strip\`: $((SIZE_STRIPPED / 1024)) KiB ($SIZE_STRIPPED bytes; target/release/tinyserve as cargo built it: $((SIZE_RAW / 1024)) KiB)"
echo "- tinyserve start-up to accepting connections: $STARTUP; python $PY_VERSION http.server: median $PY_STARTUP"
if [[ -n $SYSCALLS ]]; then
    echo "- tinyserve syscalls (strace -c -f, $STRACE_REQUESTS sequential keep-alive GETs of 1 KiB on one connection, start/stop subtracted): $SYSCALLS"
fi
if ((${#MISSING_PKGS[@]})); then
    echo "- not installed: ${MISSING_PKGS[*]} (apt-get update && apt-get install -y ${MISSING_PKGS[*]})"
fi
ACCESS_LOG=$TMP/logs/tinyserve-log-main.log
if [[ -s $ACCESS_LOG ]]; then
    echo "- tinyserve access log (stderr to a file) during its row: $(wc -l <"$ACCESS_LOG") lines, $(($(stat -c %s "$ACCESS_LOG") / 1024 / 1024)) MiB"
fi
echo "- CPU ms are the server's user+system time (children included) during the keep-alive 1 KiB run; RSS is VmRSS after start-up and VmHWM after the 500-connection run, summed over the server's processes."
