#!/usr/bin/env bash
# The release profile's trade-off, measured: for each optimisation level
# (and panic strategy) the stripped size of `tinyserve` and the user-space
# instructions per cached keep-alive request of a 1 KiB file under
# `valgrind --tool=callgrind` (repeatable, unlike a timing). Each variant
# builds in its own target directory through CARGO_PROFILE_RELEASE_*
# overrides; Cargo.toml is not touched.
#
# Usage: bash scripts/release_profiles.sh   (needs valgrind; several minutes)
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
HELPER=(python3 "$SCRIPT_DIR/bench_helper.py")
say() { printf '[profiles] %s\n' "$*" >&2; }
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install -y valgrind)" >&2; exit 2; }
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"
start_session profiles "${PROFILES_KEEP:-0}"
cd "$REPO"
mkdir -p "$TMP/www"
head -c 1024 /dev/zero | tr '\0' a >"$TMP/www/f1k.txt"

# Requests on one keep-alive connection, each answer read whole.
client() { # PORT COUNT
    python3 - "$1" "$2" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
req = b"GET /f1k.txt HTTP/1.1\r\nHost: x\r\n\r\n"
for _ in range(n):
    s.sendall(req)
    got = b""
    while not got.endswith(b"a" * 1024):
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("connection closed early")
        got += chunk
s.close()
PY
}

instructions() { # BINARY -> instructions per request
    local port vpid first last
    port=$("${HELPER[@]}" freeport)
    valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" \
        "$1" -q -b 127.0.0.1 -d "$TMP/www" "$port" >/dev/null 2>"$TMP/vg.log" &
    vpid=$!
    "${HELPER[@]}" waitport "$port" 60
    client "$port" 200
    # Start-up and the warm-up go into a first dump; the second holds
    # 1000 requests alone (a dump resets the counters).
    callgrind_control -d "$vpid" >/dev/null 2>&1 || true
    first=$(ls "$TMP"/cg.out* | sort | tail -1)
    client "$port" 1000
    callgrind_control -d "$vpid" >/dev/null 2>&1 || true
    last=$(ls "$TMP"/cg.out* | sort | tail -1)
    kill -TERM "$vpid" 2>/dev/null || true
    wait "$vpid" 2>/dev/null || true
    if [[ $last != "$first" ]]; then
        awk '/^summary:|^totals:/ {print $2; exit}' "$last" | awk '{printf "%d", $1 / 1000}'
    else
        echo "n.a."
    fi
    rm -f "$TMP"/cg.out*
}

echo "| profile | stripped bytes | instructions per request |"
echo "|---|---:|---:|"
for variant in '3 unwind' 's unwind' 'z unwind' '3 abort' 's abort'; do
    read -r level panic <<<"$variant"
    dir="$TMP/target-$level-$panic"
    say "building opt-level=$level panic=$panic"
    quoted=$level
    [[ $level == 3 ]] || quoted="\"$level\""
    CARGO_TARGET_DIR=$dir CARGO_PROFILE_RELEASE_OPT_LEVEL=$level CARGO_PROFILE_RELEASE_PANIC=$panic \
        cargo build --release --quiet --bin tinyserve
    bin="$dir/release/tinyserve"
    echo "| \`opt-level = $quoted\`, \`panic = \"$panic\"\` | $(stat -c %s "$bin") | $(instructions "$bin") |"
    rm -rf "$dir"
done
