#!/usr/bin/env bash
# The project's test command: bash scripts/test.sh [cargo test ARGS...]
#
# Makes sure the tools the tests need are there, installing what is
# missing (as root, non-interactively, fit for CI):
#   - python3, the reference for the differential tests (apt-get);
#   - chromium, for tests/browser.rs (apt-get);
#   - h11, the strict parser tests/framing.rs compares with, from PyPI into
#     target/pydeps (pip).
# Then runs `cargo test ARGS...` and ends with one line for the whole
# suite: `N passed, M failed` over every test binary.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v python3 >/dev/null || missing+=(python3 python3-pip)
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

pydeps=target/pydeps
if ! PYTHONPATH=$pydeps python3 -c 'import h11' 2>/dev/null; then
    echo "test.sh: installing h11 into $pydeps with pip" >&2
    mkdir -p "$pydeps"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        --target "$pydeps" 'h11==0.16.0' >&2
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# --no-fail-fast: a failing binary does not hide the others, and the
# summary below is of the whole suite.
cargo test --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ {
        for (i = 1; i <= NF; i++) {
            if ($(i + 1) ~ /^passed/) passed += $i
            if ($(i + 1) ~ /^failed/) failed += $i
        }
        binaries++
    }
    END { printf "\nwhole suite: %d passed, %d failed (%d test binaries)\n", passed, failed, binaries }' "$log"
# Which Pythons the differential tests compared with (as tests/support
# chooses them: pyenv's newest 3.x.y, else python3; the newest with `cgi`,
# 3.12 or older, for examples/python/http_server_POST.py).
py_of() { if [[ -n $1 ]]; then PYENV_VERSION=$1 python3 --version 2>&1; else python3 --version 2>&1; fi; }
versions=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.[0-9]+\.[0-9]+$' | sort -V || true)
newest=$(tail -n 1 <<<"$versions")
with_cgi=$(grep -E '^3\.([89]|1[012])\.' <<<"$versions" | tail -n 1 || true)
echo "reference Python: $(py_of "$newest")${newest:+ (pyenv)}; for http_server_POST.py (cgi): $(py_of "$with_cgi")"
exit "$status"
