#!/usr/bin/env bash
# Real-browser test: headless Chromium against tinyserve on loopback.
#
# Usage:
#   bash scripts/browser-test.sh [OUTDIR]
#
# What it does:
#   1. builds tinyserve (cargo build --release), unless TINYSERVE_BIN names
#      a binary to use instead (tests/browser.rs passes cargo's test build);
#   2. makes a temp site: files and directories with spaces, `&` and
#      unicode in their names, and media/ (no index.html) holding tone.wav
#      (10 s, 8 kHz mono 16-bit, made with python3's wave module) and
#      player.html, whose script seeks the <audio> to 7 s and writes
#      "SEEKED duration=... currentTime=..." into its title and <pre id=out>;
#   3. starts `tinyserve -b 127.0.0.1 -d SITE 0`, access log to
#      OUTDIR/tinyserve.log (and a second one with --rich-listing when
#      `tinyserve --help` lists that flag);
#   4. Chromium saves OUTDIR/listing.png (1000x700), OUTDIR/listing-phone.png
#      (390x844), and OUTDIR/listing-rich.png with --rich-listing;
#   5. a page from the first server fetches a byte range from a third one,
#      started with --cors, and must be able to read its ETag,
#      Content-Range and Content-Length;
#   6. Chromium loads media/player.html (--dump-dom with a virtual time
#      budget, so the media loads before the DOM is dumped) and the script
#      checks the DOM says SEEKED with currentTime 7 (a server that ignores
#      Range leaves it at 0), and that the log has
#      "GET /media/tone.wav HTTP/1.1" 206.
#
# Exit status: 0 all good, 1 a check failed, 2 a tool is missing (chromium,
# python3; the apt-get line to install it is printed). Everything started
# here is stopped on exit; OUTDIR (default: a new /tmp/tinyserve-browser.*)
# keeps the screenshots, the logs and the dumped DOM.
#
# Environment (optional):
#   TINYSERVE_BIN=PATH   use this binary, do not build
#   CHROMIUM=PATH        browser to run (default: chromium, chromium-browser)
#   BROWSER_TIMEOUT=60   seconds one Chromium run may take before it is killed

set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TIMEOUT=${BROWSER_TIMEOUT:-60}

die() { echo "browser-test: FAIL: $*" >&2; exit 1; }
say() { echo "browser-test: [${SECONDS}s] $*"; }
need() { # need TOOL PACKAGE
    command -v "$1" >/dev/null 2>&1 && return
    echo "browser-test: $1 not found. Install it with:" >&2
    echo "    apt-get install -y $2" >&2
    echo "(or run bash scripts/test.sh as root, which installs it)" >&2
    exit 2
}

CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || echo chromium)}
need "$CHROMIUM" chromium
need python3 python3
need timeout coreutils

