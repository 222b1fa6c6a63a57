#!/usr/bin/env bash
# The h1spec HTTP/1.1 compliance script (github.com/uNetworking/h1spec, a
# Deno program with no imports) against tinyserve, and against the `echo`
# example once it exists.
#
# Usage:
#   H1SPEC=/path/to/h1spec/http_test.ts bash scripts/h1spec.sh
#
# h1spec is not part of this repository: get it from its repository (any
# checkout; `http_test.ts` is the one file needed) and point H1SPEC at it.
# Deno comes from npm's `deno` package, installed into target/deno if no
# `deno` is on PATH. Everything listens on 127.0.0.1; every process started
# is stopped on exit. Prints each target's score and failing tests.
#
# Environment:
#   H1SPEC=path              http_test.ts (required)
#   H1SPEC_BIN=path          tinyserve binary (default target/release/tinyserve)
#   H1SPEC_NO_BUILD=1        do not run `cargo build --release`
#   H1SPEC_TARGETS="cli echo" which servers to test

set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
say() { printf '[h1spec] %s\n' "$*" >&2; }

TEST_TS=${H1SPEC:-}
if [[ -z $TEST_TS || ! -f $TEST_TS ]]; then
    echo "set H1SPEC to h1spec's http_test.ts (github.com/uNetworking/h1spec)" >&2
    exit 2
fi
BIN=${H1SPEC_BIN:-$REPO/target/release/tinyserve}
TARGETS=${H1SPEC_TARGETS:-cli echo}

cd "$REPO"
if [[ ${H1SPEC_NO_BUILD:-0} != 1 ]]; then
    cargo build --release --quiet
    cargo build --release --quiet --examples 2>/dev/null || true
fi

DENO=$(command -v deno || true)
if [[ -z $DENO ]]; then
    DENO=$REPO/target/deno/node_modules/deno/deno
    if [[ ! -x $DENO ]]; then
        say "installing deno from npm into target/deno"
        mkdir -p target/deno
        (cd target/deno && npm install --no-audit --no-fund --no-save deno@2.9.6 >&2)
    fi
fi
"$DENO" --version | head -1 >&2
export DENO_DIR=$REPO/target/deno/cache DENO_NO_UPDATE_CHECK=1 NO_COLOR=1

# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"
start_session h1spec 0
mkdir -p "$TMP/root"
echo '<!doctype html><title>h1spec</title><p>hello' >"$TMP/root/index.html"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_one() { # label port
    local out=$TMP/out.$1
    "$DENO" run --no-remote --no-config --no-lock --no-prompt \
        --allow-net="127.0.0.1:$2" "$TEST_TS" 127.0.0.1 "$2" >"$out" 2>&1 || true
    local summary
    summary=$(grep -E '^[0-9]+ out of [0-9]+ tests passed' "$out" | tail -1)
    echo "$1: ${summary:-h1spec did not finish}"
    sed -n 's/^❌ \([^:]*\):.*/    failed: \1/p' "$out" | sort -u
}

wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

for target in $TARGETS; do
    port=$(free_port)
    case $target in
        cli)
            "$BIN" -q -b 127.0.0.1 -d "$TMP/root" "$port" >/dev/null 2>&1 &
            ;;
        *)
            exe=$REPO/target/release/examples/$target
            if [[ ! -x $exe ]]; then
                say "no example $target: skipped"
                continue
            fi
            "$exe" "$port" >/dev/null 2>&1 &
            ;;
    esac
    PIDS+=("$!")
    wait_port "$port" || { say "$target did not start"; continue; }
    run_one "$target" "$port"
done
