#!/usr/bin/env bash
# Idle memory of tinyserve and its peers, side by side in one run: each
# server is started on 127.0.0.1, asked for one 1 KiB file, and measured
# from /proc/PID/smaps_rollup a second later (RSS, PSS, private), then
# again right after 2,000 keep-alive requests (or 2,000 connections for
# servers without keep-alive) and once more 12 s later (tinyserve gives
# back the code pages serving touched after 10 s idle). Prints a markdown table and, for tinyserve, where
# its resident pages are (per mapping).
#
# Usage:
#   bash scripts/idle_memory.sh
#   DARKHTTPD=/path/to/darkhttpd bash scripts/idle_memory.sh
#
# darkhttpd has no Debian package: build it from its one C file
# (github.com/emikulic/darkhttpd: `cc -O2 -o darkhttpd darkhttpd.c`) and
# point DARKHTTPD at it. busybox and lighttpd come from apt-get; a server
# that is missing gets a row saying so.
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
HELPER=(python3 "$SCRIPT_DIR/bench_helper.py")
say() { printf '[memory] %s\n' "$*" >&2; }
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"
start_session idle-memory 0

cd "$REPO"
cargo build --release --quiet
mkdir -p "$TMP/www"
head -c 1024 /dev/zero | tr '\0' a >"$TMP/www/f1k.txt"
PY=python3
if command -v pyenv >/dev/null 2>&1; then
    newest=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.[0-9]+\.[0-9]+$' | sort -V | tail -n 1 || true)
    [[ -n $newest ]] && PY=$(PYENV_VERSION=$newest pyenv which python3)
fi
LIGHTTPD=$(command -v lighttpd || echo /usr/sbin/lighttpd)

rollup() { # PID -> "rss pss private" in KiB
    awk '/^Rss:/ {r=$2} /^Pss:/ {p=$2} /^Private_(Clean|Dirty):/ {v+=$2} END {print r, p, v}' "/proc/$1/smaps_rollup"
}

start() { # ID PORT -> sets PID, or returns 1
    local id=$1 port=$2 cmd=()
    case $id in
    tinyserve) cmd=("$REPO/target/release/tinyserve" -q -b 127.0.0.1 -d "$TMP/www" "$port") ;;
    darkhttpd)
        [[ -x ${DARKHTTPD:-} ]] || return 1
        cmd=("$DARKHTTPD" "$TMP/www" --addr 127.0.0.1 --port "$port")
        ;;
    busybox)
        command -v busybox >/dev/null || return 1
        cmd=(busybox httpd -f -p "127.0.0.1:$port" -h "$TMP/www")
        ;;
    lighttpd)
        [[ -x $LIGHTTPD ]] || return 1
        cat >"$TMP/lighttpd.conf" <<CONF
server.document-root = "$TMP/www"
server.bind = "127.0.0.1"
server.port = $port
server.errorlog = "$TMP/lighttpd.err"
CONF
        cmd=("$LIGHTTPD" -D -f "$TMP/lighttpd.conf")
        ;;
    python) cmd=("$PY" -m http.server -b 127.0.0.1 -d "$TMP/www" "$port") ;;
    esac
    "${cmd[@]}" >/dev/null 2>&1 </dev/null &
    PID=$!
    PIDS+=("$PID")
    "${HELPER[@]}" waitport "$port" 10
}

echo "| server | RSS idle | PSS idle | private idle | RSS right after 2,000 requests | RSS 12 s later |"
echo "|---|---:|---:|---:|---:|---:|"
for id in tinyserve darkhttpd busybox lighttpd python; do
    port=$("${HELPER[@]}" freeport)
    if ! start "$id" "$port"; then
        echo "| $id | not found or did not start | | | | |"
        continue
    fi
    "${HELPER[@]}" probe "http://127.0.0.1:$port/f1k.txt" >/dev/null
    sleep 1
    read -r rss pss priv < <(rollup "$PID")
    if [[ $id == tinyserve ]]; then
        awk '/^[0-9a-f]+-/ {name=$6 == "" ? "[anonymous]" : $6} /^Rss:/ {rss[name]+=$2}
             END {for (n in rss) if (rss[n] > 0) printf "%d %s\n", rss[n], n}' "/proc/$PID/smaps" |
            sort -rn >"$TMP/tinyserve.pages"
    fi
    if [[ $id == busybox ]]; then
        for _ in $(seq 1 2000); do "${HELPER[@]}" probe "http://127.0.0.1:$port/f1k.txt" >/dev/null; done 2>/dev/null &
        wait $!
    else
        "${HELPER[@]}" keepalive "$port" /f1k.txt 2000 >/dev/null
    fi
    read -r rss2 _ _ < <(rollup "$PID")
    sleep 12
    read -r rss3 _ _ < <(rollup "$PID")
    mib() { awk -v k="$1" 'BEGIN {printf "%.2f MiB", k / 1024}'; }
    echo "| $id | $(mib "$rss") | $(mib "$pss") | $(mib "$priv") | $(mib "$rss2") | $(mib "$rss3") |"
    stop_pid "$PID"
done
echo
echo "tinyserve's resident KiB per mapping, idle:"
echo
sed 's/^/    /' "$TMP/tinyserve.pages"
