#!/usr/bin/env bash
# The project's test command: bash scripts/test.sh [cargo test ARGS...]
#
# Makes sure the tools the tests need are on PATH (python3 for the
# differential tests, chromium for tests/browser.rs), installing what is
# missing with apt-get when run as root (non-interactive, fit for CI), then
# runs `cargo test ARGS...`.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v python3 >/dev/null || missing+=(python3)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)

if ((${#missing[@]})); then
    if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
        echo "test.sh: missing ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}" >&2
        exit 2
    fi
    echo "test.sh: installing ${missing[*]} with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null
    apt-get install -y -qq "${missing[@]}" </dev/null >/dev/null
fi

exec cargo test "$@"
