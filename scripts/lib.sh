# shellcheck shell=bash
# Shell helpers shared by the scripts in this directory; source it.

# stop_pid PID: SIGTERM, up to 5 s for it to go (reaping it if it is our
# child, so it does not linger as a zombie), then SIGKILL.
stop_pid() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        if [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]]; then
            wait "$pid" 2>/dev/null || true
            return 0
        fi
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# start_session NAME KEEP: makes a temp dir in $TMP and an empty PIDS array;
# on exit every process in PIDS is stopped and the dir removed (kept, and
# said so with the caller's `say`, when KEEP is 1).
start_session() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/tinyserve-$1.XXXXXX")
    PIDS=()
    SESSION_KEEP=$2
    trap stop_session EXIT
    trap 'exit 130' INT TERM
}

stop_session() {
    local pid
    for pid in "${PIDS[@]}"; do
        [[ -n $pid ]] && stop_pid "$pid"
    done
    if [[ $SESSION_KEEP == 1 ]]; then
        say "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