OUT=${1:-$(mktemp -d /tmp/tinyserve-browser.XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tinyserve-browser.work.XXXXXX")
PIDS=()
# stop PID: TERM, again every 0.1 s (a child killed before its exec may
# lose the first one), KILL after 5 s.
stop() {
    local i
    for ((i = 0; i < 50; i++)); do
        kill "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop "$pid"; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Any other failing command: say which, exit 1 (2 means "tool missing").
trap 'echo "browser-test: FAIL: line $LINENO: \"$BASH_COMMAND\" exited $?" >&2; exit 1' ERR

# --- 1. the binary -----------------------------------------------------------
if [[ -n ${TINYSERVE_BIN:-} ]]; then
    BIN=$TINYSERVE_BIN
else
    say "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet)
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/tinyserve
fi
[[ -x $BIN ]] || die "no tinyserve binary at $BIN"

# --- 2. the site -------------------------------------------------------------
say "tinyserve: $BIN; browser: $CHROMIUM; output: $OUT"
SITE=$WORK/site
mkdir -p "$SITE/sub dir" "$SITE/docs & notes" "$SITE/ünïcødé" "$SITE/media"
printf 'hello\n' >"$SITE/a & b.txt"
printf 'spaces\n' >"$SITE/sub dir/file with spaces.txt"
printf 'grüße\n' >"$SITE/ünïcødé/naïve café.txt"
printf '%s\n' {1..2000} >"$SITE/docs & notes/numbers.txt"
printf '<p>x</p>\n' >"$SITE/page.html"
head -c 300000 /dev/zero >"$SITE/zeros.bin"
touch -d '2024-01-02 03:04:05' "$SITE/a & b.txt"
touch -d '2020-06-07 08:09:10' "$SITE/zeros.bin"
python3 - "$SITE/media/tone.wav" <<'EOF'
import math, struct, sys, wave
rate, seconds = 8000, 10
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes(b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
        for i in range(rate * seconds)))
EOF
cat >"$SITE/media/player.html" <<'EOF'
<!doctype html>
<meta charset="utf-8">
<title>loading</title>
<audio id=a src="tone.wav" preload="auto" controls></audio>
<pre id=out>waiting</pre>
<script>
const a = document.getElementById("a"), out = document.getElementById("out");
function say(s) { out.textContent = s; document.title = s; }
a.addEventListener("error", () => say("ERROR " + (a.error && a.error.code)));
a.addEventListener("loadedmetadata", () => {
  say("METADATA duration=" + a.duration);
  a.addEventListener("seeked", () => say("SEEKED duration=" + a.duration.toFixed(3) +
    " currentTime=" + a.currentTime.toFixed(3)), {once: true});
  a.currentTime = 7;
}, {once: true});
</script>
EOF

# --- 3. the servers ----------------------------------------------------------
# start_server NAME ARGS...: starts tinyserve, sets PORT from its banner.
start_server() {
    local name=$1; shift
    : >"$WORK/$name.out"
    "$BIN" -b 127.0.0.1 -d "$SITE" "$@" 0 >"$WORK/$name.out" 2>"$OUT/$name.log" &
    PIDS+=($!)
    local i
    for ((i = 0; i < 300; i++)); do
        PORT=$(sed -n 's/^Serving HTTP on .* port \([0-9]*\) .*/\1/p' "$WORK/$name.out")
        [[ -n $PORT ]] && return
        kill -0 "${PIDS[-1]}" 2>/dev/null || die "$name exited: $(cat "$OUT/$name.log")"
        sleep 0.1
    done
    die "$name printed no banner within 30 s"
}
say "starting the servers"
start_server tinyserve
PLAIN=http://127.0.0.1:$PORT
RICH=
if [[ $("$BIN" --help) == *--rich-listing* ]]; then
    start_server tinyserve-rich --rich-listing
    RICH=http://127.0.0.1:$PORT
fi

# A third, with --cors, that a page from the first fetches across origins.
start_server tinyserve-cors --cors
CORS=http://127.0.0.1:$PORT
cat >"$SITE/cors.html" <<EOF
<!doctype html>
<meta charset="utf-8">
<title>loading</title>
<pre id=out>waiting</pre>
<script>
const out = document.getElementById("out");
fetch("$CORS/zeros.bin", {headers: {Range: "bytes=0-9"}})
  .then(r => { out.textContent = "CORS status=" + r.status +
      " etag=" + (r.headers.get("ETag") ? "yes" : "no") +
      " range=" + r.headers.get("Content-Range") +
      " length=" + r.headers.get("Content-Length"); })
  .catch(e => { out.textContent = "FAILED " + e; });
</script>
EOF

# --- 4./5. the browser -------------------------------------------------------
# browser NAME ARGS...: one headless Chromium run with a fresh profile,
# killed after $TIMEOUT s; its stdout goes to stdout, stderr to OUT/NAME.log.
# Run in the background and waited for, so that a signal stops it at once.
browser() {
    local name=$1; shift
    local profile
    profile=$(mktemp -d "$WORK/profile.XXXXXX")
    timeout -k 5 "$TIMEOUT" "$CHROMIUM" --headless --no-sandbox --disable-gpu \
        --disable-quic --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --mute-audio \
        --hide-scrollbars --user-data-dir="$profile" "$@" \
        2>"$OUT/chromium-$name.log" </dev/null &
    PIDS+=($!)
    local rc=0
    wait "${PIDS[-1]}" || rc=$?
    unset 'PIDS[-1]'
    ((rc == 124 || rc == 137)) && die "chromium ($name) still running after ${TIMEOUT}s; see $OUT/chromium-$name.log"
    ((rc == 0)) || die "chromium ($name) exited with status $rc; see $OUT/chromium-$name.log"
}
screenshot() { # screenshot FILE SIZE URL
    rm -f "$OUT/$1"
    browser "${1%.png}" --screenshot="$OUT/$1" --window-size="$2" "$3" >/dev/null
    [[ -s $OUT/$1 ]] || die "no screenshot $OUT/$1; see $OUT/chromium-${1%.png}.log"
    SHOTS+=("$OUT/$1")
}

say "screenshots"
SHOTS=()
screenshot listing.png 1000,700 "$PLAIN/"
screenshot listing-phone.png 390,844 "${RICH:-$PLAIN}/"
[[ -n $RICH ]] && screenshot listing-rich.png 1000,700 "$RICH/"

say "listing DOM"
browser listing-dom --dump-dom "$PLAIN/" >"$OUT/listing.dom.html"
for name in 'a &amp; b.txt' 'sub dir/' 'ünïcødé/' 'media/' 'docs &amp; notes/'; do
    grep -qF -- "$name" "$OUT/listing.dom.html" || die "listing lacks \"$name\"; see $OUT/listing.dom.html"
done

say "media player"
browser player --dump-dom --virtual-time-budget=15000 "$PLAIN/media/player.html" >"$OUT/player.dom.html"
result=$(sed -n 's/.*<pre id="out">\([^<]*\)<.*/\1/p' "$OUT/player.dom.html")
say "player says: ${result:-nothing}"
[[ $result == SEEKED* ]] || die "the audio did not seek (player says \"$result\"); see $OUT/player.dom.html"
awk -v r="$result" 'BEGIN {
    split(r, f, /[ =]/)   # SEEKED duration D currentTime T
    d = f[3] + 0; t = f[5] + 0
    exit !(d > 9.9 && d < 10.1 && t > 6.9 && t < 7.1)
}' || die "after seeking to 7 s of 10 s the player says \"$result\""

# The log line is written after the response: give it a moment.
for ((i = 0; i < 20; i++)); do
    grep -qF '"GET /media/tone.wav HTTP/1.1" 206' "$OUT/tinyserve.log" && break
    sleep 0.1
done
grep -F '/media/' "$OUT/tinyserve.log" | sed 's/^/browser-test: log: /' || true
grep -qF '"GET /media/tone.wav HTTP/1.1" 206' "$OUT/tinyserve.log" ||
    die "no 206 for /media/tone.wav in $OUT/tinyserve.log"

say "cross-origin fetch (--cors)"
browser cors --dump-dom --virtual-time-budget=5000 "$PLAIN/cors.html" >"$OUT/cors.dom.html"
result=$(sed -n 's/.*<pre id="out">\([^<]*\)<.*/\1/p' "$OUT/cors.dom.html")
say "page says: ${result:-nothing}"
# A page's script may read what --cors exposes: the validator and the range.
[[ $result == "CORS status=206 etag=yes range=bytes 0-9/300000 length=10" ]] ||
    die "the page could not read the cross-origin answer's headers: \"$result\"; see $OUT/cors.dom.html"

say "OK; screenshots: ${SHOTS[*]}"
